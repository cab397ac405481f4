"""Root writing into client folders that the client's writers can change: a planted link never moves a write.

Every test plants symbolic links (or a hard link, or a link swapped in mid-way) where a writer of the client
could, pointing at a canary outside the store, runs the real code (scheduler, report publishing, run
publishing, ``secure_client``) and checks that the canary keeps its bytes, mode and owner. Run as root in CI,
where the tests that need Unix groups run too.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mmmlib import runs
from mmmlib.errors import InputError, MMMError
from mmmlib.runs import latest_report_path
from mmmlib.schedule import Schedule, _publish, load_schedules, read_state, run_due, schedule_lock

IS_ROOT = os.geteuid() == 0
SECRET = b"root-only: do not overwrite, do not publish\n"
CLIENT = "fs-acme"


class Canary:
    """A file (and a folder holding one) outside the store, and what they looked like before."""

    def __init__(self, base: Path) -> None:
        self.file = base / "canary"
        self.file.write_bytes(SECRET)
        self.file.chmod(0o600)
        self.folder = base / "canary_dir"
        self.folder.mkdir()
        (self.folder / "inside").write_bytes(SECRET)
        self.before = self.snapshot()

    def snapshot(self) -> list[tuple]:
        out = []
        for p in (self.file, self.folder, self.folder / "inside"):
            st = p.lstat()
            out.append((p.name, st.st_mode, st.st_uid, st.st_gid, p.read_bytes() if p.is_file() else None))
        return out

    def assert_untouched(self) -> None:
        assert self.file.exists() and self.folder.is_dir(), "the canary was moved or removed"
        assert self.snapshot() == self.before


@pytest.fixture
def umask002() -> Iterator[None]:
    """What user servers and the scheduler run with under the hub."""
    old = os.umask(0o002)
    yield
    os.umask(old)


@pytest.fixture
def home(tmp_path: Path, umask002: None) -> Path:
    """A store laid out as ``secure_client`` leaves it: client folder root's, the folders below writers'."""
    root = tmp_path / "home"
    client = root / "clients" / CLIENT
    for sub in ("runs", "datasets", "reports", ".locks"):  # .locks: where earlier versions kept locks
        (client / sub).mkdir(parents=True)
        (client / sub).chmod(0o2775)
    client.chmod(0o750)
    return root


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    return Canary(tmp_path)


def plant(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def sched(**kw: object) -> Schedule:
    base = {"name": "weekly", "client": CLIENT, "data": "none*.csv", "config": "c.yaml", "cron": "0 6 * * 1"}
    return Schedule(**{**base, **kw})


# --- the scheduler's own files -------------------------------------------------------------------------------


def test_the_schedule_lock_is_the_schedulers_own_file(home: Path, canary: Canary) -> None:
    plant(home / "clients" / CLIENT / ".locks" / "weekly.lock", canary.file)
    with schedule_lock(sched(), root=home) as held:
        assert held
    canary.assert_untouched()
    locks = home / "schedules" / "locks"
    assert stat.S_IMODE(locks.stat().st_mode) == 0o700 and (locks / "weekly.lock").is_file()
    assert stat.S_IMODE((home / "schedules").stat().st_mode) == 0o700


def test_state_json_is_private(home: Path) -> None:
    """A due schedule whose data is missing fails at once (no fit), and its state is written owner-only."""
    (home / "schedules").mkdir(mode=0o755)
    (home / "schedules" / "state.json").write_text("{}")  # an earlier version's, world-readable
    (home / "schedules" / "state.json").chmod(0o644)
    (result,) = run_due([sched()], now=datetime(2026, 11, 23, 7, 0), root=home)
    assert result["status"] == "failed"
    state = home / "schedules" / "state.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert read_state(home)["weekly"]["status"] == "failed"


# --- reports -----------------------------------------------------------------------------------------------------


def _fake_run(home: Path, name: str = "r1") -> Path:
    run = home / "clients" / CLIENT / "runs" / name
    run.mkdir()
    (run / "report.html").write_text("<html>the real report</html>")
    return run


def test_publishing_the_latest_report_never_writes_through_a_link(home: Path, canary: Canary) -> None:
    run = _fake_run(home)
    latest = latest_report_path(CLIENT, home)
    plant(latest.with_name(".latest.html.tmp"), canary.file)  # the fixed temporary name earlier versions used
    plant(latest, canary.folder / "inside")  # replaced, not written through
    _publish(run / "report.html", latest)
    canary.assert_untouched()
    assert not latest.is_symlink() and latest.read_text() == "<html>the real report</html>"
    assert stat.S_IMODE(latest.stat().st_mode) == 0o664  # readers read it (umask 002, as under the hub)


def test_a_report_swapped_for_a_link_is_not_published(home: Path, canary: Canary) -> None:
    """A writer's link in place of the run's report would have root publish a root-only file to every reader."""
    run = _fake_run(home)
    (run / "report.html").unlink()
    plant(run / "report.html", canary.file)
    latest = latest_report_path(CLIENT, home)
    with pytest.raises(MMMError, match="link"):
        _publish(run / "report.html", latest)
    assert not latest.exists()
    os.link(canary.file, run / "hard.html")  # root may hard-link any file; a writer may where the kernel allows
    with pytest.raises(MMMError, match="hard links"):
        _publish(run / "hard.html", latest)
    assert not latest.exists()


def test_json_and_reports_never_write_through_planted_temporary_names(
    home: Path, canary: Canary, synth_run: dict
) -> None:
    from mmmlib.reports import write_report
    from mmmlib.runs import write_json_atomic

    run = home / "clients" / CLIENT / "runs" / "r1"
    shutil.copytree(synth_run["run_dir"], run)
    for name in (".summary.json.tmp", ".report.txt.tmp", ".report.csv.tmp", ".report.json.tmp", ".out.json.tmp"):
        plant(run / name, canary.file)
    write_json_atomic(run / "out.json", {"a": 1})
    for fmt in ("txt", "csv", "json"):
        write_report(run, fmt=fmt)
        assert not (run / f"report.{fmt}").is_symlink()
    canary.assert_untouched()
    assert json.loads((run / "out.json").read_text()) == {"a": 1}
    assert (run / "report.txt").read_text().startswith("Marketing mix report")
    # a run folder swapped for a link (to another client's run) is refused, not reported on
    moved = run.with_name("moved")
    run.rename(moved)
    run.symlink_to(moved)
    with pytest.raises(MMMError, match="link"):
        write_report(run, fmt="txt")


# --- run directories -----------------------------------------------------------------------------------------


def test_a_fit_stages_where_no_writer_can_swap_it(home: Path, canary: Canary) -> None:
    """While root's kernel writes a fit by name, its folder must be one no writer can rename or enter."""
    run = home / "clients" / CLIENT / "runs" / "r1"
    staging = runs.staging_dir(run)
    parent = staging.parent.stat()
    assert parent.st_uid == os.geteuid() and not parent.st_mode & 0o022  # nobody else can rename it
    assert stat.S_IMODE(staging.stat().st_mode) & 0o077 == 0  # nor enter it
    assert staging.stat().st_gid == run.parent.stat().st_gid  # what the fit writes is the client's
    (staging / "summary.json").write_text("{}")
    plant(run, canary.folder)  # a writer's link at the run's name (the scheduler's names are predictable)
    runs.publish(staging, run)
    canary.assert_untouched()
    assert run.is_dir() and not run.is_symlink() and (run / "summary.json").is_file()
    assert stat.S_IMODE(run.stat().st_mode) == 0o2775  # readers read it, writers change it, as before


