"""Benchmark: the ROAS prior each candidate structure implies when the prior sits on the effect size.

Until 2026-12-03 (commit 5059593) the national model gave the effect size of each returns family the lognormal
that maps onto the ROAS prior at the curve's central shape (``roas_priors.effect_lognormal``; the geo model still
does, per geo). The national model now samples ROAS itself and holds its prior exactly
(``tests/test_roas_parameterisation.py``); this measures what the approximation costs. The carry-over and the
curve's shape are uncertain too, so the prior on ROAS such a model really holds is wider. This draws, per world
of the recovery suite (its cached data) and per candidate, the carry-over, shape and effect parameters from their
priors, computes each channel's ROAS on that world's spend, and reports the median over channels of the implied
prior's median, 94 % interval and log-scale sd beside the intended
LogNormal(0.2, 0.9). Numpy only; nothing is fitted.

Run: ``.venv/bin/python benchmarks/implied_priors.py [--draws 4000]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmmlib import roas_priors, structures  # noqa: E402

CACHE = ROOT / ".cache" / "recovery"
L_MAX = 8


def draw(spec: tuple[str, dict[str, float]], rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    dist, kw = spec
    if dist == "Beta":
        return rng.beta(kw["alpha"], kw["beta"], shape)
    if dist == "HalfNormal":
        return np.abs(rng.normal(0.0, kw["sigma"], shape))
    if dist == "Gamma" and "alpha" in kw:
        return rng.gamma(kw["alpha"], 1 / kw["beta"], shape)
    if dist == "Gamma":
        k = (kw["mu"] / kw["sigma"]) ** 2
        return rng.gamma(k, kw["mu"] / k, shape)
    raise ValueError(f"no sampler for {dist}")


def implied_roas(
    spend: np.ndarray, kpi: np.ndarray, adstock: str, saturation: str, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Prior ROAS draws ``(draw, channel)`` of one candidate on one world's spend (revenue KPI)."""
    k = spend.shape[1]
    scale = np.where(spend.max(axis=0) > 0, spend.max(axis=0), 1.0)
    mu, sigma = np.full(k, roas_priors.DEFAULT_ROAS[0]), np.full(k, roas_priors.DEFAULT_ROAS[1])
    family = structures.SATURATION_FAMILIES[saturation]
    m, s = roas_priors.effect_lognormal(
        saturation, mu, sigma, spend=spend, channel_scale=scale, target_scale=float(kpi.max()), value=1.0
    )
    ad = structures.ADSTOCK_FAMILIES[adstock]
    w = ad.weights({n: draw(spec, rng, (draws, 1, k)) for n, spec in ad.priors.items()}, L_MAX)
    z = spend / scale
    carried = sum(w[:, lag, None, :] * np.vstack([np.zeros((lag, k)), z[: len(z) - lag]])[None] for lag in range(L_MAX))
    p = {n: draw(spec, rng, (draws, 1, k)) for n, spec in family.shape_priors.items()}
    p[family.effect] = np.exp(rng.normal(m, s, (draws, 1, k)))
    return family.curve(p, carried).sum(axis=1) * float(kpi.max()) / spend.sum(axis=0)


def report(draws: int) -> str:
    rng = np.random.default_rng(0)
    intended = np.exp(rng.normal(*roas_priors.DEFAULT_ROAS, 100_000))
    lo, hi = np.quantile(intended, [0.03, 0.97])
    lines = [
        "Implied ROAS prior per candidate when the prior sits on the effect size at the curve's central shape (the "
        "national\nmodel until 5059593, the geo model per geo; since 5059593 the national model samples ROAS and "
        "holds the intended\nprior exactly), "
        f"{draws} prior draws per channel, median over the suite's channels (worlds in `.cache/recovery`).",
        "",
        "| candidate | channels | median | 94 % interval | sd of log ROAS |",
        "|---|---|---|---|---|",
        f"| intended: LogNormal{roas_priors.DEFAULT_ROAS} | — | {np.median(intended):.2f} | {lo:.2f}–{hi:.1f} | "
        f"{roas_priors.DEFAULT_ROAS[1]:.2f} |",
    ]
    worlds = sorted(CACHE.glob("*/world_[0-9][0-9][0-9][0-9]"))
    for adstock in structures.AUTO_ADSTOCKS:
        for saturation in structures.AUTO_SATURATIONS:
            med, low, high, logsd = [], [], [], []
            for world in worlds:
                truth = json.loads((world / "truth.json").read_text())
                frame = pd.read_csv(world / "data.csv")
                spend = frame[truth["channel_columns"]].to_numpy(float)
                roas = implied_roas(
                    spend, frame[truth["target_column"]].to_numpy(float), adstock, saturation, draws, rng
                )
                q = np.quantile(roas, [0.03, 0.5, 0.97], axis=0)
                low += list(q[0])
                med += list(q[1])
                high += list(q[2])
                logsd += list(np.log(np.maximum(roas, 1e-12)).std(axis=0))
            lines.append(
                f"| {adstock}+{saturation} | {len(med)} | {statistics.median(med):.2f} | "
                f"{statistics.median(low):.2f}–{statistics.median(high):.1f} | {statistics.median(logsd):.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=4000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = report(args.draws)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
