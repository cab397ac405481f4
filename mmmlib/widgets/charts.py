"""bqplot charts of a summary: intervals as whiskers or bands, channel colours from ``style``."""

from __future__ import annotations

from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from mmmlib.identification import unidentified
from mmmlib.widgets.style import BASE_COLOURS, channel_colours
from mmmlib.wording import interval_label

NOT_IDENTIFIED = "not identified"  # appended to a channel's label where its return is shown
NOT_IDENTIFIED_LEGEND = (
    "Faded bars marked “not identified”: this data cannot tell the channel's return (its interval holds both half "
    "and twice break-even, the data barely narrowed the prior, or its sd exceeds half its value); hold its budget "
    "and run a lift test."
)


def interval_bars(
    summary: dict[str, Any], metric: str, title: str, fmt: str = ".2f", mark_unidentified: bool = False
) -> bq.Figure:
    """Bars of a channel metric's posterior mean with HDI whiskers; with ``mark_unidentified`` the channels the
    data do not identify are faded and labelled so (see ``NOT_IDENTIFIED_LEGEND``)."""
    channels = summary["channels"]
    hide = set(unidentified(summary)) if mark_unidentified else set()
    labels = [f"{c['label']} ({NOT_IDENTIFIED})" if c["name"] in hide else c["label"] for c in channels]
    colours = channel_colours(summary)
    x = bq.OrdinalScale(domain=labels)
    y = bq.LinearScale(min=0.0)
    bars = bq.Bars(
        x=labels,
        y=[c[metric]["mean"] for c in channels],
        scales={"x": x, "y": y},
        colors=[colours[c["name"]] for c in channels],
        opacities=[0.35 if c["name"] in hide else 1.0 for c in channels],
        tooltip=bq.Tooltip(fields=["x", "y"], formats=["", fmt], labels=["channel", "mean"]),
    )
    whiskers = bq.Lines(
        x=[[lbl, lbl] for lbl in labels],
        y=[[c[metric]["hdi_low"], c[metric]["hdi_high"]] for c in channels],
        scales={"x": x, "y": y},
        colors=["#222"],
        stroke_width=2,
    )
    axes = [bq.Axis(scale=x), bq.Axis(scale=y, orientation="vertical", tick_format=fmt, grid_lines="dashed")]
    return bq.Figure(
        marks=[bars, whiskers],
        axes=axes,
        title=title,
        layout=w.Layout(width="100%", height="320px"),
        fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 20},
    )


def contributions_over_time(summary: dict[str, Any]) -> bq.Figure:
    """Stacked mean contributions per period: the base (baseline, trend, seasonality, controls), then each channel."""
    dec = summary["decomposition"]
    dates = np.array(dec["dates"], dtype="datetime64[ns]")
    series = dec["series"]
    layers: list[tuple[str, np.ndarray, str]] = []
    # one base layer: centred trend and controls swing negative, and stacked negative bands would cross
    base = [np.asarray(v) for k, v in series.items() if not k.startswith("channel:")]
    layers.append(("Base (baseline, trend, seasonality, controls)", np.sum(base, axis=0), BASE_COLOURS["baseline"]))
    colours = channel_colours(summary)
    for ch in summary["channels"]:
        layers.append((ch["label"], np.asarray(series[f"channel:{ch['name']}"]), colours[ch["name"]]))
    x = bq.DateScale()
    y = bq.LinearScale()
    marks = []
    bottom = np.zeros(len(dates))
    for label, values, colour in layers:
        top = bottom + values
        marks.append(
            bq.Lines(
                x=dates,
                y=[bottom.copy(), top.copy()],
                scales={"x": x, "y": y},
                fill="between",
                colors=[colour, colour],
                fill_colors=[colour],
                fill_opacities=[0.85],
                stroke_width=0.5,
                labels=[label, label],
                tooltip=bq.Tooltip(fields=["name"], labels=[label]),
            )
        )
        bottom = top
    marks.append(
        bq.Lines(
            x=dates,
            y=summary["fit"]["actual"],
            scales={"x": x, "y": y},
            colors=["#000"],
            stroke_width=1.5,
            labels=["Actual"],
            display_legend=True,
        )
    )
    axes = [bq.Axis(scale=x, label="period"), bq.Axis(scale=y, orientation="vertical", tick_format=".3s")]
    return bq.Figure(
        marks=marks,
        axes=axes,
        title="Contributions over time (posterior mean) and actual KPI",
        layout=w.Layout(width="100%", height="380px"),
        legend_location="top-left",
    )


