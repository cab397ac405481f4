"""Prior draws of the media parameters, from the priors pymc-marketing stored with the fit, in numpy.

The posterior file keeps each component's priors as JSON (``{"dist": "Gamma", "kwargs": {...}}``), so the
model-quality view can set prior against posterior without importing pymc or re-sampling the model.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def _draw(dist: str, kwargs: dict[str, Any], size: tuple[int, int], rng: np.random.Generator) -> np.ndarray | None:
    try:  # per-channel parameters are stored as {"class": "DataArray", "data": [...]}
        k = {
            name: np.asarray(value["data"] if isinstance(value, dict) and "data" in value else value, dtype=float)
            for name, value in kwargs.items()
        }
    except (TypeError, ValueError):
        return None  # a hierarchical prior (a prior on a parameter): not drawn here
    if dist == "Beta":
        return rng.beta(k["alpha"], k["beta"], size)
    if dist == "Gamma":
        if "mu" in k:
            alpha, beta = k["mu"] ** 2 / k["sigma"] ** 2, k["mu"] / k["sigma"] ** 2
        else:
            alpha, beta = k["alpha"], k["beta"]
        return rng.gamma(alpha, 1.0 / beta, size)
    if dist == "HalfNormal":
        return np.abs(rng.normal(0.0, k["sigma"], size))
    if dist == "Normal":
        return rng.normal(k.get("mu", 0.0), k["sigma"], size)
    if dist == "LogNormal":
        return rng.lognormal(k.get("mu", 0.0), k["sigma"], size)
    if dist == "Exponential":
        return rng.exponential(1.0 / k["lam"], size)
    return None


def media_prior_draws(attrs: dict[str, Any], channels: list[str], draws: int = 4000, seed: int = 0) -> dict[str, Any]:
    """``{"adstock_alpha": array(draw, channel), "saturation_lam": ..., ...}`` for every prior numpy can draw."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for component in ("adstock", "saturation"):
        try:
            spec = json.loads(attrs[component])
        except (KeyError, TypeError, ValueError):
            continue
        prefix = spec.get("prefix", component)
        for name, prior in (spec.get("priors") or {}).items():
            if not isinstance(prior, dict) or "dist" not in prior:
                continue
            values = _draw(prior["dist"], prior.get("kwargs", {}), (draws, len(channels)), rng)
            if values is not None:
                out[f"{prefix}_{name}"] = values
    roas = roas_prior(attrs)
    if roas is not None:  # ROAS sampled (mmmlib.roas_priors.RoasParameterisation): its lognormal prior
        from mmmlib import structures

        shown = [k.removeprefix("saturation_") for k in out if k.startswith("saturation_")]
        family = structures.family_of(structures.SATURATION_FAMILIES, shown)
        if family is not None:  # the effect size is derived; its stored prior is only for pymc-marketing's loader
            out.pop(f"saturation_{structures.saturation_family(family).effect}", None)
        out["saturation_roas"] = rng.lognormal(roas[0], roas[1], (draws, len(channels)))
    return out


def roas_prior(attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mu, sigma)`` per channel of the lognormal prior of a fit that sampled ROAS, or None."""
    from mmmlib.roas_priors import ROAS_PRIOR_ATTR

    try:
        spec = json.loads(attrs[ROAS_PRIOR_ATTR])
        return np.asarray(spec["mu"], dtype=float), np.asarray(spec["sigma"], dtype=float)
    except (KeyError, TypeError, ValueError):
        return None


def prior_contributions(
    attrs: dict[str, Any],
    adstock: str,
    saturation: str,
    spend: np.ndarray,
    channel_scale: np.ndarray,
    l_max: int,
    draws: int = 500,
    seed: int = 0,
    roas: Any = None,
    target_scale: float = 1.0,
) -> np.ndarray | None:
    """Channel contributions under the prior, ``(draw, period, channel)`` on the scaled target, in numpy.

    The prior of each channel's ROAS, for the "not identified" rule, without compiling a second model: parameters
    drawn from the stored priors, then the registry's carry-over and returns formulas on the max-scaled spend.
    ``roas``: the fit's :class:`mmmlib.roas_priors.RoasParameterisation` when it sampled ROAS (the effect size is
    then derived from each drawn ROAS, as in the model; ``target_scale`` is the model's).
    """
    from mmmlib import structures

    channels = list(range(spend.shape[1]))
    params = media_prior_draws(attrs, [str(c) for c in channels], draws=draws, seed=seed)
    carry, returns = structures.adstock_family(adstock), structures.saturation_family(saturation)
    if roas is not None:
        params[f"saturation_{returns.effect}"] = np.ones((draws, len(channels)))
    ads = {n: params.get(f"adstock_{n}") for n in carry.params}
    sat = {n: params.get(f"saturation_{n}") for n in returns.params}
    if any(v is None for v in (*ads.values(), *sat.values())):
        return None
    w = carry.weights({k: v[:, None, :] for k, v in ads.items()}, l_max)  # (draw, lag, ch)
    z = spend / np.where(channel_scale > 0, channel_scale, 1.0)
    carried = np.zeros((draws, *z.shape))
    for lag in range(l_max):
        carried[:, lag:, :] += w[:, lag, None, :] * z[None, : z.shape[0] - lag, :]
    unit = returns.curve({k: v[:, None, :] for k, v in sat.items()}, carried)
    if roas is None:
        return unit
    drawn = np.random.default_rng([seed, 1]).lognormal(roas.mu, roas.sigma, (draws, len(channels)))
    beta = roas.effect_size(drawn, unit.sum(axis=1), target_scale)
    return unit * beta[:, None, :]


def geo_roas_prior_draws(attrs: dict[str, Any], geos: int, draws: int = 4000, seed: int = 0) -> np.ndarray | None:
    """Prior ROAS draws ``(draw, geo, channel)`` of a hierarchical geo fit, or None for a fit that stored no record
    (``roas_priors.GEO_ROAS_PRIOR_ATTR``). With the geos' spend weights in the record, as
    :class:`mmmlib.roas_priors.GeoRoasParameterisation` draws them (national ROAS from the channel's lognormal, each
    geo's spread around it); runs fitted before 2026-12-03 stored none: log ROAS_gc = mu_c + tau_c z_gc, mu_c from
    the channel's lognormal, one mu_c and tau_c per draw shared by the geos."""
    from mmmlib.roas_priors import GEO_ROAS_PRIOR_ATTR, geo_returns

    try:
        spec = json.loads(attrs[GEO_ROAS_PRIOR_ATTR])
        mu, sigma = np.asarray(spec["mu"], dtype=float), np.asarray(spec["sigma"], dtype=float)
        tau_sd = float(spec["tau_sd"])
        weights = np.asarray(spec["weights"], dtype=float) if "weights" in spec else None
    except (KeyError, TypeError, ValueError):
        return None
    rng = np.random.default_rng(seed)
    channels = len(mu)
    spread = np.abs(rng.normal(0.0, tau_sd, (draws, channels)))
    offset = rng.standard_normal((draws, geos, channels))
    if weights is not None and weights.shape == (geos, channels):
        return geo_returns(rng.lognormal(mu, sigma, (draws, channels)), spread, offset, weights)
    population = rng.normal(mu, sigma, (draws, channels))
    return np.exp(population[:, None, :] + spread[:, None, :] * offset)
