"""Reports of a fitted run: TXT/CSV/JSON exports, and an HTML file whose charts draw with no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import assert_draws_offline


def mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)


@pytest.mark.parametrize("fmt", ["txt", "csv", "json"])
def test_text_exports(synth_run: dict, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "new" / "folder" / f"report.{fmt}"  # a missing folder is created
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


@pytest.mark.slow
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
    assert_draws_offline(html_report, "offline_report.png")


def test_pdf_report_is_printed_from_the_offline_html(synth_run: dict, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    done = mmm("report", str(synth_run["run_dir"]), "--format", "pdf", "--out", str(out))
    assert done.returncode == 0, done.stderr
    blob = out.read_bytes()
    assert blob.startswith(b"%PDF") and len(blob) > 20_000  # text and vector charts, not a blank page
    assert not list(tmp_path.glob(".*"))  # the intermediate HTML is gone
