"""Benchmark: a lift test fixes a channel the uncalibrated fit gets wrong.

Data whose spend follows seasonality (media and season confounded, as in most real plans).
Fit without calibration, take the channel with the worst ROAS error, give the model one
experiment on it (its true lift for +20 % spend at current spend, standard error 10 % of the
lift, computed from the generating truth), refit, and compare.

Run: `.venv/bin/python benchmarks/calibration.py`. Writes benchmarks/results/calibration.{json,md}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from mmmlib.data.synth import lift_test_from_truth

ROOT = Path(__file__).resolve().parent.parent
SYNTH_ARGS = ["--weeks", "156", "--channels", "5", "--seed", "106", "--seasonal-spend"]


def mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, cwd=ROOT)


def fit(data: Path, config: Path, out: Path) -> dict:
    proc = mmm("fit", str(data), "--config", str(config), "--out", str(out), "--mode", "quick", "--seed", "1")
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mmm-calibration-") as tmp:
        work = Path(tmp)
        assert mmm("synth", "--out", str(work), *SYNTH_ARGS).returncode == 0
        truth = {c["name"]: c for c in json.loads((work / "truth.json").read_text())["channels"]}
        before = fit(work / "data.csv", work / "config.yaml", work / "uncalibrated")

        def err(ch: dict) -> float:
            return abs(ch["roas"]["mean"] - truth[ch["name"]]["roas"]) / truth[ch["name"]]["roas"]

        worst = max(before["channels"], key=err)
        spend = float(pd.read_csv(work / "data.csv")[worst["name"]].tail(52).mean())
        lift = lift_test_from_truth(truth[worst["name"]], spend, 0.2 * spend, 1.0)
        lift["sigma"] = 0.1 * abs(lift["delta_y"])
        pd.DataFrame([lift]).to_csv(work / "lift.csv", index=False)
        cfg = (work / "config.yaml").read_text().replace("lift_tests: null", "lift_tests: lift.csv")
        (work / "calibrated.yaml").write_text(cfg)
        after = fit(work / "data.csv", work / "calibrated.yaml", work / "calibrated")

    def row(summary: dict, name: str) -> dict:
        ch = next(c for c in summary["channels"] if c["name"] == name)
        true = truth[name]["roas"]
        return {
            "roas_mean": ch["roas"]["mean"],
            "hdi": [ch["roas"]["hdi_low"], ch["roas"]["hdi_high"]],
            "true": true,
            "error": abs(ch["roas"]["mean"] - true) / true,
            "covered": ch["roas"]["hdi_low"] <= true <= ch["roas"]["hdi_high"],
        }

    result = {
        "channel": worst["name"],
        "lift_test": lift,
        "uncalibrated": row(before, worst["name"]),
        "calibrated": row(after, worst["name"]),
        "median_error_all": {
            "uncalibrated": float(pd.Series([err(c) for c in before["channels"]]).median()),
            "calibrated": float(pd.Series([err(c) for c in after["channels"]]).median()),
        },
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    u, c = result["uncalibrated"], result["calibrated"]
    md = [
        f"Calibration with one lift test on {worst['name']} (seasonal-spend data, seed 106, quick mode)",
        "",
        "| fit | ROAS mean | 94 % HDI | true ROAS | error | HDI covers truth | median error, all channels |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r, key in (("uncalibrated", u, "uncalibrated"), ("with lift test", c, "calibrated")):
        md.append(
            f"| {label} | {r['roas_mean']:.2f} | {r['hdi'][0]:.2f}–{r['hdi'][1]:.2f} | {r['true']:.2f} "
            f"| {r['error']:.0%} | {'yes' if r['covered'] else 'no'} | {result['median_error_all'][key]:.0%} |"
        )
    (out / "calibration.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
