"""Exports of a run's summary as text, CSV and JSON: what ``mmm report --format txt|csv|json`` writes and what the
dashboards offer as downloads (no widgets, no browser, no notebook execution)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mmmlib.csvsafe import csv_text
from mmmlib.identification import is_identified
from mmmlib.runs import json_text
from mmmlib.tables import UNIDENTIFIED_NOTE, any_geo_unidentified, channel_table, diagnostics_table, geo_table
from mmmlib.wording import imported_from, interval_label

FORMATS = ("txt", "csv", "json")


def text_report(summary: dict[str, Any]) -> str:
    lines = [
        f"Marketing mix report — run {summary['run']['id']} "
        f"({summary['period']['start']} to {summary['period']['end']})",
        f"Status: {summary['status'].upper()}",
        *([f"Imported from {imported_from(summary)} (not refitted here)"] if imported_from(summary) else []),
        "",
    ]
    lines += [f"- {s}" for s in summary["recommendations"]]
    table = channel_table(summary)
    table["identified"] = ["yes" if ok else "NO" for ok in _identified(summary)]
    lines += [
        "",
        "Diagnostics",
        diagnostics_table(summary).to_string(),
        "",
        f"Channels (mean [{interval_label(summary)}])",
    ]
    lines += [table.to_string(), ""]
    if not all(_identified(summary)):
        lines += [
            "identified NO: not identified by this data — the ROAS interval cannot tell a loss from a gain, the",
            "data barely narrowed the prior, or the ROAS's sd exceeds half its mean; hold the channel's budget and",
            "run a lift test.",
            "",
        ]
    geos = geo_table(summary)
    if len(geos):
        with pd.option_context("display.width", 250, "display.max_columns", None):
            lines += [f"By geo, largest KPI first (ROAS mean [{interval_label(summary)}])", geos.to_string()]
        lines += [UNIDENTIFIED_NOTE, ""] if any_geo_unidentified(summary) else [""]
    return "\n".join(lines)


def _identified(summary: dict[str, Any]) -> list[bool]:
    """Each channel's ``identified`` flag (old runs: the interval rule on their stored ROAS HDI)."""
    breakeven = summary.get("breakeven_roas") or 1.0
    return [is_identified(ch, breakeven) for ch in summary["channels"]]


def csv_report(summary: dict[str, Any]) -> str:
    """The channel table as CSV (``mmm report --format csv``, the dashboard's channels.csv), formulas neutralised."""
    metrics = ["contribution", "share", "roas", "mroas"]
    header = ["channel", "label", "spend"] + [f"{m}_{k}" for m in metrics for k in ("mean", "hdi_low", "hdi_high")]
    header.append("identified")
    rows = [
        [ch["name"], ch["label"], ch["spend"]]
        + [ch[m][k] for m in metrics for k in ("mean", "hdi_low", "hdi_high")]
        + [ok]
        for ch, ok in zip(summary["channels"], _identified(summary), strict=True)
    ]
    return csv_text([header, *rows])


def json_report(summary: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "schema_version",
        "status",
        "status_reasons",
        "hdi_prob",
        "target",
        "run",
        "period",
        "totals",
        "channels",
        "diagnostics",
        "model",
        "recommendations",
    )
    out = {k: summary[k] for k in keys if k in summary}
    out["channels"] = [
        {**ch, "identified": ok} for ch, ok in zip(summary["channels"], _identified(summary), strict=True)
    ]
    return out


def export(summary: dict[str, Any], fmt: str) -> str:
    """One export of ``summary`` as text (``fmt`` one of :data:`FORMATS`)."""
    if fmt == "json":
        return json_text(json_report(summary))
    return {"txt": text_report, "csv": csv_report}[fmt](summary)