def _band(x: Any, low: Any, high: Any, scales: dict, colour: str) -> bq.Lines:
    return bq.Lines(
        x=x,
        y=[low, high],
        scales=scales,
        fill="between",
        colors=[colour, colour],
        fill_colors=[colour],
        fill_opacities=[0.25],
        stroke_width=0,
        opacities=[0, 0],
    )


def response_curves(summary: dict[str, Any]) -> w.GridBox:
    """One small chart per channel: expected contribution per period against spend per period, HDI band,
    today's spend marked, and the spend where marginal ROAS falls to break-even."""
    colours = channel_colours(summary)
    labels = {c["name"]: c["label"] for c in summary["channels"]}
    figures = []
    for curve in summary["response_curves"]:
        x, y = bq.LinearScale(min=0.0), bq.LinearScale(min=0.0)
        scales = {"x": x, "y": y}
        colour = colours[curve["name"]]
        marks = [
            _band(curve["spend"], curve["hdi_low"], curve["hdi_high"], scales, colour),
            bq.Lines(x=curve["spend"], y=curve["mean"], scales=scales, colors=[colour], stroke_width=2),
        ]
        now = curve["current_spend"]
        now_y = float(np.interp(now, curve["spend"], curve["mean"]))
        marks.append(
            bq.Scatter(
                x=[now],
                y=[now_y],
                scales=scales,
                colors=["black"],
                default_size=60,
                tooltip=bq.Tooltip(
                    fields=["x", "y"], formats=[",.0f", ",.0f"], labels=["today's spend", "contribution"]
                ),
            )
        )
        if curve.get("breakeven_spend"):
            be = curve["breakeven_spend"]
            marks.append(
                bq.Lines(x=[be, be], y=[0, max(curve["hdi_high"])], scales=scales, colors=["#999"], line_style="dashed")
            )
        figures.append(
            bq.Figure(
                marks=marks,
                title=labels[curve["name"]],
                axes=[
                    bq.Axis(scale=x, tick_format=".2s", label="spend per period"),
                    bq.Axis(scale=y, orientation="vertical", tick_format=".2s"),
                ],
                layout=w.Layout(width="100%", height="260px"),
                fig_margin={"top": 30, "bottom": 45, "left": 55, "right": 15},
            )
        )
    return w.GridBox(figures, layout=w.Layout(grid_template_columns="repeat(3, 1fr)", width="100%"))


def fit_over_time(summary: dict[str, Any]) -> bq.Figure:
    """Actual KPI against the model's expected KPI with its HDI band (fitted periods)."""
    import numpy as np

    fit = summary["fit"]
    dates = np.array(fit["dates"], dtype="datetime64[ns]")
    x, y = bq.DateScale(), bq.LinearScale()
    scales = {"x": x, "y": y}
    marks = [
        _band(dates, fit["predicted_low"], fit["predicted_high"], scales, "#1f77b4"),
        bq.Lines(
            x=dates, y=fit["predicted"], scales=scales, colors=["#1f77b4"], labels=["predicted"], display_legend=True
        ),
        bq.Lines(
            x=dates,
            y=fit["actual"],
            scales=scales,
            colors=["black"],
            stroke_width=1,
            labels=["actual"],
            display_legend=True,
        ),
    ]
    return bq.Figure(
        marks=marks,
        axes=[bq.Axis(scale=x), bq.Axis(scale=y, orientation="vertical", tick_format=".3s")],
        title=f"Actual vs predicted ({interval_label(summary)} band)",
        layout=w.Layout(width="100%", height="320px"),
    )


