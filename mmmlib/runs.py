"""Write a run directory (docs/contract.md) so that it is either complete or absent, and read it back cheaply.

The fitting notebook writes into a hidden staging folder that only the fitting account may enter, placed where
no other account can rename it (:func:`staging_parent`: a writer's link swapped in for it would turn the fit's
writes into writes elsewhere); ``publish`` opens it to the client and renames it into place only after
``summary.json`` (written last) exists. A failed attempt is renamed to ``RUN_DIR.failed-<UTC timestamp>`` and the
previous good run is never touched. Every step goes through :mod:`mmmlib.safe_fs`, so no name a writer planted
is followed.

This module is the one home of a run directory: :class:`RunDir` names its files (spelled here only), loads them,
says what state the run is in (staging, failed attempts, accepted) and writes it (``stage`` then ``publish``).
It is also the store they live in: ``MMM_HOME/clients/<client>/{datasets,runs}/`` (one folder per client, so
the hub can give each client's Unix group its own directory; nothing here reads another client's folder unless
asked to list them all), with the listings of runs (``list_runs``, ``latest_good_run``).
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
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from mmmlib import safe_fs
from mmmlib.errors import InputError, MMMError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from mmmlib.config import ModelConfig

# The files of a run directory (docs/contract.md), spelled here only: everything else asks ``RunDir`` for them.
SUMMARY = "summary.json"  # written last: a folder without it is not a run
POSTERIOR = "posterior.nc"
CURVES = "curves.npz"  # the optimiser's inputs read from the posterior once (mmmlib.curves_file)
CONFIG = "config.yaml"  # the config used, resolved with defaults
FRAME = "data.csv"  # the exact data fitted (a geo run: its national sum)
GEO_FRAME = "geo_data.csv"  # a geo run's data, one row per period and geo
NOTEBOOK = "fit.ipynb"  # the executed fitting notebook
LOG = "fit.log"
ACCEPTED = "ACCEPTED"  # a warning run someone reviewed (``accept_run``)
REPORT = "report.{fmt}"  # ``mmm report`` without --out
LIFT_TESTS = "lift_tests{suffix}"  # the config's lift tests, copied in before they are read
# beside the run: "RUN.failed-<stamp>" (a failed attempt, kept) and "RUN.launch.log" (the New model page's launch)
FAILED = ".failed-"
LAUNCH_LOG = ".launch.log"
# what ``mmm`` prints before the sentence of an error (in a launch log: the fit stopped before it began)
ERROR_PREFIX = "mmm: "
# ".RUN.tmp-<stamp>-<random>-<pid>@<host>" (a fit's staging folder) and ".RUN.old-…" (a run being replaced)
ATTEMPT = re.compile(r"^\.(?P<run>.+)\.(?P<kind>tmp|old)-\d{8}T\d{6}Z-[0-9a-f]+-(?P<pid>\d+)@(?P<host>[^@/]+)$")
_RENAME_CLASH = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def json_text(data: Any) -> str:
    """JSON as every run file and export writes it (numpy numbers as numbers, no NaN)."""
    return json.dumps(data, indent=1, allow_nan=False, default=_jsonable)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a new file beside ``path``, fsync, then rename it over ``path`` (never through a link)."""
    safe_fs.write_text(path, json_text(data))


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
            raise RuntimeError(f"refusing to publish a run without {SUMMARY}")
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
            failed = f"{run_dir.name}{FAILED}{stamp}" + (f"-{n}" if n else "")
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


GROUPS_READ = ("posterior", "constant_data")


def _open_group(run_dir: str | Path, path: Path, group: str) -> Any:
    import xarray as xr

    try:
        return xr.open_dataset(path, group=group)
    except OSError as exc:
        if "group not found" in str(exc):
            raise damaged_posterior(run_dir, f"it has no {group} group") from exc
        raise


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
        with xr.open_dataset(path) as root:  # the root group: only the attributes (the stored priors)
            attrs = dict(root.attrs)
        with ExitStack() as stack:  # one group at a time: opening the whole tree costs 7 × more
            posterior, constant = (stack.enter_context(_open_group(run_dir, path, g)) for g in GROUPS_READ)
            names = [str(v) for v in posterior.data_vars if keep is None or keep(str(v))]
            slim = xr.DataTree.from_dict(
                {
                    "posterior": posterior[names].assign_coords(posterior.coords).load(),
                    "constant_data": constant.load(),
                }
            )
            slim.attrs = attrs
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


