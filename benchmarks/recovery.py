"""Benchmark: does `mmm fit` recover known truth? Whole-process fits, per mode, on data with known ROAS.

Datasets: synthetic data of different seeds, channel counts (3–8) and lengths (104–208 weeks),
three made with forms the fit does not assume (Hill saturation fitted with logistic, Weibull
carry-over fitted with geometric, spend that follows seasonality), and PyMC-Marketing's example
file, whose generating parameters are published (its truth is computed below).

With `--baseline`, each dataset is also fitted once with pymc-marketing's default sampler settings
(`MMM.fit(X, y)` on the same model, so `pm.sample`'s defaults: nutpie, which PyMC 6 picks when it is installed,
2 chains × 1000 tune + 1000 draws, its default target_accept; `cores=2`, since PyMC's guess on a 2-core machine
is 1 core; see `benchmarks/samplers.py`), in a new process of its own, and every row gets its ratio to that fit.

Run: `.venv/bin/python benchmarks/recovery.py [--modes quick full] [--baseline] [--out benchmarks/results]`.
Writes `recovery.json` and `recovery.md` (the README's table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = Path(os.environ.get("MMM_PUBLIC_DATA", ROOT.parent / "shared" / "public_data"))
SYNTH = [
    ("synth-3ch-104w", ["--weeks", "104", "--channels", "3", "--seed", "101"]),
    ("synth-5ch-156w", ["--weeks", "156", "--channels", "5", "--seed", "102"]),
    ("synth-8ch-208w", ["--weeks", "208", "--channels", "8", "--seed", "103"]),
    ("hill-data-logistic-fit", ["--weeks", "156", "--channels", "4", "--seed", "104", "--saturation", "hill"]),
    ("weibull-data-geometric-fit", ["--weeks", "156", "--channels", "5", "--seed", "105", "--adstock", "weibull"]),
    ("seasonal-spend", ["--weeks", "156", "--channels", "5", "--seed", "106", "--seasonal-spend"]),
    # the same Weibull data, fitted with `adstock: weibull` in its config
    ("weibull-data-weibull-fit", ["--weeks", "156", "--channels", "5", "--seed", "105", "--adstock", "weibull"]),
]
CONFIG_EDITS = {"weibull-data-weibull-fit": ("adstock: geometric", "adstock: weibull")}
DEFAULT = "pymc-marketing default"  # the rows fitted with pymc-marketing's default sampler settings
BASELINE_CORES = 2
# figures compared with the default fit of the same dataset, as ours / default
RATIOS = ("sampling_seconds", "median_roas_error", "hdi_coverage", "r_hat_max")


def mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, cwd=ROOT)


def pymc_example(out: Path) -> tuple[Path, Path, dict[str, float]]:
    """The PyMC-Marketing example with its published truth: geometric α 0.4/0.2 (l_max 8, normalised),
    logistic λ 4/3, β 3/2, and y ≈ 1000 × the model (a regression on the true transforms gives 3015/2081)."""
    data = PUBLIC / "pymc_marketing_mmm_example.csv"
    frame = pd.read_csv(data)

    def adstock(x: np.ndarray, alpha: float) -> np.ndarray:
        w = alpha ** np.arange(8)
        w = w / w.sum()
        return np.convolve(x, w)[: len(x)]

    def logistic(x: np.ndarray, lam: float) -> np.ndarray:
        return (1 - np.exp(-lam * x)) / (1 + np.exp(-lam * x))

    truth = {}
    for col, alpha, lam, beta in (("x1", 0.4, 4.0, 3.0), ("x2", 0.2, 3.0, 2.0)):
        contribution = 1000 * beta * logistic(adstock(frame[col].to_numpy(), alpha), lam)
        truth[col] = float(contribution.sum() / frame[col].sum())
    config = out / "config.yaml"
    run = mmm("config", str(data), "--out", str(config))
    assert run.returncode == 0, run.stderr
    return data, config, truth


def score(summary: dict, truth: dict[str, float]) -> dict:
    errs, covered, widths = [], 0, []
    for ch in summary["channels"]:
        true = truth[ch["name"]]
        r = ch["roas"]
        errs.append(abs(r["mean"] - true) / true)
        covered += r["hdi_low"] <= true <= r["hdi_high"]
        widths.append((r["hdi_high"] - r["hdi_low"]) / true)
    d = summary["diagnostics"]
    return {
        "channels": len(errs),
        "median_roas_error": statistics.median(errs),
        "within_35pct": sum(e <= 0.35 for e in errs) / len(errs),
        "hdi_coverage": covered / len(errs),
        "median_hdi_width_rel": statistics.median(widths),
        "r_hat_max": d["r_hat_max"],
        "ess_bulk_min": d["ess_bulk_min"],
        "ess_tail_min": d["ess_tail_min"],
        "divergences": d["divergences"],
        "status": summary["status"],
    }


def fit_and_score(name: str, mode: str, cmd: list[str], run_dir: Path, truth: dict[str, float]) -> dict:
    """Run one fitting process (``cmd`` writing to ``--out run_dir``) and score its summary against the truth."""
    start = time.perf_counter()
    fit = subprocess.run([*cmd, "--out", str(run_dir)], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if fit.returncode != 0:
        row = {"dataset": name, "mode": mode, "error": (fit.stderr.strip() or "failed").splitlines()[-1]}
    else:
        summary = json.loads((run_dir / "summary.json").read_text())
        row = {
            "dataset": name,
            "mode": mode,
            "seconds": round(seconds, 1),
            "sampling_seconds": summary["run"]["fit_seconds"],
            "sampler": summary["run"]["sampler"],
            **score(summary, truth),
        }
    row["load_1min"] = round(os.getloadavg()[0], 2)  # ~2 is this fit alone on 2 cores; more means contention
    print(json.dumps(row), flush=True)
    return row


def ratio(ours: float, default: float) -> float | None:
    return ours / default if default else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", nargs="+", default=["quick", "full"])
    parser.add_argument("--only", nargs="*", help="dataset names to run")
    parser.add_argument(
        "--baseline", action="store_true", help=f"also fit each dataset with the {DEFAULT} sampler and report ratios"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="mmm-recovery-"))
    datasets = []
    for name, synth_args in SYNTH:
        d = work / name
        assert mmm("synth", "--out", str(d), *synth_args).returncode == 0
        if name in CONFIG_EDITS:
            old, new = CONFIG_EDITS[name]
            (d / "config.yaml").write_text((d / "config.yaml").read_text().replace(old, new))
        truth = {c["name"]: c["roas"] for c in json.loads((d / "truth.json").read_text())["channels"]}
        datasets.append((name, d / "data.csv", d / "config.yaml", truth))
    if (PUBLIC / "pymc_marketing_mmm_example.csv").is_file():
        (work / "pymc").mkdir()
        datasets.append(("pymc-marketing-example", *pymc_example(work / "pymc")))
    for name, data, config, truth in datasets:
        if args.only and name not in args.only:
            continue
        base = None
        if args.baseline:
            cmd = [sys.executable, str(ROOT / "benchmarks" / "samplers.py"), "--baseline", "--score"]
            cmd += ["--cores", str(BASELINE_CORES), "--data", str(data), "--config", str(config)]
            base = fit_and_score(name, DEFAULT, cmd, work / "runs" / f"{name}-default", truth)
            rows.append(base)
        for mode in args.modes:
            run_dir = work / "runs" / f"{name}-{mode}"
            cmd = [sys.executable, "-m", "mmmlib", "fit", str(data), "--config", str(config), "--mode", mode]
            row = fit_and_score(name, mode, [*cmd, "--seed", "1"], run_dir, truth)
            if base is not None and "error" not in base and "error" not in row:
                row["vs_default"] = {k: ratio(row[k], base[k]) for k in RATIOS}
            rows.append(row)
    shutil.rmtree(work, ignore_errors=True)
    previous = out / "recovery.json"
    if args.only and previous.is_file():  # a partial rerun replaces its own rows and keeps the others
        done = {(r["dataset"], r["mode"]) for r in rows}
        rows = [r for r in json.loads(previous.read_text())["rows"] if (r["dataset"], r["mode"]) not in done] + rows
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        # the machine is shared: the 1-minute load average when the benchmark started and ended
        "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "baseline": f"{DEFAULT}: MMM.fit(X, y, cores={BASELINE_CORES})" if args.baseline else None,
    }
    (out / "recovery.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (out / "recovery.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


def markdown(rows: list[dict], meta: dict) -> str:
    title = f"Recovery ({meta['date']}, {meta['machine']}, Python {meta['python']}; seed 1; whole fitting process"
    if meta.get("baseline"):
        title += f"; ÷ default = ours / {meta['baseline']} on the same data in the same run"
    lines = [
        title + ")",
        "",
        "| dataset | mode | ch | median ROAS error | ≤35 % | 94 % HDI covers truth | HDI width / truth | max R-hat "
        "| min ESS bulk/tail | div. | seconds (sampling) | status | sampling s ÷ default | ROAS error ÷ default "
        "| coverage ÷ default | R-hat ÷ default |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['dataset']} | {r['mode']} | | failed: {r['error']} |||||||||||||")
            continue
        vs = r.get("vs_default") or {}
        ratios = " | ".join("—" if vs.get(k) is None else f"{vs[k]:.2f}" for k in RATIOS)
        lines.append(
            f"| {r['dataset']} | {r['mode']} | {r['channels']} | {r['median_roas_error']:.0%} "
            f"| {r['within_35pct']:.0%} "
            f"| {r['hdi_coverage']:.0%} | {r['median_hdi_width_rel']:.2f} | {r['r_hat_max']:.3f} "
            f"| {r['ess_bulk_min']:.0f}/{r['ess_tail_min']:.0f} | {r['divergences']} "
            f"| {r['seconds']:.0f} ({r['sampling_seconds']:.0f}) | {r['status']} | {ratios} |"
        )
    for mode in sorted({r["mode"] for r in rows}):
        ok = [r for r in rows if r["mode"] == mode and "error" not in r]
        if ok:
            weights = [r["channels"] for r in ok]
            vs = [r["vs_default"] for r in ok if r.get("vs_default")]
            ratios = " | ".join(
                f"{statistics.median(v[k] for v in vs if v[k] is not None):.2f} median"
                if any(v[k] is not None for v in vs)
                else "—"
                for k in RATIOS
            )
            lines.append(
                f"| **all, {mode}** | | {sum(weights)} "
                f"| {statistics.median(r['median_roas_error'] for r in ok):.0%} "
                f"| {np.average([r['within_35pct'] for r in ok], weights=weights):.0%} "
                f"| {np.average([r['hdi_coverage'] for r in ok], weights=weights):.0%} "
                f"| | {max(r['r_hat_max'] for r in ok):.3f} | {min(r['ess_bulk_min'] for r in ok):.0f} "
                f"| {sum(r['divergences'] for r in ok)} | {statistics.median(r['seconds'] for r in ok):.0f} median "
                f"| | {ratios} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
