"""Scheduled refits (``mmm schedule run --once`` / ``mmm schedule serve``) from a YAML of schedules.

Each due schedule refits its client's newest dataset through the papermill pipeline into a new run
directory, writes its reports, and — only when the run is ``ok`` — publishes the HTML report as the
client's latest (``MMM_HOME/clients/<client>/reports/latest.html``), where the hub serves it to that
client's users. A failed or ``warning`` run never replaces the last good report. A lock file per
schedule keeps two overlapping runs of one schedule apart.

The scheduler usually runs as root and writes into client folders whose writers may plant links there, so it
writes through :mod:`mmmlib.safe_fs`; its own state and locks live in ``MMM_HOME/schedules/`` (mode 0700): no
client can reach them, and the state names every client and run.

```yaml
schedules:
  - name: sample-weekly
    client: sample
    data: sample_data/sample_weekly.csv     # a path or a glob (the newest match is fitted)
    config: sample_data/sample_config.yaml
    cron: "0 6 * * 1"                       # minute hour day-of-month month day-of-week (UTC)
    mode: quick
    reports: [html, txt, csv, json]
    keep: 5                                 # runs of this schedule to keep (failed attempts too)
  - name: acme-meridian                     # re-import a model fitted elsewhere instead of fitting (mmm import)
    client: acme
    kind: meridian                          # meridian | pymc-marketing
    model: models/*.binpb                   # a path or a glob (the newest match is imported)
    cron: "0 7 * * 1"
    reports: [html]
```
"""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import signal
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mmmlib import runs, safe_fs
from mmmlib.errors import InputError, MMMError, UsageError
from mmmlib.request import IMPORT_KINDS

log = logging.getLogger("mmmlib.schedule")
REPORT_FORMATS = ("html", "pdf", "txt", "csv", "json")


@dataclass
class Schedule:
    """One refit job: what to fit, when, and what to publish."""

    name: str
    client: str
    cron: str
    data: str = ""  # what a fit reads: a data file (or glob) and its config
    config: str = ""
    model: str = ""  # what an import reads instead: a saved model file (or glob) of ``kind``
    kind: str = ""
    mode: str = "quick"
    reports: list[str] = field(default_factory=lambda: ["html"])
    keep: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        from croniter import croniter

        runs.check_client(self.client)
        # its runs are named <name>-<UTC stamp>, so the name follows the run-folder rule with room for the stamp
        runs.check_run_id(str(self.name or ""), "Schedule name", room=len("-20260101T000000Z"))
        if not croniter.is_valid(self.cron):
            raise InputError(f"Schedule {self.name}: cron expression {self.cron!r} is not valid.")
        if bool(self.model) == bool(self.data) or bool(self.data) != bool(self.config):
            raise InputError(f"Schedule {self.name}: give data and config (a fit), or model and kind (an import).")
        if self.model and self.kind not in IMPORT_KINDS:
            raise InputError(f"Schedule {self.name}: kind must be one of {', '.join(IMPORT_KINDS)} for a model file.")
        if self.mode not in ("quick", "full"):
            raise InputError(f"Schedule {self.name}: mode must be quick or full, not {self.mode!r}.")
        bad = [f for f in self.reports if f not in REPORT_FORMATS]
        if bad:
            raise InputError(
                f"Schedule {self.name}: report format {bad[0]!r} is not one of {', '.join(REPORT_FORMATS)}."
            )
        if not isinstance(self.keep, int) or self.keep < 1:
            raise InputError(f"Schedule {self.name}: keep must be a whole number ≥ 1.")

    def last_due(self, now: datetime) -> datetime:
        """The latest time at or before ``now`` when the cron expression fired."""
        from croniter import croniter

        if croniter.match(self.cron, now):
            return now
        return croniter(self.cron, now).get_prev(datetime)

    def is_due(self, now: datetime, last_run: datetime | None) -> bool:
        return last_run is None or self.last_due(now) > last_run


