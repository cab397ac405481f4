"""The worker processes that fit candidate structures side by side, and starting them before the fit needs them.

Each candidate is fitted in its own process (nothing compiled is shared unsafely): compiling one while another
samples keeps both cores busy. Importing pymc-marketing, nutpie and mmmlib takes 3-4 s of a core; the workers are
forked from a fork server that did it once (:func:`_context`), so two workers cost one import. A fit's own kernel
(``pipeline.fit_run``) is told how many workers the fit will want and starts them (:func:`prestart`) beside its own
imports, so that both happen while ``mmm fit`` imports papermill and connects; the fit's first call to :func:`pool`
then takes them instead of starting its own. This module imports nothing heavy, so a kernel can start the workers
first.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("mmmlib.fit_workers")

# Candidate structures are fitted this many at a time, each in its own process (compiling one while another samples
# keeps both cores busy); MMM_FIT_WORKERS=1 fits them one after another in this process.
WORKERS_ENV = "MMM_FIT_WORKERS"

_prestarted: tuple[int, Any, Any, Any, Any] | None = None  # (workers, executor, start jobs, log listener, starter)


def candidate_workers(candidates: int) -> int:
    """How many candidates to fit at once: ``$MMM_FIT_WORKERS``, else one per core up to two (each samples two
    chains, so more would only queue), never more than there are candidates."""
    raw = os.environ.get(WORKERS_ENV)
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be a whole number, not {raw!r}") from None
    else:
        wanted = min(os.cpu_count() or 1, 2)
    return max(1, min(wanted, candidates))


def first_pool(candidates: int, choosing_seasonality: bool) -> int:
    """How many candidates a national fit of ``candidates`` structures fits at once in its first round: the
    structures, or the first structure with each of the seasonality's orders when it chooses the order."""
    from mmmlib import seasonality

    return candidate_workers(max(candidates, len(seasonality.ORDERS)) if choosing_seasonality else candidates)


def planned(dataset: Any) -> int:
    """The worker processes a fit of ``dataset`` will ask :func:`pool` for first (:func:`first_pool`) when it fits
    more than one candidate at once; none otherwise and for geo data."""
    from mmmlib import seasonality, structures

    cfg = dataset.config
    if dataset.hierarchical:
        return 0  # the national sum's candidates come first, then one geo fit per process: not worth guessing
    shapes = structures.candidates(cfg.adstock, cfg.saturation, cfg.baseline_form)
    workers = first_pool(len(shapes), cfg.yearly_seasonality == seasonality.AUTO)
    return workers if workers > 1 else 0


# What every worker imports (:func:`_worker_start`): imported once, by the fork server the workers are forked from.
PRELOAD = ["nutpie", "pymc_marketing.mmm", "mmmlib.model", "mmmlib.stacking"]


def _worker_start(queue: Any, environ: dict[str, str], cwd: str) -> None:
    """A worker sends its log records to the parent, which logs them as its own (one log per run, in order); what
    libraries print (progress bars) goes to the stderr it inherited, the run's log, not to the user's terminal. It
    has the fitting stack (:data:`PRELOAD`) imported before its first candidate (already done when the fork server it
    came from did). ``environ`` and ``cwd``: the parent's when it made the pool, as a spawned worker would have them
    (a fork server keeps those of its own start)."""
    import importlib
    import logging.handlers
    import warnings

    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    os.dup2(2, 1)
    warnings.filterwarnings("ignore")
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.WARNING)
    logging.getLogger("mmmlib").setLevel(logging.INFO)
    for name in PRELOAD:
        importlib.import_module(name)


def _ready() -> bool:
    """A job that returns once its worker has started (and so imported): submitted to start workers early."""
    return True


class _Relay(logging.Handler):
    """Hands a worker's record to this process's logger of the same name."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _context() -> Any:
    """Workers forked from a fork server that imported :data:`PRELOAD` once (a single-threaded process, so forking
    it is safe), instead of each spawned interpreter importing them: two workers cost one import, not two."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _spawn(workers: int) -> tuple[Any, Any]:
    import logging.handlers
    from concurrent.futures import ProcessPoolExecutor

    ctx = _context()
    queue = ctx.Queue()
    listener = logging.handlers.QueueListener(queue, _Relay())
    listener.start()
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_start, initargs=(queue, dict(os.environ), os.getcwd())
    )
    return executor, listener


def prestart(workers: int) -> None:
    """Start ``workers`` worker processes now, for this process's next :func:`pool` of that size (a fit's kernel
    does this before its own imports). Without effect for fewer than two."""
    global _prestarted
    if workers < 2 or _prestarted is not None:
        return
    import threading

    executor, listener = _spawn(workers)
    started: list[Any] = []

    def start() -> None:  # a fork server's start waits for its imports: the caller's own imports go on meanwhile
        started.extend(executor.submit(_ready) for _ in range(workers))  # one job each: every process starts now

    thread = threading.Thread(target=start, name="mmm-fit-workers-start", daemon=True)
    thread.start()
    _prestarted = (workers, executor, started, listener, thread)
    log.debug("%d fit workers started ahead", workers)


def _take(workers: int) -> tuple[Any, Any] | None:
    """The prestarted workers when there are ``workers`` of them and none failed to start; others are stopped (they
    would only hold memory)."""
    global _prestarted
    kept, _prestarted = _prestarted, None
    if kept is None:
        return None
    size, executor, started, listener, thread = kept
    thread.join()
    # a start that failed in the starter thread left fewer start jobs than workers
    if (
        size == workers
        and len(started) == size
        and not any(job.done() and job.exception() is not None for job in started)
    ):
        return executor, listener
    log.info("fit workers started ahead not used (%d of them, %d wanted)", size, workers)
    _retire(executor, listener)  # they exit while the fit spawns its own
    return None


@contextlib.contextmanager
def pool(workers: int) -> Iterator[Any]:
    """``workers`` fresh processes for candidate fits (those started ahead by :func:`prestart`, else spawned now),
    their log records relayed to this process's log; a worker that dies fails the fit with that reason, and the
    caller keeps the last good run."""
    from concurrent.futures.process import BrokenProcessPool

    taken = _take(workers)
    if taken is None:
        log.info("starting %d fit worker processes", workers)
    executor, listener = taken or _spawn(workers)
    done = False
    try:
        yield executor
        done = True
    except BrokenProcessPool as exc:
        raise RuntimeError(f"a worker process fitting a candidate structure died ({exc})") from exc
    finally:
        if done:
            _retire(executor, listener)
        else:  # after a failure the running jobs are waited for
            executor.shutdown(wait=True, cancel_futures=True)
            listener.stop()


def _retire(executor: Any, listener: Any) -> None:
    """Let the workers of a finished fit exit while the fit goes on (about a second: interpreters with pymc and numba
    loaded). A thread holds the executor until they have: were it dropped here, its garbage collection would wait
    in this thread for the lock its manager holds while joining them (1.6 s of a fit, measured)."""
    import threading

    def join() -> None:
        executor.shutdown(wait=True)
        listener.stop()

    threading.Thread(target=join, name="mmm-fit-workers-exit", daemon=True).start()
