"""NUTS on JAX (numpyro) that compiles once and samples only what the answer needs.

Two things PyMC's own numpyro route does not do:

- **Compile once.** XLA programs (the log-density, the sampler's warm-up and draw loops, the post-processing) are kept
  in JAX's persistent compilation cache (:func:`configure_jax`), so a refit of the same data and structure in a new
  process loads them instead of compiling; nutpie recompiles its numba model on every fit (``NOTES.md``).
- **A stopping rule.** After warm-up, draws come in blocks of ``StopRule.block`` per chain (one compiled loop reused
  for every block) until every sampled parameter has bulk and tail ESS ≥ ``StopRule.ess`` and R-hat ≤
  ``StopRule.r_hat``, never fewer than ``StopRule.min_draws`` per chain nor more than ``StopRule.max_draws``.

The model is PyMC's (built by pymc-marketing); this module only replaces the loop that draws from it, and returns
the same ``DataTree`` groups :func:`pymc.sample` would (posterior with deterministics, sample_stats, observed and
constant data).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("mmmlib.sampling")

CACHE_ENV = "MMM_JAX_CACHE"
# numpyro runs chains in parallel only on as many XLA devices as chains: set before jax is first imported
XLA_DEVICES = "--xla_force_host_platform_device_count=2"
DENSE_MASS = True  # the trend, changepoint and saturation parameters are strongly correlated (benchmarks/samplers.py)
# A geo model has 185-1,715 parameters, whose covariance a 500-step warm-up would estimate from its last window's 200
# draws: a diagonal mass matrix there (as nutpie's), measured against the dense one at 10 geos (docs/geo.md, Scale)
GEO_DENSE_MASS = False


def default_cache_dir() -> Path:
    """``$MMM_JAX_CACHE``, else ``~/.cache/mmmlib/jax``: one cache per Unix account, never shared across clients."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "mmmlib" / "jax"


_configured: Path | None = None


def configure_jax(cache_dir: Path | None = None) -> Path:
    """64-bit floats (PyMC's) and the persistent compilation cache; returns the cache folder. Idempotent."""
    global _configured
    os.environ.setdefault("XLA_FLAGS", XLA_DEVICES)
    import jax

    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    if _configured == folder:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _configured = folder
    return folder


@dataclass(frozen=True)
class StopRule:
    """When to stop drawing: the targets the product reports (``mmmlib.analysis.THRESHOLDS``), met on every
    sampled parameter, within ``[min_draws, max_draws]`` draws per chain, checked every ``block`` draws."""

    min_draws: int = 250
    max_draws: int = 1500
    block: int = 250
    ess: float = 400.0
    r_hat: float = 1.01

    @classmethod
    def fixed(cls, draws: int) -> StopRule:
        """Exactly ``draws`` per chain (a user who asks for a number of draws gets it)."""
        return cls(min_draws=draws, max_draws=draws, block=draws, ess=0.0, r_hat=np.inf)

    def done(self, draws: int, diag: dict[str, float]) -> bool:
        """True once ``draws`` per chain reach ``max_draws``, or reach ``min_draws`` with every target met."""
        if draws >= self.max_draws:
            return True
        return (
            draws >= self.min_draws
            and diag["ess_bulk_min"] >= self.ess
            and diag["ess_tail_min"] >= self.ess
            and diag["r_hat_max"] <= self.r_hat
        )

    def next_block(self, draws: int) -> int:
        """Draws per chain in the next block: ``block``, or what is left before ``max_draws``."""
        return min(self.block, self.max_draws - draws)


def convergence(draws: dict[str, np.ndarray]) -> dict[str, float]:
    """Min bulk/tail ESS and max R-hat over every element of every ``(chain, draw, ...)`` array (arviz-stats)."""
    from arviz_stats.base import array_stats

    ess_bulk, ess_tail, r_hat = [], [], []
    for values in draws.values():
        flat = np.asarray(values, dtype=float).reshape(values.shape[0], values.shape[1], -1)
        ess_bulk.append(np.nanmin(array_stats.ess(flat, chain_axis=0, draw_axis=1, method="bulk")))
        ess_tail.append(np.nanmin(array_stats.ess(flat, chain_axis=0, draw_axis=1, method="tail", prob=(0.05, 0.95))))
        r_hat.append(np.nanmax(array_stats.rhat(flat, chain_axis=0, draw_axis=1)))
    return {
        "ess_bulk_min": float(np.nanmin(ess_bulk)),
        "ess_tail_min": float(np.nanmin(ess_tail)),
        "r_hat_max": float(np.nanmax(r_hat)),
    }


STATS = ("diverging", "num_steps", "accept_prob", "potential_energy", "energy", "adapt_state.step_size")
STAT_NAMES = {
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "potential_energy": "lp",
    "adapt_state.step_size": "step_size",
}


@dataclass
class Draws:
    """Unconstrained draws and sampler statistics, ``(chain, draw, ...)``, and how they were obtained."""

    values: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    warmup_seconds: float
    sampling_seconds: float
    blocks: int
    convergence: dict[str, float]


