"""A model fitted and saved elsewhere with PyMC-Marketing (``MMM.save``) read as a run's parts, with no refit.

PyMC-Marketing's MMM is the model our own fits use, so its saved posterior already holds what :mod:`mmmlib.analysis`
reads (``channel_contribution``, the carry-over and returns parameters, ``mu``, the channel and target scales). What
differs is put in our conventions here, once: controls enter the saved model raw, ours centred and scaled
(:func:`mmmlib.baseline.control_scaling`), so their coefficients and the intercept are re-expressed (the same model,
the same ``mu``). Components our analysis cannot evaluate are refused with a sentence naming them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from mmmlib import baseline, structures
from mmmlib.config import ModelConfig
from mmmlib.errors import InputError
from mmmlib.importing import Imported

log = logging.getLogger("mmmlib.pymc_import")

SOURCE = "pymc-marketing"
PRIOR_DRAWS = 500  # prior draws of the channel contributions, for the "not identified" rule (as our fits keep)


def load_model(path: str | Path) -> Any:
    """PyMC-Marketing's own ``MMM.load`` (the model rebuilt from the file), or one sentence saying why not."""
    import arviz as az
    from pymc_marketing.mmm import MMM

    name = Path(path).name
    try:
        tree = az.from_netcdf(str(path))
    except Exception as exc:  # not netCDF at all: the library's messages name HDF5 internals
        raise InputError(f"{name} is not a PyMC-Marketing model: it is not a netCDF file saved by MMM.save.") from exc
    attrs = dict(tree.attrs)
    if "model_type" not in attrs or "id" not in attrs:
        raise InputError(f"{name} is not a PyMC-Marketing model: it has no model_type or id, which MMM.save writes.")
    if attrs["model_type"] != MMM._model_type:
        raise InputError(
            f"{name} holds a PyMC-Marketing {attrs['model_type']!r} model (format {attrs.get('version', '?')}); "
            f"this product imports {MMM._model_type!r} models, as pymc-marketing 0.16 and later save them."
        )
    if "posterior" not in tree.children:
        raise InputError(f"{name} holds a PyMC-Marketing model saved before it was fitted (no posterior).")
    try:
        return MMM.load(str(path))
    except Exception as exc:
        raise InputError(
            f"{name} could not be loaded by pymc-marketing {_version()}: {str(exc).splitlines()[0]} "
            "(a model saved by another pymc-marketing version may need that version)."
        ) from exc


def _version() -> str:
    import pymc_marketing

    return str(pymc_marketing.__version__)


def _attr(attrs: dict[str, Any], key: str) -> Any:
    """A saved model's attribute: JSON-encoded for structures, plain text for names."""
    value = attrs.get(key)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _family(registry: dict[str, Any], spec: dict[str, Any], what: str) -> str:
    cls = str(spec.get("__type__", "")).rsplit(".", 1)[-1]
    for name, family in registry.items():
        if family.component == cls:
            return name
    known = ", ".join(f.component for f in registry.values())
    raise InputError(f"The model's {what} is {cls or 'unnamed'}; imports read {known}.")


def check_supported(attrs: dict[str, Any]) -> tuple[str, str, int]:
    """The carry-over family, returns family and carry-over length of a saved model, or a sentence naming what
    this product cannot evaluate yet."""
    refusals = []
    dims = _attr(attrs, "dims") or []
    if dims:
        refusals.append(f"it has dims {tuple(dims)} (geo-level PyMC-Marketing models are not imported yet)")
    varying = (("time_varying_intercept", "a time-varying intercept"), ("time_varying_media", "time-varying media"))
    for key, what in varying:
        if _attr(attrs, key):
            refusals.append(f"it has {what}")
    if _attr(attrs, "mu_effects"):
        refusals.append("it has additive effects (mu_effects) beyond channels, controls and seasonality")
    if _attr(attrs, "cost_per_unit"):
        refusals.append("its channels are impressions with a cost per unit (import the spend model instead)")
    if (_attr(attrs, "link") or "identity") != "identity":
        refusals.append(f"its link is {_attr(attrs, 'link')}")
    if _attr(attrs, "adstock_first") is False:
        refusals.append("it saturates before carry-over (adstock_first=False)")
    adstock = _attr(attrs, "adstock") or {}
    if adstock.get("normalize") is False:
        refusals.append("its carry-over weights are not normalised")
    if refusals:
        raise InputError("This PyMC-Marketing model cannot be imported: " + "; ".join(refusals) + ".")
    ad = _family(structures.ADSTOCK_FAMILIES, adstock, "carry-over")
    sat = _family(structures.SATURATION_FAMILIES, _attr(attrs, "saturation") or {}, "returns curve")
    return ad, sat, int(adstock.get("l_max", 8))


