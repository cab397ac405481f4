"""nutpie's draws, stopped once the diagnostics the product reports are met (issue 13: sample what the answer needs).

PyMC hands nutpie a fixed number of draws. While :func:`installed` is active, PyMC's call to ``nutpie.sample`` runs
the same sampler in the background instead, and every ``rule.block`` draws per chain (counted from nutpie's progress
callback, so the running trace is only copied when a check is due) the first ``n`` draws of every chain are checked
against :class:`mmmlib.sampling.StopRule`, the same rule the numpyro loop uses: bulk and tail ESS and R-hat of every
parameter the run's diagnostics report (:func:`mmmlib.analysis.diagnosed_names`), never fewer than
``min_draws`` per chain. When they are met the sampler is aborted and every chain cut to exactly those ``n`` draws, so
the result depends on the seed alone, not on how far the chains ran while the check was computed. When they are not,
the sampler runs to PyMC's ``draws`` as before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from mmmlib.sampling import StopRule, convergence

log = logging.getLogger("mmmlib.nutpie_stop")

POLL_SECONDS = 0.2  # how often the progress is looked at between checks
PROGRESS_MS = 100  # nutpie's progress callback rate


def checked_names(posterior: Any) -> list[str]:
    """The posterior variables the run's diagnostics are computed on (mmmlib.analysis.diagnosed_names)."""
    from mmmlib.analysis import diagnosed_names

    return diagnosed_names(posterior)


def first_draws(trace: Any, n: int) -> Any:
    """``trace`` with its posterior and sample statistics cut to each chain's first ``n`` draws."""
    for group in ("posterior", "sample_stats"):
        if group in trace.children:
            trace[group] = trace[group].to_dataset().isel(draw=slice(0, n))
    return trace


def drawn(trace: Any) -> int:
    """Draws stored so far in the shortest chain (nutpie pads the others' ends with NaN)."""
    post = trace["posterior"]
    if not post.data_vars or "draw" not in post.sizes:
        return 0
    values = np.asarray(post[next(iter(post.data_vars))].values, dtype=float)
    finite = np.isfinite(values.reshape(values.shape[0], values.shape[1], -1)).all(axis=2)
    return int(finite.sum(axis=1).min())


def diagnostics_at(trace: Any, n: int) -> dict[str, float]:
    """Min bulk/tail ESS and max R-hat over the first ``n`` draws of every chain."""
    post = trace["posterior"]
    return convergence({name: np.asarray(post[name].values)[:, :n] for name in checked_names(post)})


def snapshot(sampler: Any) -> tuple[int, dict[str, np.ndarray]]:
    """The draws a running nutpie sampler has stored: how many in the shortest chain, and each checked parameter's
    ``(chain, draw, ...)`` array of that many draws after warm-up. Read from nutpie's Arrow trace, only the checked
    columns: its own ``inspect`` builds the whole trace as arviz data, warm-up and statistics included (0.05-0.1 s of
    each check, the chains' cores taken meanwhile). Anything unexpected falls back to ``inspect``."""
    try:
        return _arrow_snapshot(sampler)
    except Exception as exc:  # nutpie's internals moved: the public, slower route
        log.debug("nutpie's trace read through inspect (%s)", exc)
    trace = sampler.inspect()
    n = drawn(trace)
    post = trace["posterior"]
    return n, {name: np.asarray(post[name].values)[:, :n] for name in checked_names(post)}


def _arrow_snapshot(sampler: Any) -> tuple[int, dict[str, np.ndarray]]:
    import pyarrow

    from mmmlib.analysis import diagnosed

    results = sampler._sampler.inspect()
    if not results.is_arrow():
        raise TypeError("not an Arrow trace")
    draw_batches, stat_batches = results.get_arrow_trace()
    hidden = set(sampler._compiled_model.reparameterized_names)  # the unconstrained copies arviz leaves out
    chains = []
    for batch, stats in zip(draw_batches, stat_batches, strict=True):
        warm = int(np.asarray(pyarrow.array(stats.column("tuning")), dtype=bool).sum())
        chains.append((batch, warm, batch.num_rows - warm))
    n = min(kept for _, _, kept in chains)
    names = [c for c in draw_batches[0].column_names if c not in hidden and diagnosed(c)]
    if not names:
        raise ValueError("no parameter columns")
    draws = {}
    for name in names:
        per_chain = []
        for batch, warm, _ in chains:
            column = batch.column(name)
            shape = (column.field.metadata or {}).get(b"shape", b"").decode()
            item = tuple(int(k) for k in shape.split(",")) if shape else ()
            values = pyarrow.array(column)
            flat = np.asarray(values.flatten() if hasattr(values, "flatten") else values, dtype=float)
            per_chain.append(flat.reshape(batch.num_rows, *item)[warm : warm + n])
        draws[name] = np.stack(per_chain)
    return n, draws


