"""The stacking mixture's effective sample size (mmmlib.analysis.mixture_ess) against simulated chains.

Candidates are AR(1) chains of known autocorrelation; the mixture is drawn from them by the product's own subsampling
(mmmlib.stacking.allocate and mix_groups); its ESS is what the variance of its mean says over many repetitions.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.signal import lfilter

from mmmlib import stacking
from mmmlib.analysis import mixture_ess
from mmmlib.sampling import convergence

CHAINS = 2


def ar1(rng: np.random.Generator, rho: float, draws: int) -> np.ndarray:
    """``(CHAINS, draws)`` stationary AR(1) chains with unit variance and lag-1 autocorrelation ``rho``."""
    noise = rng.standard_normal((CHAINS, draws)) * np.sqrt(1 - rho**2)
    start = rng.standard_normal((CHAINS, 1))
    return lfilter([1.0], [1.0, -rho], noise, axis=1, zi=rho * start)[0]


def mixture_mean(rng: np.random.Generator, chains: list[np.ndarray], counts: list[int]) -> float:
    datasets = [xr.Dataset({"theta": (("chain", "draw"), c)}) for c in chains]
    mixed, _ = stacking.mix_groups(datasets, counts, rng)
    return float(mixed["theta"].mean())


@pytest.mark.parametrize(
    ("rhos", "drawn", "weights"),
    [
        ((0.9, 0.8, 0.95), (1000, 1000, 1000), (0.5, 0.3, 0.2)),  # autocorrelated candidates of one length
        ((0.6, 0.97), (400, 2000), (0.7, 0.3)),  # stopped at different counts
    ],
)
def test_mixture_ess_matches_the_variance_of_the_mixtures_mean(rhos, drawn, weights):
    rng = np.random.default_rng(7)
    n = stacking.mixture_draws(list(drawn), list(weights))
    counts = stacking.allocate(list(weights), n)
    means, records = [], []
    for rep in range(300):
        chains = [ar1(rng, rho, d) for rho, d in zip(rhos, drawn, strict=True)]
        means.append(mixture_mean(rng, chains, counts))
        if rep < 40:  # the candidates' ESS as the product measures it (arviz), averaged over some repetitions
            records.append([convergence({"theta": c[:, :, None]}) for c in chains])
    simulated = 1.0 / np.var(means)  # every candidate has mean 0 and variance 1: the mixture too
    recs = [
        {
            "draws_per_chain": k,
            "drawn_per_chain": d,
            "chains": CHAINS,
            "ess_bulk_min": float(np.mean([r[m]["ess_bulk_min"] for r in records])),
        }
        for m, (k, d) in enumerate(zip(counts, drawn, strict=True))
    ]
    estimate = mixture_ess(recs, "ess_bulk_min")
    assert estimate == pytest.approx(simulated, rel=0.25)
    # the rule used before drawn_per_chain was stored (E' = w E) is far below what the draws are worth
    legacy = mixture_ess([{k: v for k, v in r.items() if k != "drawn_per_chain"} for r in recs], "ess_bulk_min")
    assert legacy < 0.7 * simulated


def test_independent_draws_are_worth_their_number():
    recs = [
        {"draws_per_chain": 300, "drawn_per_chain": 1000, "chains": 2, "ess_bulk_min": 2000.0},
        {"draws_per_chain": 700, "drawn_per_chain": 700, "chains": 2, "ess_bulk_min": 1400.0},
    ]
    assert mixture_ess(recs, "ess_bulk_min") == pytest.approx(2000.0)
    # one candidate alone, all its draws kept: its own ESS
    assert mixture_ess([{**recs[1], "ess_bulk_min": 123.0}], "ess_bulk_min") == pytest.approx(123.0)
    # a candidate holding no draws adds nothing
    idle = {"draws_per_chain": 0, "drawn_per_chain": 9, "chains": 2, "ess_bulk_min": 1.0}
    assert mixture_ess([*recs, idle], "ess_bulk_min") == pytest.approx(2000.0)
