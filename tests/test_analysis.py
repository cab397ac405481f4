"""Analysis functions on cases with hand-computable answers, and against pymc-marketing's own curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib import analysis
from mmmlib.insights import recommendations


def fake_idata(
    lam: np.ndarray,
    beta: np.ndarray,
    alpha: np.ndarray,
    spend: np.ndarray,
    target_scale: float = 1000.0,
    channel_scale: np.ndarray | None = None,
) -> xr.DataTree:
    """A DataTree shaped like pymc-marketing's: 1 chain, draws × channels of saturation/adstock parameters."""
    draws, channels = lam.shape
    dates = pd.date_range("2024-01-01", periods=spend.shape[0], freq="7D")
    names = [f"c{i}" for i in range(channels)]
    cs = channel_scale if channel_scale is not None else spend.max(axis=0)
    coords = {"chain": [0], "draw": np.arange(draws), "channel": names, "date": dates}
    contrib = (
        beta[:, None, :] * (1 - np.exp(-lam[:, None, :] * spend / cs)) / (1 + np.exp(-lam[:, None, :] * spend / cs))
    )
    posterior = xr.Dataset(
        {
            "saturation_lam": (("chain", "draw", "channel"), lam[None]),
            "saturation_beta": (("chain", "draw", "channel"), beta[None]),
            "adstock_alpha": (("chain", "draw", "channel"), alpha[None]),
            "channel_contribution": (("chain", "draw", "date", "channel"), contrib[None]),
            "mu": (("chain", "draw", "date"), contrib.sum(axis=2)[None] + 1.0),
            "intercept_contribution": (("chain", "draw"), np.ones((1, draws))),
        },
        coords=coords,
    )
    const = xr.Dataset(
        {
            "channel_data": (("date", "channel"), spend),
            "target_data": (("date",), (contrib.mean(axis=0).sum(axis=1) + 1.0) * target_scale),
            "target_scale": ((), target_scale),
            "channel_scale": (("channel",), cs),
        },
        coords={"date": dates, "channel": names},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "constant_data": const})


def test_hdi_of_a_uniform_sample() -> None:
    x = np.linspace(0, 1, 10001)
    low, high = analysis.hdi(x, 0.94)
    assert high - low == pytest.approx(0.94, abs=1e-3)
    iv = analysis.interval(np.r_[np.zeros(50), np.ones(950)])
    assert iv["hdi_low"] == 1.0 and iv["hdi_high"] == 1.0  # the mass sits at 1


def test_hdi_is_narrowest_for_a_skewed_sample() -> None:
    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, 200_000)
    low, high = analysis.hdi(x, 0.94)
    assert low == pytest.approx(0.0, abs=0.01)
    assert high == pytest.approx(-np.log(0.06), rel=0.02)  # HDI of Exp(1) is [0, -ln(1-p)]


def test_steady_state_response_and_marginal_roas_match_the_formula() -> None:
    lam, beta = np.array([[2.0, 0.5]]), np.array([[0.3, 0.1]])
    spend = np.tile([[100.0, 50.0]], (10, 1))
    spend[0] = [200.0, 100.0]  # channel scale = max = 200, 100
    post = analysis.Posterior.from_idata(fake_idata(lam, beta, np.full_like(lam, 0.5), spend))
    resp = analysis.steady_state_response(post, np.array([[100.0, 50.0]]))[0, 0]
    z = np.array([0.5, 0.5])
    expected = beta[0] * (1 - np.exp(-lam[0] * z)) / (1 + np.exp(-lam[0] * z)) * 1000
    assert resp == pytest.approx(expected, rel=1e-9)
    # d/dx beta*(1-e^-lz)/(1+e^-lz) with z = x/s: beta * 2 l e^-lz / (1+e^-lz)^2 / s
    e = np.exp(-lam[0] * z)
    analytic = beta[0] * 2 * lam[0] * e / (1 + e) ** 2 / np.array([200.0, 100.0]) * 1000
    m = analysis.marginal_roas(post, np.array([100.0, 50.0]))[0]
    assert m == pytest.approx(analytic, rel=1e-3)


