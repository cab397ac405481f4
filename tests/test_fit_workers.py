"""Candidate workers started ahead (mmmlib.fit_workers): how many a fit will want, the fit's pool taking the ones
started for it, others stopped, a failed start replaced, and a fit's kernel starting them and taking them down."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from mmmlib import fit_workers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sample() -> Any:
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    cfg = load_config(ROOT / "sample_data" / "sample_config.yaml")
    return load_dataset(ROOT / "sample_data" / "sample_weekly.csv", cfg)


def test_a_fit_wants_workers_only_when_it_fits_candidates_side_by_side(
    sample: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fit_workers.WORKERS_ENV, "2")

    def config(**changes: Any) -> Any:
        return replace(sample, config=replace(sample.config, **changes))

    assert sample.config.adstock == "auto" and fit_workers.planned(sample) == 2
    fixed = {"adstock": "geometric", "saturation": "logistic"}
    assert fit_workers.planned(config(**fixed, yearly_seasonality="auto")) == 2  # the seasonality's two orders
    assert fit_workers.planned(config(**fixed, yearly_seasonality=2)) == 0  # one fit, in the kernel itself
    monkeypatch.setenv(fit_workers.WORKERS_ENV, "1")
    assert fit_workers.planned(sample) == 0


@pytest.fixture
def clean() -> Any:
    yield
    kept = fit_workers._prestarted
    fit_workers._prestarted = None
    if kept is not None:
        kept[4].join()
        kept[1].shutdown(wait=True, cancel_futures=True)
        kept[3].stop()


def _pids(executor: Any, count: int, wait: float = 60.0) -> set[int]:
    deadline = time.monotonic() + wait
    while len(executor._processes) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return set(executor._processes)


@pytest.mark.slow  # a fork server imports the fitting stack
def test_the_fits_pool_takes_the_workers_started_for_it(clean: Any) -> None:
    fit_workers.prestart(2)
    executor = fit_workers._prestarted[1]
    started = _pids(executor, 2)
    assert len(started) == 2  # running before the fit asked for them
    with fit_workers.pool(2) as pool:
        assert pool is executor and fit_workers._prestarted is None
        assert set(pool.map(_pid, range(4))) <= started
    fit_workers.prestart(2)
    other = fit_workers._prestarted[1]
    kept = _pids(other, 2)
    with fit_workers.pool(3) as pool:  # another size: those started ahead are stopped, fresh ones spawned
        assert pool is not other
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in kept):
        assert time.monotonic() < deadline, "workers started ahead and not used are still running"
        time.sleep(0.2)


def _pid(_: int) -> int:
    import os

    return os.getpid()


def _slow_to_exit(_: int) -> int:
    """A worker that will take 3 s to exit once told to (as one with pymc and numba loaded takes about one)."""
    import os
    from multiprocessing import util

    util.Finalize(None, time.sleep, args=(3.0,), exitpriority=10)
    return os.getpid()


@pytest.mark.slow  # a fork server and two workers
def test_a_finished_fit_goes_on_while_its_workers_exit(clean: Any) -> None:
    """After every job has returned, leaving the pool does not wait for the workers to exit (their exit was 1.6 s of
    the sample's fit: the executor's collection waited on the lock its manager holds while joining them); they
    still exit, and nothing is left running."""
    import threading

    with fit_workers.pool(2) as pool:
        pids = set(pool.map(_slow_to_exit, range(2)))
    # back at once: the workers are still in their 3 s exit
    assert any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    deadline = time.monotonic() + 60
    while any(t.name == "mmm-fit-workers-exit" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the workers of a finished fit never exited"
        time.sleep(0.2)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_workers_that_failed_to_start_are_replaced(clean: Any) -> None:
    import logging.handlers
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    def prestarted(jobs: list[Future[bool]]) -> tuple[int, Any, list[Future[bool]], Any, threading.Thread]:
        executor = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        listener = logging.handlers.QueueListener(multiprocessing.get_context("spawn").Queue())
        listener.start()
        starter = threading.Thread(target=lambda: None)
        starter.start()
        return (2, executor, jobs, listener, starter)

    broken: Future[bool] = Future()
    broken.set_exception(RuntimeError("a worker died while importing"))
    fine: Future[bool] = Future()
    fine.set_result(True)
    fit_workers._prestarted = prestarted([broken, fine])  # one worker died while importing
    assert fit_workers._take(2) is None and fit_workers._prestarted is None
    fit_workers._prestarted = prestarted([])  # the starter thread failed before it started any
    assert fit_workers._take(2) is None and fit_workers._prestarted is None
    fit_workers._prestarted = kept = prestarted([fine, fine])
    assert fit_workers._take(2) == (kept[1], kept[3])  # started well: taken
    kept[1].shutdown()
    kept[3].stop()


@pytest.mark.slow
@pytest.mark.server
def test_a_fits_kernel_starts_the_workers_and_takes_them_down() -> None:
    from mmmlib import kernel_pool

    km = kernel_pool.start_warm_kernel("python3", str(ROOT / "notebooks"), None, workers=2)
    try:
        # the fit's sampling stack is the workers': the kernel, which only stacks and writes, does not import it
        kernel_pool.run_code(
            km, "import sys, mmmlib.fit_workers as f\nassert f._prestarted[0] == 2\nassert 'pymc' not in sys.modules"
        )
        kernel = psutil.Process(km.provisioner.process.pid)
        deadline = time.monotonic() + 60
        servers: list[psutil.Process] = []
        workers: list[psutil.Process] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            servers = [p for p in kernel.children() if "forkserver" in " ".join(p.cmdline())]
            workers = [w for server in servers for w in server.children()]
            time.sleep(0.2)
        # forked from one fork server that imported the fitting stack once, not spawned to import it each
        assert len(servers) == 1 and len(workers) == 2
    finally:
        kernel_pool.shutdown(km)
    _, alive = psutil.wait_procs(workers + servers, timeout=30)
    assert not alive  # no worker, nor their server, outlives its kernel


def _where(_: int) -> tuple[str | None, str]:
    import os

    return os.environ.get("MMM_TEST_WORKER_ENV"), os.getcwd()


@pytest.mark.slow  # a fork server imports the fitting stack
def test_workers_see_the_environment_and_folder_of_their_pool_not_of_the_fork_server(
    clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fit_workers.pool(2) as pool:  # the fork server is up from here on, with this environment
        assert set(pool.map(_where, range(2))) <= {(None, str(Path.cwd()))}
    monkeypatch.setenv("MMM_TEST_WORKER_ENV", "set later")
    monkeypatch.chdir(tmp_path)
    with fit_workers.pool(2) as pool:
        assert set(pool.map(_where, range(4))) == {("set later", str(tmp_path))}
