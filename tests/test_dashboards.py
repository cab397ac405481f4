"""Real Voilà pages in headless Chromium: the executive, budget planner and model quality dashboards."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mmmlib.voila_server import running_user_server, running_voila
from tests.conftest import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.server  # Voilà in headless Chromium: not in make test-fast


@pytest.fixture(scope="module")
def voila(synth_run: dict, tmp_path_factory: pytest.TempPathFactory):
    """Voilà serving dashboards/ on loopback, pointed at the shared fitted run; idle kernels culled within seconds."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (make test installs it)")
        pytest.skip("chromium not installed")
    home = tmp_path_factory.mktemp("voila-home")
    env = {"MMM_RUN": str(synth_run["run_dir"]), "MMM_HOME": str(home), "MMM_CLIENT": "acme"}
    culling = ["--MappingKernelManager.cull_idle_timeout=3", "--MappingKernelManager.cull_interval=1"]
    with running_voila(env, culling, log=home / "voila.log", timeout=120) as base:
        yield {"url": base, "home": home}


def _open(browser, url: str, shot: str):
    page = browser.new_page(viewport={"width": 1400, "height": 3000})  # Voilà scrolls inside its own container
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    return page


def test_executive_dashboard(voila: dict, browser) -> None:
    page = _open(browser, f"{voila['url']}/voila/render/executive.ipynb", "dashboard_executive.png")
    body = page.inner_text("body")
    assert body.index("Model health") < body.index("Recommendations")  # health comes before any advice
    assert "Blended ROAS" in body and "94% HDI" in body
    assert page.locator("a[download='report.txt']").count() == 1 and page.locator("a[download='channels.csv']").count()
    assert page.locator(".bqplot").count() >= 3
    page.close()


def test_budget_planner_reoptimises_when_the_budget_changes(voila: dict, browser) -> None:
    page = _open(browser, f"{voila['url']}/voila/render/budget_planner.ipynb", "dashboard_planner.png")
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


def test_model_quality_dashboard(voila: dict, browser) -> None:
    page = _open(browser, f"{voila['url']}/voila/render/model_quality.ipynb", "dashboard_quality.png")
    body = page.inner_text("body")
    assert "max R-hat" in body and "divergences" in body and "MAPE (held out)" in body
    assert "Priors against posteriors" in body and "Posterior distributions of ROAS" in body
    assert page.locator(".bqplot").count() >= 4
    page.close()


def test_missing_run_shows_a_message_not_a_traceback(voila: dict, browser) -> None:
    page = browser.new_page()
    page.goto(f"{voila['url']}/voila/render/executive.ipynb?run=/nonexistent/run", timeout=120_000)
    page.wait_for_selector(".mmm-msg", timeout=120_000)
    body = page.inner_text("body")
    assert "No results at /nonexistent/run" in body and "Traceback" not in body
    page.close()


def test_new_model_fit_finishes_after_the_page_is_closed(voila: dict, browser, synth_run: dict) -> None:
    """Upload, see the detected mapping and validation, start a fit, close the page: the kernel is culled and
    the fit, running in its own process, still completes its run."""
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(f"{voila['url']}/voila/render/new_model.ipynb", timeout=120_000)
    page.wait_for_selector("button.widget-upload", timeout=120_000)
    with page.expect_file_chooser() as chooser:  # ipywidgets 8 creates the file input on click
        page.click("button.widget-upload")
    chooser.value.set_files(str(synth_run["data_dir"] / "data.csv"))
    page.wait_for_selector(".mmm-validation", timeout=60_000)
    assert "ready to fit" in page.inner_text(".mmm-validation")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard_new_model.png"), full_page=True)
    page.click("button:has-text('Start fit')")
    page.wait_for_selector(".mmm-progress:has-text('Fit')", timeout=30_000)  # started, fitting or finished
    page.close()
    log = voila["home"] / "voila.log"
    deadline = time.time() + 60
    while time.time() < deadline and "Culling" not in log.read_text():
        time.sleep(1)
    assert "Culling" in log.read_text()  # the page's kernel is gone
    runs = voila["home"] / "clients" / "acme" / "runs"
    deadline = time.time() + 900  # the default fit (candidates and the seasonality's order): 2-4 minutes cold
    while time.time() < deadline and not list(runs.glob("*-new/summary.json")):
        time.sleep(2)
    done = list(runs.glob("*-new/summary.json"))
    assert done, sorted(p.name for p in runs.iterdir())
    assert list((voila["home"] / "clients" / "acme" / "datasets").glob("*data.csv"))


def test_preheated_kernels_still_honour_the_url(synth_run: dict, scheduled: dict, browser) -> None:
    """`make demo` preheats kernels (they render before the request exists): ?run= must still pick the run."""
    other = scheduled["results"][0]["run"]
    with running_voila(
        {"MMM_RUN": str(synth_run["run_dir"])}, ["--preheat_kernel=True", "--pool_size=1"], timeout=120
    ) as base:
        time.sleep(5)  # let the pool fill
        page = _open(browser, f"{base}/voila/render/executive.ipynb?run={other}", "dashboard_preheated.png")
        wanted = json.loads((Path(other) / "summary.json").read_text())["run"]["id"]
        assert wanted in page.inner_text("body")
        page.close()


def test_a_hub_users_server_hands_each_page_a_warm_kernel_with_its_own_url(
    synth_run: dict, scheduled: dict, browser, tmp_path: Path
) -> None:
    """The hub's single-user server config (Voilà as a server extension, :mod:`mmmlib.hub.warm_kernels`): pages
    render in kernels started before they were asked for, and each still shows the run its own URL names."""
    log = tmp_path / "server.log"
    runs = [scheduled["results"][0]["run"], str(synth_run["run_dir"])]
    with running_user_server({"MMM_HOME": str(tmp_path)}, log=log, timeout=120) as base:
        for n, run in enumerate(runs, 1):
            deadline = time.time() + 120
            while log.read_text().count("Warm kernel") < n:  # the pool filled (again, after the first page)
                assert time.time() < deadline, log.read_text()[-2000:]
                time.sleep(0.5)
            page = _open(browser, f"{base}/voila/render/executive.ipynb?run={run}", f"dashboard_warm_{n}.png")
            wanted = json.loads((Path(run) / "summary.json").read_text())["run"]["id"]
            assert wanted in page.inner_text("body")
            page.close()
            assert log.read_text().count("Using warm kernel") == n
