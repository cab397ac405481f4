"""The executive dashboard: health first, headline numbers with intervals, recommendations, two charts."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w

from mmmlib.insights import money
from mmmlib.widgets.charts import contribution_waterfall, contributions_over_time, interval_bars
from mmmlib.widgets.source import load_or_message
from mmmlib.widgets.style import health_badge, kpi_card, run_title


def kpi_cards(summary: dict[str, Any]) -> w.HBox:
    t = summary["totals"]
    share, roas = t["media_share"], t["blended_roas"]
    channels = summary["channels"]
    best = max(channels, key=lambda c: c["roas"]["mean"])
    worst = min(channels, key=lambda c: c["roas"]["mean"])
    p = summary["period"]
    cards = [
        kpi_card(f"Total {summary['target']}", money(t["kpi"]), f"{p['start']} → {p['end']}"),
        kpi_card(
            "Media-driven share", f"{share['mean']:.0%}", f"94% HDI {share['hdi_low']:.0%}–{share['hdi_high']:.0%}"
        ),
        kpi_card("Blended ROAS", f"{roas['mean']:.2f}", f"94% HDI {roas['hdi_low']:.2f}–{roas['hdi_high']:.2f}"),
        kpi_card(
            "Best channel (ROAS)",
            best["label"],
            f"{best['roas']['mean']:.2f} [{best['roas']['hdi_low']:.2f}, {best['roas']['hdi_high']:.2f}]",
        ),
        kpi_card(
            "Worst channel (ROAS)",
            worst["label"],
            f"{worst['roas']['mean']:.2f} [{worst['roas']['hdi_low']:.2f}, {worst['roas']['hdi_high']:.2f}]",
        ),
    ]
    return w.HBox(cards, layout=w.Layout(flex_flow="row wrap", gap="10px"))


def recommendation_list(summary: dict[str, Any]) -> w.HTML:
    items = "".join(f"<li style='margin:4px 0'>{html.escape(s)}</li>" for s in summary["recommendations"])
    return w.HTML(f"<h3>Recommendations</h3><ul class='mmm-recs'>{items}</ul>")


def executive_view(run: Path | None) -> w.Widget:
    """The executive dashboard for one run, or a clear message when there is nothing to show."""
    summary, problem = load_or_message(run)
    if summary is None:
        return problem
    title = run_title("Marketing mix: what media returned", summary)
    return w.VBox(
        [
            title,
            health_badge(summary),
            kpi_cards(summary),
            recommendation_list(summary),
            downloads(summary),
            w.HBox(
                [
                    interval_bars(summary, "share", "Share of media contribution", ".0%"),
                    interval_bars(summary, "roas", "ROAS (return per unit of spend)"),
                ],
                layout=w.Layout(width="100%"),
            ),
            contribution_waterfall(summary),
            contributions_over_time(summary),
        ],
        layout=w.Layout(gap="12px", padding="8px"),
    )


def downloads(summary: dict[str, Any]) -> w.HTML:
    """The recommendations and channel table as files to take away (TXT, CSV, JSON), embedded in the page."""
    import base64
    import json

    from mmmlib.reports import csv_report, json_report, text_report

    files = [
        ("report.txt", "text/plain", text_report(summary)),
        ("channels.csv", "text/csv", csv_report(summary)),
        ("summary.json", "application/json", json.dumps(json_report(summary), indent=1)),
    ]
    links = " · ".join(
        f"<a download='{name}' href='data:{mime};base64,{base64.b64encode(text.encode()).decode()}'>{name}</a>"
        for name, mime, text in files
    )
    return w.HTML(f"<div class='mmm-downloads'>Download: {links}</div>")
