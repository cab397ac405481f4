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

from mmmlib import baseline, geo
from mmmlib.config import ModelConfig
from mmmlib.errors import InputError
from mmmlib.importing import Imported

log = logging.getLogger("mmmlib.meridian_import")

SOURCE = "meridian"
FORMAT = "mmmlib-meridian-exchange"
FORMAT_VERSIONS = (1,)
DATE = "time"  # Meridian's time column name, kept as the run's date column
KPI = "kpi"
REVENUE_PER_KPI = "revenue_per_kpi"
GEO = geo.GEO
POPULATION = "population"
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
    """The exchange files as a run's parts: a national model as our national posterior, a geo model as our geo
    posterior (one part per geo, the national roll-up their sum: :mod:`mmmlib.geo`)."""
    info = json.loads(meta.read_text())
    if info.get("format") != FORMAT or info.get("format_version") not in FORMAT_VERSIONS:
        raise InputError(f"{meta.name} is not an exchange this mmmlib reads (format {info.get('format')!r}).")
    structure = info["structure"]
    _check_structure(structure)
    ds = xr.load_dataset(nc)
    geos = [str(g) for g in ds["geo"].values]
    national = len(geos) == 1
    controls = [str(c) for c in ds["control"].values] if "control" in ds.dims else []
    names = {c: f"control_{c}" if baseline.is_trend(c) else c for c in controls}  # our trend's names mean our trend
    counted = structure.get("kpi_type") == "non_revenue"
    has_rpk = counted and REVENUE_PER_KPI in ds.data_vars
    frame = _frame(ds, names, has_rpk)
    channels = [str(c) for c in ds["channel"].values]
    config = ModelConfig(
        date_column=DATE,
        target_column=KPI,
        channel_columns=channels,
        control_columns=list(names.values()),
        media_columns={c: f"{c}_impressions" for c in channels},
        adstock="geometric",
        saturation="hill",
        baseline="flat",
        trend=False,
        adstock_max_lag=int(structure["max_lag"]) + 1,  # Meridian's lags 0..max_lag
        yearly_seasonality=0,
        kpi_type="count" if counted else "revenue",
        revenue_per_kpi=REVENUE_PER_KPI if has_rpk else None,
        **({} if national else {"geo_column": GEO, "geo_model": "hierarchical", "population_column": POPULATION}),
    )
    tree = _posterior(ds, list(names.values()))
    if national:
        tree = geo.geo_slice(tree, geos[0])
        frame = frame.drop(columns=[GEO, POPULATION])
    tree["source_metrics"] = _source_metrics(ds)
    tree.attrs.update(
        {
            "source": SOURCE,
            NO_BASELINE_FORECAST: "none",
            "meridian": json.dumps({k: v for k, v in info.items() if k not in ("variables",)}),
        }
    )
    sampler = {
        "sampler": "meridian (tfp NUTS)",
        "chains": int(ds.sizes["chain"]),
        "tune": None,
        "draws": int(ds.sizes["draw"]),
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


def _frame(ds: xr.Dataset, controls: dict[str, str], rpk: bool) -> pd.DataFrame:
    """The data the model was fitted on, one row per period and geo: KPI, spend and impressions per channel,
    controls, population (a national model's single geo and population are dropped by the caller)."""
    media, spend = _media(ds), _spend(ds)
    rows = []
    for g, name in enumerate(ds["geo"].values):
        frame = pd.DataFrame({DATE: pd.to_datetime(ds["time"].values), GEO: str(name)})
        frame[POPULATION] = float(ds["population"].values[g])
        frame[KPI] = ds["kpi"].values[g]
        for j, ch in enumerate(ds["channel"].values):
            frame[str(ch)] = spend.values[g, :, j]
            frame[f"{ch}_impressions"] = media.values[g, :, j]
        for raw, ours in controls.items():
            frame[ours] = ds["controls"].sel(control=raw).values[g]
        if rpk:
            frame[REVENUE_PER_KPI] = ds[REVENUE_PER_KPI].values[g]
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def _media(ds: xr.Dataset) -> xr.DataArray:
    """Impressions ``(geo, time, channel)`` per fitted period (earlier media periods Meridian keeps for carry-over
    are dropped: the contributions are Meridian's own, only the forecast's carry-in starts at the data)."""
    media = ds["media"]
    if "media_time" in media.dims:
        media = media.sel(media_time=ds["time"].values).rename(media_time="time")
    return media.transpose("geo", "time", "channel")


def _spend(ds: xr.Dataset) -> xr.DataArray:
    """Spend ``(geo, time, channel)``; a total per channel (Meridian allows one) spread as the impressions are."""
    spend = ds["media_spend"]
    if "time" in spend.dims:
        return spend.transpose("geo", "time", "channel")
    media = _media(ds)
    total = media.sum(("geo", "time"))
    return (media / total.where(total > 0, 1.0) * spend).transpose("geo", "time", "channel")


def _posterior(ds: xr.Dataset, controls: list[str]) -> xr.DataTree:
    """Meridian's draws in our geo posterior's variables (:mod:`mmmlib.geo`): each geo on its KPI divided by
    Meridian's KPI scale for it, that scale as the geo's population factor, so every geo's slice and the national
    sum come out in KPI units."""
    f = np.asarray(ds["kpi_scale"].values, dtype=float)  # (geo,)
    geos = [str(g) for g in ds["geo"].values]
    channels = [str(c) for c in ds["channel"].values]
    dates = pd.to_datetime(ds["time"].values).values
    cd = ("chain", "draw")

    def per_period(name: str) -> np.ndarray:  # (chain, draw, date, geo, ...) over each geo's scale
        values = np.asarray(ds[name].transpose(*cd, "time", "geo", ...).values, dtype=float)
        return values / f.reshape(1, 1, 1, -1, *([1] * (values.ndim - 4)))

    intercept = per_period("intercept")  # (chain, draw, date, geo): Meridian's knots baseline
    level = intercept.mean(axis=2)
    parts = [intercept - level[:, :, None, :]]  # its movement over time, shown as the trend
    if controls:
        ctl = per_period("controls_contribution")  # (chain, draw, date, geo, control)
        parts += [ctl[..., k] for k in range(len(controls))]
    sigma = np.asarray(ds["sigma"].values, dtype=float)
    sigma = np.broadcast_to(sigma[..., None] if sigma.ndim == 2 else sigma, (*sigma.shape[:2], len(geos)))

    def shared(name: str) -> tuple[tuple[str, ...], np.ndarray]:
        return ((*cd, "channel"), ds[name].transpose(*cd, "channel").values)

    posterior = xr.Dataset(
        {
            "channel_contribution": ((*cd, "date", GEO, "channel"), per_period("channel_contribution")),
            "mu": ((*cd, "date", GEO), per_period("mu")),
            "intercept_contribution": ((*cd, GEO), level),
            "control_contribution": ((*cd, "date", GEO, "control"), np.stack(parts, axis=-1)),
            "adstock_alpha": shared("alpha_m"),
            "saturation_kappa": shared("ec_m"),
            "saturation_slope": shared("slope_m"),
            "saturation_beta": ((*cd, GEO, "channel"), ds["beta_gm"].transpose(*cd, "geo", "channel").values),
            "y_sigma": ((*cd, GEO), np.array(sigma)),
        },
        coords={
            "chain": ds["chain"].values,
            "draw": ds["draw"].values,
            "date": dates,
            GEO: geos,
            "channel": channels,
            "control": [baseline.TREND, *controls],
        },
    )
    per_geo = f.reshape(-1, 1)
    media = np.asarray(_media(ds).values, dtype=float)  # (geo, date, channel)
    constant = xr.Dataset(
        {
            "channel_data": (("date", GEO, "channel"), media.transpose(1, 0, 2) / per_geo[None]),
            "channel_spend": (("date", GEO, "channel"), np.asarray(_spend(ds).values, dtype=float).transpose(1, 0, 2)),
            "channel_scale": ((GEO, "channel"), np.asarray(ds["media_scale"].values, dtype=float) / per_geo),
            "target_data": (("date", GEO), np.asarray(ds["kpi"].values, dtype=float).T / f[None, :]),
            "target_scale": ((), 1.0),
            "population_factor": ((GEO,), f),
        },
        coords={"date": dates, GEO: geos, "channel": channels},
    )
    stats = xr.Dataset(
        {"diverging": (cd, np.asarray(ds["diverging"].values, dtype=bool))},
        coords={"chain": ds["chain"].values, "draw": ds["draw"].values},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant, "sample_stats": stats})


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


def meridian_numbers(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Meridian's own per-draw ROI and marginal ROI ``(draw, channel)`` (revenue per unit of spend when it had
    revenue per KPI), and its prior ROI draws when the exchange has them, for the channel table."""
    out = {}
    for name in ("roi", "mroi", "roi_kpi", "prior_roi"):
        if name in ds.data_vars:
            values = np.asarray(ds[name].transpose(..., "channel").values, dtype=float)
            out[name] = values.reshape(-1, values.shape[-1])  # (chain, draw) or (prior_chain, prior_draw) first
    return out
