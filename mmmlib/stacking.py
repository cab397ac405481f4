"""Weigh candidate structures out of sample and combine their posteriors into one.

Each candidate is scored by PSIS-LOO (arviz), in full mode by time-slice cross-validation (:mod:`mmmlib.time_slice`),
and weighted by pseudo-BMA+ (Yao, Vehtari, Simpson & Gelman 2018,
``arviz.compare(method="BB-pseudo-BMA")``; ``WEIGHTING`` says why not stacking proper). The combined posterior is
that mixture: each candidate contributes a share of every chain's draws equal to its weight, so what is unknown
about the structure widens the intervals instead of hiding in one choice. Draws keep their candidate's index in
``structure`` and their families in ``adstock_family`` / ``saturation_family``; parameters a candidate does not have
are NaN in its draws, and :mod:`mmmlib.analysis` evaluates each draw with its own family's formula.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import xarray as xr

from mmmlib import jax_placeholder, structures

log = logging.getLogger("mmmlib.stacking")

OBSERVED = "y"
# Pseudo-BMA+ (Bayesian-bootstrap pseudo-Bayesian model averaging, Yao et al. 2018): weights follow each candidate's
# out-of-sample elpd and its uncertainty, so candidates that predict equally well share the draws. Stacking proper
# optimises the mixture's prediction of the KPI; when candidates predict the KPI alike (usual: the structures differ
# in how they split the KPI among channels, not in the KPI) it gives one of them all the weight, arbitrarily, and
# the structure's uncertainty about ROAS would hide instead of widening the intervals.
WEIGHTING = "BB-pseudo-BMA"
STRUCTURE_VAR = "structure"
HDI_PROB_OF_CANDIDATES = 0.94  # a candidate's ROAS interval (analysis.HDI_PROB; the fit does not know the config's)
CANDIDATES_ATTR = "candidates"
FOURIER = "gamma_fourier"  # the yearly seasonality's coefficients, by ``fourier_mode`` (sin_1, cos_1, ...)
# posterior variables the product reads downstream (analysis, forecast, priors view); the rest are not kept
KEEP_PREFIXES = (
    "adstock_",
    "saturation_",
    "gamma_",
    "intercept",
    "y_sigma",
    "channel_contribution",
    "mu",
    "control_contribution",
    # the seasonality's sum; its per-mode terms (fourier_contribution: 15 of the sample's 72 MB) are read by nothing
    "yearly_seasonality_contribution",
    "lift_measurements",  # the lift tests' likelihood terms: evidence that they calibrated the model sampled
)


def score(member: Any, diag: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """One candidate's record (structure, diagnostics, PSIS-LOO elpd ± se, effective parameters, worst Pareto k) and
    its LOO object (None when it cannot be computed: too few draws, a degenerate tail). Computed where the candidate
    was fitted, so candidates fitted in parallel are scored in parallel. ``diag``: its diagnostics, when measured
    before the posterior was slimmed (:func:`slim`)."""
    import arviz as az

    from mmmlib.analysis import diagnostics

    name = member.structure.name
    diag = diag if diag is not None else diagnostics(member.idata)
    rec = {
        **member.structure.to_dict(),
        "name": name,
        "r_hat_max": diag["r_hat_max"],
        "ess_bulk_min": diag["ess_bulk_min"],
        "ess_tail_min": diag["ess_tail_min"],
        "divergences": diag["divergences"],
        "chains": int(member.idata["posterior"].sizes["chain"]),
        "drawn_per_chain": int(member.idata["posterior"].sizes["draw"]),  # its own; draws_per_chain is the mixture's
        "elpd_loo": None,
        "elpd_se": None,
        "p_loo": None,
        "pareto_k_max": None,
        "seconds": round(member.fit_seconds, 2),
    }
    if getattr(member, "retried", None):
        rec["retried"] = dict(member.retried)
    rec["roas"] = candidate_roas(member.idata)
    rec["roas_hdi_prob"] = HDI_PROB_OF_CANDIDATES
    try:
        with jax_placeholder.hidden():
            loo = az.loo(member.idata, var_name=OBSERVED, pointwise=True, reff=relative_efficiency(member.idata))
    except Exception as exc:  # a score that cannot be computed is reported; it never fails a fit
        log.warning("PSIS-LOO of %s failed: %s", name, exc)
        return rec, None
    rec.update(
        {
            "elpd_loo": float(loo.elpd),
            "elpd_se": float(loo.se),
            "p_loo": float(loo.p),
            "pareto_k_max": float(np.nanmax(np.asarray(loo.pareto_k))),
        }
    )
    return rec, loo


def relative_efficiency(idata: Any) -> float | None:
    """PSIS-LOO's relative efficiency (``r_eff``: ESS over draws, the Pareto smoothing's thinning for correlated
    draws) as the mean ESS of the sampled parameters, the ones the run's diagnostics report. arviz's default averages
    every posterior variable, so the result depended on which deterministics pymc-marketing stores (over 4,000 weekly
    series on the sample, every geo's for geo fits) and cost 0.5 s of a candidate's 0.6 s score: elpd, se and p_loo
    agree to two decimals (docs/speed.md). None (arviz's own) when no parameter's ESS is finite or it cannot be
    computed."""
    import arviz as az

    from mmmlib.analysis import diagnosed_names

    try:
        post = idata["posterior"].to_dataset()
        names = diagnosed_names(post)
        if not names:
            return None
        ess = az.ess(idata, var_names=names, method="mean")
        values = np.hstack([np.asarray(ess[name].values, dtype=float).ravel() for name in names])
    except Exception as exc:  # arviz's own r_eff then: this is a shortcut, never a reason for a score to fail
        log.warning("relative efficiency from the parameters failed (%s); arviz's default used", exc)
        return None
    values = values[np.isfinite(values)]
    draws = post.sizes["chain"] * post.sizes["draw"]
    return float(values.mean() / draws) if values.size else None


def candidate_roas(idata: Any) -> dict[str, dict[str, float]] | None:
    """Each channel's ROAS under this candidate alone (mean and 94 % HDI, KPI units per unit of spend; the summary
    values them as the run's ROAS is): how much the answer depends on the structure, shown beside the weights."""
    from mmmlib import analysis

    try:
        post = analysis.Posterior.from_idata(idata)
        draws = analysis.roas_draws(post)
    except Exception as exc:  # a missing diagnostic never fails a fit
        log.warning("ROAS of a candidate could not be computed: %s", exc)
        return None
    return {ch: analysis.interval(draws[:, j], HDI_PROB_OF_CANDIDATES) for j, ch in enumerate(post.channels)}


def compare(members: list[Any], held_out: dict[str, Any] | None = None) -> tuple[list[float], list[dict[str, Any]]]:
    """Weights and, per candidate, its :func:`score` record.

    ``held_out``: per candidate name, its pointwise time-slice scores (:mod:`mmmlib.time_slice`, full mode); the
    weights then follow them instead of PSIS-LOO, which every record still reports. A candidate whose LOO cannot be
    computed gets ``None`` scores, and then (without ``held_out``) every candidate gets equal weight: weights are never
    made up from the ones that could be scored. A candidate whose sampler still diverged (after its refit,
    :func:`mmmlib.model.fit_checked`) gets weight 0 and says why in ``excluded``, unless every candidate diverged:
    its draws may miss part of its posterior, and the others' do not.
    """
    names = [m.structure.name for m in members]
    records: list[dict[str, Any]] = []
    loos: dict[str, Any] = {}
    for name, m in zip(names, members, strict=True):
        scored = getattr(m, "score", None)  # a worker may have scored it already
        rec, loo = scored if scored is not None else score(m)
        records.append(dict(rec))
        if loo is not None:
            loos[name] = loo
    if held_out is not None:
        scores = _held_out_scores(members, held_out)
        for name, rec in zip(names, records, strict=True):
            rec.update({"elpd_cv": float(scores[name].elpd), "elpd_cv_se": float(scores[name].se)})
            rec["weighted_by"] = "time-slice CV"
    kept = [i for i, rec in enumerate(records) if not rec["divergences"]] or list(range(len(members)))
    for i, rec in enumerate(records):
        if i not in kept:
            rec["excluded"] = f"{rec['divergences']} divergent transitions" + (
                f" after a refit at target_accept {_retry_target()}" if rec.get("retried") else ""
            )
    weights = [0.0] * len(members)
    for i, w in zip(kept, _weights([names[i] for i in kept], loos, scores if held_out is not None else None)):
        weights[i] = w
    total = sum(weights) or 1.0
    weights = [w / total for w in weights]
    for w, rec in zip(weights, records, strict=True):
        rec["weight"] = round(w, 4)
    return weights, records


def loo_weights(members: list[Any]) -> list[float]:
    """Pseudo-BMA+ weights by the members' PSIS-LOO (:func:`score`) as they are, divergent ones included: which
    structure the data prefer, before :func:`compare` leaves out a fit whose sampler diverged."""
    names = [m.structure.name for m in members]
    loos = {n: m.score[1] for n, m in zip(names, members, strict=True) if m.score and m.score[1] is not None}
    return _weights(names, loos, None)


def _weights(names: list[str], loos: dict[str, Any], held_out: dict[str, Any] | None) -> list[float]:
    """Pseudo-BMA+ weights of ``names`` by their time-slice scores when given, else by PSIS-LOO (equal weights when
    any LOO is missing)."""
    import arviz as az

    if len(names) == 1:
        return [1.0]
    if held_out is None and any(n not in loos for n in names):
        return [1.0 / len(names)] * len(names)
    with jax_placeholder.hidden():
        if held_out is not None:
            table = az.compare({n: held_out[n] for n in names}, method=WEIGHTING, round_to=6)
        else:
            table = az.compare({n: loos[n] for n in names}, method=WEIGHTING, var_name=OBSERVED, round_to=6)
    return [float(table.loc[n, "weight"]) for n in names]


def _retry_target() -> float:
    from mmmlib.model import RETRY_TARGET_ACCEPT

    return RETRY_TARGET_ACCEPT


def _held_out_scores(members: list[Any], held_out: dict[str, Any]) -> dict[str, Any]:
    from mmmlib import time_slice

    samples = int(members[0].idata["posterior"].sizes["chain"] * members[0].idata["posterior"].sizes["draw"])
    return {m.structure.name: time_slice.elpd_data(np.asarray(held_out[m.structure.name]), samples) for m in members}


def allocate(weights: list[float], total: int) -> list[int]:
    """Whole numbers of draws per candidate summing to ``total``, proportional to the weights (largest remainder)."""
    raw = np.asarray(weights, dtype=float) * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def mixture_draws(drawn: list[int], weights: list[float]) -> int:
    """Draws per chain of the mixture: as many as the candidates' weights allow without using any draw twice.

    A stopping rule stops candidates at different counts. Taking only the fewest any candidate drew would throw away
    most of the draws of a heavily weighted candidate that needed more (and with them its effective sample size);
    taking ``w_m × n`` draws of each candidate ``m`` needs ``n ≤ drawn_m / w_m`` for all of them.
    """
    n = min(max(drawn), *(int(np.floor(d / w)) for d, w in zip(drawn, weights, strict=True) if w > 0))
    while n > 1 and any(c > d for c, d in zip(allocate(weights, n), drawn, strict=True)):  # rounding
        n -= 1
    return n


def _pick(ds: xr.Dataset, chain_draws: list[np.ndarray]) -> xr.Dataset:
    """The draws ``chain_draws[c]`` of each chain ``c`` (same count per chain), renumbered from 0: one gather per
    variable (an index along ``draw`` that varies with ``chain``), not a copy per chain and a concatenation (0.3-0.5 s
    of a fit's mixture on the sample)."""
    n = len(chain_draws[0])
    index = xr.DataArray(np.stack(chain_draws), dims=("chain", "draw"))
    return ds.isel(draw=index).assign_coords(draw=np.arange(n))


def mix_groups(
    datasets: list[xr.Dataset], counts: list[int], rng: np.random.Generator
) -> tuple[xr.Dataset, np.ndarray]:
    """Per chain, ``counts[m]`` random draws of candidate ``m``'s ``datasets[m]``; variables missing in one are NaN."""
    names: list[str] = []
    for ds in datasets:
        names += [str(v) for v in ds.data_vars if str(v) not in names]
    picked, index = [], []
    for m, (ds, n) in enumerate(zip(datasets, counts, strict=True)):
        if n == 0:
            continue
        chains, draws = ds.sizes["chain"], ds.sizes["draw"]
        idx = [np.sort(rng.choice(draws, size=n, replace=n > draws)) for _ in range(chains)]
        part = _pick(ds, idx)
        for v in names:
            if v not in part.data_vars:
                template = next(d[v] for d in datasets if v in d.data_vars)
                shape = {d: part.sizes[d] if d in ("chain", "draw") else template.sizes[d] for d in template.dims}
                coords = {
                    d: template[d].values for d in template.dims if d not in ("chain", "draw") and d in template.coords
                }
                part[v] = xr.DataArray(np.full(tuple(shape.values()), np.nan), dims=tuple(shape), coords=coords)
        picked.append(part)
        index.append(np.full((part.sizes["chain"], n), m))
    picked = [
        p.assign_coords(draw=np.arange(start, start + p.sizes["draw"]))
        for p, start in zip(picked, np.cumsum([0] + [p.sizes["draw"] for p in picked[:-1]]), strict=True)
    ]
    out = xr.concat(picked, dim="draw", data_vars="all", coords="minimal", compat="override", join="outer")
    out = out.assign_coords(draw=np.arange(out.sizes["draw"]))
    return out, np.concatenate(index, axis=1)


def zero_missing_terms(mixed: tuple[xr.Dataset, np.ndarray]) -> tuple[xr.Dataset, np.ndarray]:
    """A :func:`mix_groups` result with the Fourier terms a draw's seasonality order lacks set to zero, not NaN:
    candidates of two orders (:mod:`mmmlib.seasonality`) share ``gamma_fourier``, and the smaller order is the larger
    with those terms at zero, so forecasts evaluate every draw's seasonality with one set of terms."""
    ds, index = mixed
    if FOURIER in ds.data_vars:
        ds[FOURIER] = ds[FOURIER].fillna(0.0)
    return ds, index


def combine(members: list[Any], seed: int = 0, held_out: dict[str, Any] | None = None) -> Any:
    """One :class:`~mmmlib.model.Fitted` whose posterior is the stacking mixture of the candidates' posteriors
    (weighted by ``held_out`` time-slice scores when given, else by PSIS-LOO: :func:`compare`)."""
    from mmmlib.model import Fitted

    weights, records = compare(members, held_out)
    for rec in records:
        log.info(
            "candidate %s: elpd_loo %.1f ± %.1f%s, weight %.2f",
            rec["name"],
            rec["elpd_loo"] or np.nan,
            rec["elpd_se"] or np.nan,
            f", time-slice elpd {rec['elpd_cv']:.1f} ± {rec['elpd_cv_se']:.1f}" if "elpd_cv" in rec else "",
            rec["weight"],
        )
    rng = np.random.default_rng(seed)
    first = members[0]
    draws = mixture_draws([m.idata["posterior"].sizes["draw"] for m in members], weights)
    counts = allocate(weights, draws)
    posteriors = [_kept(m.idata["posterior"].to_dataset()) for m in members]
    posterior, index = zero_missing_terms(mix_groups(posteriors, counts, rng))
    posterior[STRUCTURE_VAR] = xr.DataArray(index, dims=("chain", "draw"))
    for part, registry in (("adstock", structures.ADSTOCKS), ("saturation", structures.SATURATIONS)):
        codes = np.array([registry.index(getattr(m.structure, part)) for m in members], dtype=float)
        posterior[f"{part}_family"] = xr.DataArray(codes[index], dims=("chain", "draw"))
    for rec, n in zip(records, counts, strict=True):
        rec["draws_per_chain"] = int(n)
    stats, _ = mix_groups(
        [m.idata["sample_stats"].to_dataset()[["diverging"]] for m in members], counts, np.random.default_rng(seed)
    )  # same seed: the same draws as the posterior's
    groups = {"posterior": posterior, "sample_stats": stats}
    if all("prior" in m.idata.children for m in members):
        prior_draws = [m.idata["prior"].to_dataset() for m in members]
        groups["prior"], _ = zero_missing_terms(
            mix_groups(prior_draws, allocate(weights, prior_draws[0].sizes["draw"]), rng)
        )
    for name in first.idata.children:
        if name not in groups and name not in ("log_likelihood", "observed_data_lift"):
            groups[name] = first.idata[name].to_dataset()
    tree = xr.DataTree.from_dict(groups)
    best = members[int(np.argmax(weights))]
    tree.attrs.update(best.idata.attrs)
    tree.attrs[CANDIDATES_ATTR] = json.dumps(records)
    return Fitted(
        mmm=[m.mmm for m in members],
        idata=tree,
        X=first.X,
        y=first.y,
        control_scales=first.control_scales,
        sampler=first.sampler,
        chains=first.chains,
        draws=draws,
        fit_seconds=sum(m.fit_seconds for m in members),
        holdout=first.holdout,
        tune=first.tune,
        target_accept=first.target_accept,
        structure=best.structure,
        candidates=records,
        weights=weights,
        members=members,
    )


def slim(member: Any) -> None:
    """Score a fitted candidate, then keep of it only what :func:`combine` reads, in float32: a geo fit's per-geo,
    per-period draws and pointwise likelihood are held while the next candidate samples (two 40-geo fits held
    9.95 GB together, docs/geo.md). Its model object, which holds the full draws too, is let go. The diagnostics
    are measured on every sampled parameter first; the ROAS and PSIS-LOO of the score then read the slimmed draws, so
    the full ones are not held beside the score's own arrays (a 40-geo fit's per-geo roll-up)."""
    import gc

    from mmmlib.analysis import diagnostics

    scored = getattr(member, "score", None)
    diag = diagnostics(member.idata) if scored is None else None
    groups, attrs = _slim_groups(member.idata), dict(member.idata.attrs)
    member.idata, member.mmm = _tree(groups, attrs), None
    gc.collect()  # a PyMC model's reference cycles hold the full draws until collected
    if scored is None:
        member.score = score(member, diag)
    groups.pop("log_likelihood", None)  # read by PSIS-LOO only
    member.idata = _tree(groups, attrs)


def _slim_groups(idata: Any) -> dict[str, xr.Dataset]:
    """Every group, the posterior cut to what :func:`combine` reads in float32, the sample statistics to
    ``diverging``."""
    groups: dict[str, xr.Dataset] = {}
    for name in idata.children:
        ds = idata[name].to_dataset()
        if name == "posterior":
            ds = _kept(ds)
            # one variable at a time: astype with a mapping must name every variable, and geo fits' per-period
            # outputs arrive in float32 already (model._compact_deterministics)
            ds = ds.assign({v: ds[v].astype(np.float32) for v in ds.data_vars if ds[v].dtype == np.float64})
        elif name == "sample_stats":
            ds = ds[["diverging"]]
        groups[name] = ds
    return groups


def _tree(groups: dict[str, xr.Dataset], attrs: dict[str, Any]) -> xr.DataTree:
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(attrs)
    return tree


def _kept(ds: xr.Dataset) -> xr.Dataset:
    keep = [v for v in ds.data_vars if str(v).startswith(KEEP_PREFIXES)]
    return ds[keep]


def candidate_records(idata: Any) -> list[dict[str, Any]] | None:
    """The stacking record stored with a combined posterior (None for a single structure fitted before stacking)."""
    raw = idata.attrs.get(CANDIDATES_ATTR)
    return json.loads(raw) if raw else None


def mix_draws(parts: list[np.ndarray], weights: list[float], seed: int = 0) -> np.ndarray:
    """Draws ``(draw, ...)`` of each candidate mixed in proportion to the weights (held-out predictions), as many as
    the weights allow without using a draw twice (:func:`mixture_draws`: candidates stop at different counts)."""
    rng = np.random.default_rng(seed)
    total = mixture_draws([len(p) for p in parts], weights)
    chosen = [
        p[rng.choice(len(p), size=n, replace=False)] for p, n in zip(parts, allocate(weights, total), strict=True) if n
    ]
    return np.concatenate(chosen, axis=0)
