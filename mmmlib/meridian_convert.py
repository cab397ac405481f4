"""Turn a fitted Google Meridian model into a neutral exchange (netCDF + JSON) that our environment can read.

Meridian conflicts with our main environment, so this script runs in its own one and is the only place that touches
Meridian objects::

    .venv-meridian/bin/python -I mmmlib/meridian_convert.py MODEL OUT_DIR

MODEL is a ``save_meridian`` file (``.binpb``, ``.txtpb``, ``.textproto``) or a ``save_mmm`` pickle (``.pkl``,
``.pickle``, ``.joblib``); pickles are read only through ``safe_pickle.load_joblib`` (beside this file: with ``-I``
this folder is not on ``sys.path``), so a pickle naming anything outside a saved model is refused before it runs.
It writes ``OUT_DIR/exchange.nc`` (one xarray Dataset: data, Meridian's scalings, every posterior draw of the
contributions, expected outcome, ROI, marginal ROI and response curves, all computed by Meridian's own Analyzer) and
``OUT_DIR/exchange.json`` (model structure, diagnostics, model review, and ``curve_check``: the numerical proof that
the stored parameters and scalings reproduce Meridian's incremental outcome). Intervals are not computed here: the
reader computes them from the draws. Everything written to stderr by TensorFlow/JAX/Meridian goes to
``OUT_DIR/convert.log``; stderr itself carries one sentence when the conversion is refused (exit 1) or breaks (2).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported (by Meridian or by a pickle)

import numpy as np

FORMAT = "mmmlib-meridian-exchange"
FORMAT_VERSION = 1
PROTO_SUFFIXES = (".binpb", ".txtpb", ".textproto")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
CURVE_MULTIPLIERS = [round(0.1 * i, 1) for i in range(21)]  # 0, 0.1, ..., 2.0 times each channel's historical spend
MROI_INCREMENT = 0.01  # Meridian's default incremental_increase for marginal ROI
# Meridian's posterior dimension names and ours
DIM_NAMES = {"media_channel": "channel", "control_variable": "control"}


REEXEC_GUARD = "MMMLIB_MERIDIAN_CONVERT_REEXEC"


class Refusal(Exception):
    """The model cannot be converted; the message is the one sentence the user sees."""


class BackendMismatch(Exception):
    """A pickle holds tensors of the other Meridian backend (JAX / TensorFlow): rerun with MERIDIAN_BACKEND set."""

    def __init__(self, backend: str) -> None:
        super().__init__(backend)
        self.backend = backend


# --------------------------------------------------------------------------------------------------------------------
# Reading the model safely
# --------------------------------------------------------------------------------------------------------------------


def _load_safe_pickle() -> ModuleType:
    """safe_pickle.py from this file's folder (``-I`` keeps mmmlib off sys.path): its rule allows only data classes
    and the reconstructors a saved Meridian model needs."""
    path = Path(__file__).resolve().parent / "safe_pickle.py"
    spec = importlib.util.spec_from_file_location("mmmlib_safe_pickle", path)
    if spec is None or spec.loader is None:
        raise Refusal(f"safe_pickle.py is missing beside {Path(__file__).name}, so no pickle can be read safely.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_model(path: Path) -> Any:
    """The fitted Meridian model in ``path``, or :class:`Refusal` with the sentence saying why not."""
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in PROTO_SUFFIXES + PICKLE_SUFFIXES:
        raise Refusal(
            f"{name} is not a saved Meridian model: expected a save_meridian file "
            f"({', '.join(PROTO_SUFFIXES)}) or a save_mmm pickle ({', '.join(PICKLE_SUFFIXES)})."
        )
    if not path.is_file():
        raise Refusal(f"{name} does not exist or is not a file.")
    if suffix in PICKLE_SUFFIXES:
        safe_pickle = _load_safe_pickle()
        try:
            model = safe_pickle.load_joblib(path)
        except safe_pickle.UnsafePickleError as exc:
            raise Refusal(f"{name} was refused: {exc}.") from exc
        except Exception as exc:  # any damage in a file someone uploaded is a refusal
            raise Refusal(f"{name} could not be read as a save_mmm pickle: {type(exc).__name__}: {exc}.") from exc
    else:
        from meridian.schema.serde import meridian_serde

        try:
            model = meridian_serde.load_meridian(str(path))
        except Exception as exc:
            raise Refusal(f"{name} could not be read as a save_meridian file: {type(exc).__name__}: {exc}.") from exc

    from meridian.model.model import Meridian

    if not isinstance(model, Meridian):
        raise Refusal(f"{name} is not a Meridian model: it holds a {type(model).__module__}.{type(model).__name__}.")
    if suffix in PICKLE_SUFFIXES:
        from meridian import backend

        saved, active = str(model.computation_backend).upper(), backend.computation_backend().name.upper()
        if saved in ("JAX", "TENSORFLOW") and saved != active:
            raise BackendMismatch(saved.lower())  # its pickled tensors only compute under the backend that made them
    return model


def check_supported(model: Any, name: str) -> None:
    """Refuse what the exchange cannot express (only paid media with impressions and spend is), then unfitted models."""
    unsupported = [
        (model.n_rf_channels, "reach-and-frequency channels", model.input_data.rf_channel),
        (model.n_organic_media_channels, "organic media channels", model.input_data.organic_media_channel),
        (model.n_organic_rf_channels, "organic reach-and-frequency channels", model.input_data.organic_rf_channel),
        (model.n_non_media_channels, "non-media treatments", model.input_data.non_media_channel),
    ]
    found = [f"{label} ({', '.join(map(str, coord.values))})" for n, label, coord in unsupported if n]
    if found:
        raise Refusal(
            f"{name} has {' and '.join(found)}, which this importer does not read yet; "
            "only paid media channels with impressions and spend are supported."
        )
    if model.n_media_channels == 0 or model.input_data.media_spend is None:
        raise Refusal(f"{name} has no paid media channels with impressions and spend, so there is nothing to import.")
    if "posterior" not in model.inference_data.groups():
        raise Refusal(f"{name} holds a Meridian model that was never fitted (it has no posterior draws).")


# --------------------------------------------------------------------------------------------------------------------
# Meridian's numbers
# --------------------------------------------------------------------------------------------------------------------


def _np(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _strings(values: Any) -> list[str]:
    return [str(v) for v in np.asarray(values).tolist()]


def _per_channel(spec: Any, n: int) -> list[str]:
    return [spec] * n if isinstance(spec, str) else [str(s) for s in spec]


def decay_weights(alpha: np.ndarray, window: int, functions: list[str]) -> np.ndarray:
    """Meridian's normalised adstock weights, ``(..., channel, lag)`` with lag 0 = the current period.

    Geometric: ``alpha^l / sum_{k<window} alpha^k``; binomial: ``(1 - l/window)^(1/alpha - 1)`` normalised the same way
    (Meridian's ``compute_decay_weights`` with ``l_range`` reversed so that index = lag)."""
    lags = np.arange(window, dtype=np.float64)
    a = alpha[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = a**lags
        binomial = (1.0 - lags / window) ** (1.0 / a - 1.0)
    binomial_mask = np.array([f == "binomial" for f in functions])[:, None]
    weights = np.where(binomial_mask, binomial, geometric)
    return weights / weights.sum(axis=-1, keepdims=True)


def adstock(x: np.ndarray, weights: np.ndarray, n_times: int) -> np.ndarray:
    """``out[..., t, c] = sum_l w[..., c, l] * x[..., T0 + t - l, c]`` over the last ``n_times`` periods of ``x``'s
    time axis (-2), with zeros before the first period. ``x`` is ``(..., geo, media_time, channel)``."""
    window = weights.shape[-1]
    n_media_times = x.shape[-2]
    pad = [(0, 0)] * x.ndim
    pad[-2] = (window - 1, 0)
    padded = np.pad(x, pad)
    start = n_media_times - n_times  # output period t is media period start + t
    out = np.zeros((*x.shape[:-2], n_times, x.shape[-1]))
    for lag in range(window):
        lo = start + window - 1 - lag
        out += weights[..., None, None, :, lag] * padded[..., lo : lo + n_times, :]
    return out


def hill(x: np.ndarray, ec: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Meridian's Hill ``x^slope / (x^slope + ec^slope)``; parameters ``(..., channel)``, x ``(..., g, t, channel)``."""
    e = ec[..., None, None, :]
    s = slope[..., None, None, :]
    xs = x**s
    return xs / (xs + e**s)


def media_effect(
    media_scaled: np.ndarray,
    alpha: np.ndarray,
    ec: np.ndarray,
    slope: np.ndarray,
    *,
    max_lag: int,
    n_times: int,
    decay: list[str],
    saturation: list[str],
    hill_before_adstock: bool,
) -> np.ndarray:
    """Meridian's ``adstock_hill_media`` in float64 numpy, per draw: ``(chain, draw, geo, time, channel)``."""
    window = min(max_lag + 1, media_scaled.shape[-2])
    weights = decay_weights(alpha, window, decay)  # (chain, draw, channel, lag)
    saturate = np.array([s == "hill" for s in saturation])
    x = np.broadcast_to(media_scaled, alpha.shape[:-1] + media_scaled.shape)
    if hill_before_adstock:
        return adstock(np.where(saturate, hill(x, ec, slope), x), weights, n_times)
    stocked = adstock(x, weights, n_times)
    return np.where(saturate, hill(stocked, ec, slope), stocked)


def _relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max over (chain, draw, channel) of max_{geo,time}|ours - theirs| / max_{geo,time}|theirs| (0/0 counts 0)."""
    diff = np.abs(ours - theirs).max(axis=(-3, -2))
    scale = np.abs(theirs).max(axis=(-3, -2))
    rel = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), diff)
    return float(rel.max())


def _jsonable(value: Any) -> Any:
    """Plain JSON values (no NaN: JSON has none, so they become null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _review(model: Any, analyzer_module: Any) -> dict[str, Any]:
    """Meridian's model review (health checks): the one stored with the model, else run now with default configs."""
    summary = model.health_summary
    source = "stored with the model"
    if summary is None:
        from meridian.analysis.review import reviewer

        source = "run by the converter (ModelReviewer defaults, numpy global seed 0)"
        np.random.seed(0)  # the Bayesian PPP and bias checks draw from numpy's global generator: same file, same review
        try:
            summary = reviewer.ModelReviewer(
                model_context=model.model_context, inference_data=model.inference_data
            ).run()
        except Exception as exc:  # a review that cannot run is reported, not fatal
            return {"source": source, "error": f"{type(exc).__name__}: {exc}"}
    checks = []
    for result in summary.results:
        try:
            message = result.recommendation
        except Exception as exc:
            message = f"(message unavailable: {exc})"
        status = result.case.status.name
        checks.append(
            {
                "name": type(result).__name__.removesuffix("Result"),
                "status": status,
                "passed": status == "PASS",
                "case": getattr(result.case, "name", str(result.case)),
                "message": message,
            }
        )
    return {
        "source": source,
        "overall_status": summary.overall_status.name,
        "summary_message": summary.summary_message,
        "health_score": summary.health_score,
        "checks": checks,
    }


def _accuracy(analyzer: Any, use_kpi: bool) -> dict[str, Any]:
    """Analyzer.predictive_accuracy as ``{geo_granularity: {metric: value}}`` (all data; train/test if held out)."""
    ds = analyzer.predictive_accuracy(use_kpi=use_kpi)
    value = ds["value"]
    out: dict[str, Any] = {}
    for granularity in _strings(ds["geo_granularity"].values):
        sel = value.sel(geo_granularity=granularity)
        if "evaluation_set" in sel.dims:
            out[granularity] = {
                str(ev): {str(m): float(sel.sel(evaluation_set=ev, metric=m)) for m in _strings(ds["metric"].values)}
                for ev in _strings(ds["evaluation_set"].values)
            }
        else:
            out[granularity] = {str(m): float(sel.sel(metric=m)) for m in _strings(ds["metric"].values)}
    return out


def build_exchange(model: Any) -> tuple[Any, dict[str, Any]]:
    """The exchange Dataset and JSON document, every number from Meridian's Analyzer or the model's own tensors."""
    import arviz as az
    import meridian
    import xarray as xr
    from meridian import constants
    from meridian.analysis import analyzer as analyzer_module

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[label] = round(now - clock, 2)
        clock = now

    data = model.input_data
    ctx = model.model_context
    spec = model.model_spec
    post = model.inference_data.posterior
    an = analyzer_module.Analyzer(model)
    has_rpk = data.revenue_per_kpi is not None
    outcome_units = "revenue" if has_rpk else "kpi"

    channels = _strings(data.media_channel.values)
    geos = _strings(data.geo.values)
    times = _strings(data.time.values)
    media_times = _strings(data.media.coords["media_time"].values)
    controls = _strings(data.control_variable.values) if data.controls is not None else []
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    n_times = len(times)

    # ---- data and the scalings Meridian applied ---------------------------------------------------------------
    population = _np(ctx.population)
    media = _np(data.media.values)  # (geo, media_time, channel)
    media_scale = _np(ctx.media_tensors.media_transformer.scale_factors_gm)  # (geo, channel)
    kpi_tr = ctx.kpi_transformer
    kpi_scale = float(kpi_tr.population_scaled_stdev) * population  # KPI units per unit of the model's scaled KPI
    kpi_offset = float(kpi_tr.population_scaled_mean) * population
    spend = _np(data.media_spend.values)
    spend_dims = ("geo", "time", "channel") if spend.ndim == 3 else ("channel",)
    spend_total = spend.sum(axis=(0, 1)) if spend.ndim == 3 else spend
    chain_draw = ("chain", "draw")
    variables: dict[str, tuple[tuple[str, ...], np.ndarray, str, str]] = {
        "media": (("geo", "media_time", "channel"), media, "media units (impressions)", "raw paid media execution"),
        "media_spend": (spend_dims, spend, "currency", "paid media spend as given to Meridian"),
        "spend_total": (("channel",), spend_total, "currency", "spend summed over geo and time (ROI denominator)"),
        "kpi": (("geo", "time"), _np(data.kpi.values), "kpi", "observed KPI"),
        "population": (("geo",), population, "people", "population Meridian used (1.0 for a national model)"),
        "media_scale": (
            ("geo", "channel"),
            media_scale,
            "media units",
            "Meridian's media scaling: media_scaled = media / media_scale (population x population-scaled median)",
        ),
        "kpi_scale": (
            ("geo",),
            kpi_scale,
            "kpi",
            "KPI = kpi_scaled * kpi_scale + kpi_offset; an effect on the model's scale times kpi_scale is in KPI",
        ),
        "kpi_offset": (("geo",), kpi_offset, "kpi", "KPI = kpi_scaled * kpi_scale + kpi_offset"),
    }
    if has_rpk:
        variables["revenue_per_kpi"] = (
            ("geo", "time"),
            _np(data.revenue_per_kpi.values),
            "currency per kpi",
            "revenue per KPI unit",
        )
    if controls:
        ctr = ctx.controls_transformer  # its means and stdevs have no public accessor in Meridian 2.1
        scaling_id = ctx.compiled_control_population_scaling_id
        scaled_by_pop = np.zeros(len(controls), np.int8) if scaling_id is None else np.asarray(scaling_id, np.int8)
        variables["controls"] = (("geo", "time", "control"), _np(data.controls.values), "control units", "controls")
        variables["controls_mean"] = (("control",), _np(ctr._means), "control units", "centering of controls")
        variables["controls_std"] = (("control",), _np(ctr._stdevs), "control units", "scaling of controls")
        variables["controls_population_scaled"] = (
            ("control",),
            scaled_by_pop,
            "0/1",
            "1: controls_scaled = (controls / population - mean) / std, else (controls - mean) / std",
        )
    lap("data")

    # ---- per-draw outcomes ------------------------------------------------------------------------------------
    contribution = _np(
        an.incremental_outcome(
            use_kpi=True, aggregate_geos=False, aggregate_times=False, include_non_paid_channels=False
        )
    )  # (chain, draw, geo, time, channel) KPI
    mu = _np(an.expected_outcome(use_kpi=True, aggregate_geos=False, aggregate_times=False))  # (chain, draw, geo, time)
    baseline = mu - contribution.sum(axis=-1)
    roi = _np(an.roi())
    mroi = _np(an.marginal_roi(incremental_increase=MROI_INCREMENT))
    roi_kpi = _np(an.roi(use_kpi=True)) if has_rpk else roi
    # the prior's ROI draws (Meridian keeps them in their own chain x draw grid), to tell data from prior
    prior_roi = _np(an.roi(use_posterior=False)) if "prior" in model.inference_data.groups() else None
    lap("outcomes")
    variables |= {
        "channel_contribution": (
            (*chain_draw, "geo", "time", "channel"),
            contribution,
            "kpi",
            "Meridian incremental outcome (use_kpi=True, media vs zero media over the whole window), per period",
        ),
        "mu": ((*chain_draw, "geo", "time"), mu, "kpi", "Meridian expected outcome (use_kpi=True)"),
        "baseline": (
            (*chain_draw, "geo", "time"),
            baseline,
            "kpi",
            "non-media expected part: mu - sum over channels of channel_contribution (intercept, trend, controls)",
        ),
        "roi": (
            (*chain_draw, "channel"),
            roi,
            f"{outcome_units} per currency",
            "Meridian Analyzer.roi(): incremental outcome / spend_total",
        ),
        "mroi": (
            (*chain_draw, "channel"),
            mroi,
            f"{outcome_units} per currency",
            f"Meridian Analyzer.marginal_roi(incremental_increase={MROI_INCREMENT})",
        ),
        "roi_kpi": ((*chain_draw, "channel"), roi_kpi, "kpi per currency", "Meridian Analyzer.roi(use_kpi=True)"),
    }
    if prior_roi is not None:
        variables["prior_roi"] = (
            ("prior_chain", "prior_draw", "channel"),
            prior_roi,
            f"{outcome_units} per currency",
            "Meridian Analyzer.roi(use_posterior=False): ROI implied by each prior draw",
        )

    # ---- posterior parameters (all of them, Meridian's names, our dimension names) ----------------------------
    for name, da in post.data_vars.items():
        dims = tuple(DIM_NAMES.get(d, d) for d in da.dims)
        variables[str(name)] = (dims, _np(da.values), "model scale", f"Meridian posterior {name}")
    knots = np.asarray(post.coords["knots"].values) if "knots" in post.coords else None

    # ---- the identity: incremental KPI = beta_gc * hill(adstock(media / media_scale)) * kpi_scale ---------------
    saturation = _per_channel(ctx.saturation_spec.media, len(channels))
    decay = _per_channel(ctx.adstock_decay_spec.media, len(channels))
    effect = media_effect(
        media / media_scale[:, None, :],
        _np(post["alpha_m"].values),
        _np(post["ec_m"].values),
        _np(post["slope_m"].values),
        max_lag=int(spec.max_lag),
        n_times=n_times,
        decay=decay,
        saturation=saturation,
        hill_before_adstock=bool(spec.hill_before_adstock),
    )
    beta_gm = _np(post["beta_gm"].values)  # (chain, draw, geo, channel); geo has size 1 for a national model
    ours = effect * beta_gm[..., None, :] * kpi_scale[:, None, None]
    curve_check = _relative_error(ours, contribution)
    del effect, ours

    # the non-media part the same way: (tau_g + mu_t + controls_scaled . gamma_gc) * kpi_scale + kpi_offset
    intercept = (_np(post["tau_g"].values)[..., :, None] + _np(post["mu_t"].values)[..., None, :]) * kpi_scale[
        :, None
    ] + kpi_offset[:, None]
    if controls:
        controls_scaled = _np(ctx.controls_scaled)  # (geo, time, control)
        controls_part = (
            controls_scaled[None, None] * _np(post["gamma_gc"].values)[..., :, None, :] * kpi_scale[:, None, None]
        )
        variables["controls_contribution"] = (
            (*chain_draw, "geo", "time", "control"),
            controls_part,
            "kpi",
            "gamma_gc * controls_scaled * kpi_scale",
        )
        rebuilt = intercept + controls_part.sum(axis=-1)
    else:
        rebuilt = intercept
    variables["intercept"] = (
        (*chain_draw, "geo", "time"),
        intercept,
        "kpi",
        "(tau_g + mu_t) * kpi_scale + kpi_offset: baseline without controls",
    )
    baseline_check = float(np.abs(rebuilt - baseline).max() / max(np.abs(baseline).max(), 1e-300))
    lap("identity checks")

    # ---- response curves: per draw (the same incremental_outcome calls response_curves makes) and Meridian's own --
    rpk = _np(data.revenue_per_kpi.values) if has_rpk else None
    curve_kpi = np.zeros((n_chains, n_draws, len(CURVE_MULTIPLIERS), len(channels)))
    curve_outcome = np.zeros_like(curve_kpi)
    for i, multiplier in enumerate(CURVE_MULTIPLIERS):
        if multiplier == 0:
            continue
        inc = _np(
            an.incremental_outcome(
                scaling_factor0=0.0,
                scaling_factor1=multiplier,
                use_kpi=True,
                aggregate_geos=False,
                aggregate_times=False,
                include_non_paid_channels=False,
            )
        )
        curve_kpi[:, :, i] = inc.sum(axis=(2, 3))
        curve_outcome[:, :, i] = np.einsum("gt,cdgtm->cdm", rpk, inc) if rpk is not None else curve_kpi[:, :, i]
    rc = an.response_curves(spend_multipliers=CURVE_MULTIPLIERS)
    confidence_level = float(rc.attrs.get("confidence_level", constants.DEFAULT_CONFIDENCE_LEVEL))
    rc_inc = rc["incremental_outcome"].transpose("spend_multiplier", "channel", "metric")
    rc_mean = _np(rc_inc.sel(metric="mean").values)
    response_curve_check = float(
        np.abs(curve_outcome.mean(axis=(0, 1)) - rc_mean).max() / max(np.abs(rc_mean).max(), 1e-300)
    )
    variables |= {
        "curve_spend": (
            ("multiplier", "channel"),
            _np(rc["spend"].transpose("spend_multiplier", "channel").values),
            "currency",
            "spend at each multiplier: multiplier * spend_total (Analyzer.response_curves 'spend')",
        ),
        "curve_outcome": (
            (*chain_draw, "multiplier", "channel"),
            curve_outcome,
            outcome_units,
            "incremental outcome over all geos and periods when the channel's media is scaled by the multiplier",
        ),
        "curve_kpi": ((*chain_draw, "multiplier", "channel"), curve_kpi, "kpi", "as curve_outcome, in KPI units"),
        "curve_meridian_mean": (
            ("multiplier", "channel"),
            rc_mean,
            outcome_units,
            "Analyzer.response_curves mean",
        ),
        "curve_meridian_ci_lo": (
            ("multiplier", "channel"),
            _np(rc_inc.sel(metric="ci_lo").values),
            outcome_units,
            f"Analyzer.response_curves ci_lo (confidence_level={confidence_level})",
        ),
        "curve_meridian_ci_hi": (
            ("multiplier", "channel"),
            _np(rc_inc.sel(metric="ci_hi").values),
            outcome_units,
            f"Analyzer.response_curves ci_hi (confidence_level={confidence_level})",
        ),
    }
    lap("response curves")

    # ---- diagnostics --------------------------------------------------------------------------------------------
    idata = model.inference_data
    diverging = None
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        diverging = np.asarray(idata.sample_stats["diverging"].values).astype(np.int8)
        variables["diverging"] = (chain_draw, diverging, "0/1", "NUTS divergent transition")
    rhat_table = an.rhat_summary()
    rhat_by_param = {str(r["param"]): float(r["max_r_hat"]) for _, r in rhat_table.iterrows()}
    finite_rhat = [v for v in rhat_by_param.values() if math.isfinite(v)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")

    def _min_ess(ds: Any) -> tuple[float | None, dict[str, float | None]]:
        per = {str(k): float(np.nanmin(v.values)) if np.isfinite(v.values).any() else None for k, v in ds.items()}
        finite = [v for v in per.values() if v is not None]
        return (min(finite) if finite else None), per

    min_bulk, bulk_by_param = _min_ess(ess_bulk)
    min_tail, tail_by_param = _min_ess(ess_tail)
    lap("convergence")
    diagnostics: dict[str, Any] = {
        "max_rhat": max(finite_rhat) if finite_rhat else None,
        "rhat_source": "Meridian Analyzer.rhat_summary() (deterministic parameters left out)",
        "max_rhat_by_param": rhat_by_param,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": min_tail,
        "ess_source": f"arviz {az.__version__} az.ess over every posterior variable (constant ones give NaN, left out)",
        "min_ess_bulk_by_param": bulk_by_param,
        "min_ess_tail_by_param": tail_by_param,
        "divergences": int(diverging.sum()) if diverging is not None else None,
    }
    try:
        diagnostics["predictive_accuracy"] = {outcome_units: _accuracy(an, use_kpi=not has_rpk)}
        if has_rpk:
            diagnostics["predictive_accuracy"]["kpi"] = _accuracy(an, use_kpi=True)
    except Exception as exc:
        diagnostics["predictive_accuracy"] = {"error": f"{type(exc).__name__}: {exc}"}
    lap("accuracy")
    diagnostics["review"] = _review(model, analyzer_module)
    lap("review")

    # ---- the Dataset ------------------------------------------------------------------------------------------------
    coords: dict[str, Any] = {
        "chain": np.arange(n_chains),
        "draw": np.arange(n_draws),
        "geo": np.array(geos, dtype=object),
        "time": np.array(times, dtype=object),
        "media_time": np.array(media_times, dtype=object),
        "channel": np.array(channels, dtype=object),
        "multiplier": np.array(CURVE_MULTIPLIERS, dtype=np.float64),
    }
    if controls:
        coords["control"] = np.array(controls, dtype=object)
    if knots is not None:
        coords["knots"] = knots
    if prior_roi is not None:
        coords["prior_chain"] = np.arange(prior_roi.shape[0])
        coords["prior_draw"] = np.arange(prior_roi.shape[1])
    ds = xr.Dataset(
        {
            name: xr.Variable(dims, values, attrs={"units": units, "description": desc})
            for name, (dims, values, units, desc) in variables.items()
        },
        coords=coords,
    )
    ds.attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": "google-meridian",
        "outcome_units": outcome_units,
        "geo_is_national": int(bool(model.is_national)),
    }

    version = getattr(meridian, "__version__", None)
    if not version:
        from importlib import metadata

        version = metadata.version("google-meridian")
    structure = {
        "meridian_version": version,
        "computation_backend": str(model.computation_backend),
        "computation_precision": str(model.computation_precision),
        "kpi_type": "revenue" if data.kpi_type == constants.REVENUE else "non_revenue",
        "revenue_per_kpi_given": has_rpk,
        "outcome_units": outcome_units,
        "is_national": bool(model.is_national),
        "max_lag": int(spec.max_lag),
        "adstock_decay_spec": decay,
        "saturation_spec": saturation,
        "hill_before_adstock": bool(spec.hill_before_adstock),
        "media_effects_dist": str(model.media_effects_dist),
        "unique_sigma_for_each_geo": bool(model.unique_sigma_for_each_geo),
        "media_prior_type": str(spec.effective_media_prior_type),
        "knots": spec.knots if spec.knots is None or isinstance(spec.knots, int) else list(spec.knots),
        "n_knots": int(model.knot_info.n_knots),
        "knot_locations": np.asarray(model.knot_info.knot_locations).tolist(),
        "enable_aks": bool(getattr(spec, "enable_aks", False)),
        "holdout": model.holdout_id is not None,
        "n_chains": n_chains,
        "n_draws": n_draws,
        "n_prior_draws": int(prior_roi.shape[0] * prior_roi.shape[1]) if prior_roi is not None else 0,
        "channels": channels,
        "geos": geos,
        "controls": controls,
        "time": times,
        "media_time": media_times,
        "interval_probability_default": float(constants.DEFAULT_CONFIDENCE_LEVEL),
        "response_curve_multipliers": CURVE_MULTIPLIERS,
        "mroi_incremental_increase": MROI_INCREMENT,
    }
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "structure": structure,
        "curve_check": curve_check,
        "curve_check_definition": (
            "max over chain, draw and channel of max_{geo,time}|beta_gm * effect * kpi_scale - channel_contribution|"
            " / max_{geo,time}|channel_contribution|, where effect = hill(adstock(media / media_scale)) recomputed in"
            " float64 from the stored posterior alpha_m, ec_m, slope_m with Meridian's normalised decay weights"
        ),
        "baseline_check": baseline_check,
        "response_curve_check": response_curve_check,
        "diagnostics": diagnostics,
        "variables": {
            name: {"dims": list(dims), "units": units, "description": desc}
            for name, (dims, _, units, desc) in variables.items()
        },
        "timings_s": timings,
    }
    return ds, document


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _stderr_into(log: Path) -> Iterator[Any]:
    """Send fd 2 (TensorFlow/XLA C++ logs, Python warnings) to ``log``; yield a stream on the real stderr."""
    sys.stderr.flush()
    real = os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
    stream = os.fdopen(os.dup(real), "w", buffering=1)
    try:
        yield stream
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)
        os.close(real)
        stream.close()


def convert(model_path: Path, out_dir: Path) -> tuple[Path, Path]:
    """Read, check and convert one model; the paths of exchange.nc and exchange.json."""
    t0 = time.perf_counter()
    model = load_model(model_path)
    check_supported(model, model_path.name)
    t_load = time.perf_counter() - t0
    ds, document = build_exchange(model)
    document["timings_s"] = {"load": round(t_load, 2), **document["timings_s"]}
    nc, js = out_dir / "exchange.nc", out_dir / "exchange.json"
    t = time.perf_counter()
    ds.to_netcdf(nc, engine="h5netcdf")
    document["timings_s"]["write"] = round(time.perf_counter() - t, 2)
    document["timings_s"]["total"] = round(time.perf_counter() - t0, 2)
    document["source_file"] = model_path.name
    js.write_text(json.dumps(_jsonable(document), indent=1, allow_nan=False))
    return nc, js


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: meridian_convert.py MODEL OUT_DIR", file=sys.stderr)
        return 1
    model_path, out_dir = Path(args[0]), Path(args[1])
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"The output folder {out_dir} cannot be created: {exc.strerror}.", file=sys.stderr)
        return 1
    log = out_dir / "convert.log"
    rerun_with: str | None = None
    with _stderr_into(log) as err:
        warnings.simplefilter("default")
        try:
            nc, js = convert(model_path, out_dir)
        except BackendMismatch as exc:
            if os.environ.get(REEXEC_GUARD):
                print(f"{model_path.name} needs Meridian's {exc.backend} backend, which did not load.", file=err)
                return 1
            rerun_with = exc.backend
        except Refusal as exc:
            traceback.print_exc()
            print(str(exc), file=err)
            return 1
        except Exception as exc:  # a bug: one sentence here, the traceback in the log
            traceback.print_exc()
            print(f"Converting {model_path.name} failed: {type(exc).__name__}: {exc} (details in {log}).", file=err)
            return 2
    if rerun_with is not None:  # the backend is fixed when Meridian is imported: start again in a fresh process
        env = dict(os.environ, MERIDIAN_BACKEND=rerun_with, **{REEXEC_GUARD: "1"})
        os.execve(sys.executable, [sys.executable, "-I", str(Path(__file__).resolve()), *args], env)
    print(f"wrote {nc} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
