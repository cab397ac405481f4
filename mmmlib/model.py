"""Build and fit the pymc-marketing MMM for a :class:`~mmmlib.data.dataset.Dataset`.

pymc-marketing supplies the model (adstock, saturation, Fourier seasonality, controls,
lift-test calibration) and the samplers; this module only chooses components and priors
from the config and the sampler settings from the mode. Priors follow the frameworks' own
recovery benchmark (pymc-labs/mmm-param-recovery): carry-over ``Beta(1, 3)``, media effects
scaled by each channel's spend share so that small channels are shrunk, and a logistic
steepness prior that keeps curves from going flat inside the observed spend range.
pymc is imported inside functions: dashboards import ``mmmlib`` without paying ~5 s for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mmmlib.data.dataset import Dataset

log = logging.getLogger("mmmlib.model")

TREND_COLUMN = "trend"

# Sampler settings per mode, from benchmarks/ (README). cores=chains: PyMC would guess half the CPUs.
MODES: dict[str, dict[str, Any]] = {
    "quick": {"chains": 2, "tune": 1000, "draws": 1500, "target_accept": 0.95},
    # 1000 draws and 0.95 left max R-hat 1.014 (seasonal-spend, seed 1) and a divergence in 1 of 5 seeds (3-channel
    # data), both from one weakly identified channel's saturation curve; 1500 draws at 0.97: ≤ 1.008, none (README)
    "full": {"chains": 4, "tune": 1500, "draws": 1500, "target_accept": 0.97},
}
# Quick mode's 1000 tuning steps left a divergence on 8-channel data (synth-8ch-208w, seed 1 of 1–4); smaller
# steps (target_accept 0.97, ~20 % more leapfrog steps) removed it. Fewer channels do not need it.
MANY_CHANNELS = 8
MANY_CHANNELS_TARGET_ACCEPT = {"quick": 0.97}
DEFAULT_SAMPLER = "nutpie"
SAMPLERS = ("nutpie", "pymc", "numpyro")
OVERRIDABLE = ("chains", "tune", "draws")


def sampler_settings(mode: str = "quick", channels: int | None = None, **overrides: int | None) -> dict[str, Any]:
    """The mode's sampler settings with any of ``chains``, ``tune`` and ``draws`` replaced (positive whole numbers).

    ``channels``, the number of media channels, raises target_accept for ``MANY_CHANNELS`` or more where the mode
    says so.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    settings = dict(MODES[mode])
    if channels is not None and channels >= MANY_CHANNELS and mode in MANY_CHANNELS_TARGET_ACCEPT:
        settings["target_accept"] = MANY_CHANNELS_TARGET_ACCEPT[mode]
    for name, value in overrides.items():
        if name not in OVERRIDABLE:
            raise ValueError(f"{name} is not a sampler setting that can be overridden ({', '.join(OVERRIDABLE)})")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        settings[name] = int(value)
    return settings


@dataclass
class Fitted:
    """A fitted model with what analysis needs beside the posterior."""

    mmm: Any  # pymc_marketing.mmm.MMM
    idata: Any  # xarray.DataTree
    X: pd.DataFrame
    y: pd.Series
    control_scales: dict[str, float]
    sampler: str
    chains: int
    draws: int
    fit_seconds: float
    holdout: int = 0
    tune: int = 0
    target_accept: float = 0.0


def design(dataset: Dataset) -> tuple[pd.DataFrame, pd.Series, dict[str, float]]:
    """The model's inputs: dates, spend, controls scaled to [-1, 1] (continuous ones centred), a centred trend."""
    cfg = dataset.config
    frame = dataset.frame
    X = pd.DataFrame({"date": pd.to_datetime(frame[cfg.date_column]).to_numpy()})
    for ch in cfg.channel_columns:
        X[ch] = frame[ch].astype(float).to_numpy()
    scales: dict[str, float] = {}
    for ctl in dataset.controls:
        values = frame[ctl].astype(float).to_numpy()
        # Continuous controls (price, temperature) are centred: uncentred, a price index near 1 is a second
        # intercept, and the sampler crawls along the ridge between them. 0/1 flags stay as they are.
        centre = 0.0 if set(np.unique(values)) <= {0.0, 1.0} else float(values.mean())
        scale = float(np.abs(values - centre).max()) or 1.0
        scales[ctl] = scale
        X[ctl] = (values - centre) / scale
    if cfg.trend:
        X[TREND_COLUMN] = np.linspace(-0.5, 0.5, len(frame))
    y = pd.Series(frame[cfg.target_column].astype(float).to_numpy(), name=cfg.target_column)
    return X, y, scales