def draw(
    model: Any, chains: int, tune: int, target_accept: float, rule: StopRule, seed: int, dense: bool = DENSE_MASS
) -> Draws:
    """Warm up ``chains`` NUTS chains for ``tune`` steps, then draw blocks until ``rule`` says stop."""
    configure_jax()
    import jax
    from numpyro.infer import MCMC, NUTS
    from pymc.sampling.jax import _get_batched_jittered_initial_points, get_jaxified_logp

    names = [v.name for v in model.value_vars]
    potential = get_jaxified_logp(model, negative_logp=False)  # numpyro wants -log p
    init = _get_batched_jittered_initial_points(model, chains, None, seed, logp_fn=potential)
    if chains == 1:
        init = [np.asarray(v)[None] for v in init]
    parallel = chains <= jax.local_device_count()
    mcmc = MCMC(
        NUTS(potential_fn=potential, target_accept_prob=target_accept, dense_mass=dense),
        num_warmup=tune,
        num_samples=rule.next_block(0),
        num_chains=chains,
        chain_method="parallel" if parallel else "vectorized",
        progress_bar=False,
    )
    keys = jax.random.split(jax.random.PRNGKey(seed), chains)
    start = time.perf_counter()
    mcmc.warmup(keys, init_params=[np.asarray(v) for v in init])
    jax.block_until_ready(mcmc.post_warmup_state)  # JAX returns before it has computed: time the warm-up itself
    warmup_seconds = time.perf_counter() - start
    values: dict[str, list[np.ndarray]] = {n: [] for n in names}
    stats: dict[str, list[np.ndarray]] = {}
    done, blocks, diag = 0, 0, {"ess_bulk_min": 0.0, "ess_tail_min": 0.0, "r_hat_max": np.inf}
    while True:
        size = rule.next_block(done)
        if size != mcmc.num_samples:
            mcmc.num_samples = size  # only the last block can be shorter: one more compile at most
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=STATS)
        mcmc.post_warmup_state = mcmc.last_state
        for n, v in zip(names, mcmc.get_samples(group_by_chain=True), strict=True):
            values[n].append(np.asarray(v))
        for k, v in mcmc.get_extra_fields(group_by_chain=True).items():
            stats.setdefault(STAT_NAMES.get(k, k), []).append(np.asarray(v))
        done += size
        blocks += 1
        joined = {n: np.concatenate(v, axis=1) for n, v in values.items()}
        diag = convergence(joined)
        if rule.done(done, diag):
            break
    sampling_seconds = time.perf_counter() - start - warmup_seconds
    out_stats = {k: np.concatenate(v, axis=1) for k, v in stats.items()}
    out_stats["lp"] = -out_stats["lp"]
    out_stats["tree_depth"] = np.log2(out_stats["n_steps"]).astype(int) + 1
    log.info(
        "%d chains: %d warm-up steps in %.1f s, %d draws each in %d blocks in %.1f s (min ESS %.0f/%.0f, max R-hat "
        "%.3f, %d divergences)",
        chains,
        tune,
        warmup_seconds,
        done,
        blocks,
        sampling_seconds,
        diag["ess_bulk_min"],
        diag["ess_tail_min"],
        diag["r_hat_max"],
        int(out_stats["diverging"].sum()),
    )
    return Draws(joined, out_stats, warmup_seconds, sampling_seconds, blocks, diag)


def sample(
    model: Any, chains: int, tune: int, target_accept: float, rule: StopRule, seed: int, dense: bool = DENSE_MASS
) -> Any:
    """Sample ``model`` (a PyMC model) and return what :func:`pymc.sample` returns: a ``DataTree`` with posterior
    (constrained values and deterministics), sample_stats, observed_data and constant_data."""
    import jax
    import numpyro
    from arviz_base import from_dict, make_attrs
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations
    from pymc.sampling.jax import _postprocess_samples, get_jaxified_graph
    from pymc.util import get_default_varnames

    result = draw(model, chains, tune, target_accept, rule, seed, dense)
    wanted = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    to_posterior = get_jaxified_graph(inputs=model.value_vars, outputs=wanted)
    raw = [jax.numpy.asarray(result.values[v.name]) for v in model.value_vars]
    values = _postprocess_samples(to_posterior, raw, postprocessing_vectorize="vmap")
    posterior = {v.name: np.asarray(r) for v, r in zip(wanted, values, strict=True)}
    coords, dims = coords_and_dims_for_inferencedata(model)
    groups: dict[str, Any] = {"posterior": posterior, "sample_stats": result.stats}
    observed = find_observations(model)
    if observed is not None:
        groups["observed_data"] = observed
    constant = find_constants(model)
    if constant is not None:
        groups["constant_data"] = constant
    attrs = {
        "sampling_time": result.warmup_seconds + result.sampling_seconds,
        "tuning_steps": tune,
        "draw_blocks": result.blocks,
    }
    return from_dict(
        data=groups,
        coords=coords,
        dims=dims,
        sample_dims=["chain", "draw"],
        attrs={"posterior": make_attrs(attrs, inference_library=numpyro)},
    )
