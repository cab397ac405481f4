"""nutpie's compiled model with its C callbacks in the disk cache (mmmlib.nutpie_cache): the same log-density,
gradient and draws as nutpie's own, loaded instead of compiled by the next process, nutpie's own when it fails."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # compiles with numba: tens of seconds cold

MODEL = """
import numpy as np, pymc as pm
rng = np.random.default_rng(0)
with pm.Model(coords={"channel": range(3), "date": range(40)}) as model:
    X = pm.Data("X", rng.normal(size=(40, 3)), dims=("date", "channel"))
    group = pm.Data("group", np.arange(40) % 2)
    beta = pm.Normal("beta", dims="channel")
    level = pm.Normal("level", shape=2)
    sigma = pm.HalfNormal("sigma")
    mu = pm.Deterministic("mu", X @ beta + level[group], dims="date")
    pm.Normal("y", mu, sigma, observed=rng.normal(size=40), dims="date")
"""


def tiny_model() -> Any:
    scope: dict[str, Any] = {}
    exec(MODEL, scope)
    return scope["model"]


def call_logp(compiled: Any, x: np.ndarray) -> tuple[float, np.ndarray]:
    grad, logp = np.zeros_like(x), np.zeros(())
    dbl = ctypes.POINTER(ctypes.c_double)
    rc = compiled.compiled_logp_func.ctypes(
        x.size,
        x.ctypes.data_as(dbl),
        grad.ctypes.data_as(dbl),
        logp.ctypes.data_as(dbl),
        compiled.user_data.ctypes.data,
    )
    assert rc == 0
    return float(logp), grad


def call_expand(compiled: Any, x: np.ndarray) -> np.ndarray:
    out = np.zeros(compiled.n_expanded)
    dbl = ctypes.POINTER(ctypes.c_double)
    rc = compiled.compiled_expand_func.ctypes(
        x.size, out.size, x.ctypes.data_as(dbl), out.ctypes.data_as(dbl), compiled.user_data.ctypes.data
    )
    assert rc == 0
    return out


def test_cached_callbacks_compute_what_nutpies_own_compute() -> None:
    import nutpie

    from mmmlib import nutpie_cache

    model = tiny_model()
    ours = nutpie_cache.compile_pymc_model(model, backend="numba")
    theirs = nutpie.compile_pymc_model(model, backend="numba")
    assert ours.n_dim == theirs.n_dim == 6 and ours.n_expanded == theirs.n_expanded
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.normal(size=ours.n_dim)
        (lp_ours, g_ours), (lp_theirs, g_theirs) = call_logp(ours, x), call_logp(theirs, x)
        assert lp_ours == pytest.approx(lp_theirs, rel=1e-12) and np.allclose(g_ours, g_theirs, rtol=1e-12)
        assert np.allclose(call_expand(ours, x), call_expand(theirs, x), rtol=1e-12)
    assert not np.allclose(call_logp(ours, x)[1], 0)  # the data were read: a zero gradient would hide a bad pointer


def test_a_new_process_loads_the_callbacks_instead_of_compiling() -> None:
    from mmmlib import nutpie_cache

    nutpie_cache.compile_pymc_model(tiny_model(), backend="numba")  # compiled or loaded: now on disk
    probe = (
        MODEL
        + "from mmmlib import nutpie_cache\n"
        + "c = nutpie_cache.compile_pymc_model(model, backend='numba')\n"
        + "print(c.compiled_logp_func.cache_hits, c.compiled_expand_func.cache_hits)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ), check=True
    )
    assert out.stdout.split()[-2:] == ["1", "1"], out.stderr[-2000:]


def test_a_failure_falls_back_to_nutpies_own_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmmlib import nutpie_cache

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated")

    monkeypatch.setattr(nutpie_cache, "_compile", broken)
    compiled = nutpie_cache.compile_pymc_model(tiny_model(), backend="numba")
    assert call_logp(compiled, np.zeros(compiled.n_dim))[0] < 0


def test_pymc_samples_through_the_cached_compile_while_installed() -> None:
    import nutpie
    import pymc as pm

    from mmmlib import nutpie_cache

    model = tiny_model()
    original = nutpie.compile_pymc_model
    with nutpie_cache.installed(), model:
        assert nutpie.compile_pymc_model is nutpie_cache.compile_pymc_model
        idata = pm.sample(nuts_sampler="nutpie", chains=2, tune=200, draws=200, random_seed=1, progressbar=False)
    assert nutpie.compile_pymc_model is original
    assert idata["posterior"]["beta"].shape == (2, 200, 3) and int(idata["sample_stats"]["diverging"].sum()) == 0


def test_steps_go_to_nuts_without_building_the_log_density_while_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymc as pm
    import pymc.sampling.mcmc as mcmc
    from pymc.step_methods import NUTS

    from mmmlib import nutpie_cache

    model = tiny_model()
    pymc_assign = mcmc.assign_step_methods
    with nutpie_cache.installed():
        with monkeypatch.context() as m:
            m.setattr(type(model), "logp", lambda *a, **k: pytest.fail("built the log density"))
            provided, selected = mcmc.assign_step_methods(model)
        assert provided == [] and list(selected) == [NUTS] and selected[NUTS] == model.value_vars
        with pm.Model() as discrete:
            pm.Bernoulli("coin", 0.5)
            pm.Normal("x")
        provided, selected = mcmc.assign_step_methods(discrete)  # not all continuous: PyMC's own assignment
        assert NUTS in selected and len(selected) == 2
    assert mcmc.assign_step_methods is pymc_assign


def test_the_switch_leaves_nutpie_its_own_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    import nutpie

    from mmmlib import nutpie_cache

    monkeypatch.setenv(nutpie_cache.SWITCH, "0")
    with nutpie_cache.installed():
        assert nutpie.compile_pymc_model is not nutpie_cache.compile_pymc_model


def test_a_cold_compile_and_a_cached_one_draw_the_same_chains(tmp_path: Any) -> None:
    """With LLVM's fast-math, a model compiled in the process and the same model loaded from the disk cache drew
    different chains from the same seed: a new shape's first fit differed from every later fit of it."""
    probe = MODEL + (
        "import hashlib, pymc as pm\n"
        "from mmmlib import nutpie_cache\n"
        "with nutpie_cache.installed(), model:\n"
        "    idata = pm.sample(nuts_sampler='nutpie', chains=2, tune=300, draws=300, random_seed=1,"
        " progressbar=False)\n"
        "print(hashlib.sha256(np.ascontiguousarray(idata['posterior']['beta'].values).tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}"}  # empty: the first process compiles cold

    def draws() -> str:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()[-1]

    cold = draws()
    assert draws() == cold  # the second process loads everything from the cache
