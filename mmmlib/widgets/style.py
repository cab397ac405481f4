"""Look and feel shared by every view: one colour per channel, messages, cards, health badge."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from mmmlib.markup import text as esc
from mmmlib.wording import health_facts, health_sentence, imported_from, interval_label, is_healthy

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


def message(text: str, kind: str = "warning") -> w.HTML:
    colours = {"warning": ("#fff4e5", "#8a4b00"), "error": ("#fdecea", "#8b1a1a"), "ok": ("#edf7ed", "#1e4620")}
    bg, fg = colours[kind]
    return w.HTML(
        f'<div class="mmm-msg mmm-{kind}" style="background:{bg};color:{fg};padding:10px 14px;border-radius:6px;'
        f'font-size:15px">{esc(text)}</div>'
    )


def health_badge(summary: dict[str, Any]) -> w.HTML:
    """Model health first: green only when every diagnostic met its threshold."""
    if is_healthy(summary):
        return message(health_sentence(summary), "ok")
    advice = f"Treat every number below with caution. ({health_facts(summary)})"
    return message(f"{health_sentence(summary)} {advice}", "error")


def kpi_card(title: str, value: str, detail: str = "") -> w.HTML:
    return w.HTML(
        '<div class="mmm-card" style="border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:180px">'
        f'<div style="color:#666;font-size:13px">{esc(title)}</div>'
        f'<div style="font-size:26px;font-weight:600">{esc(value)}</div>'
        f'<div style="color:#666;font-size:12px">{esc(detail)}</div></div>'
    )


def _imported(summary: dict[str, Any]) -> str:
    source = imported_from(summary)
    return f" · imported from {esc(source)}, not refitted here" if source else ""


def run_title(summary: dict[str, Any]) -> w.HTML:
    """Which run the page shows (the page's own heading is the notebook's first cell)."""
    period = summary["period"]
    return w.HTML(
        f"<div style='color:#666'>Run {esc(summary['run']['id'])} · {esc(period['start'])} → "
        f"{esc(period['end'])} · all intervals are {interval_label(summary)}s{_imported(summary)}</div>"
    )
