"""Reports of a fitted run: TXT/CSV/JSON exports, and an HTML file whose charts draw with no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)


@pytest.mark.parametrize("fmt", ["txt", "csv", "json"])
def test_text_exports(synth_run: dict, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    done = mmm("report", str(synth_run["run_dir"]), "--format", fmt, "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads((synth_run["run_dir"] / "summary.json").read_text())
    text = out.read_text()
    if fmt == "csv":
        table = pd.read_csv(out)
        assert list(table["channel"]) == [c["name"] for c in summary["channels"]]
        assert {"roas_mean", "roas_hdi_low", "roas_hdi_high"} <= set(table.columns)
    elif fmt == "json":
        assert json.loads(text)["recommendations"] == summary["recommendations"]
    else:
        assert summary["recommendations"][0] in text and "Diagnostics" in text


def test_report_of_a_missing_run_is_a_usage_error(tmp_path: Path) -> None:
    done = mmm("report", str(tmp_path))
    assert done.returncode == 2 and "no summary.json" in done.stderr


@pytest.fixture(scope="session")
def html_report(synth_run: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = mmm("report", str(synth_run["run_dir"]), "--format", "html", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_html_report_is_one_self_contained_file(html_report: Path) -> None:
    text = html_report.read_text()
    assert 'src="https://' not in text and "cdn.jsdelivr" not in text and "unpkg.com" not in text
    assert 'define("bqplot",' in text and "application/vnd.jupyter.widget-state+json" in text


def test_html_report_draws_its_charts_offline(html_report: Path) -> None:
    """Open the file in headless Chromium with every network request refused: the bqplot charts must draw."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing (make test installs it)")
        pytest.skip("chromium not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    refused: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1600})

        def route(request_route):
            url = request_route.request.url
            if url.startswith(("file:", "data:", "blob:")):
                request_route.continue_()
            else:
                refused.append(url)
                request_route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.goto(html_report.as_uri())
        page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=60_000)
        page.wait_for_selector(".bqplot path.line", state="attached", timeout=60_000)
        lines = page.locator(".bqplot path.line").count()
        page.screenshot(path=str(ARTIFACTS / "offline_report.png"), full_page=True)
        figures = page.locator(".bqplot").count()
        body = page.inner_text("body")
        browser.close()
    assert figures >= 3 and lines >= 6
    assert "Model health" in body and "Recommendations" in body
    assert refused == [], refused  # nothing is fetched from the network
