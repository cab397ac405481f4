"""One hierarchical pymc-marketing MMM over every geo of a dataset (config ``geo_model: hierarchical``).

pymc-marketing's ``MMM(..., dims=("geo",))`` supplies the geo-level likelihood, intercepts, seasonality and controls;
left alone it also gives every geo its own, unrelated media effects. Here each channel's return in geo ``g`` is drawn
around the channel's national return, on the return scale and non-centred (as Meridian's ``beta_gm`` around
``beta_m``)::

    ROAS_gc = ROAS_c exp(tau_c z_gc) / sum_g' w_g'c exp(tau_c z_g'c),
    ROAS_c ~ the ROAS prior,   tau_c ~ HalfNormal(TAU_SD),   z_gc ~ Normal(0, 1) summed to zero over the geos,
    w_gc = geo g's share of c's spend

so the spend-weighted mean of the geos' returns, the national return, has exactly the stated prior (Meridian's
``roi_m``). A fit whose spread mixes slowly is refitted with the offsets of the channels whose geos' data pin their
returns down centred (the deviation ``tau_c z_gc`` sampled itself; :func:`centring`, ``model.fit_geo_structure``).
The effect size ``beta_gc`` is derived from ROAS_gc and the curve that draw's carry-over and shape give over the
geo's fitted rows (:class:`mmmlib.roas_priors.GeoRoasParameterisation`), whatever the structure; a geo with
little data keeps a return near its channel's instead of the prior's. Carry-over and curve shape are shared by all geos
(one per channel). With ``population_column`` the KPI and media are fitted per capita (as Meridian does) with one
scale over all geos, so the hierarchy pools per-capita effects; contributions are put back to totals by
:mod:`mmmlib.geo` with each geo's ``population_factor``, stored with the fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mmmlib import baseline, roas_priors, seasonality, structures
from mmmlib.data.dataset import Dataset

GEO = "geo"  # the dimension's name in the model and the run files
# Prior scale of a channel's log-ROAS spread across geos: Meridian's default for the same spread of its log-normal
# media effects (eta_m ~ HalfNormal(1), "Default prior distributions"), "moderate regularization" toward pooling.
TAU_SD = 1.0
# A channel's geo offsets are sampled centred where the posterior sd of a geo's log deviation is under this share of
# the channel's spread (:func:`centring`); the rule of thumb that centring suits groups whose data outweigh their
# prior (Papaspiliopoulos, Roberts & Sköld 2007; Betancourt & Girolami 2013), its threshold measured in docs/geo.md.
CENTRE_BELOW = 0.5


def population_factor(dataset: Dataset) -> pd.Series:
    """Each geo's population over the mean geo's (1 for every geo without ``population_column``), by geo."""
    cfg, frame = dataset.config, dataset.geo_frame
    assert frame is not None and cfg.geo_column
    if not cfg.population_column:
        return pd.Series(1.0, index=dataset.geos)
    pop = frame.groupby(cfg.geo_column)[cfg.population_column].mean()
    return (pop / pop.mean()).reindex(dataset.geos)


def design(dataset: Dataset, form: str | None = None) -> tuple[pd.DataFrame, pd.Series, dict[str, float]]:
    """The model's inputs, one row per (period, geo): media and KPI per capita (÷ population factor), controls
    scaled over all rows as :func:`mmmlib.model.design` does, the trend by period."""
    cfg, frame = dataset.config, dataset.geo_frame
    assert frame is not None and cfg.geo_column
    factor = frame[cfg.geo_column].map(population_factor(dataset)).to_numpy(dtype=float)
    X = pd.DataFrame(
        {"date": pd.to_datetime(frame[cfg.date_column]).to_numpy(), GEO: frame[cfg.geo_column].astype(str).to_numpy()}
    )
    for ch in cfg.channel_columns:
        X[ch] = frame[cfg.media_column(ch)].to_numpy(dtype=float) / factor
    scales: dict[str, float] = {}
    for ctl in dataset.controls:
        values = frame[ctl].to_numpy(dtype=float)
        centre, scale = baseline.control_scaling(values)
        scales[ctl] = scale
        X[ctl] = (values - centre) / scale
    periods = pd.Index(sorted(X["date"].unique()))
    row = periods.get_indexer(X["date"])
    for name, values in baseline.trend_columns(form or cfg.baseline_form, len(periods), row, dataset.frequency).items():
        X[name] = values
    y = pd.Series(frame[cfg.target_column].to_numpy(dtype=float) / factor, name=cfg.target_column)
    return X, y, scales


def roas_prior(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per channel ``(mu, sigma)`` of the lognormal prior of its national ROAS (``ROAS_c`` of the module's
    docstring), from the national data as for a national fit, and what it is put on
    (:func:`mmmlib.roas_priors.prior_basis`)."""
    from mmmlib import model

    cfg = dataset.config
    spend = dataset.frame[cfg.channel_columns].to_numpy(dtype=float)  # national: the ROAS prior is per channel
    return model.roas_prior(dataset, spend, float(dataset.frame[cfg.target_column].sum()))


