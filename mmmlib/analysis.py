"""Every number a user sees, computed from posterior draws, each with its highest-density interval.

Works on the saved posterior (``posterior.nc``: posterior, sample_stats and constant_data
groups) with numpy alone, so dashboards and reports never import pymc. The response
functions mirror pymc-marketing's components (max-scaled spend, normalised adstock) and
are tested against pymc-marketing's own curves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mmmlib import baseline, policy, structures

HDI_PROB = 0.94
# Diagnostic thresholds per mode: a miss sets status "warning"; an R-hat above UNUSABLE_RHAT fails the fit.
THRESHOLDS = {
    "quick": {"r_hat": 1.05, "ess": 200, "divergences": 0},
    "full": {"r_hat": 1.01, "ess": 400, "divergences": 0},
}
UNUSABLE_RHAT = 1.1
MIN_R2 = 0.5  # below this the model misses most of what moves the KPI: a poor fit, flagged before any advice
MAX_MAPE = 0.25
FREE_VARS_SKIP = ("contribution", "mu", "_original_scale")


def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[np.ndarray, np.ndarray]:
    """Narrowest interval holding ``prob`` of the draws, along axis 0 (vectorised over the rest)."""
    x = np.sort(np.asarray(draws, dtype=float), axis=0)
    n = x.shape[0]
    k = max(int(np.floor(prob * n)), 1)
    if k >= n:
        return x[0], x[-1]
    widths = x[k:] - x[: n - k]
    start = np.argmin(widths, axis=0)
    low = np.take_along_axis(x, start[None, ...], axis=0)[0]
    high = np.take_along_axis(x, (start + k)[None, ...], axis=0)[0]
    return low, high


def interval(draws: np.ndarray, prob: float = HDI_PROB) -> dict[str, float]:
    """``{"mean", "hdi_low", "hdi_high"}`` of 1-D draws (docs/contract.md's interval shape)."""
    low, high = hdi(np.asarray(draws).reshape(-1), prob)
    return {"mean": float(np.mean(draws)), "hdi_low": float(low), "hdi_high": float(high)}


def stacked(idata: Any, name: str, group: str = "posterior") -> np.ndarray:
    """Draws of a variable as ``(chain*draw, ...)``."""
    da = idata[group][name]
    values = np.asarray(da.values)
    return values.reshape(-1, *values.shape[2:])


@dataclass
class Posterior:
    """The pieces of a fitted model that analysis needs, pulled once from the DataTree."""

    idata: Any
    channels: list[str]
    dates: pd.DatetimeIndex
    spend: np.ndarray  # (date, channel) over the fitted periods
    target: np.ndarray  # (date,)
    target_scale: float
    channel_scale: np.ndarray  # (channel,)
    frequency: str = policy.DEFAULT_FREQUENCY  # the data's, as validation found it (the run's period.frequency)
    hdi_prob: float = HDI_PROB  # the run's interval probability (config ``hdi_prob``)
    # a geo fit's national roll-up (mmmlib.geo): each geo's posterior, and each geo's share of a channel's spend
    parts: list[Posterior] | None = None
    geos: list[str] | None = None
    shares: np.ndarray | None = None  # (geo, channel)

    @classmethod
    def from_idata(cls, idata: Any, frequency: str = policy.DEFAULT_FREQUENCY, hdi_prob: float = HDI_PROB) -> Posterior:
        """The posterior of a fit; a hierarchical geo fit gives its national roll-up with one part per geo."""
        from mmmlib import geo

        if geo.is_geo(idata):
            names = geo.geos(idata)
            parts = [cls.from_idata(geo.geo_slice(idata, g), frequency, hdi_prob) for g in names]
            post = cls.from_idata(geo.national(idata), frequency, hdi_prob)
            post.parts, post.geos = parts, names
            post.shares = geo.spend_shares(parts, policy.recent_periods(frequency))
            return post
        const = idata["constant_data"]
        channels = [str(c) for c in const["channel"].values]
        dates = pd.DatetimeIndex(idata["posterior"]["date"].values)
        media = np.asarray(const["channel_data"].sel(date=dates).values, dtype=float)
        scale = np.asarray(const["channel_scale"].values, dtype=float).reshape(-1)
        spend = media
        if "channel_spend" in const.data_vars:  # fitted on impressions or clicks: curves in money, per unit cost
            spend = np.asarray(const["channel_spend"].sel(date=dates).values, dtype=float)
            paid, seen = spend.sum(axis=0), media.sum(axis=0)
            scale = scale * np.where((paid > 0) & (seen > 0), paid / np.where(seen > 0, seen, 1.0), 1.0)
        target = np.asarray(const["target_data"].sel(date=dates).values, dtype=float)
        return cls(
            idata=idata,
            channels=channels,
            dates=dates,
            spend=spend,
            target=target,
            target_scale=float(const["target_scale"].values),
            channel_scale=scale,
            frequency=frequency,
            hdi_prob=hdi_prob,
        )

    def draws(self, name: str) -> np.ndarray:
        return stacked(self.idata, name)

    @cached_property
    def _contributions(self) -> np.ndarray:
        return self.draws("channel_contribution") * self.target_scale

    def contributions(self) -> np.ndarray:
        """Channel contributions in target units: ``(draw, date, channel)`` (computed once per posterior)."""
        return self._contributions


def saturation_params(post: Posterior) -> dict[str, np.ndarray]:
    """Saturation parameter draws ``(draw, channel)`` keyed by their pymc-marketing names.

    A combined posterior (:mod:`mmmlib.stacking`) also gives ``family``: each draw's returns family as an index into
    ``structures.SATURATIONS``, with NaN in the parameters its family does not have.
    """
    names = [str(n) for n in post.idata["posterior"].data_vars if str(n).startswith("saturation_")]
    params = {n.removeprefix("saturation_"): post.draws(n) for n in names}
    if "family" in params:
        params["family"] = np.broadcast_to(params["family"].reshape(-1, 1), (len(params["family"]), len(post.channels)))
    return params


def saturation_kind(params: dict[str, np.ndarray]) -> str:
    """The returns family of the draws (the registry's family whose parameters they are), or ``mixed`` when each
    draw carries its own (``family``)."""
    if "family" in params:
        return "mixed"
    family = structures.family_of(structures.SATURATION_FAMILIES, params)
    if family is None:
        raise KeyError(f"saturation parameters of a known family (the posterior has {', '.join(sorted(params))})")
    return family


FamilySplit = list[tuple[str, np.ndarray, dict[str, np.ndarray]]]


def family_split(params: dict[str, np.ndarray]) -> FamilySplit:
    """A mixture's draws grouped by returns family: ``(family, rows, that family's parameter draws)``.

    Computed once per set of curves (:class:`mmmlib.optimize.Curves` keeps it), so each curve is evaluated only on
    its own family's draws and the optimiser, which evaluates thousands of times per frontier, does not regroup.
    """
    codes = params["family"].reshape(len(params["family"]), -1)[:, 0]  # one family per draw
    return [
        (
            structures.SATURATIONS[code],
            rows := np.flatnonzero(codes == code),
            {k: v[rows] for k, v in params.items() if k != "family"},
        )
        for code in np.unique(codes[np.isfinite(codes)]).astype(int)
    ]


def _per_family(
    kind: str, params: dict[str, np.ndarray], shape: tuple[int, ...], fn: Any, split: FamilySplit | None = None
) -> np.ndarray | Any:
    """``fn(family, params, rows)`` for one family, or for a mixture each family on its own draws (``rows``)."""
    if kind != "mixed":
        return fn(kind, {k: v.reshape(shape) for k, v in params.items()}, slice(None))
    out: Any = 0.0
    for family, rows, p in family_split(params) if split is None else split:
        y = np.asarray(fn(family, {k: v.reshape((len(rows), *shape[1:])) for k, v in p.items()}, rows))
        if np.ndim(out) == 0:
            out = np.zeros((shape[0], *y.shape[1:]), dtype=y.dtype)
        out[rows] = y
    return out


def _rows_of(z: np.ndarray, n_draw: int, ndim: int) -> Callable[[Any], np.ndarray]:
    """``z``'s rows for some draws when it has a draw axis of its own (forecasts' adstocked spend), else ``z``."""
    per_draw = z.ndim == ndim and z.shape[0] == n_draw > 1
    return lambda rows: z[rows] if per_draw else z


def saturation(
    kind: str, params: dict[str, np.ndarray], z: np.ndarray, out_ndim: int = 3, split: FamilySplit | None = None
) -> np.ndarray:
    """The registry's returns families on max-scaled input ``z``, for parameter draws ``(draw, channel)``.

    Parameters are broadcast to ``(draw, 1, ..., channel)`` with ``out_ndim`` dimensions; ``z`` must broadcast
    against that. Response curves, the optimiser and forecasts all call this one function; ``split`` is the
    mixture's :func:`family_split` when the caller keeps it.
    """
    n_draw, n_channel = next(iter(params.values())).shape
    shape = (n_draw, *([1] * (out_ndim - 2)), n_channel)
    zs = _rows_of(np.asarray(z, dtype=float), n_draw, out_ndim)
    return _per_family(
        kind, params, shape, lambda family, p, rows: structures.SATURATION_FAMILIES[family].curve(p, zs(rows)), split
    )


def saturation_gradient(
    kind: str, params: dict[str, np.ndarray], z: np.ndarray, split: FamilySplit | None = None
) -> np.ndarray:
    """d saturation / d z for draws ``(draw, channel)`` at ``z`` ``(channel,)``: ``(draw, channel)``."""
    shape = next(iter(params.values())).shape
    zs = _rows_of(np.asarray(z, dtype=float), shape[0], len(shape))
    return _per_family(
        kind,
        params,
        shape,
        lambda family, p, rows: structures.SATURATION_FAMILIES[family].gradient(p, zs(rows)),
        split,
    )


def steady_state_response(post: Posterior, spend_per_period: np.ndarray) -> np.ndarray:
    """Expected contribution per period at constant spend, carry-over included: ``(draw, point, channel)``.

    Normalised adstock weights sum to one, so constant spend ``x`` adstocks to ``x``; the
    saturation then acts on ``x / channel_scale`` exactly as in the fitted model.
    """
    x = np.asarray(spend_per_period, dtype=float)
    if post.parts is not None and post.shares is not None:  # national spend split over geos as they spend today
        return sum(steady_state_response(p, x * post.shares[g]) for g, p in enumerate(post.parts))
    params = saturation_params(post)
    z = x / post.channel_scale  # (point, channel)
    return saturation(saturation_kind(params), params, z[None, ...]) * post.target_scale


def current_spend(post: Posterior, periods: int | None = None) -> np.ndarray:
    """Today's spend: the average per period over the last ``periods`` fitted periods (all if shorter), by default
    the last :data:`mmmlib.policy.RECENT_WEEKS` weeks at the data's frequency."""
    return post.spend[-(periods or policy.recent_periods(post.frequency)) :].mean(axis=0)


def marginal_roas(post: Posterior, at: np.ndarray) -> np.ndarray:
    """d contribution / d spend per period at spend ``at`` (channel,): ``(draw, channel)``."""
    step = np.maximum(np.asarray(at, dtype=float) * 0.01, post.channel_scale * 1e-4)
    up = steady_state_response(post, (at + step)[None, :])[:, 0, :]
    down = steady_state_response(post, np.maximum(at - step, 0)[None, :])[:, 0, :]
    return (up - down) / (at + step - np.maximum(at - step, 0))


def response_curves(post: Posterior, points: int = 41, breakeven: float | None = 1.0) -> list[dict[str, Any]]:
    """Per channel: spend per period from 0 to 2× current, contribution mean and HDI band, break-even spend (None
    where ``breakeven`` is: spend and the KPI's value in different units)."""
    now = current_spend(post)
    top = np.where(now > 0, 2 * now, post.spend.max(axis=0))
    grid = np.linspace(0, 1, points)[:, None] * top[None, :]
    resp = steady_state_response(post, grid)
    low, high = hdi(resp, post.hdi_prob)
    fine = np.linspace(0, 1, 201)[:, None] * top[None, :]
    step = fine[1] - fine[0]
    fine_resp = steady_state_response(post, fine).mean(axis=0)
    marginal = np.diff(fine_resp, axis=0) / np.where(step > 0, step, 1)
    curves = []
    for j, ch in enumerate(post.channels):
        below = np.flatnonzero(marginal[:, j] < breakeven) if breakeven is not None else np.array([], dtype=int)
        be = float(fine[below[0], j]) if len(below) and below[0] > 0 else (0.0 if len(below) else None)
        curves.append(
            {
                "name": ch,
                "spend": grid[:, j].tolist(),
                "mean": resp[:, :, j].mean(axis=0).tolist(),
                "hdi_low": low[:, j].tolist(),
                "hdi_high": high[:, j].tolist(),
                "current_spend": float(now[j]),
                "breakeven_spend": be,
            }
        )
    return curves


def adstock_weight_draws(post: Posterior, max_lag: int) -> np.ndarray | None:
    """Carry-over weights ``(draw, lag, channel)``, normalised, exactly as pymc-marketing applies them.

    The formulas are the registry's (:func:`mmmlib.structures.adstock_weights`); a combined posterior gives each
    draw its own family (``adstock_family``).
    """
    pv = post.idata["posterior"].data_vars
    params = {
        str(n).removeprefix("adstock_"): post.draws(str(n))[:, None, :]
        for n in pv
        if str(n).startswith("adstock_") and str(n) != "adstock_family"
    }
    if "adstock_family" not in pv:
        family = structures.family_of(structures.ADSTOCK_FAMILIES, params)
        return None if family is None else structures.adstock_weights(family, params, max_lag)
    families = [f for f, fam in structures.ADSTOCK_FAMILIES.items() if set(fam.params) <= set(params)]
    if not families:
        return None
    codes = post.draws("adstock_family").reshape(-1, 1, 1)
    out = np.zeros((codes.shape[0], max_lag, len(post.channels)))
    for family in families:
        mine = codes == structures.ADSTOCKS.index(family)
        q = {k: np.where(mine, np.nan_to_num(v, nan=0.5), 0.5) for k, v in params.items()}
        out = np.where(mine, structures.adstock_weights(family, q, max_lag), out)
    return out


def adstock_weights(post: Posterior, max_lag: int) -> dict[str, dict[str, list[float]]] | None:
    """Carry-over weights per lag, mean and HDI per channel (for the carry-over chart)."""
    w = adstock_weight_draws(post, max_lag)
    if w is None:
        return None
    low, high = hdi(w, post.hdi_prob)
    return {
        ch: {"mean": w[:, :, j].mean(axis=0).tolist(), "hdi_low": low[:, j].tolist(), "hdi_high": high[:, j].tolist()}
        for j, ch in enumerate(post.channels)
    }


def fit_quality(post: Posterior) -> dict[str, Any]:
    """In-sample R² and MAPE of the noise-free prediction, and the prediction band."""
    mu = post.draws("mu") * post.target_scale  # (draw, date)
    pred = mu.mean(axis=0)
    y = post.target
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    nonzero = np.abs(y) > 0
    low, high = hdi(mu, post.hdi_prob)
    return {
        "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 0.0,
        "mape": float(np.mean(np.abs((y - pred)[nonzero] / y[nonzero]))) if nonzero.any() else None,
        "predicted": pred.tolist(),
        "predicted_low": low.tolist(),
        "predicted_high": high.tolist(),
    }


def diagnosed_names(posterior: Any) -> list[str]:
    """The posterior variables R-hat and ESS are reported on: the sampled parameters, not per-period outputs."""
    return [str(n) for n in posterior.data_vars if diagnosed(str(n))]


def diagnosed(name: str) -> bool:
    """Whether R-hat and ESS are reported on the variable ``name``: a sampled parameter, not a per-period output."""
    return not any(s in name for s in FREE_VARS_SKIP)


def diagnostics(idata: Any) -> dict[str, Any]:
    """Max R-hat, min bulk and tail ESS over the sampled parameters, and divergences.

    For a combined posterior (``mmmlib.stacking``), R-hat is the worst of the candidates that contributed draws and
    divergences their sum, each measured on its own chains; ESS is the mixture's (:func:`mixture_ess`).
    """
    import arviz as az

    records = json.loads(idata.attrs.get("candidates") or "null")
    if records:
        used = [r for r in records if r.get("draws_per_chain", 1) > 0] or records
        return {
            "r_hat_max": max(r["r_hat_max"] for r in used),
            "ess_bulk_min": mixture_ess(used, "ess_bulk_min"),
            "ess_tail_min": mixture_ess(used, "ess_tail_min"),
            "divergences": int(sum(r["divergences"] for r in used)),
        }

    names = diagnosed_names(idata["posterior"])
    rhat = az.rhat(idata, var_names=names)
    ess_bulk = az.ess(idata, var_names=names, method="bulk")
    ess_tail = az.ess(idata, var_names=names, method="tail")

    def extreme(ds: Any, fn: Any) -> float:
        vals = [float(fn(np.asarray(ds[n].values))) for n in names]
        return float(fn(vals))

    div = idata["sample_stats"]["diverging"].values
    return {
        "r_hat_max": extreme(rhat, np.nanmax),
        "ess_bulk_min": extreme(ess_bulk, np.nanmin),
        "ess_tail_min": extreme(ess_tail, np.nanmin),
        "divergences": int(np.asarray(div).sum()),
    }


def mixture_ess(records: list[dict[str, Any]], key: str) -> float:
    """Effective draws of a stacking mixture, from its candidates' ``key`` (``ess_bulk_min`` or ``ess_tail_min``).

    Candidate ``m`` holds ``n`` of the mixture's draws per chain, a share ``w``, picked at random from the ``N`` it
    drew, whose ESS is ``E`` (all over ``C`` chains). Given its chains, the mean of a random ``n`` of ``N`` draws
    varies around theirs by ``σ² (1/(nC) − 1/(NC))`` (sampling without replacement), and their mean around the
    posterior's by ``σ²/E``; so the kept draws are worth ``E' = 1 / (1/E + 1/(nC) − 1/(NC))`` effective draws, and
    the mixture's mean, ``Σ w × (candidate's mean)``, is worth ``1 / Σ (w² / E')``. Keeping a random share of an
    autocorrelated chain keeps most of its ESS (draws close together carry the same information), and independent
    candidates add up. It takes the candidates' spreads ``σ`` as equal; the mixture's spread is then at least that
    (their means may differ), so the figure errs low (``tests/test_mixture_ess.py`` checks it against simulated
    chains). Records without ``drawn_per_chain`` (runs before it was stored) get ``E' = w E``: the ESS of the
    weighted harmonic mean those runs reported.
    """
    total = sum(r.get("draws_per_chain", 1) for r in records) or 1
    inverse = 0.0
    for r in records:
        n = r.get("draws_per_chain", 1)
        w = n / total
        if w <= 0:
            continue
        ess = max(r[key], 1e-9)
        drawn, chains = r.get("drawn_per_chain"), r.get("chains")
        if drawn and chains:  # n ≤ drawn: stacking.mixture_draws never uses a draw twice
            kept = 1 / (1 / ess + 1 / (n * chains) - 1 / (drawn * chains))
        else:
            kept = w * ess
        inverse += w * w / kept
    return 1.0 / inverse if inverse > 0 else 0.0


def status_of(diag: dict[str, Any], mode: str) -> tuple[str, list[str]]:
    """``("ok"|"warning", reasons)`` from the mode's thresholds."""
    t = THRESHOLDS.get(mode, THRESHOLDS["quick"])
    reasons = []
    if diag["r_hat_max"] > t["r_hat"]:
        reasons.append(f"max R-hat {diag['r_hat_max']:.3f} is above {t['r_hat']} (chains disagree)")
    if diag["ess_bulk_min"] < t["ess"]:
        reasons.append(f"min bulk ESS {diag['ess_bulk_min']:.0f} is below {t['ess']} (too few effective draws)")
    if diag.get("ess_tail_min", t["ess"]) < t["ess"]:
        reasons.append(f"min tail ESS {diag['ess_tail_min']:.0f} is below {t['ess']} (intervals unreliable)")
    if diag["divergences"] > t["divergences"]:
        reasons.append(f"{diag['divergences']} divergent transitions (the sampler missed part of the posterior)")
    if diag.get("r2") is not None and diag["r2"] < MIN_R2:
        reasons.append(f"the model explains only {diag['r2']:.0%} of the KPI's variation (R² below {MIN_R2})")
    if diag.get("mape") is not None and diag["mape"] > MAX_MAPE:
        reasons.append(f"in-sample error {diag['mape']:.0%} is above {MAX_MAPE:.0%} (MAPE)")
    if diag.get("holdout_mape") is not None and diag["holdout_mape"] > MAX_MAPE:
        reasons.append(f"held-out error {diag['holdout_mape']:.0%} is above {MAX_MAPE:.0%} (MAPE on unseen periods)")
    return ("warning" if reasons else "ok"), reasons


def decomposition(post: Posterior) -> dict[str, Any]:
    """Totals over the fitted periods with HDIs, and mean series: baseline, trend, seasonality, controls, media."""
    scale = post.target_scale
    pv = post.idata["posterior"].data_vars
    n = len(post.dates)
    parts: dict[str, np.ndarray] = {}
    intercept = post.draws("intercept_contribution")
    parts["baseline"] = (intercept.reshape(intercept.shape[0], -1)[:, :1] * np.ones((1, n))) * scale
    if "control_contribution" in pv:
        ctl = post.draws("control_contribution") * scale  # (draw, date, control)
        names = [str(c) for c in post.idata["posterior"]["control"].values]
        for k, name in enumerate(names):
            if baseline.is_trend(name):  # the straight trend and its changepoints are one trend
                parts["trend"] = parts.get("trend", 0) + ctl[:, :, k]
            else:
                parts[f"control:{name}"] = ctl[:, :, k]
    if "yearly_seasonality_contribution" in pv:
        parts["seasonality"] = post.draws("yearly_seasonality_contribution") * scale
    contrib = post.contributions()
    for j, ch in enumerate(post.channels):
        parts[f"channel:{ch}"] = contrib[:, :, j]
    return {
        "dates": [d.strftime("%Y-%m-%d") for d in post.dates],
        "totals": {k: interval(v.sum(axis=1), post.hdi_prob) for k, v in parts.items()},
        "series": {k: v.mean(axis=0).tolist() for k, v in parts.items()},
    }


def kpi_value(kpi_type: str | None, revenue_per_kpi: float | None) -> float:
    """What one KPI unit is worth in money for ROAS: revenue per KPI for count KPIs, else 1 (revenue KPIs)."""
    return revenue_per_kpi if (kpi_type == "count" and revenue_per_kpi) else 1.0


def roas_draws(post: Posterior, value: float = 1.0, group: str = "posterior") -> np.ndarray:
    """ROAS draws ``(draw, channel)``: total contribution × ``value`` over total spend (0 where nothing was spent).

    ``group="prior"`` gives the prior's ROAS draws from the prior's ``channel_contribution`` over the same periods.
    """
    if group == "posterior":
        contrib = post.contributions().sum(axis=1)
    else:
        da = post.idata[group]["channel_contribution"]
        da = da.sel({k: v for k, v in (("date", post.dates), ("channel", post.channels)) if k in da.coords})
        values = np.asarray(da.transpose("chain", "draw", "date", "channel").values, dtype=float)
        contrib = values.reshape(-1, *values.shape[2:]).sum(axis=1) * post.target_scale
    spend = post.spend.sum(axis=0)
    return np.where(spend > 0, contrib * value / np.where(spend > 0, spend, 1.0), 0.0)


def channel_metrics(post: Posterior, kpi_type: str, revenue_per_kpi: float | None) -> list[dict[str, Any]]:
    """Spend, contribution, share, ROAS, marginal ROAS (and cost per KPI for counts) per channel."""
    contrib = post.contributions().sum(axis=1)  # (draw, channel)
    spend = post.spend.sum(axis=0)
    share = contrib / np.maximum(contrib.sum(axis=1, keepdims=True), 1e-12)
    value = kpi_value(kpi_type, revenue_per_kpi)
    roas = roas_draws(post, value)
    mroas = marginal_roas(post, current_spend(post)) * value
    out = []
    for j, ch in enumerate(post.channels):
        row: dict[str, Any] = {
            "name": ch,
            "spend": float(spend[j]),
            "contribution": interval(contrib[:, j], post.hdi_prob),
            "share": interval(share[:, j], post.hdi_prob),
            "roas": interval(roas[:, j], post.hdi_prob),
            "mroas": interval(mroas[:, j], post.hdi_prob),
            "cost_per_kpi": None,
        }
        if kpi_type == "count":
            cpk = spend[j] / np.maximum(contrib[:, j], 1e-12)
            row["cost_per_kpi"] = interval(cpk, post.hdi_prob)
        out.append(row)
    return out
