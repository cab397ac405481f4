"""Lift-test and geo-experiment results that calibrate a fit (config key ``lift_tests``).

One row per experiment: the channel, the spend per period it ran at (``spend``/``x``), the change
in spend per period (``spend_change``/``delta_x``), the measured change in KPI per period
(``kpi_change``/``delta_y``) and that measurement's standard error (``standard_error``/``sigma``);
an optional ``period`` or ``date`` says when. A geo model's experiments also name their geo (``geo``, or the data's
geo column), and then spend and KPI are that geo's. pymc-marketing's ``add_lift_test_measurements`` turns each into
a likelihood on the saturation curve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmmlib.data.cells import parse_numbers
from mmmlib.data.issues import Report
from mmmlib.data.reader import read_raw, spreadsheet_row
from mmmlib.errors import InputError

ALIASES = {
    "x": ("x", "spend", "spend_per_period"),
    "delta_x": ("delta_x", "spend_change"),
    "delta_y": ("delta_y", "kpi_change", "lift"),
    "sigma": ("sigma", "standard_error", "se"),
}


def read_lift_tests(
    path: str | Path,
    channels: list[str],
    name: str | None = None,
    geos: list[str] | None = None,
    geo_column: str | None = None,
) -> pd.DataFrame:
    """Columns ``channel, x, delta_x, delta_y, sigma`` (pymc-marketing's names), and ``geo`` for a geo model
    (``geos``: its geos; the column is ``geo`` or ``geo_column``); every bad cell is reported.

    ``name`` is the file's name in messages (the user's, when ``path`` is the run's copy of it).
    """
    raw = read_raw(path)
    frame = raw.frame
    lower = {c.lower().strip(): c for c in frame.columns}
    report = Report(rows=len(frame))
    out = pd.DataFrame(index=frame.index)
    geo_names = [n for n in dict.fromkeys(["geo", (geo_column or "geo").lower().strip()]) if n in lower]
    if geos is None and geo_names:
        report.error(
            "geo_lift_test",
            "lift tests by geo need a geo model (geo_model: hierarchical); this model is national. Sum each test over "
            "its geos into one national row, or fit the geos.",
            column=lower[geo_names[0]],
        )
    elif geos is not None and not geo_names:
        report.error(
            "missing_column",
            f"a geo model needs each lift test's geo: add a {geo_column or 'geo'} column naming one of "
            f"{', '.join(geos[:5])}{', …' if len(geos) > 5 else ''}.",
            column=geo_column or "geo",
        )
    elif geos is not None:
        col = lower[geo_names[0]]
        out["geo"] = frame[col].astype(str).str.strip()
        for i, geo in out["geo"].items():
            if geo not in geos:
                report.error(
                    "unknown_geo", f"{geo!r} is not one of the data's geos.", row=spreadsheet_row(i), column=col
                )
    if "channel" not in lower:
        report.error("missing_column", "the lift-test file needs a channel column.", column="channel")
    else:
        out["channel"] = frame[lower["channel"]].astype(str).str.strip()
        for i, ch in out["channel"].items():
            if ch not in channels:
                report.error(
                    "unknown_channel",
                    f"{ch!r} is not one of the model's channels ({', '.join(channels)}).",
                    row=spreadsheet_row(i),
                    column=lower["channel"],
                )
    for key, names in ALIASES.items():
        col = next((lower[n] for n in names if n in lower), None)
        if col is None:
            report.error(
                "missing_column",
                f"the lift-test file needs a {names[1] if len(names) > 1 else key} column "
                f"(or {', '.join(n for n in names if n != names[1])}).",
                column=names[1],
            )
            continue
        values, bad = parse_numbers(frame[col])
        for i in np.flatnonzero((bad | values.isna()).to_numpy()):
            report.error("not_a_number", "must be a number.", row=spreadsheet_row(i), column=col)
        if key in ("sigma", "x"):
            for i in np.flatnonzero((values <= 0 if key == "sigma" else values < 0).to_numpy()):
                report.error(
                    "out_of_range",
                    "must be above 0." if key == "sigma" else "cannot be negative.",
                    row=spreadsheet_row(i),
                    column=col,
                )
        out[key] = values
    if not report.ok:
        raise InputError(
            f"{name or Path(path).name} has {len(report.errors)} problems.\n" + "\n".join(report.lines(20))
        )
    return out.reset_index(drop=True)
