"""Lift tests: which file fits which model (a geo model's tests name their geo), spend turned into the units the
model is fitted on (impressions; per capita in a geo model), and the geo model's lift likelihood comparing each test
with that geo's own response."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib import geo_model, model, structures
from mmmlib.data.dataset import load_dataset
from mmmlib.data.lift_tests import read_lift_tests
from mmmlib.data.synth import SynthSpec
from mmmlib.data.synth_geo import generate
from mmmlib.errors import InputError


def _geo_dataset(tmp_path: Path, **change: object):
    frame, config, _ = generate(SynthSpec(weeks=60, channels=2, seed=5), 3)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    for key, value in change.items():
        setattr(config, key, value)
    return load_dataset(path, config), frame, config


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "lift.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


TEST = {"channel": "tv_spend", "spend": 1000.0, "spend_change": 200.0, "kpi_change": 500.0, "standard_error": 50.0}


def test_a_geo_models_tests_name_their_geo_and_a_national_model_refuses_geo_tests(tmp_path: Path) -> None:
    channels, geos = ["tv_spend", "search_spend"], ["geo000", "geo001", "geo002"]
    by_geo = _write(tmp_path, [{**TEST, "geo": "geo001"}, {**TEST, "geo": "atlantis"}])
    with pytest.raises(InputError, match="need a geo model"):
        read_lift_tests(by_geo, channels)
    with pytest.raises(InputError) as bad:
        read_lift_tests(by_geo, channels, geos=geos)
    assert "'atlantis' is not one of the data's geos" in str(bad.value) and "Row 3, column geo" in str(bad.value)
    with pytest.raises(InputError, match="needs each lift test's geo"):
        read_lift_tests(_write(tmp_path, [TEST]), channels, geos=geos, geo_column="region")
    good = read_lift_tests(_write(tmp_path, [{**TEST, "Region": "geo002"}]), channels, geos=geos, geo_column="region")
    assert good.to_dict("records") == [
        {"geo": "geo002", "channel": "tv_spend", "x": 1000.0, "delta_x": 200.0, "delta_y": 500.0, "sigma": 50.0}
    ]


def test_a_geo_test_becomes_that_geos_impressions_and_kpi_per_capita(tmp_path: Path) -> None:
    ds, frame, _ = _geo_dataset(tmp_path)
    lift = pd.DataFrame(
        [{"channel": "tv_spend", "geo": "geo001", "x": 1000.0, "delta_x": 200.0, "delta_y": 500.0, "sigma": 50.0}]
    )
    out = model.lift_measurements(ds, lift).iloc[0]
    rows = frame[frame["geo"] == "geo001"]
    per_money = rows["tv_impressions"].sum() / rows["tv_spend"].sum()  # the geo's own cost per impression
    f = float(geo_model.population_factor(ds)["geo001"])
    assert f != pytest.approx(1.0) and per_money > 10
    assert out["x"] == pytest.approx(1000.0 * per_money / f) and out["delta_x"] == pytest.approx(200.0 * per_money / f)
    assert out["delta_y"] == pytest.approx(500.0 / f) and out["sigma"] == pytest.approx(50.0 / f)
    assert out["geo"] == "geo001"


def test_a_national_test_on_an_impressions_channel_is_put_in_impressions(tmp_path: Path) -> None:
    ds, frame, _ = _geo_dataset(tmp_path, geo_model="aggregate")  # the geos summed: one national model
    assert ds.geo_frame is None or not ds.config.hierarchical
    lift = pd.DataFrame([{"channel": "tv_spend", "x": 1000.0, "delta_x": 200.0, "delta_y": 500.0, "sigma": 50.0}])
    out = model.lift_measurements(ds, lift).iloc[0]
    per_money = frame["tv_impressions"].sum() / frame["tv_spend"].sum()
    assert out["x"] == pytest.approx(1000.0 * per_money) and out["delta_y"] == 500.0


def test_the_geo_models_lift_likelihood_compares_a_test_with_that_geos_own_response(tmp_path: Path) -> None:
    """Each draw's modelled lift (per capita), times the geo's population factor, is the geo's total response to the
    spend change: f × target scale × beta_gc × [curve((x + dx) / f / scale) − curve(x / f / scale)] in impressions."""
    import pymc as pm

    ds, frame, _ = _geo_dataset(tmp_path)
    structure = structures.candidates("geometric", "logistic", "changepoints")[0]
    mmm, X, y, _ = geo_model.build(ds, structure)
    mmm.build_model(X, y)
    rows = frame[frame["geo"] == "geo002"]
    x = float(rows["search_spend"].mean())
    raw = pd.DataFrame(
        [{"channel": "search_spend", "geo": "geo002", "x": x, "delta_x": 0.3 * x, "delta_y": 1.0, "sigma": 1.0}]
    )
    mmm.add_lift_test_measurements(model.lift_measurements(ds, raw))
    names = ["saturation_beta", "saturation_lam", "lift_measurements_model_estimated_lift_original_scale"]
    prior = pm.sample_prior_predictive(draws=20, model=mmm.model, var_names=names, random_seed=1)["prior"]
    g, c = list(ds.geos).index("geo002"), list(ds.config.channel_columns).index("search_spend")
    f = float(geo_model.population_factor(ds)["geo002"])
    per_money = rows["search_impressions"].sum() / rows["search_spend"].sum()
    scale = float((frame["search_impressions"] / frame["geo"].map(geo_model.population_factor(ds))).max())
    target_scale = float((frame["revenue"] / frame["geo"].map(geo_model.population_factor(ds))).abs().max())
    beta = prior["saturation_beta"].values[0, :, g, c]
    lam = prior["saturation_lam"].values[0, :, c]

    def total(spend: float) -> np.ndarray:
        z = spend * per_money / f / scale
        return f * target_scale * beta * (1 - np.exp(-lam * z)) / (1 + np.exp(-lam * z))

    modelled = prior["lift_measurements_model_estimated_lift_original_scale"].values[0, :, 0] * f
    np.testing.assert_allclose(modelled, total(1.3 * x) - total(x), rtol=1e-6)