def test_a_failed_attempt_is_kept_whatever_was_planted_at_its_name(home: Path, canary: Canary) -> None:
    run = home / "clients" / CLIENT / "runs" / "r1"
    staging = runs.staging_dir(run)
    (staging / "fit.log").write_text("FAILED")
    now = datetime.now(UTC)
    for ahead in range(3):  # the name is predictable to the second
        plant(run.with_name(f"r1.failed-{now + timedelta(seconds=ahead):%Y%m%dT%H%M%SZ}"), canary.folder)
    failed = runs.keep_failed(staging, run)
    canary.assert_untouched()
    assert failed.is_dir() and not failed.is_symlink() and (failed / "fit.log").read_text() == "FAILED"


PUBLISHER = """
import sys, time
from pathlib import Path
from mmmlib import runs
run, n = Path(sys.argv[1]), int(sys.argv[2])
crashed = 0
for i in range(n):
    while True:  # earlier versions named staging folders by second and pid: wait for a free name
        try:
            staging = runs.staging_dir(run)
            break
        except FileExistsError:
            time.sleep(0.01)
    (staging / "summary.json").write_text('{"i": %d}' % i)
    try:
        runs.publish(staging, run)
    except Exception as exc:
        crashed += 1
        print(type(exc).__name__, exc, file=sys.stderr)
print(crashed)
"""


