"""Turn raw text cells into numbers and dates, remembering which cells could not be read."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

MISSING_MARKERS = {"", "na", "n/a", "nan", "null", "none", "#n/a", "-", "--"}
_CURRENCY = re.compile(r"[\s$€£¥%]|(?<=\d)\s(?=\d)")
_THOUSANDS_COMMA = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_THOUSANDS_DOT = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


def is_missing(text: pd.Series) -> pd.Series:
    """True where the cell is empty or a conventional missing marker (NA, null, …)."""
    return text.astype(str).str.strip().str.lower().isin(MISSING_MARKERS)


def parse_numbers(text: pd.Series, decimal_comma: bool = False) -> tuple[pd.Series, pd.Series]:
    """Numbers from text cells: ``(values, bad)``; ``bad`` marks non-empty cells that are not numbers.

    Accepts currency symbols, thousands separators and, when ``decimal_comma``, ``1.234,5``.
    """
    raw = text.astype(str).str.strip()
    missing = is_missing(raw)
    if decimal_comma:  # "1.234" is a thousand here, so no cell is read as written
        values, rest = pd.Series(np.nan, index=raw.index), ~missing
    else:  # plain numbers read as written (cheap); only the other cells are cleaned, with the same result
        values = pd.to_numeric(raw.where(~missing, None), errors="coerce").astype(float)
        rest = values.isna() & ~missing
    if rest.any():
        values[rest] = _cleaned(raw[rest], decimal_comma)
    values[~np.isfinite(values.to_numpy())] = np.nan
    bad = values.isna() & ~missing
    return values, bad


def _cleaned(raw: pd.Series, decimal_comma: bool) -> pd.Series:
    """Numbers from cells with currency signs, thousands separators, decimal commas or (negatives)."""
    cleaned = raw.str.replace(_CURRENCY, "", regex=True)
    if decimal_comma:
        cleaned = cleaned.where(~cleaned.str.match(_THOUSANDS_DOT), cleaned.str.replace(".", "", regex=False))
        cleaned = cleaned.str.replace(",", ".", regex=False)
    else:
        cleaned = cleaned.where(~cleaned.str.match(_THOUSANDS_COMMA), cleaned.str.replace(",", "", regex=False))
    cleaned = cleaned.where(~cleaned.str.startswith("(") | ~cleaned.str.endswith(")"), "-" + cleaned.str[1:-1])
    return pd.to_numeric(cleaned, errors="coerce").astype(float)


def numeric_share(text: pd.Series, decimal_comma: bool = False) -> float:
    """Share of non-missing cells that read as numbers (0 when every cell is missing)."""
    values, bad = parse_numbers(text, decimal_comma)
    present = values.notna() | bad
    return float(values.notna().sum() / present.sum()) if present.any() else 0.0


def looks_decimal_comma(frame: pd.DataFrame) -> bool:
    """True when numbers are written ``12,5`` (European CSVs use ';' and a decimal comma)."""
    sample = frame.head(200).astype(str)
    hits = sum(int(sample[c].str.match(_DECIMAL_COMMA).sum()) for c in sample.columns)
    dots = sum(int(sample[c].str.match(r"^-?\d+\.\d+$").sum()) for c in sample.columns)
    return hits > 0 and hits > dots


_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T].*)?$")
_SLASHED = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{2,4})$")


def parse_dates(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Dates from text cells: ``(values, bad)``.

    ISO dates are read as written; ``d/m/y`` vs ``m/d/y`` is decided from the whole column
    (a first part above 12 means day first), so one file never mixes the two readings.
    """
    raw = text.astype(str).str.strip()
    missing = is_missing(raw)
    dayfirst = _dayfirst(raw[~missing])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iso = raw.str.match(_ISO)
        values = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        if iso.any():
            values[iso] = pd.to_datetime(raw[iso].str.slice(0, 10), errors="coerce", format="%Y-%m-%d")
        rest = ~iso & ~missing
        if rest.any():
            try:
                parsed = pd.to_datetime(raw[rest], errors="coerce", dayfirst=dayfirst, format="mixed")
            except (ValueError, OverflowError):
                parsed = pd.Series([_one_date(v, dayfirst) for v in raw[rest]], index=raw[rest].index)
            plausible = (parsed.dt.year >= 1900) & (parsed.dt.year <= 2200)
            values[rest] = parsed.where(plausible).astype("datetime64[ns]")
    bad = values.isna() & ~missing
    return values, bad


def _one_date(value: str, dayfirst: bool) -> pd.Timestamp:
    try:
        stamp = pd.to_datetime(value, dayfirst=dayfirst)
    except (ValueError, OverflowError):
        return pd.NaT
    return stamp if 1900 <= stamp.year <= 2200 else pd.NaT


def _dayfirst(raw: pd.Series) -> bool:
    parts = raw.str.extract(_SLASHED)
    if parts.empty or parts[0].isna().all():
        return False
    first = pd.to_numeric(parts[0], errors="coerce")
    second = pd.to_numeric(parts[1], errors="coerce")
    return bool((first > 12).any() and not (second > 12).any())


def date_share(text: pd.Series) -> float:
    """Share of non-missing cells that read as calendar dates (pure numbers do not count)."""
    raw = text.astype(str).str.strip()
    present = ~is_missing(raw)
    if not present.any():
        return 0.0
    sample = raw[present].head(500)
    numeric = numeric_share(sample)
    if numeric <= 0.5:  # the decimal-comma reading costs more; only needed when the plain one is not enough
        numeric = max(numeric, numeric_share(sample, decimal_comma=True))
    if numeric > 0.5 and not sample.str.match(r"^\d{8}$").all():
        return 0.0
    values, _ = parse_dates(sample)
    return float(values.notna().mean())
