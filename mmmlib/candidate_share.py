"""How many draws a candidate structure needs, given how much of the mixture it can still take.

A default fit weighs its candidate structures by PSIS-LOO (pseudo-BMA+, :mod:`mmmlib.stacking`) and mixes their draws
by weight, so the mixture's effective sample size is ``1 / Σ w² / E`` over the candidates
(:func:`mmmlib.analysis.mixture_ess`). If every candidate's own ESS ``E`` is at least ``w × T``, the sum is at most
``Σ w / T = 1 / T``: the mixture keeps the target ``T``. A candidate the data have all but ruled out (weight near 0)
therefore needs few draws of its own, yet each used to draw until its own ESS reached the whole target.

Candidates fitted after others have finished (the default's second batch, after the seasonality's order was chosen)
know those others' PSIS-LOO. A candidate's PSIS-LOO on its draws so far then bounds the weight it can take: its
pseudo-BMA+ weight beside the finished candidates alone, since every further candidate only adds to each bootstrap
replicate's denominator (arviz draws the Bayesian bootstrap with a fixed seed, so the replicates are the same ones in
the final comparison). When the draws stop there, the final comparison scores those same draws, so the bound holds
for the weight the candidate gets (up to the relative efficiency PSIS-LOO is given, which the final score measures on
the stored posterior). The candidate stops at the first check point where its bulk and tail ESS reach ``T`` times
that bound, R-hat is within :data:`SHARE_R_HAT` (unless the bound is :data:`NEGLIGIBLE`) and PSIS-LOO is usable
(every Pareto k ≤ 1); otherwise it draws on as before. The mixture's ESS counts the draws it keeps of each
candidate, a little less than the candidate's own ESS; the candidates' target (250) leaves that margin over quick
mode's 200. The final mixture's ESS is measured as always, and a run below its mode's threshold is flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

log = logging.getLogger("mmmlib.candidate_share")

SHARE_ATTR = "stopped_for_share"  # the posterior's attribute (JSON) recording why a candidate stopped early
# A candidate stopped for its share keeps its draws in the mixture, and a run reports the worst R-hat of the candidates
# that gave it draws. Stopped wherever R-hat was within quick mode's 1.05, candidates cut at 250 draws per chain raised
# the mixed suite's worst run R-hat from 1.021 to 1.045 (commit df01f41): such a stop now waits for R-hat ≤ 1.02.
SHARE_R_HAT = 1.02
# A candidate whose bound is below this gets no draw of the mixture (at most 0.2 of a 2,000-draw chain): its chains
# cannot move the mixture, so it stops for its share wherever the rule's own R-hat holds.
NEGLIGIBLE = 1e-4
CANDIDATE = "__candidate__"  # the candidate's name beside the finished ones in the comparison
# PSIS-LOO's Pareto k above which an observation's importance ratios have no finite mean (Vehtari et al. 2024, "Pareto
# smoothed importance sampling"): no bound then. Between 0.7 and 1 the estimate is noisy and, with few draws, leans
# optimistic (the harmonic mean's tail is missed), which raises the bound: it stops such a candidate later, not
# sooner. The final comparison scores the same draws either way.
USABLE_K = 1.0


@dataclass(frozen=True)
class Finished:
    """The PSIS-LOO (arviz ``ELPDData``, pointwise) of candidates already fitted: the ones a later candidate's
    weight is bounded against. Every one must end up in the final comparison for the bound to hold."""

    names: tuple[str, ...]
    loos: tuple[Any, ...]


def finished(members: list[Any]) -> Finished | None:
    """The scored candidates ``members`` (:attr:`mmmlib.model.Fitted.score`) as a :class:`Finished`, or None when
    any of them could not be scored (then there is nothing to bound against)."""
    loos = [m.score[1] if m.score else None for m in members]
    if not members or any(loo is None for loo in loos):
        return None
    # numbered: the first structure's fits with either seasonality order share a name until the other is renamed
    return Finished(tuple(f"{m.structure.name} #{i}" for i, m in enumerate(members, 1)), tuple(loos))


def largest_weight(loo: Any, beside: Finished) -> float:
    """The pseudo-BMA+ weight of the candidate scored ``loo`` among ``beside``'s candidates alone: the most it can
    take once the rest are compared too."""
    import arviz as az

    from mmmlib import jax_placeholder
    from mmmlib.stacking import OBSERVED, WEIGHTING

    with jax_placeholder.hidden():
        table = az.compare(
            {**dict(zip(beside.names, beside.loos, strict=True)), CANDIDATE: loo},
            method=WEIGHTING,
            var_name=OBSERVED,
            round_to=6,
        )
    return float(table.loc[CANDIDATE, "weight"])


def needed_ess(weight: float, target: float) -> float:
    """The ESS a candidate that takes at most ``weight`` of the mixture needs for the mixture to keep ``target``."""
    return target * min(max(weight, 0.0), 1.0)


def pointwise_loglik(y: Any, mu: Any, sigma: Any) -> Any:
    """The Normal likelihood's log density of every observed period, per draw (the default likelihood)."""
    return -0.5 * np.log(2 * np.pi * sigma**2) - (y - mu) ** 2 / (2 * sigma**2)


