"""Assemble ``summary.json`` (docs/contract.md): everything a dashboard shows, precomputed from the posterior."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from mmmlib import analysis, identification, roas_priors, seasonality
from mmmlib.config import ModelConfig
from mmmlib.data.labels import channel_label
from mmmlib.insights import recommendations
from mmmlib.policy import DEFAULT_FREQUENCY, REALLOCATION_LIMIT_PCT

if TYPE_CHECKING:
    from mmmlib.optimize import Curves

SCHEMA_VERSION = 1


def resolve_kpi_type(config: ModelConfig) -> str:
    if config.kpi_type:
        return config.kpi_type
    return "count" if config.revenue_per_kpi is not None else "revenue"


def revenue_per_kpi_value(config: ModelConfig, frame: Any) -> float | None:
    """A number turning one KPI unit into revenue: the config's number, or the KPI-weighted mean of its column."""
    rpk = config.revenue_per_kpi
    if rpk is None:
        return None
    if isinstance(rpk, str):
        kpi = frame[config.target_column].to_numpy(dtype=float)
        return float(np.sum(frame[rpk].to_numpy(dtype=float) * kpi) / np.sum(kpi))
    return float(rpk)


def value_per_kpi(config: ModelConfig, frame: Any) -> tuple[float, bool]:
    """What one KPI unit is worth for ROAS, and whether ROAS is in money (the default ROAS prior can apply)."""
    kpi_type = resolve_kpi_type(config)
    rpk = revenue_per_kpi_value(config, frame)
    return analysis.kpi_value(kpi_type, rpk), kpi_type == "revenue" or bool(rpk)


def reallocation(curves: Curves, hold: set[str]) -> dict[str, Any]:
    """The best split of today's budget with every channel within the reallocation limit of today's spend
    (:data:`mmmlib.policy.REALLOCATION_LIMIT_PCT`, either way), and its expected gain.

    Channels in ``hold`` (not identified by this data) keep today's spend: advice never moves money on them.
    """
    from mmmlib.optimize import allocate

    pct = REALLOCATION_LIMIT_PCT
    bounds = [f"{c}=fixed" if c in hold else f"{c}=-{pct}%:+{pct}%" for c in curves.channels]
    result = allocate(curves, float(curves.current.sum()), bounds).to_dict()
    result["limit_pct"] = pct
    result["held"] = sorted(hold)
    return result


def scenarios(curves: Curves, hold: set[str]) -> list[dict[str, Any]]:
    """The planner's opening frontier (``mmm scenarios``' default grid, channels in ``hold`` at today's spend),
    computed once here so the page does not run its 27 optimisations on every load."""
    from mmmlib.optimize import frontier

    return frontier(curves, bounds=[f"{c}=fixed" for c in curves.channels if c in hold])


GEO_SELECTION = "national sum"  # a geo fit's structure, chosen among candidates fitted to the summed data


def model_section(idata: Any, value: float = 1.0) -> dict[str, Any] | None:
    """The candidate structures, their out-of-sample scores, weights and each one's ROAS (valued at ``value`` per KPI
    unit, as the run's ROAS) (``mmmlib.stacking``); for a geo fit, those of the national sum that chose its structure
    (``mmmlib.model.fit_geos``) and, where two were fitted over the geos, theirs (``geo_candidates``)."""
    import json

    from mmmlib.stacking import candidate_records

    records = candidate_records(idata)
    season = idata.attrs.get(seasonality.ATTR)  # yearly_seasonality: auto (mmmlib.seasonality)
    section: dict[str, Any] | None = None
    if chosen := idata.attrs.get("structure_choice"):
        section = {"selection": GEO_SELECTION, "candidates": valued(json.loads(chosen), value)}
        if idata.attrs.get("structure_fitted"):
            section["structure"] = str(idata.attrs["structure_fitted"])
        for key in ("kept", "simpler", "second"):
            if idata.attrs.get(f"structure_{key}"):
                section[key] = json.loads(idata.attrs[f"structure_{key}"])
        if records:  # two structures fitted over the geos, weighed on the geos' data
            section["geo_candidates"] = valued(records, value)
    elif records:
        section = {"selection": "weighted" if len(records) > 1 else "single", "candidates": valued(records, value)}
    if section is not None and season:
        section["seasonality"] = json.loads(season)
    prior = roas_priors.basis_record(idata.attrs)  # what the default prior is put on (mmmlib.roas_priors.prior_basis)
    if section is not None and prior:
        section["roas_prior"] = prior
    return section


def valued(records: list[dict[str, Any]], value: float) -> list[dict[str, Any]]:
    """Candidate records with their per-channel ROAS (stored in KPI units per unit of spend) in money per unit."""
    if value == 1.0:
        return records
    for rec in records:
        if rec.get("roas"):
            rec["roas"] = {ch: {k: v * value for k, v in r.items()} for ch, r in rec["roas"].items()}
    return records


