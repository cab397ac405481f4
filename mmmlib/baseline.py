"""The baseline's trend: straight, or piecewise linear with changepoints, as columns the model regresses on.

A straight trend cannot follow a bending or broken baseline, and the model then blames the difference on whichever
channel's spend moved at the same time. Changepoints let the slope change every 26 weeks (the knot spacing of the
Meridian side of pymc-labs/mmm-param-recovery), in the first 80 % of the series (Prophet's changepoint range, so the
last slope is learned from enough data to extrapolate), each change with prior sd 0.35: the sd of PyMC-Marketing's
``LinearTrend`` changepoint prior ``Laplace(0, 0.25)``, in the same units (max-scaled KPI per whole series). The
columns are functions of the row number and the number of rows alone, so forecasts extend them exactly (the last
slope continues).
"""

from __future__ import annotations

import numpy as np

TREND = "trend"
CHANGEPOINT_PREFIX = "trend_cp"
KNOT_SPACING = {"weekly": 26, "daily": 182}
CHANGEPOINT_RANGE = 0.8
TREND_SD = 2.0  # PyMC-Marketing's default control prior, Normal(0, 2), as before
CHANGEPOINT_SD = 0.25 * np.sqrt(2)


def is_trend(column: str) -> bool:
    return column == TREND or column.startswith(CHANGEPOINT_PREFIX)


def knots(n_rows: int, frequency: str) -> list[float]:
    """Changepoint positions on the ``[0, 1]`` time scale of ``n_rows`` rows."""
    spacing = KNOT_SPACING.get(frequency, 26)
    last = max(n_rows - 1, 1)
    return [k * spacing / last for k in range(1, n_rows) if k * spacing <= CHANGEPOINT_RANGE * last]


def trend_columns(baseline: str, n_rows: int, offsets: np.ndarray, frequency: str) -> dict[str, np.ndarray]:
    """The trend columns at row ``offsets`` (0 = first row; beyond ``n_rows - 1`` extrapolates)."""
    if baseline == "flat":
        return {}
    t = np.asarray(offsets, dtype=float) / max(n_rows - 1, 1)
    cols = {TREND: t - 0.5}  # centred: uncentred, a trend is a second intercept
    if baseline == "changepoints":
        grid = np.arange(n_rows) / max(n_rows - 1, 1)
        for k, c in enumerate(knots(n_rows, frequency), start=1):
            # centred over the rows like the trend: an uncentred hinge is partly a second intercept, and NUTS took
            # about a quarter more leapfrog steps per draw along that ridge, for less ESS (docs/speed.md)
            cols[f"{CHANGEPOINT_PREFIX}{k}"] = np.maximum(t - c, 0.0) - np.maximum(grid - c, 0.0).mean()
    return cols


def prior_sd(column: str) -> float:
    return CHANGEPOINT_SD if column.startswith(CHANGEPOINT_PREFIX) else TREND_SD


def control_scaling(values: np.ndarray) -> tuple[float, float]:
    """``(centre, scale)`` of a control column over every row: the model regresses on ``(values - centre) / scale``,
    in [-1, 1], and forecasts apply the same to planned values (a control left out of a plan is at its centre).

    Continuous controls (price, temperature) are centred: uncentred, a price index near 1 is a second intercept, and
    the sampler crawls along the ridge between them. 0/1 flags (promotions) stay as they are: centre 0, so "off".
    """
    values = np.asarray(values, dtype=float)
    centre = 0.0 if set(np.unique(values)) <= {0.0, 1.0} else float(values.mean())
    return centre, float(np.abs(values - centre).max()) or 1.0
