"""What a client's writer puts in a run cannot script other users' pages; executives open published runs only.

A writer chooses run folder names and everything in a run's ``summary.json`` (labels come from the config's
``labels:``, the recommendations quote them). The issue's attack named a run folder
``q' onmouseover='…' style='position:fixed;inset:0' x='``, made it the newest good run, and an executive who opened
the executive summary ran the writer's code. Here a copy of the shared fitted run gets that folder name and
hostile labels, KPI name, run id and period, and every page and the HTML report are opened in headless Chromium,
served the way a hub user's server serves them (a Jupyter server with the gallery and Voilà extensions).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from mmmlib.insights import recommendations
from mmmlib.voila_server import DASHBOARDS, free_port
from tests.conftest import ARTIFACTS, CHROMIUM
from tests.hubtools import wait_until_up

pytestmark = pytest.mark.server  # a Jupyter server with Voilà, in Chromium: not in make test-fast

HOSTILE_RUN = "q' onmouseover='window.__pwned=1' style='position:fixed;inset:0' x='"
LABELS = [
    "<img src=x onerror=\"window.__pwned='label'\">",
    "TV' onmouseover='window.__pwned=2' x='",
    "</script><script>window.__pwned='script'</script>\"><svg onload=\"window.__pwned='svg'\">",
]
TARGET = "sales<img src=x onerror=\"window.__pwned='target'\">"
RUN_ID = 'r1"><img src=x onerror="window.__pwned=\'run-id\'">'
PERIOD_END = "2026-01-04<img src=x onerror=\"window.__pwned='period'\">"
INJECTED = "img[src='x'], svg[onload], [onmouseover], [onerror], [onfocus]"


def _poison(run: Path, created: str, status: str = "ok") -> None:
    """Rewrite the run's summary as a writer could: hostile labels, KPI name, run id and period end."""
    summary = json.loads((run / "summary.json").read_text())
    for channel, label in zip(summary["channels"], LABELS, strict=False):
        channel["label"] = label
    summary["target"] = TARGET
    summary["run"].update(id=RUN_ID, created_at=created)
    summary["period"]["end"] = PERIOD_END
    summary["status"] = status
    if status != "ok":
        summary["status_reasons"] = ["R-hat 1.2 <img src=x onerror=\"window.__pwned='reason'\">"]
    summary["recommendations"] = recommendations(summary)  # the sentences quote the labels
    (run / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def store(synth_run: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Client ``acme``: ``r1`` (ok), the hostile folder (ok, newest good), ``warn`` (warning, newest of all) and
    ``accepted`` (warning, accepted); each has a ``report.html``, the hostile one the real HTML report."""
    root = tmp_path_factory.mktemp("hostile")
    runs = root / "clients" / "acme" / "runs"
    made = {"r1": ("2026-05-01T00:00:00", "ok"), HOSTILE_RUN: ("2026-06-01T00:00:00", "ok")}
    made |= {"warn": ("2026-07-01T00:00:00", "warning"), "accepted": ("2026-04-01T00:00:00", "warning")}
    for name, (created, status) in made.items():
        shutil.copytree(synth_run["run_dir"], runs / name)
        _poison(runs / name, created, status)
        (runs / name / "report.html").write_text(f"<html><body>run report of {name}</body></html>")
    (runs / "accepted" / "ACCEPTED").write_text("{}\n")
    report = subprocess.run(
        [sys.executable, "-m", "mmmlib", "report", str(runs / HOSTILE_RUN), "--format", "html"],
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    return root


@contextmanager
def user_server(store: Path, role: str, log: Path) -> Iterator[str]:
    """A Jupyter server with the gallery and Voilà, as the hub starts for a user of ``acme`` with ``role``.

    Yields its base URL with a ``?token=`` that logs a browser in.
    """
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (make test installs it)")
        pytest.skip("chromium not installed")
    port, token = free_port(), secrets.token_hex(16)
    config = log.with_suffix(".py")
    config.write_text(
        'c.ServerApp.jpserver_extensions = {"mmmlib.hub.gallery": True, "voila": True, "jupyterlab": False, '
        '"jupyter_lsp": False, "jupyter_server_terminals": False, "notebook_shim": False, "notebook": False}\n'
        "c.VoilaConfiguration.show_tracebacks = False\n"
    )
    env = {
        **os.environ,
        "MMM_HOME": str(store),
        "MMM_CLIENTS": "acme",
        "MMM_ROLE": role,
        "MMM_DASHBOARDS": "executive,budget_planner,model_quality",
        "JUPYTERHUB_SERVICE_PREFIX": "/",  # links as under the hub (the report route, the way back to the gallery)
    }
    env["JUPYTER_RUNTIME_DIR"] = str(log.parent / "runtime")  # its cookie secret and connection files
    env.pop("MMM_RUN", None)
    args = [f"--config={config}", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}"]
    args += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={DASHBOARDS}", "--allow-root"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_up(f"{base}/api/status?token={token}", proc, log, "jupyter server", 60)
        yield f"{base}|{token}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def analyst(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with user_server(store, "analysts", tmp_path_factory.mktemp("analyst") / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def executive(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with user_server(store, "executives", tmp_path_factory.mktemp("executive") / "server.log") as server:
        yield server


def _page(browser, server: str, path: str, wait_for: str = ".bqplot rect.bar"):
    """Log in with the server's token, open ``path``, wait for ``wait_for``."""
    base, token = server.split("|")
    page = browser.new_page(viewport={"width": 1400, "height": 3000})
    page.goto(f"{base}/api/status?token={token}")  # sets the login cookie
    page.goto(base + path, timeout=120_000)
    page.wait_for_selector(wait_for, state="attached", timeout=120_000)
    return page


def _assert_inert(page, shot: str) -> str:
    """No hostile value became markup, and none ran: hover everything (the attack fired on mouse-over)."""
    for x in range(50, 1400, 150):
        for y in range(50, 3000, 250):
            page.mouse.move(x, y)
    for link in page.locator("a").all():
        if link.is_visible():
            link.hover(force=True)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    assert page.evaluate("window.__pwned") is None
    assert page.locator(INJECTED).count() == 0
    return page.inner_text("body")


def _run_url(store: Path, view: str, run: str) -> str:
    return f"/voila/render/{view}.ipynb?run={quote(str(store / 'clients' / 'acme' / 'runs' / run))}"


@pytest.mark.parametrize("view", ["executive", "budget_planner", "model_quality"])
def test_hostile_folder_name_and_labels_stay_text_in_every_dashboard(
    store: Path, analyst: str, browser, view: str
) -> None:
    page = _page(browser, analyst, _run_url(store, view, HOSTILE_RUN))
    body = _assert_inert(page, f"hostile_{view}.png")
    assert RUN_ID in body and PERIOD_END in body  # shown literally, as the writer typed them
    if view == "budget_planner":
        assert all(label in body for label in LABELS)  # the bounds table names every channel
    if view == "executive":
        assert TARGET in body and sum(label in body for label in LABELS) >= 2  # best/worst cards, advice
        # no route serves a folder with this name: the page names the file, literally, instead of linking it
        assert f"report.html at {store / 'clients' / 'acme' / 'runs' / HOSTILE_RUN / 'report.html'}" in body
        assert page.locator("a[href*='run-report']").count() == 0
    page.close()


def test_the_latest_run_of_a_client_links_its_report_with_encoded_attributes(
    store: Path, analyst: str, browser
) -> None:
    page = _page(browser, analyst, "/voila/render/executive.ipynb?client=acme")
    _assert_inert(page, "hostile_executive_latest.png")
    link = page.locator("a[href='/mmm/run-report/acme/r1']")  # the hostile folder is never the latest run
    assert link.count() == 1 and link.get_attribute("download") == "acme-r1.html"
    page.close()


def test_the_html_report_of_a_hostile_run_runs_no_script(store: Path, browser) -> None:
    report = store / "clients" / "acme" / "runs" / HOSTILE_RUN / "report.html"
    page = browser.new_page(viewport={"width": 1400, "height": 3000})
    page.route("http*://**", lambda route: route.abort())  # offline, as in the report's own test
    page.goto(report.as_uri())
    page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=60_000)
    body = _assert_inert(page, "hostile_report.png")
    assert RUN_ID in body and TARGET in body and PERIOD_END in body
    page.close()


def test_the_gallery_shows_hostile_values_as_text(store: Path, executive: str, browser) -> None:
    page = _page(browser, executive, "/mmm/gallery", wait_for="section")
    body = _assert_inert(page, "hostile_gallery.png")
    assert f"Latest run {RUN_ID}" in body
    hrefs = [a.get_attribute("href") for a in page.locator("a.card").all()]
    assert {f"/voila/render/{d}.ipynb?client=acme" for d in ("executive", "budget_planner")} <= set(hrefs)
    page.close()


def _get(server: str, path: str) -> requests.Response:
    base, token = server.split("|")
    return requests.get(base + path, headers={"Authorization": f"token {token}"}, timeout=60)


def test_executives_get_only_published_runs_reports(executive: str, analyst: str) -> None:
    for run in ("r1", "accepted"):
        r = _get(executive, f"/mmm/run-report/acme/{run}")
        assert r.status_code == 200 and f"run report of {run}" in r.text
    refused = _get(executive, "/mmm/run-report/acme/warn")
    assert refused.status_code == 403 and "not published to executives" in refused.text
    assert "run report of warn" not in refused.text
    allowed = _get(analyst, "/mmm/run-report/acme/warn")  # analysts review warning runs
    assert allowed.status_code == 200 and "run report of warn" in allowed.text
    assert _get(executive, "/mmm/run-report/acme/missing").status_code == 404
    assert _get(executive, "/mmm/run-report/acme/" + quote(HOSTILE_RUN, safe="")).status_code == 404


def test_executives_are_refused_a_warning_run_by_url_in_the_dashboards(
    store: Path, executive: str, analyst: str, browser
) -> None:
    page = _page(browser, executive, _run_url(store, "executive", "warn"), wait_for=".mmm-msg")
    body = _assert_inert(page, "executive_refused_warning.png")
    assert "not published to executives" in body and page.locator(".bqplot").count() == 0
    page.close()
    page = _page(browser, analyst, _run_url(store, "executive", "warn"))
    assert "NOT RELIABLE" in _assert_inert(page, "analyst_sees_warning.png")
    page.close()


def test_the_dashboards_run_source_refuses_executives_an_unaccepted_warning_run(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmmlib.widgets.source import load_or_message

    runs = store / "clients" / "acme" / "runs"
    monkeypatch.setenv("MMM_HOME", str(store))
    monkeypatch.setenv("MMM_CLIENTS", "acme")
    monkeypatch.setenv("MMM_ROLE", "executives")
    summary, problem = load_or_message(runs / "warn")
    assert summary is None and "not published to executives" in problem.value
    for published in ("r1", "accepted"):
        summary, problem = load_or_message(runs / published)
        assert problem is None and summary["run"]["id"] == RUN_ID
    for role in ("analysts", "managers"):
        monkeypatch.setenv("MMM_ROLE", role)
        summary, problem = load_or_message(runs / "warn")
        assert problem is None and summary["status"] == "warning"
