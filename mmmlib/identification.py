"""Can this data tell this channel's return? The one rule behind "not identified" (issue #12, item 4).

A channel is NOT identified when the data barely narrowed what the priors already said (its ROAS posterior sd is
more than half its prior sd), when its 94 % HDI holds both half and twice break-even ROAS (the data cannot say
whether it loses money or doubles it), or when its ROAS is too imprecise to act on: a posterior sd above half its
mean (a relative standard error over 50 %, the level at which statistics agencies withhold an estimate as "too
unreliable for general use" — the Australian Bureau of Statistics' rule; NCHS flags 30 %). At that precision the
interval runs from near zero to about twice the estimate, so the number says little about the return even where
the prior was wider still. Such a channel gets no precise-looking advice: every reader (summary, recommendations,
optimiser, planner, dashboards, reports) holds its budget and asks for a lift test instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmmlib.analysis import HDI_PROB, hdi

SD_SHARE = 0.5  # posterior sd above this share of the prior sd: the data said little about the return
LOW_FACTOR, HIGH_FACTOR = 0.5, 2.0  # an HDI holding both 0.5× and 2× break-even cannot tell loss from gain
RSE_MAX = 0.5  # posterior sd above this share of the posterior mean: too imprecise to act on (ABS's 50 % rule)


def spans_breakeven(low: float, high: float, breakeven: float) -> bool:
    """Whether an interval holds both half and twice break-even ROAS (the interval half of the rule)."""
    return bool(low <= LOW_FACTOR * breakeven and high >= HIGH_FACTOR * breakeven)


def identify(
    roas: np.ndarray, prior: np.ndarray | None, breakeven: float | None, prob: float = HDI_PROB
) -> list[dict[str, Any]]:
    """Per channel ``{"identified", "reasons", "roas_sd", "prior_sd"}`` from ROAS draws ``(draw, channel)``.

    The relative-precision rule needs neither prior nor break-even, so it applies to every run.

    ``prior`` holds prior ROAS draws ``(draw, channel)``, or None (an old run without prior draws): then the prior
    rule is skipped and ``prior_sd`` is None. ``breakeven`` None (spend and the KPI's value in different units,
    :func:`mmmlib.roas_priors.units_differ`): there is no break-even to hold, and the interval rule is skipped.
    """
    roas = np.asarray(roas, dtype=float)
    low, high = hdi(roas, prob)
    post_sd = roas.std(axis=0)
    post_mean = roas.mean(axis=0)
    prior_sd = None if prior is None else np.asarray(prior, dtype=float).std(axis=0)
    out = []
    for j in range(roas.shape[1]):
        reasons = []
        psd = None if prior_sd is None else float(prior_sd[j])
        if psd is not None and np.isfinite(psd) and psd > 0 and post_sd[j] > SD_SHARE * psd:
            reasons.append(
                f"the data barely narrowed the prior: ROAS posterior sd {post_sd[j]:.2f} is more than half "
                f"the prior sd {psd:.2f}"
            )
        if breakeven is not None and spans_breakeven(low[j], high[j], breakeven):
            reasons.append(
                f"its {prob * 100:.3g}% HDI {low[j]:.2f}–{high[j]:.2f} holds both half "
                f"({LOW_FACTOR * breakeven:.2f}) and twice "
                f"({HIGH_FACTOR * breakeven:.2f}) break-even ROAS"
            )
        if not post_mean[j] > 0 or post_sd[j] > RSE_MAX * post_mean[j]:
            reasons.append(
                f"its ROAS is too imprecise to act on: posterior sd {post_sd[j]:.2f} is more than half its mean "
                f"{post_mean[j]:.2f}"
            )
        out.append({"identified": not reasons, "reasons": reasons, "roas_sd": float(post_sd[j]), "prior_sd": psd})
    return out


def is_identified(channel: dict[str, Any], breakeven: float) -> bool:
    """A ``summary.json`` channel row's flag; rows of runs made before the flag existed get the interval rule
    on their stored ROAS HDI (the prior half of the rule needs draws those runs did not keep)."""
    if "identified" in channel:
        return bool(channel["identified"])
    r = channel["roas"]
    return not spans_breakeven(r["hdi_low"], r["hdi_high"], breakeven)


def unidentified(summary: dict[str, Any]) -> list[str]:
    """Names of the channels of a summary that the data do not identify, in the run's order."""
    breakeven = summary.get("breakeven_roas") or 1.0
    return [c["name"] for c in summary["channels"] if not is_identified(c, breakeven)]


def unidentified_in_geos(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """``(geo, channel)`` pairs of a geo run's summary whose return that geo's data do not identify (channels the
    geo spends on; empty for a national run)."""
    breakeven = summary.get("breakeven_roas") or 1.0
    return [
        (g["name"], c["name"])
        for g in summary.get("geos") or []
        for c in g["channels"]
        if c["spend"] and not is_identified(c, breakeven)
    ]
