"""Write a run directory (CONTRACT.md) so that it is either complete or absent, and read it back cheaply.

The fitting notebook writes into a hidden temporary sibling; ``publish`` renames it into
place only after ``summary.json`` (written last) exists. A failed attempt is renamed to
``RUN_DIR.failed-<UTC timestamp>`` and the previous good run is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmmlib.errors import InputError, UsageError

SUMMARY = "summary.json"
POSTERIOR = "posterior.nc"


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, fsync, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, allow_nan=False, default=_jsonable)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def staging_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f".{run_dir.name}.tmp-{timestamp()}-{os.getpid()}"
    path.mkdir()
    return path


def publish(staging: Path, run_dir: Path) -> Path:
    """Move a complete staging directory to ``run_dir``, replacing an older run there only now."""
    if not (staging / SUMMARY).is_file():
        raise RuntimeError("refusing to publish a run without summary.json")
    run_dir = Path(run_dir)
    old = None
    if run_dir.exists():
        old = run_dir.parent / f".{run_dir.name}.old-{timestamp()}-{os.getpid()}"
        os.replace(run_dir, old)
    os.replace(staging, run_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return run_dir


def keep_failed(staging: Path, run_dir: Path) -> Path:
    """Rename a failed attempt beside the run directory, summary removed so it never reads as a run."""
    failed = Path(run_dir).parent / f"{Path(run_dir).name}.failed-{timestamp()}"
    (staging / SUMMARY).unlink(missing_ok=True)
    os.replace(staging, failed)
    return failed


NUMBER = (int, float)
INTERVAL = {"mean": NUMBER, "hdi_low": NUMBER, "hdi_high": NUMBER}
# What every reader of summary.json looks up (listings, reports, dashboards, the optimiser): a dict is an object
# with those keys, a one-item list a non-empty list of such items, a type a value of that type.
SUMMARY_SCHEMA: dict[str, Any] = {
    "status": str,
    "target": str,
    "run": {"id": str, "created_at": str},
    "period": {"start": str, "end": str},
    "totals": {
        "kpi": NUMBER,
        "spend": NUMBER,
        "media_contribution": INTERVAL,
        "media_share": INTERVAL,
        "blended_roas": INTERVAL,
    },
    "channels": [
        {
            "name": str,
            "label": str,
            "spend": NUMBER,
            "contribution": INTERVAL,
            "share": INTERVAL,
            "roas": INTERVAL,
            "mroas": INTERVAL,
        }
    ],
    "diagnostics": {"r_hat_max": NUMBER, "ess_bulk_min": NUMBER, "divergences": NUMBER, "r2": NUMBER},
    "recommendations": [str],
    "response_curves": [{"name": str, "spend": list, "mean": list, "hdi_low": list, "hdi_high": list}],
    "decomposition": {"dates": list, "series": dict, "totals": dict},
    "fit": {"dates": list, "actual": list, "predicted": list, "predicted_low": list, "predicted_high": list},
}


def schema_problem(value: Any, schema: Any = SUMMARY_SCHEMA, where: str = "") -> str | None:
    """What ``value`` lacks to match ``schema`` (see SUMMARY_SCHEMA), as a phrase, or None when it matches."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where or 'it'} is not a JSON object"
        for key, inner in schema.items():
            if key not in value:
                return f"{where + '.' if where else ''}{key} is missing"
            problem = schema_problem(value[key], inner, f"{where + '.' if where else ''}{key}")
            if problem:
                return problem
        return None
    if isinstance(schema, list):
        if not isinstance(value, list) or not value:
            return f"{where} is not a non-empty list"
        for i, item in enumerate(value):
            problem = schema_problem(item, schema[0], f"{where}[{i}]")
            if problem:
                return problem
        return None
    if not isinstance(value, schema) or isinstance(value, bool):
        return f"{where} has the wrong type"
    return None


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """``summary.json`` of a run (fast: no posterior, no pymc), checked against SUMMARY_SCHEMA.

    Every reader goes through here, so a damaged or partial file is one sentence naming the run and the file
    (InputError, exit 1) wherever it is opened, and listings skip it, instead of a KeyError deep in a view.
    A missing file is a UsageError (not a run directory); PermissionError is left to the caller's access sentence.
    """
    path = Path(run_dir) / SUMMARY
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise UsageError(f"{run_dir} is not a run directory (no {SUMMARY}).") from exc
    except PermissionError:
        raise
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8, not JSON, absurdly nested
        raise _damaged_summary(run_dir, "it is not readable JSON") from exc
    problem = schema_problem(summary)
    if problem:
        raise _damaged_summary(run_dir, problem)
    return summary


