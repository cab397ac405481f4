"""Priors on each channel's return (ROAS), turned into the prior of each returns family's effect size.

A prior on the effect size scaled by spend share (the common default) says small channels probably do nothing, and
pulls their estimates toward zero whatever the data say. A prior on the return itself treats every channel alike:
Meridian's default ``ROAS ~ LogNormal(0.2, 0.9)`` (median 1.2, 94 % between 0.22 and 6.7; Meridian's
"default prior distributions", ``roi_m``). When the KPI is not revenue and has no value per unit, Meridian's
"total paid media contribution prior" is used instead: one ROAS prior for all channels such that media's share of
the KPI has prior mean 40 % and sd 20 %. ``roas_prior: {channel: [low, high]}`` in the config sets a channel's 94 %
prior interval (a lognormal), e.g. from a past lift test or an industry benchmark.

The effect size ``beta`` relates to the return through the channel's curve: ROAS = beta × value × target_scale ×
Σ_t curve(spend_t) / Σ_t spend_t. With the curve's shape at its prior centre this is exact up to the shape's own
uncertainty (Meridian reparameterises exactly; here the prior on beta is the lognormal that maps onto the ROAS
prior at the central shape), so the prior on ROAS holds approximately for every family.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmmlib import structures

DEFAULT_ROAS = (0.2, 0.9)  # LogNormal(mu, sigma): Meridian's default roi_m
NONREVENUE_MEDIA_SHARE = (0.4, 0.2)  # mean, sd of media's share of the KPI: Meridian's default for such KPIs
Z94 = 1.8808  # standard normal quantile at 97 %: a 94 % interval is mu ± Z94 sigma on the log scale


def lognormal_from_interval(low: float, high: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the lognormal whose central 94 % interval is ``[low, high]``."""
    return (np.log(low) + np.log(high)) / 2, (np.log(high) - np.log(low)) / (2 * Z94)


def lognormal_from_moments(mean: float, sd: float) -> tuple[float, float]:
    sigma = float(np.sqrt(np.log(sd**2 / mean**2 + 1)))
    return float(np.log(mean) - sigma**2 / 2), sigma


def roas_lognormal(
    channels: list[str],
    spend: np.ndarray,
    kpi_total: float,
    valued: bool,
    overrides: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel ``(mu, sigma)`` of the lognormal ROAS prior, in the units ROAS is reported in.

    ``spend`` is ``(period, channel)``; ``valued`` says whether the KPI is money (revenue, or a count with a value
    per unit), where the default applies; otherwise ROAS is KPI units per unit of spend.
    """
    if valued:
        mu = np.full(len(channels), DEFAULT_ROAS[0])
        sigma = np.full(len(channels), DEFAULT_ROAS[1])
    else:
        share_mean, share_sd = NONREVENUE_MEDIA_SHARE
        total = spend.sum(axis=0)
        mean = share_mean * kpi_total / total.sum()
        sd = share_sd * kpi_total / np.sqrt(np.sum(total**2))
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
