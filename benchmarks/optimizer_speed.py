"""Benchmark: budget optimisation speed (targets: 5 channels < 0.5 s, 20 channels < 5 s), beside pymc-marketing.

- ours on a fitted run (5 channels, posterior draws from posterior.nc), already loaded: the slider case;
- ours on 20 channels of posterior-like curve draws (1000 draws each);
- pymc-marketing's ``mmm.budget_optimizer(...).allocate_budget`` on the same fitted run, first and second call,
  and both splits scored by the same objective (expected steady-state contribution per period).

Run: `.venv/bin/python benchmarks/optimizer_speed.py RUN_DIR` (a run of the sample data, e.g. from `make demo`).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mmmlib.optimize import Curves, load_curves, optimise


def timed(fn, repeats: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def synthetic_curves(k: int, draws: int = 1000, seed: int = 0) -> Curves:
    rng = np.random.default_rng(seed)
    return Curves(
        channels=[f"c{i}" for i in range(k)],
        kind="logistic",
        params={"lam": rng.gamma(4, 0.5, (draws, k)), "beta": rng.gamma(2, 0.05, (draws, k))},
        channel_scale=rng.uniform(5e3, 5e4, k),
        target_scale=1e6,
        current=rng.uniform(1e3, 2e4, k),
    )


def main(run_dir: str) -> None:
    start = time.perf_counter()
    curves = load_curves(run_dir)
    load_s = time.perf_counter() - start
    k = len(curves.channels)
    budget = float(curves.current.sum())
    free = (np.zeros(k), np.full(k, np.inf))
    ours_s, ours = timed(lambda: optimise(curves, budget, *free))
    big = synthetic_curves(20)
    big_s, _ = timed(lambda: optimise(big, float(big.current.sum()), np.zeros(20), np.full(20, np.inf)))

    import pandas as pd
    import xarray as xr
    from pymc_marketing.mmm import MMM

    idata = xr.open_datatree(Path(run_dir) / "posterior.nc")
    mmm = MMM.load_from_idata(idata)
    first = pd.Timestamp(idata["posterior"]["date"].values[-1]) + pd.Timedelta(days=7)
    t0 = time.perf_counter()
    optimizer = mmm.budget_optimizer(first, first + pd.Timedelta(weeks=11))
    build_s = time.perf_counter() - t0
    pm_first_s, pm = timed(lambda: optimizer.allocate_budget(total_budget=budget), repeats=1)
    pm_again_s, pm = timed(lambda: optimizer.allocate_budget(total_budget=budget), repeats=2)
    pm_split = np.asarray(pm.budgets.values, dtype=float)

    def value(split: np.ndarray) -> float:
        return float(curves.mean_response(split[None, :]).sum())

    print("| optimiser | channels | seconds per call | expected contribution per period |")
    print("|---|---|---|---|")
    print(f"| mmmlib (numpy + scipy) | {k} | {ours_s:.3f} (posterior load {load_s:.2f} once) | {value(ours):,.0f} |")
    print(f"| mmmlib (numpy + scipy) | 20 | {big_s:.3f} | — |")
    print(
        f"| pymc-marketing budget_optimizer, first call | {k} | {build_s + pm_first_s:.2f} (build {build_s:.2f}) "
        f"| {value(pm_split):,.0f} |"
    )
    print(f"| pymc-marketing budget_optimizer, later calls | {k} | {pm_again_s:.2f} | {value(pm_split):,.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
