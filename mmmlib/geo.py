"""A hierarchical geo fit seen as one national model plus one model per geo, in totals (numpy and xarray only).

:mod:`mmmlib.geo_model` fits per capita with one scale over all geos. Each geo's slice here is shaped like a national
fit (no ``geo`` dimension) with its population factor folded into its scales, so every function of
:mod:`mmmlib.analysis` works on it unchanged. The national roll-up sums the additive parts (contributions, the
prediction, baseline, seasonality, controls) over geos; its response to national spend is the sum of the geos'
responses with the spend split as each geo's recent share (:attr:`mmmlib.analysis.Posterior.parts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

GEO = "geo"
ROLLUP_DRAWS = 250  # draws summed over the geos at a time (:func:`_geo_sum`)
# posterior variables that add up over geos (in the model's scaled units, each geo × its population factor)
ADDITIVE = (
    "channel_contribution",
    "mu",
    "intercept_contribution",
    "yearly_seasonality_contribution",
    "control_contribution",
)


def is_geo(idata: Any) -> bool:
    """Whether a posterior comes from a hierarchical geo fit."""
    return "constant_data" in idata.children and GEO in idata["constant_data"].dims


def geos(idata: Any) -> list[str]:
    return [str(g) for g in idata["constant_data"][GEO].values]


def _factor(idata: Any) -> xr.DataArray:
    const = idata["constant_data"]
    if "population_factor" in const.data_vars:
        return const["population_factor"]
    return xr.DataArray(np.ones(len(const[GEO])), dims=(GEO,), coords={GEO: const[GEO].values})


def geo_slice(idata: Any, geo: str) -> xr.DataTree:
    """One geo's fit shaped as a national one, in the geo's totals (scales × its population factor)."""
    f = float(_factor(idata).sel({GEO: geo}))
    groups: dict[str, xr.Dataset] = {}
    for name in idata.children:
        ds = idata[name].to_dataset()
        if name == "posterior":  # a stored run keeps national sums only (compact): not this geo's
            ds = ds.drop_vars([v for v in ADDITIVE if v in ds.data_vars and GEO not in ds[v].dims])
        if GEO in ds.dims:
            ds = ds.sel({GEO: geo}, drop=True)
        groups[name] = ds
    const = groups["constant_data"]
    updates = {
        "target_scale": const["target_scale"] * f,
        "channel_scale": const["channel_scale"] * f,
        "channel_data": const["channel_data"] * f,
        "target_data": const["target_data"] * f,
    }
    groups["constant_data"] = const.assign(updates).drop_vars("population_factor", errors="ignore")
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(idata.attrs)
    return tree


def national(idata: Any) -> xr.DataTree:
    """The national roll-up: additive parts summed over geos, everything else shared by geos kept, the rest (each
    geo's own parameters) left to :func:`geo_slice`."""
    f = _factor(idata)
    groups: dict[str, xr.Dataset] = {}
    for name in idata.children:
        ds = idata[name].to_dataset()
        if name == "posterior":
            out = {}
            for var, da in ds.data_vars.items():
                if GEO not in da.dims:
                    out[var] = da
                elif var in ADDITIVE:
                    out[var] = _geo_sum(da, f)
                elif var == "y_sigma":  # independent noise per geo: variances add
                    out[var] = np.sqrt(((da * f) ** 2).sum(GEO))
            ds = _with_coords(out, ds)
        elif name == "constant_data":
            out = {}
            for var, da in ds.data_vars.items():
                if var in ("target_data", "channel_data"):
                    out[var] = (da * f).sum(GEO)
                elif var == "channel_spend":
                    out[var] = da.sum(GEO)
                elif var == "channel_scale":  # unused by the roll-up's curves (its parts carry theirs)
                    out[var] = da.max(GEO) if GEO in da.dims else da
                elif GEO not in da.dims:
                    out[var] = da
            ds = _with_coords(out, ds)
        elif name in ("log_likelihood", "observed_data", "fit_data", "prior"):
            continue
        elif GEO in ds.dims:
            continue
        groups[name] = ds
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(idata.attrs)
    return tree


def _geo_sum(da: xr.DataArray, f: xr.DataArray) -> xr.DataArray:
    """``(da × f)`` summed over the geos, ``ROLLUP_DRAWS`` draws at a time: in one piece this held float64 arrays of
    every draw, period and geo at once, the peak of scoring a geo fit (2.95 → 1.96 GB in a profiled 40-geo pair
    member; 16.25 GB in full mode at 40 geos before, docs/geo.md) and then of writing its run (:func:`compact`,
    6.46 GB for a 40-geo mixture of 2 × 1,000 draws). Each draw's sum is the same either way."""
    draws = da.sizes.get("draw", 0)
    if draws <= ROLLUP_DRAWS:
        return (da * f).sum(GEO)
    blocks = [(da.isel(draw=slice(i, i + ROLLUP_DRAWS)) * f).sum(GEO) for i in range(0, draws, ROLLUP_DRAWS)]
    return xr.concat(blocks, dim="draw")


def _with_coords(data: dict[str, xr.DataArray], like: xr.Dataset, keep_geo: bool = False) -> xr.Dataset:
    """A dataset of ``data`` with ``like``'s coordinates (a read-back posterior may hold only some variables, and
    the periods must stay), the geo's unless it was summed away."""
    coords = {k: v for k, v in like.coords.items() if keep_geo or GEO not in v.dims}
    return xr.Dataset(data).assign_coords(coords)


def spend_shares(parts: list[Any], recent: int) -> np.ndarray:
    """``(geo, channel)``: each geo's share of the channel's recent spend (equal shares for a channel none spends on):
    how national spend is split over geos when the national curves are the sum of the geos'."""
    from mmmlib.roas_priors import spend_weights

    return spend_weights(np.array([p.spend[-recent:].sum(axis=0) for p in parts]))


def compact(idata: Any) -> xr.DataTree:
    """What a geo run stores: every parameter, the additive parts per period summed over geos (their per-geo detail
    is in ``summary.json``), no pointwise log-likelihood or copy of the data, in float32. A 40-geo fit's per-geo,
    per-period draws are hundreds of MB; this keeps the file to a few MB and still serves the optimiser (each geo's
    curves), forecasts and the national views."""
    f = _factor(idata)
    groups: dict[str, xr.Dataset] = {}
    for name in idata.children:
        if name in ("log_likelihood", "fit_data", "observed_data"):
            continue
        ds = idata[name].to_dataset()
        if name == "posterior":
            out = {}
            for var, da in ds.data_vars.items():
                if var in ADDITIVE and GEO in da.dims and "date" in da.dims:
                    out[var] = _geo_sum(da, f)
                elif not (GEO in da.dims and "date" in da.dims):
                    out[var] = da
            ds = _with_coords(out, ds, keep_geo=True)
            ds = ds.assign({v: ds[v].astype("float32") for v in ds.data_vars if ds[v].dtype == "float64"})
        groups[name] = ds
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(idata.attrs)
    return tree
