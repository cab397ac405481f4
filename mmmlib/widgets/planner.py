"""The budget planner: response curves, ROAS and marginal ROAS, a total budget and per-channel bounds that
re-optimise as they change (numpy on stored draws, no pymc), the outcome against today, and the frontier."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from mmmlib.errors import MMMError
from mmmlib.identification import unidentified
from mmmlib.markup import text as esc
from mmmlib.optimize import Curves, allocate, frontier, hold_unidentified, load_curves
from mmmlib.policy import REALLOCATION_LIMIT_PCT
from mmmlib.widgets.charts import (
    allocation_bars,
    frontier_chart,
    interval_bars,
    response_curves,
    unidentified_legend,
)
from mmmlib.widgets.geo import geo_picker
from mmmlib.widgets.source import load_or_message
from mmmlib.widgets.style import health_badge, message, run_title
from mmmlib.wording import interval_label, money, span


class BudgetPlanner:
    """State (budget, bounds) lives here; widgets observe it and the charts redraw in place."""

    def __init__(self, summary: dict[str, Any], curves: Curves) -> None:
        self.summary = summary
        self.curves = curves
        self.labels = {c["name"]: c["label"] for c in summary["channels"]}
        today = float(curves.current.sum())
        self.budget = w.FloatText(
            value=round(today, 2),
            description="Budget / period",
            step=1000,
            layout=w.Layout(width="260px"),
            style={"description_width": "110px"},
        )
        self.bounds: dict[str, tuple[w.FloatText, w.FloatText]] = {}
        # channels the data do not identify start held at today's spend (min = max); widening them is the user's call
        self.held = hold_unidentified(curves.channels, unidentified(summary), [])[1]
        rows = [w.HTML("<b>Channel</b>"), w.HTML("<b>today</b>"), w.HTML("<b>min</b>"), w.HTML("<b>max</b>")]
        for name, now in zip(curves.channels, curves.current, strict=True):
            pct = 0 if name in self.held else REALLOCATION_LIMIT_PCT
            low = w.FloatText(value=round(now * (1 - pct / 100), 2), layout=w.Layout(width="120px"))
            high = w.FloatText(value=round(now * (1 + pct / 100), 2), layout=w.Layout(width="120px"))
            self.bounds[name] = (low, high)
            mark = " <span style='color:#8a4b00'>(not identified: held)</span>" if name in self.held else ""
            rows += [w.HTML(esc(self.labels[name]) + mark), w.HTML(f"{now:,.0f}"), low, high]
        self.bounds_grid = w.GridBox(rows, layout=w.Layout(grid_template_columns="220px 100px 130px 130px"))
        self.held_note = w.HTML(self._held_note())
        self.outcome = w.HTML()
        self.outcome.add_class("mmm-outcome")
        self.timing = w.HTML()
        self.result: dict[str, Any] = {}
        self.bars = allocation_bars(summary, self._allocate())
        self._show()
        self.budget.observe(self._changed, "value")
        for low, high in self.bounds.values():
            low.observe(self._changed, "value")
            high.observe(self._changed, "value")

    def _held_note(self) -> str:
        """Why some channels start with min = max: a sentence, or nothing when every channel is identified."""
        if not self.held:
            return ""
        names = ", ".join(self.labels[n] for n in self.held)
        return (
            "<div class='mmm-held' style='color:#8a4b00'>"
            f"{esc(names)}: not identified by this data, so min and max start at today's spend (held). Widen them "
            "to move these channels; the plan then rests on a return the data cannot tell — a lift test can.</div>"
        )

    def _specs(self) -> list[str]:
        return [f"{name}={low.value}:{high.value}" for name, (low, high) in self.bounds.items()]

    def _allocate(self) -> dict[str, Any]:
        start = time.perf_counter()
        self.result = allocate(self.curves, float(self.budget.value), self._specs()).to_dict()
        self.seconds = time.perf_counter() - start
        return self.result

    def _changed(self, _: Any = None) -> None:
        try:
            result = self._allocate()
        except MMMError as exc:
            self.outcome.value = f"<div class='mmm-msg mmm-error' style='color:#8b1a1a'>{esc(exc)}</div>"
            return
        self.bars.marks[0].y = [c["optimal_spend"] for c in result["channels"]]
        self._show()

    def _show(self) -> None:
        r = self.result
        e, c, g = r["expected_total_contribution"], r["current_total_contribution"], r["expected_gain"]
        unit = self.summary.get("target", "KPI")
        self.outcome.value = (
            "<div style='font-size:15px'>"
            f"Expected {esc(unit)} from media per period with this split: <b>{money(e['mean'])}</b> "
            f"({span(e, money, self.summary)}); today's split: {money(c['mean'])} "
            f"({money(c['hdi_low'])}–{money(c['hdi_high'])}). Difference: <b>{g['mean']:+,.0f}</b> "
            f"({span(g, '{:+,.0f}', self.summary, ' to ')}).</div>"
        )
        self.timing.value = f"<span style='color:#999;font-size:11px'>optimised in {self.seconds * 1000:.0f} ms</span>"

    def view(self) -> w.Widget:
        points = self.summary.get("scenarios")  # a national run's, computed with the run (the same bounds)
        if points is None:  # a geo's page, or a run written before runs kept them
            points = frontier(self.curves, bounds=[f"{name}=fixed" for name in self.held])
        return w.VBox(
            [
                run_title(self.summary),
                health_badge(self.summary),
                w.HTML(
                    "<h3>Response curves</h3><div style='color:#666'>Expected contribution per period at steady "
                    f"spend (carry-over included); band: {interval_label(self.summary)}; dot: today; dashed: where "
                    "the next unit of spend stops paying back.</div>"
                ),
                response_curves(self.summary),
                w.HBox(
                    [
                        interval_bars(self.summary, "roas", "ROAS", mark_unidentified=True),
                        interval_bars(self.summary, "mroas", "Marginal ROAS at today's spend", mark_unidentified=True),
                    ],
                    layout=w.Layout(width="100%"),
                ),
                unidentified_legend(self.summary),
                w.HTML("<h3>Plan a budget</h3>"),
                self.budget,
                self.held_note,
                self.bounds_grid,
                self.outcome,
                self.timing,
                self.bars,
                frontier_chart(points, float(self.curves.current.sum())),
            ],
            layout=w.Layout(gap="10px", padding="8px"),
        )


def planner_view(run: Path | None) -> w.Widget:
    summary, problem = load_or_message(run)
    if summary is None:
        return problem
    try:
        curves = load_curves(run)
    except MMMError as exc:
        return message(str(exc), "error")
    return geo_picker(summary, lambda s, geo: BudgetPlanner(s, curves.geo(geo)).view())
