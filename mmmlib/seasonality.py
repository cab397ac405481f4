"""The yearly seasonality's Fourier order chosen out of sample (``yearly_seasonality: auto``).

Two harmonics (pymc-marketing's example models, and the suite's peer) cannot draw a year with more than two bumps;
what they miss leaks into the channels whose spend is seasonal or flighted, and on long, low-noise series it gives
narrow ROAS intervals in the wrong place (docs/model.md: on the recovery suite's strong worlds, coverage 78 % where
the year has three bumps against 96–100 % where it has one or two). Four harmonics draw such a year, but where the
data hold no such shape the extra terms only trade off against media (fixing four for every dataset cost the mixed
worlds' identified channels accuracy). So ``auto`` fits the first candidate structure with both orders and keeps
the larger only when PSIS-LOO puts it ahead by more than :data:`KEEP_ELPD` and by more than :data:`SE_MULTIPLE`
times the difference's standard error: differences under 4 elpd are not told apart reliably (Sivula, Magnusson,
Matamoros & Vehtari 2022, "Uncertainty in Bayesian leave-one-out cross-validation based model comparison"). Every
candidate is then fitted with the order kept, and ``summary.json`` ``model.seasonality`` records both scores.

The choice is not all-or-nothing: the first structure's fit with the order not kept is already there, so it joins
the candidates (:func:`renamed`) and is weighed out of sample like them. Where the larger order leads by less than
the rule asks (on the suite's strong world 2010 by 5.2 ± 4.4 elpd, where two harmonics left a seasonally budgeted
channel's interval narrow and below the truth) it takes the weight its score earns instead of none; where it is
clearly worse it gets next to none. A Fourier term a draw's order lacks is zero in the combined posterior
(:func:`mmmlib.stacking.combine`): the smaller order is the larger with those terms at zero.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

AUTO = "auto"
ORDERS = (2, 4)  # the order fitted when the data cannot tell, and the one kept only when they can
KEEP_ELPD = 4.0  # the larger order must lead by more than this (elpd)...
SE_MULTIPLE = 2.0  # ...and by more than this many standard errors of the difference
ATTR = "seasonality_choice"  # the record, kept in the posterior's attributes


def fourier_order(value: int | str) -> int:
    """The order a model is built with: the config's number, or for ``auto`` not yet chosen the smaller order."""
    return ORDERS[0] if value == AUTO else int(value)


def choose(loos: dict[int, Any]) -> tuple[int, dict[str, Any]]:
    """The order kept and the record of why, from each order's PSIS-LOO (arviz ELPDData with pointwise ``elpd_i``;
    None where it could not be computed, which keeps the smaller order)."""
    small, large = ORDERS
    record: dict[str, Any] = {
        "orders": [
            {"order": k, "elpd_loo": _float(loos.get(k), "elpd"), "elpd_se": _float(loos.get(k), "se")} for k in ORDERS
        ],
        "order": small,
        "elpd_diff": None,
        "diff_se": None,
        "rule": f"order {large} is kept when it leads by more than {KEEP_ELPD:g} elpd and {SE_MULTIPLE:g} se",
    }
    if loos.get(small) is None or loos.get(large) is None:
        return small, record
    diff, se = difference(loos[large], loos[small])
    record.update({"elpd_diff": round(diff, 2), "diff_se": round(se, 2)})
    if diff > KEEP_ELPD and diff > SE_MULTIPLE * se:
        record["order"] = large
    return int(record["order"]), record


def renamed(fitted: Any, order: int) -> Any:
    """``fitted`` (a :class:`mmmlib.model.Fitted` of the first structure) named as the candidate with ``order``
    harmonics, its score record too, so that it joins the others under a name of its own."""
    fitted.structure = replace(fitted.structure, harmonics=order)
    if fitted.score is not None:
        rec, loo = fitted.score
        fitted.score = ({**rec, **fitted.structure.to_dict(), "name": fitted.structure.name}, loo)
    return fitted


def joined(record: dict[str, Any], candidates: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The choice's record with the weight the other order's fit took among the candidates (``joined``)."""
    other = [c for c in candidates or [] if "yearly_seasonality" in c]
    if not other:
        return record
    c = other[0]
    return {**record, "joined": {"name": c["name"], "order": c["yearly_seasonality"], "weight": c["weight"]}}


def label(candidate: dict[str, Any]) -> str:
    """A candidate record's carry-over and returns, with its seasonality's order where it is not the run's."""
    order = candidate.get("yearly_seasonality")
    shape = f"{candidate.get('adstock', '—')}+{candidate.get('saturation', '—')}"
    return shape if order is None else f"{shape} with {order} harmonics"


def difference(a: Any, b: Any) -> tuple[float, float]:
    """elpd(a) − elpd(b) and its standard error, from the paired pointwise values (Vehtari, Gelman & Gabry 2017)."""
    d = np.asarray(a.elpd_i).ravel() - np.asarray(b.elpd_i).ravel()
    return float(d.sum()), float(np.sqrt(d.size) * d.std(ddof=1))


def sentence(model: dict[str, Any]) -> str | None:
    """What ``model.seasonality`` says, for ``mmm fit`` and the quality view (None when the order was fixed)."""
    choice = model.get("seasonality")
    if not choice:
        return None
    small, large = ORDERS
    if choice.get("elpd_diff") is None:
        return f"Yearly seasonality: {choice['order']} harmonics (the orders could not be compared out of sample)."
    lead = f"{large} harmonics score {choice['elpd_diff']:+.1f} ± {choice['diff_se']:.1f} elpd against {small}"
    joined = choice.get("joined")
    also = (
        f" The first structure with {joined['order']} harmonics is weighed among the candidates: weight"
        f" {joined['weight']:.2f}."
        if joined
        else ""
    )
    if choice["order"] == large:
        return f"Yearly seasonality: {large} harmonics, chosen out of sample ({lead}).{also}"
    return f"Yearly seasonality: {small} harmonics; {lead}, not enough to keep the larger order.{also}"


def _float(loo: Any, key: str) -> float | None:
    return None if loo is None else round(float(getattr(loo, key)), 2)
