"""Where batch fits run: one interface, a local process pool by default, a Dask cluster when one is named.

``MMM_DASK_SCHEDULER`` (or ``mmm batch --dask ADDRESS``) selects Dask; the code that submits jobs does
not change between a laptop and a cluster. Each job is one ``fit_run`` (a papermill execution), so
workers need the project installed and the data paths reachable (shared storage on a cluster).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]: ...


class LocalExecutor:
    """A pool of local processes (default: half the CPUs, since each fit samples chains in parallel)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, (os.cpu_count() or 2) // 2)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(fn, items))


class DaskExecutor:
    """Submits each job to a Dask cluster through ``distributed.Client``."""

    def __init__(self, address: Any) -> None:
        from distributed import Client

        self.client = address if isinstance(address, Client) else Client(address)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        futures = self.client.map(fn, list(items), pure=False)
        return self.client.gather(futures)


def executor_from_env(dask: str | None = None, workers: int | None = None) -> Executor:
    address = dask or os.environ.get("MMM_DASK_SCHEDULER")
    return DaskExecutor(address) if address else LocalExecutor(workers)
