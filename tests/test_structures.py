"""Structures from the data (#12): the registry's formulas against pymc-marketing, the mixture of candidates, the
ROAS priors and the changepoint trend, on cases with known answers (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib import analysis, baseline, roas_priors, stacking, structures
from mmmlib.optimize import Curves


def test_candidates_expand_auto_and_keep_named_forms() -> None:
    auto = structures.candidates("auto", "auto", "auto")
    assert [(s.adstock, s.saturation) for s in auto] == [
        (a, s) for a in structures.AUTO_ADSTOCKS for s in structures.AUTO_SATURATIONS
    ]
    assert all(s.baseline == "changepoints" for s in auto)
    assert structures.candidates("geometric", "hill", "linear") == [structures.Structure("geometric", "hill", "linear")]
    assert [s.adstock for s in structures.candidates("auto", "logistic", "flat")] == list(structures.AUTO_ADSTOCKS)


@pytest.mark.slow  # imports PyMC: seconds
@pytest.mark.parametrize("family", ["geometric", "delayed", "weibull"])
def test_carry_over_weights_match_pymc_marketing(family: str) -> None:
    """The numpy weights the optimiser and forecasts use are pymc-marketing's kernel, lag by lag."""
    params = {"geometric": {"alpha": 0.6}, "delayed": {"alpha": 0.5, "theta": 1.7}, "weibull": {"lam": 2.5, "k": 1.8}}
    component = structures.adstock_component(family, 8)
    impulse = np.zeros(12)
    impulse[0] = 1.0
    x = xr.DataArray(impulse, dims=("date",))
    theirs = np.asarray(component.function(x, **params[family], dim="date").eval())[:8]
    registry = structures.ADSTOCK_FAMILIES[family]
    ours = registry.weights({k: np.array([[v]]) for k, v in params[family].items()}, 8)[:, 0]
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert structures.adstock_weights(family, {k: np.array([[v]]) for k, v in params[family].items()}, 8)[:, 0] == (
        pytest.approx(theirs, abs=1e-9)
    )


@pytest.mark.slow  # imports PyMC: seconds
@pytest.mark.parametrize("family", structures.SATURATIONS)
def test_returns_formulas_and_gradients_match_pymc_marketing(family: str) -> None:
    params = {
        "logistic": {"lam": 2.2, "beta": 0.7},
        "hill": {"slope": 1.6, "kappa": 0.4, "beta": 0.7},
        "michaelis_menten": {"alpha": 0.7, "lam": 0.8},
    }[family]
    from pymc_extras.prior import Prior

    component = structures.saturation_component(family, Prior("LogNormal", mu=0, sigma=1, dims="channel"))
    z = np.linspace(0, 1.5, 7)
    theirs = np.asarray(component.function(xr.DataArray(z, dims=("x",)), **params).eval())
    p = {k: np.asarray(v) for k, v in params.items()}
    registry = structures.SATURATION_FAMILIES[family]
    assert registry.curve(p, z) == pytest.approx(theirs, rel=1e-9)
    z, step = z[1:], 1e-6  # Hill's slope at 0 is infinite for slope < 1: difference quotients from 0.25 up
    numeric = (registry.curve(p, z + step) - registry.curve(p, z)) / step
    assert registry.gradient(p, z + step / 2) == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    # analysis (response curves, the optimiser, forecasts) evaluates the registry's curve on draws (draw, channel)
    draws = {k: np.full((1, 1), v) for k, v in params.items()}
    assert analysis.saturation(family, draws, z[None, :, None])[0, :, 0] == pytest.approx(theirs[1:], rel=1e-9)