@pytest.mark.slow  # imports PyMC: seconds
def test_response_matches_pymc_marketing_logistic_saturation() -> None:
    from pymc_marketing.mmm import LogisticSaturation

    lam, beta = np.array([[1.7]]), np.array([[0.4]])
    spend = np.linspace(0, 300, 20)[:, None]
    post = analysis.Posterior.from_idata(fake_idata(lam, beta, np.full_like(lam, 0.3), spend))
    grid = np.linspace(0, 400, 9)[:, None]
    ours = analysis.steady_state_response(post, grid)[0, :, 0]
    scaled = xr.DataArray(grid[:, 0] / 300.0, dims=("x",))
    theirs = LogisticSaturation().function(scaled, lam=1.7, beta=0.4).eval() * 1000
    assert ours == pytest.approx(np.asarray(theirs), rel=1e-9)


def test_adstock_weights_are_normalised_geometric() -> None:
    lam = np.ones((4, 1))
    post = analysis.Posterior.from_idata(fake_idata(lam, lam, np.full((4, 1), 0.5), np.ones((10, 1))))
    w = analysis.adstock_weights(post, 4)["c0"]["mean"]
    assert w == pytest.approx(np.array([1, 0.5, 0.25, 0.125]) / 1.875)


def test_response_curve_breakeven_is_where_marginal_roas_falls_to_one() -> None:
    lam, beta = np.array([[3.0]]), np.array([[0.5]])
    spend = np.full((60, 1), 100.0)
    post = analysis.Posterior.from_idata(fake_idata(lam, beta, np.full_like(lam, 0.2), spend, target_scale=1000.0))
    curve = analysis.response_curves(post, breakeven=1.0)[0]
    assert curve["current_spend"] == 100.0 and curve["spend"][-1] == pytest.approx(200.0)
    be = curve["breakeven_spend"]
    assert be is not None
    m = analysis.marginal_roas(post, np.array([be]))[0, 0]
    assert m == pytest.approx(1.0, abs=0.05)


def test_fit_quality_r2_and_mape() -> None:
    lam = np.ones((2, 1))
    post = analysis.Posterior.from_idata(fake_idata(lam, lam * 0.1, lam * 0.2, np.linspace(1, 10, 30)[:, None]))
    q = analysis.fit_quality(post)
    assert q["r2"] == pytest.approx(1.0) and q["mape"] == pytest.approx(0.0, abs=1e-12)


def test_status_thresholds() -> None:
    good = {"r_hat_max": 1.004, "ess_bulk_min": 900, "ess_tail_min": 700, "divergences": 0}
    assert analysis.status_of(good, "full") == ("ok", [])
    status, reasons = analysis.status_of({**good, "r_hat_max": 1.03, "divergences": 3}, "full")
    assert status == "warning" and len(reasons) == 2
    assert analysis.status_of({**good, "r_hat_max": 1.03}, "quick")[0] == "ok"
    status, reasons = analysis.status_of({**good, "r2": 0.35, "mape": 0.08}, "quick")
    assert status == "warning" and "35%" in reasons[0]
    assert analysis.status_of({**good, "r2": 0.9, "mape": 0.05, "holdout_mape": 0.4}, "quick")[0] == "warning"


