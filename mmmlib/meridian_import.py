"""A Google Meridian model as a run's parts, from the converter's neutral exchange (no Meridian imported here).

:mod:`mmmlib.meridian_convert` (in Meridian's own environment) writes Meridian's own numbers: every draw's incremental
outcome per period, its expected outcome, ROI and marginal ROI, and the parameters of its curves with the scalings it
applied. Meridian's paid media response is Hill after normalised geometric carry-over on media divided by a per-geo,
per-channel scale, times a per-geo coefficient and KPI scale (the converter checks this identity on every draw): that
is this product's ``geometric`` + ``hill`` structure with impressions as media, so a national Meridian model maps onto
our posterior exactly and our curves, optimiser and views work on it unchanged. What has no counterpart stays
Meridian's: its knot baseline (shown as the trend; forecasts cannot extend it, so they give media contributions only),
its ROI and marginal ROI (the channel table shows Meridian's, from its per-draw values), its R-hat and ESS, and its
model review.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mmmlib import baseline
from mmmlib.config import ModelConfig
from mmmlib.errors import InputError
from mmmlib.pymc_import import Imported

log = logging.getLogger("mmmlib.meridian_import")

SOURCE = "meridian"
FORMAT = "mmmlib-meridian-exchange"
FORMAT_VERSIONS = (1,)
DATE = "time"  # Meridian's time column name, kept as the run's date column
KPI = "kpi"
REVENUE_PER_KPI = "revenue_per_kpi"
NO_BASELINE_FORECAST = "baseline_forecast"  # idata attribute: "none" when the baseline cannot be extended


def read(
    path: str | Path, kpi_type: str | None = None, revenue_per_kpi: float | None = None, workdir: Path | None = None
) -> Imported:
    """Convert the saved model in Meridian's environment into ``workdir`` (the run's ``meridian/``: the exchange's
    JSON and the converter's log stay as part of the audit trail; the draws move into ``posterior.nc``), then read
    it. ``kpi_type`` and ``revenue_per_kpi`` are Meridian's own; the request's are ignored with a note."""
    from mmmlib import meridian_runner

    with tempfile.TemporaryDirectory(prefix="meridian-exchange-") as tmp:
        out = meridian_runner.convert(Path(path), workdir or Path(tmp))
        imported = read_exchange(out / "exchange.nc", out / "exchange.json")
        (out / "exchange.nc").unlink()
    if kpi_type and kpi_type != imported.config.kpi_type:
        log.warning("kpi_type %s ignored: the Meridian model says %s", kpi_type, imported.config.kpi_type)
    return imported


def read_exchange(nc: Path, meta: Path) -> Imported:
    """The exchange files as a run's parts: a national model as our national posterior."""
    info = json.loads(meta.read_text())
    if info.get("format") != FORMAT or info.get("format_version") not in FORMAT_VERSIONS:
        raise InputError(f"{meta.name} is not an exchange this mmmlib reads (format {info.get('format')!r}).")
    structure = info["structure"]
    _check_structure(structure)
    ds = xr.load_dataset(nc)
    if len(ds["geo"]) > 1:
        raise InputError(
            f"This Meridian model has {len(ds['geo'])} geos; geo-level Meridian models are not imported yet "
            "(a national model is)."
        )
    ds = ds.isel(geo=0, drop=True)
    dates = pd.DatetimeIndex(pd.to_datetime(ds["time"].values))
    channels = [str(c) for c in ds["channel"].values]
    controls = [str(c) for c in ds["control"].values] if "control" in ds.dims else []
    counted = structure.get("kpi_type") == "non_revenue"
    has_rpk = counted and REVENUE_PER_KPI in ds.data_vars
    frame = _frame(ds, dates, channels, controls, has_rpk)
    config = ModelConfig(
        date_column=DATE,
        target_column=KPI,
        channel_columns=channels,
        control_columns=[c for c in controls if not baseline.is_trend(c)],
        media_columns={c: f"{c}_impressions" for c in channels},
        adstock="geometric",
        saturation="hill",
        baseline="flat",
        trend=False,
        adstock_max_lag=int(structure["max_lag"]) + 1,  # Meridian's lags 0..max_lag
        yearly_seasonality=0,
        kpi_type="count" if counted else "revenue",
        revenue_per_kpi=REVENUE_PER_KPI if has_rpk else None,
    )
    tree = _posterior(ds, dates, channels, controls)
    tree["source_metrics"] = _source_metrics(ds)
    tree.attrs.update(
        {
            "source": SOURCE,
            NO_BASELINE_FORECAST: "none",
            "meridian": json.dumps({k: v for k, v in info.items() if k not in ("variables",)}),
        }
    )
    post = ds
    sampler = {
        "sampler": "meridian (tfp NUTS)",
        "chains": int(post.sizes["chain"]),
        "tune": None,
        "draws": int(post.sizes["draw"]),
        "target_accept": None,
    }
    diag = info.get("diagnostics") or {}
    diagnostics = {
        "r_hat_max": float(diag["max_rhat"]),
        "ess_bulk_min": float(diag["min_ess_bulk"]),
        "ess_tail_min": float(diag["min_ess_tail"]),
        "divergences": int(diag.get("divergences") or 0),
    }
    version = str(structure.get("meridian_version", ""))
    return Imported(
        tree, config, frame, SOURCE, version, sampler, diagnostics, lambda summary: amend(summary, tree, diag)
    )


