"""Scheduled refits: due-time logic, locks, a real scheduled run with an offline report, failures, and Dask."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from mmmlib.errors import InputError
from mmmlib.runs import latest_report_path
from mmmlib.schedule import Schedule, load_schedules, run_batch, run_due, schedule_lock
from tests.conftest import assert_draws_offline

MONDAY_6 = "0 6 * * 1"


def sched(**kw) -> Schedule:
    base = {"name": "weekly", "client": "acme", "data": "d.csv", "config": "c.yaml", "cron": MONDAY_6}
    return Schedule(**{**base, **kw})


def test_due_time_logic() -> None:
    s = sched()
    wed = datetime(2026, 11, 25, 9, 0)
    assert s.last_due(wed) == datetime(2026, 11, 23, 6, 0)
    assert s.is_due(wed, None)  # never ran
    assert not s.is_due(wed, datetime(2026, 11, 23, 6, 0))  # ran at this week's slot
    assert s.is_due(wed, datetime(2026, 11, 16, 6, 0))  # missed this week's slot
    assert s.is_due(datetime(2026, 11, 30, 6, 0), datetime(2026, 11, 23, 6, 0))  # exactly on the next slot
    assert not s.is_due(datetime(2026, 11, 30, 5, 59), datetime(2026, 11, 23, 6, 0))


@pytest.mark.parametrize(
    ("kw", "phrase"),
    [
        ({"cron": "61 * * * *"}, "not valid"),
        ({"mode": "slow"}, "mode"),
        ({"reports": ["docx"]}, "report format"),
        ({"keep": 0}, "keep"),
        ({"client": "Bad Client"}, "Client name"),
    ],
)
def test_bad_schedules_are_refused(kw: dict, phrase: str) -> None:
    with pytest.raises(Exception, match=phrase):
        sched(**kw)


def test_schedule_file_paths_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump(
            {"schedules": [{"name": "a", "client": "acme", "data": "in/*.csv", "config": "c.yaml", "cron": MONDAY_6}]}
        )
    )
    (loaded,) = load_schedules(tmp_path / "s.yaml")
    assert loaded.data == str(tmp_path / "in/*.csv") and loaded.config == str(tmp_path / "c.yaml")
    (tmp_path / "dup.yaml").write_text(
        yaml.safe_dump(
            {"schedules": [{"name": "a", "client": "acme", "data": "x", "config": "y", "cron": MONDAY_6}] * 2}
        )
    )
    with pytest.raises(InputError, match="unique"):
        load_schedules(tmp_path / "dup.yaml")
    (tmp_path / "empty.yaml").write_text("schedules: []\n")  # a hub with nothing scheduled yet
    assert load_schedules(tmp_path / "empty.yaml") == []
    (tmp_path / "typo.yaml").write_text("schedule: []\n")
    with pytest.raises(InputError, match="needs a list"):
        load_schedules(tmp_path / "typo.yaml")


def test_a_held_lock_skips_the_schedule(tmp_path: Path) -> None:
    s = sched()
    with schedule_lock(s, root=tmp_path) as held:
        assert held
        with schedule_lock(s, root=tmp_path) as second:
            assert not second
        results = run_due([s], now=datetime(2026, 11, 25, 9, 0), root=tmp_path)
    assert results == [{"schedule": "weekly", "status": "skipped", "error": "another run holds its lock"}]


def test_scheduled_run_publishes_an_offline_report(scheduled: dict) -> None:
    (result,) = scheduled["results"]
    assert result["status"] in {"ok", "warning"}
    run = Path(result["run"])
    assert (run / "summary.json").is_file() and (run / "report.html").is_file() and (run / "report.txt").is_file()
    state = json.loads((scheduled["root"] / "schedules" / "state.json").read_text())
    assert state["acme-weekly"]["last_run"] == "2026-11-23T07:00:00"
    if result["status"] == "ok":
        latest = latest_report_path("acme", scheduled["root"])
        assert result["published"] == str(latest)
        assert_draws_offline(latest, "scheduled_report.png")


def test_nothing_is_due_again_the_same_week(scheduled: dict) -> None:
    s = load_schedules(scheduled["file"])
    assert run_due(s, now=datetime(2026, 11, 25, 12, 0), root=scheduled["root"]) == []


def test_failed_scheduled_run_keeps_the_last_good_report(scheduled: dict, synth_run: dict) -> None:
    root = scheduled["root"]
    latest = latest_report_path("acme", root)
    before = latest.read_bytes() if latest.exists() else None
    (s,) = load_schedules(scheduled["file"])
    bad = synth_run["data_dir"] / "broken.yaml"
    bad.write_text(
        (synth_run["data_dir"] / "plain.yaml")
        .read_text()
        .replace("priors: {}", "priors:\n  saturation_beta: {dist: NoSuchDistribution, sigma: 1}")
    )
    s.config = str(bad)
    (result,) = run_due([s], now=datetime(2026, 11, 30, 6, 0), root=root)
    assert result["status"] == "failed" and "The fit failed" in result["error"]
    assert (latest.read_bytes() if latest.exists() else None) == before
    failed = list((root / "clients" / "acme" / "runs").glob("acme-weekly-*.failed-*"))
    assert len(failed) == 1 and (failed[0] / "fit.ipynb").is_file()
    good = [p for p in (root / "clients" / "acme" / "runs").iterdir() if ".failed-" not in p.name]
    assert len(good) == 1  # the earlier good run is still there


def test_batch_on_a_dask_cluster(scheduled: dict, synth_run: dict, tmp_path: Path, monkeypatch) -> None:
    """`mmm batch`'s executor interface on a real (local) Dask cluster: the job runs a real fit."""
    from distributed import Client, LocalCluster

    from mmmlib.executors import DaskExecutor

    monkeypatch.setenv("MMM_HOME", str(tmp_path))
    job = Schedule(
        name="dask-job",
        client="globex",
        data=str(synth_run["data_dir"] / "data.csv"),
        config=str(synth_run["data_dir"] / "plain.yaml"),
        cron=MONDAY_6,
        reports=["txt"],
    )
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            results = run_batch([job], DaskExecutor(client))
    assert results[0]["status"] in {"ok", "warning"}, results
    run = Path(results[0]["run"])
    assert run.parent == tmp_path / "clients" / "globex" / "runs"
    assert (run / "summary.json").is_file() and (run / "report.txt").is_file()
