"""Shared fixtures. Fitted runs are session-scoped: CI fits each small model once."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmmlib.data.synth import lift_test_from_truth

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
PUBLIC = Path(os.environ.get("MMM_PUBLIC_DATA", ROOT.parent / "shared" / "public_data"))


# The fast lane (`make test-fast`: -m "not slow and not server") leaves out what needs these fixtures, directly or
# through another fixture; tests that fit or serve without them carry the marker themselves.
# real fits, shared by the session
SLOW_FIXTURES = {
    "synth_run",
    "scheduled",
    "geo_run",
    "pymc_model",
    "imported",
    "meridian_fitted",
    "meridian_model",
    "meridian_runs",
    "meridian_geo_run",
}
SERVER_FIXTURES = {"browser"}  # headless Chromium


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[], dict]) -> dict:
    """A session fixture's value built by the first pytest-xdist worker that needs it, under a lock, and read by the
    others from its record (its paths are on the same disk); without xdist, just built. `make test` sends each test
    file to one worker (``--dist loadfile``), so a module's own fixtures are built once anyway; these are the ones
    several files share: the fits, which tests read or copy."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build()
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp().parent  # shared by the workers of this run
    record = base / f"{name}.pickle"  # written by this run's own worker: paths, texts, numbers
    with FileLock(str(base / f"{name}.lock")):
        if record.is_file():
            return pickle.loads(record.read_bytes())
        value = build()
        record.write_bytes(pickle.dumps(value))
    return value


@pytest.fixture(scope="session")
def public_data() -> Path:
    if not PUBLIC.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"public datasets missing at {PUBLIC} (CI must have ../shared/public_data)")
        pytest.skip(f"public datasets not found at {PUBLIC}; set MMM_PUBLIC_DATA")
    return PUBLIC


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of the sample data and config."""
    for name in ("sample_weekly.csv", "sample_config.yaml", "sample_messy.csv"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    return tmp_path


def _mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)


def run_side_by_side(commands: list[list[str]], env: dict[str, str] | None = None) -> None:
    """Run independent commands at once and wait for all, each to succeed: where most of a command is one thread
    (imports, tracing, compiling), two or three side by side take little longer than one."""
    pipe = subprocess.PIPE
    procs = [subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, env=env) for cmd in commands]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]


def _fit(data_dir: Path, run_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``mmm fit`` of a generated dataset (its ``data.csv`` and ``config.yaml``) into ``run_dir``."""
    data, config = str(data_dir / "data.csv"), str(data_dir / "config.yaml")
    return _mmm("fit", data, "--config", config, "--out", str(run_dir), *options)


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real quick fit (papermill + pymc-marketing) of a small synthetic dataset, shared by every test."""
    return _built_once(tmp_path_factory, "synth_run", lambda: _synth_run(tmp_path_factory))


def _synth_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data_dir = tmp_path_factory.mktemp("synth")
    assert _mmm("synth", "--out", str(data_dir), "--weeks", "104", "--channels", "3", "--seed", "11").returncode == 0
    # the shared fit also exercises held-out error and lift-test calibration (from the known truth)
    truth = json.loads((data_dir / "truth.json").read_text())
    first = truth["channels"][0]
    spend = float(pd.read_csv(data_dir / "data.csv")[first["name"]].tail(52).mean())
    lift = lift_test_from_truth(first, spend, 0.2 * spend, 1.0)
    lift["sigma"] = max(0.1 * abs(lift["delta_y"]), 1.0)
    pd.DataFrame([lift]).to_csv(data_dir / "lift.csv", index=False)
    config = (data_dir / "config.yaml").read_text()
    config = config.replace("holdout_periods: 0", "holdout_periods: 8").replace(
        "lift_tests: null", "lift_tests: lift.csv"
    )
    (data_dir / "config.yaml").write_text(config)
    run_dir = tmp_path_factory.mktemp("store") / "clients" / "acme" / "runs" / "r1"
    fit = _fit(data_dir, run_dir, "--mode", "quick", "--seed", "1")
    assert fit.returncode == 0, fit.stderr[-3000:]
    return {
        "data_dir": data_dir,
        "run_dir": run_dir,
        "stdout": fit.stdout,
        "truth": json.loads((data_dir / "truth.json").read_text()),
    }


@pytest.fixture(scope="session")
def geo_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real hierarchical geo fit (``mmm fit`` through papermill): 4 geos × 78 weeks × 2 channels, impressions as
    media, population per capita, the last geo spending on search in only 4 weeks (data-poor: pooling's case)."""
    return _built_once(tmp_path_factory, "geo_run", lambda: _geo_run(tmp_path_factory))


