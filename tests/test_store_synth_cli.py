"""The client store, synthetic data with known truth, and the small CLI commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib.config import load_config
from mmmlib.data.dataset import load_dataset
from mmmlib.data.synth import SynthSpec, generate
from mmmlib.errors import UsageError
from mmmlib.runs import ensure_client, latest_good_run, list_runs


def mmm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def fake_summary(run_id: str, created: str, status: str) -> dict:
    """The smallest summary.json a run may have (``runs.SUMMARY_SCHEMA``): one channel, no series."""
    iv = {"mean": 1.0, "hdi_low": 0.5, "hdi_high": 1.5}
    return {
        "status": status,
        "target": "revenue",
        "run": {"id": run_id, "created_at": created},
        "period": {"start": "2025-01-06", "end": "2025-12-29"},
        "totals": {"kpi": 100.0, "spend": 10.0, "media_contribution": iv, "media_share": iv, "blended_roas": iv},
        "channels": [
            {"name": "tv", "label": "TV", "spend": 10.0, "contribution": iv, "share": iv, "roas": iv, "mroas": iv}
        ],
        "diagnostics": {"r_hat_max": 1.0, "ess_bulk_min": 500, "divergences": 0, "r2": 0.9},
        "recommendations": ["Model health: good."],
        "response_curves": [{"name": "tv", "spend": [0.0], "mean": [0.0], "hdi_low": [0.0], "hdi_high": [0.0]}],
        "decomposition": {"dates": [], "series": {}, "totals": {}},
        "fit": {"dates": [], "actual": [], "predicted": [], "predicted_low": [], "predicted_high": []},
    }


def _fake_run(root: Path, client: str, run_id: str, created: str, status: str, accepted: bool = False) -> Path:
    path = root / "clients" / client / "runs" / run_id
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(fake_summary(run_id, created, status)))
    if accepted:
        (path / "ACCEPTED").touch()
    return path


def test_runs_are_listed_newest_first_per_client(tmp_path: Path) -> None:
    _fake_run(tmp_path, "acme", "r1", "2026-01-01T00:00:00", "ok")
    _fake_run(tmp_path, "acme", "r2", "2026-02-01T00:00:00", "warning")
    _fake_run(tmp_path, "globex", "g1", "2026-01-15T00:00:00", "ok")
    (tmp_path / "clients" / "acme" / "runs" / "r3.failed-20260301T000000Z").mkdir()
    assert [r.run_id for r in list_runs(root=tmp_path)] == ["r2", "g1", "r1"]
    assert [r.run_id for r in list_runs("acme", root=tmp_path)] == ["r2", "r1"]
    assert latest_good_run("acme", root=tmp_path).run_id == "r1"  # a warning run does not replace it
    _fake_run(tmp_path, "acme", "r4", "2026-03-01T00:00:00", "warning", accepted=True)
    assert latest_good_run("acme", root=tmp_path).run_id == "r4"


def test_cli_runs_json(tmp_path: Path) -> None:
    _fake_run(tmp_path, "acme", "r1", "2026-01-01T00:00:00", "ok")
    _fake_run(tmp_path, "acme", "r2", "2026-02-01T00:00:00", "warning")
    out = mmm("runs", "--json", env={"MMM_HOME": str(tmp_path)})
    assert out.returncode == 0
    assert [(r["id"], r["status"]) for r in json.loads(out.stdout)] == [("r2", "warning"), ("r1", "ok")]


def test_cli_accept_marks_a_warning_run(tmp_path: Path) -> None:
    _fake_run(tmp_path, "acme", "r1", "2026-01-01T00:00:00", "ok")
    run = _fake_run(tmp_path, "acme", "r2", "2026-02-01T00:00:00", "warning")
    assert latest_good_run("acme", root=tmp_path).run_id == "r1"
    out = mmm("accept", str(run), "--by", "ana")
    assert out.returncode == 0, out.stderr
    assert json.loads((run / "ACCEPTED").read_text())["accepted_by"] == "ana"
    assert latest_good_run("acme", root=tmp_path).run_id == "r2"
    assert mmm("accept", str(tmp_path / "nope")).returncode == 2


def test_client_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        ensure_client("../etc", root=tmp_path)
    assert (ensure_client("acme", root=tmp_path) / "datasets").is_dir()


def test_synth_truth_is_exact() -> None:
    frame, config, truth = generate(SynthSpec(weeks=104, channels=3, seed=5))
    assert len(frame) == 104 and config.channel_columns == [c["name"] for c in truth["channels"]]
    for ch in truth["channels"]:
        assert ch["roas"] == pytest.approx(ch["contribution"] / frame[ch["name"]].sum(), rel=1e-4)
    assert sum(c["share"] for c in truth["channels"]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "spec",
    [
        SynthSpec(channels=8, seed=1),
        SynthSpec(adstock="weibull", saturation="hill", seed=2),
        SynthSpec(seasonal_spend=True, seed=3),
    ],
)
def test_synth_variants_validate(tmp_path: Path, spec: SynthSpec) -> None:
    from mmmlib.data.synth import write

    out = write(spec, tmp_path)
    dataset = load_dataset(out / "data.csv", load_config(out / "config.yaml"))
    assert dataset.report.ok and len(dataset.frame) == spec.weeks
    assert np.all(dataset.frame[dataset.channels].to_numpy() >= 0)


@pytest.mark.slow
def test_cli_synth_then_config_detects_it(tmp_path: Path) -> None:
    assert mmm("synth", "--out", str(tmp_path), "--weeks", "60", "--channels", "4", "--seed", "9").returncode == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    out = mmm("config", str(tmp_path / "data.csv"))
    assert out.returncode == 0
    assert "target_column: revenue" in out.stdout
    for ch in truth["channels"]:
        assert f"- {ch['name']}" in out.stdout
    assert pd.read_csv(tmp_path / "data.csv").shape == (60, 1 + 1 + 4 + 2)


@pytest.mark.slow
def test_cli_usage_errors_exit_2() -> None:
    assert mmm().returncode == 2
    bad = mmm("synth", "--out", "/tmp/x", "--weeks", "10")
    assert bad.returncode == 2 and "at least 52" in bad.stderr


def test_true_response_and_lift() -> None:
    from mmmlib.data.synth import lift_test_from_truth, true_response

    _, _, truth = generate(SynthSpec(weeks=60, channels=2, seed=4))
    ch = truth["channels"][0]
    assert float(true_response(ch, 0.0)) == 0.0
    lift = lift_test_from_truth(ch, 1000.0, 500.0, 10.0)
    assert lift["delta_y"] > 0 and lift["channel"] == ch["name"]
    # diminishing returns: the same change buys less on top of more spend
    assert lift_test_from_truth(ch, 50_000.0, 500.0, 10.0)["delta_y"] < lift["delta_y"]
