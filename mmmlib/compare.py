"""Two runs side by side (``notebooks/compare_runs.ipynb``): ROAS, contributions and diagnostics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmmlib.runs import RunDir
from mmmlib.wording import bracketed as iv


def channels_side_by_side(run_a: str | Path, run_b: str | Path) -> pd.DataFrame:
    """Per channel: ROAS, share and contribution in each run, and whether the ROAS intervals overlap."""
    a, b = RunDir(run_a).summary(), RunDir(run_b).summary()
    by_b = {c["name"]: c for c in b["channels"]}
    rows = []
    for ca in a["channels"]:
        cb = by_b.get(ca["name"])
        row = {
            "channel": ca["label"],
            "ROAS A": iv(ca["roas"], "{:.2f}"),
            "share A": iv(ca["share"], "{:.0%}"),
        }
        if cb:
            overlap = (
                ca["roas"]["hdi_low"] <= cb["roas"]["hdi_high"] and cb["roas"]["hdi_low"] <= ca["roas"]["hdi_high"]
            )
            row.update(
                {
                    "ROAS B": iv(cb["roas"], "{:.2f}"),
                    "share B": iv(cb["share"], "{:.0%}"),
                    "ROAS change": f"{cb['roas']['mean'] - ca['roas']['mean']:+.2f}",
                    "intervals overlap": "yes" if overlap else "NO",
                }
            )
        rows.append(row)
    only_b = [c for n, c in by_b.items() if n not in {c["name"] for c in a["channels"]}]
    rows += [
        {
            "channel": c["label"],
            "ROAS B": iv(c["roas"], "{:.2f}"),
            "share B": iv(c["share"], "{:.0%}"),
        }
        for c in only_b
    ]
    return pd.DataFrame(rows).set_index("channel")


def diagnostics_side_by_side(run_a: str | Path, run_b: str | Path) -> pd.DataFrame:
    a, b = RunDir(run_a).summary(), RunDir(run_b).summary()
    keys = ["r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "r2", "mape", "holdout_mape"]
    table = pd.DataFrame(
        {
            "A": [a["status"], a["run"]["id"], a["period"]["end"]] + [a["diagnostics"].get(k) for k in keys],
            "B": [b["status"], b["run"]["id"], b["period"]["end"]] + [b["diagnostics"].get(k) for k in keys],
        },
        index=["status", "run", "data until", *keys],
    )
    return table
