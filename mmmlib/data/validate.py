"""Check a raw table against a config and, when it passes, build the clean frame the model fits.

Every rule runs on every row before anything is refused, so a user fixes a file in one go.
Messages name the spreadsheet row (header = row 1) and column and say what to do.
The file on disk is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmmlib.config import ModelConfig
from mmmlib.data.cells import looks_decimal_comma, parse_dates, parse_numbers
from mmmlib.data.issues import Report
from mmmlib.data.reader import RawTable, spreadsheet_row
from mmmlib.policy import PERIOD_DAYS

MIN_PERIODS = {"weekly": 52, "daily": 180}
SPARSE_SHARE = 0.10
FREQ_DAYS = {days: frequency for frequency, days in PERIOD_DAYS.items()}  # the frequency of a usual step in days
NAMED_COLUMNS = 40  # columns a "no such column" message lists


@dataclass
class Checked:
    """The outcome of validation: the report, and the clean frame when there are no errors."""

    report: Report
    frame: pd.DataFrame | None
    frequency: str | None = None
    geo_frame: pd.DataFrame | None = None  # hierarchical geo data: one row per (period, geo), sorted so


def check(raw: RawTable, config: ModelConfig) -> Checked:
    """Validate ``raw`` for ``config``; returns the report and, if usable, the frame indexed 0..n-1 by period."""
    frame = raw.frame
    report = Report(rows=len(frame))
    decimal_comma = looks_decimal_comma(frame)

    missing = [c for c in config.referenced_columns if c not in frame.columns]
    has = ", ".join(frame.columns[:NAMED_COLUMNS])  # once, and short: a config may name thousands of columns
    if len(frame.columns) > NAMED_COLUMNS:
        has += f" and {len(frame.columns) - NAMED_COLUMNS} more"
    for col in missing:
        report.error(
            "missing_column",
            f"the config names column {col}, but the file has no such column (it has: {has}).",
            column=col,
        )
    _check_names(config, report)
    present = lambda cols: [c for c in cols if c in frame.columns]  # noqa: E731

    dates = None
    if config.date_column in frame.columns:
        dates = _check_dates(frame[config.date_column], config.date_column, report)

    numbers: dict[str, pd.Series] = {}
    for col in present(config.channel_columns):
        numbers[col] = _check_numeric(frame[col], col, report, decimal_comma, kind="spend")
    if config.target_column in frame.columns:
        numbers[config.target_column] = _check_numeric(
            frame[config.target_column], config.target_column, report, decimal_comma, kind="target"
        )
    for col in present(config.control_columns):
        numbers[col] = _check_numeric(frame[col], col, report, decimal_comma, kind="control")
    rpk = config.revenue_per_kpi
    if isinstance(rpk, str) and rpk in frame.columns:
        numbers[rpk] = _check_numeric(frame[rpk], rpk, report, decimal_comma, kind="revenue_per_kpi")
    for col in present([*config.media_columns.values(), *config.organic_columns]):
        numbers[col] = _check_numeric(frame[col], col, report, decimal_comma, kind="media")
    pop = config.population_column
    if pop and pop in frame.columns:
        numbers[pop] = _check_numeric(frame[pop], pop, report, decimal_comma, kind="population")

    geo = config.geo_column if config.geo_column in frame.columns else None
    geo_frame = None
    if dates is None:
        return Checked(report, None)
    if geo is None:
        geo = _implicit_geo(frame, dates, config)
    if geo is not None:
        long_dates, long_numbers = dates, numbers
        dates, numbers = _handle_geo(frame, dates, numbers, geo, config, report)
        if dates is None:
            return Checked(report, None)
        if config.hierarchical:
            geo_frame = _geo_frame(frame[geo].astype(str), long_dates, long_numbers, geo, config, report)
    else:
        _check_duplicates(dates, config.date_column, report)

    frequency = _check_sequence(dates, config, report)
    for col in present(config.channel_columns):
        _check_spend_coverage(numbers[col], col, report)
    if config.target_column in numbers:
        _check_target_values(numbers[config.target_column], config.target_column, report)
        _check_units(numbers, config, report)
    for col in present(config.control_columns):
        v = numbers[col].dropna()
        if len(v) and v.nunique() == 1:
            report.warn(
                "constant_control",
                f"the control is the same ({v.iloc[0]:g}) in every period, so it cannot explain anything; "
                "it will be dropped from the fit.",
                column=col,
            )
    report.errors.sort(key=lambda i: (i.row or 0, i.column or ""))
    report.warnings.sort(key=lambda i: (i.row or 0, i.column or ""))
    if not report.ok:
        return Checked(report, None, frequency)
    clean = _clean_frame(dates, numbers, config, frequency, report)
    if geo_frame is not None:
        geo_frame = geo_frame.drop(columns=[c for c in geo_frame.columns if c not in clean.columns and c != geo])
    return Checked(report, clean, frequency, geo_frame)


def _check_names(config: ModelConfig, report: Report) -> None:
    """Column names the model cannot take, refused here rather than after sampling.

    Channels, controls and the KPI become variables in ``posterior.nc`` (xarray refuses '/' there), channels are
    written ``CHANNEL=VALUE`` in ``--bounds`` and ``--spend``, and the model adds its own ``date`` and trend columns.
    """
    from mmmlib import baseline

    trend = config.baseline_form != "flat"
    roles = [
        ("channel_columns", config.channel_columns),
        ("control_columns", config.control_columns),
        ("target_column", [config.target_column]),
    ]
    for role, names in roles:
        for name in names:
            rename = f"rename the column in the file and in the config's {role}"
            own = "dates" if name == "date" else "trend term" if trend and baseline.is_trend(name) else None
            if own:
                report.error(
                    "bad_column_name",
                    f"the model uses the name {name!r} for its own {own}; {rename}.",
                    column=name,
                )
                continue
            bad = [c for c in ("/", "=") if c in name and (c != "=" or role == "channel_columns")]
            if any(ord(c) < 32 or ord(c) == 127 for c in name):
                bad.append("")
            if bad:
                report.error(
                    "bad_column_name",
                    f"the name contains {' and '.join(_NAME_CHARS[c][0] for c in bad)}, which the model cannot take "
                    f"({'; '.join(_NAME_CHARS[c][1] for c in bad)}); {rename}: {', '.join(names)}.",
                    column=name,
                )


_NAME_CHARS = {  # what a name may not hold: how the message names it, and why
    "/": ("'/'", "it names a variable in posterior.nc, where '/' separates groups"),
    "=": ("'='", "channels are written CHANNEL=VALUE in --bounds and --spend"),
    "": ("a control character", "it is invisible, so no one could type the name"),
}


def _check_dates(text: pd.Series, col: str, report: Report) -> pd.Series:
    values, bad = parse_dates(text)
    report.per_row(
        "bad_date",
        np.flatnonzero(bad.to_numpy()),
        col,
        lambda i: f"{text.iloc[i]!r} is not a date; write dates as YYYY-MM-DD.",
    )
    report.per_row(
        "missing_value",
        np.flatnonzero((values.isna() & ~bad).to_numpy()),
        col,
        lambda i: "empty value; every period needs a date.",
    )
    return values


_KIND_HINT = {
    "spend": "spend must be a number (use 0 for no spend)",
    "target": "the KPI must be a number for every period",
    "control": "controls must be numbers (use 0 or 1 for flags)",
    "revenue_per_kpi": "revenue per KPI must be a number",
    "media": "impressions and clicks must be numbers (use 0 for none)",
    "population": "the population must be a number for every row",
}


def _check_numeric(text: pd.Series, col: str, report: Report, decimal_comma: bool, kind: str) -> pd.Series:
    values, bad = parse_numbers(text, decimal_comma)
    hint = _KIND_HINT[kind]

    def missing(i: int) -> str:
        what = "empty value" if not str(text.iloc[i]).strip() else f"missing value ({text.iloc[i]!r})"
        return f"{what}; {hint}."

    report.per_row(
        "not_a_number", np.flatnonzero(bad.to_numpy()), col, lambda i: f"{text.iloc[i]!r} is not a number; {hint}."
    )
    report.per_row("missing_value", np.flatnonzero((values.isna() & ~bad).to_numpy()), col, missing)
    if kind in ("spend", "media"):
        report.per_row(
            "negative_spend",
            np.flatnonzero((values < 0).to_numpy()),
            col,
            lambda i: f"spend is negative ({values.iloc[i]:g}); spend cannot be below 0 (refunds belong in a control).",
        )
    if kind in ("revenue_per_kpi", "population"):
        what = "revenue per KPI" if kind == "revenue_per_kpi" else "the population"
        report.per_row(
            "non_positive", np.flatnonzero((values <= 0).to_numpy()), col, lambda i: f"{what} must be above 0."
        )
    return values


def _implicit_geo(frame: pd.DataFrame, dates: pd.Series, config: ModelConfig) -> str | None:
    """A text column that, with the date, makes rows unique: the data is per geo (Meridian's geo files)."""
    if dates.dropna().nunique() == dates.notna().sum():
        return None
    from mmmlib.data.detect import pick_geo  # local: detection is only needed for this case

    used = set(config.referenced_columns)
    text_cols = [c for c in frame.columns if c not in used]
    return pick_geo(frame, text_cols, dates)


def _handle_geo(
    frame: pd.DataFrame,
    dates: pd.Series,
    numbers: dict[str, pd.Series],
    geo: str,
    config: ModelConfig,
    report: Report,
) -> tuple[pd.Series | None, dict[str, pd.Series]]:
    geos = frame[geo].astype(str)
    n_geo = geos.nunique()
    if config.geo_model is None:
        report.error(
            "geo_data",
            f"the data has several rows per date, one per value of column {geo} ({n_geo} geos); "
            f"set geo_column: {geo} and geo_model: hierarchical (one model over all geos) or aggregate (one model of "
            "their national sum) in the config.",
            column=geo,
        )
        return None, numbers
    dup = pd.DataFrame({"g": geos, "d": dates}).duplicated(keep="first") & dates.notna()
    report.per_row(
        "duplicate_date",
        np.flatnonzero(dup.to_numpy()),
        config.date_column,
        lambda i: f"date {dates.iloc[i]:%Y-%m-%d} appears twice for {geo} {geos.iloc[i]}.",
    )
    counts = pd.DataFrame({"g": geos, "d": dates}).groupby("d")["g"].nunique()
    short = counts[counts < n_geo]
    if len(short):
        report.warn(
            "unbalanced_geos",
            f"{len(short)} dates lack some of the {n_geo} geos (first: {short.index[0]:%Y-%m-%d}); "
            "their national totals will be low.",
            column=geo,
        )
    if config.hierarchical:
        report.notes.append(f"{n_geo} geos in column {geo}: one hierarchical model, and their national sum.")
    else:
        report.notes.append(f"{n_geo} geos in column {geo} summed into one national series.")
    rpk = config.revenue_per_kpi
    target = config.target_column
    summed: dict[str, pd.Series] = {}
    for col, v in numbers.items():
        if isinstance(rpk, str) and col == rpk and target in numbers:
            # national revenue per KPI is the KPI-weighted mean, so revenue totals stay right
            revenue = (v * numbers[target]).groupby(dates).sum(min_count=1)
            summed[col] = revenue / numbers[target].groupby(dates).sum(min_count=1)
        elif col in config.control_columns:
            summed[col] = v.groupby(dates).mean()
        else:
            summed[col] = v.groupby(dates).sum(min_count=1)
    index = pd.Series(sorted(dates.dropna().unique()))
    out = {col: s.reindex(index.to_numpy()).reset_index(drop=True) for col, s in summed.items()}
    return index, out


def _geo_frame(
    geos: pd.Series,
    dates: pd.Series,
    numbers: dict[str, pd.Series],
    geo: str,
    config: ModelConfig,
    report: Report,
) -> pd.DataFrame | None:
    """The per-geo rows a hierarchical model fits, with the checks that only make sense per geo, each naming the geo:
    every geo has every period, a geo's KPI is not all zero, a channel a geo never spends on, one population per geo."""
    frame = pd.DataFrame({config.date_column: dates, geo: geos, **numbers}).dropna(subset=[config.date_column])
    periods = frame[config.date_column].nunique()
    per_geo = frame.groupby(geo, sort=True)
    for name, count in per_geo[config.date_column].nunique().items():
        if count < periods:
            have = set(per_geo.get_group(name)[config.date_column])
            first = min(d for d in frame[config.date_column].unique() if d not in have)
            report.error(
                "unbalanced_geos",
                f"geo {name} has {count} of the {periods} periods (first missing: {pd.Timestamp(first):%Y-%m-%d}); "
                "a hierarchical model needs every geo in every period: add the rows, drop the geo, or set "
                "geo_model: aggregate.",
                column=geo,
            )
    target = config.target_column
    if target in frame:
        flat = per_geo[target].apply(lambda v: bool((v.fillna(0) == 0).all()))
        for name in flat[flat].index:
            report.error(
                "zero_kpi_geo",
                f"geo {name}'s KPI is zero in every period, so it says nothing about media; drop the geo.",
                column=target,
            )
    for ch in config.channel_columns:
        if ch not in frame:
            continue
        spends = per_geo[ch].sum(min_count=1).fillna(0)
        for name in spends[spends <= 0].index:
            report.warn(
                "geo_no_spend",
                f"geo {name} never spends on this channel; its effect there is the other geos' (the hierarchy's).",
                column=ch,
            )
    pop = config.population_column
    if pop and pop in frame:
        varying = per_geo[pop].nunique()
        for name in varying[varying > 1].index:
            report.warn(
                "varying_population",
                f"geo {name}'s population changes over time; its mean is used to put the geo per capita.",
                column=pop,
            )
    return frame.sort_values([config.date_column, geo], kind="stable").reset_index(drop=True)


def _check_duplicates(dates: pd.Series, col: str, report: Report) -> None:
    """Repeated dates, each pointing at the row that has the date first (found by grouping: linear in rows)."""
    dup = dates.duplicated(keep="first") & dates.notna()
    positions = np.flatnonzero(dup.to_numpy())
    if not len(positions):
        return
    first = pd.Series(np.arange(len(dates)), index=dates.index).groupby(dates).transform("min")
    report.per_row(
        "duplicate_date",
        positions,
        col,
        lambda i: (
            f"date {dates.iloc[i]:%Y-%m-%d} already appears in row {spreadsheet_row(first.iloc[i])}; "
            "each period must appear once (or name the geo column and set aggregate_geos: true)."
        ),
    )


def _check_sequence(dates: pd.Series, config: ModelConfig, report: Report) -> str | None:
    valid = dates.dropna()
    col = config.date_column
    if len(valid) < 2:
        report.error(
            "too_few_periods", f"only {len(valid)} dated periods; a model needs at least 52 weeks.", column=col
        )
        return None
    if not valid.is_monotonic_increasing:
        pos = int(np.flatnonzero(np.diff(valid.to_numpy()) < np.timedelta64(0))[0]) + 1
        report.warn(
            "unsorted_dates",
            f"dates are not in order (row {spreadsheet_row(valid.index[pos])} comes before the row above it); "
            "they will be sorted.",
            column=col,
        )
    ordered = valid.drop_duplicates().sort_values()
    steps = ordered.diff().dropna().dt.days.astype(int)
    if steps.empty:
        return None
    base = int(steps.mode().min())  # the usual step; odd steps are reported below
    frequency = FREQ_DAYS.get(base)
    if frequency is None:
        if 28 <= base <= 31:
            report.error(
                "unsupported_frequency",
                "the data looks monthly; models need weekly or daily periods.",
                column=col,
            )
        else:
            report.error(
                "mixed_frequency",
                f"periods are usually {base} days apart; use weekly or daily data.",
                column=col,
            )
        return None
    off_grid = steps[steps % base != 0]
    if frequency == "weekly":
        weekdays = ordered.dt.dayofweek
        main_day = int(weekdays.mode().iloc[0])
        off_grid = steps[(steps % 7 != 0)]
        report.per_row(
            "mixed_frequency",
            np.sort(ordered.index[weekdays != main_day].to_numpy()),
            col,
            lambda i: (
                f"{dates[i]:%Y-%m-%d} is a {dates[i]:%A} but the other weeks start on "
                f"{pd.Timestamp(2024, 1, 1 + main_day):%A}s; weekly data needs one week start."
            ),
        )
    elif len(off_grid):
        report.error("mixed_frequency", "the period lengths vary; use one frequency.", column=col)
    _check_gaps(dates, ordered, steps, base, frequency, config, report)
    n_periods = int((ordered.iloc[-1] - ordered.iloc[0]).days // base) + 1
    minimum = MIN_PERIODS[frequency]
    if n_periods < minimum:
        report.error(
            "too_few_periods",
            f"only {n_periods} {frequency} periods; a model needs at least {minimum} "
            f"({'one year' if frequency == 'weekly' else 'about six months'}) to separate media from seasonality.",
            column=col,
        )
    return frequency


def _check_gaps(
    dates: pd.Series,
    ordered: pd.Series,
    steps: pd.Series,
    base: int,
    frequency: str,
    config: ModelConfig,
    report: Report,
) -> None:
    """Missing periods between consecutive dates (``ordered``: unique, sorted, indexed by data row)."""
    step = steps.to_numpy()
    at = np.flatnonzero((step > base) & (step % base == 0)) + 1  # positions in ordered of the date after each gap
    rows = ordered.index.to_numpy()
    low, high = np.minimum(rows[at - 1], rows[at]), np.maximum(rows[at - 1], rows[at])
    # a gap next to an unreadable or repeated date is that row's fault, already reported
    broken = np.flatnonzero((dates.isna() | dates.duplicated(keep=False)).to_numpy())
    after_low = np.append(broken, np.iinfo(np.int64).max)[np.searchsorted(broken, low)]  # first broken row ≥ low
    clean = after_low > high
    at = at[clean]
    by_row = dict(zip(rows[at].tolist(), at.tolist(), strict=True))
    unit = "week" if frequency == "weekly" else "day"
    fill = config.fill_missing_periods == "zero"

    def message(i: int) -> str:
        pos = by_row[i]
        n_missing = int(step[pos - 1]) // base - 1
        what = f"{n_missing} {unit}{'s' if n_missing > 1 else ''} missing between "
        what += f"{ordered.iloc[pos - 1]:%Y-%m-%d} and {ordered.iloc[pos]:%Y-%m-%d}"
        if fill:
            return f"{what}; filled with zero spend, the KPI and controls interpolated from the neighbouring periods."
        return f"{what}; add the missing periods or set fill_missing_periods: zero."

    report.per_row("missing_periods", sorted(by_row), config.date_column, message, warning=fill)


def _check_spend_coverage(values: pd.Series, col: str, report: Report) -> None:
    v = values.dropna()
    if len(v) == 0:
        return
    active = float((v > 0).mean())
    if active == 0:
        report.error(
            "no_spend",
            "the channel has no spend in any period, so its effect cannot be estimated; "
            "remove it from channel_columns.",
            column=col,
        )
    elif active < SPARSE_SHARE:
        report.warn(
            "sparse_spend",
            f"the channel spends in only {active:.0%} of periods; its effect will be very uncertain.",
            column=col,
        )


def _check_units(numbers: dict[str, pd.Series], config: ModelConfig, report: Report) -> None:
    """Spend and the KPI's value plainly in different units, where the fit puts its prior on media's share of the
    KPI instead of on ROAS (:func:`mmmlib.roas_priors.prior_basis`): said before the fit, not only after."""
    from mmmlib import roas_priors
    from mmmlib.summary import value_per_kpi

    spend = [c for c in config.channel_columns if c in numbers]
    rpk = config.revenue_per_kpi
    if not spend or (isinstance(rpk, str) and rpk not in numbers):
        return
    used = [*spend, config.target_column, *([rpk] if isinstance(rpk, str) else [])]
    frame = pd.DataFrame({c: numbers[c] for c in used}).dropna()
    value, valued = value_per_kpi(config, frame)
    if not valued:
        return  # a KPI with no value per unit gets the share prior anyway, and says so
    reason = roas_priors.units_differ(
        float(frame[spend].to_numpy().sum()), float(frame[config.target_column].sum()) * value
    )
    if reason is not None:
        report.warn("spend_units", f"{reason}. {roas_priors.SHARE_PRIOR_INSTEAD}")


def _check_target_values(values: pd.Series, col: str, report: Report) -> None:
    report.per_row(
        "non_positive_target",
        np.flatnonzero((values <= 0).to_numpy()),
        col,
        lambda i: f"the KPI is {values.iloc[i]:g}; a KPI of zero or below is unusual — check this period.",
        warning=True,
    )


def _clean_frame(
    dates: pd.Series, numbers: dict[str, pd.Series], config: ModelConfig, frequency: str | None, report: Report
) -> pd.DataFrame:
    frame = pd.DataFrame({config.date_column: dates.to_numpy(), **{col: v.to_numpy() for col, v in numbers.items()}})
    frame = frame.sort_values(config.date_column, kind="stable").reset_index(drop=True)
    if frequency and config.fill_missing_periods == "zero":
        step = f"{PERIOD_DAYS[frequency]}D"
        full = pd.date_range(frame[config.date_column].iloc[0], frame[config.date_column].iloc[-1], freq=step)
        if len(full) != len(frame):
            frame = frame.set_index(config.date_column).reindex(full)
            frame.index.name = config.date_column
            frame[config.channel_columns] = frame[config.channel_columns].fillna(0.0)
            others = [c for c in frame.columns if c not in config.channel_columns]
            frame[others] = frame[others].interpolate(limit_direction="both")
            frame = frame.reset_index()
    constant = [c for c in config.control_columns if frame[c].nunique(dropna=True) <= 1]
    return frame.drop(columns=constant)