def _source_metrics(ds: xr.Dataset) -> xr.Dataset:
    """Meridian's own per-draw ROI, marginal ROI and response curves, kept in the run beside the posterior."""
    keep = [v for v in ("roi", "mroi", "roi_kpi", "prior_roi", "curve_kpi", "curve_outcome", "curve_spend") if v in ds]
    return ds[keep].drop_vars([c for c in ("geo",) if c in ds[keep].coords])


def amend(summary: dict[str, Any], tree: xr.DataTree, diag: dict[str, Any]) -> None:
    """Meridian's ROI and marginal ROI in the channel table (intervals from its draws at the run's probability),
    the "not identified" rule on them, its model review, and the advice redone from those."""
    from mmmlib import identification
    from mmmlib.analysis import interval
    from mmmlib.insights import recommendations

    prob = summary["hdi_prob"]
    metrics = tree["source_metrics"].to_dataset()
    numbers = meridian_numbers(metrics)
    prior = numbers.get("prior_roi")
    verdicts = identification.identify(numbers["roi"], prior, summary["breakeven_roas"], prob)
    for j, row in enumerate(summary["channels"]):
        row["roas"] = interval(numbers["roi"][:, j], prob)
        if "mroi" in numbers:
            row["mroas"] = interval(numbers["mroi"][:, j], prob)
        verdict = verdicts[j]
        row["identified"] = verdict.pop("identified")
        row["identification"] = verdict
    summary["source_review"] = diag.get("review")
    summary["source_accuracy"] = diag.get("predictive_accuracy")
    summary["recommendations"] = recommendations(summary)


def _check_structure(structure: dict[str, Any]) -> None:
    """Refuse, naming it, what our curves cannot evaluate (the converter already refused RF and organic media)."""
    refusals = []
    for spec in set(structure.get("adstock_decay_spec") or ["geometric"]):
        if spec != "geometric":
            refusals.append(f"its carry-over is {spec} (geometric is imported)")
    for spec in set(structure.get("saturation_spec") or ["hill"]):
        if spec != "hill":
            refusals.append(f"its returns curve is {spec} (Hill is imported)")
    if structure.get("hill_before_adstock"):
        refusals.append("it applies Hill before carry-over (hill_before_adstock=True)")
    if refusals:
        raise InputError("This Meridian model cannot be imported: " + "; ".join(refusals) + ".")


def _frame(ds: xr.Dataset, dates: pd.DatetimeIndex, channels: list[str], controls: list[str], rpk: bool) -> Any:
    """The data the model was fitted on, one row per period: KPI, spend and impressions per channel, controls."""
    frame = pd.DataFrame({DATE: dates, KPI: ds["kpi"].values})
    media = _media(ds)
    for j, ch in enumerate(channels):
        frame[ch] = _spend(ds).values[:, j]
        frame[f"{ch}_impressions"] = media.values[:, j]
    for c in controls:
        if not baseline.is_trend(c):
            frame[c] = ds["controls"].sel(control=c).values
    if rpk:
        frame[REVENUE_PER_KPI] = ds[REVENUE_PER_KPI].values
    return frame


