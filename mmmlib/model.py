"""Build and fit the pymc-marketing MMM for a :class:`~mmmlib.data.dataset.Dataset`, one structure at a time.

pymc-marketing supplies the model (adstock, saturation, Fourier seasonality, controls, lift-test calibration) and
the samplers; this module builds one candidate structure (:mod:`mmmlib.structures`) with its priors (the return
priors of :mod:`mmmlib.roas_priors`, the trend of :mod:`mmmlib.baseline`), fits every candidate the config asks for
and hands them to :mod:`mmmlib.stacking`, which weighs them out of sample and combines their draws.
pymc is imported inside functions: dashboards import ``mmmlib`` without paying ~5 s for it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mmmlib import analysis, baseline, fit_workers, roas_priors, seasonality, structures
from mmmlib.data.dataset import Dataset
from mmmlib.fit_workers import WORKERS_ENV as WORKERS_ENV  # re-exported: callers knew it here
from mmmlib.fit_workers import candidate_workers
from mmmlib.request import FitRequest

log = logging.getLogger("mmmlib.model")

TREND_COLUMN = baseline.TREND

# Sampler settings per mode, from benchmarks/ (docs/benchmarks.md). cores=chains: PyMC would guess half the CPUs.
MODES: dict[str, dict[str, Any]] = {
    "quick": {"chains": 2, "tune": 1000, "draws": 1500, "target_accept": 0.95},
    # 1000 draws and 0.95 left max R-hat 1.014 (seasonal-spend, seed 1) and a divergence in 1 of 5 seeds (3-channel
    # data), both from one weakly identified channel's saturation curve; 1500 draws at 0.97: ≤ 1.008, none
    # (docs/benchmarks.md)
    "full": {"chains": 4, "tune": 1500, "draws": 1500, "target_accept": 0.97},
}
# Quick mode's 1000 tuning steps left a divergence on 8-channel data (synth-8ch-208w, seed 1 of 1–4); smaller
# steps (target_accept 0.97, ~20 % more leapfrog steps) removed it. Fewer channels do not need it.
MANY_CHANNELS = 8
MANY_CHANNELS_TARGET_ACCEPT = {"quick": 0.97}
# With several candidate structures (``auto``) each is fitted, so each gets fewer steps in quick mode: at
# 2 × (600 + 600) Hill candidates left the mixture's min ESS at 149 on a 7-channel world (quick needs 200).
# Each candidate draws until its own bulk and tail ESS reach ``stop``'s (checked every 250 draws) with R-hat within
# quick mode's reported threshold, at most ``draws``: 800 fixed draws left the sample's dominant candidate at min ESS
# 189 once ROAS was sampled (the mixture then below quick mode's 200), while most candidates pass 250 by 750 draws.
# A cap of 1000 left candidates on the mixed suite at R-hat up to 1.054 and bulk ESS down to 63 (commit 414be41); the
# ones that need more draw on to 2000 (5–9 s per 1000 draws there), the rest stop where they did.
# Full mode's candidates warm up as quick mode's do: their 1,500 steps were most of a candidate's sampling (on the
# sample 15 of 17 s to the first 250 draws of four chains, the next 250 in 1.6 s), and what makes full mode thorough
# is kept: four chains, target_accept 0.97, and the stop at the mode's own R-hat 1.01 and ESS 400 (docs/speed.md).
# After the shorter warm-up a slow-mixing candidate may need more than 1,500 draws to get there (strong world 2003's
# delayed + Hill: R-hat 1.015 at 1,500), so, as quick mode's, the ones that need it draw on, to 3,000.
PER_CANDIDATE = {
    "quick": {"tune": 600, "draws": 2000, "stop": {"ess": 250.0, "r_hat": analysis.THRESHOLDS["quick"]["r_hat"]}},
    "full": {"tune": 600, "draws": 3000},
}
# A fold fit of full mode's time-slice cross-validation is never shown: it forecasts its 13 held-out weeks, whose log
# predictive density is a mean over its draws, so it needs enough effective draws for a mean (bulk and tail ESS 100:
# a Monte Carlo error of a tenth of the density's sd), not a reported posterior's, and the warm-up nutpie itself
# defaults to (300 steps: the adaptation has settled by then on our models, docs/speed.md). It keeps the 250 draws per
# chain every fit draws at least, and quick mode's R-hat.
FOLD_STEPS = {"tune": 300, "stop": {"ess": 100.0, "r_hat": analysis.THRESHOLDS["quick"]["r_hat"]}}
# A hierarchical geo fit (mmmlib.geo_model) samples each draw slowly (2.7 ms a gradient at 40 geos) and keeps every
# per-geo deterministic per draw. On Meridian's 40 geos 2 × (1000 + 1500) nutpie draws with logistic returns gave min
# bulk ESS 1757 in 33 minutes and 8 GB; 2 × (500 + 500) with Hill returns gave 104 in 15 minutes and 3.5 GB, and on
# 10 synthetic geos tail ESS 150: quick mode's 200 needs about twice those draws (docs/geo.md).
GEO_STEPS = {"quick": {"tune": 500, "draws": 1000}, "full": {"tune": 1000, "draws": 2000}}
# "numpyro" is mmmlib.sampling's loop (numpyro's NUTS, cached compiles, stopping rule). With it and with nutpie,
# ``draws`` is the most draws per chain, and sampling stops earlier once the diagnostics are met; pymc draws exactly
# ``draws``.
# nutpie stays the default: on our posteriors its adaptation needs fewer steps per draw and left no divergences
# where numpyro's left some (docs/speed.md).
DEFAULT_SAMPLER = "nutpie"
SAMPLERS = ("nutpie", "pymc", "numpyro")
ENGINE = "numpyro"
# Samplers whose draws stop once the reported diagnostics are met (mmmlib.sampling.StopRule): the numpyro loop, and
# nutpie through mmmlib.nutpie_stop. PyMC's own sampler draws the fixed number.
STOPPING_SAMPLERS = (ENGINE, "nutpie")
OVERRIDABLE = ("chains", "tune", "draws")
# Modes whose candidate structures are weighed by time-slice cross-validation (mmmlib.time_slice) instead of PSIS-LOO:
# each candidate is refitted on every fold, which quick mode cannot afford.
TIME_SLICE_MODES = ("full",)
# A candidate whose sampler diverged is refitted once with smaller steps: a divergence means NUTS could not follow the
# posterior's curvature somewhere, so the draws may miss that region (Betancourt 2017, "A conceptual introduction to
# Hamiltonian Monte Carlo", §6), and a higher target_accept (smaller steps) is the standard remedy. On the recovery
# suite (commit d9fb4ea) 9 of 36 worlds had 1–4 divergences at 0.95, every one from a Hill candidate.
RETRY_TARGET_ACCEPT = 0.99
# A geo pair's fit that diverged is refitted where it would take at least this share of the weight (the geos
# prefer it); a minority one is left out of the mixture instead (mmmlib.model._fit_geo_pair).
GEO_REFIT_WEIGHT = 0.5


def sampler_settings(
    mode: str = "quick",
    channels: int | None = None,
    candidates: int = 1,
    geo: bool = False,
    fold: bool = False,
    **overrides: int | None,
) -> dict[str, Any]:
    """The mode's sampler settings with any of ``chains``, ``tune`` and ``draws`` replaced (positive whole numbers).

    ``channels``, the number of media channels, raises target_accept for ``MANY_CHANNELS`` or more where the mode
    says so; more than one candidate structure takes the mode's per-candidate steps (``PER_CANDIDATE``), a
    hierarchical geo fit its own (``GEO_STEPS``), a time-slice fold fit those of ``FOLD_STEPS``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    settings = dict(MODES[mode])
    if candidates > 1:
        settings.update(PER_CANDIDATE.get(mode, {}))
    if geo:
        settings.update(GEO_STEPS.get(mode, {}))
    if fold:
        settings.update(FOLD_STEPS)
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
    """A fitted model (one structure, or the stacked candidates) with what analysis needs beside the posterior."""

    mmm: Any  # pymc_marketing.mmm.MMM; for a combination, the list of the candidates' models
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
    structure: structures.Structure | None = None
    candidates: list[dict[str, Any]] | None = None  # the stacking record (mmmlib.stacking.compare)
    weights: list[float] | None = None
    members: list[Fitted] | None = None
    holdout_draws: np.ndarray | None = None  # predicted where the model was fitted (a worker keeps no model)
    retried: dict[str, Any] | None = None  # the first attempt's divergences and target_accept, when it was refitted
    score: tuple[dict[str, Any], Any] | None = None  # mmmlib.stacking.score, when computed where it was fitted


