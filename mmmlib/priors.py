"""Prior draws of the media parameters, from the priors pymc-marketing stored with the fit, in numpy.

The posterior file keeps each component's priors as JSON (``{"dist": "Gamma", "kwargs": {...}}``), so the
model-quality view can set prior against posterior without importing pymc or re-sampling the model.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def _draw(dist: str, kwargs: dict[str, Any], size: tuple[int, int], rng: np.random.Generator) -> np.ndarray | None:
    try:
        k = {name: np.asarray(value, dtype=float) for name, value in kwargs.items()}
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
    return out