GEO_CURVE_POINTS = 21  # per geo: the curves of 100 geos × 10 channels stay a few hundred kB
PRIOR_ROAS_DRAWS = 4000  # prior draws of a geo fit's ROAS for the "not identified" rule (numpy, a few ms)


def geo_section(
    post: analysis.Posterior,
    kpi_type: str,
    rpk: float | None,
    breakeven: float | None,
    priors: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Per geo of a hierarchical fit (largest KPI first): KPI, spend, media contribution, and per channel the
    contribution, ROAS and marginal ROAS with intervals, whether the data identify it (``priors``: prior ROAS draws
    ``(draw, geo, channel)``; without them only the interval rule applies), and the response curve."""
    rows = []
    value = analysis.kpi_value(kpi_type, rpk)
    for g, (name, part) in enumerate(zip(post.geos or [], post.parts or [], strict=True)):
        channels = analysis.channel_metrics(part, kpi_type, rpk)
        identify_channels(part, channels, value, breakeven, None if priors is None else priors[:, g])
        curves = analysis.response_curves(part, points=GEO_CURVE_POINTS, breakeven=breakeven)
        rows.append(
            {
                "name": name,
                "kpi": float(part.target.sum()),
                "spend": float(part.spend.sum()),
                "media_contribution": analysis.interval(part.contributions().sum(axis=(1, 2)), post.hdi_prob),
                "channels": [
                    {
                        k: row[k]
                        for k in (
                            "name",
                            "spend",
                            "contribution",
                            "share",
                            "roas",
                            "mroas",
                            "cost_per_kpi",
                            "identified",
                            "identification",
                        )
                    }
                    for row in channels
                ],
                "response_curves": curves,
            }
        )
    return sorted(rows, key=lambda r: -r["kpi"])


def geo_prior_roas(post: analysis.Posterior) -> np.ndarray | None:
    """A geo fit's prior ROAS draws ``(draw, geo, channel)``, from the hierarchical prior it stored (None for a fit
    that stored none, e.g. an imported one: the interval rule alone then applies)."""
    from mmmlib.priors import geo_roas_prior_draws

    if post.parts is None:
        return None
    return geo_roas_prior_draws(dict(post.idata.attrs), len(post.parts), PRIOR_ROAS_DRAWS)


def national_prior_roas(post: analysis.Posterior, geo_prior: np.ndarray) -> np.ndarray:
    """The national ROAS each prior draw implies: the geos' returns weighted by their spend on the channel."""
    spend = np.array([p.spend.sum(axis=0) for p in post.parts or []])  # (geo, channel), over the fitted periods
    total = spend.sum(axis=0)
    return np.where(total > 0, (geo_prior * spend).sum(axis=1) / np.where(total > 0, total, 1.0), 0.0)


def identify_channels(
    post: analysis.Posterior,
    channels: list[dict[str, Any]],
    value: float,
    breakeven: float | None,
    prior: np.ndarray | None = None,
) -> None:
    """Mark each channel row ``identified`` (:mod:`mmmlib.identification`), from the posterior's ROAS draws and the
    prior's: ``prior`` ``(draw, channel)`` when given, else the fit's ``prior`` group when it kept one."""
    if prior is None and "prior" in post.idata.children and "channel_contribution" in post.idata["prior"].data_vars:
        prior = analysis.roas_draws(post, value, group="prior")
    verdicts = identification.identify(analysis.roas_draws(post, value), prior, breakeven, post.hdi_prob)
    for row, verdict in zip(channels, verdicts, strict=True):
        row["identified"] = verdict.pop("identified")
        row["identification"] = verdict