def residuals(summary: dict[str, Any]) -> bq.Figure:
    fit = summary["fit"]
    dates = np.array(fit["dates"], dtype="datetime64[ns]")
    resid = np.asarray(fit["actual"]) - np.asarray(fit["predicted"])
    x, y = bq.DateScale(), bq.LinearScale()
    bars = bq.Bars(x=dates, y=resid, scales={"x": x, "y": y}, colors=["#7f7f7f"], padding=0.1)
    return bq.Figure(
        marks=[bars],
        axes=[bq.Axis(scale=x), bq.Axis(scale=y, orientation="vertical", tick_format=".2s")],
        title="Residuals (actual − predicted)",
        layout=w.Layout(width="100%", height="260px"),
    )


def adstock_weights(summary: dict[str, Any]) -> bq.Figure | None:
    weights = summary.get("adstock")
    if not weights:
        return None
    colours = channel_colours(summary)
    x, y = bq.LinearScale(), bq.LinearScale(min=0.0)
    marks = []
    lags_n = len(next(iter(weights.values()))["mean"])
    for ch in summary["channels"]:
        wts = weights[ch["name"]]
        lags = list(range(len(wts["mean"])))
        marks.append(
            bq.Lines(
                x=lags,
                y=wts["mean"],
                scales={"x": x, "y": y},
                colors=[colours[ch["name"]]],
                labels=[ch["label"]],
                display_legend=True,
                marker="circle",
                marker_size=16,
            )
        )
    return bq.Figure(
        marks=marks,
        axes=[
            bq.Axis(scale=x, label="weeks after spend", tick_format="d", tick_values=np.arange(lags_n)),
            bq.Axis(scale=y, orientation="vertical", tick_format=".0%"),
        ],
        title="Carry-over: share of the effect by lag",
        layout=w.Layout(width="100%", height="280px"),
    )


def allocation_bars(summary: dict[str, Any], allocation: dict[str, Any]) -> bq.Figure:
    """The optimal spend per period for each channel (bars) with today's spend marked (black diamonds)."""
    labels = {c["name"]: c["label"] for c in summary["channels"]}
    colours = channel_colours(summary)
    names = [labels[c["name"]] for c in allocation["channels"]]
    x, y = bq.OrdinalScale(domain=names), bq.LinearScale(min=0.0)
    bars = bq.Bars(
        x=names,
        y=[c["optimal_spend"] for c in allocation["channels"]],
        scales={"x": x, "y": y},
        colors=[colours[c["name"]] for c in allocation["channels"]],
        labels=["optimal"],
        tooltip=bq.Tooltip(fields=["x", "y"], formats=["", ",.0f"], labels=["channel", "optimal"]),
    )
    today = bq.Scatter(
        x=names,
        y=[c["current_spend"] for c in allocation["channels"]],
        scales={"x": x, "y": y},
        marker="diamond",
        colors=["black"],
        default_size=90,
        labels=["today"],
        display_legend=True,
        tooltip=bq.Tooltip(fields=["x", "y"], formats=["", ",.0f"], labels=["channel", "today"]),
    )
    return bq.Figure(
        marks=[bars, today],
        axes=[bq.Axis(scale=x), bq.Axis(scale=y, orientation="vertical", tick_format=".2s")],
        title="Spend per period: optimal (bars) vs today (◆)",
        layout=w.Layout(width="100%", height="320px"),
        legend_location="top-right",
    )


def frontier_chart(points: list[dict[str, Any]], today: float) -> bq.Figure:
    """Expected contribution of the best split against total budget, with its HDI band; today marked."""
    budgets = [p["budget"] for p in points]
    x, y = bq.LinearScale(), bq.LinearScale()
    scales = {"x": x, "y": y}
    mean = [p["expected_contribution"]["mean"] for p in points]
    marks = [
        _band(
            budgets,
            [p["expected_contribution"]["hdi_low"] for p in points],
            [p["expected_contribution"]["hdi_high"] for p in points],
            scales,
            "#2ca02c",
        ),
        bq.Lines(
            x=budgets,
            y=mean,
            scales=scales,
            colors=["#2ca02c"],
            marker="circle",
            marker_size=20,
            tooltip=bq.Tooltip(fields=["x", "y"], formats=[",.0f", ",.0f"], labels=["budget", "contribution"]),
        ),
        bq.Lines(
            x=[today, today],
            y=[min(p["expected_contribution"]["hdi_low"] for p in points), max(mean)],
            scales=scales,
            colors=["black"],
            line_style="dashed",
        ),
    ]
    return bq.Figure(
        marks=marks,
        axes=[
            bq.Axis(scale=x, label="total budget per period", tick_format=".3s"),
            bq.Axis(scale=y, orientation="vertical", tick_format=".3s"),
        ],
        title="Efficiency frontier: best split at each budget (dashed: today)",
        layout=w.Layout(width="100%", height="320px"),
    )


