"""Fast fits (#13): the numpyro loop's stopping rule and compile cache, and candidates fitted in worker processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from mmmlib import model
from mmmlib.sampling import StopRule, convergence

ROOT = Path(__file__).resolve().parent.parent


def mmm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, env=env)


# -- the stopping rule -------------------------------------------------------------------------------------------------

MET = {"ess_bulk_min": 450.0, "ess_tail_min": 420.0, "r_hat_max": 1.004}


def test_stop_rule_waits_for_the_minimum_then_for_every_target() -> None:
    rule = StopRule(min_draws=250, max_draws=1000, block=250, ess=400, r_hat=1.01)
    assert not rule.done(0, MET)
    assert rule.done(250, MET)
    assert not rule.done(250, {**MET, "ess_tail_min": 399.0})  # tail ESS too: intervals need their tails
    assert not rule.done(500, {**MET, "ess_bulk_min": 120.0})
    assert not rule.done(500, {**MET, "r_hat_max": 1.02})
    assert rule.done(1000, {**MET, "r_hat_max": 1.5})  # the cap ends it; the diagnostics then say how it went


def test_stop_rule_blocks_never_pass_the_cap() -> None:
    rule = StopRule(min_draws=250, max_draws=600, block=250)
    assert [rule.next_block(d) for d in (0, 250, 500)] == [250, 250, 100]


def test_a_number_of_draws_asked_for_is_drawn_whatever_the_diagnostics() -> None:
    rule = StopRule.fixed(300)
    assert rule.next_block(0) == 300
    assert rule.done(300, {"ess_bulk_min": 3.0, "ess_tail_min": 2.0, "r_hat_max": 2.0})
    assert not rule.done(0, MET)


def test_convergence_sees_the_worst_parameter() -> None:
    rng = np.random.default_rng(0)
    good = rng.normal(size=(2, 1000, 3))
    stuck = good.copy()
    stuck[1] += 5.0  # the second chain elsewhere: chains disagree
    ok = convergence({"a": good})
    assert ok["r_hat_max"] < 1.01 and ok["ess_bulk_min"] > 1000 and ok["ess_tail_min"] > 1000
    bad = convergence({"a": good, "b": stuck})
    assert bad["r_hat_max"] > 1.5 and bad["ess_bulk_min"] < 50


# -- the numpyro loop on a real PyMC model ----------------------------------------------------------------------------

TINY = textwrap.dedent(
    """
    import json, sys
    import jax
    import numpy as np
    import pymc as pm
    from mmmlib import sampling

    events = {}
    jax.monitoring.register_event_listener(lambda name, **kw: events.__setitem__(name, events.get(name, 0) + 1))
    y = np.random.default_rng(1).normal(3.0, 2.0, size=200)
    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 10)
        sigma = pm.HalfNormal("sigma", 5)
        pm.Normal("y", mu, sigma, observed=y)
    rule = sampling.StopRule(min_draws=100, max_draws=2000, block=100, ess=400, r_hat=1.01)
    if sys.argv[1] == "fixed":
        rule = sampling.StopRule.fixed(150)
    tree = sampling.sample(m, chains=2, tune=300, target_accept=0.9, rule=rule, seed=3)
    post = tree["posterior"]
    print(json.dumps({
        "draws": int(post.sizes["draw"]),
        "chains": int(post.sizes["chain"]),
        "mu": float(post["mu"].mean()),
        "sigma": float(post["sigma"].mean()),
        "divergences": int(tree["sample_stats"]["diverging"].sum()),
        "diag": sampling.convergence({k: post[k].values for k in ("mu", "sigma")}),
        "groups": sorted(tree.children),
        "hits": events.get("/jax/compilation_cache/cache_hits", 0),
        "misses": events.get("/jax/compilation_cache/cache_misses", 0),
    }))
    """
)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The same tiny model sampled in three fresh processes sharing one empty compile cache."""
    folder = tmp_path_factory.mktemp("jax-cache")
    script = folder / "tiny.py"
    script.write_text(TINY)
    env = {**os.environ, "MMM_JAX_CACHE": str(folder / "cache")}
    out = {}
    for name, arg in (("cold", "adaptive"), ("warm", "adaptive"), ("fixed", "fixed")):
        proc = subprocess.run([sys.executable, str(script), arg], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["cache"] = {"files": len(list((folder / "cache").iterdir()))}
    return out


@pytest.mark.slow
def test_the_loop_stops_once_the_targets_are_met(tiny_runs: dict[str, dict]) -> None:
    run = tiny_runs["cold"]
    assert run["chains"] == 2 and run["draws"] % 100 == 0 and 100 <= run["draws"] < 2000
    d = run["diag"]
    assert d["ess_bulk_min"] >= 400 and d["ess_tail_min"] >= 400 and d["r_hat_max"] <= 1.01
    assert run["draws"] == 100 or run["draws"] < 2000  # it stopped at the first block that met them, not the cap
    assert run["mu"] == pytest.approx(3.0, abs=0.4) and run["sigma"] == pytest.approx(2.0, abs=0.4)
    assert run["divergences"] == 0
    assert {"posterior", "sample_stats", "observed_data"} <= set(run["groups"])


@pytest.mark.slow
def test_asked_for_draws_are_drawn(tiny_runs: dict[str, dict]) -> None:
    assert tiny_runs["fixed"]["draws"] == 150


@pytest.mark.slow
def test_a_new_process_loads_the_compiled_programs_instead_of_compiling(tiny_runs: dict[str, dict]) -> None:
    assert tiny_runs["cache"]["files"] > 0
    assert tiny_runs["cold"]["misses"] > 0
    assert tiny_runs["warm"]["hits"] > 0 and tiny_runs["warm"]["misses"] == 0
    assert tiny_runs["warm"]["draws"] == tiny_runs["cold"]["draws"]  # same seed, same draws


@pytest.mark.slow
def test_mmm_fit_with_the_numpyro_loop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert mmm("synth", "--out", str(data), "--weeks", "104", "--channels", "2", "--seed", "5").returncode == 0
    run = tmp_path / "store" / "clients" / "acme" / "runs" / "np"
    fit = mmm(
        "fit", str(data / "data.csv"), "--config", str(data / "config.yaml"), "--out", str(run), "--sampler", "numpyro"
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["sampler"] == "numpyro"
    draws = summary["run"]["draws"]
    assert draws % StopRule.block == 0 and StopRule.min_draws <= draws <= model.MODES["quick"]["draws"]
    if draws < model.MODES["quick"]["draws"]:  # stopped by the rule: its targets hold on the reported diagnostics
        d = summary["diagnostics"]
        assert d["ess_bulk_min"] >= 380 and d["ess_tail_min"] >= 380 and d["r_hat_max"] <= 1.011
    log = (run / "fit.log").read_text()
    assert "warm-up steps" in log and "blocks" in log


# -- candidates in worker processes ----------------------------------------------------------------------------------


def test_worker_count_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(model.WORKERS_ENV, "3")
    assert model.candidate_workers(4) == 3
    assert model.candidate_workers(2) == 2  # never more than candidates
    monkeypatch.setenv(model.WORKERS_ENV, "0")
    assert model.candidate_workers(4) == 1
    monkeypatch.setenv(model.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match=model.WORKERS_ENV):
        model.candidate_workers(4)
    monkeypatch.delenv(model.WORKERS_ENV)
    assert 1 <= model.candidate_workers(4) <= 2


def test_a_worker_that_dies_fails_the_fit_and_keeps_the_good_run(synth_run: dict, tmp_path: Path) -> None:
    """A candidate's worker killed mid-fit: the fit fails with that reason and the published run is untouched."""
    data_dir = Path(synth_run["data_dir"])
    config = (data_dir / "config.yaml").read_text().replace("adstock: geometric", "adstock: auto")
    auto = data_dir / "config-auto-killed.yaml"  # beside the data: the lift-test file is named relative to it
    auto.write_text(config)
    run = tmp_path / "store" / "clients" / "acme" / "runs" / "r1"
    shutil.copytree(synth_run["run_dir"], run)  # a copy: the shared run must survive even if this test is wrong
    before = (run / "summary.json").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmmlib", "fit", str(data_dir / "data.csv"), "--config", str(auto), "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, model.WORKERS_ENV: "2"},
    )
    killed = None
    deadline = time.monotonic() + 240

    def sampling() -> bool:  # the workers start with the fit's kernel, before any candidate: wait for one to sample
        return any("sampling " in log.read_text() for log in run.parent.glob(f".{run.name}.tmp-*/fit.log"))

    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        if not sampling():
            time.sleep(0.5)
            continue
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:  # a worker: forked by the fit's fork server, so a child of a process of that command line
                parent = child.parent()
                if parent is not None and all(
                    "multiprocessing.forkserver" in " ".join(p.cmdline()) for p in (child, parent)
                ):
                    time.sleep(1)  # on its candidate
                    child.kill()
                    killed = child.pid
                    break
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.5)
    _, err = proc.communicate(timeout=600)
    assert killed is not None, "no worker process seen"
    assert proc.returncode != 0
    assert "worker process" in err and "died" in err
    assert (run / "summary.json").read_bytes() == before


