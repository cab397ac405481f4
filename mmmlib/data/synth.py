"""Synthetic marketing data with known truth (``mmm synth``), for demos, tests and recovery benchmarks.

Revenue = baseline × trend × seasonality × promotions × price effect + media + noise,
where each channel's media effect is adstock (carry-over) then saturation of its spend.
Each channel's true ROAS is chosen first and its effect scaled to hit it exactly, so
``truth.json`` states total contribution and ROAS without any estimation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmmlib.config import ModelConfig, save_config
from mmmlib.data.labels import channel_label

# name, spending pattern, typical weekly spend
CATALOGUE: list[tuple[str, str, float]] = [
    ("tv", "flighted", 60_000.0),
    ("search", "seasonal", 25_000.0),
    ("social", "always_on", 20_000.0),
    ("display", "pulsed", 12_000.0),
    ("radio", "flighted", 15_000.0),
    ("ooh", "flighted", 18_000.0),
    ("print", "sparse", 10_000.0),
    ("email", "always_on", 4_000.0),
]


@dataclass(frozen=True)
class SynthSpec:
    """What to generate; the defaults give a realistic 3-year weekly dataset."""

    weeks: int = 156
    channels: int = 5
    seed: int = 0
    adstock: str = "geometric"  # geometric | weibull (carry-over peaking after a delay)
    saturation: str = "logistic"  # logistic | hill
    seasonal_spend: bool = False  # spend follows seasonality (confounding a fit must cope with)
    start: str = "2022-01-03"


def _spend(pattern: str, level: float, n: int, season: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.lognormal(0.0, 0.25, n)
    if pattern == "always_on":
        x = level * noise
    elif pattern == "seasonal":
        x = level * (1 + 0.6 * season) * noise
    elif pattern == "pulsed":
        x = level * noise * (rng.random(n) < 0.6)
    elif pattern == "sparse":
        x = level * 2 * noise * (rng.random(n) < 0.35)
    else:  # flighted: bursts of 3–8 weeks on, 2–6 off
        on = np.zeros(n, bool)
        t = int(rng.integers(0, 4))
        while t < n:
            length = int(rng.integers(3, 9))
            on[t : t + length] = True
            t += length + int(rng.integers(2, 7))
        x = level * 1.6 * noise * on
    return np.round(np.maximum(x, 0.0), 2)


def _adstock(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for lag, w in enumerate(weights):
        out[lag:] += w * x[: len(x) - lag]
    return out


def _weights(kind: str, rng: np.random.Generator, max_lag: int = 8) -> tuple[np.ndarray, dict]:
    lags = np.arange(max_lag)
    if kind == "weibull":
        shape, scale = rng.uniform(1.5, 3.0), rng.uniform(0.25, 0.5)
        t = (lags + 1) / max_lag
        w = (shape / scale) * (t / scale) ** (shape - 1) * np.exp(-((t / scale) ** shape))
        params = {"shape": round(float(shape), 4), "scale": round(float(scale), 4)}
    else:
        alpha = rng.uniform(0.1, 0.7)
        w = alpha**lags
        params = {"alpha": round(float(alpha), 4)}
    return w / w.sum(), params


def _saturate(kind: str, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    if kind == "hill":
        half, slope = rng.uniform(0.3, 0.8), rng.uniform(1.0, 2.5)
        y = x**slope / (x**slope + half**slope)
        return y, {"half_saturation": round(float(half), 4), "slope": round(float(slope), 4)}
    lam = rng.uniform(1.0, 4.0)
    return (1 - np.exp(-lam * x)) / (1 + np.exp(-lam * x)), {"lam": round(float(lam), 4)}


def generate(spec: SynthSpec) -> tuple[pd.DataFrame, ModelConfig, dict]:
    """The data, its config and the truth (a JSON-ready dict)."""
    if not 1 <= spec.channels <= 20:
        raise ValueError("channels must be between 1 and 20")
    if spec.weeks < 52:
        raise ValueError("weeks must be at least 52")
    rng = np.random.default_rng(spec.seed)
    n = spec.weeks
    dates = pd.date_range(spec.start, periods=n, freq="7D")
    doy = 2 * np.pi * dates.dayofyear.to_numpy() / 365.25
    season = 0.7 * np.sin(doy + 1.0) + 0.3 * np.cos(2 * doy)
    trend = 1 + 0.25 * np.arange(n) / n
    promo = (rng.random(n) < 0.08).astype(float)
    price = np.round(1 + 0.05 * np.sin(np.arange(n) / 9) + rng.normal(0, 0.015, n), 4)
    baseline_level = 400_000.0
    baseline = baseline_level * trend * (1 + 0.12 * season) * (1 + 0.06 * promo) * (1 - 1.5 * (price - 1))

    catalogue = CATALOGUE + [(f"channel{i}", "always_on", 8_000.0) for i in range(len(CATALOGUE), 20)]
    frame = pd.DataFrame({"week": dates.strftime("%Y-%m-%d")})
    media = np.zeros(n)
    channels = []
    for name, pattern, level in catalogue[: spec.channels]:
        col = f"{name}_spend"
        x = _spend("seasonal" if spec.seasonal_spend and pattern != "sparse" else pattern, level, n, season, rng)
        weights, carry = _weights(spec.adstock, rng)
        ads = _adstock(x, weights)
        ads_max = max(float(ads.max()), 1e-9)
        shaped, sat = _saturate(spec.saturation, ads / ads_max, rng)
        roas = float(rng.uniform(0.6, 4.0))
        effect = roas * x.sum() / max(shaped.sum(), 1e-9)
        contribution = effect * shaped
        media += contribution
        frame[col] = x
        channels.append(
            {
                "name": col,
                "label": channel_label(col),
                "pattern": pattern,
                "adstock": carry,
                "saturation": {**sat, "form": spec.saturation, "input_scale": round(ads_max, 6)},
                "effect": round(effect, 6),
                "spend": round(float(x.sum()), 2),
                "contribution": round(float(contribution.sum()), 2),
                "roas": round(float(contribution.sum() / x.sum()), 6),
            }
        )
    noise_sd = 0.03 * baseline_level
    revenue = baseline + media + rng.normal(0, noise_sd, n)
    frame["promo"] = promo.astype(int)
    frame["price_index"] = price
    frame.insert(1, "revenue", np.round(revenue, 2))
    total_media = sum(c["contribution"] for c in channels)
    for c in channels:
        c["share"] = round(c["contribution"] / total_media, 6)
    config = ModelConfig(
        date_column="week",
        target_column="revenue",
        channel_columns=[c["name"] for c in channels],
        control_columns=["promo", "price_index"],
        adstock="geometric",
        saturation="logistic",
        yearly_seasonality=2,
        kpi_type="revenue",
    )
    truth = {
        "spec": spec.__dict__,
        "baseline_total": round(float(baseline.sum()), 2),
        "media_total": round(float(total_media), 2),
        "noise_sd": noise_sd,
        "channels": channels,
    }
    return frame, config, truth


def true_response(channel: dict, spend_per_period: float | np.ndarray) -> np.ndarray:
    """True KPI per period from steady spend on a channel of ``truth.json`` (carry-over weights sum to one)."""
    sat = channel["saturation"]
    z = np.asarray(spend_per_period, dtype=float) / sat["input_scale"]
    if sat.get("form") == "hill":
        shaped = z ** sat["slope"] / (z ** sat["slope"] + sat["half_saturation"] ** sat["slope"])
    else:
        shaped = (1 - np.exp(-sat["lam"] * z)) / (1 + np.exp(-sat["lam"] * z))
    return channel["effect"] * shaped


def lift_test_from_truth(channel: dict, spend: float, change: float, standard_error: float) -> dict:
    """What a perfect experiment on ``channel`` would measure: the true KPI lift of a spend change."""
    lift = float(true_response(channel, spend + change) - true_response(channel, spend))
    return {"channel": channel["name"], "x": spend, "delta_x": change, "delta_y": lift, "sigma": standard_error}


def write(spec: SynthSpec, out_dir: str | Path) -> Path:
    """Write ``data.csv``, ``config.yaml`` and ``truth.json`` into ``out_dir``."""
    return save(*generate(spec), out_dir)


def save(frame: pd.DataFrame, config: ModelConfig, truth: dict, out_dir: str | Path) -> Path:
    """Write a generated dataset: ``data.csv``, ``config.yaml`` and ``truth.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "data.csv", index=False)
    save_config(config, out / "config.yaml")
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return out