@pytest.mark.slow
def test_two_processes_publishing_one_run_never_crash_nor_leave_folders(tmp_path: Path) -> None:
    run = tmp_path / "clients" / "acme" / "runs" / "r1"
    run.parent.mkdir(parents=True)
    procs = [
        subprocess.Popen([sys.executable, "-c", PUBLISHER, str(run), "500"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    crashed = [int(p.communicate(timeout=300)[0].strip()) for p in procs]
    assert crashed == [0, 0]
    assert json.loads((run / "summary.json").read_text())["i"] >= 0
    hidden = [p.name for folder in (run.parent, run.parent.parent) for p in folder.iterdir() if p.name[0] == "."]
    assert hidden == []  # no staging or displaced run left behind


def test_a_dead_fits_staging_folder_is_removed_by_the_next_fit(tmp_path: Path, sample_copy: Path) -> None:
    from mmmlib.pipeline import fit_run
    from mmmlib.request import FitRequest

    run = tmp_path / "home" / "clients" / "acme" / "runs" / "r1"
    code = (
        "import sys, time; from pathlib import Path; from mmmlib import runs\n"
        "print(runs.staging_dir(Path(sys.argv[1])), flush=True)\nif sys.argv[2] == 'live': time.sleep(120)"
    )
    made = subprocess.run([sys.executable, "-c", code, str(run), "dead"], capture_output=True, text=True)
    dead = Path(made.stdout.strip())  # its process has exited: a killed fit
    fitting = subprocess.Popen([sys.executable, "-c", code, str(run), "live"], stdout=subprocess.PIPE, text=True)
    live = Path(fitting.stdout.readline().strip())  # another process, still fitting
    pid = dead.name.rsplit("-", 1)[1].split("@")[0]
    other_machine = run.parent / f".r1.tmp-20260101T000000Z-abc123-{pid}@elsewhere"  # its pid means nothing here
    other_run = run.parent / dead.name.replace(".r1.", ".r2.", 1)
    other_machine.mkdir()
    other_run.mkdir()
    assert dead.is_dir() and live.is_dir() and dead.parent == live.parent == run.parent
    (sample_copy / "bad.csv").write_text("date,sales\nnot a date,1\n")
    try:
        with pytest.raises(InputError):  # refused before any kernel starts: the quickest "next fit"
            fit_run(FitRequest(str(sample_copy / "bad.csv"), str(sample_copy / "sample_config.yaml"), str(run)))
    finally:
        fitting.kill()
        fitting.wait()
    assert not dead.exists()
    assert live.is_dir() and other_machine.is_dir() and other_run.is_dir()


# --- lift tests named by a config ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.csv", "lifts/../../outside.csv"])
def test_lift_tests_outside_the_configs_folder_are_refused(sample_copy: Path, path: str) -> None:
    from mmmlib.config import load_config

    config = sample_copy / "sample_config.yaml"
    config.write_text(config.read_text().replace("lift_tests: null", f"lift_tests: {path}"))
    with pytest.raises(InputError, match=r"lift_tests: .* inside the config.s folder"):
        load_config(config)


def test_a_lift_test_link_leading_outside_is_refused(tmp_path: Path, sample_copy: Path, canary: Canary) -> None:
    """A link inside the folder that leads out is refused before anything is read from it."""
    from mmmlib.fitting import fit_to_directory
    from mmmlib.request import FitRequest

    folder = sample_copy / "client"  # the canary sits in the folder above
    folder.mkdir()
    config = folder / "sample_config.yaml"
    config.write_text(
        (sample_copy / "sample_config.yaml").read_text().replace("lift_tests: null", "lift_tests: lift.csv")
    )
    plant(folder / "lift.csv", canary.file)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="outside the config's folder") as err:
        fit_to_directory(FitRequest(str(sample_copy / "sample_weekly.csv"), str(config), str(out)))
    assert "root-only" not in str(err.value)
    assert not (out / "lift_tests.csv").exists()


# --- the hub's chown/chmod at start ----------------------------------------------------------------------------

needs_root = pytest.mark.skipif(not IS_ROOT, reason="secure_client makes Unix groups and chowns: root only")


@needs_root
def test_secure_client_changes_nothing_outside(home: Path, canary: Canary) -> None:
    from mmmlib.hub.accounts import secure_client

    client = home / "clients" / CLIENT
    runs_dir = client / "runs"
    (runs_dir / "r1").mkdir()
    (runs_dir / "r1" / "summary.json").write_text("{}")
    plant(runs_dir / "r1" / "report.html", canary.file)
    plant(runs_dir / "linked-run", canary.folder)
    os.link(canary.file, runs_dir / "r1" / "hard-link")  # a writer can where fs.protected_hardlinks is off
    secure_client(client, CLIENT)
    canary.assert_untouched()
    assert stat.S_IMODE((runs_dir / "r1" / "summary.json").stat().st_mode) == 0o664


SWAPPER = """
import os, sys, time
from pathlib import Path
folder, spare, target, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
names = [f"f{i}" for i in range(50)]
for n in names:
    (folder / n).write_text("x")
end = time.time() + seconds
while time.time() < end:  # flip each name between a link to the canary and a plain file, as fast as possible
    for n in names:
        os.symlink(target, spare / n)
        os.rename(spare / n, folder / n)
        (spare / n).write_text("x")
        os.rename(spare / n, folder / n)
"""


@pytest.mark.slow
@needs_root
def test_secure_client_never_follows_a_link_swapped_in_mid_way(home: Path, canary: Canary) -> None:
    """A writer flipping files and links while the hub secures the tree: the check-then-chmod race."""
    from mmmlib.hub.accounts import secure_client

    client = home / "clients" / CLIENT
    folder = client / "runs" / "r1"
    folder.mkdir()
    spare = home.parent / "spare"  # the swapper's own temporary names, outside the walked tree (same disk)
    spare.mkdir()
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(folder), str(spare), str(canary.file), "20"])
    try:
        time.sleep(1.0)
        deadline = time.monotonic() + 8  # earlier versions followed a link within 0.2 s
        rounds = 0
        while time.monotonic() < deadline and canary.snapshot() == canary.before:
            secure_client(client, CLIENT)
            rounds += 1
    finally:
        swapper.kill()
        swapper.wait()
    canary.assert_untouched()
    assert rounds > 10


