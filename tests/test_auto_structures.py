"""A real fit with ``adstock: auto``, ``saturation: auto``: every candidate sampled, weighed out of sample and
combined, and every consumer of the run (summary, optimiser, forecast, quality view) working on the mixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from mmmlib import structures

pytestmark = pytest.mark.slow  # fits every candidate structure: not in make test-fast


def mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("auto-data")
    assert mmm("synth", "--out", str(data), "--weeks", "104", "--channels", "2", "--seed", "7").returncode == 0
    config = (data / "config.yaml").read_text()
    config = config.replace("adstock: geometric", "adstock: auto").replace("saturation: logistic", "saturation: auto")
    config = config.replace("holdout_periods: 0", "holdout_periods: 8")  # predicted by the candidates' workers
    # the seasonality's order chosen too: the first candidate is also fitted with 4 harmonics beside the four, and
    # that fit with the order not kept joins the candidates
    config = config.replace("yearly_seasonality: 2", "yearly_seasonality: auto")
    (data / "config.yaml").write_text(config)
    run = tmp_path_factory.mktemp("auto-store") / "clients" / "acme" / "runs" / "auto"
    steps = ["--tune", "300", "--draws", "300"]  # what is tested is the four candidates' plumbing, not the ESS rule
    fit = mmm("fit", str(data / "data.csv"), "--config", str(data / "config.yaml"), "--out", str(run), "--seed", "2",
              *steps)  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    (run.parents[3] / "fit-stdout.txt").write_text(fit.stdout)  # beside the store, not in it
    return run


def test_every_candidate_is_fitted_scored_and_weighed(auto_run: Path) -> None:
    summary = json.loads((auto_run / "summary.json").read_text())
    model = summary["model"]
    assert model["selection"] == "weighted"
    names = [(c["adstock"], c["saturation"], c.get("yearly_seasonality")) for c in model["candidates"]]
    kept, other = model["seasonality"]["order"], 6 - model["seasonality"]["order"]  # of 2 and 4
    four = [(a, s, None) for a in structures.AUTO_ADSTOCKS for s in structures.AUTO_SATURATIONS]
    assert names == [*four, ("geometric", "logistic", other)]  # the first with the order not kept joins them
    assert kept in (2, 4)
    assert sum(c["weight"] for c in model["candidates"]) == pytest.approx(1.0, abs=1e-3)
    assert 0 <= summary["diagnostics"]["holdout_mape"] < 1  # held-out weeks predicted by the candidates' workers
    for c in model["candidates"]:
        assert np.isfinite(c["elpd_loo"]) and c["elpd_se"] > 0 and c["p_loo"] > 0
        assert c["baseline"] == "changepoints"
    for ch in summary["channels"]:
        assert isinstance(ch["identified"], bool)
        assert ch["identification"]["prior_sd"] is not None  # the prior's ROAS, from the fit's prior group
        r = ch["roas"]
        assert 0 <= r["hdi_low"] <= r["mean"] <= r["hdi_high"]


def test_the_seasonality_order_is_chosen_and_every_candidate_has_it(auto_run: Path) -> None:
    summary = json.loads((auto_run / "summary.json").read_text())
    choice = summary["model"]["seasonality"]
    assert choice["order"] in (2, 4) and [o["order"] for o in choice["orders"]] == [2, 4]
    assert all(o["elpd_loo"] is not None for o in choice["orders"])
    kept_ahead = choice["elpd_diff"] > 4 and choice["elpd_diff"] > 2 * choice["diff_se"]
    assert (choice["order"] == 4) == kept_ahead
    candidates = summary["model"]["candidates"]
    assert len(candidates) == 5 and candidates[4]["yearly_seasonality"] != choice["order"]
    assert choice["joined"] == {
        "name": candidates[4]["name"],
        "order": 6 - choice["order"],
        "weight": candidates[4]["weight"],
    }
    post = xr.open_datatree(auto_run / "posterior.nc")
    # the mixture has the Fourier terms of every order it holds draws of; a draw's missing terms are zero
    held = [c.get("yearly_seasonality", choice["order"]) for c in candidates if c["draws_per_chain"] > 0]
    fourier = post["posterior"]["gamma_fourier"]
    assert fourier.sizes["fourier_mode"] == 2 * max(held) and not np.isnan(fourier.values).any()
    stdout = (auto_run.parents[3] / "fit-stdout.txt").read_text()
    assert f"Yearly seasonality: {choice['order']} harmonics" in stdout
    assert f"geometric+logistic with {6 - choice['order']} harmonics " in stdout


def test_mmm_fit_says_how_the_structures_were_weighed(auto_run: Path) -> None:
    said = (auto_run.parents[3] / "fit-stdout.txt").read_text()
    assert "Structures weighed out of sample (PSIS-LOO, pseudo-BMA+): geometric+logistic " in said


def test_the_posterior_is_the_weighted_mixture_of_candidates(auto_run: Path) -> None:
    summary = json.loads((auto_run / "summary.json").read_text())
    tree = xr.open_datatree(auto_run / "posterior.nc")
    post = tree["posterior"]
    index = post["structure"].values
    chains, draws = index.shape
    for k, c in enumerate(summary["model"]["candidates"]):
        assert (index == k).sum() == chains * c["draws_per_chain"]
        assert abs(c["draws_per_chain"] - c["weight"] * draws) <= 1
    hill = post["saturation_family"].values == structures.SATURATIONS.index("hill")
    kappa = post["saturation_kappa"].values[..., 0]
    assert np.isfinite(kappa[hill]).all() and np.isnan(kappa[~hill]).all()
    assert "prior" in tree.children and "log_likelihood" not in tree.children


def test_optimiser_forecast_and_quality_view_work_on_the_mixture(auto_run: Path) -> None:
    summary = json.loads((auto_run / "summary.json").read_text())
    budget = sum(ch["spend"] for ch in summary["channels"]) / summary["period"]["periods"]
    opt = mmm("optimize", str(auto_run), "--budget", f"{budget:.2f}", "--json")
    assert opt.returncode == 0, opt.stderr
    result = json.loads(opt.stdout)
    total = result["expected_total_contribution"]
    assert 0 <= total["hdi_low"] <= total["mean"] <= total["hdi_high"]
    fc = mmm("forecast", str(auto_run), "--periods", "8", "--json")
    assert fc.returncode == 0, fc.stderr
    from mmmlib.widgets.quality import structures_table

    shown = structures_table(summary).value
    assert shown.count("changepoints") == len(summary["model"]["candidates"])


def test_each_candidates_roas_is_recorded_and_the_combined_mean_is_their_weighted_mean(auto_run: Path) -> None:
    summary = json.loads((auto_run / "summary.json").read_text())
    candidates = summary["model"]["candidates"]
    for ch in summary["channels"]:
        means = []
        for c in candidates:
            r = c["roas"][ch["name"]]
            assert 0 <= r["hdi_low"] <= r["mean"] <= r["hdi_high"]
            means.append(r["mean"])
        mixed = sum(c["weight"] * m for c, m in zip(candidates, means, strict=True))
        combined = ch["roas"]
        # the mixture holds a weight-sized share of each candidate's draws: its mean is their weighted mean up to
        # Monte Carlo error, far inside its interval
        assert abs(combined["mean"] - mixed) <= 0.25 * (combined["hdi_high"] - combined["hdi_low"])
    from mmmlib.widgets.quality import structure_roas_table

    table = structure_roas_table(summary)
    assert table is not None
    assert all(ch["label"] in table.value for ch in summary["channels"])
    assert table.value.count("weight ") == len(candidates)