def _components(dataset: Dataset, X: pd.DataFrame) -> tuple[Any, Any, dict[str, Any]]:
    from pymc_extras.prior import Prior
    from pymc_marketing.mmm import (
        GeometricAdstock,
        HillSaturation,
        LogisticSaturation,
        MichaelisMentenSaturation,
        WeibullPDFAdstock,
    )

    cfg = dataset.config
    spend = X[cfg.channel_columns].sum()
    share = (spend / spend.sum()).to_numpy()
    effect_sigma = xr.DataArray(np.maximum(len(share) * share, 0.05), dims=("channel",))
    if cfg.adstock == "weibull":
        # the PDF form can peak after a delay (TV, print); with k ≤ 1 it decays from the first week
        adstock = WeibullPDFAdstock(l_max=cfg.adstock_max_lag)
    else:
        adstock = GeometricAdstock(
            l_max=cfg.adstock_max_lag, priors={"alpha": Prior("Beta", alpha=1, beta=3, dims="channel")}
        )
    if cfg.saturation == "hill":
        saturation = HillSaturation(
            priors={
                "beta": Prior("HalfNormal", sigma=effect_sigma, dims="channel"),
                "kappa": Prior("Beta", alpha=2, beta=2, dims="channel"),
                "slope": Prior("Gamma", alpha=2, beta=1, dims="channel"),
            }
        )
    elif cfg.saturation == "michaelis_menten":
        saturation = MichaelisMentenSaturation(
            priors={
                "alpha": Prior("HalfNormal", sigma=effect_sigma, dims="channel"),
                "lam": Prior("Gamma", mu=1, sigma=0.5, dims="channel"),
            }
        )
    else:
        saturation = LogisticSaturation(
            priors={
                "beta": Prior("HalfNormal", sigma=effect_sigma, dims="channel"),
                # Gamma(4, 2): mean 2, sd 1 on max-scaled spend. pymc-marketing's Gamma(3, 1) lets an always-on
                # channel's curve go flat (lam > 5), where its effect becomes a constant that trades off with
                # the intercept: a funnel that gave 8–30 divergences and bulk ESS < 150 on the sample data.
                "lam": Prior("Gamma", alpha=4, beta=2, dims="channel"),
            }
        )
    model_config: dict[str, Any] = {}
    for name, spec in (cfg.priors or {}).items():
        spec = dict(spec)
        model_config[name] = Prior(spec.pop("dist"), **spec)
    return adstock, saturation, model_config


def build(dataset: Dataset) -> tuple[Any, pd.DataFrame, pd.Series, dict[str, float]]:
    """An unfitted pymc-marketing MMM and its inputs."""
    from pymc_marketing.mmm import MMM

    X, y, scales = design(dataset)
    cfg = dataset.config
    controls = [c for c in X.columns if c not in ("date", *cfg.channel_columns)]
    adstock, saturation, model_config = _components(dataset, X)
    mmm = MMM(
        date_column="date",
        channel_columns=list(cfg.channel_columns),
        target_column=cfg.target_column,
        control_columns=controls or None,
        adstock=adstock,
        saturation=saturation,
        yearly_seasonality=cfg.yearly_seasonality or None,
        model_config=model_config or None,
    )
    return mmm, X, y, scales


def fit(
    dataset: Dataset,
    mode: str = "quick",
    seed: int = 0,
    sampler: str | None = None,
    progressbar: bool = True,
    lift_tests: pd.DataFrame | None = None,
    chains: int | None = None,
    tune: int | None = None,
    draws: int | None = None,
) -> Fitted:
    """Fit with NUTS; ``sampler`` is nutpie (default, fastest here), pymc or numpyro.

    ``chains``, ``tune`` and ``draws`` override the mode's settings (power users; too few gives unusable fits).
    """
    channels = len(dataset.config.channel_columns)
    settings = sampler_settings(mode, channels=channels, chains=chains, tune=tune, draws=draws)
    sampler = sampler or DEFAULT_SAMPLER
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}")
    holdout = dataset.config.holdout_periods
    mmm, X, y, scales = build(dataset)
    X_fit, y_fit = (X.iloc[:-holdout], y.iloc[:-holdout]) if holdout else (X, y)
    if lift_tests is not None and len(lift_tests):
        mmm.build_model(X_fit, y_fit)
        mmm.add_lift_test_measurements(lift_tests[["channel", "x", "delta_x", "delta_y", "sigma"]])
        log.info("calibrating with %d lift tests", len(lift_tests))
    log.info(
        "sampling %s: %s chains × %s draws (%s tune) with %s, target_accept %s",
        mode,
        settings["chains"],
        settings["draws"],
        settings["tune"],
        sampler,
        settings["target_accept"],
    )
    start = time.perf_counter()
    idata = mmm.fit(
        X_fit,
        y_fit,
        chains=settings["chains"],
        cores=settings["chains"],
        draws=settings["draws"],
        tune=settings["tune"],
        target_accept=settings["target_accept"],
        nuts_sampler=sampler if sampler != "pymc" else "pymc",
        random_seed=seed,
        progressbar=progressbar,
    )
    seconds = time.perf_counter() - start
    log.info("sampled in %.1f s", seconds)
    return Fitted(
        mmm,
        idata,
        X,
        y,
        scales,
        sampler,
        settings["chains"],
        settings["draws"],
        seconds,
        holdout,
        settings["tune"],
        settings["target_accept"],
    )


def predict_holdout(fitted: Fitted, seed: int = 0) -> np.ndarray | None:
    """Posterior draws of the noise-free KPI on the held-out periods, ``(draw, period)``, carry-over included."""
    if not fitted.holdout:
        return None
    X_new = fitted.X.iloc[-fitted.holdout :]
    pp = fitted.mmm.sample_posterior_predictive(
        X_new,
        extend_idata=False,
        include_last_observations=True,
        var_names=["mu"],
        progressbar=False,
        random_seed=seed,
    )
    mu = pp["mu"]
    mu = mu.sel(date=pd.DatetimeIndex(X_new["date"]))
    scale = float(fitted.idata["constant_data"]["target_scale"].values)
    return np.asarray(mu.transpose("sample", "date").values) * scale
