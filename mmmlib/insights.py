"""Plain-language recommendations from a summary, with numbers and intervals.

The first sentence is always about model health: when diagnostics failed, it says so,
names the remedy, and no reallocation advice follows.
"""

from __future__ import annotations

from typing import Any

from mmmlib import roas_priors
from mmmlib.identification import is_identified
from mmmlib.policy import REALLOCATION_LIMIT_PCT
from mmmlib.wording import health_sentence, is_healthy, labelled, money, refit_advice, span


def recommendations(summary: dict[str, Any]) -> list[str]:
    out = [health_sentence(summary)]
    if not is_healthy(summary):
        out[0] += f" Do not move budget on these numbers; {refit_advice(summary)}"
        return out

    def _iv(i: dict[str, float]) -> str:
        return labelled(i, "{:.2f}", summary)

    breakeven = summary.get("breakeven_roas", 1.0)
    channels = summary["channels"]
    priced = roas_priors.priced(summary)  # else spend and the KPI's value are in different units
    if not priced:
        out.append(
            "Spend and the KPI look to be in different units, so each return here is the KPI's value per unit of "
            "spend as given, not money per money: channels are compared with each other, never with break-even. "
            "To judge spend against break-even, give spend in the KPI's currency."
        )
    certain = []
    for ch in channels:
        if is_identified(ch, breakeven):
            certain.append(ch)
        else:  # no headroom or cut advice on a return the data cannot tell
            out.append(
                f"{ch['label']}: not identified by this data — ROAS {_iv(ch['roas'])}; hold its budget and run a "
                "lift test."
            )
    for ch in certain if priced else []:
        m = ch["mroas"]
        if m["hdi_high"] < breakeven:
            out.append(
                f"{ch['label']} is past its saturation point: the next unit of spend returns {_iv(m)}, "
                f"below break-even {breakeven:.2f}; cut or cap it."
            )
        elif m["hdi_low"] > breakeven:
            out.append(
                f"{ch['label']} has headroom: the next unit of spend returns {_iv(m)}, above break-even "
                f"{breakeven:.2f}; more total budget there still pays."
            )
    if certain and not summary.get("reallocation"):
        best = max(certain, key=lambda c: c["mroas"]["mean"])
        worst = min(certain, key=lambda c: c["mroas"]["mean"])
        if best is not worst and best["mroas"]["hdi_low"] > worst["mroas"]["hdi_high"]:
            out.append(
                f"Shift budget from {worst['label']} (marginal ROAS {worst['mroas']['mean']:.2f}) to "
                f"{best['label']} (marginal ROAS {best['mroas']['mean']:.2f}): their intervals do not overlap."
            )
    move = summary.get("reallocation")
    if move:
        out.append(_reallocation_sentence(move, {c["name"]: c["label"] for c in channels}, summary))
    top = max(channels, key=lambda c: c["contribution"]["mean"])
    unit = summary.get("target", "KPI")
    out.append(
        f"{top['label']} drives the most media contribution: {money(top['contribution']['mean'])} {unit} "
        f"({span(top['contribution'], money, summary)}) on {money(top['spend'])} of spend."
    )
    return out


def _reallocation_sentence(move: dict[str, Any], labels: dict[str, str], summary: dict[str, Any]) -> str:
    gain = move["expected_gain"]
    changes = sorted(move["channels"], key=lambda c: c["change"])
    cut = [c for c in changes if c["change"] < -0.5]
    add = [c for c in reversed(changes) if c["change"] > 0.5]
    limit = move.get("limit_pct", REALLOCATION_LIMIT_PCT)
    if not cut or not add or gain["hdi_low"] <= 0:
        return (
            f"Today's split is close to the best one: re-splitting the same budget with every channel within "
            f"±{limit}% adds {money(gain['mean'])} per period ({span(gain, money, summary, ' to ')}), "
            "an interval that includes no clear gain."
        )
    fmt = lambda cs: ", ".join(f"{labels[c['name']]} {c['change']:+,.0f}" for c in cs)  # noqa: E731
    held = [labels[n] for n in move.get("held", []) if n in labels]
    kept = f"; {', '.join(held)} kept at today's spend (not identified)" if held else ""
    return (
        f"Move budget at the same total ({money(move['budget'])} per period): {fmt(add)}; {fmt(cut)} per period "
        f"(each channel within ±{limit}%{kept}). Expected gain {money(gain['mean'])} per period "
        f"({span(gain, money, summary)})."
    )