def roas_parameterisation(
    dataset: Dataset, family: str, centred: tuple[bool, ...] | None = None
) -> roas_priors.GeoRoasParameterisation:
    """Each geo's ROAS sampled around its channel's national one, the effect size derived from it (see the module's
    docstring): the ROAS prior, each geo's spend over the fitted rows (money) and its population factor; ``centred``,
    the channels whose geo offsets are sampled centred (:func:`centring`)."""
    from mmmlib.model import _value_per_kpi

    cfg, frame = dataset.config, dataset.geo_frame
    assert frame is not None and cfg.geo_column
    mu, sigma, basis = roas_prior(dataset)
    spend = frame.groupby(frame[cfg.geo_column].astype(str))[list(cfg.channel_columns)].sum()
    value, _ = _value_per_kpi(dataset)
    return roas_priors.GeoRoasParameterisation(
        mu,
        sigma,
        spend.reindex(dataset.geos).to_numpy(dtype=float),
        value,
        structures.saturation_family(family).effect,
        factor=population_factor(dataset).to_numpy(dtype=float),
        tau_sd=TAU_SD,
        centred=centred,
        **basis,
    )


def centring(posterior: Any, prefix: str = "saturation") -> tuple[bool, ...]:
    """Per channel, whether its geo offsets should be sampled centred, read from a fit's posterior: where the geos'
    data pin each geo's return down (the posterior sd of a geo's log deviation from the national return, averaged
    over the geos, under ``CENTRE_BELOW`` × the channel's spread), the non-centred offsets and the spread are tied
    along a curved ridge (the offsets scale as 1 / spread) and the spread mixes slowly; centred, they are not. On
    synthetic geos with the fit's draws non-centred (docs/geo.md) this ratio was 0.04–0.27 where centring raised the
    spread's bulk ESS 8–63 ×, 0.62–0.91 where it moved it between 1.2 × up and 13 × down, and 1.24–1.45 on
    Meridian's 40 geos, where centring every channel left the chains unmixed."""
    roas = np.log(posterior[f"{prefix}_roas"].transpose("chain", "draw", GEO, "channel").to_numpy())
    national = np.log(posterior[f"{prefix}_roas_national"].transpose("chain", "draw", "channel").to_numpy())
    deviation = (roas - national[:, :, None, :]).reshape(-1, *roas.shape[2:])
    spread = posterior[f"{prefix}_roas_spread"].transpose("chain", "draw", "channel").to_numpy()
    ratio = deviation.std(axis=0).mean(axis=0) / spread.reshape(-1, spread.shape[-1]).mean(axis=0)
    return tuple(bool(r) for r in ratio < CENTRE_BELOW)