# -- candidates stopped at different numbers of draws ----------------------------------------------------------------


def _member(adstock: str, draws: int, offset: float) -> model.Fitted:
    import pandas as pd
    import xarray as xr

    from mmmlib import structures

    post = xr.Dataset(
        {"saturation_beta": (("chain", "draw", "channel"), offset + np.arange(2 * draws * 2).reshape(2, draws, 2))},
        coords={"chain": [0, 1], "draw": np.arange(draws), "channel": ["a", "b"]},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, draws), dtype=bool))})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    structure = structures.Structure(adstock, "logistic")
    record = {
        **structure.to_dict(),
        "name": structure.name,
        "r_hat_max": 1.0,
        "ess_bulk_min": 500.0,
        "ess_tail_min": 500.0,
        "divergences": 0,
        "elpd_loo": None,
        "elpd_se": None,
    }
    return model.Fitted(
        None,
        tree,
        pd.DataFrame(),
        pd.Series(dtype=float),
        {},
        "numpyro",
        2,
        draws,
        1.0,
        structure=structure,
        score=(record, None),
    )


def test_candidates_stopped_at_different_draws_mix_without_repeating_a_draw() -> None:
    from mmmlib import stacking

    fitted = stacking.combine([_member("geometric", 750, 0.0), _member("delayed", 250, 1e6)], seed=0)
    post = fitted.idata["posterior"]
    # equal weights (no LOO here): half of 500 from each, all 250 the shorter one drew, none twice
    assert post.sizes["draw"] == 500 and fitted.draws == 500
    assert np.bincount(post["structure"].values[0].astype(int)).tolist() == [250, 250]
    values = post["saturation_beta"].values[..., 0]
    for chain in values:
        assert len(np.unique(chain)) == chain.size  # no draw used twice


