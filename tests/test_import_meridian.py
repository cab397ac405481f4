"""`mmm import meridian`: a Google Meridian model, fitted and saved in Meridian's own environment, becomes a run.

A tiny Meridian model is fitted for real on Meridian's own sample data (tests/meridian_tiny_fit.py, in
``.venv-meridian``, which ``make test`` builds) and saved both ways; the runs' numbers are checked against what
Meridian's Analyzer said in that environment (``meridian_reference.json``), never against our converter's output.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmmlib import analysis, meridian_runner
from mmmlib.forecast import media
from mmmlib.runs import RunDir
from tests.conftest import run_side_by_side

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow  # Meridian fits and conversions in their own environment


def _mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="session")
def meridian_python() -> Path:
    try:
        return meridian_runner.python()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Meridian's environment is missing (make test builds it): {exc}")
        pytest.skip(f"Meridian's environment is not installed: {exc}")


def _meridian_env(public_data: Path | None = None) -> dict[str, str]:
    """The environment of Meridian's interpreter: nothing of ours leaking into it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MPLBACKEND"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if public_data is not None:
        env["MMM_PUBLIC_DATA"] = str(public_data)
    return env


@pytest.fixture(scope="session")
def meridian_fitted(meridian_python: Path, public_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny national and a tiny geo-level Meridian model (5 of its sample geos), fitted side by side in
    Meridian's environment and saved with save_mmm and save_meridian; then imported, side by side: the national
    one from each of its two files, the geo one from its .binpb."""
    national, geo = tmp_path_factory.mktemp("meridian-user"), tmp_path_factory.mktemp("meridian-geo-user")
    fit = [str(meridian_python), "-I", str(HERE / "meridian_tiny_fit.py")]
    env = _meridian_env(public_data)
    run_side_by_side([[*fit, str(national)], [*fit, str(geo), "--geo"]], env)
    base = tmp_path_factory.mktemp("meridian-runs")
    runs = {name: base / name.replace(".", "_") for name in ("model.binpb", "saved_mmm.pkl")}
    ours = [sys.executable, "-m", "mmmlib", "import", "meridian"]
    imports = [[*ours, str(national / n), "--out", str(run), "--client", "acme"] for n, run in runs.items()]
    run_side_by_side([*imports, [*ours, str(geo / "model.binpb"), "--out", str(geo / "run")]])
    return {"national": national, "geo": geo, "runs": runs}


@pytest.fixture(scope="session")
def meridian_model(meridian_fitted: dict) -> Path:
    """The tiny national Meridian model's folder: its two saved files and Meridian's own numbers."""
    return meridian_fitted["national"]


@pytest.fixture(scope="session")
def meridian_runs(meridian_fitted: dict, meridian_model: Path) -> dict:
    """The model imported from each of its two files."""
    reference = json.loads((meridian_model / "meridian_reference.json").read_text())
    return {"runs": meridian_fitted["runs"], "reference": reference}


@pytest.fixture(scope="session")
def meridian_geo_run(meridian_fitted: dict) -> dict:
    """The tiny geo-level Meridian model, imported."""
    geo = meridian_fitted["geo"]
    return {"run_dir": geo / "run", "reference": json.loads((geo / "meridian_reference.json").read_text())}


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("name", ["model.binpb", "saved_mmm.pkl"])
def test_roi_is_meridians_own_with_our_interval(meridian_runs: dict, name: str) -> None:
    summary, ref = _summary(meridian_runs["runs"][name]), meridian_runs["reference"]
    assert summary["source"] == "meridian" and summary["source_version"] == "2.1.0"
    assert summary["kpi_type"] == "count" and summary["revenue_per_kpi"] > 0  # conversions valued at revenue
    for row in summary["channels"]:
        draws = np.asarray(ref["roi_draws"][row["name"]])
        assert row["roas"]["mean"] == pytest.approx(ref["roi_mean"][row["name"]], rel=0.005)
        low, high = analysis.hdi(draws, summary["hdi_prob"])
        assert (row["roas"]["hdi_low"], row["roas"]["hdi_high"]) == pytest.approx((float(low), float(high)))
    assert (meridian_runs["runs"][name] / "meridian" / "exchange.json").is_file()  # the conversion's record


def test_both_saved_forms_give_the_same_run(meridian_runs: dict) -> None:
    a, b = (_summary(meridian_runs["runs"][n]) for n in ("model.binpb", "saved_mmm.pkl"))
    for x, y in zip(a["channels"], b["channels"], strict=True):
        assert x["roas"] == pytest.approx(y["roas"]) and x["contribution"] == pytest.approx(y["contribution"])


def test_a_poorly_converged_meridian_model_gets_no_advice(meridian_runs: dict) -> None:
    summary = _summary(meridian_runs["runs"]["model.binpb"])
    assert summary["status"] == "warning" and summary["diagnostics"]["ess_bulk_min"] < 400
    assert summary["recommendations"] == [summary["recommendations"][0]]
    assert "Do not move budget" in summary["recommendations"][0] and "in Meridian" in summary["recommendations"][0]
    assert summary["source_review"]["checks"]  # Meridian's own model review, kept beside ours


def test_our_curves_match_meridians_response_curves(meridian_runs: dict) -> None:
    """Total incremental KPI with each channel's historical media scaled by 0–2, from the imported parameters with
    our own carry-over and returns formulas, against Meridian's Analyzer.response_curves: within 1 %."""
    run = RunDir(meridian_runs["runs"]["model.binpb"])
    post = analysis.Posterior.from_idata(run.posterior(), hdi_prob=0.9)
    curves = meridian_runs["reference"]["response_curves"]
    l_max = run.config().adstock_max_lag
    for k, m in enumerate(curves["spend_multipliers"]):
        ours = media(post, post.spend[:0], post.spend * m, l_max).sum(axis=1).mean(axis=0) * post.target_scale
        for j, ch in enumerate(post.channels):
            theirs = curves["incremental_kpi_mean"][ch][k]
            assert ours[j] == pytest.approx(theirs, rel=0.01, abs=1e-6 * max(1.0, abs(theirs))), (ch, m)


def test_forecasts_say_they_are_media_only(meridian_runs: dict) -> None:
    run_dir = str(meridian_runs["runs"]["model.binpb"])
    done = _mmm("forecast", run_dir, "--periods", "4")
    assert done.returncode == 0, done.stderr
    assert "Media contribution only" in done.stdout
    done = _mmm("forecast", run_dir, "--periods", "4", "--json")
    assert json.loads(done.stdout)["media_only"] is True


def test_the_optimiser_allocates_on_meridians_curves(meridian_runs: dict) -> None:
    run_dir = str(meridian_runs["runs"]["model.binpb"])
    bounds = [f"Channel{i}=0:400000" for i in range(4)]
    done = _mmm("optimize", run_dir, "--budget", "600000", "--bounds", *bounds, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sum(c["optimal_spend"] for c in result["channels"]) == pytest.approx(600000, rel=1e-6)


def test_our_allocation_scores_within_1_percent_of_meridians_optimum(
    meridian_runs: dict, meridian_model: Path, meridian_python: Path, tmp_path: Path
) -> None:
    """The same budget and box as Meridian's BudgetOptimizer defaults (the historical total, each channel within
    ±30 % of its historical spend): our optimiser's split, scored by Meridian's own Analyzer, is within 1 % of the
    outcome Meridian's optimizer finds."""
    import pandas as pd

    run = meridian_runs["runs"]["model.binpb"]
    frame = pd.read_csv(run / "data.csv")
    channels = [c["name"] for c in _summary(run)["channels"]]
    per_period = frame[channels].sum() / len(frame)
    bounds = [f"{c}={0.7 * per_period[c]:.6f}:{1.3 * per_period[c]:.6f}" for c in channels]
    done = _mmm("optimize", str(run), "--budget", f"{per_period.sum():.6f}", "--bounds", *bounds, "--json")
    assert done.returncode == 0, done.stderr
    spend = {c["name"]: c["optimal_spend"] for c in json.loads(done.stdout)["channels"]}
    split = tmp_path / "split.json"
    budget = float(frame[channels].to_numpy().sum())
    split.write_text(json.dumps({"budget": budget, "shares": {c: spend[c] / sum(spend.values()) for c in channels}}))
    scored = tmp_path / "scored.json"
    env = _meridian_env()
    done = subprocess.run(
        [
            str(meridian_python),
            "-I",
            str(HERE / "meridian_optimum.py"),
            str(meridian_model / "model.binpb"),
            split,
            scored,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(scored.read_text())
    assert result["ours_outcome"] >= 0.99 * result["meridian_optimal_outcome"], result


def test_executive_dashboard_opens_a_meridian_run(meridian_runs: dict, browser, tmp_path: Path) -> None:
    from tests.conftest import ARTIFACTS, executive_page

    with executive_page(browser, meridian_runs["runs"]["model.binpb"], tmp_path) as page:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_imported_meridian.png"), full_page=True)
        body = page.inner_text("body")
    assert "imported from Meridian 2.1.0" in body
    assert body.index("Model health") < body.index("Recommendations")


def test_a_geo_model_imports_nationally_and_per_geo(meridian_geo_run: dict) -> None:
    summary, ref = _summary(meridian_geo_run["run_dir"]), meridian_geo_run["reference"]
    # the tiny fit mixes only roughly (max R-hat 1.04-1.10 over seeds): imported, below Meridian's own 1.2, as a
    # warning run with no advice; a converged one would be "ok"
    rhat = summary["diagnostics"]["r_hat_max"]
    assert rhat <= 1.2
    if rhat > 1.01:
        assert summary["status"] == "warning" and "Do not move budget" in summary["recommendations"][0]
    for row in summary["channels"]:
        assert row["roas"]["mean"] == pytest.approx(ref["roi_mean"][row["name"]], rel=0.005)
        total = ref["response_curves"]["incremental_kpi_mean"][row["name"]][2]  # multiplier 1: the data as it was
        assert row["contribution"]["mean"] == pytest.approx(total, rel=1e-6)
    assert sorted(g["name"] for g in summary["geos"]) == sorted(ref["geos"])
    for j, row in enumerate(summary["channels"]):
        per_geo = sum(g["channels"][j]["contribution"]["mean"] for g in summary["geos"])
        assert per_geo == pytest.approx(row["contribution"]["mean"], rel=1e-6)
    done = _mmm("forecast", str(meridian_geo_run["run_dir"]), "--periods", "4", "--geo", ref["geos"][0], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["media_only"] is True
    assert (meridian_geo_run["run_dir"] / "geo_data.csv").is_file()


class _Payload:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.canary}",))


def test_a_pickle_that_would_run_code_is_refused_by_the_converter(meridian_python: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    evil = tmp_path / "saved_mmm.pkl"
    evil.write_bytes(pickle.dumps(_Payload(canary)))
    done = _mmm("import", "meridian", str(evil), "--out", str(tmp_path / "run"))
    assert done.returncode == 1
    assert "system" in done.stderr and "could run code" in done.stderr, done.stderr
    assert not canary.exists() and not (tmp_path / "run").exists()


def test_a_file_that_is_not_a_meridian_model_is_named(meridian_python: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.binpb"
    path.write_bytes(b"not a protocol buffer at all")
    done = _mmm("import", "meridian", str(path), "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and "model.binpb" in done.stderr, done.stderr


def test_root_runs_the_converter_as_nobody_on_a_copy(tmp_path: Path) -> None:
    """The scheduler runs as root; a model it re-imports is read by the converter as ``nobody``, never as root."""
    import pwd
    import shutil

    if os.geteuid() != 0:
        pytest.skip("only root hands the converter to nobody")
    model = tmp_path / "saved_mmm.pkl"
    model.write_bytes(b"uploaded bytes")
    env: dict[str, str] = {}
    identity, work, copy = meridian_runner._unprivileged(tmp_path / "out", model, env)
    try:
        nobody = pwd.getpwnam("nobody")
        assert identity["user"] == nobody.pw_uid and identity["group"] == nobody.pw_gid
        assert work.stat().st_uid == nobody.pw_uid and copy.stat().st_uid == nobody.pw_uid
        assert copy.name == model.name and copy.read_bytes() == b"uploaded bytes"
        assert env["HOME"] == str(work)
    finally:
        shutil.rmtree(work)