@dataclass(frozen=True)
class RunState:
    """What the files of a run directory say about its fit, read from them alone (no process is asked).

    ``complete``: its ``summary.json`` is there (a published run); ``accepted``: someone accepted its warning;
    ``staging``: hidden staging folders of fits of it beside it (under way, or killed), oldest first; ``failed``:
    its failed attempts, oldest first; ``log_lines``: the non-blank lines of its launch log and of the newest
    staging folder's ``fit.log`` (read only while it is not complete).
    """

    complete: bool
    accepted: bool
    staging: tuple[Path, ...] = ()
    failed: tuple[Path, ...] = ()
    log_lines: tuple[str, ...] = ()

    @property
    def phase(self) -> str:
        """``done`` (published), ``failed`` (an attempt was kept as failed, or ``mmm`` said why it could not start),
        else ``running`` (staging, or not begun yet)."""
        if self.complete:
            return "done"
        if self.failed or any(line.startswith(ERROR_PREFIX) for line in self.log_lines):
            return "failed"
        return "running"


class _File:
    """A named file of every run directory: ``run.summary_file`` is ``run.path / SUMMARY``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, run: None, owner: type) -> _File: ...
    @overload
    def __get__(self, run: RunDir, owner: type) -> Path: ...
    def __get__(self, run: RunDir | None, owner: type) -> Path | _File:
        return self if run is None else run.path / self.name


class RunDir:
    """A run directory (docs/contract.md): its files by name, their loaders, its state and its one atomic write.

    Path-like (``open``, ``Path(...)`` and ``os.fspath`` take it; ``run / name`` is a ``Path``), and ``str`` gives
    the path as it was given, so the sentences of the loaders name the run as the user typed it. Writing a run:
    ``staging = run.stage()``, the files written into ``staging`` (``summary.json`` last, ``write_summary``),
    then ``run.publish(staging)`` (or ``run.keep_failed(staging)``): a run is complete or absent, never half.
    """

    __slots__ = ("_given", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._given = str(path)

    # --- a path ---------------------------------------------------------------------------------------------
    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return self._given

    def __repr__(self) -> str:
        return f"RunDir({self._given!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parent(self) -> Path:
        return self.path.parent

    # --- its files --------------------------------------------------------------------------------------------
    summary_file = _File(SUMMARY)
    posterior_file = _File(POSTERIOR)
    curves_file = _File(CURVES)
    config_file = _File(CONFIG)
    frame_file = _File(FRAME)
    geo_frame_file = _File(GEO_FRAME)
    notebook_file = _File(NOTEBOOK)
    log_file = _File(LOG)
    accepted_file = _File(ACCEPTED)

    def report_file(self, fmt: str = "html") -> Path:
        """Where ``mmm report`` writes a format without ``--out`` (``report.html``, ``report.txt``, …)."""
        return self.path / REPORT.format(fmt=fmt)

    def lift_tests_file(self, suffix: str = ".csv") -> Path:
        """The copy of the config's lift tests the fit reads (its suffix kept: the reader goes by it)."""
        return self.path / LIFT_TESTS.format(suffix=suffix)

    @property
    def launch_log(self) -> Path:
        """Beside the run: what a fit launched from the New model page printed (``RUN.launch.log``)."""
        return self.path.parent / f"{self.name}{LAUNCH_LOG}"

    # --- loaders ----------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """``summary.json``, checked (``load_summary``: a damaged file is one sentence naming the run)."""
        return load_summary(self)

    def posterior(self, keep: Callable[[str], bool] | None = None, need: Iterable[str] = ()) -> Any:
        """``posterior.nc`` read into memory (``load_posterior``: ``keep`` selects variables, ``need`` requires)."""
        return load_posterior(self, keep=keep, need=need)

    def reading(self) -> AbstractContextManager[None]:
        """Failures while pulling arrays out of the posterior become its damaged-posterior sentence."""
        return reading_posterior(self)

    def config(self) -> ModelConfig:
        """``config.yaml``: the config the run was fitted with, defaults resolved."""
        from mmmlib.config import load_config

        return load_config(self.config_file)

    def frame(self, config: ModelConfig | None = None) -> pd.DataFrame:
        """``data.csv``, the exact data fitted, its date column parsed (``config``: the run's, when not given)."""
        import pandas as pd

        config = config or self.config()
        return pd.read_csv(self.frame_file, parse_dates=[config.date_column])

    def geo_frame(self, config: ModelConfig | None = None) -> pd.DataFrame | None:
        """``geo_data.csv`` of a geo run (one row per period and geo, geo names as text), or None."""
        import pandas as pd

        if not self.geo_frame_file.is_file():
            return None
        config = config or self.config()
        return pd.read_csv(self.geo_frame_file, parse_dates=[config.date_column], dtype={config.geo_column or "": str})

    # --- state ------------------------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether its ``summary.json`` is there (a published run; ``summary()`` says whether it is sound)."""
        return self.summary_file.is_file()

    @property
    def accepted(self) -> bool:
        return self.accepted_file.exists()

    @property
    def is_failed(self) -> bool:
        """Whether this folder is a failed attempt kept beside its run (``RUN.failed-<stamp>``), not a run."""
        return FAILED in self.name

    @property
    def state(self) -> RunState:
        """Staging, failed attempts, accepted: what its files and the folders beside it say now."""
        complete, accepted = self.complete, self.accepted
        if complete:
            return RunState(complete=True, accepted=accepted)
        try:
            beside = sorted(os.listdir(self.parent))
        except (FileNotFoundError, NotADirectoryError):
            beside = []
        failed = tuple(self.parent / n for n in beside if n.startswith(f"{self.name}{FAILED}"))
        staging = tuple(
            self.parent / n for n in beside if (m := ATTEMPT.match(n)) and m["run"] == self.name and m["kind"] == "tmp"
        )
        text = _read_text(self.launch_log) + (_read_text(staging[-1] / LOG) if staging else "")
        lines = tuple(line for line in text.splitlines() if line.strip())
        return RunState(complete=False, accepted=accepted, staging=staging, failed=failed, log_lines=lines)

    # --- writing ----------------------------------------------------------------------------------------------
    def stage(self) -> RunDir:
        """A new private staging folder for a fit of this run, after clearing what killed fits of it left."""
        remove_dead_attempts(self.path)
        return RunDir(staging_dir(self.path))

    def publish(self, staging: str | os.PathLike[str]) -> RunDir:
        """The one atomic write of a run: ``staging`` (with its ``summary.json``) renamed into place."""
        publish(Path(staging), self.path)
        return self

    def keep_failed(self, staging: str | os.PathLike[str]) -> RunDir:
        """``staging`` kept beside this run as a failed attempt (its summary removed); the run is untouched."""
        return RunDir(keep_failed(Path(staging), self.path))

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``summary.json``, atomically: written last into a staging folder, it makes the folder a run."""
        write_json_atomic(self.summary_file, summary)

    def accept(self, by: str) -> None:
        """Mark a ``warning`` run as reviewed (``accept_run``)."""
        accept_run(self.path, by)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return ""


# --- the store: where data and runs live ----------------------------------------------------------------------

CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RUN_ID_MAX = 100
# run folder names reach URLs (the hub's run-report route), file names and pages: one rule, checked at creation
RUN_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{RUN_ID_MAX - 1}}}$")


def home() -> Path:
    """The store root: ``$MMM_HOME`` or ``./mmm_home``."""
    return Path(os.environ.get("MMM_HOME") or "mmm_home").resolve()


def check_client(client: str) -> str:
    if not CLIENT_NAME.fullmatch(client or ""):  # fullmatch: "$" alone lets a final newline in
        raise UsageError(
            f"Client name {client!r} is not allowed: use lower-case letters, digits, '-' and '_' (at most 63)."
        )
    return client


def check_run_id(run_id: str, what: str = "Run folder name", room: int = 0) -> str:
    """Refuse a run (or schedule) name outside ``RUN_ID``; ``room`` keeps characters free for a suffix."""
    limit = RUN_ID_MAX - room
    if not RUN_ID.fullmatch(run_id or "") or len(run_id) > limit:
        raise UsageError(
            f"{what} {run_id!r} is not allowed: use letters, digits, '.', '-' and '_', starting with a letter "
            f"or digit (at most {limit} characters)."
        )
    return run_id


def client_dir(client: str, root: Path | None = None) -> Path:
    return (root or home()) / "clients" / check_client(client)


def datasets_dir(client: str, root: Path | None = None) -> Path:
    return client_dir(client, root) / "datasets"


def runs_dir(client: str, root: Path | None = None) -> Path:
    return client_dir(client, root) / "runs"


def latest_report_path(client: str, root: Path | None = None) -> Path:
    """The client's latest published HTML report (scheduled ``ok`` runs only); the hub serves it to their users."""
    return client_dir(client, root) / "reports" / "latest.html"