def _geo_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from mmmlib.data import synth_geo
    from mmmlib.data.synth import SynthSpec

    data_dir = synth_geo.write(SynthSpec(weeks=78, channels=2, seed=2), 4, tmp_path_factory.mktemp("geo"), True)
    # one geo's lift test, so vague (standard error of a year's KPI) that it wires the calibration without moving it
    kpi = pd.read_csv(data_dir / "data.csv")["revenue"].sum()
    lift = {"geo": "geo000", "channel": "tv_spend", "spend": 1000.0, "spend_change": 500.0}
    pd.DataFrame([{**lift, "kpi_change": 100.0, "standard_error": float(kpi)}]).to_csv(
        data_dir / "lift.csv", index=False
    )
    config = yaml.safe_load((data_dir / "config.yaml").read_text())
    # geometric carry-over (the generator's): two candidates on the national sum, logistic or Hill, not four
    (data_dir / "config.yaml").write_text(yaml.safe_dump({**config, "lift_tests": "lift.csv", "adstock": "geometric"}))
    run_dir = tmp_path_factory.mktemp("store") / "clients" / "geo" / "runs" / "g1"
    fit = _fit(data_dir, run_dir, "--tune", "300", "--draws", "300")
    assert fit.returncode == 0, fit.stderr[-3000:]
    return {"data_dir": data_dir, "run_dir": run_dir, "truth": json.loads((data_dir / "truth.json").read_text())}


ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def assert_draws_offline(html: Path, screenshot: str) -> None:
    """Open ``html`` in headless Chromium with every network request refused; its bqplot charts must draw.

    The screenshot is kept in test-artifacts/ for a person to look at.
    """
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (make test installs it)")
        pytest.skip("chromium not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    from mmmlib.browser import CHROMIUM_ARGS

    refused: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1600})

        def route(request_route) -> None:
            url = request_route.request.url
            if url.startswith(("file:", "data:", "blob:")):
                request_route.continue_()
            else:
                refused.append(url)
                request_route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.goto(html.resolve().as_uri())
        page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=60_000)
        page.wait_for_selector(".bqplot path.line", state="attached", timeout=60_000)
        lines = page.locator(".bqplot path.line").count()
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
        figures = page.locator(".bqplot").count()
        body = page.inner_text("body")
        browser.close()
    assert figures >= 3 and lines >= 6
    assert "Model health" in body and "Recommendations" in body
    assert refused == [], refused  # nothing is fetched from the network


@pytest.fixture(scope="session")
def scheduled(synth_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real `mmm schedule run --once` of the small synthetic client (plain config: no lift tests)."""
    return _built_once(tmp_path_factory, "scheduled", lambda: _scheduled(synth_run, tmp_path_factory))


def _scheduled(synth_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("home")
    data_dir = synth_run["data_dir"]
    config = (data_dir / "config.yaml").read_text().replace("lift_tests: lift.csv", "lift_tests: null")
    (data_dir / "plain.yaml").write_text(config)
    schedules = root / "schedules.yaml"
    schedules.write_text(
        yaml.safe_dump(
            {
                "schedules": [
                    {
                        "name": "acme-weekly",
                        "client": "acme",
                        "data": str(data_dir / "data*.csv"),
                        "config": str(data_dir / "plain.yaml"),
                        "cron": "0 6 * * 1",
                        "mode": "quick",
                        "reports": ["html", "txt"],
                        "keep": 2,
                    }
                ]
            }
        )
    )
    env = {"MMM_HOME": str(root)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmmlib",
            "schedule",
            "run",
            "--once",
            "--file",
            str(schedules),
            "--now",
            "2026-11-23T07:00:00",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return {"root": root, "file": schedules, "results": json.loads(run.stdout), "env": env}


@contextlib.contextmanager
def executive_page(browser, run_dir: Path, home: Path, client: str = "acme", height: int = 2400) -> Iterator:
    """The executive dashboard of ``run_dir`` served by Voilà on loopback, open in headless Chromium, charts drawn."""
    from mmmlib.voila_server import running_voila

    env = {"MMM_RUN": str(run_dir), "MMM_HOME": str(home), "MMM_CLIENT": client}
    with running_voila(env, [], log=home / "voila.log", timeout=120) as base:
        page = browser.new_page(viewport={"width": 1400, "height": height})
        try:
            page.goto(f"{base}/voila/render/executive.ipynb", timeout=120_000)
            page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
            yield page
        finally:
            page.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium for the dashboard pages of one test module."""
    from playwright.sync_api import sync_playwright

    from mmmlib.browser import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
