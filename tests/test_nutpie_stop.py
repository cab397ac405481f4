"""nutpie's draws stop once the reported diagnostics are met (mmmlib.nutpie_stop), with real nutpie samplers."""

from __future__ import annotations

import numpy as np
import pytest

from mmmlib import nutpie_stop
from mmmlib.sampling import StopRule

pm = pytest.importorskip("pymc")
pytest.importorskip("nutpie")
pytestmark = pytest.mark.slow  # real nutpie samplers: about 30 s


def small_model(observations: int = 1) -> pm.Model:
    """Three normals and a sum: ESS ≥ 400 within a few hundred draws; ``observations`` makes each gradient slower."""
    rng = np.random.default_rng(0)
    with pm.Model() as m:
        x = pm.Normal("x", 0, 1, shape=3)
        pm.Deterministic("x_contribution", 2 * x)  # skipped by the check, as the run's diagnostics skip it
        pm.Normal("y", x.sum(), 30.0, observed=rng.normal(0.5, 30.0, observations))
    return m


def sample(model: pm.Model, rule: StopRule, draws: int = 3000) -> object:
    with model, nutpie_stop.installed(rule):
        return pm.sample(nuts_sampler="nutpie", draws=draws, tune=300, chains=2, random_seed=7, progressbar=False)


def test_draws_stop_at_the_first_check_that_meets_the_rule_and_are_the_seeds_first_draws() -> None:
    model = small_model()
    rule = StopRule(min_draws=100, max_draws=3000, block=100)
    idata = sample(model, rule)
    post = idata["posterior"]
    n = post.sizes["draw"]
    assert 100 <= n < 3000 and n % 100 == 0
    assert post.attrs["draws_kept"] == n and post.attrs["draws_allowed"] == 3000
    assert idata["sample_stats"].sizes["draw"] == n
    assert not np.isnan(post["x"].values).any()  # every chain cut to the same n draws, none padded
    diag = nutpie_stop.diagnostics_at(idata, n)
    assert diag["ess_bulk_min"] >= 400 and diag["ess_tail_min"] >= 400 and diag["r_hat_max"] <= 1.01
    if n > 100:  # the check before did not meet the rule
        assert not rule.done(n - 100, nutpie_stop.diagnostics_at(idata, n - 100))
    # the same seed without a rule: the kept draws are its first n (stopping only cuts, it never changes a draw)
    whole = sample(model, StopRule.fixed(3000))
    assert whole["posterior"].sizes["draw"] == 3000
    np.testing.assert_array_equal(post["x"].values, whole["posterior"]["x"].values[:, :n])
    assert nutpie_stop.checked_names(post) == ["x"]


def test_a_rule_never_met_draws_everything_and_a_fixed_number_is_exactly_that() -> None:
    model = small_model()
    never = sample(model, StopRule(min_draws=100, max_draws=500, block=100, ess=1e9), draws=500)
    assert never["posterior"].sizes["draw"] == 500 and never["posterior"].attrs["draws_kept"] == 500
    fixed = sample(model, StopRule.fixed(250), draws=250)
    assert fixed["posterior"].sizes["draw"] == 250
    ceiling = sample(model, StopRule(min_draws=100, max_draws=200, block=100, ess=1e9), draws=900)
    assert ceiling["posterior"].sizes["draw"] == 200  # the rule's ceiling below PyMC's draws


def test_chains_still_running_are_aborted_when_the_rule_is_met(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model slow enough that the check is due long before the chains end: the sampler is aborted, not waited on."""
    import nutpie

    calls: list[str] = []
    original = nutpie.sample

    def spying(compiled: object, **kwargs: object) -> object:
        sampler = original(compiled, **kwargs)
        abort, wait = sampler.abort, sampler.wait
        sampler.abort = lambda: calls.append("abort") or abort()
        sampler.wait = lambda **kw: calls.append("wait") or wait(**kw)
        return sampler

    monkeypatch.setattr(nutpie, "sample", spying)
    idata = sample(small_model(observations=50_000), StopRule(min_draws=100, max_draws=20_000, block=100), 20_000)
    assert calls == ["abort"]
    n = idata["posterior"].sizes["draw"]
    assert n < 20_000 and not np.isnan(idata["posterior"]["x"].values).any()
    # the first check that meets the rule, judged on the draws kept (a check on a half-stored trace would skip one)
    rule = StopRule(min_draws=100, max_draws=20_000, block=100)
    assert rule.done(n, nutpie_stop.diagnostics_at(idata, n))
    assert n == 100 or not rule.done(n - 100, nutpie_stop.diagnostics_at(idata, n - 100))


def test_the_snapshot_read_from_nutpies_arrow_trace_is_what_its_inspect_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks read only the checked columns of the running trace; the draws must be inspect's, to the bit,
    with the unconstrained copies and the per-period outputs left out, and the public route when that read fails."""
    import time

    import nutpie

    rng = np.random.default_rng(1)
    with pm.Model() as model:
        x = pm.Normal("x", 0, 1, shape=3)
        z = pm.Normal("z", 0, 1, shape=(2, 2))
        s = pm.HalfNormal("s", 1)  # sampled as s_log__, which the posterior leaves out
        pm.Deterministic("x_contribution", 2 * x)
        pm.Normal("y", x.sum() + z.sum(), 30.0 * s, observed=rng.normal(0.5, 30.0, 20_000))
    sampler = nutpie.sample(nutpie.compile_pymc_model(model), draws=3000, tune=300, chains=2, blocking=False, seed=1)
    try:
        compared, deadline = 0, time.monotonic() + 120
        while compared < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
            n, draws = nutpie_stop.snapshot(sampler)
            trace = sampler.inspect()  # later than the snapshot: at least as many draws stored
            if n == 0:
                continue
            assert nutpie_stop.drawn(trace) >= n
            assert set(draws) == set(nutpie_stop.checked_names(trace["posterior"])) == {"x", "z", "s"}
            for name, values in draws.items():
                np.testing.assert_array_equal(values, np.asarray(trace["posterior"][name].values)[:, :n])
            compared += 1
        assert compared == 2
        monkeypatch.setattr(nutpie_stop, "_arrow_snapshot", lambda _: 1 / 0)
        n, draws = nutpie_stop.snapshot(sampler)
        assert n > 0 and set(draws) == {"x", "z", "s"} and draws["z"].shape == (2, n, 2, 2)
    finally:
        sampler.abort()