def ensure_client(client: str, root: Path | None = None) -> Path:
    for d in (datasets_dir(client, root), runs_dir(client, root)):
        d.mkdir(parents=True, exist_ok=True)
    return client_dir(client, root)


def clients(root: Path | None = None) -> list[str]:
    base = (root or home()) / "clients"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@dataclass(frozen=True)
class RunInfo:
    """A run as listed: enough to pick one without loading its posterior."""

    client: str
    run_id: str
    path: Path
    status: str
    created_at: str
    target: str
    accepted: bool

    @property
    def published(self) -> bool:
        """Shown to executives: status ``ok``, or a ``warning`` run someone accepted."""
        return self.status == "ok" or self.accepted

    def to_dict(self) -> dict:
        return {
            "client": self.client,
            "id": self.run_id,
            "path": str(self.path),
            "status": self.status,
            "created_at": self.created_at,
            "target": self.target,
            "accepted": self.accepted,
        }


def read_run_info(path: Path, client: str = "") -> RunInfo | None:
    """The listing entry of a run directory, or None when its ``summary.json`` is missing or damaged.

    ``load_summary`` is the one check of what a run must hold, so a run listed here (the gallery, the run
    picker, ``mmm runs``) is one every view and command can open.
    """
    try:
        summary = load_summary(path)
    except (MMMError, PermissionError):  # one unreadable folder must not hide the client's other runs
        return None
    run = summary["run"]
    return RunInfo(
        client=client or summary.get("client") or "",
        run_id=run["id"],
        path=path,
        status=summary["status"],
        created_at=run["created_at"],
        target=summary["target"],
        accepted=RunDir(path).accepted,
    )


