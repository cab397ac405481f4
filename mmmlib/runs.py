"""Write a run directory (CONTRACT.md) so that it is either complete or absent, and read it back cheaply.

The fitting notebook writes into a hidden temporary sibling; ``publish`` renames it into
place only after ``summary.json`` (written last) exists. A failed attempt is renamed to
``RUN_DIR.failed-<UTC timestamp>`` and the previous good run is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """``summary.json`` of a run (fast: no posterior, no pymc)."""
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text(encoding="utf-8"))


def load_posterior(run_dir: str | Path) -> Any:
    """The posterior as an xarray DataTree, opened only when a view needs draws."""
    import xarray as xr

    return xr.open_datatree(Path(run_dir) / POSTERIOR)