# --- the scheduler end to end, with a writer planting links as things appear ------------------------------------

PLANTED = (
    ".report.html.tmp",
    ".report.txt.tmp",
    ".report.csv.tmp",
    ".report.json.tmp",
    ".report.pdf.tmp",
    ".report.print.html",
    ".summary.json.tmp",
    ".latest.html.tmp",
    "data.csv",
    "config.yaml",
    "fit.ipynb",
    "posterior.nc",
    "lift_tests.csv",
)


class Writer(threading.Thread):
    """Plants links to the canary in every folder a writer could write (group-writable), as soon as it appears."""

    def __init__(self, folders: list[Path], target: Path) -> None:
        super().__init__(daemon=True)
        self.folders, self.target, self.stop, self.planted_in = folders, target, threading.Event(), set()

    def run(self) -> None:
        seen: set[Path] = set()
        while not self.stop.is_set():
            found = list(self.folders)
            for top in self.folders:
                found += [p for p in top.iterdir() if p.is_dir() and not p.is_symlink()] if top.is_dir() else []
            for folder in found:
                try:
                    writable = folder.lstat().st_mode & stat.S_IWGRP and not folder.is_symlink()
                except FileNotFoundError:
                    continue
                if not writable or folder in seen:
                    continue
                seen.add(folder)
                for name in PLANTED:
                    try:
                        os.symlink(self.target, folder / name)
                        self.planted_in.add(folder)
                    except OSError:
                        pass
            time.sleep(0.02)


def test_the_scheduler_writes_nothing_outside_the_store(
    home: Path, canary: Canary, synth_run: dict, tmp_path: Path
) -> None:
    """A real scheduled fit with every report format, while a writer plants links wherever it can write."""
    from tests.conftest import CHROMIUM

    data = synth_run["data_dir"]  # its config calibrates with lift.csv: the lift file is read by root too
    formats = ["html", "txt", "csv", "json"] + (["pdf"] if Path(CHROMIUM).exists() else [])
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump(
            {
                "schedules": [
                    {
                        "name": "weekly",
                        "client": CLIENT,
                        "data": str(data / "data*.csv"),
                        "config": str(data / "config.yaml"),
                        "cron": "0 6 * * 1",
                        "reports": formats,
                    }
                ]
            }
        )
    )
    client = home / "clients" / CLIENT
    now = datetime(2026, 11, 23, 7, 0)
    plant(client / ".locks" / "weekly.lock", canary.file)
    plant(client / "runs" / f"weekly-{now:%Y%m%dT%H%M%SZ}", canary.folder)  # the run's name is predictable
    writer = Writer([client / "runs", client / "reports"], canary.file)
    writer.start()
    try:
        (result,) = run_due(load_schedules(tmp_path / "s.yaml"), now=now, root=home)
    finally:
        writer.stop.set()
        writer.join()
    canary.assert_untouched()
    assert result["status"] in {"ok", "warning"}, result
    run = Path(result["run"])
    assert run in writer.planted_in  # it planted in the run folder before its reports were written
    assert run.is_dir() and not run.is_symlink()
    for fmt in formats:
        report = run / f"report.{fmt}"
        assert report.is_file() and not report.is_symlink() and SECRET not in report.read_bytes()
    if result["status"] == "ok":
        latest = latest_report_path(CLIENT, home)
        assert not latest.is_symlink() and latest.read_bytes() == (run / "report.html").read_bytes()
    leftovers = [p.name for p in (client, client / "runs") for p in p.iterdir() if runs.ATTEMPT.match(p.name)]
    assert leftovers == []
