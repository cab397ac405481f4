"""Benchmark: how each candidate structure alone would have done on the recovery suite, beside the combined posterior.

Reads the runs the suite benchmark left (``benchmarks/recovery.py --suite`` keeps them under
``.cache/recovery/runs/ours-<mode>/<suite>/world_<seed>``): each run's ``summary.json`` records every candidate's
own ROAS per channel (``model.candidates[].roas``, since 2026-12-02). Each is scored with the suite's ``score.py``
as if it were the reported ROAS, pooled per suite, beside the combined posterior the product reports and the
candidate PSIS-LOO ranked first in each world. It answers "is the combination, or one structure, what costs
accuracy?" without refitting anything.

Run: ``.venv/bin/python benchmarks/structure_errors.py [--mode quick] [--out benchmarks/results/structure_errors.md]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from recovery import SUITE_SCRIPTS, load_score_world  # noqa: E402

CACHE = ROOT / ".cache" / "recovery"
COMBINED = "combined (reported)"
LOO_BEST = "best PSIS-LOO alone"


def world_rows(run: Path, truth: dict, score_world: Any) -> dict[str, list[dict]]:
    """Per way of reporting (each candidate, the combination, the LOO-best candidate): the suite's channel rows."""
    summary = json.loads((run / "summary.json").read_text())
    candidates = [c for c in (summary.get("model") or {}).get("candidates") or [] if c.get("roas")]
    out = {COMBINED: score_world(truth, summary)}
    for c in candidates:
        as_reported = {"channels": [{"name": ch, "roas": r} for ch, r in c["roas"].items()]}
        out[f"{c['adstock']}+{c['saturation']}"] = score_world(truth, as_reported)
    scored = [c for c in candidates if c.get("elpd_loo") is not None]
    if scored:
        best = max(scored, key=lambda c: c["elpd_loo"])
        out[LOO_BEST] = out[f"{best['adstock']}+{best['saturation']}"]
    identified = {c["name"]: c.get("identified") for c in summary["channels"]}
    for rows in out.values():
        for row in rows:
            row["identified"] = identified.get(row["channel"])
    return out


def pooled(rows: list[dict]) -> dict[str, Any]:
    ok = [r for r in rows if not r.get("missing")]
    confident = [r for r in ok if r["confident"]]
    ident = [r for r in ok if r.get("identified")]
    n = len(rows) or 1
    return {
        "channels": len(rows),
        "covered": sum(r["covered"] for r in ok) / n,
        "within35": sum(r["error"] <= 0.35 for r in ok) / n,
        "median_error": statistics.median(r["error"] for r in ok) if ok else float("nan"),
        "median_width": statistics.median(r["width"] for r in ok) if ok else float("nan"),
        "confident": len(confident) / n,
        "confident_covered": sum(r["covered"] for r in confident) / len(confident) if confident else float("nan"),
        "identified_within35": sum(r["error"] <= 0.35 for r in ident) / len(ident) if ident else float("nan"),
    }


def report(mode: str) -> str:
    score_world = load_score_world(SUITE_SCRIPTS)
    lines = [
        f"Each candidate structure alone against the combined posterior, quick suite runs under `{CACHE}` "
        f"(mode {mode}); channels of worlds whose run records per-candidate ROAS. Identified: the combined run's flag.",
        "",
        "| suite | worlds | reported as | covers | within 35 % | median error | width ÷ truth | confident: share, "
        "covered | identified within 35 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for suite in ("mixed", "strong"):
        pooled_rows: dict[str, list[dict]] = {}
        worlds = 0
        for run in sorted((CACHE / "runs" / f"ours-{mode}" / suite).glob("world_[0-9][0-9][0-9][0-9]")):
            truth_file = CACHE / suite / run.name / "truth.json"
            if not (run / "summary.json").is_file() or not truth_file.is_file():
                continue
            rows = world_rows(run, json.loads(truth_file.read_text()), score_world)
            if len(rows) < 3:
                continue  # a run from before candidates' ROAS were recorded
            worlds += 1
            for name, part in rows.items():
                pooled_rows.setdefault(name, []).extend(part)
        for name, rows in pooled_rows.items():
            p = pooled(rows)
            lines.append(
                f"| {suite} | {worlds} | {name} | {p['covered']:.0%} | {p['within35']:.0%} | {p['median_error']:.0%} | "
                f"{p['median_width']:.2f} | {p['confident']:.0%}, {p['confident_covered']:.0%} | "
                f"{p['identified_within35']:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = report(args.mode)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