def loo_of(posterior: xr.Dataset, model: Any) -> Any:
    """PSIS-LOO of the draws ``posterior`` (the free parameters, ``(chain, draw, ...)``) of ``model`` (a built
    pymc-marketing MMM's PyMC model, Normal likelihood), computed as the final score computes it
    (:func:`mmmlib.stacking.psis_loo`): the deterministics from the draws, then the pointwise log-likelihood."""
    import pymc as pm

    from mmmlib.stacking import OBSERVED, psis_loo

    deterministics = pm.compute_deterministics(posterior, model=model, progressbar=False)
    post = xr.merge([posterior, deterministics])
    y = np.asarray(model["target_data"].get_value(), dtype=float) / float(model["target_scale"].eval())
    mu = post["mu"].transpose("chain", "draw", "date")
    ll = pointwise_loglik(xr.DataArray(y, dims=("date",), coords={"date": mu["date"]}), mu, post["y_sigma"])
    tree = xr.DataTree.from_dict({"posterior": post, "log_likelihood": xr.Dataset({OBSERVED: ll})})
    return psis_loo(tree)


def check(
    mmm: Any, beside: Finished, target: float, name: str
) -> Callable[[Callable[[], xr.Dataset], dict[str, float]], dict[str, float] | None]:
    """The stopping check :func:`mmmlib.nutpie_stop.sample_until` calls where its rule is not met yet: given the
    draws so far (a callable, so they are only gathered when asked) and their diagnostics, the record
    ``{"weight_at_most", "ess_needed", "elpd_loo"}`` when this candidate (``name``, the MMM ``mmm`` being sampled)
    has the ESS its largest possible weight needs, else None."""

    def enough(draws: Callable[[], xr.Dataset], diag: dict[str, float]) -> dict[str, float] | None:
        try:
            loo = loo_of(draws(), mmm.model)
            k = np.asarray(loo.pareto_k, dtype=float)
            if not np.all(np.isfinite(k)) or float(np.max(k)) > USABLE_K:
                log.info("%s: PSIS-LOO on the draws so far is not usable (Pareto k up to %.2f)", name, np.max(k))
                return None
            weight = largest_weight(loo, beside)
        except Exception as exc:  # a shortcut: never a reason for a fit to fail
            log.warning("%s: its share of the mixture could not be bounded (%s); drawing on", name, exc)
            return None
        need = needed_ess(weight, target)
        mixed = weight < NEGLIGIBLE or diag["r_hat_max"] <= SHARE_R_HAT
        met = mixed and diag["ess_bulk_min"] >= need and diag["ess_tail_min"] >= need
        log.info(
            "%s: at most %.1f %% of the mixture beside %s (elpd_loo %.1f): needs ESS %.0f of its own%s",
            name,
            100 * weight,
            ", ".join(beside.names),
            float(loo.elpd),
            need,
            "" if met else "; drawing on" if mixed else f"; drawing on until R-hat is within {SHARE_R_HAT}",
        )
        if not met:
            return None
        return {"weight_at_most": round(weight, 6), "ess_needed": round(need, 2), "elpd_loo": round(float(loo.elpd), 4)}

    return enough
