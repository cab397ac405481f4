"""Trend and control coefficients sampled in whitened coordinates (mmmlib.whitening, #13): the same posterior
density in other coordinates, national and per geo, whitened coordinates near unit scale, and fits use them by
default together with the centred intercept (mmmlib.centring)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmmlib import structures, whitening

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
GAMMA = "gamma_control"
INTERCEPT = "intercept_contribution"


def _dataset(**changes: Any) -> Any:
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    config = dataclasses.replace(load_config(SAMPLE / "sample_config.yaml"), yearly_seasonality=2, **changes)
    return load_dataset(SAMPLE / "sample_weekly.csv", config)


def _national(dataset: Any, structure: structures.Structure, whiten: bool, centre: bool = False) -> Any:
    from mmmlib import model

    mmm, X, y, _ = model.build(dataset, structure)
    X_fit, y_fit = model._fit_rows(dataset, X, y)
    mmm.whiten_controls, mmm.centre_intercept = whiten, centre
    mmm.build_model(X_fit, y_fit)
    return mmm


def _geo(structure: structures.Structure, whiten: bool, folder: Path) -> Any:
    from mmmlib import geo_model
    from mmmlib.data import synth_geo
    from mmmlib.data.dataset import Dataset, load_dataset
    from mmmlib.data.synth import SynthSpec

    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=3), 3)
    frame.to_csv(folder / "data.csv", index=False)
    dataset: Dataset = load_dataset(folder / "data.csv", config)
    mmm, X, y, _ = geo_model.build(dataset, structure)
    mmm.whiten_controls, mmm.centre_intercept = whiten, False
    mmm.build_model(X, y)
    return mmm


def _check_same_density(plain: Any, white: Any, centred: bool = False) -> None:
    """At random points of the whitened model its log density equals the plain model's at the coefficients (and,
    with the centred intercept, the intercept) it derives."""
    plain_logp, white_logp = plain.compile_logp(), white.compile_logp()
    derived_names = [GAMMA] + ([INTERCEPT] if centred else [])
    outs = white.replace_rvs_by_values([white[n] for n in derived_names])
    derived = white.compile_fn(outs, inputs=white.value_vars, on_unused_input="ignore")
    white_name = GAMMA + whitening.WHITE_SUFFIX
    assert white_name in white.named_vars and GAMMA not in {v.name for v in white.free_RVs}
    assert GAMMA in {v.name for v in plain.free_RVs}
    rng = np.random.default_rng(5)
    for _ in range(4):
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in white.initial_point().items()}
        values = dict(zip(derived_names, (np.asarray(v) for v in derived(point)), strict=True))
        as_plain = {k: v for k, v in point.items() if k in {v.name for v in plain.value_vars}} | values
        assert set(as_plain) == {v.name for v in plain.value_vars}
        assert float(white_logp(point)) == pytest.approx(float(plain_logp(as_plain)), rel=1e-9, abs=1e-9)


@pytest.mark.slow  # builds and compiles PyMC models
@pytest.mark.parametrize(
    "structure",
    [structures.Structure("geometric", "logistic"), structures.Structure("delayed", "hill")],
    ids=lambda s: s.name,
)
def test_the_whitened_national_model_has_the_plain_ones_density(structure: structures.Structure) -> None:
    dataset = _dataset(holdout_periods=8)
    plain = _national(dataset, structure, False).model
    _check_same_density(plain, _national(dataset, structure, True).model)
    _check_same_density(plain, _national(dataset, structure, True, centre=True).model, centred=True)


@pytest.mark.slow  # builds and compiles two hierarchical PyMC models
def test_the_whitened_geo_model_has_the_plain_ones_density(tmp_path: Path) -> None:
    structure = structures.Structure("geometric", "logistic")
    white = _geo(structure, True, tmp_path)
    assert white.model.named_vars_to_dims[GAMMA + whitening.WHITE_SUFFIX] == ("geo", "control")
    _check_same_density(_geo(structure, False, tmp_path).model, white.model)


def test_each_map_whitens_its_own_precision_made_of_the_controls_gram_matrix_and_the_prior() -> None:
    """``M = L'⁻¹`` turns the precision it was made from into the identity (``M' P M = I``), and that precision is
    the prior's plus the controls' Gram matrix over a positive noise variance."""
    mmm = _national(_dataset(), structures.Structure("geometric", "logistic"), False)
    sd = np.linspace(0.5, 2.0, mmm.xarray_dataset["_control"].sizes["control"])
    (P,) = whitening.precisions(mmm, sd)[None]
    M = whitening.whitening_maps(P)
    np.testing.assert_allclose(M.T @ P @ M, np.eye(len(sd)), atol=1e-8)
    X = np.asarray(mmm.xarray_dataset["_control"].transpose("date", "control").values, dtype=float)
    data = P - np.diag(1 / sd**2)
    ratio = data[0, 0] / (X.T @ X)[0, 0]
    assert ratio > 0
    np.testing.assert_allclose(data, ratio * X.T @ X, rtol=1e-9)


def test_fits_whiten_and_centre_by_default_and_only_a_normal_of_fixed_numbers() -> None:
    """The default build whitens the controls and centres the intercept; a user's own control prior is kept."""
    from pymc_extras.prior import Prior

    from mmmlib import centring, model

    mmm, *_ = model.build(_dataset(), structures.Structure("geometric", "logistic"))
    assert whitening.applies(mmm) and centring.applies(mmm)
    mmm.model_config[GAMMA] = Prior("StudentT", mu=0, sigma=2, nu=4, dims="control")
    assert not whitening.applies(mmm)
    mmm.model_config[GAMMA] = Prior("Normal", mu=0, sigma=Prior("HalfNormal"), dims="control")
    assert not whitening.applies(mmm)
    mmm.model_config[GAMMA] = Prior("Normal", mu=0, sigma=2, dims="control")
    assert whitening.applies(mmm)
    mmm.whiten_controls = False
    assert not whitening.applies(mmm)


@pytest.mark.slow  # builds a hierarchical PyMC model
def test_a_geo_model_with_one_coefficient_per_control_for_all_geos_keeps_its_prior(tmp_path: Path) -> None:
    """Whitening is per geo; a coefficient shared by every geo has no one geo's rows to whiten on."""
    from pymc_extras.prior import Prior

    from mmmlib import geo_model
    from mmmlib.data import synth_geo
    from mmmlib.data.dataset import load_dataset
    from mmmlib.data.synth import SynthSpec

    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=3), 3)
    frame.to_csv(tmp_path / "data.csv", index=False)
    mmm, X, y, _ = geo_model.build(
        load_dataset(tmp_path / "data.csv", config), structures.Structure("geometric", "logistic")
    )
    mmm.model_config[GAMMA] = Prior("Normal", mu=0, sigma=2, dims="control")
    assert whitening.applies(mmm)
    mmm.build_model(X, y)
    assert GAMMA in {v.name for v in mmm.model.free_RVs}
    assert GAMMA + whitening.WHITE_SUFFIX not in mmm.model.named_vars
