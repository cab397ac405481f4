"""ROAS as the sampled parameter (#12, priors that do not decide the answer): every candidate structure holds the
stated ROAS prior exactly, predictions of new periods keep each draw's effect size, and a prior the user sets on
the effect size itself replaces it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmmlib import priors, roas_priors, structures

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _sample(**changes: Any) -> Any:  # a Dataset
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    config = dataclasses.replace(load_config(SAMPLE / "sample_config.yaml"), **changes)
    return load_dataset(SAMPLE / "sample_weekly.csv", config)


def _built(dataset: Any, structure: structures.Structure, own_coordinates: bool = False) -> tuple[Any, Any]:
    """The model as fits build it; ``own_coordinates``: sampled in its own parameters (fits sample the same
    posterior with a centred intercept and whitened controls, whose flat coordinates PyMC cannot draw from)."""
    from mmmlib import model

    mmm, X, y, _ = model.build(dataset, structure)
    X_fit, y_fit = model._fit_rows(dataset, X, y)
    if own_coordinates:
        mmm.centre_intercept = mmm.whiten_controls = False
    mmm.build_model(X_fit, y_fit)
    return mmm, X_fit


@pytest.mark.slow  # builds and compiles four PyMC models
@pytest.mark.parametrize("structure", structures.candidates("auto", "auto", "auto"), ids=lambda s: s.name)
def test_every_structure_holds_the_stated_roas_prior_exactly(structure: structures.Structure) -> None:
    """Drawn from the prior, the ROAS each draw's contributions give is the sampled ROAS, whatever the carry-over
    and shape; and that ROAS has the configured 94 % interval (here TV's [0.5, 4] beside Meridian's default)."""
    import pymc as pm

    from mmmlib import model

    dataset = _sample(roas_prior={"tv_spend": [0.5, 4.0]}, holdout_periods=8)
    mmm, X_fit = _built(dataset, structure, own_coordinates=True)
    with mmm.model:
        prior = pm.sample_prior_predictive(draws=4000, random_seed=7)["prior"]
    contributions = prior["channel_contribution"].values[0]  # (draw, date, channel) on the scaled KPI
    spend = model.channel_spend(dataset)[: len(X_fit)].sum(axis=0)  # the held-out weeks are not fitted
    value, _ = model._value_per_kpi(dataset)
    implied = contributions.sum(axis=1) * float(mmm.scalers["_target"]) * value / spend
    sampled = prior["saturation_roas"].values[0]
    assert implied == pytest.approx(sampled, rel=1e-9)
    tv = list(dataset.config.channel_columns).index("tv_spend")
    assert np.quantile(sampled[:, tv], [0.03, 0.97]) == pytest.approx([0.5, 4.0], rel=0.08)
    others = np.delete(sampled, tv, axis=1).reshape(-1)
    assert np.median(others) == pytest.approx(np.exp(roas_priors.DEFAULT_ROAS[0]), rel=0.05)


@pytest.mark.slow  # builds a PyMC model
def test_predicting_new_periods_keeps_each_draws_effect_size() -> None:
    """The effect size is derived from the fitted rows' curve, held as a constant: a forecast or a held-out week
    swaps the channel data, which must not move beta (it would if the sum ran over the data being predicted)."""
    from pytensor.graph.traversal import ancestors

    mmm, _ = _built(_sample(), structures.Structure("delayed", "hill"))
    model = mmm.model
    beta_inputs = set(ancestors([model["saturation_beta"]]))
    assert model["channel_data"] not in beta_inputs
    assert model["saturation_roas"] in beta_inputs
    assert model["channel_data"] in set(ancestors([model["channel_contribution"]]))


@pytest.mark.slow  # builds a PyMC model
def test_a_prior_on_the_effect_size_itself_replaces_the_roas_prior() -> None:
    mmm, _ = _built(
        _sample(priors={"saturation_beta": {"dist": "HalfNormal", "sigma": 2}}),
        structures.Structure("geometric", "logistic"),
    )
    assert mmm.roas is None
    assert "saturation_roas" not in mmm.model.named_vars
    assert "saturation_beta" in {v.name for v in mmm.model.free_RVs}


def test_prior_draws_of_contributions_hold_the_roas_prior_for_the_identification_rule() -> None:
    """The prior group kept in a run (prior sd of ROAS for "not identified") is drawn the model's way."""
    rng = np.random.default_rng(2)
    spend = np.column_stack([rng.uniform(0, 1000, 80), rng.uniform(0, 20, 80)])
    roas = roas_priors.RoasParameterisation(
        mu=np.array([0.2, 1.0]), sigma=np.array([0.9, 0.3]), spend=spend.sum(axis=0), value=2.0
    )
    alpha = {"dist": "Beta", "kwargs": {"alpha": 1, "beta": 3}}
    lam = {"dist": "Gamma", "kwargs": {"alpha": 3, "beta": 1}}
    attrs = {
        "adstock": json.dumps({"prefix": "adstock", "priors": {"alpha": alpha}}),
        # as a run stores it: an effect-size prior for pymc-marketing's loader, not shown as ours
        "saturation": json.dumps(
            {"prefix": "saturation", "priors": {"lam": lam, "beta": {"dist": "HalfNormal", "kwargs": {"sigma": 2}}}}
        ),
        roas_priors.ROAS_PRIOR_ATTR: roas.record(),
    }
    target_scale = 5e4
    draws = priors.prior_contributions(
        attrs, "geometric", "logistic", spend, spend.max(axis=0), 8, 20_000, 3, roas=roas, target_scale=target_scale
    )
    assert draws is not None
    implied = draws.sum(axis=1) * target_scale * 2.0 / spend.sum(axis=0)
    assert np.median(implied, axis=0) == pytest.approx(np.exp([0.2, 1.0]), rel=0.03)
    assert np.std(np.log(implied), axis=0) == pytest.approx([0.9, 0.3], rel=0.03)
    # the quality view's priors-against-posteriors gets the ROAS prior beside the stored component priors
    shown = priors.media_prior_draws(attrs, ["a", "b"], draws=20_000)
    assert set(shown) == {"adstock_alpha", "saturation_lam", "saturation_roas"}
    assert np.median(shown["saturation_roas"], axis=0) == pytest.approx(np.exp([0.2, 1.0]), rel=0.03)