def _crafted(status: str = "ok") -> dict:
    def iv(m: float, lo: float, hi: float) -> dict:
        return {"mean": m, "hdi_low": lo, "hdi_high": hi}

    return {
        "status": status,
        "status_reasons": [] if status == "ok" else ["max R-hat 1.080 is above 1.05 (chains disagree)"],
        "breakeven_roas": 1.0,
        "diagnostics": {"r_hat_max": 1.01, "ess_bulk_min": 800, "divergences": 0, "r2": 0.9, "mape": 0.05},
        "channels": [
            {
                "name": "tv",
                "label": "TV",
                "spend": 1e6,
                "contribution": iv(3e6, 2.5e6, 3.5e6),
                "roas": iv(3.0, 2.5, 3.5),
                "mroas": iv(0.4, 0.2, 0.7),
            },
            {
                "name": "search",
                "label": "Search",
                "spend": 5e5,
                "contribution": iv(1e6, 0.8e6, 1.2e6),
                "roas": iv(2.0, 1.6, 2.4),
                "mroas": iv(2.2, 1.5, 2.9),
            },
            {
                "name": "radio",
                "label": "Radio",
                "spend": 1e5,
                "contribution": iv(1e5, 0, 4e5),
                "roas": iv(1.0, 0.0, 4.0),
                "mroas": iv(0.9, 0.0, 3.5),
            },
        ],
    }


def test_recommendations_name_saturated_headroom_and_uncertain_channels() -> None:
    text = recommendations(_crafted())
    assert text[0].startswith("Model health: good")
    joined = "\n".join(text)
    assert "TV is past its saturation point" in joined
    assert "Search has headroom" in joined
    assert "Radio: not identified by this data" in joined
    assert "Shift budget from TV (marginal ROAS 0.40) to Search (marginal ROAS 2.20)" in joined


def test_recommendations_state_the_reallocation_and_its_gain() -> None:
    summary = _crafted()
    iv = lambda m, lo, hi: {"mean": m, "hdi_low": lo, "hdi_high": hi}  # noqa: E731
    summary["reallocation"] = {
        "budget": 30000.0,
        "limit_pct": 30,
        "expected_gain": iv(5200.0, 3100.0, 7000.0),
        "channels": [
            {"name": "tv", "change": -3000.0},
            {"name": "search", "change": 3000.0},
            {"name": "radio", "change": 0.0},
        ],
    }
    summary["reallocation"]["held"] = ["radio"]
    joined = "\n".join(recommendations(summary))
    assert "Search +3,000; TV -3,000 per period" in joined
    assert "Radio kept at today's spend (not identified)" in joined
    assert "Expected gain 5.2k per period (94% HDI 3.1k–7.0k)" in joined
    assert "Shift budget" not in joined  # the optimiser's move replaces the pairwise hint
    summary["reallocation"]["expected_gain"] = iv(100.0, -800.0, 900.0)
    assert "close to the best one" in "\n".join(recommendations(summary))


def test_recommendations_refuse_advice_on_a_failed_fit() -> None:
    text = recommendations(_crafted("warning"))
    assert len(text) == 1 and text[0].startswith("Model health: NOT RELIABLE")
    assert "R-hat" in text[0] and "Shift" not in text[0]


def test_prior_draws_follow_the_stored_priors() -> None:
    import json

    from mmmlib.priors import media_prior_draws

    attrs = {
        "adstock": json.dumps(
            {"prefix": "adstock", "priors": {"alpha": {"dist": "Beta", "kwargs": {"alpha": 1, "beta": 3}}}}
        ),
        "saturation": json.dumps(
            {
                "prefix": "saturation",
                "priors": {
                    "lam": {"dist": "Gamma", "kwargs": {"alpha": 4, "beta": 2}},
                    "beta": {"dist": "HalfNormal", "kwargs": {"sigma": [2.0, 0.5]}},
                    "odd": {"dist": "NoSuchDist", "kwargs": {}},
                },
            }
        ),
    }
    draws = media_prior_draws(attrs, ["tv", "search"], draws=200_000)
    assert set(draws) == {"adstock_alpha", "saturation_lam", "saturation_beta"}
    assert draws["adstock_alpha"].mean() == pytest.approx(0.25, abs=0.005)
    assert draws["saturation_lam"].mean() == pytest.approx(2.0, abs=0.02)
    half_normal_mean = np.sqrt(2 / np.pi) * np.array([2.0, 0.5])
    assert draws["saturation_beta"].mean(axis=0) == pytest.approx(half_normal_mean, rel=0.02)