def contribution_waterfall(summary: dict[str, Any]) -> bq.Figure:
    """From the base (baseline, trend, seasonality, controls) through each channel to the modelled total."""
    totals = summary["decomposition"]["totals"]
    colours = channel_colours(summary)
    base = sum(v["mean"] for k, v in totals.items() if not k.startswith("channel:"))
    steps = [("Base", base, "#c7c7c7")]
    steps += [(c["label"], totals[f"channel:{c['name']}"]["mean"], colours[c["name"]]) for c in summary["channels"]]
    labels, lows, highs, fills = [], [], [], []
    level = 0.0
    for label, value, colour in steps:
        labels.append(label)
        lows.append(level)
        highs.append(level + value)
        fills.append(colour)
        level += value
    labels.append("Total")
    lows.append(0.0)
    highs.append(level)
    fills.append("#333333")
    x, y = bq.OrdinalScale(domain=labels), bq.LinearScale(min=0.0)
    bars = bq.Bars(
        x=labels,
        y=[highs],
        base=0.0,
        scales={"x": x, "y": y},
        colors=fills,
        tooltip=bq.Tooltip(fields=["x", "y"], formats=["", ",.0f"]),
    )
    covers = bq.Bars(x=labels, y=[lows], scales={"x": x, "y": y}, colors=["white"], opacities=[1.0])
    return bq.Figure(
        marks=[bars, covers],
        axes=[bq.Axis(scale=x), bq.Axis(scale=y, orientation="vertical", tick_format=".3s")],
        title="Where the KPI came from (posterior means over the fitted periods)",
        layout=w.Layout(width="100%", height="320px"),
    )


def roas_distributions(summary: dict[str, Any], draws: dict[str, Any]) -> w.GridBox:
    """Posterior distribution of each channel's ROAS (histogram of draws), break-even marked."""
    colours = channel_colours(summary)
    figures = []
    for ch in summary["channels"]:
        values = np.asarray(draws[ch["name"]], dtype=float)
        counts, edges = np.histogram(values, bins=30)
        centres = 0.5 * (edges[1:] + edges[:-1])
        x, y = bq.LinearScale(), bq.LinearScale(min=0.0)
        marks = [bq.Bars(x=centres, y=counts, scales={"x": x, "y": y}, colors=[colours[ch["name"]]], padding=0.05)]
        be = summary.get("breakeven_roas", 1.0)
        if edges[0] <= be <= edges[-1]:
            marks.append(
                bq.Lines(
                    x=[be, be], y=[0, counts.max()], scales={"x": x, "y": y}, colors=["black"], line_style="dashed"
                )
            )
        figures.append(
            bq.Figure(
                marks=marks,
                title=f"{ch['label']}: ROAS",
                axes=[bq.Axis(scale=x, tick_format=".2f"), bq.Axis(scale=y, orientation="vertical", tick_format="d")],
                layout=w.Layout(width="100%", height="220px"),
                fig_margin={"top": 30, "bottom": 35, "left": 45, "right": 10},
            )
        )
    return w.GridBox(figures, layout=w.Layout(grid_template_columns="repeat(3, 1fr)", width="100%"))


def unidentified_legend(summary: dict[str, Any]) -> w.HTML:
    """The one-line legend under a chart that marks unidentified channels (empty when every channel is identified)."""
    from mmmlib.markup import text as esc

    if not unidentified(summary):
        return w.HTML("")
    return w.HTML(f"<div class='mmm-unidentified' style='color:#666;font-size:13px'>{esc(NOT_IDENTIFIED_LEGEND)}</div>")