@pytest.mark.slow  # builds and compiles two hierarchical PyMC models
@pytest.mark.parametrize(
    ("structure", "centred"),
    [(structures.Structure("geometric", "logistic"), None), (structures.Structure("delayed", "hill"), (True, False))],
    ids=["geometric+logistic", "delayed+hill, tv centred"],
)
def test_every_geo_holds_its_hierarchical_roas_prior_exactly(
    structure: structures.Structure, centred: tuple[bool, ...] | None, tmp_path: Path
) -> None:
    """A geo fit samples each geo's ROAS: drawn from the prior, the ROAS each geo's own contributions give (back in
    totals: × target scale × its population factor, over its spend) is the sampled one, whatever the carry-over and
    shape; a geo that never spends on a channel gets no contribution there; the spend-weighted mean of the geos'
    returns, the national one, has the channel's ROAS prior exactly, the geos spread around it, by as much whether a
    channel's offsets are sampled centred or not."""
    import pymc as pm
    from pytensor.graph.traversal import ancestors

    from mmmlib import geo_model, model
    from mmmlib.config import ModelConfig
    from mmmlib.data import synth_geo
    from mmmlib.data.dataset import load_dataset
    from mmmlib.data.synth import SynthSpec

    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=5), 3, quiet_geo=True)
    silent = frame["geo"] == frame["geo"].unique()[1]
    frame.loc[silent, ["search_spend", "search_impressions"]] = 0.0  # geo001 never buys search
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = dataclasses.replace(config, roas_prior={"tv_spend": [0.5, 4.0]})
    assert isinstance(config, ModelConfig)
    dataset = load_dataset(tmp_path / "data.csv", config)
    mmm, X, y, _ = geo_model.build(dataset, structure, centred)
    mmm.centre_intercept = mmm.whiten_controls = False  # PyMC draws priors in the model's own coordinates only
    mmm.build_model(X, y)
    with mmm.model:
        prior = pm.sample_prior_predictive(draws=3000, random_seed=7)["prior"]
    contributions = prior["channel_contribution"].transpose("chain", "draw", "date", "geo", "channel").values[0]
    factor = geo_model.population_factor(dataset).to_numpy()
    spend = frame.groupby("geo")[list(config.channel_columns)].sum().reindex(dataset.geos).to_numpy()
    value, _ = model._value_per_kpi(dataset)
    totals = contributions.sum(axis=1) * float(mmm.scalers["_target"]) * factor[:, None] * value
    sampled = prior["saturation_roas"].transpose("chain", "draw", "geo", "channel").values[0]
    buys = spend > 0
    assert (totals / np.where(buys, spend, 1.0))[:, buys] == pytest.approx(sampled[:, buys], rel=1e-9)
    assert np.all(totals[:, ~buys] == 0.0)
    # the prior sits on the national return: the geos' returns weighted by their spend average to it exactly
    national = prior["saturation_roas_national"].values[0]  # (draw, channel)
    weights = spend / spend.sum(axis=0)
    assert (sampled * weights).sum(axis=1) == pytest.approx(national, rel=1e-9)
    tv = list(config.channel_columns).index("tv_spend")
    assert np.quantile(national[:, tv], [0.03, 0.97]) == pytest.approx([0.5, 4.0], rel=0.1)
    assert np.median(national[:, 1 - tv]) == pytest.approx(np.exp(roas_priors.DEFAULT_ROAS[0]), rel=0.06)
    # two geos differ by tau_c (z_1c - z_2c): variance 2 E[tau^2] = 2 TAU_SD^2 for a half-normal tau
    between = np.log(sampled[:, 0, :]) - np.log(sampled[:, 2, :])
    assert between.std(axis=0) == pytest.approx([np.sqrt(2) * geo_model.TAU_SD] * 2, rel=0.1)
    # the numpy twin the "not identified" rule draws with gives the model's returns from the model's draws
    twin = roas_priors.geo_returns(
        national,
        prior["saturation_roas_spread"].values[0],
        prior["saturation_roas_offset"].transpose("chain", "draw", "geo", "channel").values[0],
        weights,
        None if centred is None else np.array(centred),
    )
    assert twin == pytest.approx(sampled, rel=1e-9)
    record = json.loads(mmm.roas.record())
    assert record["tau_sd"] == geo_model.TAU_SD and np.allclose(record["weights"], weights)
    assert record.get("centred") == (None if centred is None else list(centred))
    # one forward pass: a geo model predicts no other weeks through PyMC (no holdout; forecasts are numpy)
    assert mmm.model["saturation_roas"] in set(ancestors([mmm.model["saturation_beta"]]))


