"""Forecasting a spend plan from the posterior, and budget scenarios (frontier, largest worthwhile budget)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib.analysis import stacked
from mmmlib.forecast import load_forecaster, media, seasonality
from mmmlib.optimize import frontier, largest_budget_with_marginal
from mmmlib.runs import load_posterior
from tests.test_optimize import mm_curves


def test_forecaster_reproduces_the_posterior_mean(synth_run: dict) -> None:
    fc = load_forecaster(synth_run["run_dir"])
    ours = fc.reproduce_fit()
    full = load_posterior(synth_run["run_dir"])  # the forecaster reads only what it adds up; mu is the check
    theirs = stacked(full, "mu") * fc.post.target_scale
    assert ours == pytest.approx(theirs, rel=1e-6)
    season = stacked(full, "yearly_seasonality_contribution")
    assert seasonality(fc.post, fc.post.dates) == pytest.approx(season, rel=1e-6, abs=1e-12)


def test_a_run_fitted_with_uncentred_changepoints_still_forecasts_its_own_trend(synth_run: dict) -> None:
    """The hinges are centred since 2026-12-02; a run fitted before stored them uncentred, and its coefficients
    belong to those columns: its forecasts continue the columns it stored, not today's."""
    fc = load_forecaster(synth_run["run_dir"])
    const = fc.post.idata["constant_data"].to_dataset()
    controls = [str(c) for c in const["control"].values]
    hinges = [c for c in controls if c.startswith("trend_cp")]
    assert hinges and fc._stored_trend_shift(len(fc.frame)) == pytest.approx(dict.fromkeys(["trend", *hinges], 0.0))
    base = fc.reproduce_fit()
    shift = np.array([0.1 * (k + 1) for k in range(len(hinges))])
    stored = const["control_data"].copy()
    for name, d in zip(hinges, shift, strict=True):
        stored.loc[{"control": name}] = stored.sel(control=name) + d
    fc.post.idata["constant_data"] = const.assign(control_data=stored)
    gamma = stacked(fc.post.idata, "gamma_control")[:, [controls.index(h) for h in hinges]]
    expected = base + (gamma @ shift)[:, None] * fc.post.target_scale
    assert fc.reproduce_fit() == pytest.approx(expected, rel=1e-6)


def test_carry_over_runs_into_the_plan(synth_run: dict) -> None:
    fc = load_forecaster(synth_run["run_dir"])
    history = np.full((20, len(fc.config.channel_columns)), 1000.0)
    effect = media(fc.post, history, np.zeros((10, history.shape[1])), fc.config.adstock_max_lag).mean(axis=0)
    assert (effect[0] > 0).all()  # last weeks' spend still works in the first planned week
    assert np.allclose(effect[fc.config.adstock_max_lag - 1 :], 0.0)  # and is gone after l_max periods


def test_cli_forecast_compares_two_plans(synth_run: dict, tmp_path: Path) -> None:
    run = synth_run["run_dir"]
    channels = load_forecaster(run).config.channel_columns
    base = pd.DataFrame({c: [1000.0] * 8 for c in channels})
    more = base.copy()
    more[channels[0]] *= 2
    base.to_csv(tmp_path / "base.csv", index=False)
    more.to_csv(tmp_path / "more.csv", index=False)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmmlib",
            "forecast",
            str(run),
            "--plan",
            str(tmp_path / "base.csv"),
            "--plan",
            str(tmp_path / "more.csv"),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["plans"]) == {"base", "more"} and result["plans"]["base"]["periods"] == 8
    period = result["plans"]["base"]["per_period"][0]
    assert (
        period["predictive_low"] < period["hdi_low"] <= period["mean"] <= period["hdi_high"] < period["predictive_high"]
    )
    diff = result["difference"]["total_kpi"]
    assert diff["hdi_low"] > 0  # more spend on a channel with a positive effect sells more
    bad = base.copy()
    bad.loc[3, channels[1]] = -5
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = subprocess.run(
        [sys.executable, "-m", "mmmlib", "forecast", str(run), "--plan", str(tmp_path / "bad.csv")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and f"Row 5, column {channels[1]}" in out.stderr


def test_frontier_is_increasing_with_falling_marginal_returns() -> None:
    curves = mm_curves([100.0, 60.0, 30.0], [20.0, 10.0, 5.0])
    points = frontier(curves, -30, 50, 5)
    values = [p["expected_contribution"]["mean"] for p in points]
    marginals = [p["marginal_roas"] for p in points]
    assert values == sorted(values) and marginals == sorted(marginals, reverse=True)
    assert [round(p["change_pct"]) for p in points] == [-30, -10, 10, 30, 50]


def test_the_frontiers_marginal_return_is_the_shadow_price_in_closed_form() -> None:
    """Michaelis-Menten curves a x / (l + x): at the optimum every channel returns the same at the margin,
    a l / (l + x)^2 = m, so m = (sum sqrt(a l) / (budget + sum l))^2 exactly; a channel held fixed drops out."""
    alpha, lam = np.array([100.0, 60.0, 30.0]), np.array([20.0, 10.0, 5.0])
    curves = mm_curves(list(alpha), list(lam))
    for point in frontier(curves, -30, 50, 5):
        expected = (np.sqrt(alpha * lam).sum() / (point["budget"] + lam.sum())) ** 2
        assert point["marginal_roas"] == pytest.approx(expected, rel=1e-6)
    held = curves.current[2]
    for point in frontier(curves, -30, 50, 3, bounds=[f"{curves.channels[2]}=fixed"]):
        free = point["budget"] - held
        expected = (np.sqrt(alpha[:2] * lam[:2]).sum() / (free + lam[:2].sum())) ** 2
        assert point["marginal_roas"] == pytest.approx(expected, rel=1e-6)


def test_a_split_that_is_not_optimal_has_no_shadow_price_and_the_difference_quotient_is_used() -> None:
    from mmmlib.optimize import marginal_of, shadow_price

    alpha, lam = np.array([100.0, 60.0, 30.0]), np.array([20.0, 10.0, 5.0])
    curves = mm_curves(list(alpha), list(lam))
    lower, upper = np.zeros(3), np.full(3, np.inf)
    lopsided = np.array([30.0, 0.0, 0.0])  # the idle channels return more at the margin than the one spending
    assert shadow_price(curves, lopsided, lower, upper) is None
    expected = (np.sqrt(alpha * lam).sum() / (30.0 + lam.sum())) ** 2
    assert marginal_of(curves, lopsided, 30.0, lower, upper) == pytest.approx(expected, rel=1e-3)


def test_largest_budget_for_a_marginal_return_matches_closed_form() -> None:
    alpha, lam = np.array([100.0, 60.0, 30.0]), np.array([20.0, 10.0, 5.0])
    curves = mm_curves(list(alpha), list(lam))
    mu = 0.5
    expected = np.sqrt(alpha * lam).sum() / np.sqrt(mu) - lam.sum()  # where the shadow price equals mu
    found = largest_budget_with_marginal(curves, mu)
    assert found["budget"] == pytest.approx(expected, rel=1e-3)
    assert largest_budget_with_marginal(curves, 1e6)["budget"] is None
