"""Real Voilà pages in headless Chromium: the executive, budget planner and model quality dashboards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, CHROMIUM

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila(synth_run: dict):
    """Voilà serving dashboards/ on loopback, pointed at the shared fitted run."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (make test installs it)")
        pytest.skip("chromium not installed")
    port = _free_port()
    env = {**os.environ, "MMM_RUN": str(synth_run["run_dir"])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            str(ROOT / "dashboards"),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("voila did not start")
    yield base
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from mmmlib.reports import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url: str, shot: str):
    page = browser.new_page(viewport={"width": 1400, "height": 3000})  # Voilà scrolls inside its own container
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    return page


def test_executive_dashboard(voila: str, browser) -> None:
    page = _open(browser, f"{voila}/voila/render/executive.ipynb", "dashboard_executive.png")
    body = page.inner_text("body")
    assert body.index("Model health") < body.index("Recommendations")  # health comes before any advice
    assert "Blended ROAS" in body and "94% HDI" in body
    assert page.locator(".bqplot").count() >= 3
    page.close()


def test_budget_planner_reoptimises_when_the_budget_changes(voila: str, browser) -> None:
    page = _open(browser, f"{voila}/voila/render/budget_planner.ipynb", "dashboard_planner.png")
    assert page.locator(".bqplot").count() >= 6  # response curves, ROAS, mROAS, allocation, frontier
    outcome = page.locator(".mmm-outcome")
    before = outcome.inner_text()
    assert "Expected" in before and "94% HDI" in before
    box = page.locator("input[type=number]").first
    value = float(box.input_value())
    box.fill(f"{value * 0.8:.2f}")
    box.press("Enter")
    page.wait_for_function(
        "prev => document.querySelector('.mmm-outcome').innerText !== prev", arg=before, timeout=30_000
    )
    assert outcome.inner_text() != before
    page.close()


def test_model_quality_dashboard(voila: str, browser) -> None:
    page = _open(browser, f"{voila}/voila/render/model_quality.ipynb", "dashboard_quality.png")
    body = page.inner_text("body")
    assert "max R-hat" in body and "divergences" in body and "MAPE (held out)" in body
    assert page.locator(".bqplot").count() >= 4
    page.close()


def test_missing_run_shows_a_message_not_a_traceback(voila: str, browser) -> None:
    page = browser.new_page()
    page.goto(f"{voila}/voila/render/executive.ipynb?run=/nonexistent/run", timeout=120_000)
    page.wait_for_selector(".mmm-msg", timeout=120_000)
    body = page.inner_text("body")
    assert "No results at /nonexistent/run" in body and "Traceback" not in body
    page.close()