def build_summary(
    idata: Any,
    config: ModelConfig,
    frame: Any,
    *,
    run: dict[str, Any],
    mode: str,
    holdout_mape: float | None = None,
    client: str | None = None,
    source: tuple[str, str] | None = None,
    diagnostics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``source``: who fitted the model and that library's version (default: this product, ``mmmlib``);
    ``diagnostics``: R-hat, ESS and divergences as the model's own library measured them (an imported model)."""
    from mmmlib import __version__

    frequency = run.get("frequency", DEFAULT_FREQUENCY)
    post = analysis.Posterior.from_idata(idata, frequency, hdi_prob=config.hdi_prob)
    kpi_type = resolve_kpi_type(config)
    rpk = revenue_per_kpi_value(config, frame)
    value = analysis.kpi_value(kpi_type, rpk)
    channels = analysis.channel_metrics(post, kpi_type, rpk)
    for row in channels:
        row["label"] = channel_label(row["name"], config.label_aliases, config.channel_labels)
    geo_prior = geo_prior_roas(post)
    national_prior = None if geo_prior is None else national_prior_roas(post, geo_prior)
    prior_basis = roas_priors.basis_record(idata.attrs) or {}
    # spend and the KPI's value in different units: returns are not money per money, so nothing holds a break-even
    breakeven = None if prior_basis.get("units_differ") else config.breakeven_roas
    identify_channels(post, channels, value, breakeven, national_prior)
    diag = dict(diagnostics) if diagnostics else analysis.diagnostics(idata)
    quality = analysis.fit_quality(post)
    diag.update({"r2": quality["r2"], "mape": quality["mape"], "holdout_mape": holdout_mape})
    status, reasons = analysis.status_of(diag, mode)
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "status_reasons": reasons,
        "hdi_prob": post.hdi_prob,
        "target": config.target_column,
        "kpi_type": kpi_type,
        "revenue_per_kpi": rpk,
        "breakeven_roas": config.breakeven_roas,
        "client": client,
        "source": (source or ("mmmlib", __version__))[0],
        "source_version": (source or ("mmmlib", __version__))[1],
        "run": {**run, "mode": mode, "created_at": run.get("created_at") or datetime.now(UTC).isoformat()},
        "period": {
            "start": post.dates[0].strftime("%Y-%m-%d"),
            "end": post.dates[-1].strftime("%Y-%m-%d"),
            "periods": len(post.dates),
            "frequency": frequency,
        },
        "totals": {
            "kpi": float(post.target.sum()),
            "spend": float(post.spend.sum()),
            "media_contribution": analysis.interval(post.contributions().sum(axis=(1, 2)), post.hdi_prob),
        },
        "channels": channels,
        "diagnostics": diag,
        "response_curves": analysis.response_curves(post, breakeven=breakeven),
        "adstock": analysis.adstock_weights(post, config.adstock_max_lag),
        "decomposition": analysis.decomposition(post),
        "fit": {
            "dates": [d.strftime("%Y-%m-%d") for d in post.dates],
            "actual": post.target.tolist(),
            **{k: quality[k] for k in ("predicted", "predicted_low", "predicted_high")},
        },
    }
    media = summary["totals"]["media_contribution"]
    summary["totals"]["media_share"] = {k: v / summary["totals"]["kpi"] for k, v in media.items()}
    summary["totals"]["blended_roas"] = {k: v * value / summary["totals"]["spend"] for k, v in media.items()}
    summary["model"] = model_section(idata, value)
    if post.parts is not None:
        summary["geos"] = geo_section(post, kpi_type, rpk, breakeven, geo_prior)
    from mmmlib.optimize import Curves

    held = {c["name"] for c in channels if not c["identified"]}
    curves = Curves.from_posterior(post, value_per_kpi=value or 1.0)
    summary["reallocation"] = reallocation(curves, held)
    summary["scenarios"] = scenarios(curves, held)
    summary["recommendations"] = recommendations(summary)
    return summary


NATIONAL = "National"  # the geo picker's first choice: the whole run


def geo_names(summary: dict[str, Any]) -> list[str]:
    """The geos of a hierarchical run's summary, largest KPI first (empty for a national run)."""
    return [g["name"] for g in summary.get("geos") or []]


def geo_summary(summary: dict[str, Any], geo: str | None) -> dict[str, Any]:
    """The summary as one geo sees it, for views written for a national summary: that geo's channels (with the
    national labels), totals and response curves; the run's health, period and settings unchanged. ``None`` or
    :data:`NATIONAL` gives the summary itself. The national-only parts (decomposition over time, fit, adstock,
    reallocation, scenarios, recommendations) are left out, so a geo page never shows national numbers as the geo's."""
    if geo in (None, NATIONAL):
        return summary
    row = next((g for g in summary.get("geos") or [] if g["name"] == geo), None)
    if row is None:
        raise KeyError(f"the run has no geo {geo!r}")
    labels = {c["name"]: c.get("label", c["name"]) for c in summary["channels"]}
    media = row["media_contribution"]
    kpi, spend = row["kpi"], row["spend"]
    value = analysis.kpi_value(summary.get("kpi_type"), summary.get("revenue_per_kpi"))
    channels = [{**c, "label": labels.get(c["name"], c["name"])} for c in row["channels"]]
    national = ("geos", "decomposition", "fit", "adstock", "reallocation", "scenarios")
    out = {k: v for k, v in summary.items() if k not in national}
    out.update(
        {
            "geo": geo,
            "channels": channels,
            "response_curves": row["response_curves"],
            "recommendations": [],
            "totals": {
                "kpi": kpi,
                "spend": spend,
                "media_contribution": media,
                "media_share": {k: v / kpi for k, v in media.items()},
                "blended_roas": {k: v * value / spend for k, v in media.items()} if spend else media,
            },
        }
    )
    return out
