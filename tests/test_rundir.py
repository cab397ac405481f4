"""``runs.RunDir``: a run directory's file names, loaders, state (staging, failed, accepted) and its atomic write."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib import runs
from mmmlib.config import ModelConfig, save_config
from mmmlib.errors import InputError, UsageError
from mmmlib.runs import RunDir
from tests.test_store_synth_cli import fake_summary


def _summary(run_id: str = "r1", status: str = "ok") -> dict:
    return fake_summary(run_id, "2026-01-01T00:00:00", status)


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    """A complete run by hand: summary, config, data and a small posterior."""
    import xarray as xr

    run = RunDir(tmp_path / "clients" / "acme" / "runs" / "r1")
    run.path.mkdir(parents=True)
    run.write_summary(_summary())
    save_config(ModelConfig(date_column="week", target_column="revenue", channel_columns=["tv"]), run.config_file)
    frame = pd.DataFrame({"week": ["2025-01-06", "2025-01-13"], "revenue": [10.0, 12.0], "tv": [1.0, 2.0]})
    frame.to_csv(run.frame_file, index=False)
    draws = np.arange(8, dtype=float).reshape(2, 4, 1) / 10 + 0.1
    posterior = xr.Dataset(
        {
            "saturation_lam": (("chain", "draw", "channel"), draws),
            "channel_contribution": (("chain", "draw", "channel"), draws * 5),
        },
        coords={"chain": [0, 1], "draw": np.arange(4), "channel": ["tv"]},
    )
    constant = xr.Dataset({"channel_data": (("date", "channel"), [[1.0], [2.0]])}, coords={"channel": ["tv"]})
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant})
    tree.attrs["priors"] = "{}"
    tree.to_netcdf(run.posterior_file)
    return run


# --- names ----------------------------------------------------------------------------------------------------


def test_each_file_of_a_run_has_one_name(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r1")
    assert run.summary_file == tmp_path / "r1" / "summary.json"
    assert run.posterior_file == tmp_path / "r1" / "posterior.nc"
    assert run.config_file == tmp_path / "r1" / "config.yaml"
    assert run.frame_file == tmp_path / "r1" / "data.csv"
    assert run.notebook_file == tmp_path / "r1" / "fit.ipynb"
    assert run.log_file == tmp_path / "r1" / "fit.log"
    assert run.accepted_file == tmp_path / "r1" / "ACCEPTED"
    assert run.report_file() == tmp_path / "r1" / "report.html"
    assert run.report_file("csv") == tmp_path / "r1" / "report.csv"
    assert run.lift_tests_file(".xlsx") == tmp_path / "r1" / "lift_tests.xlsx"
    assert run.launch_log == tmp_path / "r1.launch.log"  # beside the run, not in it


def test_a_rundir_is_path_like_and_names_the_run_as_given(tmp_path: Path) -> None:
    given = f"{tmp_path}/runs/r1/"
    run = RunDir(given)
    assert str(run) == given and repr(run) == f"RunDir({given!r})"  # sentences quote what the user typed
    assert os.fspath(run) == str(tmp_path / "runs" / "r1") and Path(run) == run.path
    assert run / "x.txt" == tmp_path / "runs" / "r1" / "x.txt"
    assert run.name == "r1" and run.parent == tmp_path / "runs"
    assert run == RunDir(tmp_path / "runs" / "r1") and len({run, RunDir(run)}) == 1
    assert RunDir(tmp_path / "r1.failed-20260101T000000Z").is_failed and not run.is_failed


# --- loaders --------------------------------------------------------------------------------------------------


def test_the_loaders_read_the_runs_files(run: RunDir) -> None:
    assert run.summary()["run"]["id"] == "r1"
    config = run.config()
    assert config.channel_columns == ["tv"]
    frame = run.frame()
    assert pd.api.types.is_datetime64_any_dtype(frame["week"]) and frame["revenue"].tolist() == [10.0, 12.0]
    assert run.frame(config).equals(frame)
    tree = run.posterior(keep=lambda name: name.startswith("saturation_"), need=["saturation_"])
    assert list(tree["posterior"].data_vars) == ["saturation_lam"] and "constant_data" in tree.children
    assert tree.attrs["priors"] == "{}"


def test_the_loaders_keep_their_sentences_for_missing_and_damaged_files(run: RunDir, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"posterior.nc\) is damaged or incomplete: it lacks y_sigma"):
        run.posterior(need=["y_sigma"])
    with pytest.raises(InputError, match=r"reading it failed \(KeyError: 'nope'\)"), run.reading():
        {}["nope"]
    run.summary_file.write_text(json.dumps({**_summary(), "channels": []}))
    with pytest.raises(InputError, match=rf"^The summary of run {run} \(summary.json\) is damaged"):
        run.summary()
    run.posterior_file.write_bytes(b"not netCDF at all")
    with pytest.raises(InputError, match=r"the file is truncated, empty or not netCDF"):
        run.posterior()
    empty = RunDir(tmp_path / "empty")
    with pytest.raises(UsageError, match=r"is not a run directory \(no summary.json\)"):
        empty.summary()
    with pytest.raises(UsageError, match=r"is not a complete run \(no posterior.nc\)"):
        empty.posterior()
    with pytest.raises(UsageError, match=r"Config file .* does not exist"):
        empty.config()


# --- state ----------------------------------------------------------------------------------------------------


def test_a_run_being_fitted_is_staging(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    assert run.state.phase == "running" and not run.state.staging  # launched, nothing written yet
    staging = run.stage()
    assert staging.name.startswith(".r1.tmp-") and staging.parent == run.parent
    staging.log_file.write_text("sampling\n\nchain 1 done\n")
    run.launch_log.write_text("Fitting (quick mode)\n")
    state = run.state
    assert state.phase == "running" and not state.complete and not state.failed
    assert state.staging == (staging.path,)
    assert state.log_lines == ("Fitting (quick mode)", "sampling", "chain 1 done")


def test_a_failed_attempt_is_kept_beside_the_run_and_read_as_failed(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    staging = run.stage()
    staging.write_summary(_summary())  # even a summary written before the failure never makes it a run
    failed = run.keep_failed(staging)
    assert failed.is_failed and failed.parent == run.parent and not failed.complete
    state = run.state
    assert state.phase == "failed" and state.failed == (failed.path,) and not state.staging
    assert not run.path.exists()


def test_a_launch_that_could_not_start_is_failed(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    run.parent.mkdir(parents=True)
    run.launch_log.write_text("mmm: Config file c.yaml does not exist.\n")
    assert run.state.phase == "failed" and run.state.log_lines[-1].startswith("mmm: Config file")


def test_a_published_run_is_done_and_accepted_once_reviewed(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    staging = run.stage()
    staging.write_summary(_summary(status="warning"))
    assert run.publish(staging) is run
    state = run.state
    assert state.phase == "done" and state.complete and not state.accepted and not state.staging
    run.accept("analyst")
    assert run.state.accepted and run.accepted
    assert json.loads(run.accepted_file.read_text())["status_when_accepted"] == "warning"
    info = runs.read_run_info(run.path, "acme")
    assert info is not None and info.accepted and info.published


# --- the atomic write -----------------------------------------------------------------------------------------


def test_publishing_replaces_the_run_whole_and_refuses_an_unfinished_one(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    first = run.stage()
    first.write_summary(_summary("first"))
    (first / "old.txt").write_text("old")
    run.publish(first)
    unfinished = run.stage()
    (unfinished / "posterior.part").write_text("half")
    with pytest.raises(RuntimeError, match=r"without summary\.json"):
        run.publish(unfinished)
    assert run.summary()["run"]["id"] == "first" and (run / "old.txt").exists()  # the good run is untouched
    second = run.stage()  # the unfinished attempt's process is alive (this one): it is left alone
    assert unfinished.path.exists()
    second.write_summary(_summary("second"))
    run.publish(second)
    assert run.summary()["run"]["id"] == "second" and not (run / "old.txt").exists()
    assert not second.path.exists()
    assert sorted(p.name for p in run.parent.iterdir()) == sorted(["r1", unfinished.name])


def test_a_write_cut_short_leaves_no_half_written_file(run: RunDir, monkeypatch: pytest.MonkeyPatch) -> None:
    before = run.summary_file.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run.write_summary(_summary("newer"))
    monkeypatch.undo()
    assert run.summary_file.read_bytes() == before  # the old summary, whole
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml", "data.csv", "posterior.nc", "summary.json"]
    with pytest.raises(ValueError):  # not JSON (NaN): refused before any file is opened
        run.write_summary({**_summary(), "r2": float("nan")})
    assert run.summary_file.read_bytes() == before


def test_the_new_model_page_reads_its_progress_from_the_run_state(tmp_path: Path) -> None:
    from mmmlib.widgets.new_model import fit_progress

    run = RunDir(tmp_path / "runs" / "r1")
    staging = run.stage()
    run.launch_log.write_text("Kernel is running over TCP\nFitting (quick mode)\n")
    staging.log_file.write_text("".join(f"line {i}\n" for i in range(6)))
    assert fit_progress(run.path) == ("running", "line 2\nline 3\nline 4\nline 5")
    with open(staging.log_file, "a") as fh:
        fh.write("FAILED: the data has no rows.\n")
    run.keep_failed(staging)
    assert fit_progress(run.path) == ("failed", "Fitting (quick mode)")  # the kept attempt's log is not read
    again = run.stage()
    again.write_summary(_summary())
    run.publish(again)
    assert fit_progress(run.path) == ("done", "")