def load_schedules(path: str | Path) -> list[Schedule]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Schedule file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"Schedule file {path.name} is not valid YAML.") from exc
    entries = data.get("schedules") if isinstance(data, dict) else None
    if not isinstance(entries, list):  # an empty list is valid: a hub with nothing scheduled yet
        raise InputError(f"Schedule file {path.name} needs a list under 'schedules:'.")
    base = path.parent
    out = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise InputError(f"Schedule {i} in {path.name} must be a mapping.")
        try:
            sched = Schedule(**entry)
        except TypeError as exc:
            raise InputError(f"Schedule {i} in {path.name}: {exc}.") from exc
        for key in ("data", "config", "model"):
            value = getattr(sched, key)
            if value and not os.path.isabs(value):
                setattr(sched, key, str(base / value))
        out.append(sched)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise InputError(f"Schedule names in {path.name} must be unique.")
    return out


def _private_dir(root: Path | None = None, *sub: str) -> Path:
    """``MMM_HOME/schedules[/sub]``: the scheduler's alone (0700), refused when another account owns it."""
    path = root or runs.home()
    with safe_fs.dir_fd(path, create=True):
        pass
    for part in ("schedules", *sub):
        path = path / part
        with safe_fs.dir_fd(path, create=True, mode=0o700) as fd:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise UsageError(
                    f"{path} belongs to another account; the scheduler keeps its state and locks there, "
                    "so run it as that account or give the folder to this one."
                )
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.fchmod(fd, 0o700)
    return path


def _state_path(root: Path | None = None) -> Path:
    return (root or runs.home()) / "schedules" / "state.json"


def read_state(root: Path | None = None) -> dict[str, Any]:
    path = _state_path(root)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_state(state: dict[str, Any], root: Path | None = None) -> None:
    """The schedules' last runs, owner-only: it names every client and run path."""
    safe_fs.write_text(_private_dir(root) / "state.json", json.dumps(state, indent=1), mode=0o600)


