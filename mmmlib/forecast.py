"""Forecast the KPI for a spend plan from the posterior (``mmm forecast``), carry-over included.

Rebuilds the fitted model's mean, ``mu = intercept + trend + seasonality + controls + media``,
in numpy from posterior draws: the trend continues at its fitted slope, seasonality comes from
the Fourier coefficients on the plan's dates, 0/1 controls (promotions) are off unless the plan
sets them and continuous controls stay at their average, and media is the adstock of the last
observed weeks followed by the plan, then saturation. ``tests/test_forecast.py`` checks that
this reproduces the posterior's own ``mu`` on the fitted weeks.

A model whose baseline cannot be extended past its data (an imported Meridian model: its knots end with the data)
forecasts the plan's media contribution only, and says so (``media_only`` in the result).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmmlib import baseline, policy
from mmmlib.analysis import (
    HDI_PROB,
    Posterior,
    adstock_weight_draws,
    hdi,
    interval,
    saturation,
    saturation_kind,
    saturation_params,
    stacked,
)
from mmmlib.errors import InputError, UsageError

DAYS_IN_YEAR = 365.25


@dataclass
class Plan:
    """Spend per period per channel for consecutive future periods."""

    dates: pd.DatetimeIndex
    spend: np.ndarray  # (period, channel)
    controls: dict[str, np.ndarray]


def seasonality(post: Posterior, dates: pd.DatetimeIndex) -> np.ndarray:
    """Yearly Fourier seasonality ``(draw, period)`` on the scaled target (pymc-marketing's YearlyFourier)."""
    if "gamma_fourier" not in post.idata["posterior"].data_vars:
        return np.zeros((post.draws("intercept_contribution").shape[0], len(dates)))
    modes = [str(m) for m in post.idata["posterior"]["fourier_mode"].values]
    phase = 2 * np.pi * np.asarray(dates.dayofyear, dtype=float) / DAYS_IN_YEAR
    features = np.column_stack(
        [getattr(np, m.split("_")[0])(int(m.split("_")[1]) * phase) for m in modes]
    )  # (period, mode)
    return post.draws("gamma_fourier") @ features.T


def media(post: Posterior, history: np.ndarray, future: np.ndarray, l_max: int) -> np.ndarray:
    """Channel contributions ``(draw, period, channel)`` of ``future`` spend after ``history`` (scaled target)."""
    spend = np.vstack([history[-(l_max - 1) :] if l_max > 1 else history[:0], future]) / post.channel_scale
    w = adstock_weight_draws(post, l_max)  # (draw, lag, channel)
    n_hist = spend.shape[0] - future.shape[0]
    ads = np.zeros((w.shape[0], future.shape[0], spend.shape[1]))
    for lag in range(l_max):
        idx = np.arange(future.shape[0]) + n_hist - lag
        ok = idx >= 0
        ads[:, ok, :] += w[:, lag, None, :] * spend[idx[ok]][None, :, :]
    params = saturation_params(post)
    return saturation(saturation_kind(params), params, ads)


class Forecaster:
    """Predicts ``mu`` for new periods from a run's posterior and the data it was fitted on."""

    def __init__(
        self,
        idata: Any,
        frame: pd.DataFrame,
        config: Any,
        frequency: str = policy.DEFAULT_FREQUENCY,
        geo_frame: pd.DataFrame | None = None,
    ) -> None:
        """``geo_frame``: a geo run's data (``geo_data.csv``); the forecast is then the sum of one forecaster per
        geo, national spend split as each geo spends today (:attr:`Posterior.shares`)."""
        self.frequency = frequency  # as validation found it: the run's period.frequency, never guessed again
        self.post = Posterior.from_idata(idata, frequency, hdi_prob=getattr(config, "hdi_prob", HDI_PROB))
        self.config = config
        self.frame = frame
        self.scaling_frame = frame  # the rows design() scaled controls over (a geo's: every geo's rows)
        pv = idata["posterior"]
        self.controls = [str(c) for c in pv["control"].values] if "control" in pv.coords else []
        self.n_fit = len(self.post.dates)
        self.step = pd.Timedelta(days=policy.PERIOD_DAYS[frequency])
        # Meridian's knot baseline ends with its data: such a forecast is the plan's media contribution alone
        self.media_only = idata.attrs.get("baseline_forecast") == "none"
        self.geos: dict[str, Forecaster] = {}
        if self.post.parts is not None and geo_frame is not None:
            for name, part in zip(self.post.geos or [], self.post.parts, strict=True):
                rows = geo_frame[geo_frame[config.geo_column].astype(str) == name].reset_index(drop=True)
                one = Forecaster(part.idata, rows, config, frequency)
                one.scaling_frame = geo_frame
                self.geos[name] = one

    def geo(self, name: str | None) -> Forecaster:
        """One geo's forecaster (its spend, its KPI), or this one for ``None``; an unknown geo is a usage error."""
        if name is None:
            return self
        if name not in self.geos:
            known = ", ".join(list(self.geos)[:10]) or "none (a national run)"
            raise UsageError(f"The run has no geo {name!r}; its geos are {known}.")
        return self.geos[name]

    def _control_terms(self, dates: pd.DatetimeIndex, offsets: np.ndarray, given: dict[str, np.ndarray]) -> np.ndarray:
        """Trend and controls ``(draw, period)``: design() scales them, so apply the same transform here."""
        if not self.controls:
            return np.zeros((self.post.draws("intercept_contribution").shape[0], len(dates)))
        gamma = stacked(self.post.idata, "gamma_control")  # (draw, control)
        n_all = len(self.frame)
        cols = []
        # design(): the trend columns are functions of the row number over every row, held-out rows included
        trend = baseline.trend_columns("changepoints", n_all, offsets, self.frequency)
        shift = self._stored_trend_shift(n_all)
        for name in self.controls:
            if baseline.is_trend(name):
                cols.append(trend[name] + shift.get(name, 0.0))
                continue
            centre, scale = baseline.control_scaling(self.scaling_frame[name].to_numpy(dtype=float))
            values = given.get(name, np.full(len(dates), centre))  # a control the plan leaves out: at its centre
            cols.append((np.asarray(values, dtype=float) - centre) / scale)
        return gamma @ np.vstack(cols)

    def _stored_trend_shift(self, n_all: int) -> dict[str, float]:
        """What the run's own trend columns (``constant_data``) add to today's ``design()`` on the rows it fitted.

        Runs fitted before the changepoint hinges were centred stored them uncentred, and their coefficients belong
        to those columns; a run fitted since gives zero.
        """
        try:
            stored = self.post.idata["constant_data"]["control_data"]
        except KeyError:
            return {}
        today = baseline.trend_columns("changepoints", n_all, np.arange(stored.sizes["date"]), self.frequency)
        names = [str(c) for c in stored["control"].values]
        return {
            name: float(np.mean(stored.sel(control=name).values.T - today[name]))
            for name in names
            if baseline.is_trend(name) and name in today
        }

    def predict(self, plan: Plan) -> np.ndarray:
        """Expected KPI draws ``(draw, period)`` in target units for a plan starting after the data."""
        cfg = self.config
        start = pd.Timestamp(self.frame[cfg.date_column].iloc[-1]) + self.step
        if plan.dates[0] != start:
            raise InputError(f"The plan must start on {start:%Y-%m-%d}, the period after the data ends.")
        if self.geos:  # national: each geo's forecast of its share of the plan's spend
            assert self.post.shares is not None
            return sum(
                fc.predict(Plan(plan.dates, plan.spend * self.post.shares[g], plan.controls))
                for g, fc in enumerate(self.geos.values())
            )
        history = self.frame[cfg.channel_columns].to_numpy(dtype=float)
        offsets = np.arange(len(self.frame), len(self.frame) + len(plan.dates), dtype=float)
        return self._mu(plan.dates, offsets, history, plan.spend, plan.controls)

    def _mu(
        self,
        dates: pd.DatetimeIndex,
        offsets: np.ndarray,
        history: np.ndarray,
        future: np.ndarray,
        controls: dict[str, np.ndarray],
    ) -> np.ndarray:
        if self.media_only:
            return media(self.post, history, future, self.config.adstock_max_lag).sum(axis=2) * self.post.target_scale
        intercept = self.post.draws("intercept_contribution").reshape(-1, 1)
        total = intercept + seasonality(self.post, dates) + self._control_terms(dates, offsets, controls)
        total = total + media(self.post, history, future, self.config.adstock_max_lag).sum(axis=2)
        return total * self.post.target_scale

    def reproduce_fit(self) -> np.ndarray:
        """``mu`` on the fitted periods, for checking against the posterior."""
        cfg = self.config
        spend = self.frame[cfg.channel_columns].to_numpy(dtype=float)[: self.n_fit]
        controls = {c: self.frame[c].to_numpy(dtype=float)[: self.n_fit] for c in self.controls if c in self.frame}
        return self._mu(self.post.dates, np.arange(self.n_fit, dtype=float), spend[:0], spend, controls)


def read_plan(path: str | Path, forecaster: Forecaster) -> Plan:
    """A plan file: one row per future period, a column per channel (spend); optional date and control columns."""
    frame = pd.read_csv(path)
    cfg = forecaster.config
    missing = [c for c in cfg.channel_columns if c not in frame.columns]
    if missing:
        raise InputError(f"The plan {Path(path).name} lacks spend columns {', '.join(missing)}.")
    for c in cfg.channel_columns:
        values = pd.to_numeric(frame[c], errors="coerce")
        bad = np.flatnonzero((values.isna() | (values < 0)).to_numpy())
        if len(bad):
            raise InputError(f"Row {bad[0] + 2}, column {c} of the plan: spend must be a number of at least 0.")
    return _plan(
        forecaster,
        frame[cfg.channel_columns].to_numpy(dtype=float),
        {c: frame[c].to_numpy(dtype=float) for c in forecaster.controls if c in frame.columns},
    )


def constant_plan(forecaster: Forecaster, spend: dict[str, float], periods: int) -> Plan:
    cfg = forecaster.config
    unknown = sorted(set(spend) - set(cfg.channel_columns))
    if unknown:
        raise UsageError(f"Unknown channel {unknown[0]}; the run's channels are {', '.join(cfg.channel_columns)}.")
    recent = forecaster.frame[cfg.channel_columns].tail(policy.recent_periods(forecaster.frequency)).mean()
    row = np.array([spend.get(c, float(recent[c])) for c in cfg.channel_columns])
    return _plan(forecaster, np.tile(row, (periods, 1)), {})


def _plan(forecaster: Forecaster, spend: np.ndarray, controls: dict[str, np.ndarray]) -> Plan:
    start = pd.Timestamp(forecaster.frame[forecaster.config.date_column].iloc[-1]) + forecaster.step
    dates = pd.date_range(start, periods=spend.shape[0], freq=forecaster.step)
    return Plan(dates, spend, controls)


def summarise(draws: np.ndarray, plan: Plan, sigma: np.ndarray | None = None, prob: float = HDI_PROB) -> dict[str, Any]:
    """Total and per-period expected KPI with HDIs (and per-period predictive bands when ``sigma`` is given)."""
    low, high = hdi(draws, prob)
    out: dict[str, Any] = {
        "periods": len(plan.dates),
        "total_spend": float(plan.spend.sum()),
        "total_kpi": interval(draws.sum(axis=1), prob),
        "per_period": [
            {
                "date": d.strftime("%Y-%m-%d"),
                "spend": float(plan.spend[i].sum()),
                "mean": float(draws[:, i].mean()),
                "hdi_low": float(low[i]),
                "hdi_high": float(high[i]),
            }
            for i, d in enumerate(plan.dates)
        ],
    }
    if sigma is not None:
        rng = np.random.default_rng(0)
        noisy = draws + rng.normal(0, 1, draws.shape) * sigma[:, None]
        plo, phi = hdi(noisy, prob)
        for i, row in enumerate(out["per_period"]):
            row["predictive_low"], row["predictive_high"] = float(plo[i]), float(phi[i])
    return out


# what a forecast adds up (``Forecaster._mu``, ``seasonality``, ``media``) and its predictive band: nothing else is read
FORECAST_VARIABLES = ("intercept_contribution", "y_sigma", "gamma_fourier", "gamma_control")
FORECAST_PREFIXES = ("adstock_", "saturation_")


def load_forecaster(run_dir: str | Path) -> Forecaster:
    """The forecaster of a run: its summary checked, the posterior terms a forecast needs read and tried once.

    A damaged summary or posterior is one sentence naming the run (``runs``), before any plan is read.
    """
    from mmmlib.runs import RunDir

    run = RunDir(Path(run_dir))
    summary = run.summary()
    tree = run.posterior(
        keep=lambda name: name in FORECAST_VARIABLES or name.startswith(FORECAST_PREFIXES),
        need=["intercept_contribution", "y_sigma", *FORECAST_PREFIXES],
    )
    config = run.config()
    frame = run.frame(config)
    with run.reading():
        fc = Forecaster(tree, frame, config, policy.run_frequency(summary), run.geo_frame(config))
        for one in fc.geos.values() or [fc]:
            _try_terms(one)
    return fc


def _try_terms(fc: Forecaster) -> None:
    """Every posterior term of a forecast on one period, so a missing or misshapen variable fails at load."""
    post = fc.post
    zeros = np.zeros((1, len(post.channels)))
    if adstock_weight_draws(post, fc.config.adstock_max_lag) is None:
        raise KeyError("adstock parameters of a known family")
    media(post, zeros, zeros, fc.config.adstock_max_lag)
    seasonality(post, post.dates[-1:])
    if fc.controls and not fc.media_only:
        stacked(post.idata, "gamma_control")


def forecast(
    run_dir: str | Path, plans: list[Plan | str], names: list[str] | None = None, geo: str | None = None
) -> dict[str, Any]:
    """Forecast one or more plans; with two, also their difference (second minus first) with its interval.

    ``geo``: one geo of a geo run (plans then give that geo's spend); by default the whole run."""
    fc = load_forecaster(run_dir).geo(geo)
    built = [read_plan(p, fc) if isinstance(p, (str, Path)) else p for p in plans]
    sigma = None if fc.media_only else fc.post.draws("y_sigma").reshape(-1) * fc.post.target_scale
    draws = [fc.predict(p) for p in built]
    names = names or [f"plan {i + 1}" for i in range(len(built))]
    prob = fc.post.hdi_prob
    result: dict[str, Any] = {
        "hdi_prob": prob,
        "geo": geo,
        "media_only": fc.media_only,
        "plans": {n: summarise(d, p, sigma, prob) for n, d, p in zip(names, draws, built, strict=True)},
    }
    if len(draws) == 2 and draws[0].shape == draws[1].shape:
        result["difference"] = {
            "of": f"{names[1]} minus {names[0]}",
            "total_kpi": interval((draws[1] - draws[0]).sum(axis=1), prob),
        }
    return result
