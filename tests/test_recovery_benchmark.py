"""The recovery-suite benchmark (`benchmarks/recovery.py --suite`) without fitting anything.

Its pooled figures and the issue's targets from hand-made rows with known answers, the resume rule,
the config it writes for ours, the commit it stamps on rows, and one whole pass over a generated world
whose runs are already stored (so nothing is fitted).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mmmlib.config import ModelConfig, load_config
from tests.benchtools import load_benchmark

ROOT = Path(__file__).resolve().parent.parent


recovery = load_benchmark("recovery")


@pytest.fixture
def suite_scripts() -> Path:
    """The suite's own scripts (``../shared/recovery_suite``), which CI must have."""
    if not (recovery.SUITE_SCRIPTS / "score.py").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"recovery suite missing at {recovery.SUITE_SCRIPTS}")
        pytest.skip(f"recovery suite not found at {recovery.SUITE_SCRIPTS}; set MMM_RECOVERY_SUITE")
    return recovery.SUITE_SCRIPTS


def channel(error: float, covered: bool = True, width: float = 1.0, confident: bool = False, identified=None) -> dict:
    """A channel row as the suite's ``score_world`` writes it, plus our ``identified`` flag."""
    return {
        "channel": "c",
        "true": 1.0,
        "mean": 1.0 + error,
        "low": 0.0,
        "high": 2.0,
        "error": error,
        "covered": covered,
        "width": width,
        "confident": confident,
        "identified": identified,
    }


def row(who: str, channels: list[dict], world: str = "world_1000", suite: str = "mixed", **extra) -> dict:
    commit = {"ours": "abc1234", "peer": "peer12345678"}[who]
    mode = "quick" if who == "ours" else recovery.PEER_MODE
    return {
        "suite": suite,
        "world": world,
        "who": who,
        "mode": mode,
        "commit": commit,
        "date": "2026-12-01T00:00:00",
        "seconds": 10.0,
        "divergences": 0,
        "r_hat_max": 1.01,
        "channels": channels,
        **extra,
    }


def ours_ten() -> list[dict]:
    """10 channels: 9 covered; 8 within 20 %, 9 within 35 %, median error 10 %; two confident, one of them a miss;
    three identified (one of them 50 % off), so 30 % identified and 2 / 3 of those within 35 %."""
    return (
        [channel(0.1, identified=True, confident=True), channel(0.1, identified=True)]
        + [channel(0.1, identified=False) for _ in range(6)]
        + [channel(0.3, identified=False), channel(0.5, covered=False, confident=True, identified=True)]
    )


def peer_ten() -> list[dict]:
    """10 channels, all covered, median error 20 %, intervals half as wide as ours."""
    return [channel(0.2, width=0.5) for _ in range(10)]


def test_pooled_figures_from_known_rows() -> None:
    p = recovery.pool([row("ours", ours_ten())])
    assert p["channels"] == 10 and p["missing"] == 0
    assert p["covered"] == pytest.approx(0.9)
    assert p["within20"] == pytest.approx(0.8)
    assert p["within35"] == pytest.approx(0.9)
    assert p["median_error"] == pytest.approx(0.1)
    assert p["error_p75"] == pytest.approx(0.1) and p["error_p90"] == pytest.approx(0.32)  # numpy's linear quantile
    assert p["confident"] == pytest.approx(0.2)
    assert p["confident_covered"] == pytest.approx(0.5)
    assert p["identified"] == pytest.approx(0.3)
    assert p["identified_within35"] == pytest.approx(2 / 3)
    assert p["divergences"] == 0 and p["divergent_worlds"] == 0


def test_targets_met_and_missed() -> None:
    ours, peer = recovery.pool([row("ours", ours_ten())]), recovery.pool([row("peer", peer_ten())])
    got = {
        label.split(" ≥")[0].split(" ≤")[0]: (value, met) for label, value, met in recovery.targets("mixed", ours, peer)
    }
    assert got["intervals cover the true ROAS"] == ("90 %", True)  # 9 of 10: exactly the target
    assert got["confident intervals cover it"] == ("50 %", False)  # the confident miss
    assert got["identified channels within 35 %"] == ("67 %", False)
    assert got["median ROAS error"] == ("0.50 ×", True)  # 10 % against the peer's 20 %
    assert got["median width ÷ truth"] == ("2.00 ×", False)  # twice the peer's width
    assert got["zero divergences"] == ("0", True)
    assert got["identified share"] == ("30 %", True)
    strong = {label: met for label, _, met in recovery.targets("strong", ours, peer)}
    assert strong["identified share ≥ 30 % (strong)"] is True  # 30 % is the strong suite's floor, met exactly
    ours["identified"] = 0.29
    assert not dict((t, m) for t, _, m in recovery.targets("strong", ours, peer))["identified share ≥ 30 % (strong)"]