@contextmanager
def schedule_lock(sched: Schedule, root: Path | None = None) -> Iterator[bool]:
    """Yield True when this process holds the schedule's lock, False when another run holds it.

    The lock file lives in ``MMM_HOME/schedules/locks/`` (0700), never in a client's folder, where a writer
    could plant a link in its place and root's next write of its PID would land in any file.
    """
    with safe_fs.dir_fd(_private_dir(root, "locks")) as locks:
        fd = os.open(f"{sched.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=locks)
    with os.fdopen(fd, "r+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def newest_dataset(pattern: str, what: str = "dataset") -> Path:
    matches = [Path(p) for p in glob.glob(pattern)]
    files = [p for p in matches if p.is_file()]
    if not files:
        raise InputError(f"No {what} matches {pattern}.")
    return max(files, key=lambda p: (p.stat().st_mtime, p.name))


def run_schedule(
    sched: Schedule, now: datetime | None = None, root: Path | None = None, pool: Any = None
) -> dict[str, Any]:
    """Fit, report and publish one schedule now; returns what happened (never raises for a failed fit).

    ``pool``: the scheduler's preheated kernels (:func:`mmmlib.pipeline.fit_pool`), one per fit."""
    from mmmlib.pipeline import fit_run, import_run
    from mmmlib.reports import write_report
    from mmmlib.request import FitRequest, ImportRequest

    now = now or datetime.now(UTC)
    runs.ensure_client(sched.client, root)
    run_dir = runs.runs_dir(sched.client, root) / f"{sched.name}-{now:%Y%m%dT%H%M%SZ}"
    outcome: dict[str, Any] = {"schedule": sched.name, "client": sched.client, "run": str(run_dir)}
    try:
        if sched.model:  # a model fitted elsewhere, re-imported as it is refitted there
            model = newest_dataset(sched.model, "model file")
            summary = import_run(ImportRequest(sched.kind, str(model), str(run_dir), client=sched.client))
        else:
            data = newest_dataset(sched.data)
            fit = FitRequest(str(data), str(sched.config), str(run_dir), sched.mode, sched.seed, client=sched.client)
            summary = fit_run(fit, pool=pool)
        outcome["status"] = summary["status"]
        for fmt in sched.reports:
            write_report(run_dir, fmt=fmt)
        if summary["status"] == "ok" and "html" in sched.reports:
            _publish(runs.RunDir(run_dir).report_file("html"), runs.latest_report_path(sched.client, root))
            outcome["published"] = str(runs.latest_report_path(sched.client, root))
    except MMMError as exc:
        outcome["status"] = "failed"
        outcome["error"] = str(exc).splitlines()[0]
        log.error("schedule %s failed: %s", sched.name, outcome["error"])
    _prune(sched, root)
    return outcome


def _publish(report: Path, target: Path) -> None:
    """Copy the run's report over the client's latest, atomically; a link at either end is not followed."""
    safe_fs.copy_file(report, target)


def _prune(sched: Schedule, root: Path | None = None) -> None:
    """Keep the newest ``keep`` runs of this schedule, and as many failed attempts (links are not runs)."""
    base = runs.runs_dir(sched.client, root)
    prefix = f"{sched.name}-"
    found = [runs.RunDir(p) for p in base.glob(f"{prefix}*") if p.is_dir() and not p.is_symlink()]
    done = sorted((r.path for r in found if not r.is_failed), reverse=True)
    failed = sorted((r.path for r in found if r.is_failed), reverse=True)
    for old in done[sched.keep :] + failed[sched.keep :]:
        safe_fs.remove_tree(old, ignore_errors=True)


def run_due(
    schedules: list[Schedule], now: datetime | None = None, root: Path | None = None, pool: Any = None
) -> list[dict[str, Any]]:
    """Run every schedule that is due at ``now``; a schedule whose lock is held is skipped."""
    now = now or datetime.now(UTC).replace(second=0, microsecond=0)
    state = read_state(root)
    results = []
    for sched in schedules:
        last = state.get(sched.name, {}).get("last_run")
        last_dt = datetime.fromisoformat(last) if last else None
        if not sched.is_due(now, last_dt):
            continue
        with schedule_lock(sched, root) as held:
            if not held:
                results.append({"schedule": sched.name, "status": "skipped", "error": "another run holds its lock"})
                continue
            outcome = run_schedule(sched, now, root, pool)
            state = read_state(root)
            state[sched.name] = {"last_run": now.isoformat(), "status": outcome["status"], "run": outcome["run"]}
            _write_state(state, root)
            results.append(outcome)
    return results


def serve(path: str | Path, interval: float = 60.0) -> None:
    """Run due schedules every ``interval`` seconds until SIGTERM/SIGINT (the hub's managed service).

    Fits run in preheated kernels (``$MMM_KERNEL_POOL`` of them, default 1, each used once): the scheduler is the one
    long-lived process that fits again and again, and its pool is its own account's.
    """
    from mmmlib.pipeline import fit_pool

    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started with %s", path)
    with fit_pool() as pool:
        while not stop:
            try:
                for outcome in run_due(load_schedules(path), pool=pool):
                    log.info("%s", json.dumps(outcome))
            except MMMError as exc:
                log.error("%s", exc)
            deadline = time.monotonic() + interval
            while not stop and time.monotonic() < deadline:
                time.sleep(min(1.0, interval))


def _run_now(args: tuple[Schedule, str | None]) -> dict[str, Any]:
    """One batch job (top level so process pools and Dask can pickle it)."""
    sched, home = args
    if home:
        os.environ["MMM_HOME"] = home
    return run_schedule(sched)


def run_batch(schedules: list[Schedule], executor: Any) -> list[dict[str, Any]]:
    """Fit every schedule now, whatever its cron, through ``executor`` (``mmm batch``)."""
    home = os.environ.get("MMM_HOME")
    return executor.map(_run_now, [(s, home) for s in schedules])
