"""bqplot charts and ipywidgets shared by every dashboard and the HTML report.

Widgets only draw what ``summary.json`` already holds (computed by ``mmmlib.analysis``);
nothing here imports pymc. One colour per channel everywhere, HDIs drawn as whiskers
or bands, and the model-health badge comes before any recommendation.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import bqplot as bq
import ipywidgets as w

from mmmlib.runs import load_summary

PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
]
BASE_COLOURS = {"baseline": "#c7c7c7", "trend": "#a0a0a0", "seasonality": "#dbdb8d", "controls": "#9edae5"}


def channel_colours(summary: dict[str, Any]) -> dict[str, str]:
    """The colour of each channel, fixed by its order in the run (same in every chart)."""
    return {ch["name"]: PALETTE[i % len(PALETTE)] for i, ch in enumerate(summary["channels"])}


def money(x: float, currency: str = "") -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{currency}{x / div:,.1f}{unit}"
    return f"{currency}{x:,.0f}"


def run_from_environment(default: str | None = None) -> Path | None:
    """The run to show: ``?run=`` in the Voilà URL, else ``$MMM_RUN``, else ``default``."""
    query = parse_qs(os.environ.get("QUERY_STRING", ""))
    if query.get("run"):
        return Path(query["run"][0])
    value = os.environ.get("MMM_RUN") or default
    return Path(value) if value else None


def message(text: str, kind: str = "warning") -> w.HTML:
    colours = {"warning": ("#fff4e5", "#8a4b00"), "error": ("#fdecea", "#8b1a1a"), "ok": ("#edf7ed", "#1e4620")}
    bg, fg = colours[kind]
    return w.HTML(
        f'<div class="mmm-msg mmm-{kind}" style="background:{bg};color:{fg};padding:10px 14px;border-radius:6px;'
        f'font-size:15px">{html.escape(text)}</div>'
    )


def health_badge(summary: dict[str, Any]) -> w.HTML:
    """Model health first: green only when every diagnostic met its threshold."""
    d = summary["diagnostics"]
    facts = (
        f"R-hat {d['r_hat_max']:.3f} · ESS {d['ess_bulk_min']:.0f} · {d['divergences']} divergences · "
        f"R² {d['r2']:.2f} · MAPE {d['mape']:.1%}"
    )
    if summary["status"] == "ok":
        return message(f"Model health: good — {facts}", "ok")
    reasons = "; ".join(summary.get("status_reasons", []))
    return message(f"Model health: NOT RELIABLE — {reasons}. Treat every number below with caution. ({facts})", "error")


def kpi_card(title: str, value: str, detail: str = "") -> w.HTML:
    return w.HTML(
        '<div class="mmm-card" style="border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:180px">'
        f'<div style="color:#666;font-size:13px">{html.escape(title)}</div>'
        f'<div style="font-size:26px;font-weight:600">{html.escape(value)}</div>'
        f'<div style="color:#666;font-size:12px">{html.escape(detail)}</div></div>'
    )


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


def interval_bars(summary: dict[str, Any], metric: str, title: str, fmt: str = ".2f") -> bq.Figure:
    """Bars of a channel metric's posterior mean with 94% HDI whiskers."""
    channels = summary["channels"]
    labels = [c["label"] for c in channels]
    colours = channel_colours(summary)
    x = bq.OrdinalScale(domain=labels)
    y = bq.LinearScale(min=0.0)
    bars = bq.Bars(
        x=labels,
        y=[c[metric]["mean"] for c in channels],
        scales={"x": x, "y": y},
        colors=[colours[c["name"]] for c in channels],
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
    import numpy as np

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


def recommendation_list(summary: dict[str, Any]) -> w.HTML:
    items = "".join(f"<li style='margin:4px 0'>{html.escape(s)}</li>" for s in summary["recommendations"])
    return w.HTML(f"<h3>Recommendations</h3><ul class='mmm-recs'>{items}</ul>")


def executive_view(run: Path | None) -> w.Widget:
    """The executive dashboard for one run, or a clear message when there is nothing to show."""
    if run is None:
        return message("No run selected: open this dashboard with ?run=<run directory> or set MMM_RUN.", "warning")
    try:
        summary = load_summary(run)
    except FileNotFoundError:
        return message(f"No results at {run}: the run is missing or its fit has not finished.", "warning")
    except ValueError:
        return message(f"The results at {run} are damaged (summary.json is not valid JSON); refit this run.", "error")
    title = w.HTML(
        f"<h2 style='margin:0'>Marketing mix: what media returned</h2>"
        f"<div style='color:#666'>Run {html.escape(summary['run']['id'])} · {summary['period']['start']} → "
        f"{summary['period']['end']} · all intervals are 94% HDIs</div>"
    )
    return w.VBox(
        [
            title,
            health_badge(summary),
            kpi_cards(summary),
            recommendation_list(summary),
            w.HBox(
                [
                    interval_bars(summary, "share", "Share of media contribution", ".0%"),
                    interval_bars(summary, "roas", "ROAS (return per unit of spend)"),
                ],
                layout=w.Layout(width="100%"),
            ),
            contributions_over_time(summary),
        ],
        layout=w.Layout(gap="12px", padding="8px"),
    )
