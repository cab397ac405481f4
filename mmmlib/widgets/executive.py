"""The executive dashboard: health first, headline numbers with intervals, recommendations, two charts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ipywidgets as w

from mmmlib import markup, runs
from mmmlib.errors import MMMError
from mmmlib.identification import unidentified
from mmmlib.summary import NATIONAL
from mmmlib.widgets.charts import (
    contribution_waterfall,
    contributions_over_time,
    interval_bars,
    unidentified_legend,
)
from mmmlib.widgets.geo import geo_panel, geo_picker
from mmmlib.widgets.source import load_or_message
from mmmlib.widgets.style import health_badge, kpi_card, run_title
from mmmlib.wording import money, span


def kpi_cards(summary: dict[str, Any]) -> w.HBox:
    t = summary["totals"]
    share, roas = t["media_share"], t["blended_roas"]
    hidden = set(unidentified(summary))
    channels = [c for c in summary["channels"] if c["name"] not in hidden]  # only returns the data can tell
    p = summary["period"]
    cards = [
        kpi_card(f"Total {summary['target']}", money(t["kpi"]), f"{p['start']} → {p['end']}"),
        kpi_card("Media-driven share", f"{share['mean']:.0%}", span(share, "{:.0%}", summary)),
        kpi_card("Blended ROAS", f"{roas['mean']:.2f}", span(roas, "{:.2f}", summary)),
    ]
    if channels:
        best = max(channels, key=lambda c: c["roas"]["mean"])
        worst = min(channels, key=lambda c: c["roas"]["mean"])
        for title, ch in (("Best identified channel (ROAS)", best), ("Worst identified channel (ROAS)", worst)):
            r = ch["roas"]
            cards.append(kpi_card(title, ch["label"], f"{r['mean']:.2f} [{r['hdi_low']:.2f}, {r['hdi_high']:.2f}]"))
    else:
        cards.append(kpi_card("Best channel (ROAS)", "none identified", "this data cannot tell any channel's return"))
    return w.HBox(cards, layout=w.Layout(flex_flow="row wrap", gap="10px"))


def recommendation_list(summary: dict[str, Any]) -> w.HTML:
    items = "".join(f"<li style='margin:4px 0'>{markup.text(s)}</li>" for s in summary["recommendations"])
    return w.HTML(f"<h3>Recommendations</h3><ul class='mmm-recs'>{items}</ul>")


def executive_view(run: Path | None) -> w.Widget:
    """The executive dashboard for one run, or a clear message when there is nothing to show; a geo run gets a
    geo picker (national first) and, nationally, the geo table."""
    summary, problem = load_or_message(run)
    if summary is None:
        return problem
    return geo_picker(summary, lambda s, geo: _page(s, run, geo))


def _page(summary: dict[str, Any], run: Path | None, geo: str) -> w.Widget:
    bars = w.HBox(
        [
            interval_bars(summary, "share", "Share of media contribution", ".0%"),
            interval_bars(summary, "roas", "ROAS (return per unit of spend)", mark_unidentified=True),
        ],
        layout=w.Layout(width="100%"),
    )
    head = [run_title(summary), health_badge(summary), kpi_cards(summary)]
    if geo != NATIONAL:
        note = w.HTML(
            f"<p class='mmm-geo-note'>{markup.text(geo)}: this geo's channels, returns and totals; "
            "recommendations and the budget are national.</p>"
        )
        return w.VBox([*head, note, bars, unidentified_legend(summary)], layout=w.Layout(gap="12px", padding="8px"))
    parts = [
        *head,
        recommendation_list(summary),
        downloads(summary, run),
        bars,
        unidentified_legend(summary),
        contribution_waterfall(summary),
        contributions_over_time(summary),
    ]
    panel = geo_panel(summary)
    if panel is not None:
        parts.append(panel)
    return w.VBox(parts, layout=w.Layout(gap="12px", padding="8px"))


def html_report_link(run: Path | None) -> str:
    """The run's offline HTML report (11 MB with its charts' JavaScript, so served, not embedded).

    Under the hub the user's server serves it (``mmm/run-report``, or the client's latest published report);
    outside it, the page names the file. Folder names are the writers' to choose: a run whose name breaks
    ``runs.RUN_ID`` has no route to link to, and every name is escaped.
    """
    if run is None:
        return ""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    client, run_id = run.parent.parent.name, run.name
    report = runs.RunDir(run).report_file("html")
    if prefix and runs.RUN_ID.fullmatch(run_id) and report.exists():
        href = f"{prefix}mmm/run-report/{markup.path_part(client)}/{markup.path_part(run_id)}"
        return markup.link(href, report.name, download=f"{client}-{run_id}.html")
    if prefix and runs.latest_report_path(client).exists():
        href = f"{prefix}mmm/report/{markup.path_part(client)}"
        return markup.link(href, f"latest published {report.name}", download=f"{client}-report.html")
    if report.exists():
        return f"{report.name} at <code>{markup.text(report)}</code>"
    return ""


def downloads(summary: dict[str, Any], run: Path | None = None) -> w.HTML:
    """The recommendations and channel table as files to take away (TXT, CSV, JSON, and the HTML report)."""
    import base64

    from mmmlib.exports import export

    files = [
        ("report.txt", "text/plain", export(summary, "txt")),
        ("channels.csv", "text/csv", export(summary, "csv")),
        (runs.SUMMARY, "application/json", export(summary, "json")),
    ]
    links = " · ".join(
        markup.link(f"data:{mime};base64,{base64.b64encode(text.encode()).decode()}", name, download=name)
        for name, mime, text in files
    )
    try:
        report = html_report_link(run)
    except (OSError, MMMError):
        report = ""
    links = f"{report} · {links}" if report else links
    return w.HTML(f"<div class='mmm-downloads'>Download: {links}</div>")
