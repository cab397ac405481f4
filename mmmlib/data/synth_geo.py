"""Synthetic geo data with known per-geo truth (``mmm synth --geos N``), for geo tests and the geo recovery benchmark.

Each geo has a population; its baseline and budgets scale with it. A channel's return varies by geo around the
channel's own (log-normal spread), carry-over and curve shape are shared, as is the channel's spending pattern, with
each geo's own noise. Media enter as impressions bought at a channel's cost per thousand (varying by geo); the
model is told which impressions column belongs to which spend column. With ``adstock="weibull"`` and
``saturation="hill"`` the data come from forms the model does not assume. ``truth.json`` holds each geo's and the
nation's contribution and ROAS per channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmmlib.config import ModelConfig
from mmmlib.data.synth import CATALOGUE, SynthSpec, _adstock, _saturate, _spend, _weights, save

GEO_ROAS_SPREAD = 0.3  # sd of a geo's log ROAS around its channel's
CPM = 8.0  # typical cost per thousand impressions


QUIET_WEEKS = 4  # weeks the quiet geo spends on its quiet channel


def generate(spec: SynthSpec, geos: int, quiet_geo: bool = False) -> tuple[pd.DataFrame, ModelConfig, dict]:
    """Long data (one row per week and geo), its config and the truth.

    ``quiet_geo``: the last geo spends on the last channel in only :data:`QUIET_WEEKS` weeks, so the data say little
    about that return there (what pooling across geos is for)."""
    if not 2 <= geos <= 500:
        raise ValueError("geos must be between 2 and 500")
    if not 1 <= spec.channels <= len(CATALOGUE):
        raise ValueError(f"channels must be between 1 and {len(CATALOGUE)} for geo data")
    rng = np.random.default_rng(spec.seed)
    n = spec.weeks
    dates = pd.date_range(spec.start, periods=n, freq="7D")
    doy = 2 * np.pi * dates.dayofyear.to_numpy() / 365.25
    season = 0.7 * np.sin(doy + 1.0) + 0.3 * np.cos(2 * doy)
    names = [f"geo{g:03d}" for g in range(geos)]
    population = np.round(rng.lognormal(np.log(500_000), 0.8, geos))
    share = population / population.sum()
    channels = []
    for name, pattern, level in CATALOGUE[: spec.channels]:
        weights, carry = _weights(spec.adstock, rng)
        probe = np.linspace(0, 1, 5)
        _, sat = _saturate(spec.saturation, probe, rng)  # one shape per channel, all geos
        channels.append(
            {
                "name": f"{name}_spend",
                "media": f"{name}_impressions",
                "pattern": pattern,
                "level": level,
                "weights": weights,
                "adstock": carry,
                "saturation": {**sat, "form": spec.saturation},
                "roas": float(rng.uniform(0.6, 4.0)),
                "cpm": CPM * float(rng.uniform(0.5, 2.0)),
            }
        )
    rows = []
    truth_geos = []
    for g, geo in enumerate(names):
        scale = share[g] * geos  # 1 for the mean geo
        base = 400_000.0 * scale * (1 + 0.2 * np.arange(n) / n * rng.uniform(-1, 2)) * (1 + 0.12 * season)
        promo = (rng.random(n) < 0.08).astype(float)
        base = base * (1 + 0.06 * promo)
        frame = pd.DataFrame({"week": dates.strftime("%Y-%m-%d"), "geo": geo})
        media = np.zeros(n)
        geo_truth = []
        for c in channels:
            x = _spend(c["pattern"], c["level"] * scale, n, season, rng)
            if quiet_geo and g == geos - 1 and c is channels[-1]:
                keep = np.zeros(n, bool)
                keep[rng.choice(n, QUIET_WEEKS, replace=False)] = True
                x = np.where(keep, np.maximum(x, c["level"] * scale), 0.0)
            ads = _adstock(x, c["weights"])
            shaped = _shape(c["saturation"], ads / max(float(ads.max()), 1e-9))
            roas = c["roas"] * float(np.exp(rng.normal(0, GEO_ROAS_SPREAD)))
            contribution = roas * x.sum() / max(shaped.sum(), 1e-9) * shaped
            media += contribution
            frame[c["name"]] = x
            cost = c["cpm"] / 1000 * float(rng.uniform(0.8, 1.25))
            frame[c["media"]] = np.round(x / cost)
            geo_truth.append(
                {
                    "name": c["name"],
                    "spend": round(float(x.sum()), 2),
                    "contribution": round(float(contribution.sum()), 2),
                    "roas": round(float(contribution.sum() / x.sum()), 6) if x.sum() > 0 else None,
                }
            )
        revenue = base + media + rng.normal(0, 0.03 * 400_000.0 * np.sqrt(scale), n)
        frame.insert(2, "revenue", np.round(revenue, 2))
        frame["promo"] = promo.astype(int)
        frame["population"] = population[g]
        rows.append(frame)
        truth_geos.append({"name": geo, "population": float(population[g]), "channels": geo_truth})
    data = pd.concat(rows, ignore_index=True)
    nation = []
    for j, c in enumerate(channels):
        spend = sum(t["channels"][j]["spend"] for t in truth_geos)
        contribution = sum(t["channels"][j]["contribution"] for t in truth_geos)
        nation.append(
            {
                "name": c["name"],
                "spend": round(spend, 2),
                "contribution": round(contribution, 2),
                "roas": round(contribution / spend, 6),
                "adstock": c["adstock"],
                "saturation": c["saturation"],
            }
        )
    config = ModelConfig(
        date_column="week",
        target_column="revenue",
        channel_columns=[c["name"] for c in channels],
        control_columns=["promo"],
        kpi_type="revenue",
        geo_column="geo",
        geo_model="hierarchical",
        population_column="population",
        media_columns={c["name"]: c["media"] for c in channels},
    )
    truth = {"spec": {**spec.__dict__, "geos": geos, "quiet_geo": quiet_geo}, "channels": nation, "geos": truth_geos}
    return data, config, truth


def _shape(sat: dict, z: np.ndarray) -> np.ndarray:
    if sat["form"] == "hill":
        h, s = sat["half_saturation"], sat["slope"]
        return z**s / (z**s + h**s)
    lam = sat["lam"]
    return (1 - np.exp(-lam * z)) / (1 + np.exp(-lam * z))


def write(spec: SynthSpec, geos: int, out_dir: str | Path, quiet_geo: bool = False) -> Path:
    """Write ``data.csv``, ``config.yaml`` and ``truth.json`` into ``out_dir``."""
    return save(*generate(spec, geos, quiet_geo), out_dir)
