"""The intercept sampled as baseline + media (mmmlib.centring, #13; measured by benchmarks/adaptation.py, not the
used by fits with mmmlib.whitening): the same posterior density in other coordinates, the level it samples is the
intercept plus the media's mean contribution, and a model built with ``centre_intercept=False`` keeps the intercept as
a parameter (so PyMC can draw it from the prior)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmmlib import centring, structures

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
INTERCEPT = "intercept_contribution"


def _dataset(**changes: Any) -> Any:
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    config = dataclasses.replace(load_config(SAMPLE / "sample_config.yaml"), yearly_seasonality=2, **changes)
    return load_dataset(SAMPLE / "sample_weekly.csv", config)


def _national(dataset: Any, structure: structures.Structure, centre: bool) -> Any:
    from mmmlib import model

    mmm, X, y, _ = model.build(dataset, structure)
    X_fit, y_fit = model._fit_rows(dataset, X, y)
    mmm.centre_intercept, mmm.whiten_controls = centre, False  # the intercept alone (whitening: test_whitening)
    mmm.build_model(X_fit, y_fit)
    return mmm.model


def _geo(structure: structures.Structure, centre: bool, folder: Path) -> Any:
    from mmmlib import geo_model
    from mmmlib.data import synth_geo
    from mmmlib.data.dataset import Dataset, load_dataset
    from mmmlib.data.synth import SynthSpec

    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=3), 3)
    frame.to_csv(folder / "data.csv", index=False)
    dataset: Dataset = load_dataset(folder / "data.csv", config)
    mmm, X, y, _ = geo_model.build(dataset, structure)
    mmm.centre_intercept, mmm.whiten_controls = centre, False  # the intercept alone (whitening: test_whitening)
    mmm.build_model(X, y)
    return mmm.model


def _random_point(model: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A point away from the initial one, in the model's unconstrained (value) space."""
    return {name: value + rng.normal(0.0, 0.3, np.shape(value)) for name, value in model.initial_point().items()}


def _check_same_density(plain: Any, centred: Any) -> None:
    """At random points of the centred model: its log density equals the plain model's at the same parameters with
    the intercept the centred one derives, and its level is that intercept plus the media's mean contribution."""
    plain_logp, centred_logp = plain.compile_logp(), centred.compile_logp()
    outs = centred.replace_rvs_by_values([centred[INTERCEPT], centred["channel_contribution"]])
    derived = centred.compile_fn(outs, inputs=centred.value_vars, on_unused_input="ignore")
    level_name = INTERCEPT + centring.LEVEL_SUFFIX
    assert level_name in centred.named_vars and INTERCEPT not in {v.name for v in centred.free_RVs}
    assert INTERCEPT in {v.name for v in plain.free_RVs}
    rng = np.random.default_rng(11)
    for _ in range(4):
        point = _random_point(centred, rng)
        intercept, contributions = (np.asarray(v) for v in derived(point))
        as_plain = {k: v for k, v in point.items() if k != level_name} | {INTERCEPT: intercept}
        assert float(centred_logp(point)) == pytest.approx(float(plain_logp(as_plain)), rel=1e-9, abs=1e-9)
        dims = list(centred.named_vars_to_dims["channel_contribution"])
        media = contributions.mean(axis=dims.index("date")).sum(axis=dims.index("channel") - 1)
        assert np.asarray(point[level_name]) == pytest.approx(intercept + media, rel=1e-9, abs=1e-12)


@pytest.mark.slow  # builds and compiles four PyMC models
@pytest.mark.parametrize(
    "structure",
    [structures.Structure("geometric", "logistic"), structures.Structure("delayed", "hill")],
    ids=lambda s: s.name,
)
def test_the_centred_national_model_has_the_plain_ones_density(structure: structures.Structure) -> None:
    from pytensor.graph.traversal import ancestors

    dataset = _dataset(holdout_periods=8)  # with weeks held out: the media's mean is over the fitted ones
    centred = _national(dataset, structure, True)
    _check_same_density(_national(dataset, structure, False), centred)
    # held-out weeks and forecasts swap the channel data, which must not move a draw's intercept
    assert centred["channel_data"] not in set(ancestors([centred[INTERCEPT]]))
    assert centred["channel_data"] in set(ancestors([centred["channel_contribution"]]))


@pytest.mark.slow  # builds and compiles two hierarchical PyMC models
def test_the_centred_geo_model_has_the_plain_ones_density(tmp_path: Path) -> None:
    structure = structures.Structure("geometric", "logistic")
    _check_same_density(_geo(structure, False, tmp_path), _geo(structure, True, tmp_path))


def test_only_a_normal_intercept_of_fixed_numbers_with_sampled_roas_is_centred() -> None:
    """Another intercept prior (a user's, in the config), or a model without sampled ROAS, keeps its intercept."""
    from pymc_extras.prior import Prior

    from mmmlib import model

    dataset = _dataset()
    mmm, *_ = model.build(dataset, structures.Structure("geometric", "logistic"))
    assert centring.applies(mmm)  # on by default: fits sample the level
    mmm.centre_intercept = False  # off: the intercept itself, which PyMC can draw from the prior
    assert not centring.applies(mmm)
    mmm.centre_intercept = True
    mmm.model_config["intercept"] = Prior("StudentT", mu=0, sigma=2, nu=4)
    assert not centring.applies(mmm)
    mmm.model_config["intercept"] = Prior("Normal", mu=Prior("Normal"), sigma=2)
    assert not centring.applies(mmm)
    mmm.model_config["intercept"] = Prior("Normal", mu=0, sigma=2)
    mmm.roas = None
    assert not centring.applies(mmm)
