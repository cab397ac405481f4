"""Write a run directory (docs/contract.md) so that it is either complete or absent, and read it back cheaply.

The fitting notebook writes into a hidden staging folder that only the fitting account may enter, placed where
no other account can rename it (:func:`staging_parent`: a writer's link swapped in for it would turn the fit's
writes into writes elsewhere); ``publish`` opens it to the client and renames it into place only after
``summary.json`` (written last) exists. A failed attempt is renamed to ``RUN_DIR.failed-<UTC timestamp>`` and the
previous good run is never touched. Every step goes through :mod:`mmmlib.safe_fs`, so no name a writer planted
is followed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmmlib import safe_fs
from mmmlib.errors import InputError, UsageError

SUMMARY = "summary.json"
POSTERIOR = "posterior.nc"
# ".RUN.tmp-<stamp>-<random>-<pid>@<host>" (a fit's staging folder) and ".RUN.old-…" (a run being replaced)
ATTEMPT = re.compile(r"^\.(?P<run>.+)\.(?P<kind>tmp|old)-\d{8}T\d{6}Z-[0-9a-f]+-(?P<pid>\d+)@(?P<host>[^@/]+)$")
_RENAME_CLASH = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a new file beside ``path``, fsync, then rename it over ``path`` (never through a link)."""
    safe_fs.write_text(path, json.dumps(data, indent=1, allow_nan=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def _attempt_name(run_name: str, kind: str) -> str:
    """A hidden sibling naming this process and machine, so a later fit can tell a dead attempt from a live one."""
    return f".{run_name}.{kind}-{timestamp()}-{secrets.token_hex(3)}-{os.getpid()}@{_host()}"


def staging_parent(run_parent: Path) -> Path:
    """Where a fit of a run in ``run_parent`` stages: a folder nobody else can change, on the same disk.

    Beside the run when nobody else may change ``run_parent``; else the folder above it when it is this
    account's alone (root's client folder above the writers' ``runs/``): a writer may rename entries of
    ``runs/``, and could swap a staging folder there for a link while root's kernel writes into it by name.
    Else beside the run (a writer's own fit: the folder above is root's).
    """
    run_parent = Path(run_parent)
    with safe_fs.dir_fd(run_parent, create=True) as fd:
        here = os.fstat(fd)
    if not safe_fs.others_can_change(here):
        return run_parent
    try:
        with safe_fs.dir_fd(run_parent.parent) as fd:
            up = os.fstat(fd)
    except OSError:
        return run_parent
    if up.st_uid == os.geteuid() and not safe_fs.others_can_change(up) and up.st_dev == here.st_dev:
        return run_parent.parent
    return run_parent


def staging_dir(run_dir: Path) -> Path:
    """A new hidden folder that only this account may enter until ``publish`` (see :func:`staging_parent`).

    It already has the run folder's group (and setgid), so what the fit writes in it is the client's.
    """
    run_dir = Path(run_dir)
    parent = staging_parent(run_dir.parent)
    name = _attempt_name(run_dir.name, "tmp")
    with safe_fs.dir_fd(parent) as pfd:
        os.mkdir(name, 0o700, dir_fd=pfd)
        if parent != run_dir.parent:
            with safe_fs.dir_fd(run_dir.parent) as rfd:
                runs = os.fstat(rfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                os.fchown(fd, -1, runs.st_gid)
                os.fchmod(fd, 0o700 | (runs.st_mode & stat.S_ISGID))
            finally:
                os.close(fd)
    return parent / name


def _open_to_client(name: str, parent: int) -> None:
    """Give a finished staging folder the mode a plain ``mkdir`` would have (the umask's; setgid kept)."""
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        os.fchmod(fd, (0o777 & ~safe_fs.umask()) | (os.fstat(fd).st_mode & stat.S_ISGID))
    finally:
        os.close(fd)


def publish(staging: Path, run_dir: Path) -> Path:
    """Move a complete staging directory to ``run_dir``, replacing an older run there only now.

    Safe when several processes publish the same ``run_dir`` at once: whatever sits at the name (an older
    run, another process's run, a planted link or file) is moved aside and removed, and the rename retried.
    """
    staging, run_dir = Path(staging), Path(run_dir)
    with safe_fs.dir_fd(staging.parent) as src, safe_fs.dir_fd(run_dir.parent) as dst:
        try:
            summary = os.stat(f"{staging.name}/{SUMMARY}", dir_fd=src, follow_symlinks=False)
        except FileNotFoundError:
            summary = None
        if summary is None or not stat.S_ISREG(summary.st_mode):
            raise RuntimeError("refusing to publish a run without summary.json")
        _open_to_client(staging.name, src)
        displaced = []
        for _ in range(1000):
            try:
                os.rename(staging.name, run_dir.name, src_dir_fd=src, dst_dir_fd=dst)
                break
            except OSError as exc:
                if exc.errno not in _RENAME_CLASH:
                    raise
            old = _attempt_name(run_dir.name, "old")
            try:
                os.rename(run_dir.name, old, src_dir_fd=dst, dst_dir_fd=dst)
                displaced.append(old)
            except FileNotFoundError:
                pass  # another process moved it first
        else:
            raise RuntimeError(f"could not publish {run_dir}: other processes kept replacing it")
        for old in displaced:
            safe_fs.remove_entry(old, dst, ignore_errors=True)
    return run_dir


def keep_failed(staging: Path, run_dir: Path) -> Path:
    """Rename a failed attempt beside the run directory, summary removed so it never reads as a run."""
    staging, run_dir = Path(staging), Path(run_dir)
    with safe_fs.dir_fd(staging.parent) as src, safe_fs.dir_fd(run_dir.parent) as dst:
        try:
            os.unlink(f"{staging.name}/{SUMMARY}", dir_fd=src)
        except FileNotFoundError:
            pass
        _open_to_client(staging.name, src)
        stamp = timestamp()
        for n in range(1000):
            failed = f"{run_dir.name}.failed-{stamp}" + (f"-{n}" if n else "")
            try:
                os.rename(staging.name, failed, src_dir_fd=src, dst_dir_fd=dst)
                return run_dir.parent / failed
            except OSError as exc:
                if exc.errno not in _RENAME_CLASH:
                    raise
    raise RuntimeError(f"could not keep the failed attempt beside {run_dir}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_attempts(run_dir: Path) -> list[str]:
    """Remove the staging and half-replaced folders of ``run_dir`` whose process (on this machine) is gone.

    A fit killed mid-way (OOM, reboot, SIGKILL) leaves its hidden staging folder behind; the next fit of the
    same run directory clears it. Attempts of other machines (pods sharing a volume) are left alone: their
    process ids mean nothing here. Returns the names removed.
    """
    run_dir = Path(run_dir)
    removed: list[str] = []
    try:
        folders = {run_dir.parent, staging_parent(run_dir.parent)}
    except FileNotFoundError:
        return removed
    for folder in folders:
        with safe_fs.dir_fd(folder) as parent:
            for name in os.listdir(parent):
                m = ATTEMPT.match(name)
                if m and m["run"] == run_dir.name and m["host"] == _host() and not _alive(int(m["pid"])):
                    try:
                        safe_fs.remove_entry(name, parent)
                    except OSError:  # another account's (root's): not ours to remove
                        continue
                    removed.append(name)
    return removed


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


FAMILY_VARS = ("adstock_family", "saturation_family")


def _owned(families: dict[str, Any], name: str) -> Any:
    """The draws that must hold numbers for ``name``: all, except in a combined posterior (``mmmlib.stacking``),
    where a parameter belongs only to the draws whose family has it and is NaN in the others."""
    import numpy as np

    from mmmlib import structures

    part = name.split("_", 1)[0]
    codes = families.get(f"{part}_family")
    if codes is None or name in FAMILY_VARS or part not in ("adstock", "saturation"):
        return ...
    registry, params = (
        (structures.ADSTOCKS, structures.ADSTOCK_PARAMS)
        if part == "adstock"
        else (structures.SATURATIONS, structures.SATURATION_PARAMS)
    )
    param = name.split("_", 1)[1]
    owners = [k for k, family in enumerate(registry) if param in params[family]]
    return np.isin(codes, owners)


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
            families = {v: np.asarray(posterior[v].values) for v in FAMILY_VARS if v in posterior.data_vars}
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
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values[_owned(families, name)]).all():
            raise damaged_posterior(run_dir, f"its draws of {name} are not all numbers")
    return slim
