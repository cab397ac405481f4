"""Preheated kernels (``mmmlib.kernel_pool``): up before the fit with its imports done, one fit each, then replaced."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
import yaml

from mmmlib import kernel_pool
from mmmlib.kernel_pool import KernelPool, pool_size

PROBE = """
import os, sys, json
warm = "pymc_marketing.mmm" in sys.modules  # before this cell imports anything
json.dump({"pid": os.getpid(), "warm": warm, "seen": globals().get("seen", False)}, open(out, "w"))
seen = True  # a kernel that ran a notebook before would carry this into the next one
"""


def _probe_notebook(path: Path, parameters: str = "out = None", code: str = PROBE) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for every purpose here
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_pool_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kernel_pool.SIZE_ENV, raising=False)
    assert pool_size() == 1 and pool_size(2) == 2
    monkeypatch.setenv(kernel_pool.SIZE_ENV, "0")
    assert pool_size() == 0
    assert KernelPool(0).take() is None  # no pool: the fit starts its own kernel
    monkeypatch.setenv(kernel_pool.SIZE_ENV, "two")
    with pytest.raises(ValueError, match="MMM_KERNEL_POOL"):
        pool_size()


@pytest.mark.slow
@pytest.mark.server
def test_each_notebook_gets_a_warm_kernel_of_its_own(tmp_path: Path) -> None:
    import papermill as pm

    notebook = _probe_notebook(tmp_path / "probe.ipynb")
    seen = []
    with KernelPool(1, cwd=tmp_path) as pool:
        assert pool.wait_ready(300)
        for i in range(2):
            km = pool.take()
            assert km is not None
            # its replacement waits for the fit's end: started now, its imports would take a core from the fit
            assert not pool.ready and not pool._starting
            out = tmp_path / f"probe{i}.json"
            try:
                pm.execute_notebook(
                    str(notebook),
                    str(tmp_path / f"run{i}.ipynb"),
                    parameters={"out": str(out)},
                    kernel_name="python3",
                    km=km,
                    progress_bar=False,
                )
            finally:
                pool.release(km)
            seen.append(json.loads(out.read_text()))
            assert not _alive(seen[-1]["pid"])  # used once, then gone
            assert pool._starting or pool.ready  # and replaced
        assert pool.wait_ready(300)
        spare = [km.provisioner.pid for km in pool._ready]
    assert spare and not any(_alive(pid) for pid in spare)  # closing the pool shut its spare kernel down
    assert all(s["warm"] for s in seen)  # the imports were done before the notebook ran
    assert not any(s["seen"] for s in seen)  # nothing carried from one notebook to the next
    assert seen[0]["pid"] != seen[1]["pid"]


CRASH = """
import os
open({pid_file!r}, "w").write(str(os.getpid()))
os.kill(os.getpid(), 9)  # the kernel dies mid-fit (killed for memory, say)
"""


@pytest.mark.slow
@pytest.mark.server
def test_a_fit_runs_in_a_preheated_kernel_and_a_crashed_one_loses_nothing(synth_run: dict, tmp_path: Path) -> None:
    from mmmlib.errors import InputError
    from mmmlib.pipeline import fit_pool, fit_run
    from mmmlib.request import FitRequest
    from mmmlib.runs import RunDir

    data = synth_run["data_dir"]
    config = yaml.safe_load((data / "config.yaml").read_text())
    config.update({"adstock": "geometric", "saturation": "logistic", "holdout_periods": 0, "lift_tests": None})
    (tmp_path / "fixed.yaml").write_text(yaml.safe_dump(config))
    crash = CRASH.format(pid_file=str(tmp_path / "crashed.pid"))
    crashing = _probe_notebook(tmp_path / "crash.ipynb", parameters="request = {}", code=crash)
    request = FitRequest(
        str(data / "data.csv"), str(tmp_path / "fixed.yaml"), str(tmp_path / "r1"), tune=300, draws=300
    )
    with fit_pool(1) as pool:
        assert pool.wait_ready(300)
        with pytest.raises(InputError, match="The fit failed"):
            fit_run(request, notebook=crashing, pool=pool)
        crashed = int((tmp_path / "crashed.pid").read_text())
        assert not (tmp_path / "r1").exists()  # nothing half-written published
        assert list(tmp_path.glob("r1.failed-*"))  # the attempt kept for a look
        assert pool.wait_ready(300)  # a fresh kernel replaced the dead one
        fresh = pool._ready[0].provisioner.pid
        assert fresh != crashed and not _alive(crashed)
        summary = fit_run(request, pool=pool)
        assert not _alive(fresh)  # that fit's kernel is gone after it
        assert pool.wait_ready(300)  # its replacement is up for the next fit
    run = RunDir(tmp_path / "r1")
    assert run.complete and summary["run"]["draws"] == 300
    assert "fitting in a preheated kernel" in run.log_file.read_text()
    executed = nbformat.read(run.notebook_file, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def _children(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for kid in kids.get(todo.pop(), []):
            out.add(kid)
            todo.append(kid)
    return out


@pytest.mark.slow
@pytest.mark.server
def test_the_scheduler_service_keeps_a_warm_kernel_and_stops_it(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "schedules.yaml").write_text("schedules: []\n")
    env = {**os.environ, "MMM_HOME": str(tmp_path / "home"), kernel_pool.SIZE_ENV: "1"}
    service = subprocess.Popen(
        [sys.executable, "-m", "mmmlib", "schedule", "serve", "--file", str(tmp_path / "schedules.yaml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        kernels: set[int] = set()
        while time.monotonic() < deadline and not kernels:
            kernels = {p for p in _children(service.pid) if "ipykernel" in _cmdline(p)}
            time.sleep(0.5)
        assert kernels, "the service started no preheated kernel"
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=90) == 0, service.stderr.read() if service.stderr else ""
    finally:
        if service.poll() is None:
            service.kill()
    assert not any(_alive(pid) for pid in kernels)  # its kernel went with it


@pytest.mark.slow
@pytest.mark.server
def test_a_one_off_kernel_is_not_replaced_and_writes_its_own_output_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "fit.log"
    with KernelPool(1, cwd=tmp_path, refill=False, log=log) as pool:
        km = pool.take(300)
        assert km is not None
        pid = km.provisioner.pid
        try:
            kernel_pool.run_code(km, "import os; os.write(2, b'said outside a cell\\n')")
            assert not pool.ready and not pool._starting  # nothing started to replace it
            assert pool.take(1) is None  # one fit's kernel, not a pool
        finally:
            kernel_pool.shutdown(km)
        assert not _alive(pid)
    assert "said outside a cell" in log.read_text()


@pytest.mark.slow
def test_a_fit_starts_its_own_kernel_ahead(synth_run: dict) -> None:
    # mmm fit starts its kernel before importing papermill (the kernel's imports overlap the command's own)
    assert "fitting in a preheated kernel" in (synth_run["run_dir"] / "fit.log").read_text()


def test_a_fit_process_imports_papermill_without_the_unused_iri_checker(tmp_path: Path) -> None:
    """jsonschema's "iri" format checker builds a parser at import (1.5 s of each ``mmm fit``); nothing in a fitting
    process uses it, and notebooks still validate and run without it."""
    import subprocess
    import sys

    notebook = _probe_notebook(tmp_path / "probe.ipynb")
    code = f"""
import sys
from mmmlib import pipeline
pm = pipeline._import_papermill()
import jsonschema, nbformat
assert sys.modules["rfc3987_syntax"] is None, "the checker's module was imported"
nbformat.validate(nbformat.read({str(notebook)!r}, as_version=4))
assert "iri" not in jsonschema.FormatChecker.checkers
assert pm.execute_notebook is not None
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