def test_geo_offsets_are_centred_where_the_geos_data_pin_each_return_down() -> None:
    """The centring rule reads a fit's draws: a channel whose geos' log deviations from the national return vary
    across draws by a tenth of the channel's spread is centred (its geos are pinned down by their data); one whose
    deviations vary as much as the spread (the prior's own width) is not."""
    import xarray as xr

    from mmmlib import geo_model

    rng = np.random.default_rng(3)
    chains, draws, geos = 2, 400, 6
    spread = np.array([0.3, 0.3, 0.4])
    typical = rng.normal(0.0, 0.3, (geos, 3))
    typical -= typical.mean(axis=0)
    # posterior sd of each geo's deviation: 0.03 (pinned), 0.3 (as wide as the spread), 0.18 (just under half)
    sd = np.array([0.03, 0.3, 0.18])
    deviation = typical + rng.normal(0.0, 1.0, (chains, draws, geos, 3)) * sd
    national = rng.normal(0.2, 0.05, (chains, draws, 3))
    dims = ("chain", "draw", "geo", "channel")
    posterior = xr.Dataset(
        {
            "saturation_roas": (dims, np.exp(national[:, :, None, :] + deviation)),
            "saturation_roas_national": (("chain", "draw", "channel"), np.exp(national)),
            "saturation_roas_spread": (("chain", "draw", "channel"), np.broadcast_to(spread, (chains, draws, 3))),
        }
    )
    assert geo_model.centring(posterior) == (True, False, True)
    narrower = posterior.assign(saturation_roas_spread=posterior["saturation_roas_spread"] * 0.8)
    assert geo_model.centring(narrower) == (True, False, False)  # 0.18 / 0.32 is over half
