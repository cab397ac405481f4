"""A geo refit keeps its previous run's structure while the data cannot tell it from the best: refreshes do not flip.

A geo fit samples one structure over the geos, chosen among candidates fitted to the national sum
(:func:`mmmlib.model.fit_geos`). Those candidates are often within noise of each other (on Meridian's 40 geos four
structures were within 1.2 elpd, and two refits chose logistic and then Hill returns), so a weekly refit of nearly
the same data could switch structure and move every geo's numbers for no reason in the data. As Robyn's refresh
keeps the previous model's settings, a refit keeps the structure of the newest run in the same folder unless the
new best scores more than :data:`KEEP_ELPD` above it out of sample: differences in elpd under 4 are small and not
told apart reliably (Sivula, Magnusson, Matamoros & Vehtari 2022, "Uncertainty in Bayesian leave-one-out
cross-validation based model comparison"). ``summary.json`` ``model`` names the structure fitted and, when it was
kept, the run it was kept from and by how much the best led. ``mmm fit --fresh-structure`` chooses anew.

A first geo fit (or one whose previous structure fell behind) fits the best-weighted candidate, except that where a
candidate with a simpler returns curve is within the same :data:`KEEP_ELPD` of it, the simpler one is fitted
(:func:`simpler_within_noise`): over Meridian's 40 geos, Hill returns (two shape parameters) left the geo fit
unconverged at quick mode's steps (max R-hat 1.07, ESS 25, 63 divergences) where logistic returns (one) converged
in less time, with the national sum unable to tell the two apart (docs/geo.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mmmlib import runs
from mmmlib.request import FitRequest

KEEP_ELPD = 4.0  # a new best must lead the previous structure by more than this (elpd) to replace it


def previous_run(out: str | Path) -> Path | None:
    """The newest complete run of a geo model in ``out``'s folder, ``out`` itself included (a refit in place)."""
    try:
        folders = runs.run_folders(Path(out).parent)
    except OSError:  # a folder this account may not list holds nothing to keep
        return None
    found = [(choice[1], path) for path in folders if (choice := _choice(path))]
    return max(found)[1] if found else None


def with_previous(request: FitRequest) -> FitRequest:
    """``request`` naming the run whose structure it may keep: the newest geo run in its folder, unless it names
    one already or ``""`` (``mmm fit --fresh-structure``: choose anew)."""
    if request.previous is not None:
        return request
    found = previous_run(request.out)
    return replace(request, previous=str(found) if found else "")


def fitted_structure(run: str | Path) -> str | None:
    """The structure a geo run fitted over its geos (None for a national run or one that cannot be read)."""
    choice = _choice(run)
    return choice[0] if choice else None


def previous_choice(run: str | Path) -> tuple[str, str] | None:
    """A geo run's structure and run id, read once (None for a national run or one that cannot be read)."""
    choice = _choice(run)
    return (choice[0], choice[2]) if choice else None


def _choice(run: str | Path) -> tuple[str, str, str] | None:
    """(structure fitted over the geos, created_at, run id) of a geo run, from its summary."""
    try:
        summary = runs.load_summary(run)
    except Exception:  # a damaged or unreadable run has nothing to keep
        return None
    from mmmlib.summary import GEO_SELECTION

    model = summary.get("model") or {}
    if model.get("selection") != GEO_SELECTION:
        return None
    name = model.get("structure")
    candidates = model.get("candidates") or []
    if not name and candidates:  # runs written before the name was recorded: the best-weighted
        name = max(candidates, key=lambda c: c.get("weight") or 0.0)["name"]
    return (str(name), summary["run"]["created_at"], summary["run"]["id"]) if name else None


def _score(record: dict[str, Any]) -> float | None:
    """The out-of-sample score the weights followed: time-slice CV where it ran (full mode), else PSIS-LOO."""
    value = record.get("elpd_cv", record.get("elpd_loo"))
    return None if value is None else float(value)


def keep_or_switch(records: list[dict[str, Any]], previous: str | None) -> tuple[str, dict[str, Any] | None]:
    """The structure to fit over the geos, and what was kept (None when the best-weighted one is fitted).

    ``records``: the national sum's candidates (:func:`mmmlib.stacking.compare`). The previous structure is kept
    when it is still a candidate, was not excluded (its sampler diverged), both have a score and the best leads it
    by at most :data:`KEEP_ELPD`."""
    best = max(records, key=lambda c: c.get("weight") or 0.0)
    if not previous or previous == best["name"]:
        return best["name"], None
    prior = next((c for c in records if c["name"] == previous), None)
    if prior is None or prior.get("excluded"):
        return best["name"], None
    best_score, prior_score = _score(best), _score(prior)
    if best_score is None or prior_score is None:
        return best["name"], None
    lead = best_score - prior_score
    if lead > KEEP_ELPD:
        return best["name"], None
    return previous, _behind(previous, best["name"], lead)