def read(
    path: str | Path, kpi_type: str | None = None, revenue_per_kpi: float | None = None, seed: int = 0
) -> Imported:
    """The saved model at ``path`` as a run's parts: its posterior in our conventions, a config, its data."""
    mmm = load_model(path)
    idata = mmm.idata
    attrs = dict(idata.attrs)
    adstock, saturation, l_max = check_supported(attrs)
    date_col = str(_attr(attrs, "date_column") or "date")
    channels = [str(c) for c in _attr(attrs, "channel_columns")]
    controls = [str(c) for c in (_attr(attrs, "control_columns") or [])]
    target = str(_attr(attrs, "target_column") or "y")
    renamed = {c: f"control_{c}" for c in controls if baseline.is_trend(c)}  # our trend's names mean our trend
    fit = idata["fit_data"].to_dataset().to_dataframe().reset_index()
    ours = [renamed.get(c, c) for c in controls]
    frame = fit.rename(columns={"date": date_col, **renamed})[[date_col, *channels, *ours]]
    frame[target] = fit[target].to_numpy()
    config = ModelConfig(
        date_column=date_col,
        target_column=target,
        channel_columns=channels,
        control_columns=ours,
        adstock=adstock,
        saturation=saturation,
        baseline="flat",
        trend=False,
        adstock_max_lag=l_max,
        yearly_seasonality=int(_attr(attrs, "yearly_seasonality") or 0),
        kpi_type=kpi_type,
        revenue_per_kpi=revenue_per_kpi,
    )
    tree = _our_conventions(idata, frame, config, renamed)
    _add_prior(tree, mmm, seed)
    post = idata["posterior"]
    sampler = {
        "sampler": str(post.attrs.get("inference_library", "unknown")),
        "chains": int(post.sizes["chain"]),
        "tune": int(post.attrs.get("tuning_steps", 0) or 0),
        "draws": int(post.sizes["draw"]),
        "target_accept": None,
    }
    version = str(post.attrs.get("pymc_marketing_version") or _version())
    return Imported(tree, config, frame, SOURCE, version, sampler)


def _our_conventions(idata: Any, frame: pd.DataFrame, config: ModelConfig, renamed: dict[str, str]) -> Any:
    """The groups analysis reads, with raw-control coefficients re-expressed on centred, scaled controls:
    ``gamma x = (gamma s) (x - c) / s + gamma c``, the ``gamma c`` moving into the intercept. ``mu`` is unchanged."""
    import xarray as xr

    groups = {g: idata[g].to_dataset() for g in ("posterior", "sample_stats", "constant_data") if g in idata.children}
    post = groups["posterior"]
    if config.control_columns:
        names = [renamed.get(str(c), str(c)) for c in post["control"].values]
        post = post.assign_coords(control=names)
        scaling = [baseline.control_scaling(frame[c].to_numpy(dtype=float)) for c in names]
        centre = xr.DataArray([c for c, _ in scaling], dims="control", coords={"control": names})
        scale = xr.DataArray([s for _, s in scaling], dims="control", coords={"control": names})
        gamma = post["gamma_control"]
        post = post.assign(
            gamma_control=gamma * scale,
            intercept_contribution=post["intercept_contribution"] + (gamma * centre).sum("control"),
            control_contribution=post["control_contribution"] - gamma * centre,
        )
        const = groups["constant_data"]
        groups["constant_data"] = const.assign_coords(control=names)
    groups["posterior"] = post
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update({k: v for k, v in idata.attrs.items() if isinstance(v, (str, int, float))})
    return tree


def _add_prior(tree: Any, mmm: Any, seed: int) -> None:
    """The saved model's own prior for the channel contributions (``prior`` group), drawn from the rebuilt model."""
    import pymc as pm
    import xarray as xr

    with mmm.model:
        prior = pm.sample_prior_predictive(draws=PRIOR_DRAWS, var_names=["channel_contribution"], random_seed=seed)
    da = prior["prior"]["channel_contribution"]
    tree["prior"] = xr.Dataset({"channel_contribution": da.transpose("chain", "draw", "date", "channel")})