def list_runs(client: str | Iterable[str] | None = None, root: Path | None = None) -> list[RunInfo]:
    """Complete runs (those with a sound ``summary.json``) of one client, several, or all; newest first.

    Failed attempts are not runs, and nor is a folder whose summary is damaged or partial: it is skipped. Nor
    is a folder whose name breaks ``RUN_ID`` (made by hand: it could never be linked to, so it is never listed,
    nor chosen as a client's latest run).
    """
    if client is None:
        names = clients(root)
    else:
        names = [check_client(c) for c in ([client] if isinstance(client, str) else client)]
    found = []
    for name in names:
        for path in run_folders(runs_dir(name, root)):
            info = read_run_info(path, name)
            if info:
                found.append(info)
    return sorted(found, key=lambda r: (r.created_at, r.run_id), reverse=True)


def run_folders(base: Path) -> list[Path]:
    """The folders in ``base`` that may hold a run: named by ``RUN_ID``, not failed attempts (none if no folder)."""
    if not Path(base).is_dir():
        return []
    return [p for p in Path(base).iterdir() if p.is_dir() and not RunDir(p).is_failed and RUN_ID.fullmatch(p.name)]


def accept_run(path: Path, by: str) -> None:
    """Mark a ``warning`` run as reviewed: executives see it as the latest good run from now on."""
    status = load_summary(path)["status"]  # a missing or damaged summary: its own sentence, nothing written
    stamp = {"accepted_by": by, "accepted_at": datetime.now(UTC).isoformat(), "status_when_accepted": status}
    RunDir(path).accepted_file.write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def latest_good_run(client: str, root: Path | None = None) -> RunInfo | None:
    """The newest run executives may see: status ``ok``, or a ``warning`` run someone accepted."""
    for info in list_runs(client, root):
        if info.published:
            return info
    return None