def test_the_registry_covers_every_family_with_pymc_marketings_components() -> None:
    """One entry per family a config may name, each with pymc-marketing's class and its parameter names."""
    from pymc_extras.prior import Prior

    from mmmlib import config

    assert config.SATURATIONS == (structures.AUTO, *structures.SATURATION_FAMILIES)
    assert config.ADSTOCKS == (structures.AUTO, *structures.ADSTOCK_FAMILIES)
    assert set(structures.AUTO_SATURATIONS) <= set(structures.SATURATIONS)
    assert set(structures.AUTO_ADSTOCKS) <= set(structures.ADSTOCKS)
    effect = Prior("LogNormal", mu=0, sigma=1, dims="channel")
    for name, family in structures.SATURATION_FAMILIES.items():
        component = structures.saturation_component(name, effect)
        assert family.name == name and type(component).__name__ == family.component
        assert set(family.params) == set(component.default_priors)  # pymc-marketing's names, every one
        assert set(family.nominal) == set(family.shape_priors) and family.effect not in family.shape_priors
        assert structures.family_of(structures.SATURATION_FAMILIES, family.params) == name
        assert analysis.saturation_kind({k: np.ones((2, 1)) for k in family.params}) == name
        assert structures.SATURATION_PARAMS[name] == family.params
    for name, family in structures.ADSTOCK_FAMILIES.items():
        component = structures.adstock_component(name, 4)
        assert family.name == name and type(component).__name__ == family.component
        assert set(family.params) == set(component.default_priors)
        assert structures.family_of(structures.ADSTOCK_FAMILIES, family.params) == name
        assert structures.ADSTOCK_PARAMS[name] == family.params
    with pytest.raises(ValueError, match="unknown returns family"):
        structures.saturation_component("cubic", effect)
    with pytest.raises(ValueError, match="unknown carry-over family"):
        structures.adstock_weights("linear", {}, 4)
    with pytest.raises(KeyError, match="known family"):
        analysis.saturation_kind({"gamma": np.ones((2, 1))})


def test_a_single_family_posterior_is_read_as_its_most_specific_family() -> None:
    """Delayed carry-over has geometric's ``alpha`` and its own ``theta``: without a family variable it is delayed."""
    tree = mixed_posterior()
    post = tree["posterior"].to_dataset().drop_vars(["adstock_family", "saturation_family"])
    post["adstock_theta"] = xr.full_like(post["adstock_alpha"], 1.0)
    post["adstock_alpha"] = xr.full_like(post["adstock_alpha"], 0.5)
    tree = xr.DataTree.from_dict({"posterior": post, "constant_data": tree["constant_data"].to_dataset()})
    w = analysis.adstock_weight_draws(analysis.Posterior.from_idata(tree), 3)[:, :, 0]
    assert w == pytest.approx(np.tile(np.array([0.5, 1.0, 0.5]) / 2, (4, 1)))


def mixed_posterior() -> xr.DataTree:
    """Four draws, one channel: two logistic draws and two Hill draws, each with its own parameters (NaN elsewhere)."""
    nan = np.nan
    coords = {
        "chain": [0],
        "draw": np.arange(4),
        "channel": ["c0"],
        "date": pd.date_range("2024-01-01", periods=3, freq="7D"),
    }
    sat = {
        "lam": [2.0, 3.0, nan, nan],
        "beta": [0.5, 0.4, 0.6, 0.3],
        "slope": [nan, nan, 1.0, 2.0],
        "kappa": [nan, nan, 0.5, 0.25],
        "family": [0, 0, 1, 1],
    }
    ads = {"alpha": [0.5, 0.5, 0.3, 0.5], "theta": [nan, nan, nan, 1.0], "family": [0, 0, 0, 2]}
    post = {
        f"saturation_{k}": (("chain", "draw", "channel"), np.array(v, float).reshape(1, 4, 1))
        for k, v in sat.items()
        if k != "family"
    }
    post |= {
        f"adstock_{k}": (("chain", "draw", "channel"), np.array(v, float).reshape(1, 4, 1))
        for k, v in ads.items()
        if k != "family"
    }
    post["saturation_family"] = (("chain", "draw"), np.array([sat["family"]], float))
    post["adstock_family"] = (("chain", "draw"), np.array([ads["family"]], float))
    post["channel_contribution"] = (("chain", "draw", "date", "channel"), np.zeros((1, 4, 3, 1)))
    const = xr.Dataset(
        {
            "channel_data": (("date", "channel"), np.full((3, 1), 50.0)),
            "target_data": (("date",), np.ones(3)),
            "target_scale": ((), 100.0),
            "channel_scale": (("channel",), np.array([100.0])),
        },
        coords={"date": coords["date"], "channel": ["c0"]},
    )
    return xr.DataTree.from_dict({"posterior": xr.Dataset(post, coords=coords), "constant_data": const})