def build(
    dataset: Dataset, structure: structures.Structure, centred: tuple[bool, ...] | None = None
) -> tuple[Any, pd.DataFrame, pd.Series, dict[str, float]]:
    """An unfitted hierarchical pymc-marketing MMM of one structure, and its inputs; ``centred``: see
    :func:`roas_parameterisation`."""
    from pymc_extras.prior import Prior

    from mmmlib.model import _model_config, mmm_class

    cfg = dataset.config
    X, y, scales = design(dataset, structure.baseline)
    controls = [c for c in X.columns if c not in ("date", GEO, *cfg.channel_columns)]
    model_config = _model_config(cfg, controls)
    if "gamma_control" in model_config:  # each geo its own trend and control effects, same prior scale
        sd = [baseline.prior_sd(c) if baseline.is_trend(c) else baseline.TREND_SD for c in controls]
        model_config["gamma_control"] = Prior(
            "Normal", mu=0, sigma=xr.DataArray(sd, dims=("control",)), dims=(GEO, "control")
        )
    mmm = mmm_class()(
        date_column="date",
        channel_columns=list(cfg.channel_columns),
        target_column=cfg.target_column,
        dims=(GEO,),
        control_columns=controls or None,
        adstock=structures.adstock_component(structure.adstock, cfg.adstock_max_lag),
        saturation=structures.saturation_component(structure.saturation, 1.0),  # derived from ROAS: see below
        yearly_seasonality=seasonality.fourier_order(cfg.yearly_seasonality) or None,
        model_config=model_config or None,
    )
    effect = f"saturation_{structures.saturation_family(structure.saturation).effect}"
    if effect not in (cfg.priors or {}):  # a prior the user set on the effect size itself replaces the ROAS prior
        mmm.roas = roas_parameterisation(dataset, structure.saturation, centred)
    return mmm, X, y, scales


def lift_measurements(dataset: Dataset, lift: pd.DataFrame) -> pd.DataFrame:
    """A geo model's lift tests (columns ``channel, geo, x, delta_x, delta_y, sigma``, in that geo's spend and KPI)
    in the model's units: spend turned into the geo's media units at its own cost per unit, and everything per
    capita (÷ the geo's population factor), as the geo's rows are fitted."""
    from mmmlib.model import media_per_money

    cfg, frame = dataset.config, dataset.geo_frame
    assert frame is not None and cfg.geo_column
    factor = population_factor(dataset)
    geo_of = frame[cfg.geo_column].astype(str)
    ratio = {}
    for geo in dataset.geos:
        rows = frame[(geo_of == geo).to_numpy()]
        media = rows[[cfg.media_column(c) for c in cfg.channel_columns]].to_numpy(dtype=float)
        for ch, r in zip(
            cfg.channel_columns, media_per_money(media, rows[cfg.channel_columns].to_numpy(float)), strict=True
        ):
            ratio[(geo, ch)] = r
    out = lift[["channel", "geo", "x", "delta_x", "delta_y", "sigma"]].copy()
    per_capita = out["geo"].map(factor).to_numpy(dtype=float)
    units = np.array([ratio[(g, c)] for g, c in zip(out["geo"], out["channel"], strict=True)], dtype=float)
    for col in ("x", "delta_x"):
        out[col] = out[col] * units / per_capita
    for col in ("delta_y", "sigma"):
        out[col] = out[col] / per_capita
    return out.rename(columns={"geo": GEO})


def extra_data(dataset: Dataset) -> dict[str, xr.DataArray]:
    """What :mod:`mmmlib.geo` needs beside pymc-marketing's ``constant_data``: each geo's population factor and
    the spend (money) per period, geo and channel."""
    cfg, frame = dataset.config, dataset.geo_frame
    assert frame is not None and cfg.geo_column
    dates = pd.DatetimeIndex(sorted(pd.to_datetime(frame[cfg.date_column]).unique()))
    wide = frame.set_index([pd.to_datetime(frame[cfg.date_column]), frame[cfg.geo_column].astype(str)])
    spend = np.stack(
        [
            wide[ch].unstack(cfg.geo_column).reindex(index=dates, columns=dataset.geos).to_numpy()
            for ch in cfg.channel_columns
        ],
        axis=-1,
    )
    factor = population_factor(dataset)
    return {
        "population_factor": xr.DataArray(factor.to_numpy(dtype=float), dims=(GEO,), coords={GEO: dataset.geos}),
        "channel_spend": xr.DataArray(
            spend,
            dims=("date", GEO, "channel"),
            coords={"date": dates, GEO: dataset.geos, "channel": list(cfg.channel_columns)},
        ),
    }
