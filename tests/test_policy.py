"""Each policy once (#14): today's spend is the last 52 weeks at any frequency, a run's frequency is the one
validation found (read back from its summary, never guessed again), and the model and forecasts scale controls alike.

Daily runs are built by hand (a posterior shaped like pymc-marketing's, 400 days of rising spend): no sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib import analysis, baseline, policy
from mmmlib.config import ModelConfig, save_config
from mmmlib.forecast import Forecaster, constant_plan, load_forecaster
from mmmlib.optimize import Curves, load_curves
from mmmlib.summary import build_summary

DAYS = 400
CHANNELS = ["c0", "c1"]


def daily_spend() -> np.ndarray:
    """Spend that rises day by day, so the mean over the last 364 days differs from the last 52's and from all 400."""
    return np.c_[np.linspace(50.0, 450.0, DAYS), np.linspace(20.0, 60.0, DAYS)]


def daily_tree(draws: int = 20) -> xr.DataTree:
    """Two chains of a geometric + logistic posterior over 400 daily periods."""
    rng = np.random.default_rng(3)
    spend = daily_spend()
    dates = pd.date_range("2024-01-01", periods=DAYS, freq="D")
    cs = spend.max(axis=0)
    lam = rng.uniform(1.0, 3.0, (2 * draws, 2))
    beta = rng.uniform(0.2, 0.4, (2 * draws, 2))
    e = np.exp(-lam[:, None, :] * spend / cs)
    contrib = beta[:, None, :] * (1 - e) / (1 + e)

    def chains(x: np.ndarray) -> np.ndarray:
        return x.reshape(2, draws, *x.shape[1:])

    coords = {"chain": [0, 1], "draw": np.arange(draws), "channel": CHANNELS, "date": dates}
    posterior = xr.Dataset(
        {
            "saturation_lam": (("chain", "draw", "channel"), chains(lam)),
            "saturation_beta": (("chain", "draw", "channel"), chains(beta)),
            "adstock_alpha": (("chain", "draw", "channel"), chains(rng.uniform(0.2, 0.4, lam.shape))),
            "channel_contribution": (("chain", "draw", "date", "channel"), chains(contrib)),
            "mu": (("chain", "draw", "date"), chains(contrib.sum(axis=2) + 1.0)),
            "intercept_contribution": (("chain", "draw"), chains(rng.normal(1.0, 0.01, 2 * draws))),
            "y_sigma": (("chain", "draw"), chains(rng.uniform(0.01, 0.02, 2 * draws))),
        },
        coords=coords,
    )
    const = xr.Dataset(
        {
            "channel_data": (("date", "channel"), spend),
            "target_data": (("date",), (contrib.mean(axis=0).sum(axis=1) + 1.0) * 1000.0),
            "target_scale": ((), 1000.0),
            "channel_scale": (("channel",), cs),
        },
        coords={"date": dates, "channel": CHANNELS},
    )
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((2, draws), dtype=bool))},
        coords={"chain": [0, 1], "draw": np.arange(draws)},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "constant_data": const, "sample_stats": stats})


def frame_and_config(tree: xr.DataTree) -> tuple[pd.DataFrame, ModelConfig]:
    post = analysis.Posterior.from_idata(tree)
    frame = pd.DataFrame({"day": post.dates, "revenue": post.target, **dict(zip(CHANNELS, post.spend.T, strict=True))})
    return frame, ModelConfig(date_column="day", target_column="revenue", channel_columns=CHANNELS)


def test_the_recent_window_is_52_weeks_converted_by_frequency() -> None:
    assert policy.recent_periods("weekly") == 52
    assert policy.recent_periods("daily") == 364  # 52 weeks of days, not 52 days
    assert policy.periods(26, "daily") == 182
    with pytest.raises(ValueError, match="frequency"):
        policy.recent_periods("monthly")


def test_todays_spend_on_daily_data_is_the_last_364_days() -> None:
    spend = daily_spend()
    daily = analysis.Posterior.from_idata(daily_tree(), "daily")
    expected = spend[-364:].mean(axis=0)
    assert not np.allclose(expected, spend[-52:].mean(axis=0))
    assert analysis.current_spend(daily) == pytest.approx(expected, rel=1e-12)
    assert Curves.from_posterior(daily).current == pytest.approx(expected, rel=1e-12)
    curves = analysis.response_curves(daily)
    assert [c["current_spend"] for c in curves] == pytest.approx(expected, rel=1e-12)
    # the same draws read as weekly data: the last 52 periods, as always
    weekly = analysis.Posterior.from_idata(daily_tree())
    assert weekly.frequency == "weekly"
    assert analysis.current_spend(weekly) == pytest.approx(spend[-52:].mean(axis=0), rel=1e-12)


