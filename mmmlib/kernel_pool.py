"""Preheated kernels for fits: started ahead, their imports done, each used for one fit's notebook and then replaced.

Starting a kernel and importing pymc, pymc-marketing and the samplers costs seconds per fit. A long-lived process
that fits again and again (the scheduler's ``mmm schedule serve``) keeps a :class:`KernelPool`:
``take()`` hands over a kernel that is already up with those imports done; ``release()`` shuts it down after its
fit and only then starts its replacement, whose start and imports (seconds of CPU) would otherwise compete with the
fit for the cores. A kernel runs exactly one fit, so nothing carries from one fit to the next and ``fit.ipynb``
stays a true audit trail. The pool belongs to the process that made it, so to that process's Unix account: it is never
shared across clients' accounts. Compiled models are shared the other way, through the disk caches (pytensor's C
cache, JAX's persistent cache).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from mmmlib import fit_workers

log = logging.getLogger("mmmlib.kernel_pool")

# A fit whose candidates are fitted in worker processes samples nothing in its kernel: the kernel stacks, analyses
# and writes, which needs none of pymc, pytensor, pymc-marketing, nutpie or numba (a default fit of the sample loads
# none of them there), and the workers' fork server imports those once. 1.9 s of a core instead of 3.3 s.
WARMUP_BESIDE_WORKERS = """
import logging, sys
import numpy, pandas, xarray, arviz
import mmmlib.fitting, mmmlib.model, mmmlib.stacking, mmmlib.summary
"""
# What a fit that samples in its kernel imports before it samples, done once per kernel while it waits: the same
# fitting stack the candidates' workers preload (pymc and pytensor come with pymc-marketing).
WARMUP = WARMUP_BESIDE_WORKERS + "".join(f"import {name}\n" for name in fit_workers.PRELOAD)
# before the imports: the workers' start and imports then overlap the kernel's own
PRESTART = "import mmmlib.fit_workers\nmmmlib.fit_workers.prestart({workers})\n"
SIZE_ENV = "MMM_KERNEL_POOL"  # preheated kernels kept by a long-lived fitting process; 0 turns the pool off


def pool_size(default: int = 1) -> int:
    """``$MMM_KERNEL_POOL`` (kernels kept warm), else ``default``."""
    raw = os.environ.get(SIZE_ENV)
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        raise ValueError(f"{SIZE_ENV} must be a whole number, not {raw!r}") from None
    return max(size, 0)


class KernelPool:
    """``size`` kernels of ``kernel_name`` started in ``cwd`` with :data:`WARMUP` run, handed out one fit each.

    ``refill=False`` starts them once and replaces none: a single ``mmm fit`` starts its kernel this way before it
    imports papermill, so the kernel's start and imports overlap its own (``pipeline.fit_run``); ``log``, a file
    the kernels' own output (outside cells: sampler chatter, a worker's dying words) is appended to, else dropped;
    ``workers``, the candidate workers each kernel starts for its fit before its own imports (a single fit's kernel,
    whose fit is known; a long-lived pool's next fit is not).
    """

    def __init__(
        self,
        size: int = 1,
        kernel_name: str = "python3",
        cwd: str | Path | None = None,
        refill: bool = True,
        log: str | Path | None = None,
        workers: int = 0,
    ) -> None:
        self.size = size
        self.workers = workers
        self.kernel_name = kernel_name
        self.cwd = str(cwd) if cwd else None
        self.refill = refill
        self.log = Path(log) if log else None
        self._ready: deque[Any] = deque()
        self._lock = threading.Condition()
        self._starting = 0
        self._closed = False
        self._threads: list[threading.Thread] = []
        for _ in range(size):
            self._refill()

    def _refill(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._starting += 1
        thread = threading.Thread(target=self._start_one, name="mmm-kernel-pool", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _start_one(self) -> None:
        km = None
        try:
            km = start_warm_kernel(self.kernel_name, self.cwd, self.log, self.workers)
        except Exception as exc:  # a kernel that cannot start: the fit then starts its own, as without a pool
            log.warning("a preheated kernel could not start: %s", exc)
        with self._lock:
            self._starting -= 1
            if km is not None and not self._closed:
                self._ready.append(km)
                km = None
            self._lock.notify_all()
        if km is not None:
            shutdown(km)

    def take(self, timeout: float = 120.0) -> Any | None:
        """A warm kernel's manager for one fit, or None when none can be had in time: the caller then starts a kernel
        of its own. Give it back with :meth:`release` after the fit, which starts its replacement."""
        with self._lock:
            if self.size <= 0 or self._closed:
                return None
            self._lock.wait_for(lambda: self._ready or not self._starting, timeout=timeout)
            return self._ready.popleft() if self._ready else None

    def release(self, km: Any) -> None:
        """Shut down a kernel :meth:`take` gave (its fit done, failed or crashed), then start its replacement.

        The replacement starts only now: started when the kernel was taken (until 2026-12-07), its interpreter's
        imports took a core from the fit's two chains, and one fixed-structure fit of the sample took 6.8 s instead
        of 5.9 s (``benchmarks/preheated.py``, docs/speed.md). A fit asked for within seconds of the last one waits
        for it instead.
        """
        shutdown(km)
        if self.refill:
            self._refill()

    @property
    def ready(self) -> int:
        with self._lock:
            return len(self._ready)

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every kernel of the pool is up (for benchmarks and tests)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._starting, timeout=timeout) and len(self._ready) > 0

    def close(self, wait: float = 60.0) -> None:
        """Shut every kernel down, waiting up to ``wait`` seconds for those still starting (they stop themselves)."""
        with self._lock:
            self._closed = True
            kernels = list(self._ready)
            self._ready.clear()
        for km in kernels:
            shutdown(km)
        for thread in self._threads:
            thread.join(timeout=wait)

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_warm_kernel(
    kernel_name: str = "python3", cwd: str | None = None, log: Path | None = None, workers: int = 0
) -> Any:
    """An ``AsyncKernelManager`` (what papermill's client drives) whose kernel is up with :data:`WARMUP` done; what
    it prints outside a cell goes to ``log`` (appended), else nowhere. ``workers``: candidate workers the kernel
    starts first (:func:`mmmlib.fit_workers.prestart`), for the one fit it will run; with two or more it imports
    only :data:`WARMUP_BESIDE_WORKERS`."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name=kernel_name)
    # its output goes to the notebook (and so to fit.log); what it prints outside a cell is sampler chatter
    with open(log, "a", encoding="utf-8") if log else open(os.devnull, "w") as out:
        run_sync(km.start_kernel)(cwd=cwd or os.getcwd(), stdout=out, stderr=out)
    try:
        run_code(km, PRESTART.format(workers=workers) + WARMUP_BESIDE_WORKERS if workers > 1 else WARMUP)
    except Exception:
        shutdown(km)
        raise
    return km


def run_code(km: Any, code: str, timeout: float = 300.0) -> None:
    """Run ``code`` in the kernel of ``km`` through a client of its own; an error in it is raised here."""
    from jupyter_client.blocking import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
        reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")
    finally:
        kc.stop_channels()


def shutdown(km: Any) -> None:
    """Stop a pool kernel for good (after its one fit, or when the pool closes)."""
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception as exc:
        log.debug("kernel shutdown: %s", exc)