def test_a_failed_fit_counts_as_missed_and_unmeasured_is_not_met() -> None:
    missing = [{"channel": f"c{i}", "missing": True, "identified": None} for i in range(5)]
    ours = recovery.pool(
        [
            row("ours", [channel(0.1) for _ in range(5)]),
            row("ours", missing, world="world_1001", error="The fit failed.", divergences=None),
        ]
    )
    assert ours["channels"] == 10 and ours["missing"] == 5 and ours["failed"] == 1
    assert ours["covered"] == pytest.approx(0.5)  # the failed world's channels are misses, as score.py counts them
    assert ours["identified"] is None and ours["confident_covered"] is None  # no flag, no confident interval
    met = {t.split(" ≥")[0]: (v, m) for t, v, m in recovery.targets("mixed", ours, recovery.pool([]))}
    assert met["identified share"] == ("not measured", False)
    assert met["confident intervals cover it"] == ("no confident intervals", False)
    assert met["zero divergences"][1] is False  # a failed fit is not a clean run
    assert not any(m for t, (v, m) in met.items() if t.startswith("median"))  # no peer: no ratio


def named(channels: list[dict]) -> list[dict]:
    return [{**c, "channel": f"c{i}"} for i, c in enumerate(channels)]


def test_channel_by_channel_pairs_the_same_world_and_channel_only() -> None:
    ours = [row("ours", named(ours_ten())), row("ours", named([channel(0.0)]), world="world_1001")]
    peer = [row("peer", named(peer_ten())), row("peer", named([channel(0.5), channel(0.5)]), world="world_1002")]
    # world_1000: ours 0.1 < 0.2 eight times, 0.3 and 0.5 are worse; world_1001 has no peer run, world_1002 no ours
    assert recovery.paired(ours, peer) == (8, 10)
    peer[0]["channels"][0] = {"channel": "c0", "missing": True}  # a channel the peer lost is not a pair
    assert recovery.paired(ours, peer) == (7, 9)
    assert recovery.closer_sentence(7, 9).endswith("on 7 of 9 (78 %).") and recovery.closer_sentence(0, 0) == ""


def test_report_uses_this_commits_rows_and_says_what_is_partial() -> None:
    rows = [row("ours", named(ours_ten())), row("peer", named(peer_ten())), row("peer", peer_ten(), world="world_1001")]
    rows.append({**row("ours", [channel(5.0, covered=False)] * 10), "commit": "old0000"})  # an older commit: history
    text = recovery.suite_report(
        rows, {"mixed": [1000, 1001], "strong": [2000]}, ["quick", "full"], "abc1234", "peer12345678", [1.0, 2.0]
    )
    assert "## mixed, quick mode: 1 of 2 worlds — PARTIAL" in text
    assert "## mixed, full" not in text and "## strong, full mode: 0 of 1" in text  # full: strong seeds only
    assert "| interval covers truth | 90 % | 100 % |" in text  # ours from abc1234 only, not old0000's misses
    assert "| intervals cover the true ROAS ≥ 90 % | 90 % | met |" in text
    assert "| confident intervals cover it ≥ 90 % | 50 % | MISSED |" in text
    assert (
        "Ours ÷ peer: median error 0.50 ×, median width 2.00 ×. Channel by channel, ours is closer to the truth "
        "than the peer on 8 of 10 (80 %)." in text
    )
    assert "| 75th / 90th percentile error | 10 % / 32 % | 20 % / 20 % |" in text
    assert "| world_1001 | 10 | not run |" in text
    assert "`abc1234`" in text and "**Recovery suite.**" in text


def test_resume_skips_a_stored_row_of_the_same_commit_only(tmp_path: Path) -> None:
    results = tmp_path / "recovery_suite.json"
    stored = recovery.store_row([], row("ours", ours_ten()), results)
    rows = recovery.load_rows(results)
    assert rows == stored
    key = {"suite": "mixed", "world": "world_1000", "who": "ours", "mode": "quick"}
    assert not recovery.needs_fit(rows, {**key, "commit": "abc1234"})
    assert recovery.needs_fit(rows, {**key, "commit": "def5678"})  # another commit refits
    assert recovery.needs_fit(rows, {**key, "mode": "full", "commit": "abc1234"})
    assert recovery.needs_fit(rows, {**key, "commit": "abc1234"}, force=True)
    # a refit at another commit keeps the older row for history; one at the same commit replaces it
    rows = recovery.store_row(rows, {**row("ours", peer_ten()), "commit": "def5678"}, results)
    rows = recovery.store_row(rows, row("ours", peer_ten(), error="killed"), results)
    assert sorted(r["commit"] for r in recovery.load_rows(results)) == ["abc1234", "def5678"]
    assert recovery.needs_fit(rows, {**key, "commit": "abc1234"})  # a failed fit is tried again


def test_config_from_truth_names_the_roles_and_keeps_every_default(tmp_path: Path) -> None:
    truth = {
        "date_column": "week",
        "target_column": "revenue",
        "channel_columns": ["tv", "search"],
        "control_columns": ["holiday"],
        "channels": {},
    }
    config = load_config(recovery.config_from_truth(truth, tmp_path / "c" / "config.yaml"))
    expected = ModelConfig(
        date_column="week", target_column="revenue", channel_columns=["tv", "search"], control_columns=["holiday"]
    )
    assert config == expected


