"""Run the fitting (or import) notebook with papermill and publish the run atomically (``mmm fit``, ``mmm import``).

papermill is the one entry point (``execute_notebook``); the executed notebook is the
audit trail. Any failure leaves the previous run untouched and keeps the attempt in
``RUN_DIR.failed-<UTC timestamp>/`` with its executed notebook and log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mmmlib import assets, kernel_pool, runs
from mmmlib.config import load_config
from mmmlib.data.dataset import load_dataset
from mmmlib.errors import InputError, MMMError
from mmmlib.kernel_pool import KernelPool
from mmmlib.refresh import with_previous
from mmmlib.request import FitRequest, ImportRequest
from mmmlib.sampling import XLA_DEVICES

NOTEBOOKS = assets.notebooks_dir()
FIT_NOTEBOOK = assets.notebook("fit_model")
IMPORT_NOTEBOOK = assets.notebook("import_model")
# the kernel inherits this: numpyro needs it before jax is imported, or it samples chains one after another
os.environ.setdefault("XLA_FLAGS", XLA_DEVICES)

IOPUB_TIMEOUT = 120  # seconds papermill waits for a cell's last outputs after it finished
# jsonschema, imported under papermill by nbformat, builds an Earley parser for its optional "iri" format checker at
# import when rfc3987-syntax is installed (jupyter-events asks for it): 1.5 s of every ``mmm fit`` process's start
# (2026-12-06, docs/speed.md). nbformat, nbclient and papermill validate notebooks without format checkers, so the
# checker is never used by this process; a module marked absent in ``sys.modules`` is one jsonschema skips.
UNUSED_IMPORTS = ("rfc3987_syntax",)


def _import_papermill() -> Any:
    """papermill, without the imports :data:`UNUSED_IMPORTS` it would pay for and never use."""
    for name in UNUSED_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[assignment]
    import papermill

    return papermill


def _log_handler(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def fit_run(request: FitRequest, notebook: Path = FIT_NOTEBOOK, pool: KernelPool | None = None) -> dict[str, Any]:
    """Execute ``notebook`` for ``request`` into a staging directory and publish it at ``request.out``.

    Returns the summary. The run folder's name must follow ``runs.RUN_ID``: it becomes a URL part and a download's
    file name. With a ``pool`` (:func:`fit_pool`) the notebook runs in a preheated kernel, shut down after it.
    """
    request = with_previous(request.checked())

    def refuse_bad_data() -> int:  # before starting a kernel; the candidate workers the fit will want
        from mmmlib import fit_workers

        return fit_workers.planned(load_dataset(request.data, load_config(request.config)))

    return _publish_run(request, notebook, pool, refuse_bad_data, f"Fitting ({request.mode} mode)", "fit")


def import_run(request: ImportRequest, notebook: Path = IMPORT_NOTEBOOK) -> dict[str, Any]:
    """Turn a model fitted elsewhere into a run at ``request.out`` the way :func:`fit_run` publishes a fit: through
    ``notebooks/import_model.ipynb`` (kept in the run as its audit trail), atomically, a failure kept aside."""
    doing = f"Importing the {request.kind} model"
    return _publish_run(request.checked(), notebook, None, lambda: 0, doing, "import")


def _publish_run(
    request: FitRequest | ImportRequest,
    notebook: Path,
    pool: KernelPool | None,
    precheck: Callable[[], int],
    doing: str,
    what: str,
) -> dict[str, Any]:
    out = Path(request.out)
    runs.check_run_id(out.name)
    run = runs.RunDir(out)
    staging = run.stage()  # after clearing what killed attempts at this run left behind
    handler = _log_handler(staging.log_file)
    pm_log = logging.getLogger("papermill")
    pm_log.addHandler(handler)
    pm_log.setLevel(logging.INFO)
    ahead = None
    try:
        workers = precheck()
        if pool is None and what == "fit" and kernel_pool.pool_size() > 0:
            # this fit's own kernel, started now with its candidates' workers: their start and imports overlap
            # papermill's import here
            pool = ahead = KernelPool(1, cwd=NOTEBOOKS, refill=False, log=staging.log_file, workers=workers)
        pm = _import_papermill()

        print(f"{doing}; progress is logged to {staging.log_file}", file=sys.stderr, flush=True)
        km = pool.take() if pool is not None else None
        if km is not None:
            pm_log.info("fitting in a preheated kernel")  # only fits take a pool
        try:
            with kernel_stderr_to(staging.log_file):
                pm.execute_notebook(
                    str(notebook),
                    str(staging.notebook_file),
                    parameters={"request": request.writing_to(staging).parameters()},
                    kernel_name="python3",
                    log_output=True,
                    progress_bar=False,
                    # a long fit's progress bar queues many widget messages: papermill's 4 s wait for the last of
                    # them failed a 40-geo fit that had finished (it is the wait after the cell, not a cell timeout)
                    iopub_timeout=IOPUB_TIMEOUT,
                    cwd=str(NOTEBOOKS),
                    **({"km": km} if km is not None else {}),
                )
        finally:
            if km is not None and pool is not None:
                pool.release(km)  # one run per kernel: nothing carries over to the next
        if not staging.complete:
            raise InputError(f"the notebook finished without writing {runs.SUMMARY}.")
        summary = staging.summary()
    except BaseException as exc:
        pm_log.removeHandler(handler)
        handler.close()
        with open(staging.log_file, "a", encoding="utf-8") as fh:
            fh.write(f"FAILED: {_reason(exc)}\n")
        failed = run.keep_failed(staging)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise InputError(f"The {what} failed: {_reason(exc)} The attempt is kept in {failed}.") from exc
    finally:
        if ahead is not None:
            ahead.close()
    pm_log.removeHandler(handler)
    handler.close()
    run.publish(staging)
    return summary


def fit_pool(size: int | None = None) -> KernelPool:
    """Preheated kernels for the fits of a long-lived process (``$MMM_KERNEL_POOL``, default 1), in the folder the
    fitting notebook runs in."""
    return KernelPool(kernel_pool.pool_size() if size is None else size, cwd=NOTEBOOKS)


@contextlib.contextmanager
def kernel_stderr_to(path: Path) -> Iterator[None]:
    """Send what the kernel process writes to stderr (jupyter's transport warnings, sampler chatter) to the log."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


# errors whose message is already a sentence for the user (mmmlib.errors), when the notebook raises them
KERNEL_SENTENCES = ("MMMError", "InputError", "UsageError")


def _reason(exc: BaseException) -> str:
    """One sentence for a failure, including the notebook's own error when papermill raised it."""
    if isinstance(exc, MMMError):
        return str(exc).splitlines()[0] if "\n" not in str(exc) else str(exc).replace("\n", " ")
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        first = str(evalue).strip().splitlines()[0] if evalue and str(evalue).strip() else ""
        if ename in KERNEL_SENTENCES and first:  # the library's own sentence, raised inside the notebook
            return first if first.endswith(".") else first + "."
        return f"{ename}: {first}".rstrip(": ") + "."
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if text.endswith(".") else text + "."