def design(dataset: Dataset, form: str | None = None) -> tuple[pd.DataFrame, pd.Series, dict[str, float]]:
    """The model's inputs: dates, spend, controls scaled to [-1, 1] (continuous ones centred), the trend columns."""
    cfg = dataset.config
    frame = dataset.frame
    X = pd.DataFrame({"date": pd.to_datetime(frame[cfg.date_column]).to_numpy()})
    for ch in cfg.channel_columns:
        X[ch] = frame[cfg.media_column(ch)].astype(float).to_numpy()
    scales: dict[str, float] = {}
    for ctl in dataset.controls:
        values = frame[ctl].astype(float).to_numpy()
        centre, scale = baseline.control_scaling(values)  # continuous controls centred, 0/1 flags as they are
        scales[ctl] = scale
        X[ctl] = (values - centre) / scale
    n = len(frame)
    for name, values in baseline.trend_columns(form or cfg.baseline_form, n, np.arange(n), dataset.frequency).items():
        X[name] = values
    y = pd.Series(frame[cfg.target_column].astype(float).to_numpy(), name=cfg.target_column)
    return X, y, scales


def _fit_rows(dataset: Dataset, X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    holdout = dataset.config.holdout_periods
    return (X.iloc[:-holdout], y.iloc[:-holdout]) if holdout else (X, y)


def _value_per_kpi(dataset: Dataset) -> tuple[float, bool]:
    """What one KPI unit is worth for ROAS, and whether ROAS is in money (:func:`mmmlib.summary.value_per_kpi`)."""
    from mmmlib.summary import value_per_kpi

    return value_per_kpi(dataset.config, dataset.frame)


def roas_parameterisation(
    dataset: Dataset, family: str, X: pd.DataFrame, y: pd.Series
) -> roas_priors.RoasParameterisation:
    """Each channel's ROAS prior on the rows the model is fitted to, sampled as the model's parameter."""
    X_fit, y_fit = _fit_rows(dataset, X, y)
    spend = channel_spend(dataset)[: len(X_fit)]
    mu, sigma, basis = roas_prior(dataset, spend, float(y_fit.sum()))
    return roas_priors.RoasParameterisation(
        mu, sigma, spend.sum(axis=0), _value_per_kpi(dataset)[0], structures.saturation_family(family).effect, **basis
    )


def roas_prior(dataset: Dataset, spend: np.ndarray, kpi_total: float) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per channel ``(mu, sigma)`` of the lognormal ROAS prior for these rows' spend ``(period, channel)`` and KPI
    total, and what the default is put on (:func:`mmmlib.roas_priors.basis_fields`)."""
    cfg = dataset.config
    value, valued = _value_per_kpi(dataset)
    basis, why = roas_priors.prior_basis(float(spend.sum()), kpi_total * (value if valued else 1.0), valued)
    channels = list(cfg.channel_columns)
    mu, sigma = roas_priors.roas_lognormal(channels, spend, kpi_total, valued, cfg.roas_prior, value, basis)
    differ = valued and basis == roas_priors.SHARE_BASIS  # a valued KPI leaves ROAS only where units differ
    if set(cfg.channel_columns) <= set(cfg.roas_prior):  # every channel's prior is the config's own
        basis, why = roas_priors.ROAS_BASIS, None
    return mu, sigma, roas_priors.basis_fields(basis, why, differ)


def media_per_money(media: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Per channel, units of media (impressions, clicks) bought per unit of money over these rows (1 where the
    channel is fitted on spend or bought nothing): how a lift test's spend becomes the model's input."""
    paid, seen = spend.sum(axis=0), media.sum(axis=0)
    return np.where((paid > 0) & (seen > 0), seen / np.where(paid > 0, paid, 1.0), 1.0)


def lift_measurements(dataset: Dataset, lift: pd.DataFrame) -> pd.DataFrame:
    """Lift tests in the units the model is fitted on: spend (``x``, ``delta_x``) turned into each channel's media
    units at its cost over the fitted periods; a geo model's also per capita in their geo
    (:func:`mmmlib.geo_model.lift_measurements`)."""
    if dataset.hierarchical:
        from mmmlib import geo_model

        return geo_model.lift_measurements(dataset, lift)
    cfg = dataset.config
    rows = len(dataset.frame) - cfg.holdout_periods
    media = dataset.frame[[cfg.media_column(c) for c in cfg.channel_columns]].to_numpy(dtype=float)[:rows]
    ratio = dict(zip(cfg.channel_columns, media_per_money(media, channel_spend(dataset)[:rows]), strict=True))
    out = lift[["channel", "x", "delta_x", "delta_y", "sigma"]].copy()
    factor = out["channel"].map(ratio).to_numpy(dtype=float)
    out["x"], out["delta_x"] = out["x"] * factor, out["delta_x"] * factor
    return out


def channel_spend(dataset: Dataset) -> np.ndarray:
    """Spend ``(period, channel)`` over every row: what ROAS divides by, whatever the model fits on."""
    return dataset.frame[dataset.config.channel_columns].to_numpy(dtype=float)


def add_spend(idata: Any, spend: xr.DataArray) -> None:
    """Keep the spend beside the media the model fitted (``channel_spend`` in ``constant_data``) when they differ:
    ROAS and the budget are in money, the curves in the media's units (mmmlib.analysis converts)."""
    const = idata["constant_data"].to_dataset()
    idata["constant_data"] = const.assign(channel_spend=spend.sel(date=const["date"]))


def _model_config(cfg: Any, controls: list[str]) -> dict[str, Any]:
    from pymc_extras.prior import Prior

    model_config: dict[str, Any] = {}
    if controls:
        sd = [baseline.prior_sd(c) if baseline.is_trend(c) else baseline.TREND_SD for c in controls]
        model_config["gamma_control"] = Prior("Normal", mu=0, sigma=xr.DataArray(sd, dims=("control",)), dims="control")
    for name, spec in (cfg.priors or {}).items():
        spec = dict(spec)
        model_config[name] = Prior(spec.pop("dist"), **spec)
    return model_config


_MMM_CLASS: Any = None


def mmm_class() -> Any:
    """pymc-marketing's MMM, except that its NUTS loop is :func:`mmmlib.sampling.sample` when ``engine`` is set."""
    global _MMM_CLASS
    if _MMM_CLASS is None:
        from pymc_marketing.mmm import MMM

        class EngineMMM(MMM):  # type: ignore[misc, valid-type]
            engine: dict[str, Any] | None = None  # mmmlib.sampling.sample's arguments, or None for pm.sample

            def _fit_mcmc(self, sampler_kwargs: dict[str, Any]) -> Any:
                if self.engine is None:
                    return super()._fit_mcmc(sampler_kwargs)
                from mmmlib import sampling

                return sampling.sample(self._get_sampling_model(), **self.engine)

            roas: roas_priors.RoasParameterisation | None = None  # ROAS sampled, the effect size derived from it
            # the intercept sampled as baseline + media (mmmlib.centring) and the trend and control coefficients in
            # whitened coordinates (mmmlib.whitening): the same posterior, far fewer gradient steps. PyMC cannot draw
            # such a model from the prior (flat coordinates): set both False for that (benchmarks/sbc.py).
            centre_intercept: bool = True
            whiten_controls: bool = True
            early_roas: Any = None
            # pymc-marketing samples a copy of the model with its data and dimensions frozen into constants (what
            # JAX needs). nutpie's numba code then differs with every dataset, so each new dataset (a refit with one
            # more week) compiled every candidate anew, 10-15 s each; sampled as built, the data are the compiled
            # code's inputs and a dataset with the same parameters reuses it (mmmlib.graph_data; docs/speed.md)
            freeze_for_sampling: bool = True

            def _get_sampling_model(self) -> Any:
                return super()._get_sampling_model() if self.freeze_for_sampling else self.model

            def build_model(self, X: Any, y: Any, **kwargs: Any) -> None:
                from mmmlib import centring, whitening

                with centring.centred(self), whitening.whitened(self):
                    super().build_model(X, y, **kwargs)

            def forward_pass(self, x: Any, dims: tuple[str, ...]) -> Any:
                if self.roas is None or not self.adstock_first:
                    return super().forward_pass(x, dims)
                return self.roas.contributions(self, x, lambda data: super(EngineMMM, self).forward_pass(data, dims))

        _MMM_CLASS = EngineMMM
    return _MMM_CLASS


def build(
    dataset: Dataset, structure: structures.Structure | None = None, target_scale: float | None = None
) -> tuple[Any, pd.DataFrame, pd.Series, dict[str, float]]:
    """An unfitted pymc-marketing MMM of one structure (the config's first candidate by default) and its inputs.

    ``target_scale`` fixes the scale the KPI is divided by (default: its largest value on the fitted rows), so that
    the priors, which live on the scaled KPI, can be those of another KPI (simulation-based calibration).
    """
    from pymc_marketing.mmm.scaling import FixedScaling

    cfg = dataset.config
    structure = structure or structures.candidates(cfg.adstock, cfg.saturation, cfg.baseline_form)[0]
    X, y, scales = design(dataset, structure.baseline)
    controls = [c for c in X.columns if c not in ("date", *cfg.channel_columns)]
    mmm = mmm_class()(
        date_column="date",
        channel_columns=list(cfg.channel_columns),
        target_column=cfg.target_column,
        control_columns=controls or None,
        adstock=structures.adstock_component(structure.adstock, cfg.adstock_max_lag),
        saturation=structures.saturation_component(structure.saturation, 1.0),  # derived from ROAS: see below
        yearly_seasonality=seasonality.fourier_order(cfg.yearly_seasonality) or None,
        model_config=_model_config(cfg, controls) or None,
        scaling={"target": FixedScaling(dims=(), value=target_scale)} if target_scale else None,
    )
    effect = f"saturation_{structures.saturation_family(structure.saturation).effect}"
    if effect not in (cfg.priors or {}):  # a prior the user set on the effect size itself replaces the ROAS prior
        mmm.roas = roas_parameterisation(dataset, structure.saturation, X, y)
    return mmm, X, y, scales


PRIOR_DRAWS = 500  # prior draws kept per candidate for the "not identified" rule (prior vs posterior sd)


def fit_structure(
    dataset: Dataset,
    structure: structures.Structure,
    settings: dict[str, Any],
    sampler: str,
    seed: int,
    progressbar: bool,
    lift_tests: pd.DataFrame | None,
    target_scale: float | None = None,
    rule: Any = None,
    centred: tuple[bool, ...] | None = None,
) -> Fitted:
    """Fit one structure with NUTS; the pointwise log-likelihood is kept for the out-of-sample comparison.

    ``target_scale``: see :func:`build`. ``rule``: the :class:`mmmlib.sampling.StopRule` of the ``numpyro`` and
    ``nutpie`` samplers (default: stop when the diagnostics are met, at most ``settings["draws"]`` per chain).
    ``centred``: a geo fit's channels whose geo offsets are sampled centred (:func:`fit_geo_structure`).
    """
    hierarchical = dataset.hierarchical
    if hierarchical:
        from mmmlib import geo_model

        mmm, X, y, scales = geo_model.build(dataset, structure, centred)
        X_fit, y_fit = X, y  # the config refuses holdout_periods with geo models
    else:
        mmm, X, y, scales = build(dataset, structure, target_scale)
        X_fit, y_fit = _fit_rows(dataset, X, y)
    mmm.build_model(X_fit, y_fit)
    if lift_tests is not None and len(lift_tests):
        mmm.add_lift_test_measurements(lift_measurements(dataset, lift_tests))
        log.info("calibrating with %d lift tests", len(lift_tests))
    log.info(
        "sampling %s: %s chains × %s draws (%s tune) with %s, target_accept %s",
        structure.name,
        settings["chains"],
        settings["draws"],
        settings["tune"],
        sampler,
        settings["target_accept"],
    )
    start = time.perf_counter()
    if sampler in STOPPING_SAMPLERS and rule is None:
        rule = stop_rule(settings)
    if sampler == ENGINE:
        from mmmlib import sampling

        mmm.engine = {
            "chains": settings["chains"],
            "tune": settings["tune"],
            "target_accept": settings["target_accept"],
            "rule": rule,
            "seed": seed,
            "dense": sampling.GEO_DENSE_MASS if hierarchical else sampling.DENSE_MASS,
        }
        idata = mmm.fit(X_fit, y_fit, random_seed=seed, progressbar=False)
    else:
        from mmmlib import nutpie_cache, nutpie_stop

        nutpie = sampler == "nutpie"
        # nutpie samples the model as built, national and geo alike: a new dataset (a refit with one more week) reuses
        # the code compiled for the last (a 10-geo refresh 80 s instead of 174 s, docs/geo.md)
        mmm.freeze_for_sampling = not nutpie
        with (
            nutpie_cache.installed() if nutpie else contextlib.nullcontext(),
            nutpie_stop.installed(rule) if nutpie else contextlib.nullcontext(),
            _deterministics_quietly(compact=hierarchical),
        ):
            idata = mmm.fit(
                X_fit,
                y_fit,
                chains=settings["chains"],
                cores=settings["chains"],
                draws=settings["draws"],
                tune=settings["tune"],
                target_accept=settings["target_accept"],
                nuts_sampler=sampler,
                random_seed=seed,
                progressbar=progressbar,
            )
    _add_log_likelihood(idata, mmm, "likelihood" in (dataset.config.priors or {}))
    if hierarchical:
        const = idata["constant_data"].to_dataset()
        idata["constant_data"] = const.assign(geo_model.extra_data(dataset))
        if mmm.roas is not None:  # the hierarchical ROAS prior, for the "not identified" rule
            idata.attrs[roas_priors.GEO_ROAS_PRIOR_ATTR] = mmm.roas.record()
    else:
        _add_prior(idata, mmm, structure, dataset.config.adstock_max_lag, seed)
        if dataset.config.media_columns:
            spend = xr.DataArray(
                channel_spend(dataset), dims=("date", "channel"), coords={"date": X["date"].to_numpy()}
            )
            add_spend(idata, spend.assign_coords(channel=list(dataset.config.channel_columns)))
    seconds = time.perf_counter() - start
    log.info("%s sampled in %.1f s", structure.name, seconds)
    holdout = dataset.config.holdout_periods
    return Fitted(
        mmm,
        idata,
        X,
        y,
        scales,
        sampler,
        settings["chains"],
        int(idata["posterior"].sizes["draw"]),
        seconds,
        holdout,
        settings["tune"],
        settings["target_accept"],
        structure=structure,
    )


@contextlib.contextmanager
def _deterministics_quietly(compact: bool = False) -> Iterator[None]:
    """pymc-marketing's pass over the deterministics after sampling (``pm.compute_deterministics``) without PyMC's
    progress bar: its terminal-control lines filled every run's fit.log; the pass takes seconds and the log says when
    sampling ended. ``compact`` (geo fits): the pass is :func:`_compact_deterministics`; otherwise its compiled
    function comes from the graph cache (:func:`mmmlib.graph_cache.compute_deterministics`) unless
    ``MMM_NUTPIE_CACHE=0``."""
    import pymc as pm

    from mmmlib import graph_cache, nutpie_cache

    original = pm.compute_deterministics
    quiet = functools.partial(original, progressbar=False)
    if compact:
        pm.compute_deterministics = functools.partial(_compact_deterministics, quiet)
    elif nutpie_cache.enabled():
        pm.compute_deterministics = functools.partial(graph_cache.compute_deterministics, quiet)
    else:
        pm.compute_deterministics = quiet
    try:
        yield
    finally:
        pm.compute_deterministics = original


def _compact_deterministics(compute: Any, dataset: Any, *, extend_dataset: bool = False, **kwargs: Any) -> Any:
    """``compute`` (``pm.compute_deterministics``) adding every deterministic to ``dataset``, the per-period ones
    (contributions, ``mu``: what :data:`mmmlib.analysis.FREE_VARS_SKIP` leaves out of the diagnostics) one at a time
    and stored in float32, as the run keeps them (:func:`mmmlib.stacking.slim`, ``posterior.nc``).

    In one pass they are float64 arrays of every draw, week and geo at once (a 40-geo full-mode fit's 4 × 1,750
    draws: about 6.6 GB); in a profiled 40-geo pair member, sampling's peak fell from 1.86 to 1.54 GB (the fit's
    overall peak was the roll-up, :func:`mmmlib.geo._geo_sum`; docs/geo.md). The parameters the diagnostics read stay
    float64 and are computed as before; any other call is passed through."""
    import pymc as pm

    if not extend_dataset or kwargs.get("var_names") is not None or kwargs.get("group") not in (None, "posterior"):
        return compute(dataset, extend_dataset=extend_dataset, **kwargs)
    names = [d.name for d in pm.modelcontext(kwargs.get("model")).deterministics]
    per_period = [n for n in names if not analysis.diagnosed(n)]
    rest = [n for n in names if n not in per_period]
    if rest:
        compute(dataset, var_names=rest, extend_dataset=True, **kwargs)
    posterior = dataset["posterior"] if isinstance(dataset, xr.DataTree) else dataset
    for name in per_period:
        new = compute(dataset, var_names=[name], **kwargs)
        posterior[name] = new[name].astype(np.float32)
        del new
    return dataset


def divergences(idata: Any) -> int:
    """How many post-warm-up transitions diverged."""
    return int(np.asarray(idata["sample_stats"]["diverging"].values).sum())


def fit_checked(
    dataset: Dataset,
    structure: structures.Structure,
    settings: dict[str, Any],
    sampler: str,
    seed: int,
    progressbar: bool,
    lift_tests: pd.DataFrame | None,
    rule: Any = None,
) -> Fitted:
    """:func:`fit_structure`, refitted once at ``RETRY_TARGET_ACCEPT`` when its sampler diverged; the refit replaces
    the first attempt (whose draws may be biased) and records it in ``retried``."""
    fitted = fit_structure(dataset, structure, settings, sampler, seed, progressbar, lift_tests, rule=rule)
    first = divergences(fitted.idata)
    if not first or settings["target_accept"] >= RETRY_TARGET_ACCEPT:
        return fitted
    log.warning(
        "%s: %d divergent transitions at target_accept %s; refitting with smaller steps (target_accept %s)",
        structure.name,
        first,
        settings["target_accept"],
        RETRY_TARGET_ACCEPT,
    )
    smaller, retried = retry_settings(settings, first)
    again = fit_structure(dataset, structure, smaller, sampler, seed, progressbar, lift_tests, rule=rule)
    again.fit_seconds += fitted.fit_seconds
    again.retried = retried
    return again


def retry_settings(settings: dict[str, Any], divergent: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A refit's settings (smaller steps: ``RETRY_TARGET_ACCEPT``) and the record of the attempt it replaces."""
    return {**settings, "target_accept": RETRY_TARGET_ACCEPT}, {
        "divergences": divergent,
        "target_accept": settings["target_accept"],
    }


def _add_log_likelihood(idata: Any, mmm: Any, custom: bool) -> None:
    """Pointwise log-likelihood of the observed weeks, for PSIS-LOO: in numpy for the default Normal likelihood
    (from ``mu`` and ``y_sigma``, no second compile), through PyMC for a likelihood the config replaced."""
    if custom:
        import pymc as pm

        with mmm.model:
            pm.compute_log_likelihood(idata, var_names=["y"], extend_inferencedata=True, progressbar=False)
        return
    post = idata["posterior"]
    const = idata["constant_data"]
    y = const["target_data"].sel(date=post["date"]) / const["target_scale"]
    sigma = post["y_sigma"]
    ll = -0.5 * np.log(2 * np.pi * sigma**2) - (y - post["mu"]) ** 2 / (2 * sigma**2)
    idata["log_likelihood"] = xr.Dataset({"y": ll.transpose("chain", "draw", "date", ...)})


def _record_roas(
    idata: Any,
    roas: roas_priors.RoasParameterisation,
    family: str,
    media: np.ndarray,
    channel_scale: np.ndarray,
    target_scale: float,
) -> None:
    """Keep the sampled ROAS prior in the run, and give the stored returns component a prior on its effect size.

    Our model derives the effect size from ROAS; pymc-marketing's own ``MMM.load_from_idata`` rebuilds the model
    from the stored components, where an effect size fixed at 1 would silently drop it. The stored component
    therefore samples the effect size, with the lognormal the ROAS prior implies at the curve's central shape, so
    pymc-marketing's curves, predictions and optimiser evaluated on our posterior draws are right.
    """
    idata.attrs[roas_priors.ROAS_PRIOR_ATTR] = roas.record()
    try:
        component = json.loads(idata.attrs["saturation"])
    except (KeyError, TypeError, ValueError):
        return
    effect = roas_priors.effect_prior(
        family,
        roas.mu,
        roas.sigma,
        spend=roas.spend[None, :],
        channel_scale=channel_scale,
        target_scale=target_scale,
        value=roas.value,
        media=media,
    )
    component.setdefault("priors", {})[roas.effect] = effect.to_dict()
    idata.attrs["saturation"] = json.dumps(component)
    if "model_config" in idata.attrs:  # pymc-marketing's loader lets the model config override the component
        config = json.loads(idata.attrs["model_config"])
        config[f"{component.get('prefix', 'saturation')}_{roas.effect}"] = effect.to_dict()
        idata.attrs["model_config"] = json.dumps(config)
    if "id" in idata.attrs:  # the loader checks the model's hash against the file's
        from pymc_marketing.mmm import MMM

        idata.attrs["id"] = MMM(**MMM.idata_to_init_kwargs(idata)).id


def _add_prior(idata: Any, mmm: Any, structure: structures.Structure, l_max: int, seed: int) -> None:
    """Prior draws of the channel contributions (``prior`` group), for the prior sd of each channel's ROAS."""
    from mmmlib.priors import prior_contributions

    post = idata["posterior"]
    const = idata["constant_data"]
    spend = np.asarray(const["channel_data"].sel(date=post["date"]).values, dtype=float)
    scale = np.asarray(const["channel_scale"].values, dtype=float).reshape(-1)
    roas = getattr(mmm, "roas", None)
    target_scale = float(np.asarray(const["target_scale"].values).reshape(-1)[0])
    if roas is not None:
        _record_roas(idata, roas, structure.saturation, spend, scale, target_scale)
    draws = prior_contributions(
        dict(idata.attrs),
        structure.adstock,
        structure.saturation,
        spend,
        scale,
        l_max,
        PRIOR_DRAWS,
        seed,
        roas=roas,
        target_scale=target_scale,
    )
    if draws is None:
        return
    idata["prior"] = xr.Dataset(
        {"channel_contribution": (("chain", "draw", "date", "channel"), draws[None])},
        coords={
            "chain": [0],
            "draw": np.arange(PRIOR_DRAWS),
            "date": post["date"].values,
            "channel": post["channel"].values,
        },
    )


def fit(
    dataset: Dataset,
    request: FitRequest,
    progressbar: bool = True,
    lift_tests: pd.DataFrame | None = None,
    mix_orders: bool = True,
) -> Fitted:
    """Fit every candidate structure with NUTS and combine them (``request.sampler``: nutpie, the default, pymc or
    numpyro); the request's ``chains``, ``tune`` and ``draws`` override its mode's settings (power users; too few
    gives unusable fits). ``mix_orders``: with ``yearly_seasonality: auto``, the first structure's fit with the
    order not kept joins the candidates (a geo run's choice on the national sum keeps one order for its geos)."""
    from mmmlib import stacking

    cfg = dataset.config
    if dataset.hierarchical:
        return fit_geos(dataset, request, progressbar, lift_tests)
    shapes = structures.candidates(cfg.adstock, cfg.saturation, cfg.baseline_form)
    channels = len(cfg.channel_columns)
    settings = sampler_settings(request.mode, channels, len(shapes), **request.overrides)
    sampler, seed, draws = request.sampler or DEFAULT_SAMPLER, request.seed, request.draws
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}")
    rule = fixed_rule(draws, sampler, settings)
    jobs = [(dataset, s, settings, sampler, seed, lift_tests, rule) for s in shapes]
    season = None
    choosing = cfg.yearly_seasonality == seasonality.AUTO
    time_slices = request.mode in TIME_SLICE_MODES and len(shapes) > 1
    workers = fit_workers.first_pool(len(jobs), choosing_seasonality=choosing)
    # full mode's fold fits follow in the candidates' worker processes: a fresh pair costs seconds of imports
    shared = fit_workers.pool(workers) if time_slices and workers > 1 else contextlib.nullcontext()
    held_out = None
    with shared as pool:
        if choosing:
            dataset, members, season, other, other_data = _fit_choosing_seasonality(jobs, progressbar, pool=pool)
            if mix_orders:
                members = [*members, other]
        else:
            members = _fit_jobs(jobs, workers, progressbar, pool=pool)
        if time_slices:
            from mmmlib import time_slice

            fold_settings = sampler_settings("quick", channels, len(shapes), fold=True, **request.overrides)

            def fit_folds(folds: list[tuple[Dataset, structures.Structure]]) -> list[Fitted]:
                jobs = [(ds, s, fold_settings, sampler, seed, lift_tests, None) for ds, s in folds]
                at_once = workers if pool is not None else candidate_workers(len(jobs))
                return _fit_jobs(jobs, at_once, score=False, pool=pool)  # weighed by their forecasts alone

            held_out = time_slice.score(dataset, shapes, fit_folds)
            if held_out is not None and choosing and mix_orders:  # the other order's fit, on its own folds
                scored = time_slice.score(other_data, [shapes[0]], fit_folds)
                held_out[other.structure.name] = scored[shapes[0].name]  # type: ignore[index]
    combined = stacking.combine(members, seed=seed, held_out=held_out)
    if season is not None:
        season = seasonality.joined(season, combined.candidates) if choosing and mix_orders else season
        combined.idata.attrs[seasonality.ATTR] = json.dumps(season)
    return combined


def _fit_choosing_seasonality(
    jobs: list[tuple[Any, ...]], progressbar: bool = False, pool: Any = None
) -> tuple[Dataset, list[Fitted], dict[str, Any], Fitted, Dataset]:
    """``yearly_seasonality: auto``: the first candidate of ``jobs`` fitted with each of
    :data:`mmmlib.seasonality.ORDERS` side by side, compared by PSIS-LOO (:func:`mmmlib.seasonality.choose`), then
    the other candidates with the order kept, in the same worker processes; the first candidate's fit with that order
    is reused, so the choice costs one more fit (in ``pool``'s workers when given). Returns the data with the order
    kept, the candidates fitted with it, the record, and the first candidate's fit with the other order (named by its
    order, :attr:`mmmlib.structures.Structure.harmonics`) with its data: it joins the mixture
    (:func:`mmmlib.seasonality.renamed`)."""
    from mmmlib import stacking

    dataset = jobs[0][0]
    variants = {k: replace(dataset, config=replace(dataset.config, yearly_seasonality=k)) for k in seasonality.ORDERS}
    first = [(variants[k], *jobs[0][1:]) for k in seasonality.ORDERS]
    workers = fit_workers.first_pool(len(jobs), choosing_seasonality=True)
    log.info(
        "choosing the yearly seasonality's order: %s fitted with %s harmonics", jobs[0][1].name, seasonality.ORDERS
    )
    own = pool is None and workers > 1
    with fit_workers.pool(workers) if own else contextlib.nullcontext(pool) as pool:
        fits = dict(zip(seasonality.ORDERS, _fit_jobs(first, workers, progressbar, pool=pool), strict=True))
        for f in fits.values():
            if f.score is None:  # fitted here rather than in a worker
                f.score = stacking.score(f)
        order, record = seasonality.choose({k: f.score[1] for k, f in fits.items()})  # type: ignore[index]
        log.info(
            "yearly seasonality: %d harmonics (%d ahead by %s ± %s elpd)",
            order,
            seasonality.ORDERS[1],
            record["elpd_diff"],
            record["diff_se"],
        )
        rest = [(variants[order], *job[1:]) for job in jobs[1:]]
        members = [fits[order], *(_fit_jobs(rest, workers, progressbar, pool=pool) if rest else [])]
    other = next(k for k in seasonality.ORDERS if k != order)
    return variants[order], members, record, seasonality.renamed(fits[other], other), variants[other]


def _fit_jobs(
    jobs: list[tuple[Any, ...]], workers: int, progressbar: bool = False, score: bool = True, pool: Any = None
) -> list[Fitted]:
    """Fit ``(dataset, structure, settings, sampler, seed, lift_tests, rule)`` jobs, in worker processes when
    ``workers`` > 1 (``pool``'s, from :func:`mmmlib.fit_workers.pool`, when given), else one after another here;
    each comes back with its held-out periods predicted (and, from a worker, scored by PSIS-LOO when ``score``).
    Candidates (``score``) that diverge are refitted once (:func:`fit_checked`); fold fits, which only forecast,
    are not."""
    if pool is None and workers > 1:
        with fit_workers.pool(workers) as fresh:
            return _fit_jobs(jobs, workers, progressbar, score, pool=fresh)
    if pool is not None:
        log.info("fitting %d candidate structures, %d at a time in worker processes", len(jobs), workers)
        return list(pool.map(functools.partial(_fit_job, score=score), jobs))
    out = []
    fitter = fit_checked if score else fit_structure
    for dataset, structure, settings, sampler, seed, lift_tests, rule in jobs:
        fitted = fitter(dataset, structure, settings, sampler, seed, progressbar, lift_tests, rule=rule)
        fitted.holdout_draws = predict_holdout(fitted, seed)
        out.append(fitted)
    return out


def stop_rule(settings: dict[str, Any]) -> Any:
    """The stopping rule of ``settings``: at most its draws, its own targets where it has them (``stop``)."""
    from mmmlib.sampling import StopRule

    return StopRule(
        min_draws=min(StopRule.min_draws, settings["draws"]), max_draws=settings["draws"], **settings.get("stop", {})
    )


def fixed_rule(draws: int | None, sampler: str, settings: dict[str, Any]) -> Any:
    """The stopping rule when a number of draws was asked for (that many are drawn); None otherwise."""
    if draws is None or sampler not in STOPPING_SAMPLERS:
        return None
    from mmmlib.sampling import StopRule

    return StopRule.fixed(settings["draws"])


STRUCTURE_CHOICE_ATTR = "structure_choice"  # the national fit's candidate records, kept with a geo fit
STRUCTURE_FITTED_ATTR = "structure_fitted"  # the structure a geo fit sampled over its geos
STRUCTURE_KEPT_ATTR = "structure_kept"  # and, when it was the previous run's, what was kept (mmmlib.refresh)
STRUCTURE_SIMPLER_ATTR = "structure_simpler"  # or, when a simpler one within noise replaced the best (mmmlib.refresh)
STRUCTURE_SECOND_ATTR = "structure_second"  # and the one fitted beside it, which the sum cannot tell apart either


def fit_geos(
    dataset: Dataset, request: FitRequest, progressbar: bool = True, lift_tests: pd.DataFrame | None = None
) -> Fitted:
    """The hierarchical geo fit (:mod:`mmmlib.geo_model`) of the structure the national sum prefers.

    The candidate structures are compared on the national sum (the same data summed over geos): fitting every
    candidate over every geo would multiply the longest step. The best-weighted one is then fitted over the geos, or
    the previous run's (``request.previous``) while the data cannot tell it from the best, or else one with a simpler
    returns curve that the data cannot tell from the best either (:mod:`mmmlib.refresh`); and beside it the
    highest-weighted other structure the sum cannot tell from the best, if any: the two geo fits are weighed by
    PSIS-LOO on the geos' data and combined (:mod:`mmmlib.stacking`). On synthetic geos with Hill curves the sum
    could not tell Hill from logistic returns, and the logistic fit alone pinned the largest channel's ROAS a few
    per cent off the truth with an interval a few per cent wide (docs/geo.md).
    """
    if lift_tests is not None and len(lift_tests):  # each is one geo's: they calibrate the geo fit, not the sum's
        log.info(
            "%d lift tests calibrate the geo fit; the structure is chosen on the national sum without them",
            len(lift_tests),
        )
    national = national_sum(dataset)
    log.info("choosing the structure on the national sum of %d geos", len(dataset.geos))
    chosen = fit(national, request, progressbar, None, mix_orders=False)
    structure = chosen.structure or structures.candidates("geometric", "logistic", dataset.config.baseline_form)[0]
    kept = _kept_structure(chosen.candidates, request.previous, dataset.config)
    simpler = None if kept is not None else _simpler_structure(chosen.candidates, dataset.config)
    if kept is not None:
        structure = kept[0]
    elif simpler is not None:
        structure = simpler[0]
    season = chosen.idata.attrs.get(seasonality.ATTR)
    if season:  # auto: the order kept on the national sum is the geo fit's
        order = json.loads(season)["order"]
        dataset = replace(dataset, config=replace(dataset.config, yearly_seasonality=order))
    cfg = dataset.config
    settings = sampler_settings(request.mode, len(cfg.channel_columns), 1, geo=True, **request.overrides)
    sampler = request.sampler or DEFAULT_SAMPLER
    rule = fixed_rule(request.draws, sampler, settings)
    records = chosen.candidates or [{"name": structure.name, "weight": 1.0}]
    second = _second_structure(chosen.candidates, structure, dataset.config)
    from mmmlib import stacking

    if second is None:
        log.info("fitting %s over %d geos", structure.name, len(dataset.geos))
        # no progress bar: in a papermill kernel it is a widget whose thousands of updates papermill was still
        # draining minutes after a 40-geo fit had finished (the run failed on that wait); the log says when it ends
        fitted = fit_geo_structure(dataset, structure, settings, sampler, request.seed, lift_tests, rule)
    else:  # weighed by PSIS-LOO on the geos' own data and combined, as a national fit's candidates are
        pair = pair_settings(settings, request.mode)
        jobs = [(dataset, shape, pair, sampler, request.seed, lift_tests, rule) for shape in (structure, second[0])]
        members = _fit_geo_pair(jobs)
        fitted = stacking.combine(members, seed=request.seed)
        fitted.members, fitted.mmm = None, None
        fitted.structure = structure
    fitted.idata.attrs[STRUCTURE_CHOICE_ATTR] = json.dumps(records)
    fitted.idata.attrs[STRUCTURE_FITTED_ATTR] = structure.name
    if kept is not None:
        fitted.idata.attrs[STRUCTURE_KEPT_ATTR] = json.dumps(kept[1])
    if simpler is not None:
        fitted.idata.attrs[STRUCTURE_SIMPLER_ATTR] = json.dumps(simpler[1])
    if second is not None:
        fitted.idata.attrs[STRUCTURE_SECOND_ATTR] = json.dumps(second[1])
    if season:
        fitted.idata.attrs[seasonality.ATTR] = season
    fitted.fit_seconds += chosen.fit_seconds
    return fitted


def fit_geo_structure(
    dataset: Dataset,
    structure: structures.Structure,
    settings: dict[str, Any],
    sampler: str,
    seed: int,
    lift_tests: pd.DataFrame | None,
    rule: Any = None,
) -> Fitted:
    """One hierarchical geo fit, refitted once with some channels' geo offsets centred where the spread of the geos'
    returns missed the stopping rule's ESS target and its own draws say those channels' geos are pinned down by
    their data (:func:`mmmlib.geo_model.centring`): the same model in coordinates where it mixes. The refit is
    kept when its slowest parameter mixed better. On 100 synthetic geos the non-centred fit ended at the spread's
    bulk ESS 64 (R-hat 1.035) with every other parameter above 800 (docs/geo.md)."""
    from mmmlib import geo_model
    from mmmlib.sampling import convergence

    if rule is None and sampler in STOPPING_SAMPLERS:  # the rule fit_structure would use, resolved once for both
        rule = stop_rule(settings)
    fitted = fit_structure(dataset, structure, settings, sampler, seed, False, lift_tests, rule=rule)
    posterior = fitted.idata["posterior"]
    if rule is None or not rule.ess or "saturation_roas_spread" not in posterior:
        return fitted
    slowest = convergence({"spread": posterior["saturation_roas_spread"].transpose("chain", "draw", ...).to_numpy()})
    if min(slowest["ess_bulk_min"], slowest["ess_tail_min"]) >= rule.ess:
        return fitted
    centred = geo_model.centring(posterior)
    if not any(centred):
        return fitted
    names = [c for c, yes in zip(dataset.config.channel_columns, centred, strict=True) if yes]
    log.info(
        "%s over the geos: the spread of the geos' returns mixed slowly (bulk / tail ESS %.0f / %.0f); refitting "
        "with the geo offsets of %s centred, which their geos' data pin down",
        structure.name,
        slowest["ess_bulk_min"],
        slowest["ess_tail_min"],
        ", ".join(names),
    )
    again = fit_structure(dataset, structure, settings, sampler, seed, False, lift_tests, rule=rule, centred=centred)
    first, second = _slowest(fitted), _slowest(again)
    kept = again if second >= first and divergences(again.idata) <= divergences(fitted.idata) else fitted
    log.info(
        "%s over the geos: min ESS %.0f non-centred, %.0f with %s centred; keeping the %s",
        structure.name,
        first,
        second,
        ", ".join(names),
        "refit" if kept is again else "first fit",
    )
    kept.fit_seconds = fitted.fit_seconds + again.fit_seconds
    return kept


def _slowest(fitted: Fitted) -> float:
    """A geo fit's min bulk or tail ESS over the parameters its diagnostics report, but the geo offsets, which are
    other quantities in a fit with some channels centred."""
    from mmmlib.sampling import convergence

    posterior = fitted.idata["posterior"]
    names = [n for n in analysis.diagnosed_names(posterior) if not n.endswith("_roas_offset")]
    diag = convergence({n: posterior[n].transpose("chain", "draw", ...).to_numpy() for n in names})
    return min(diag["ess_bulk_min"], diag["ess_tail_min"])


def national_sum(dataset: Dataset) -> Dataset:
    """The geos' national sum as a national dataset (``geo_model: aggregate``), on which the structure is chosen: its
    config must allow what a national fit does, such as full mode's time-slice folds holding weeks out (a
    hierarchical config refuses ``holdout_periods``, so ``mmm fit --mode full`` on a geo config failed there)."""
    return replace(dataset, geo_frame=None, config=replace(dataset.config, geo_model="aggregate"))


def pair_settings(settings: dict[str, Any], mode: str) -> dict[str, Any]:
    """A geo pair's fits stop at a national candidate's targets (``PER_CANDIDATE``'s ``stop``: bulk and tail ESS 250,
    the mode's R-hat), within the geo fit's draws: like candidates they are members of a mixture, which keeps quick
    mode's ESS 200 from them (on Meridian's 40 geos each drew all 1,000 draws, 7–9 minutes, against a single geo
    fit's ESS 400 and R-hat 1.01)."""
    stop = PER_CANDIDATE.get(mode, {}).get("stop")
    return {**settings, "stop": stop} if stop else dict(settings)


def _fit_geo_pair(jobs: list[tuple[Any, ...]]) -> list[Fitted]:
    """The two structures' geo fits, each in a fresh worker process that exits when it is done (so one fit's memory
    is returned before the next samples: two 40-geo fits in one process held 8.68 GB), scored and slimmed there
    (:func:`mmmlib.stacking.slim`). The weighing leaves out a fit whose sampler diverged, so where exactly one did and
    the geos prefer it (``GEO_REFIT_WEIGHT`` of the weight by its PSIS-LOO as it is), it is refitted once at
    ``RETRY_TARGET_ACCEPT`` rather than leaving the structure they predict worse alone (on synthetic geos that cost a
    channel's coverage). A minority fit that diverged is left out (on Meridian's 40 geos its refit would have cost
    over 9 minutes for a twentieth of the weight); where both diverged both are kept and the run is flagged, since
    refitting two geo fits would double the longest step. ``$MMM_FIT_WORKERS=1`` fits them here, one after the
    other."""
    from mmmlib import stacking

    members = [_geo_member(job) for job in jobs]
    diverged = [i for i, m in enumerate(members) if m.score is not None and m.score[0]["divergences"]]
    settings = jobs[0][2]
    if len(diverged) != 1 or settings["target_accept"] >= RETRY_TARGET_ACCEPT:
        return members
    i = diverged[0]
    first, other = members[i], members[1 - i].structure.name
    count = first.score[0]["divergences"]  # type: ignore[index]
    weight = stacking.loo_weights(members)[i]
    if weight < GEO_REFIT_WEIGHT:
        log.info(
            "%s over the geos: %d divergent transitions; left out rather than refitted, since the geos prefer %s "
            "(weight %.2f against %.2f by PSIS-LOO)",
            first.structure.name,
            count,
            other,
            1 - weight,
            weight,
        )
        return members
    log.warning(
        "%s over the geos: %d divergent transitions at target_accept %s; refitting it with smaller steps "
        "(target_accept %s) rather than leaving %s alone",
        first.structure.name,
        count,
        settings["target_accept"],
        RETRY_TARGET_ACCEPT,
        other,
    )
    smaller, retried = retry_settings(settings, count)
    members[i] = _geo_member((*jobs[i][:2], smaller, *jobs[i][3:]), retried=retried, earlier_seconds=first.fit_seconds)
    return members


def _geo_member(job: tuple[Any, ...], retried: dict[str, Any] | None = None, earlier_seconds: float = 0.0) -> Fitted:
    """One geo fit of a pair (:func:`_fit_geo_pair`), in a process of its own unless ``$MMM_FIT_WORKERS`` is 1."""
    dataset, shape = job[0], job[1]
    if candidate_workers(2) == 1:
        log.info("fitting %s over %d geos", shape.name, len(dataset.geos))
        return _slim_geo_fit(job, retried, earlier_seconds)
    log.info("fitting %s over %d geos in a worker process of its own", shape.name, len(dataset.geos))
    with fit_workers.pool(1) as pool:
        return pool.submit(_slim_geo_fit, job, retried, earlier_seconds).result()


def _slim_geo_fit(job: tuple[Any, ...], retried: dict[str, Any] | None, earlier_seconds: float) -> Fitted:
    """Fitted, its refit recorded (``retried``, the first attempt's seconds added), scored and slimmed."""
    from mmmlib import stacking

    dataset, structure, settings, sampler, seed, lift_tests, rule = job
    fitted = fit_geo_structure(dataset, structure, settings, sampler, seed, lift_tests, rule)
    fitted.retried, fitted.fit_seconds = retried, fitted.fit_seconds + earlier_seconds
    stacking.slim(fitted)
    return fitted


def _kept_structure(
    records: list[dict[str, Any]] | None, previous: str | None, cfg: Any
) -> tuple[structures.Structure, dict[str, Any]] | None:
    """The previous run's structure and what was kept, when :func:`mmmlib.refresh.keep_or_switch` keeps it."""
    from mmmlib import refresh

    choice = refresh.previous_choice(previous) if records and previous else None
    if choice is None:
        return None
    name, kept = refresh.keep_or_switch(records, choice[0])  # type: ignore[arg-type]
    shapes = _candidate_structures(cfg)
    if kept is None or name not in shapes:
        return None
    kept["run"] = choice[1]
    log.info(
        "keeping %s from run %s: the best on this data, %s, leads it by %.1f elpd (at most %g cannot be told apart)",
        name,
        kept["run"],
        kept["best"],
        kept["elpd_behind"],
        refresh.KEEP_ELPD,
    )
    return shapes[name], kept


def _candidate_structures(cfg: Any) -> dict[str, structures.Structure]:
    """The config's candidate structures by name."""
    return {s.name: s for s in structures.candidates(cfg.adstock, cfg.saturation, cfg.baseline_form)}


def _simpler_structure(
    records: list[dict[str, Any]] | None, cfg: Any
) -> tuple[structures.Structure, dict[str, Any]] | None:
    """The structure with a simpler returns curve within noise of the best, and the record of why
    (:func:`mmmlib.refresh.simpler_within_noise`); None when the best-weighted one is fitted."""
    from mmmlib import refresh

    if not records:
        return None
    shapes = _candidate_structures(cfg)
    sizes = {name: len(structures.saturation_family(s.saturation).shape_priors) for name, s in shapes.items()}
    simpler = refresh.simpler_within_noise(records, sizes)
    if simpler is None:
        return None
    log.info(
        "fitting %s over the geos: the best on the national sum, %s, leads it by %.1f elpd (at most %g cannot be told "
        "apart), and its returns curve has fewer parameters",
        simpler["structure"],
        simpler["best"],
        simpler["elpd_behind"],
        refresh.KEEP_ELPD,
    )
    return shapes[simpler["structure"]], simpler


def _second_structure(
    records: list[dict[str, Any]] | None, fitted: structures.Structure, cfg: Any
) -> tuple[structures.Structure, dict[str, Any]] | None:
    """The structure fitted over the geos beside ``fitted`` and the record of why
    (:func:`mmmlib.refresh.second_within_noise`); None when the national sum tells every other one apart."""
    from mmmlib import refresh

    if not records:
        return None
    second = refresh.second_within_noise(records, fitted.name)
    shapes = _candidate_structures(cfg)
    if second is None or second["structure"] not in shapes:
        return None
    log.info(
        "fitting %s over the geos as well: the national sum's best, %s, leads it by %.1f elpd (at most %g cannot be "
        "told apart), so the geos' own data weigh the two",
        second["structure"],
        second["best"],
        second["elpd_behind"],
        refresh.KEEP_ELPD,
    )
    return shapes[second["structure"]], second


def _fit_job(job: tuple[Any, ...], score: bool = True) -> Fitted:
    """One candidate in a worker: fitted, scored and its held-out periods predicted while the model exists, then the
    model dropped (it is not picklable and nothing after stacking needs it)."""
    from mmmlib import stacking

    dataset, structure, settings, sampler, seed, lift_tests, rule = job
    fitter = fit_checked if score else fit_structure
    fitted = fitter(dataset, structure, settings, sampler, seed, False, lift_tests, rule=rule)
    fitted.holdout_draws = predict_holdout(fitted, seed)
    fitted.score = stacking.score(fitted) if score else None
    fitted.mmm = None
    return fitted


def predict_holdout(fitted: Fitted, seed: int = 0) -> np.ndarray | None:
    """Posterior draws of the noise-free KPI on the held-out periods, ``(draw, period)``, carry-over included."""
    if not fitted.holdout:
        return None
    if fitted.holdout_draws is not None:
        return fitted.holdout_draws
    if fitted.members:
        from mmmlib.stacking import mix_draws

        parts = [predict_holdout(m, seed) for m in fitted.members]  # every member holds the same periods out
        return mix_draws([p for p in parts if p is not None], fitted.weights or [], seed)
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
