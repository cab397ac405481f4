"""Priors on each channel's return (ROAS), turned into the prior of each returns family's effect size.

A prior on the effect size scaled by spend share (the common default) says small channels probably do nothing, and
pulls their estimates toward zero whatever the data say. A prior on the return itself treats every channel alike:
Meridian's default ``ROAS ~ LogNormal(0.2, 0.9)`` (median 1.2, 94 % between 0.22 and 6.7; Meridian's
"default prior distributions", ``roi_m``). When the KPI is not revenue and has no value per unit, Meridian's
"total paid media contribution prior" is used instead: one ROAS prior for all channels such that media's share of
the KPI has prior mean 40 % and sd 20 %. The same prior replaces the default where spend and the KPI's value are
plainly in different units (:func:`prior_basis`: spend in thousands or an index against revenue in units, as in
PyMC-Marketing's example data), since a prior on money returned per money spent would then decide the answer.
``roas_prior: {channel: [low, high]}`` in the config sets a channel's 94 % prior interval (a lognormal), e.g. from
a past lift test or an industry benchmark.

The effect size ``beta`` relates to the return through the channel's curve: ROAS = beta × value × target_scale ×
Σ_t curve(spend_t) / Σ_t spend_t. The national model samples ROAS itself (:class:`RoasParameterisation`, Meridian's
ROI parameterisation): each channel's ``saturation_roas`` has the lognormal prior, and ``saturation_beta`` is derived
from it and the curve that draw's carry-over and shape give over the fitted rows, so every structure holds exactly
the stated prior on the return. The geo model does the same per geo and channel (:class:`GeoRoasParameterisation`),
each geo's ROAS drawn from its channel's population.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmmlib import graph_data, structures

DEFAULT_ROAS = (0.2, 0.9)  # LogNormal(mu, sigma): Meridian's default roi_m
NONREVENUE_MEDIA_SHARE = (0.4, 0.2)  # mean, sd of media's share of the KPI: Meridian's default for such KPIs
Z94 = 1.8808  # standard normal quantile at 97 %: a 94 % interval is mu ± Z94 sigma on the log scale
ROAS_BASIS, SHARE_BASIS = "roas", "media_share"  # what the default prior is put on (prior_basis)
# Below this share of the KPI's value explained by media at the top of the default ROAS prior, spend and KPI are taken
# to be in different units. The datasets met so far are far from it either way: 25-112 % for Robyn's and Meridian's
# published data, the bundled sample and the 36 worlds of the recovery suite; 0.06 % for PyMC-Marketing's example
# data, whose spend columns are scaled to about 1.
MIN_MEDIA_SHARE = 0.01


def lognormal_from_interval(low: float, high: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the lognormal whose central 94 % interval is ``[low, high]``."""
    return (np.log(low) + np.log(high)) / 2, (np.log(high) - np.log(low)) / (2 * Z94)


def lognormal_from_moments(mean: float, sd: float) -> tuple[float, float]:
    sigma = float(np.sqrt(np.log(sd**2 / mean**2 + 1)))
    return float(np.log(mean) - sigma**2 / 2), sigma


def default_interval() -> tuple[float, float]:
    """The default ROAS prior's central 94 % interval (0.22 to 6.7)."""
    mu, sigma = DEFAULT_ROAS
    return float(np.exp(mu - Z94 * sigma)), float(np.exp(mu + Z94 * sigma))


def prior_basis(spend_total: float, kpi_worth: float, valued: bool) -> tuple[str, str | None]:
    """What the default prior is put on: ROAS (:data:`ROAS_BASIS`), or media's share of the KPI
    (:data:`SHARE_BASIS`) with the reason, where the KPI has no value per unit or where ``spend_total`` against
    ``kpi_worth`` (the KPI's total value over the same periods) shows they cannot be in the same units: even the top
    of the default ROAS prior would leave media under :data:`MIN_MEDIA_SHARE` of the KPI, or its bottom would
    make media more than all of it."""
    if not valued:
        return SHARE_BASIS, "the KPI has no value per unit, so there is no money return to put a prior on"
    why = units_differ(spend_total, kpi_worth)
    return (ROAS_BASIS, None) if why is None else (SHARE_BASIS, why)


