"""Plain tables of a summary for notebooks and text reports (no widgets, no pymc)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mmmlib.identification import is_identified, unidentified_in_geos
from mmmlib.wording import bracketed

UNIDENTIFIED_MARK = " *"  # after a geo's ROAS that this data does not identify (the national rule, per geo)
UNIDENTIFIED_NOTE = "* not identified by this data in that geo: hold its budget there and run a lift test."


def diagnostics_table(summary: dict[str, Any]) -> pd.DataFrame:
    d = summary["diagnostics"]
    rows = [
        ("status", summary["status"]),
        ("max R-hat", f"{d['r_hat_max']:.3f}"),
        ("min bulk ESS", f"{d['ess_bulk_min']:.0f}"),
        ("min tail ESS", f"{d.get('ess_tail_min', float('nan')):.0f}"),
        ("divergences", str(d["divergences"])),
        ("R²", f"{d['r2']:.3f}"),
        ("MAPE (in sample)", f"{d['mape']:.1%}" if d.get("mape") is not None else "—"),
        ("MAPE (held out)", f"{d['holdout_mape']:.1%}" if d.get("holdout_mape") is not None else "—"),
    ]
    rows += [("warning", r) for r in summary.get("status_reasons", [])]
    return pd.DataFrame(rows, columns=["diagnostic", "value"]).set_index("diagnostic")


def channel_table(summary: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for ch in summary["channels"]:
        rows.append(
            {
                "channel": ch["label"],
                "column": ch["name"],
                "spend": f"{ch['spend']:,.0f}",
                "contribution": bracketed(ch["contribution"], "{:,.0f}"),
                "share": bracketed(ch["share"], "{:.1%}"),
                "ROAS": bracketed(ch["roas"], "{:.2f}"),
                "marginal ROAS": bracketed(ch["mroas"], "{:.2f}"),
            }
        )
    return pd.DataFrame(rows).set_index("channel")


def geo_table(summary: dict[str, Any], limit: int | None = None) -> pd.DataFrame:
    """One row per geo of a hierarchical run (largest KPI first): KPI, spend, media contribution and each
    channel's ROAS with its interval, marked (:data:`UNIDENTIFIED_MARK`) where that geo's data do not identify it."""
    labels = {c["name"]: c.get("label", c["name"]) for c in summary["channels"]}
    breakeven = summary.get("breakeven_roas") or 1.0
    rows = []
    for g in (summary.get("geos") or [])[:limit]:
        row = {
            "geo": g["name"],
            "KPI": f"{g['kpi']:,.0f}",
            "spend": f"{g['spend']:,.0f}",
            "media contribution": bracketed(g["media_contribution"], "{:,.0f}"),
        }
        for c in g["channels"]:
            mark = "" if is_identified(c, breakeven) else UNIDENTIFIED_MARK
            cell = bracketed(c["roas"], "{:.2f}") + mark if c["spend"] else "—"
            row[f"ROAS {labels.get(c['name'], c['name'])}"] = cell
        rows.append(row)
    return pd.DataFrame(rows).set_index("geo") if rows else pd.DataFrame()


def any_geo_unidentified(summary: dict[str, Any]) -> bool:
    """Whether the geo table marks any geo's ROAS as not identified (its note is then shown under it)."""
    return bool(unidentified_in_geos(summary))