def test_mixed_draws_use_each_draws_own_family() -> None:
    post = analysis.Posterior.from_idata(mixed_posterior())
    z = 0.5
    resp = analysis.steady_state_response(post, np.array([[50.0]]))[:, 0, 0] / 100.0
    logistic = [b * (1 - np.exp(-lam * z)) / (1 + np.exp(-lam * z)) for lam, b in ((2.0, 0.5), (3.0, 0.4))]
    hill = [b * z**s / (z**s + k**s) for s, k, b in ((1.0, 0.5, 0.6), (2.0, 0.25, 0.3))]
    assert resp == pytest.approx(logistic + hill, rel=1e-12)
    curves = Curves.from_posterior(post)
    assert curves.kind == "mixed"
    grad = curves.mean_gradient(np.array([50.0]))
    numeric = (curves.mean_response(np.array([[50.01]])) - curves.mean_response(np.array([[49.99]]))) / 0.02
    assert grad == pytest.approx(numeric[0], rel=1e-5)
    w = analysis.adstock_weight_draws(post, 3)[:, :, 0]
    assert w[0] == pytest.approx(np.array([1, 0.5, 0.25]) / 1.75)
    assert w[3] == pytest.approx(np.array([0.5, 1.0, 0.5]) / 2)  # delayed: 0.5 ** ((lag - 1) ** 2), peak at lag 1


def dataset(offset: float, extra: str, chains: int = 2, draws: int = 50) -> xr.Dataset:
    shape = (chains, draws, 2)
    return xr.Dataset(
        {
            "shared": (("chain", "draw", "channel"), np.full(shape, offset)),
            extra: (("chain", "draw", "channel"), np.ones(shape)),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "channel": ["a", "b"]},
    )


def test_mixture_takes_each_candidates_share_of_every_chain() -> None:
    counts = stacking.allocate([0.62, 0.0, 0.38], 50)
    assert counts == [31, 0, 19] and sum(counts) == 50
    out, index = stacking.mix_groups(
        [dataset(1.0, "only_a"), dataset(2.0, "only_b"), dataset(3.0, "only_a")], counts, np.random.default_rng(0)
    )
    assert out.sizes["chain"] == 2 and out.sizes["draw"] == 50 and index.shape == (2, 50)
    assert (index == 0).sum(axis=1).tolist() == [31, 31] and (index == 1).sum() == 0
    shared = out["shared"].values[..., 0]
    assert np.array_equal(shared, np.where(index == 0, 1.0, 3.0))
    assert np.isnan(out["only_b"].values).all()  # its only candidate has no draws
    assert not np.isnan(out["only_a"].values).any()


