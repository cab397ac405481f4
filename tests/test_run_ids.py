"""Run and schedule names follow one rule (``runs.RUN_ID``) where runs are created, and listings skip the rest.

A run folder's name becomes a URL part (the hub's run-report route), a download's file name and page text; the
issue's attack named a run folder ``q' onmouseover='…' …`` and made it the newest good run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmmlib.errors import UsageError
from mmmlib.runs import latest_good_run, list_runs
from mmmlib.schedule import Schedule
from tests.test_store_synth_cli import fake_summary

HOSTILE_RUN = "q' onmouseover='window.__pwned=1' style='position:fixed;inset:0' x='"
GOOD = ["r1", "demo", "sample-weekly-20261123T070000Z", "20261123T070000Z-new", "Q4.final_v2", "a" * 100]
BAD = [HOSTILE_RUN, "", ".hidden", "..", "-r", "a/b", "r1\n", "r 1", "<b>", "a" * 101, "é"]


def mmm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def _run(root: Path, name: str, created: str, status: str = "ok") -> Path:
    path = root / "clients" / "acme" / "runs" / name
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(fake_summary(name, created, status)))
    return path


@pytest.mark.parametrize("name", GOOD)
def test_safe_run_names_are_accepted(name: str) -> None:
    from mmmlib import runs

    assert runs.check_run_id(name) == name


@pytest.mark.parametrize("name", BAD)
def test_other_run_names_are_refused_with_a_sentence(name: str) -> None:
    from mmmlib import runs

    with pytest.raises(UsageError, match=r"is not allowed: use letters, digits, '\.', '-' and '_'"):
        runs.check_run_id(name)


@pytest.mark.slow
def test_fit_refuses_a_run_folder_named_outside_the_rule_before_anything_is_written(tmp_path: Path) -> None:
    runs = tmp_path / "clients" / "acme" / "runs"
    out = mmm("fit", "data.csv", "--config", "config.yaml", "--out", str(runs / HOSTILE_RUN))
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("mmm: Run folder name") and "is not allowed" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not runs.exists()  # no staging folder, no failed attempt


def test_schedule_names_follow_the_run_rule_with_room_for_the_stamp() -> None:
    base = {"client": "acme", "data": "d.csv", "config": "c.yaml", "cron": "0 6 * * 1"}
    with pytest.raises(UsageError, match="Schedule name"):
        Schedule(name=HOSTILE_RUN, **base)
    with pytest.raises(UsageError, match="at most 83 characters"):
        Schedule(name="a" * 84, **base)  # its runs are <name>-<16-character stamp>
    assert Schedule(name="a" * 83, **base).name == "a" * 83


def test_listings_skip_run_folders_named_outside_the_rule(tmp_path: Path) -> None:
    _run(tmp_path, "r1", "2026-01-01T00:00:00")
    _run(tmp_path, HOSTILE_RUN, "2026-06-01T00:00:00")  # newest and ok: the attack's choice
    _run(tmp_path, "r1\n", "2026-06-02T00:00:00")
    assert [r.run_id for r in list_runs("acme", root=tmp_path)] == ["r1"]
    assert latest_good_run("acme", root=tmp_path).run_id == "r1"
    listed = mmm("runs", "--json", env={"MMM_HOME": str(tmp_path)})
    assert listed.returncode == 0 and [r["id"] for r in json.loads(listed.stdout)] == ["r1"]


def test_client_names_ending_in_a_newline_are_refused(tmp_path: Path) -> None:
    from mmmlib.runs import client_dir

    with pytest.raises(UsageError):
        client_dir("acme\n", root=tmp_path)


def test_the_gallerys_run_report_route_is_the_store_rule() -> None:
    import re

    from mmmlib import runs
    from mmmlib.hub.gallery import RUN

    route = re.compile(f"^{RUN}$")
    assert all(route.fullmatch(n) for n in GOOD)
    assert not any(route.fullmatch(n) for n in BAD if "\n" not in n)
    assert RUN == f"({runs.RUN_ID.pattern.strip('^$')})"
