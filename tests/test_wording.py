"""Wording in one place: a run fitted with ``hdi_prob: 0.8`` says "80% HDI" in every view and report, never 94 %.

No fitting: the hand-built posterior of ``test_identification`` goes through the real ``build_summary``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mmmlib import analysis
from mmmlib.config import ModelConfig
from mmmlib.errors import InputError
from mmmlib.summary import build_summary
from mmmlib.wording import bracketed, health_sentence, interval_label, labelled, money, span
from tests.test_identification import hand_posterior

NINETY_FOUR = re.compile(r"94\s?%")


def _summary(hdi_prob: float) -> dict:
    tree = hand_posterior()
    config = ModelConfig(date_column="week", target_column="revenue", channel_columns=["c0", "c1"], hdi_prob=hdi_prob)
    post = analysis.Posterior.from_idata(tree)
    frame = pd.DataFrame({"week": post.dates, "revenue": post.target, "c0": post.spend[:, 0], "c1": post.spend[:, 1]})
    run = {"id": f"hdi{hdi_prob}", "created_at": "2026-12-01T00:00:00"}
    return build_summary(tree, config, frame, run=run, mode="quick")


@pytest.fixture(scope="module")
def eighty_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "eighty"
    run.mkdir()
    hand_posterior().to_netcdf(run / "posterior.nc")
    (run / "summary.json").write_text(json.dumps(_summary(0.8)))
    return run


def _texts(widget: object) -> list[str]:
    """Every string a widget tree shows: HTML values, figure titles, axis labels, children's texts."""
    out = []
    for attr in ("value", "title", "description", "label"):
        value = getattr(widget, attr, None)
        if isinstance(value, str):
            out.append(value)
    for child in [*getattr(widget, "children", ()), *getattr(widget, "axes", ()), *getattr(widget, "marks", ())]:
        out += _texts(child)
    return out


def test_labels_follow_the_probability() -> None:
    assert interval_label({"hdi_prob": 0.8}) == "80% HDI"
    assert interval_label(0.895) == "89.5% HDI"
    assert interval_label(None) == "94% HDI"  # runs from before the setting
    i = {"mean": 1234.0, "hdi_low": 1000.0, "hdi_high": 1500.5}
    assert labelled(i, money, {"hdi_prob": 0.9}) == "1.2k (90% HDI 1.0k–1.5k)"
    assert span(i, "{:,.0f}", 0.5, " to ") == "50% HDI 1,000 to 1,500"
    assert bracketed(i, "{:.0f}") == "1234 [1000, 1500]" and bracketed(None) == "—"


def test_the_intervals_are_computed_at_the_run_probability() -> None:
    wide, narrow = _summary(0.94), _summary(0.8)
    assert narrow["hdi_prob"] == 0.8 and wide["hdi_prob"] == 0.94
    for a, b in zip(wide["channels"], narrow["channels"], strict=True):
        assert a["roas"]["mean"] == pytest.approx(b["roas"]["mean"])
        assert b["roas"]["hdi_high"] - b["roas"]["hdi_low"] < a["roas"]["hdi_high"] - a["roas"]["hdi_low"]
    gain_w, gain_n = wide["reallocation"]["expected_gain"], narrow["reallocation"]["expected_gain"]
    assert gain_n["hdi_high"] - gain_n["hdi_low"] < gain_w["hdi_high"] - gain_w["hdi_low"]


def test_hdi_prob_is_checked() -> None:
    with pytest.raises(InputError, match="hdi_prob"):
        ModelConfig(date_column="w", target_column="y", channel_columns=["a"], hdi_prob=94)


def test_the_health_sentence_is_said_once_and_first(eighty_run: Path) -> None:
    summary = json.loads((eighty_run / "summary.json").read_text())
    assert summary["recommendations"][0].startswith(health_sentence(summary).rstrip("."))
    bad = {**summary, "status": "warning", "status_reasons": ["min bulk ESS 120 is below 200"]}
    assert health_sentence(bad) == "Model health: NOT RELIABLE — min bulk ESS 120 is below 200."


def test_txt_report_and_executive_dashboard_say_80_never_94(eighty_run: Path) -> None:
    from mmmlib.exports import text_report
    from mmmlib.widgets.executive import executive_view
    from mmmlib.widgets.planner import planner_view
    from mmmlib.widgets.quality import quality_view

    summary = json.loads((eighty_run / "summary.json").read_text())
    txt = text_report(summary)
    assert "80% HDI" in txt and not NINETY_FOUR.search(txt), txt
    for view in (executive_view(eighty_run), quality_view(eighty_run), planner_view(eighty_run)):
        shown = "\n".join(_texts(view))
        assert "80% HDI" in shown and not NINETY_FOUR.search(shown), shown


@pytest.mark.slow
def test_html_report_says_80_never_94(eighty_run: Path, tmp_path: Path) -> None:
    """The executed executive dashboard (the HTML report) with every output it rendered."""
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "mmmlib", "report", str(eighty_run), "--format", "html", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "80% HDI" in html
    assert not NINETY_FOUR.search(html), NINETY_FOUR.findall(html)[:5]