def test_a_daily_summary_records_its_frequency_and_uses_364_days() -> None:
    tree = daily_tree()
    frame, config = frame_and_config(tree)
    run = {"id": "daily", "created_at": "2026-12-01T00:00:00", "frequency": "daily"}
    summary = build_summary(tree, config, frame, run=run, mode="quick")
    assert summary["period"]["frequency"] == "daily"
    expected = daily_spend()[-364:].mean(axis=0)
    assert [c["current_spend"] for c in summary["response_curves"]] == pytest.approx(expected, rel=1e-12)
    realloc = summary["reallocation"]
    assert [c["current_spend"] for c in realloc["channels"]] == pytest.approx(expected, rel=1e-12)
    assert realloc["limit_pct"] == policy.REALLOCATION_LIMIT_PCT


def test_a_forecast_plan_on_daily_data_steps_by_days_from_364_days_of_spend() -> None:
    tree = daily_tree()
    frame, config = frame_and_config(tree)
    fc = Forecaster(tree, frame, config, "daily")
    plan = constant_plan(fc, {"c0": 100.0}, 10)
    assert plan.dates[0] == frame["day"].iloc[-1] + pd.Timedelta(days=1)
    assert (np.diff(plan.dates.values) == np.timedelta64(1, "D")).all()
    assert plan.spend[0] == pytest.approx([100.0, daily_spend()[-364:, 1].mean()], rel=1e-12)


def write_run(run: Path, tree: xr.DataTree, frequency: str | None) -> None:
    """A run directory as a fit writes it (summary, posterior, config, data), the summary's frequency as given."""
    frame, config = frame_and_config(tree)
    run.mkdir(parents=True)
    tree.to_netcdf(run / "posterior.nc")
    save_config(config, run / "config.yaml")
    frame.to_csv(run / "data.csv", index=False)
    summary = build_summary(
        tree, config, frame, run={"id": run.name, "created_at": "2026-12-01T00:00:00"}, mode="quick"
    )
    if frequency is None:
        del summary["period"]["frequency"]
    else:
        summary["period"]["frequency"] = frequency
    (run / "summary.json").write_text(json.dumps(summary))


def test_forecasts_and_the_optimiser_use_the_frequency_the_run_recorded(tmp_path: Path) -> None:
    """The data are daily either way: what the summary says is what a forecast and the optimiser use."""
    tree = daily_tree()
    spend = daily_spend()
    write_run(tmp_path / "daily", tree, "daily")
    write_run(tmp_path / "weekly", tree, "weekly")
    write_run(tmp_path / "unsaid", tree, None)  # a summary without period.frequency reads as the default, weekly

    fc = load_forecaster(tmp_path / "daily")
    assert fc.frequency == "daily" and fc.step == pd.Timedelta(days=1)
    assert load_curves(tmp_path / "daily").current == pytest.approx(spend[-364:].mean(axis=0), rel=1e-12)
    for name in ("weekly", "unsaid"):
        fc = load_forecaster(tmp_path / name)  # daily dates, yet not guessed from them
        assert fc.frequency == "weekly" and fc.step == pd.Timedelta(days=7)
        assert load_curves(tmp_path / name).current == pytest.approx(spend[-52:].mean(axis=0), rel=1e-12)


def test_run_frequency_reads_the_summary_and_falls_back_to_weekly() -> None:
    assert policy.run_frequency({"period": {"frequency": "daily"}}) == "daily"
    assert policy.run_frequency({"period": {"frequency": "weekly"}}) == "weekly"
    for odd in (
        {},
        {"period": None},
        {"period": {}},
        {"period": {"frequency": "monthly"}},
        {"period": {"frequency": []}},
    ):
        assert policy.run_frequency(odd) == policy.DEFAULT_FREQUENCY


def test_controls_are_scaled_once_for_the_model_and_forecasts() -> None:
    flags = np.array([0.0, 1.0, 0.0, 1.0])
    assert baseline.control_scaling(flags) == (0.0, 1.0)  # a 0/1 flag stays as it is: off is 0
    price = np.array([0.9, 1.0, 1.1, 1.2])
    centre, scale = baseline.control_scaling(price)
    assert centre == pytest.approx(1.05) and scale == pytest.approx(0.15)
    assert baseline.control_scaling(np.full(3, 2.0)) == (2.0, 1.0)  # constant: no division by zero


def test_the_model_design_scales_controls_with_that_function() -> None:
    from mmmlib.data.dataset import Dataset
    from mmmlib.data.issues import Report
    from mmmlib.model import design

    n = 60
    frame = pd.DataFrame(
        {
            "week": pd.date_range("2024-01-01", periods=n, freq="7D"),
            "revenue": np.linspace(100.0, 200.0, n),
            "tv": np.linspace(10.0, 30.0, n),
            "promo": (np.arange(n) % 5 == 0).astype(float),
            "price": 1.0 + 0.1 * np.sin(np.arange(n)),
        }
    )
    config = ModelConfig(
        date_column="week", target_column="revenue", channel_columns=["tv"], control_columns=["promo", "price"]
    )
    X, _, scales = design(Dataset(frame, config, "weekly", Report(rows=n), Path("data.csv")), "flat")
    for name in ("promo", "price"):
        centre, scale = baseline.control_scaling(frame[name].to_numpy())
        assert X[name].to_numpy() == pytest.approx((frame[name].to_numpy() - centre) / scale, rel=1e-12)
        assert scales[name] == scale