def test_each_chain_of_the_mixture_holds_its_own_chains_draws() -> None:
    """Every kept draw is the candidate's draw from the same chain, in draw order, every trailing dimension intact."""
    chains, draws = 3, 40

    def coded(candidate: int) -> xr.Dataset:  # value = candidate, chain, draw and channel in its digits
        c, d, k = np.meshgrid(np.arange(chains), np.arange(draws), np.arange(2), indexing="ij")
        values = candidate * 1_000_000 + c * 10_000 + d * 10 + k
        return xr.Dataset(
            {"v": (("chain", "draw", "channel"), values.astype(float)), "s": (("chain", "draw"), values[..., 0] * 1.0)},
            coords={"chain": np.arange(chains), "draw": np.arange(draws), "channel": ["a", "b"]},
        )

    counts = [25, 15]
    out, index = stacking.mix_groups([coded(1), coded(2)], counts, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    for m, n in enumerate(counts):
        start = sum(counts[:m])
        for chain in range(chains):
            kept = np.sort(rng.choice(draws, size=n, replace=False))
            got = out["v"].values[chain, start : start + n]
            expected = (m + 1) * 1_000_000 + chain * 10_000 + kept[:, None] * 10 + np.arange(2)[None, :]
            assert np.array_equal(got, expected)
            assert np.array_equal(out["s"].values[chain, start : start + n], expected[:, 0])
    assert out["v"].dims == ("chain", "draw", "channel") and out["draw"].values.tolist() == list(range(40))
    assert (index[:, :25] == 0).all() and (index[:, 25:] == 1).all()


def test_allocation_follows_weights_exactly_in_total() -> None:
    for weights in ([0.5, 0.5], [0.98, 0.01, 0.01], [1 / 3] * 3, [1.0]):
        counts = stacking.allocate(weights, 1000)
        assert sum(counts) == 1000
        assert np.abs(np.array(counts) - 1000 * np.array(weights)).max() <= 1


def test_a_roas_interval_becomes_the_lognormal_with_that_94_percent_interval() -> None:
    mu, sigma = roas_priors.lognormal_from_interval(0.5, 4.0)
    draws = np.random.default_rng(1).lognormal(mu, sigma, 400_000)
    assert np.quantile(draws, [0.03, 0.97]) == pytest.approx([0.5, 4.0], rel=0.01)


@pytest.mark.parametrize("family", structures.SATURATIONS)
def test_effect_prior_carries_the_roas_prior_at_the_central_shape(family: str) -> None:
    """Small and large channels get the same prior on their return: no pull toward zero for small spenders."""
    rng = np.random.default_rng(3)
    spend = np.column_stack([rng.uniform(0, 1000, 104), rng.uniform(0, 20, 104)])  # a big and a tiny channel
    mu, sigma = roas_priors.roas_lognormal(["big", "tiny"], spend, 1e6, valued=True)
    assert mu == pytest.approx([0.2, 0.2]) and sigma == pytest.approx([0.9, 0.9])  # Meridian's default
    scale = spend.max(axis=0)
    m, _ = roas_priors.effect_lognormal(
        family, mu, sigma, spend=spend, channel_scale=scale, target_scale=5e4, value=1.0
    )
    beta = np.exp(m)  # the effect prior's median
    z = spend / scale
    curve = structures.nominal_response(family, z).sum(axis=0)
    implied = beta * 5e4 * curve / spend.sum(axis=0)
    assert implied == pytest.approx(np.exp([0.2, 0.2]), rel=1e-9)


def test_non_revenue_kpi_gets_meridians_total_media_contribution_prior() -> None:
    spend = np.array([[100.0, 300.0]] * 10)
    mu, sigma = roas_priors.roas_lognormal(["a", "b"], spend, kpi_total=50_000, valued=False)
    mean = np.exp(mu + sigma**2 / 2)
    assert mean == pytest.approx([0.4 * 50_000 / 4000] * 2)  # prior mean: media is 40 % of the KPI
    sd = np.sqrt((np.exp(sigma**2) - 1) * np.exp(2 * mu + sigma**2))
    assert sd == pytest.approx([0.2 * 50_000 / np.sqrt(1000**2 + 3000**2)] * 2)


def test_changepoint_trend_is_piecewise_linear_and_extends_its_last_slope() -> None:
    n = 156
    cols = baseline.trend_columns("changepoints", n, np.arange(n + 20), "weekly")
    knots = baseline.knots(n, "weekly")
    assert len(knots) == 4 and knots[0] == pytest.approx(26 / 155)  # every 26 weeks in the first 80 %
    assert set(cols) == {"trend", "trend_cp1", "trend_cp2", "trend_cp3", "trend_cp4"}
    coef = {"trend": 1.0, "trend_cp1": -2.0, "trend_cp2": 0.0, "trend_cp3": 1.5, "trend_cp4": 0.0}
    line = sum(coef[k] * v for k, v in cols.items())
    slopes = np.diff(line) * (n - 1)
    assert slopes[:26] == pytest.approx(1.0) and slopes[30:50] == pytest.approx(-1.0)
    assert slopes[-25:] == pytest.approx(0.5)  # beyond the data: the last slope continues
    for name, values in cols.items():  # centred over the data's rows: none is a second intercept
        assert values[:n].mean() == pytest.approx(0.0, abs=1e-12), name
    assert baseline.trend_columns("flat", n, np.arange(n), "weekly") == {}
    assert set(baseline.trend_columns("linear", n, np.arange(n), "weekly")) == {"trend"}


def test_several_candidates_take_the_per_candidate_steps_and_overrides_still_win() -> None:
    from mmmlib.model import MODES, PER_CANDIDATE, sampler_settings

    assert sampler_settings("quick", candidates=1) == MODES["quick"]
    assert sampler_settings("quick", candidates=4) == {**MODES["quick"], **PER_CANDIDATE["quick"]}
    assert sampler_settings("quick", candidates=4, draws=50)["draws"] == 50
    full = sampler_settings("full", candidates=4)
    assert full == {**MODES["full"], **PER_CANDIDATE["full"]} and full["tune"] < MODES["full"]["tune"]
    assert (full["chains"], "stop" not in full) == (4, True) and full["draws"] > MODES["full"]["draws"]  # to targets
    assert sampler_settings("full", candidates=1) == MODES["full"]  # one fixed structure keeps the mode's steps


def fake_member(adstock: str, loglik: np.ndarray, seed: int, divergent: int = 0) -> object:
    """A fitted candidate as stacking sees it: a structure, draws, sampler stats and pointwise log-likelihood."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    chains, draws = loglik.shape[:2]
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    diverging = np.zeros((chains, draws), bool)
    diverging[0, :divergent] = True
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"y_sigma": (("chain", "draw"), rng.normal(size=(chains, draws)))}, coords=coords),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging)}, coords=coords),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "date"), loglik)}, coords=coords),
        }
    )
    return SimpleNamespace(structure=structures.Structure(adstock, "hill"), idata=tree, fit_seconds=1.0)


def test_candidates_that_predict_alike_share_the_weight_and_a_better_one_takes_it() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(-1.0, 0.05, size=(2, 200, 60))
    alike = same + rng.normal(0, 0.02, size=same.shape)  # predicts as well, week by week a little differently
    weights, records = stacking.compare([fake_member("geometric", same, 1), fake_member("delayed", alike, 2)])
    assert weights == pytest.approx([0.5, 0.5], abs=0.05)  # pseudo-BMA+ splits; stacking proper gave [1, 0] here
    better = same + 0.5  # every held-out week predicted better
    weights, records = stacking.compare([fake_member("geometric", same, 1), fake_member("delayed", better, 2)])
    assert weights[1] > 0.99 and records[1]["elpd_loo"] > records[0]["elpd_loo"]


def test_a_candidate_whose_loo_cannot_be_computed_leaves_equal_weights_not_a_failed_fit() -> None:
    rng = np.random.default_rng(0)
    good = rng.normal(-1.0, 0.05, size=(2, 200, 60))
    flat = np.full((2, 200, 60), -1.0)  # every draw alike: PSIS cannot fit a tail
    weights, records = stacking.compare([fake_member("geometric", good, 1), fake_member("delayed", flat, 2)])
    assert weights == [0.5, 0.5]
    assert records[0]["elpd_loo"] is not None and records[1]["elpd_loo"] is None


def test_a_candidate_that_still_diverges_is_left_out_unless_every_one_does() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(-1.0, 0.05, size=(2, 200, 60))
    better = same + 0.5  # it would take all the weight, but its sampler diverged
    members = [fake_member("geometric", same, 1), fake_member("delayed", better, 2, divergent=3)]
    members[1].retried = {"divergences": 5, "target_accept": 0.95}
    weights, records = stacking.compare(members)
    assert weights == [1.0, 0.0]
    assert records[1]["excluded"] == "3 divergent transitions after a refit at target_accept 0.99"
    assert records[1]["retried"] == {"divergences": 5, "target_accept": 0.95} and "excluded" not in records[0]
    weights, records = stacking.compare([fake_member("geometric", same, 1, 1), fake_member("delayed", better, 2, 2)])
    assert weights[1] > 0.99 and not any("excluded" in r for r in records)  # none is clean: LOO decides as before