def units_differ(spend_total: float, kpi_worth: float) -> str | None:
    """Why spend and the KPI's value cannot be in the same units, or None where they can (:func:`prior_basis`).
    Returns in those data are then not money per money: nothing can be compared with break-even."""
    low, high = default_interval()
    ratio = spend_total / kpi_worth if kpi_worth > 0 else np.inf
    if high * ratio < MIN_MEDIA_SHARE:
        return (
            f"spend totals {_pct(ratio)} of the KPI's value, so even a return of {high:.1f} (the top of the default "
            f"ROAS prior) would explain only {_pct(high * ratio)} of it: spend and KPI look to be in different units "
            "(thousands, an index)"
        )
    if low * ratio > 1:
        return (
            f"spend totals {ratio:,.0f} × the KPI's value, so even a return of {low:.2f} (the bottom of the default "
            "ROAS prior) would explain more than all of it: spend and KPI look to be in different units"
        )
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.2g} %" if x < 0.1 else f"{100 * x:.0f} %"


def roas_lognormal(
    channels: list[str],
    spend: np.ndarray,
    kpi_total: float,
    valued: bool,
    overrides: dict[str, Any] | None = None,
    value: float = 1.0,
    basis: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel ``(mu, sigma)`` of the lognormal ROAS prior, in the units ROAS is reported in.

    ``spend`` is ``(period, channel)``; ``valued`` says whether the KPI is money (revenue, or a count worth
    ``value`` per unit), where the default applies unless :func:`prior_basis` says otherwise; ROAS is then money
    per unit of spend, else KPI units per unit of spend; ``basis``, when the caller has it already.
    """
    worth = kpi_total * (value if valued else 1.0)
    if (basis or prior_basis(float(spend.sum()), worth, valued)[0]) == ROAS_BASIS:
        mu = np.full(len(channels), DEFAULT_ROAS[0])
        sigma = np.full(len(channels), DEFAULT_ROAS[1])
    else:
        share_mean, share_sd = NONREVENUE_MEDIA_SHARE
        total = spend.sum(axis=0)
        mean = share_mean * worth / total.sum()
        sd = share_sd * worth / np.sqrt(np.sum(total**2))
        m, s = lognormal_from_moments(mean, sd)
        mu, sigma = np.full(len(channels), m), np.full(len(channels), s)
    for name, (low, high) in (overrides or {}).items():
        j = channels.index(name)
        mu[j], sigma[j] = lognormal_from_interval(float(low), float(high))
    return mu, sigma


def effect_lognormal(
    family: str,
    mu: np.ndarray,
    sigma: np.ndarray,
    spend: np.ndarray,
    channel_scale: np.ndarray,
    target_scale: float,
    value: float,
    media: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of the lognormal effect-size prior of ``family`` implied by the ROAS prior ``(mu, sigma)``.

    ``media``: what the model fits on, when not the spend (impressions or clicks, ``channel_scale`` then theirs).
    """
    z = (spend if media is None else media) / np.where(channel_scale > 0, channel_scale, 1.0)
    total = spend.sum(axis=0)
    curve = structures.nominal_response(family, z).sum(axis=0)
    per_beta = value * target_scale * curve / np.where(total > 0, total, 1.0)  # ROAS for beta = 1
    return mu - np.log(np.maximum(per_beta, 1e-12)), sigma


def effect_prior(family: str, mu: np.ndarray, sigma: np.ndarray, **scales: Any) -> Any:
    """The pymc-extras ``Prior`` for the effect size (dims ``channel``)."""
    import xarray as xr
    from pymc_extras.prior import Prior

    m, s = effect_lognormal(family, mu, sigma, **scales)
    return Prior(
        "LogNormal",
        mu=xr.DataArray(np.round(m, 6), dims=("channel",)),
        sigma=xr.DataArray(np.round(s, 6), dims=("channel",)),
        dims="channel",
    )


ROAS_PRIOR_ATTR = "roas_prior"  # the posterior file's record of the sampled ROAS prior (JSON: mu, sigma per channel)
# a geo fit's record of its hierarchical ROAS prior (JSON: mu, sigma per channel of the population's log ROAS, and
# the prior sd of the geos' spread around it): log ROAS_gc = mu_c + tau_c z_gc (mmmlib.geo_model)
GEO_ROAS_PRIOR_ATTR = "geo_roas_prior"


def geo_record(
    mu: np.ndarray,
    sigma: np.ndarray,
    tau_sd: float,
    weights: np.ndarray | None = None,
    basis: dict[str, Any] | None = None,
    centred: tuple[bool, ...] | None = None,
) -> str:
    """The record of a geo fit's ROAS prior; ``weights`` ``(geo, channel)``, each geo's share of the channel's
    spend, when the prior sits on the national return (:class:`GeoRoasParameterisation`); ``basis`` from
    :func:`basis_fields`; ``centred``, the channels whose geo offsets were sampled centred."""
    record: dict[str, Any] = {"mu": np.round(mu, 6).tolist(), "sigma": np.round(sigma, 6).tolist()}
    record["tau_sd"] = float(tau_sd)
    if weights is not None:
        record["weights"] = np.round(weights, 9).tolist()
    if centred is not None:
        record["centred"] = [bool(c) for c in centred]
    return json.dumps({**record, **(basis or basis_fields(ROAS_BASIS, None, False))})


def basis_fields(basis: str, reason: str | None, units_differ: bool) -> dict[str, Any]:
    """What a ROAS prior's record says of its basis (:func:`prior_basis`, :func:`units_differ`)."""
    return {"basis": basis, "basis_reason": reason, "units_differ": units_differ}


def basis_record(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """``{"basis", "reason", "units_differ"}`` of a fit's ROAS prior from its posterior's attributes (None for fits
    recorded before the basis was, and for imported models)."""
    for key in (ROAS_PRIOR_ATTR, GEO_ROAS_PRIOR_ATTR):
        try:
            record = json.loads(attrs[key])
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(record, dict) and record.get("basis"):
            return {
                "basis": record["basis"],
                "reason": record.get("basis_reason"),
                "units_differ": bool(record.get("units_differ")),
            }
    return None


def priced(summary: dict[str, Any]) -> bool:
    """Whether a run's returns are money per money, so that they can be held against break-even (False where
    spend and the KPI's value are in different units: :func:`units_differ`)."""
    return not ((summary.get("model") or {}).get("roas_prior") or {}).get("units_differ")


SHARE_PRIOR_INSTEAD = (
    f"The fit puts its prior on media's share of the KPI ({100 * NONREVENUE_MEDIA_SHARE[0]:.0f} % ± "
    f"{100 * NONREVENUE_MEDIA_SHARE[1]:.0f} %) instead of on the return; to price returns in money, give spend in "
    "the KPI's currency or set roas_prior per channel."
)


def sentence(model: dict[str, Any]) -> str | None:
    """What ``model.roas_prior`` says where the default prior is not on ROAS, for ``mmm fit`` and the quality view."""
    prior = model.get("roas_prior") or {}
    if prior.get("basis") != SHARE_BASIS:
        return None
    mean, sd = NONREVENUE_MEDIA_SHARE
    return (
        f"Prior on media's share of the KPI ({100 * mean:.0f} % ± {100 * sd:.0f} %, Meridian's default where a return "
        f"in money cannot be priced), not on ROAS: {prior.get('reason') or 'see the config'}."
    )


def spend_weights(spend: np.ndarray) -> np.ndarray:
    """``(geo, channel)`` spend → each geo's share of its channel's spend (equal shares where nobody spends)."""
    total = spend.sum(axis=0)
    return np.where(total > 0, spend / np.where(total > 0, total, 1.0), 1.0 / spend.shape[0])


def geo_returns(
    national: np.ndarray,
    spread: np.ndarray,
    offset: np.ndarray,
    weights: np.ndarray,
    centred: np.ndarray | None = None,
) -> np.ndarray:
    """Each geo's ROAS ``(..., geo, channel)`` from national ROAS and spreads ``(..., channel)`` and offsets
    ``(..., geo, channel)``, as :class:`GeoRoasParameterisation` draws them: spend-weighted, they average to the
    national return. ``centred`` ``(channel,)``: channels whose offsets are the log deviations themselves, not in
    units of the spread."""
    scale = spread[..., None, :] if centred is None else np.where(centred, 1.0, spread[..., None, :])
    relative = np.exp(scale * offset)
    return national[..., None, :] * relative / (weights * relative).sum(axis=-2, keepdims=True)


def target_scale_of(mmm: Any) -> float:
    """The number pymc-marketing divided the KPI by (its max scaling)."""
    return float(np.asarray(mmm.scalers["_target"]).reshape(-1)[0])


@dataclass(frozen=True)
class RoasParameterisation:
    """ROAS as the sampled parameter of each channel, the effect size derived from it (Meridian's ROI prior type).

    ROAS_c = beta_c × value × target_scale × Σ_t unit_c(t) / spend_c, where ``unit_c`` is the channel's contribution
    with effect size 1 on the fitted rows (its carry-over and shape at that draw). So
    beta_c = ROAS_c × spend_c / (value × target_scale × Σ_t unit_c(t)). The fitted rows' sum is taken on a constant
    copy of the fitted media, so predicting new periods (held-out weeks, forecasts) keeps each draw's beta.
    """

    mu: np.ndarray  # lognormal ROAS prior per channel, in the units ROAS is reported in
    sigma: np.ndarray
    spend: np.ndarray  # each channel's spend summed over the fitted rows, in money
    value: float  # what one KPI unit is worth (1 when ROAS is KPI units per unit of spend)
    effect: str = "beta"  # the returns family's effect-size parameter (fixed at 1 in its component)
    # Whether PyMC is asked to predict other data with this model (held-out weeks). The sum over the fitted rows then
    # runs on a constant copy of them, a second forward pass per gradient; otherwise on the model's own input.
    predicts_new_data: bool = True

    def record(self) -> str:
        record = {"mu": np.round(self.mu, 6).tolist(), "sigma": np.round(self.sigma, 6).tolist()}
        return json.dumps({**record, **basis_fields(self.basis, self.basis_reason, self.units_differ)})

    dims: tuple[str, ...] = ("channel",)  # of ``spend``, the sampled ROAS and the effect size
    basis: str = ROAS_BASIS  # what the default prior is on, and why when not ROAS (prior_basis)
    basis_reason: str | None = None
    units_differ: bool = False  # spend and the KPI's value in different units (units_differ)

    def kpi_worth(self, target_scale: float) -> Any:
        """What one unit of the fitted (scaled) KPI is worth, broadcastable against ``spend``."""
        return self.value * target_scale

    def effect_size(self, roas: np.ndarray, unit_total: np.ndarray, target_scale: float) -> np.ndarray:
        """beta for ROAS draws ``(..., *dims)`` and the unit contributions' sums over the fitted rows, in numpy."""
        return roas * self.spend / (self.kpi_worth(target_scale) * np.maximum(unit_total, 1e-12))

    def lognormal(self, name: str) -> Any:
        """A ``(channel)`` variable with each channel's lognormal ROAS prior."""
        import xarray as xr
        from pymc_extras.prior import Prior

        return Prior(
            "LogNormal",
            mu=xr.DataArray(np.round(self.mu, 6), dims=("channel",)),
            sigma=xr.DataArray(np.round(self.sigma, 6), dims=("channel",)),
            dims="channel",
        ).create_variable(name, xdist=True)

    def roas_variable(self, prefix: str) -> Any:
        """The sampled ROAS ``(channel)``: the lognormal prior itself."""
        return self.lognormal(f"{prefix}_roas")

    def per_roas(self, target_scale: float) -> Any:
        """Spend over what a unit of the scaled KPI is worth: beta = ROAS × this / Σ_t unit(t)."""
        return graph_data.shared(self.spend / self.kpi_worth(target_scale), self.dims)

    def contributions(self, mmm: Any, x: Any, unit_pass: Any) -> Any:
        """Channel contributions inside pymc-marketing's model: ``unit_pass(x)`` (its forward pass with effect size
        1), times beta derived from the sampled ROAS (``<prefix>_roas``, registered as ``<prefix>_<effect>``)."""
        import pymc.dims as pmd

        unit = unit_pass(x)
        saturation = mmm.saturation
        if self.predicts_new_data:
            fitted = (mmm.xarray_dataset["_channel"] / mmm.scalers["_channel"]).transpose(*x.dims)
            fitted = np.nan_to_num(np.asarray(fitted.values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
            # the saturation's effect size is fixed at 1 and every other parameter exists now: both calls reuse them
            unit_fit = saturation(mmm.adstock(graph_data.shared(fitted, x.dims), core_dim="date"), core_dim="date")
        else:  # the model's own input is the fitted rows: one forward pass
            unit_fit = unit
        total = pmd.math.maximum(unit_fit.sum("date"), 1e-12)
        roas = getattr(mmm, "early_roas", None)  # made with the centred intercept (mmmlib.centring), or now
        if roas is None:
            roas = self.roas_variable(saturation.prefix)
        target_scale = target_scale_of(mmm)
        beta = pmd.Deterministic(saturation.variable_mapping[self.effect], roas * self.per_roas(target_scale) / total)
        return unit * beta


GEO = "geo"  # the geo dimension's name in the model (mmmlib.geo_model)


@dataclass(frozen=True)
class GeoRoasParameterisation(RoasParameterisation):
    """Each channel's national ROAS sampled with the stated prior, its geos' returns spread around it, and each geo's
    effect size derived from its own return exactly (Meridian's ROI prior in a geo model).

    ROAS_gc = ROAS_c × exp(tau_c z_gc) / Σ_g' w_g'c exp(tau_c z_g'c) with ROAS_c ~ the channel's lognormal
    (``<prefix>_roas_national``), tau_c ~ HalfNormal(``tau_sd``) (``<prefix>_roas_spread``), z_gc ~ Normal(0, 1)
    summed to zero over the geos (``<prefix>_roas_offset``) and w_gc the geo's share of the channel's spend: the
    spend-weighted mean of the geos' returns, which is the national return, is ROAS_c, so the prior sits on the
    national return exactly as Meridian's ``roi_m`` does, whatever the spread. In a per-capita fit, geo ``g``'s
    contribution in KPI totals is beta_gc × target_scale × factor_g × unit_gc(t), so
    beta_gc = ROAS_gc × spend_gc / (value × target_scale × factor_g × Σ_t unit_gc(t)), whatever the carry-over and
    shape at a draw; a geo that never spends on a channel gets beta 0 there.
    """

    factor: np.ndarray = field(default_factory=lambda: np.ones(1))  # each geo's population factor, (geo,)
    tau_sd: float = 1.0
    # channels whose offsets are sampled centred (the log deviation itself, ZeroSumNormal(tau_c)) rather than in
    # units of the spread: the same prior in other coordinates, for channels whose geos' data pin their returns
    # down (mmmlib.geo_model.centring); None: every channel non-centred
    centred: tuple[bool, ...] | None = None
    # A geo model holds no weeks out and its forecasts are computed from the posterior (mmmlib.forecast), never by
    # PyMC on new data: the sum runs on the model's input (the copy cost 1.6-1.9 x per step on 8 geos).
    predicts_new_data: bool = False
    dims: tuple[str, ...] = (GEO, "channel")

    @property
    def weights(self) -> np.ndarray:
        """``(geo, channel)``: each geo's share of the channel's spend (equal shares where nobody spends)."""
        return spend_weights(self.spend)

    def record(self) -> str:
        basis = basis_fields(self.basis, self.basis_reason, self.units_differ)
        return geo_record(self.mu, self.sigma, self.tau_sd, self.weights, basis, self.centred)

    def kpi_worth(self, target_scale: float) -> Any:
        return self.value * target_scale * self.factor[:, None]  # a geo's fitted KPI is per capita

    def roas_variable(self, prefix: str) -> Any:
        import pymc.dims as pmd
        from pymc_extras.prior import Prior
        from pytensor.xtensor import as_xtensor

        national = self.lognormal(f"{prefix}_roas_national")
        spread = Prior("HalfNormal", sigma=self.tau_sd, dims="channel").create_variable(
            f"{prefix}_roas_spread", xdist=True
        )
        # a shift common to a channel's offsets cancels in the ratio below: summing them to zero over the geos
        # removes that direction (which only the prior pinned, a ridge for the sampler) and leaves the geos' returns'
        # prior as it was, since they depend on the offsets' differences alone
        # non-centred, z ~ ZeroSumNormal(1) and the deviation tau z, suits geos whose data say little of their own
        # return; centred, the deviation itself ~ ZeroSumNormal(tau), suits geos whose data pin it down (the spread
        # then mixes slowly in the other form: docs/geo.md). Both give the deviations the same prior.
        inside, outside = 1.0, spread
        if self.centred is not None and any(self.centred):
            # which channels are centred is the model's form, not data: a constant, part of the graph cache's key
            c = as_xtensor(np.asarray(self.centred, dtype=float), dims=("channel",))
            inside, outside = c * spread + (1.0 - c), c + (1.0 - c) * spread
        offset = pmd.ZeroSumNormal(f"{prefix}_roas_offset", sigma=inside, core_dims=(GEO,), dims=(GEO, "channel"))
        relative = pmd.math.exp(outside * offset)
        mean = (graph_data.shared(self.weights, (GEO, "channel")) * relative).sum(GEO)
        return pmd.Deterministic(f"{prefix}_roas", (national * relative / mean).transpose(GEO, "channel"))
