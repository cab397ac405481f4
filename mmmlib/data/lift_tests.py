"""Lift-test and geo-experiment results that calibrate a fit (config key ``lift_tests``).

One row per experiment: the channel, the spend per period it ran at (``spend``/``x``), the change
in spend per period (``spend_change``/``delta_x``), the measured change in KPI per period
(``kpi_change``/``delta_y``) and that measurement's standard error (``standard_error``/``sigma``);
an optional ``period`` or ``date`` says when. pymc-marketing's ``add_lift_test_measurements``
turns each into a likelihood on the saturation curve.
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


def read_lift_tests(path: str | Path, channels: list[str], name: str | None = None) -> pd.DataFrame:
    """Columns ``channel, x, delta_x, delta_y, sigma`` (pymc-marketing's names); every bad cell is reported.

    ``name`` is the file's name in messages (the user's, when ``path`` is the run's copy of it).
    """
    raw = read_raw(path)
    frame = raw.frame
    lower = {c.lower().strip(): c for c in frame.columns}
    report = Report(rows=len(frame))
    out = pd.DataFrame(index=frame.index)
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
