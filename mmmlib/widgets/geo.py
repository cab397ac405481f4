"""Geo runs in the dashboards: a geo picker over any view, the geo table and small multiples of the largest geos.

A view written for a national summary draws a geo from :func:`mmmlib.summary.geo_summary`; nothing here computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from mmmlib.markup import text as esc
from mmmlib.summary import NATIONAL, geo_names, geo_summary
from mmmlib.tables import UNIDENTIFIED_NOTE, any_geo_unidentified, geo_table
from mmmlib.widgets.charts import interval_bars
from mmmlib.wording import interval_label

MULTIPLES = 6  # largest geos drawn as small multiples


def geo_picker(summary: dict[str, Any], render: Callable[[dict[str, Any], str], w.Widget]) -> w.Widget:
    """``render(summary, geo)`` for the national run, with a picker of its geos when it has any (national first)."""
    names = geo_names(summary)
    if not names:
        return render(summary, NATIONAL)
    picker = w.Dropdown(options=[NATIONAL, *names], value=NATIONAL, description="Geo")
    picker.add_class("mmm-geo-picker")
    body = w.VBox([render(summary, NATIONAL)])

    def show(change: dict[str, Any]) -> None:
        body.children = [render(geo_summary(summary, change["new"]), change["new"])]

    picker.observe(show, names="value")
    return w.VBox([picker, body])


def geo_panel(summary: dict[str, Any]) -> w.Widget | None:
    """The geo table (every geo, ROAS per channel with its interval) and ROAS bars of the largest geos."""
    names = geo_names(summary)
    if not names:
        return None
    table = geo_table(summary)
    html = table.to_html(classes="mmm-geo-table", border=0, escape=True)
    head = w.HTML(
        f"<h3>By geo ({len(names)} geos, largest KPI first)</h3>"
        f"<p>ROAS per channel in each geo, mean [{interval_label(summary)}]. Geos with little data lean on the "
        "other geos (the model pools them), so their intervals stay honest rather than wild.</p>"
        f"<div style='max-height:420px;overflow:auto'>{html}</div>"
        + (
            f"<p class='mmm-unidentified' style='color:#666;font-size:13px'>{esc(UNIDENTIFIED_NOTE)}</p>"
            if any_geo_unidentified(summary)
            else ""
        )
    )
    figures = []
    for name in names[:MULTIPLES]:
        fig = interval_bars(geo_summary(summary, name), "roas", f"{name}: ROAS", mark_unidentified=True)
        fig.layout = w.Layout(width="100%", height="220px")
        figures.append(fig)
    grid = w.GridBox(figures, layout=w.Layout(grid_template_columns="repeat(3, 1fr)", width="100%"))
    return w.VBox([head, grid], layout=w.Layout(gap="8px"))
