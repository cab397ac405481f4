"""Where batch fits run: one interface, a local process pool by default, a Dask cluster when one is named.

``MMM_DASK_SCHEDULER`` (or ``mmm batch --dask ADDRESS``) selects Dask; the code that submits jobs does
not change between a laptop and a cluster. Each job is one ``fit_run`` (a papermill execution), so
workers need the project installed and the data paths reachable (shared storage on a cluster).

Dask moves pickles both ways: whoever answers at the scheduler's address runs code on the workers and, with
the results it sends back, in this process (often the root scheduler's). So a scheduler is used only over
``tls://`` (or ``wss://``) or on this machine (loopback, ``inproc://``); anything else needs the explicit
opt-in ``MMM_DASK_INSECURE=1`` or ``mmm batch --dask-insecure``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol
from urllib.parse import urlsplit

from mmmlib.errors import UsageError

SECURE_SCHEMES = ("tls", "wss", "inproc")  # encrypted and authenticated, or inside this process


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
        share = max(1, (os.cpu_count() or 2) // (2 * self.workers))  # cores per fit for its candidate workers
        with ProcessPoolExecutor(max_workers=self.workers, initializer=_share_cores, initargs=(share,)) as pool:
            return list(pool.map(fn, items))


def _share_cores(candidate_workers: int) -> None:
    """Fits running side by side each fit their candidate structures on their share of the cores, not on all of
    them (``mmmlib.fit_workers.WORKERS_ENV``); an explicit setting is kept."""
    from mmmlib.fit_workers import WORKERS_ENV

    os.environ.setdefault(WORKERS_ENV, str(candidate_workers))


def is_safe_dask_address(address: str) -> bool:
    """``tls://``/``wss://``/``inproc://``, or a scheduler on this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")  # Dask's default scheme is tcp
        host = parts.hostname or ""
    except ValueError:  # an unparsable address is not a safe one
        return False
    if parts.scheme in SECURE_SCHEMES:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_dask_address(address: str, insecure: bool = False) -> None:
    """Refuse (exit 2) a scheduler reached without TLS off this machine unless the caller opted in."""
    if insecure or os.environ.get("MMM_DASK_INSECURE") == "1" or is_safe_dask_address(address):
        return
    raise UsageError(
        f"Refusing the Dask scheduler {address}: Dask runs whatever pickles it receives, so without TLS anyone "
        "who can reach or impersonate that address runs code on the workers and in this process; use a tls:// "
        "address, a scheduler on this machine, or --dask-insecure (MMM_DASK_INSECURE=1) on a network you trust."
    )


class DaskExecutor:
    """Submits each job to a Dask cluster through ``distributed.Client`` (a connected one, or an address)."""

    def __init__(self, address: Any, insecure: bool = False) -> None:
        if isinstance(address, str):  # a Client or cluster object is one this process already made
            check_dask_address(address, insecure)
        from distributed import Client

        self.client = address if isinstance(address, Client) else Client(address)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        futures = self.client.map(fn, list(items), pure=False)
        return self.client.gather(futures)


def executor_from_env(dask: str | None = None, workers: int | None = None, insecure: bool = False) -> Executor:
    """Dask when an address is given (``--dask`` or ``MMM_DASK_SCHEDULER``, checked first), else local processes."""
    address = dask or os.environ.get("MMM_DASK_SCHEDULER")
    return DaskExecutor(address, insecure) if address else LocalExecutor(workers)
