"""nutpie's rewritten PyTensor functions kept per model graph (mmmlib.graph_cache): a model with the same graph and
other data loads them and computes exactly what deriving them anew computes; any change to the model's graph (a
prior, a constant, the structure) is another key; what cannot be described exactly, or frozen data, is not cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # links numba functions (from PyTensor's cache once warm)

ROOT = Path(__file__).resolve().parents[1]


def tiny(weeks: int = 40, seed: int = 0, beta_sd: float = 1.0, shift: float = 0.0) -> Any:
    import pymc as pm

    rng = np.random.default_rng(seed)
    with pm.Model(coords={"channel": range(3), "date": range(weeks)}) as model:
        X = pm.Data("X", rng.normal(size=(weeks, 3)), dims=("date", "channel"))
        y = pm.Data("y_obs", rng.normal(size=weeks), dims="date")
        beta = pm.Normal("beta", sigma=beta_sd, dims="channel")
        sigma = pm.HalfNormal("sigma")
        mu = pm.Deterministic("mu", X @ beta + shift, dims="date")
        pm.Normal("y", mu, sigma, observed=y, dims="date")
    return model


def key_of(model: Any) -> str | None:
    import nutpie.compile_pymc as npc

    from mmmlib import graph_cache

    shapes = npc._compute_shapes(model)
    free = {model.rvs_to_values[rv].name: shapes[model.rvs_to_values[rv].name] for rv in model.free_RVs}
    return graph_cache.model_key(model, free, mode="NUMBA", compute_grad=True, join_expanded=True)


def functions(model: Any) -> tuple[Any, ...]:
    from pymc.initial_point import make_initial_point_fn

    from mmmlib import graph_cache

    start = make_initial_point_fn(model=model, return_transformed=True)
    return graph_cache.make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=start
    )


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from mmmlib import graph_cache

    monkeypatch.setattr(graph_cache, "directory", lambda: tmp_path)
    return tmp_path


def test_a_stored_graph_computes_for_a_new_models_data_what_deriving_it_anew_does(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nutpie.compile_pymc as npc

    first = functions(tiny(40, seed=0))
    assert len(list(cache_dir.glob("*.pkl"))) == 1
    other = tiny(35, seed=1)  # other values, five weeks fewer: the same graph
    fresh = npc._make_functions(
        other,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=lambda seed: {},
    )

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("derived anew although stored")

    monkeypatch.setattr(npc, "_make_functions", refuse)
    loaded = functions(other)
    assert loaded[0] == fresh[0] == first[0] and loaded[1] == fresh[1] == first[1] - 5  # the mean over 35 weeks
    assert loaded[5][0] == fresh[5][0] and [s.stop for s in loaded[5][1]] == [s.stop for s in fresh[5][1]]
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = rng.normal(size=loaded[0])
        (lp, grad), (lp_fresh, grad_fresh) = loaded[2](x), fresh[2](x)
        assert float(lp) == float(lp_fresh) and np.array_equal(grad, grad_fresh)
        assert np.array_equal(np.asarray(loaded[3](x)), np.asarray(fresh[3](x)))
    assert float(loaded[2](x)[0]) != float(first[2](x)[0])  # the new data were read, not the stored ones
    start = loaded[4](0)
    assert start.shape == (loaded[0],) and np.all(np.isfinite(start))


def test_any_change_to_the_graph_is_another_key() -> None:
    base = key_of(tiny())
    assert base is not None and base == key_of(tiny(30, seed=5))  # data: values and length
    assert key_of(tiny(beta_sd=2.0)) != base  # a prior
    assert key_of(tiny(shift=0.5)) != base  # a constant
    model = tiny()
    model.check_bounds = False
    assert key_of(model) != base


def test_the_real_models_key_follows_structure_not_data(tmp_path: Path) -> None:
    from mmmlib import model as mm
    from mmmlib import structures
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    cfg = load_config(ROOT / "sample_data" / "sample_config.yaml")
    frame = pd.read_csv(ROOT / "sample_data" / "sample_weekly.csv")

    def key(rows: int, index: int, scale: float = 1.0) -> str | None:
        data = frame.iloc[:rows].copy()
        data[cfg.channel_columns[0]] *= scale
        path = tmp_path / f"data_{rows}_{scale}.csv"
        data.to_csv(path, index=False)
        ds = load_dataset(path, cfg)
        shape = structures.candidates(cfg.adstock, cfg.saturation, cfg.baseline_form)[index]
        mmm, X, y, _ = mm.build(ds, shape, None)
        X_fit, y_fit = mm._fit_rows(ds, X, y)
        mmm.build_model(X_fit, y_fit)
        return key_of(mmm.model)

    sample = key(156, 0)
    assert sample is not None
    assert key(155, 0) == sample == key(156, 0, scale=1.2)  # a refit a week later, other spend
    assert len({sample, key(156, 1), key(156, 2), key(156, 3)}) == 4  # each structure its own


def test_a_geo_models_key_follows_its_structure_and_geos_not_its_data(tmp_path: Path) -> None:
    """A geo model holds ops with inner graphs (the geo offsets' zero-sum normal), described by their structure: a
    refit a week later, or other values, loads the stored functions; another structure or number of geos does not."""
    from dataclasses import replace

    from mmmlib import geo_model, structures
    from mmmlib.config import load_config, save_config
    from mmmlib.data import synth_geo
    from mmmlib.data.dataset import load_dataset
    from mmmlib.data.synth import SynthSpec

    def key(geos: int, weeks: int = 60, scale: float = 1.0, index: int = 0, centred: bool = False) -> str | None:
        frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=5), geos)
        config = replace(config, adstock="geometric", saturation="logistic", baseline="changepoints")
        frame = frame[frame[config.date_column].isin(sorted(frame[config.date_column].unique())[:weeks])].copy()
        frame[config.channel_columns[0]] *= scale
        name = f"geo_{geos}_{weeks}_{scale}"
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        save_config(config, tmp_path / f"{name}.yaml")
        ds = load_dataset(tmp_path / f"{name}.csv", load_config(tmp_path / f"{name}.yaml"))
        shape = structures.candidates("auto", "auto", "changepoints")[index]
        mmm, X, y, _ = geo_model.build(ds, shape, (True, False) if centred else None)
        mmm.build_model(X, y)
        return key_of(mmm.model)

    three = key(3)
    assert three is not None
    assert key(3, weeks=59) == three == key(3, scale=1.3)  # a refit a week later, other spend
    assert key(3, index=2) != three  # another structure
    assert key(4) != three  # another number of geos: other parameter shapes
    # the refit with a channel's geo offsets centred: its own form, the same for its own refit a week later
    assert three != key(3, centred=True) == key(3, weeks=59, centred=True) is not None


def test_closures_and_large_constants_are_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmmlib import graph_cache

    with pytest.raises(graph_cache.NotDescribable):
        graph_cache.describe(lambda x: x)
    with pytest.raises(graph_cache.NotDescribable):
        graph_cache.describe(np.array([object()]))
    assert graph_cache.describe(np.arange(3.0)) != graph_cache.describe(np.arange(3.0) + 1e-12)
    monkeypatch.setattr(graph_cache, "MAX_CONSTANT_BYTES", 256)
    assert key_of(tiny(shift=0.5)) is not None  # scalar constants
    assert key_of(tiny(shift=np.zeros(40))) is None  # 320 bytes more: too much in constants


def test_a_model_with_its_data_frozen_is_not_cached() -> None:
    from pymc.model.transform.optimization import freeze_dims_and_data

    assert key_of(tiny()) is not None
    assert key_of(freeze_dims_and_data(tiny())) is None  # as pymc and numpyro sample: every dataset a new key


def test_an_unreadable_entry_is_derived_anew_and_replaced(cache_dir: Path) -> None:
    functions(tiny())
    (entry,) = cache_dir.glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    made = functions(tiny(seed=3))
    x = np.zeros(made[0])
    assert np.isfinite(float(made[2](x)[0]))
    assert entry.read_bytes() != b"not a pickle"


def test_shapes_are_read_back_for_data_of_the_same_shape_and_computed_for_others(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nutpie.compile_pymc as npc

    from mmmlib import graph_cache

    model = tiny(40, seed=0)
    graph = graph_cache.description(model, mode="NUMBA")
    assert graph is not None
    first = graph_cache.variable_shapes(model, graph)
    assert first == {k: tuple(v) for k, v in npc._compute_shapes(model).items()} and first["mu"] == (40,)
    assert len(list(cache_dir.glob("*.shapes.json"))) == 1
    longer = tiny(45, seed=1)
    assert graph_cache.variable_shapes(longer, graph)["mu"] == (45,)  # other data shapes: computed and kept
    assert len(list(cache_dir.glob("*.shapes.json"))) == 2

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("computed again although stored")

    monkeypatch.setattr(npc, "_compute_shapes", refuse)
    assert graph_cache.variable_shapes(tiny(40, seed=7), graph) == first  # other values, same shapes: read back
    assert graph_cache.variable_shapes(tiny(45, seed=8), graph)["mu"] == (45,)


def draws_of(model: Any, seed: int) -> Any:
    import xarray as xr

    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            "beta": (("chain", "draw", "channel"), rng.normal(size=(2, 5, 3))),
            "sigma": (("chain", "draw"), rng.uniform(0.5, 2.0, size=(2, 5))),
        },
        coords={"chain": [0, 1], "draw": range(5), "channel": range(3)},
    )


def test_the_deterministics_function_is_stored_once_and_computes_a_new_models_values(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymc as pm
    import pymc.model.core

    from mmmlib import graph_cache

    first = tiny(40, seed=0)
    stored = graph_cache.compute_deterministics(pm.compute_deterministics, draws_of(first, 1), model=first)
    assert stored["mu"].shape == (2, 5, 40)
    assert len(list(cache_dir.glob("*.deterministics.pkl"))) == 1
    other = tiny(35, seed=3)  # the same graph on other data
    expected = pm.compute_deterministics(draws_of(other, 2), model=other)["mu"].to_numpy()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("compiled although stored")

    monkeypatch.setattr(pymc.model.core, "compile", refuse)  # what Model.compile_fn calls
    loaded = graph_cache.compute_deterministics(pm.compute_deterministics, draws_of(other, 2), model=other)
    assert np.array_equal(loaded["mu"].to_numpy(), expected)  # the new model's data, bit for bit
    assert "compile_fn" not in vars(other)  # the model's own method again
    with pytest.raises(AssertionError, match="compiled although stored"):  # another graph is not served from here
        graph_cache.compute_deterministics(pm.compute_deterministics, draws_of(other, 2), model=tiny(shift=0.5))


def test_the_initial_point_is_stored_once_and_starts_a_new_models_chains_where_pymcs_own_would(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where each chain starts (support points, jittered by the seed) depends on the data through the priors: the
    stored function, handed another model's data, gives PyMC's own start for every seed, without compiling."""
    import pymc as pm
    import pymc.initial_point as ip

    from mmmlib import graph_cache

    def with_level(weeks: int, seed: int) -> Any:
        model = tiny(weeks, seed)
        with model:
            pm.Normal("level", mu=100 * model["X"].mean(), sigma=1)  # its start follows the data
        return model

    settings = {"default_strategy": "support_point", "return_transformed": True}
    first = with_level(40, 0)
    made = graph_cache.initial_point_function(first, jitter_rvs=set(first.free_RVs), **settings)
    assert len(list(cache_dir.glob("*.initial.pkl"))) == 1
    other = with_level(35, 1)
    pymcs = ip.make_initial_point_fn(model=other, jitter_rvs=set(other.free_RVs), **settings)
    expected = {seed: pymcs(seed) for seed in (1, 2, 3)}
    assert abs(expected[1]["level"] - made(1)["level"]) > 1  # the two datasets start the level apart

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("compiled anew although stored")

    original = ip.make_initial_point_fn
    monkeypatch.setattr(ip, "make_initial_point_fn", refuse)
    loaded = graph_cache.initial_point_function(other, jitter_rvs=set(other.free_RVs), **settings)
    for seed, want in expected.items():
        got = loaded(seed)
        assert list(got) == list(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    assert len(list(cache_dir.glob("*.initial.pkl"))) == 1
    # other jittered variables are another entry
    monkeypatch.setattr(ip, "make_initial_point_fn", original)
    graph_cache.initial_point_function(other, jitter_rvs=set(), **settings)
    assert len(list(cache_dir.glob("*.initial.pkl"))) == 2