def _behind(structure: str, best: str, lead: float) -> dict[str, Any]:
    """The record of a structure fitted in the best one's place, and by how much (elpd) the best led it."""
    return {"structure": structure, "best": best, "elpd_behind": round(max(lead, 0.0), 2)}


def simpler_within_noise(records: list[dict[str, Any]], shape_parameters: dict[str, int]) -> dict[str, Any] | None:
    """The candidate to fit instead of the best-weighted one, when one with fewer returns-shape parameters
    (``shape_parameters``, by name) scores within :data:`KEEP_ELPD` of it: ``{"structure", "best", "elpd_behind"}``,
    else None. Among several, the fewest parameters, then the highest weight; excluded and unscored ones never."""
    best = max(records, key=lambda c: c.get("weight") or 0.0)
    best_score = _score(best)
    if best_score is None or best["name"] not in shape_parameters:
        return None
    close = [
        c
        for c in _within_noise(records, best_score)
        if c["name"] in shape_parameters and shape_parameters[c["name"]] < shape_parameters[best["name"]]
    ]
    if not close:
        return None
    chosen = min(close, key=lambda c: (shape_parameters[c["name"]], -(c.get("weight") or 0.0)))
    return _behind(chosen["name"], best["name"], best_score - float(_score(chosen)))  # type: ignore[arg-type]


def second_within_noise(records: list[dict[str, Any]], fitted: str) -> dict[str, Any] | None:
    """The candidate to fit over the geos beside ``fitted``: the highest-weighted other one that scores within
    :data:`KEEP_ELPD` of the national sum's best (the best itself when ``fitted`` is not it), as
    ``{"structure", "best", "elpd_behind"}``; None when the sum tells every other one apart. Excluded and unscored
    candidates never. The sum cannot choose between such structures, and the geos, with many times its data, can."""
    best = max(records, key=lambda c: c.get("weight") or 0.0)
    best_score = _score(best)
    if best_score is None:
        return None
    close = [c for c in _within_noise(records, best_score) if c["name"] != fitted]
    if not close:
        return None
    chosen = max(close, key=lambda c: c.get("weight") or 0.0)
    return _behind(chosen["name"], best["name"], best_score - float(_score(chosen)))  # type: ignore[arg-type]


def _within_noise(records: list[dict[str, Any]], best_score: float) -> list[dict[str, Any]]:
    """The candidates scored within :data:`KEEP_ELPD` of ``best_score`` (the best among them), never an excluded one."""
    return [
        c
        for c in records
        if not c.get("excluded") and (score := _score(c)) is not None and best_score - score <= KEEP_ELPD
    ]


def geo_structure_sentence(model: dict[str, Any]) -> str | None:
    """What a geo run fitted over its geos and why, for the quality view and ``mmm fit`` (None: not a geo run)."""
    first = _first_structure_sentence(model)
    second = model.get("second")
    if first is None or not second:
        return first
    weights = {c["name"]: c.get("weight") for c in model.get("geo_candidates") or []}
    weighed = ""
    if weights.get(model.get("structure")) is not None and weights.get(second["structure"]) is not None:
        weighed = f" (weights {weights[model['structure']]:.2f} and {weights[second['structure']]:.2f})"
    why = "the best-weighted on the national sum"
    if second["structure"] != second["best"]:
        why = f"which the national sum cannot tell from its best ({second['elpd_behind']:.1f} elpd behind)"
    fitted = f"{second['structure']}, {why}, was fitted over the geos too"
    return f"{first} {fitted}; the geos' own data weighed the two{weighed}."


def _first_structure_sentence(model: dict[str, Any]) -> str | None:
    kept = model.get("kept")
    if kept:
        return (
            f"{kept['structure']} was fitted over the geos, kept from the previous run {kept['run']}: the best on "
            f"this data, {kept['best']}, leads it by {kept['elpd_behind']:.1f} elpd, and differences of "
            f"{KEEP_ELPD:g} or less cannot be told apart."
        )
    simpler = model.get("simpler")
    if simpler:
        return (
            f"{simpler['structure']} was fitted over the geos: the best-weighted on their national sum, "
            f"{simpler['best']}, leads it by {simpler['elpd_behind']:.1f} elpd, differences of {KEEP_ELPD:g} or less "
            "cannot be told apart, and its returns curve has fewer parameters to sample over every geo."
        )
    if model.get("structure"):
        return f"{model['structure']} was fitted over the geos (the best-weighted on their national sum)."
    return None