def test_the_mixture_keeps_a_heavy_candidates_draws_and_never_uses_one_twice() -> None:
    from mmmlib import stacking

    # the dominant candidate needed more draws than the others: the mixture keeps them all, not the fewest
    assert stacking.mixture_draws([1000, 750, 750, 750], [0.95, 0.05, 0.0, 0.0]) == 1000
    assert stacking.mixture_draws([750, 1000], [0.9, 0.1]) == 833  # 0.9 × n ≤ 750
    assert stacking.mixture_draws([250, 250], [0.5, 0.5]) == 250
    rng = np.random.default_rng(0)
    for _ in range(500):
        k = int(rng.integers(1, 5))
        drawn = rng.choice([250, 500, 750, 1000], size=k).tolist()
        weights = rng.dirichlet(np.ones(k) * 0.5)
        weights[rng.random(k) < 0.3] = 0.0
        if weights.sum() == 0:
            weights[0] = 1.0
        weights = (weights / weights.sum()).tolist()
        n = stacking.mixture_draws(drawn, weights)
        assert min(drawn) <= n <= max(drawn)
        assert all(c <= d for c, d in zip(stacking.allocate(weights, n), drawn, strict=True))


def test_held_out_predictions_mix_the_candidates_like_the_posterior() -> None:
    from mmmlib import stacking

    # flattened (chain × draw, period) predictions: the heavy candidate drew 2 × 1000, the light one stopped at 2 × 250
    heavy = np.arange(2000, dtype=float)[:, None] + np.zeros((1, 3))
    light = 10_000 + np.arange(500, dtype=float)[:, None] + np.zeros((1, 3))
    mixed = stacking.mix_draws([heavy, light], [0.9, 0.1], seed=3)
    assert mixed.shape == (2000, 3)  # as many as the weights allow (2000 / 0.9, 500 / 0.1), not the fewest drawn
    from_light = mixed[:, 0] >= 10_000
    assert from_light.sum() == 200
    assert len(np.unique(mixed[:, 0])) == 2000  # no draw used twice


