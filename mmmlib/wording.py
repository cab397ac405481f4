"""How numbers read, in one place: money, intervals, their label from the run's ``hdi_prob``, the health sentence.

Every view, report, recommendation and command prints through these, so a run fitted with ``hdi_prob: 0.8`` says
"80% HDI" everywhere and the health sentence is worded once. Plain strings only: no widgets, no pymc.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmmlib.analysis import HDI_PROB


def hdi_prob(source: Mapping[str, Any] | float | None = None) -> float:
    """The interval probability of a run's summary, of a result that carries ``hdi_prob``, or the default."""
    if isinstance(source, Mapping):
        source = source.get("hdi_prob")
    return float(source) if source else HDI_PROB


def interval_label(source: Mapping[str, Any] | float | None = None) -> str:
    """``"94% HDI"``: the name of an interval at the run's probability."""
    return f"{hdi_prob(source) * 100:.3g}% HDI"


def money(x: float, currency: str = "") -> str:
    """Compact amounts for sentences and cards: 1.2M, 35.0k, 950."""
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{currency}{x / div:,.1f}{unit}"
    return f"{currency}{x:,.0f}"


def _fmt(fmt: str | Any) -> Any:
    return fmt.format if isinstance(fmt, str) else fmt


def labelled(i: Mapping[str, float], fmt: str | Any = "{:.2f}", source: Any = None, sep: str = "–") -> str:
    """``mean (94% HDI low–high)``; ``fmt`` is a format string or a function such as :func:`money`."""
    return f"{_fmt(fmt)(i['mean'])} ({span(i, fmt, source, sep)})"


def span(i: Mapping[str, float], fmt: str | Any = "{:.2f}", source: Any = None, sep: str = "–") -> str:
    """``94% HDI low–high``: the interval alone, for a card's detail line."""
    f = _fmt(fmt)
    return f"{interval_label(source)} {f(i['hdi_low'])}{sep}{f(i['hdi_high'])}"


def bracketed(i: Mapping[str, float] | None, fmt: str | Any = "{:.2f}") -> str:
    """``mean [low, high]`` for table cells whose header names the interval; ``—`` when there is none."""
    if not i:
        return "—"
    f = _fmt(fmt)
    return f"{f(i['mean'])} [{f(i['hdi_low'])}, {f(i['hdi_high'])}]"


def health_facts(summary: Mapping[str, Any]) -> str:
    """The diagnostics a reader checks, in one line."""
    d = summary["diagnostics"]
    mape = f"{d['mape']:.1%}" if d.get("mape") is not None else "—"
    return (
        f"max R-hat {d['r_hat_max']:.3f}, min ESS {d['ess_bulk_min']:.0f}, {d['divergences']} divergences, "
        f"in-sample R² {d['r2']:.2f}, MAPE {mape}"
    )


def is_healthy(summary: Mapping[str, Any]) -> bool:
    return summary["status"] == "ok"


def health_sentence(summary: Mapping[str, Any]) -> str:
    """``Model health: good — facts.`` or ``Model health: NOT RELIABLE — reasons.``: always the first thing said."""
    if is_healthy(summary):
        return f"Model health: good — {health_facts(summary)}."
    reasons = "; ".join(summary.get("status_reasons", [])) or "a diagnostic missed its threshold"
    return f"Model health: NOT RELIABLE — {reasons}."


SOURCES = {"pymc-marketing": "PyMC-Marketing", "meridian": "Meridian"}  # who fitted an imported model, as named


def imported_from(summary: Mapping[str, Any]) -> str | None:
    """``"PyMC-Marketing 1.3.0"`` for a run imported from a model fitted elsewhere (``mmm import``); None for ours."""
    source = summary.get("source")
    if not source or source == "mmmlib":
        return None
    return f"{SOURCES.get(str(source), str(source))} {summary.get('source_version') or ''}".strip()


def refit_advice(summary: Mapping[str, Any]) -> str:
    """What to do about a poor fit: refit here, or, for an imported model, where it was fitted."""
    elsewhere = imported_from(summary)
    if elsewhere:
        return (
            f"refit the model in {elsewhere.rsplit(' ', 1)[0]} with more draws or more data, then import it again, "
            "or tighten its priors with lift tests."
        )
    return "refit in full mode (more draws), add data, merge small channels, or tighten priors with lift tests."
