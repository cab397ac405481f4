"""PSIS-LOO's relative efficiency (mmmlib.stacking.relative_efficiency) comes from the sampled parameters, so the
weekly deterministics a posterior happens to store neither change a candidate's score nor slow it down."""

from __future__ import annotations

import numpy as np
import xarray as xr


def posterior(rng: np.random.Generator, with_weekly: bool) -> xr.DataTree:
    chains, draws = 2, 400
    slow = np.zeros((chains, draws))  # strongly autocorrelated: ESS well below the draws
    for t in range(1, draws):
        slow[:, t] = 0.9 * slow[:, t - 1] + rng.normal(size=chains)
    data = {
        "saturation_roas": (("chain", "draw", "channel"), np.stack([slow, rng.normal(size=(chains, draws))], -1)),
        "y_sigma": (("chain", "draw"), rng.normal(size=(chains, draws))),
    }
    if with_weekly:  # independent draws: they would pull arviz's mean ESS up
        data["channel_contribution"] = (("chain", "draw", "date"), rng.normal(size=(chains, draws, 50)))
        data["mu"] = (("chain", "draw", "date"), rng.normal(size=(chains, draws, 50)))
    coords = {"chain": [0, 1], "draw": np.arange(draws), "channel": ["a", "b"], "date": np.arange(50)}
    return xr.DataTree.from_dict({"posterior": xr.Dataset(data, coords=coords)})


def test_the_relative_efficiency_is_the_sampled_parameters_mean_ess_over_the_draws() -> None:
    import arviz as az

    from mmmlib.stacking import relative_efficiency

    bare = posterior(np.random.default_rng(0), with_weekly=False)
    stored = posterior(np.random.default_rng(0), with_weekly=True)
    ess = az.ess(bare, method="mean")
    expected = float(np.mean(np.hstack([ess[v].values.ravel() for v in ess.data_vars])) / 800)
    assert relative_efficiency(bare) == relative_efficiency(stored) == expected
    assert 0.2 < expected < 0.8  # one slow chain among fast ones
    everything = az.ess(stored, method="mean")  # what arviz averages by default
    assert float(np.mean(np.hstack([everything[v].values.ravel() for v in everything.data_vars])) / 800) > 0.9


def test_without_sampled_parameters_arviz_computes_its_own() -> None:
    from mmmlib.stacking import relative_efficiency

    assert relative_efficiency(xr.DataTree()) is None  # no posterior at all: the score falls back, never fails
    only_weekly = posterior(np.random.default_rng(1), with_weekly=True)
    kept = only_weekly["posterior"].to_dataset()[["channel_contribution", "mu"]]
    assert relative_efficiency(xr.DataTree.from_dict({"posterior": kept})) is None