def _finished(sampler: Any) -> bool:
    try:
        return bool(sampler.is_finished)
    except TimeoutError:  # nutpie 0.16 asks its sampler thread with a zero timeout: not finished yet
        return False


def sample_until(original: Any, rule: StopRule, compiled: Any, **kwargs: Any) -> Any:
    """``original`` (nutpie.sample) with ``kwargs["draws"]`` as the ceiling and ``rule`` deciding when to stop."""
    tune = int(kwargs.get("tune", 0))
    draws = int(kwargs["draws"])
    ceiling = min(draws, rule.max_draws)
    kwargs["draws"] = ceiling
    finished: list[int] = []
    lock = threading.Lock()
    outer = kwargs.pop("progress_callback", None)

    def progress(chains: Any) -> None:
        with lock:
            finished[:] = [int(c.finished_draws) for c in chains]
        if outer is not None:
            outer(chains)

    kwargs.setdefault("progress_rate", PROGRESS_MS)
    sampler = original(compiled, blocking=False, progress_callback=progress, **kwargs)
    start = time.perf_counter()
    n = rule.min_draws
    while n < ceiling:  # checks while the chains run; aborting is only a saving, the draws kept are the same
        while not _finished(sampler):
            with lock:
                done = min(finished) - tune if finished else 0
            if done >= n:
                break
            time.sleep(POLL_SECONDS)
        if _finished(sampler):
            break
        stored, draws = snapshot(sampler)
        if stored < n:  # the progress runs ahead of the trace nutpie has stored: look again shortly
            time.sleep(POLL_SECONDS)
            continue
        diag = convergence({name: values[:, :n] for name, values in draws.items()})
        if rule.done(n, diag):
            return _stopped(first_draws(sampler.abort(), n), n, ceiling, diag, start)
        log.info(  # where a long (geo) fit is, and why it draws on
            "nutpie at %d draws per chain after %.1f s: min ESS %.0f/%.0f, max R-hat %.3f; drawing on",
            n,
            time.perf_counter() - start,
            diag["ess_bulk_min"],
            diag["ess_tail_min"],
            diag["r_hat_max"],
        )
        n += rule.block
    trace = sampler.wait()
    while n < ceiling:  # the chains finished before these checks were due: the same checks on the whole trace
        diag = diagnostics_at(trace, n)
        if rule.done(n, diag):
            return _stopped(first_draws(trace, n), n, ceiling, diag, start)
        n += rule.block
    log.info("nutpie drew all %d draws per chain in %.1f s", ceiling, time.perf_counter() - start)
    return _mark(trace, ceiling, ceiling)


def _mark(trace: Any, kept: int, ceiling: int) -> Any:
    """Record in the posterior's attributes how many draws per chain were kept of how many allowed."""
    trace["posterior"].attrs.update(draws_kept=kept, draws_allowed=ceiling)
    return trace


def _stopped(trace: Any, n: int, ceiling: int, diag: dict[str, float], start: float) -> Any:
    log.info(
        "nutpie stopped at %d of %d draws per chain (min ESS %.0f/%.0f, max R-hat %.3f) after %.1f s",
        n,
        ceiling,
        diag["ess_bulk_min"],
        diag["ess_tail_min"],
        diag["r_hat_max"],
        time.perf_counter() - start,
    )
    return _mark(trace, n, ceiling)


@contextlib.contextmanager
def installed(rule: StopRule) -> Iterator[None]:
    """:func:`sample_until` in ``nutpie.sample``'s place while PyMC samples with nutpie."""
    import nutpie

    original = nutpie.sample

    def sample(compiled: Any, **kwargs: Any) -> Any:
        return sample_until(original, rule, compiled, **kwargs)

    nutpie.sample = sample
    try:
        yield
    finally:
        nutpie.sample = original