def _media(ds: xr.Dataset) -> xr.DataArray:
    """Impressions per fitted period and channel (Meridian may hold earlier media periods for carry-over: dropped)."""
    media = ds["media"]
    if "media_time" in media.dims:
        media = media.sel(media_time=ds["time"].values).rename(media_time="time")
    return media.transpose("time", "channel")


def _spend(ds: xr.Dataset) -> xr.DataArray:
    """Spend per period and channel; a total per channel (Meridian allows one) spread as the impressions are."""
    spend = ds["media_spend"]
    if "time" in spend.dims:
        return spend.transpose("time", "channel")
    media = _media(ds)
    share = media / media.sum("time").where(media.sum("time") > 0, 1.0)
    return (share * spend).transpose("time", "channel")


def _posterior(ds: xr.Dataset, dates: pd.DatetimeIndex, channels: list[str], controls: list[str]) -> xr.DataTree:
    """Meridian's draws in the variables :mod:`mmmlib.analysis` reads, on the KPI divided by Meridian's KPI scale."""
    scale = float(ds["kpi_scale"].values)
    coords = {"chain": ds["chain"].values, "draw": ds["draw"].values, "date": dates.values, "channel": channels}
    cd = ("chain", "draw")

    def per_period(name: str) -> np.ndarray:
        return np.asarray(ds[name].transpose(*cd, "time", ...).values, dtype=float) / scale

    intercept = per_period("intercept")  # (chain, draw, date): Meridian's knots baseline
    level = intercept.mean(axis=2)
    parts = [intercept - level[..., None]]  # its movement over time, shown as the trend
    names = [baseline.TREND]
    if controls:
        ctl = per_period("controls_contribution")  # (chain, draw, date, control)
        parts += [ctl[..., k] for k in range(len(controls))]
        names += [f"control_{c}" if baseline.is_trend(c) else c for c in controls]
    posterior = xr.Dataset(
        {
            "channel_contribution": ((*cd, "date", "channel"), per_period("channel_contribution")),
            "mu": ((*cd, "date"), per_period("mu")),
            "intercept_contribution": (cd, level),
            "control_contribution": ((*cd, "date", "control"), np.stack(parts, axis=-1)),
            "adstock_alpha": ((*cd, "channel"), ds["alpha_m"].transpose(*cd, "channel").values),
            "saturation_kappa": ((*cd, "channel"), ds["ec_m"].transpose(*cd, "channel").values),
            "saturation_slope": ((*cd, "channel"), ds["slope_m"].transpose(*cd, "channel").values),
            "saturation_beta": ((*cd, "channel"), ds["beta_gm"].transpose(*cd, "channel").values),
            "y_sigma": (cd, np.asarray(ds["sigma"].transpose(*cd).values, dtype=float)),
        },
        coords={**coords, "control": names},
    )
    constant = xr.Dataset(
        {
            "channel_data": (("date", "channel"), np.asarray(_media(ds).values, dtype=float)),
            "channel_spend": (("date", "channel"), np.asarray(_spend(ds).values, dtype=float)),
            "channel_scale": (("channel",), np.asarray(ds["media_scale"].values, dtype=float)),
            "target_data": (("date",), np.asarray(ds["kpi"].values, dtype=float)),
            "target_scale": ((), scale),
        },
        coords={"date": dates.values, "channel": channels},
    )
    stats = xr.Dataset(
        {"diverging": (cd, np.asarray(ds["diverging"].values, dtype=bool))},
        coords={"chain": ds["chain"].values, "draw": ds["draw"].values},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant, "sample_stats": stats})


def meridian_numbers(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Meridian's own per-draw ROI and marginal ROI ``(draw, channel)`` (revenue per unit of spend when it had
    revenue per KPI), and its prior ROI draws when the exchange has them, for the channel table."""
    out = {}
    for name in ("roi", "mroi", "roi_kpi", "prior_roi"):
        if name in ds.data_vars:
            values = np.asarray(ds[name].transpose(..., "channel").values, dtype=float)
            out[name] = values.reshape(-1, values.shape[-1])  # (chain, draw) or (prior_chain, prior_draw) first
    return out
