"""Benchmark: where the recovery suite's ROAS intervals miss, and what the interval's form has to do with it.

Reads the runs the suite benchmark left (``benchmarks/recovery.py --suite`` keeps them under
``.cache/recovery/runs/ours-<mode>/<suite>/world_<seed>``) with each world's truth, recomputes every channel's ROAS
draws from ``posterior.nc`` and reports, for identified and unidentified channels apart:

- the truth's quantile in its posterior (PIT): beyond 0.97 or below 0.03 means the posterior itself is off, not its
  summary;
- coverage of three 94 % intervals of the same draws: the HDI the product reports, the equal-tailed interval, and the
  HDI of log ROAS (the shortest interval in relative terms), with the median width ÷ truth, the share of confident
  intervals (narrower than their estimate) and their coverage.

Nothing is refitted: it reads draws. Run: ``.venv/bin/python benchmarks/interval_forms.py [--mode quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "recovery"
PROB = 0.94


def intervals(draws: np.ndarray) -> dict[str, tuple[float, float]]:
    """The three 94 % intervals of one channel's ROAS draws."""
    import arviz as az

    tail = (1 - PROB) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    log_low, log_high = np.exp(az.hdi(np.log(np.maximum(draws, 1e-12)), PROB))
    hdi_low, hdi_high = az.hdi(draws, PROB)
    return {
        "HDI (reported)": (float(hdi_low), float(hdi_high)),
        "equal-tailed": (float(low), float(high)),
        "HDI of log ROAS": (float(log_low), float(log_high)),
    }


def channels(mode: str) -> list[dict[str, Any]]:
    """One row per (suite, world, channel) with its truth, PIT, mean, identification and intervals."""
    import xarray as xr

    from mmmlib import analysis

    rows = []
    for suite in ("mixed", "strong"):
        for run in sorted((CACHE / "runs" / f"ours-{mode}" / suite).glob("world_[0-9][0-9][0-9][0-9]")):
            truth_file = CACHE / suite / run.name / "truth.json"
            if not (run / "summary.json").is_file() or not truth_file.is_file():
                continue
            truth = json.loads(truth_file.read_text())["channels"]
            summary = {c["name"]: c for c in json.loads((run / "summary.json").read_text())["channels"]}
            post = analysis.Posterior.from_idata(xr.open_datatree(run / "posterior.nc"))
            draws = analysis.roas_draws(post, 1.0)
            for j, name in enumerate(post.channels):
                d = draws[:, j]
                true = float(truth[name]["roas"])
                rows.append(
                    {
                        "suite": suite,
                        "world": run.name,
                        "channel": name,
                        "true": true,
                        "mean": float(d.mean()),
                        "pit": float(np.mean(d < true)),
                        "identified": bool(summary[name].get("identified", True)),
                        "intervals": intervals(d),
                    }
                )
    return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    forms = list(rows[0]["intervals"]) if rows else []
    lines = [
        "| suite | channels | n | truth beyond the posterior's 3 % / 97 % | "
        + " | ".join(f"{f}: covers, width ÷ truth, confident share → covers" for f in forms)
        + " |",
        "|---|---|---|---|" + "---|" * len(forms),
    ]
    for suite in ("mixed", "strong"):
        for label, pick in (("identified", True), ("not identified", False), ("all", None)):
            part = [r for r in rows if r["suite"] == suite and (pick is None or r["identified"] == pick)]
            if not part:
                continue
            pit = np.array([r["pit"] for r in part])
            cells = []
            for f in forms:
                inside = [r["intervals"][f][0] <= r["true"] <= r["intervals"][f][1] for r in part]
                widths = [(r["intervals"][f][1] - r["intervals"][f][0]) / r["true"] for r in part]
                confident = [
                    ok
                    for r, ok in zip(part, inside, strict=True)
                    if r["intervals"][f][1] - r["intervals"][f][0] < r["mean"]
                ]
                share = len(confident) / len(part)
                cells.append(
                    f"{np.mean(inside):.0%}, {statistics.median(widths):.2f}, {share:.0%} → "
                    + (f"{np.mean(confident):.0%}" if confident else "—")
                )
            lines.append(
                f"| {suite} | {label} | {len(part)} | {np.mean(pit < 0.03):.0%} / {np.mean(pit > 0.97):.0%} | "
                + " | ".join(cells)
                + " |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="quick")
    args = parser.parse_args(argv)
    rows = channels(args.mode)
    if not rows:
        raise SystemExit(f"no runs under {CACHE / 'runs' / ('ours-' + args.mode)}: run benchmarks/recovery.py --suite")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