def test_commit_marks_changes_to_the_product_but_not_benchmark_outputs(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    git("init", "-q")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "model.py").write_text("a = 1\n")
    (tmp_path / "benchmarks" / "results" / "recovery_suite.json").write_text("{}\n")
    git("add", ".")
    git("commit", "-qm", "x")
    head = recovery.tree_commit(tmp_path)
    assert "-dirty" not in head
    (tmp_path / "benchmarks" / "results" / "recovery_suite.json").write_text('{"rows": []}\n')
    assert recovery.tree_commit(tmp_path) == head  # the benchmark's own output does not change the commit
    (tmp_path / "model.py").write_text("a = 2\n")
    first = recovery.tree_commit(tmp_path)
    (tmp_path / "model.py").write_text("a = 3\n")
    second = recovery.tree_commit(tmp_path)
    assert first.startswith(f"{head}-dirty-") and second.startswith(f"{head}-dirty-") and first != second
    (tmp_path / "model.py").write_text("a = 1\n")
    (tmp_path / "new_module.py").write_text("b = 1\n")
    assert recovery.tree_commit(tmp_path).startswith(f"{head}-dirty-")  # an untracked module is part of the tree


def test_seeds_and_peer_times(tmp_path: Path) -> None:
    assert recovery.parse_seeds("1000-1003") == [1000, 1001, 1002, 1003]
    assert recovery.parse_seeds("2000,2005-2006,2000") == [2000, 2005, 2006]
    assert recovery.parse_seeds("") == []
    log = tmp_path / "peer_times.log"
    log.write_text("mixed world_1000 39.05\nmixed world_1001 34.89\nbroken line\nmixed world_1000 41.5\n")
    assert recovery.peer_times(log) == {("mixed", "world_1000"): 41.5, ("mixed", "world_1001"): 34.89}
    assert recovery.peer_times(tmp_path / "absent.log") == {}


@pytest.mark.slow
def test_a_pass_over_stored_runs_scores_the_peer_and_skips_ours(tmp_path: Path, suite_scripts: Path) -> None:
    """The whole `--suite` loop on one generated world whose runs exist: the peer's stored run is scored with the
    suite's own score_world, its seconds taken from peer_times.log; ours, stored at this commit, is not refitted."""
    cache, out = tmp_path / "cache", tmp_path / "results"
    world = recovery.ensure_worlds(suite_scripts, cache / "mixed", "mixed", [1000])[0]
    truth = json.loads((world / "truth.json").read_text())
    names = truth["channel_columns"]
    first, rest = truth["channels"][names[0]]["roas"], names[1:]
    channels = [{"name": names[0], "roas": {"mean": first, "hdi_low": first * 0.9, "hdi_high": first * 1.1}}]
    channels += [{"name": n, "roas": {"mean": 9.0, "hdi_low": 8.0, "hdi_high": 10.0}} for n in rest]
    peer_dir = cache / "runs" / "peer" / "mixed" / "world_1000"
    peer_dir.mkdir(parents=True)
    summary = {"channels": channels, "diagnostics": {"r_hat_max": 1.0, "divergences": 3}, "seconds": 30.0}
    (peer_dir / "summary.json").write_text(json.dumps(summary))
    (cache / "runs" / "peer_times.log").write_text("mixed world_1000 33.3\n")
    ours = row("ours", [channel(0.1)] * len(names), commit="testcommit")
    recovery.store_row([], ours, out / recovery.SUITE_JSON)
    mtime = (world / "data.csv").stat().st_mtime_ns
    assert recovery.ensure_worlds(suite_scripts, cache / "mixed", "mixed", [1000])[0] == world
    assert (world / "data.csv").stat().st_mtime_ns == mtime  # an existing world is reused, not regenerated

    recovery.main(
        [
            "--suite",
            "--seeds",
            "1000",
            "--strong-seeds",
            "",
            "--cache",
            str(cache),
            "--out",
            str(out),
            "--commit",
            "testcommit",
            "--no-peer-fits",
        ]
    )

    rows = recovery.load_rows(out / recovery.SUITE_JSON)
    assert [(r["who"], r["commit"]) for r in rows] == [
        ("ours", "testcommit"),
        ("peer", recovery.file_sha(suite_scripts / "peer.py")),
    ]
    peer = rows[1]
    assert peer["seconds"] == 33.3 and peer["divergences"] == 3
    expected = [True] + [8.0 <= truth["channels"][n]["roas"] <= 10.0 for n in rest]
    assert [c["covered"] for c in peer["channels"]] == expected
    assert all(c["identified"] is None for c in peer["channels"])
    text = (out / recovery.SUITE_MD).read_text()
    assert "## mixed, quick mode: 1 of 1 worlds" in text and "| divergences (worlds with any) | 0 (0) | 3 (1) |" in text