def _damaged_summary(run_dir: str | Path, detail: str) -> InputError:
    return InputError(f"The summary of run {run_dir} ({SUMMARY}) is damaged or incomplete: {detail}; refit the run.")


def damaged_posterior(run_dir: str | Path, detail: str) -> InputError:
    """The one sentence for a posterior that cannot be used (the CLI exits 1 with it; views show it)."""
    return InputError(
        f"The posterior of run {run_dir} ({POSTERIOR}) is damaged or incomplete: {detail}; refit the run."
    )


@contextmanager
def reading_posterior(run_dir: str | Path) -> Iterator[None]:
    """Failures while pulling a run's arrays out of its posterior become ``damaged_posterior``.

    Wrap only the code that looks variables up and reshapes them: a posterior lacking a group or variable fails
    there with KeyError (StopIteration when no saturation parameter is left, ValueError or IndexError when shapes
    disagree). The exception's type and text are kept in the sentence, so a bug is not hidden as damage.
    """
    try:
        yield
    except (KeyError, StopIteration, ValueError, IndexError, TypeError) as exc:
        what = f"{type(exc).__name__}: {exc}".rstrip(": ")[:160]
        raise damaged_posterior(run_dir, f"reading it failed ({what})") from exc


def load_posterior(run_dir: str | Path, keep: Callable[[str], bool] | None = None, need: Iterable[str] = ()) -> Any:
    """``posterior.nc`` as an in-memory xarray DataTree: ``constant_data``, the posterior variables ``keep``
    selects (all by default) with every coordinate, and the file's attributes (the stored priors).

    Read now and the file closed, so a truncated, garbled or empty file, a missing group, a variable of ``need``
    missing (a name, or a prefix ending in ``_`` that some variable must start with) or draws that are not numbers
    are found here, as one sentence naming the run, not later in a chart or the optimiser.
    """
    import numpy as np
    import xarray as xr

    path = Path(run_dir) / POSTERIOR
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a complete run (no {POSTERIOR}).")
    try:
        with xr.open_datatree(path) as tree:
            missing = [g for g in ("posterior", "constant_data") if g not in tree.children]
            if missing:
                raise damaged_posterior(run_dir, f"it has no {missing[0]} group")
            posterior = tree["posterior"].to_dataset()
            names = [str(v) for v in posterior.data_vars if keep is None or keep(str(v))]
            slim = xr.DataTree.from_dict(
                {
                    "posterior": posterior[names].assign_coords(posterior.coords).load(),
                    "constant_data": tree["constant_data"].to_dataset().load(),
                }
            )
            slim.attrs = dict(tree.attrs)
    except PermissionError:
        raise
    except (OSError, ValueError) as exc:  # h5py's "truncated file" or a bad block, xarray's "no backend" for garbage
        raise damaged_posterior(run_dir, "the file is truncated, empty or not netCDF") from exc
    for want in need:
        if not any(n == want or (want.endswith("_") and n.startswith(want)) for n in names):
            raise damaged_posterior(
                run_dir, f"it has no {want}* variables" if want.endswith("_") else f"it lacks {want}"
            )
    for name in names:
        values = np.asarray(slim["posterior"][name].values)
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            raise damaged_posterior(run_dir, f"its draws of {name} are not all numbers")
    return slim
