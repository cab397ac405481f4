"""Guess which column is the date, the KPI, media spend and controls — from the data itself.

Evidence, in order of weight: what the values are (dates, numbers, 0/1 flags, a row
counter, a calendar field derived from the date, negatives), what the name says in
generic marketing vocabulary (spend/cost, impressions/clicks, revenue/sales/conversions,
control/promo/price), and how a candidate KPI moves with total spend. No file-specific
names are listed; the same rules read Robyn's ``*_S``, Meridian's ``ChannelN_spend`` and
PyMC-Marketing's unnamed ``x1``/``x2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmmlib.data.cells import date_share, looks_decimal_comma, parse_dates, parse_numbers
from mmmlib.data.labels import words

SPEND_WORDS = {"spend", "spends", "cost", "costs", "investment", "invest", "budget", "expenditure", "expense"}
ACTIVITY_WORDS = {
    "impression",
    "impressions",
    "impr",
    "imps",
    "click",
    "clicks",
    "view",
    "views",
    "grp",
    "grps",
    "trp",
    "trps",
    "reach",
    "frequency",
    "sessions",
    "visits",
    "i",
    "p",
    "organic",
    "engagements",
}
KPI_WORDS = {
    "revenue",
    "revenues",
    "sales",
    "sale",
    "conversions",
    "conversion",
    "kpi",
    "target",
    "y",
    "orders",
    "signups",
    "leads",
    "units",
    "bookings",
    "gmv",
    "turnover",
    "income",
    "installs",
    "subscriptions",
    "transactions",
    "purchases",
    "acquisitions",
}
COUNT_KPI_WORDS = {
    "conversions",
    "conversion",
    "orders",
    "signups",
    "leads",
    "units",
    "bookings",
    "installs",
    "subscriptions",
    "transactions",
    "purchases",
    "acquisitions",
}
NOT_KPI_WORDS = {
    "competitor",
    "control",
    "per",
    "price",
    "rate",
    "ratio",
    "share",
    "index",
    "b",
    "avg",
    "average",
    "cpa",
}
CONTROL_WORDS = {
    "control",
    "controls",
    "promo",
    "promotion",
    "promotions",
    "event",
    "events",
    "holiday",
    "holidays",
    "price",
    "pricing",
    "discount",
    "competitor",
    "weather",
    "temperature",
    "sentiment",
    "index",
    "dummy",
    "b",
    "covid",
    "newsletter",
    "macro",
    "unemployment",
    "cpi",
}
SCALE_WORDS = {"population", "households", "pop"}
DATE_WORDS = {"date", "week", "day", "time", "period", "ds", "month", "dt"}
GEO_WORDS = {"geo", "region", "market", "dma", "state", "country", "city", "area", "territory", "store"}


@dataclass
class Detection:
    """Column roles found in a table, with the reason for each decision."""

    date_column: str | None = None
    target_column: str | None = None
    channel_columns: list[str] = field(default_factory=list)
    control_columns: list[str] = field(default_factory=list)
    geo_column: str | None = None
    population_column: str | None = None
    media_columns: dict[str, str] = field(default_factory=dict)  # spend channel → its impressions/clicks column
    organic_columns: list[str] = field(default_factory=list)
    revenue_per_kpi: str | None = None
    kpi_type: str = "revenue"
    ignored: dict[str, str] = field(default_factory=dict)
    decimal_comma: bool = False

    def describe(self) -> list[str]:
        lines = [
            f"date: {self.date_column}",
            f"target ({self.kpi_type}): {self.target_column}",
            f"media spend: {', '.join(self.channel_columns) or 'none found'}",
            f"controls: {', '.join(self.control_columns) or 'none'}",
        ]
        if self.geo_column:
            lines.append(f"geo: {self.geo_column}")
        if self.population_column:
            lines.append(f"population: {self.population_column}")
        lines += [f"media for {ch}: {col}" for ch, col in self.media_columns.items()]
        if self.organic_columns:
            lines.append(f"organic media (no spend): {', '.join(self.organic_columns)}")
        if self.revenue_per_kpi:
            lines.append(f"revenue per KPI: {self.revenue_per_kpi}")
        lines += [f"ignored {c}: {why}" for c, why in self.ignored.items()]
        return lines


@dataclass
class _Numeric:
    name: str
    values: pd.Series
    words: set[str]


def detect(frame: pd.DataFrame) -> Detection:
    """Detect column roles in a raw (all-text) table."""
    det = Detection(decimal_comma=looks_decimal_comma(frame))
    numeric: list[_Numeric] = []
    text_cols: list[str] = []
    for col in frame.columns:
        values, bad = parse_numbers(frame[col], det.decimal_comma)
        present = values.notna() | bad
        if present.sum() and values.notna().sum() / present.sum() >= 0.9:
            numeric.append(_Numeric(col, values, set(words(col))))
        else:
            text_cols.append(col)

    det.date_column = _pick_date(frame, text_cols)
    dates = parse_dates(frame[det.date_column])[0] if det.date_column else None
    if det.date_column in text_cols:
        text_cols.remove(det.date_column)
    det.geo_column = pick_geo(frame, text_cols, dates)
    for col in text_cols:
        if col != det.geo_column:
            det.ignored[col] = "text, not numbers"

    calendar = _calendar_fields(dates) if dates is not None and det.geo_column is None else None
    candidates: list[_Numeric] = []
    for col in numeric:
        why = _structural_reason(col, calendar)
        if why:
            det.ignored[col.name] = why
        else:
            candidates.append(col)

    spend_named = [c for c in candidates if _is_spend_named(c)]
    named = {c.name for c in spend_named}  # sets of names: list membership of columns would be quadratic
    activity = [c for c in candidates if c.words & ACTIVITY_WORDS and c.name not in named]
    for c in activity:
        det.ignored[c.name] = "media activity (impressions/clicks), not spend"
    active = {c.name for c in activity}
    pool = [c for c in candidates if c.name not in active]

    det.target_column = _pick_target(pool, spend_named)
    target = next((c for c in pool if c.name == det.target_column), None)
    pool = [c for c in pool if c is not target]
    if target is not None and target.words & COUNT_KPI_WORDS:
        det.kpi_type = "count"
        rpk = [c for c in pool if {"revenue", "value"} & c.words and "per" in c.words]
        if rpk:
            det.revenue_per_kpi = rpk[0].name
            pool.remove(rpk[0])
    for c in [c for c in pool if c.words & SCALE_WORDS]:
        if det.geo_column and det.population_column is None:
            det.population_column = c.name  # per-geo size: the hierarchy pools effects per capita
        else:
            det.ignored[c.name] = "population or size, not a driver"
        pool.remove(c)
    for c in [c for c in pool if "per" in c.words or "rate" in c.words]:
        det.ignored[c.name] = "a ratio, not a driver"
        pool.remove(c)

    if spend_named:
        in_pool = {c.name for c in pool}
        det.channel_columns = [c.name for c in spend_named if c.name in in_pool and (c.values.dropna() >= 0).all()]
    else:
        det.channel_columns = [c.name for c in pool if _spend_like(c)]
    det.control_columns = [c.name for c in pool if c.name not in det.channel_columns]
    _pair_activity(det, activity)
    return det


def _stem(name: str) -> tuple[str, ...]:
    """A column's name without its spend or activity words: ``Channel0_impression`` and ``Channel0_spend`` share
    ``("channel", "0")``."""
    return tuple(w for w in words(name) if w not in SPEND_WORDS | ACTIVITY_WORDS and w != "s")


def _pair_activity(det: Detection, activity: list[_Numeric]) -> None:
    """Impressions or clicks whose name matches a spend channel become that channel's media input (the model fits
    on them, ROAS stays on spend); the rest, if non-negative, are organic media (no spend).

    Only when the data is per geo: a national file's activity columns stay out, as before (one series of each).
    """
    if not det.geo_column:
        return
    by_stem = {_stem(ch): ch for ch in det.channel_columns}
    for col in activity:
        channel = by_stem.get(_stem(col.name))
        if channel is not None and channel not in det.media_columns:
            det.media_columns[channel] = col.name
            det.ignored.pop(col.name, None)
        elif (col.values.dropna() >= 0).all() and col.values.nunique() > 5:
            det.organic_columns.append(col.name)
            det.ignored.pop(col.name, None)


def _pick_date(frame: pd.DataFrame, text_cols: list[str]) -> str | None:
    best, best_score = None, 0.0
    for col in frame.columns:
        share = date_share(frame[col])
        if share < 0.8:
            continue
        score = share + (0.5 if set(words(col)) & DATE_WORDS else 0.0)
        if score > best_score:
            best, best_score = col, score
    return best


def pick_geo(frame: pd.DataFrame, text_cols: list[str], dates: pd.Series | None) -> str | None:
    if dates is None or dates.nunique() == len(dates):
        return None
    repeats = len(dates) / max(dates.nunique(), 1)
    options = []
    for col in text_cols:
        n = frame[col].nunique()
        if 1 < n <= len(frame) / 2 and not pd.DataFrame({"g": frame[col], "d": dates}).duplicated().any():
            options.append((bool(set(words(col)) & GEO_WORDS), abs(n - repeats) < 1, col))
    options.sort(reverse=True)
    return options[0][2] if options else None


def _structural_reason(col: _Numeric, calendar: list[np.ndarray] | None) -> str | None:
    v = col.values.dropna()
    if len(v) == 0:
        return "empty"
    if v.nunique() <= 1:
        return "constant"
    if calendar is not None and _is_calendar(col.values, calendar):
        return "calendar field derived from the date (seasonality is modelled)"
    if _is_counter(v):
        return "row counter or time index (the trend is modelled)"
    return None


def _is_counter(v: pd.Series) -> bool:
    d = np.diff(v.to_numpy())
    return len(d) > 2 and bool(np.all(d == d[0])) and d[0] != 0


def _calendar_fields(dates: pd.Series) -> list[np.ndarray]:
    """Day of year, ISO week, month, year, day and quarter of each date (NaN where none), computed once per table."""
    d = dates.dt
    fields = [d.dayofyear, d.isocalendar().week, d.month, d.year, d.day, d.quarter]
    return [np.asarray(f.astype("Float64").to_numpy(dtype=float, na_value=np.nan)) for f in fields]


def _is_calendar(values: pd.Series, calendar: list[np.ndarray]) -> bool:
    v = values.to_numpy(dtype=float)
    ok = ~np.isnan(v) & ~np.isnan(calendar[0])
    if ok.sum() < 3:
        return False
    return any(np.array_equal(v[ok], f[ok]) for f in calendar)


def _is_spend_named(col: _Numeric) -> bool:
    w = col.words
    if w & SPEND_WORDS:
        return True
    # "tv_S" (Robyn's convention): a trailing lone "s" after a channel word
    ws = words(col.name)
    return len(ws) >= 2 and ws[-1] == "s" and col.name[-2:-1] in "_- "


def _is_binary(v: pd.Series) -> bool:
    return set(np.unique(v.dropna())) <= {0.0, 1.0}


def _spend_like(col: _Numeric) -> bool:
    v = col.values.dropna()
    return (
        bool((v >= 0).all()) and not _is_binary(v) and not col.words & (CONTROL_WORDS | KPI_WORDS) and v.nunique() > 5
    )


def _pick_target(pool: list[_Numeric], spend_named: list[_Numeric]) -> str | None:
    spend = spend_named or [c for c in pool if _spend_like(c)]
    # total spend once, each candidate's own spend taken out: summing the others per candidate would be quadratic
    total = pd.concat([c.values for c in spend], axis=1).sum(axis=1) if spend else None
    in_spend = {c.name for c in spend}
    named = {c.name for c in spend_named}
    best, best_score = None, -np.inf
    for col in pool:
        if col.name in named:
            continue
        v = col.values
        score = 0.0
        if col.words & KPI_WORDS:
            score += 3.0
        if col.words & NOT_KPI_WORDS:
            score -= 3.0
        if _is_binary(v.dropna()):
            score -= 5.0
        if (v.dropna() > 0).mean() > 0.95:
            score += 1.0
        others = len(spend) - (col.name in in_spend)
        if others and total is not None:
            corr = v.corr(total - v.fillna(0.0) if col.name in in_spend else total)
            score += 0.0 if np.isnan(corr) else float(corr)
        # the KPI is usually the biggest positive series
        score += 0.1 * float(np.log10(max(v.abs().mean(), 1.0)))
        if score > best_score:
            best, best_score = col.name, score
    return best