def test_quick_candidates_stop_at_their_own_targets_and_a_single_fit_at_the_reported_ones() -> None:
    from mmmlib.model import sampler_settings, stop_rule

    candidate = stop_rule(sampler_settings("quick", candidates=4))
    met = {"ess_bulk_min": 260.0, "ess_tail_min": 300.0, "r_hat_max": 1.02}
    assert candidate.max_draws == 2000 and candidate.done(750, met)
    assert not candidate.done(750, {**met, "ess_bulk_min": 240.0})  # short of 250: draws on
    assert not candidate.done(750, {**met, "r_hat_max": 1.06})  # chains disagree beyond quick mode's 1.05
    assert not candidate.done(1000, {**met, "ess_bulk_min": 10.0})  # a hard candidate draws on past 1000
    assert not candidate.done(200, met) and candidate.done(2000, {**met, "ess_bulk_min": 10.0})  # 250 .. 2000
    single = stop_rule(sampler_settings("quick", candidates=1))
    assert single.max_draws == 1500 and not single.done(750, met)  # one structure: ESS 400 and R-hat 1.01
    assert single.done(750, {"ess_bulk_min": 410.0, "ess_tail_min": 420.0, "r_hat_max": 1.005})


def test_a_time_slice_fold_fit_warms_up_for_300_steps_and_stops_once_its_forecast_has_100_effective_draws() -> None:
    from mmmlib.model import FOLD_STEPS, sampler_settings, stop_rule

    settings = sampler_settings("quick", candidates=4, fold=True)
    assert settings["tune"] == FOLD_STEPS["tune"] == 300 and settings["chains"] == 2
    fold = stop_rule(settings)
    met = {"ess_bulk_min": 110.0, "ess_tail_min": 105.0, "r_hat_max": 1.03}
    assert fold.done(250, met)  # where a candidate (250) draws on
    assert not stop_rule(sampler_settings("quick", candidates=4)).done(250, met)
    assert not fold.done(200, met)  # every fit keeps 250 draws per chain
    assert not fold.done(250, {**met, "ess_tail_min": 90.0}) and not fold.done(250, {**met, "r_hat_max": 1.06})
    assert sampler_settings("quick", candidates=4, fold=True, tune=500)["tune"] == 500  # the user's steps still rule


def test_the_posterior_written_beside_the_summary_is_waited_for_and_its_failure_raised(tmp_path: Path) -> None:
    """posterior.nc is written in a thread while the summary is computed: the run is only finished once the file is
    whole, and a failed write fails the fit (quietly when the fit is failing already)."""
    import threading

    import xarray as xr

    from mmmlib.fitting import _writing

    class Slow:
        def __init__(self, error: Exception | None = None) -> None:
            self.error, self.thread = error, ""

        def to_netcdf(self, path: Path) -> None:
            self.thread = threading.current_thread().name
            time.sleep(0.5)
            if self.error is not None:
                raise self.error
            xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("draw", np.arange(3.0))})}).to_netcdf(path)

    slow = Slow()
    started = time.perf_counter()
    finish = _writing(slow, tmp_path / "posterior.nc")
    assert time.perf_counter() - started < 0.4  # the caller goes on while it writes
    finish()
    assert slow.thread != threading.current_thread().name
    assert xr.open_datatree(tmp_path / "posterior.nc")["posterior"]["a"].values.tolist() == [0.0, 1.0, 2.0]
    finish = _writing(Slow(OSError("No space left on device")), tmp_path / "other.nc")
    with pytest.raises(OSError, match="No space left"):
        finish()
    _writing(Slow(OSError("No space left on device")), tmp_path / "third.nc")(quiet=True)


def test_the_stored_curves_fingerprint_the_finished_posterior(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """curves.npz records the posterior file it was made beside (so a later change of that file is noticed): it is
    written once the posterior, written in a thread, is whole, however long that write takes."""
    import types

    import xarray as xr

    from mmmlib import curves_file, fitting
    from mmmlib.request import FitRequest
    from tests.test_optimize import mm_curves

    class SlowPosterior:
        def to_netcdf(self, path: Path) -> None:
            time.sleep(1.5)
            xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("draw", np.arange(3.0))})}).to_netcdf(path)

    fitted = types.SimpleNamespace(idata=SlowPosterior())
    monkeypatch.setattr(model, "fit", lambda *_, **__: fitted)
    monkeypatch.setattr(fitting, "_analysed", lambda *_: {"status": "ok", "hdi_prob": 0.94})
    monkeypatch.setattr(fitting, "run_curves", lambda *_: mm_curves([100.0, 60.0], [20.0, 10.0]))
    sample = Path(__file__).resolve().parent.parent / "sample_data"
    out = tmp_path / "run"
    fitting.fit_to_directory(
        FitRequest(str(sample / "sample_weekly.csv"), str(sample / "sample_config.yaml"), str(out))
    )
    stored = curves_file.read(out, 1.0, 0.94)
    assert stored is not None and stored.channels == ["c0", "c1"]  # not stale: the finished file's fingerprint
