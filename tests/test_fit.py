"""A real quick fit end to end (papermill → pymc-marketing → run directory), and the failure paths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import xarray as xr

from mmmlib.runs import load_summary
from mmmlib.store import list_runs


def mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)


def test_run_directory_is_complete(synth_run: dict) -> None:
    run = synth_run["run_dir"]
    assert {p.name for p in run.iterdir()} >= {
        "summary.json",
        "posterior.nc",
        "config.yaml",
        "data.csv",
        "fit.ipynb",
        "fit.log",
    }
    summary = load_summary(run)
    assert summary["schema_version"] == 1 and summary["status"] in {"ok", "warning"}
    assert summary["hdi_prob"] == 0.94
    assert summary["run"]["mode"] == "quick" and summary["run"]["chains"] == 2
    post = xr.open_datatree(run / "posterior.nc")
    assert "channel_contribution" in post["posterior"].data_vars
    nb = nbformat.read(run / "fit.ipynb", as_version=4)
    assert any("papermill" in str(c.metadata) or "injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "Fit " in synth_run["stdout"]


def test_holdout_and_lift_tests_are_used(synth_run: dict) -> None:
    run = synth_run["run_dir"]
    summary = load_summary(run)
    assert summary["period"]["periods"] == 104 - 8  # the last 8 weeks were held out of the fit
    assert summary["diagnostics"]["holdout_mape"] is not None and summary["diagnostics"]["holdout_mape"] < 0.15
    log = (run / "fit.log").read_text()
    assert "calibrating with 1 lift tests" in log and "held-out MAPE" in log
    assert (run / "lift_tests.csv").is_file()
    post = xr.open_datatree(run / "posterior.nc")
    assert "lift_measurements" in post["observed_data"].data_vars


def test_fit_recovers_truth_loosely(synth_run: dict) -> None:
    summary = load_summary(synth_run["run_dir"])
    truth = {c["name"]: c for c in synth_run["truth"]["channels"]}
    covered = close = 0
    for ch in summary["channels"]:
        true_roas = truth[ch["name"]]["roas"]
        covered += ch["roas"]["hdi_low"] <= true_roas <= ch["roas"]["hdi_high"]
        close += abs(ch["roas"]["mean"] - true_roas) / true_roas < 0.5
    assert covered >= 2 and close >= 2, summary["channels"]
    d = summary["diagnostics"]
    assert d["r_hat_max"] < 1.1 and d["r2"] > 0.8 and d["mape"] < 0.1
    shares = sum(c["share"]["mean"] for c in summary["channels"])
    assert abs(shares - 1) < 1e-6


def test_summary_numbers_have_intervals_in_order(synth_run: dict) -> None:
    summary = load_summary(synth_run["run_dir"])
    for ch in summary["channels"]:
        for key in ("contribution", "share", "roas", "mroas"):
            iv = ch[key]
            assert iv["hdi_low"] <= iv["mean"] <= iv["hdi_high"], (ch["name"], key, iv)
    assert summary["recommendations"][0].startswith("Model health:")


def test_runs_command_lists_the_fit(synth_run: dict) -> None:
    root = synth_run["run_dir"].parents[3]
    runs = list_runs(root=root)
    assert [r.path for r in runs] == [synth_run["run_dir"]]


def test_bad_data_fails_and_keeps_the_good_run(synth_run: dict, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r"
    shutil.copytree(synth_run["run_dir"], run)
    before = (run / "summary.json").read_bytes()
    bad = tmp_path / "bad.csv"
    text = (synth_run["data_dir"] / "data.csv").read_text().splitlines()
    text[5] = text[5].replace(text[5].split(",")[2], "oops", 1)
    bad.write_text("\n".join(text) + "\n")
    out = mmm("fit", str(bad), "--config", str(synth_run["data_dir"] / "config.yaml"), "--out", str(run))
    assert out.returncode == 1
    assert "Row 6" in out.stderr and "Traceback" not in out.stderr
    assert (run / "summary.json").read_bytes() == before
    failed = list(run.parent.glob("r.failed-*"))
    assert len(failed) == 1 and "Row 6" in (failed[0] / "fit.log").read_text()
    assert not list(run.parent.glob(".r.tmp-*"))


def test_failure_inside_the_notebook_keeps_the_executed_notebook(synth_run: dict, tmp_path: Path) -> None:
    """A model that cannot be built fails in the kernel: exit 1, nothing published, the attempt kept."""
    config = (
        (synth_run["data_dir"] / "config.yaml")
        .read_text()
        .replace("priors: {}", "priors:\n  saturation_beta: {dist: NoSuchDistribution, sigma: 1}")
    )
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config)
    run = tmp_path / "runs" / "r"
    out = mmm("fit", str(synth_run["data_dir"] / "data.csv"), "--config", str(cfg), "--out", str(run))
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("mmm: The fit failed:") and "Traceback" not in out.stderr
    assert not run.exists()
    failed = next(run.parent.glob("r.failed-*"))
    assert (failed / "fit.ipynb").is_file() and not (failed / "summary.json").exists()
    executed = json.loads((failed / "fit.ipynb").read_text())
    assert any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))


def test_same_seed_same_posterior(synth_run: dict, tmp_path: Path) -> None:
    """`--seed` makes a fit reproducible: two fits of the same data, config and seed give the same numbers.

    Both refits follow the shared fit of this data, so both find its compiled kernels cached: the first fit
    after a cold compile can differ from cached runs in the last digits (see README, reproducibility).
    """
    summaries = []
    for name in ("a", "b"):
        out = mmm(
            "fit",
            str(synth_run["data_dir"] / "data.csv"),
            "--config",
            str(synth_run["data_dir"] / "config.yaml"),
            "--out",
            str(tmp_path / name),
            "--mode",
            "quick",
            "--seed",
            "7",
        )
        assert out.returncode == 0, out.stderr[-2000:]
        summaries.append(load_summary(tmp_path / name))
    first, second = summaries
    assert [c["roas"] for c in first["channels"]] == [c["roas"] for c in second["channels"]]
    assert first["diagnostics"]["r_hat_max"] == second["diagnostics"]["r_hat_max"]
