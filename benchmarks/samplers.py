"""Benchmark: the three NUTS samplers side by side on the same model and data, cold and warm caches.

Each row is a whole new process (`mmm fit --sampler S`, or for the baseline the same model fitted
with pymc-marketing's defaults: `MMM.fit(X, y)` and nothing else). "cold" points pytensor's compile
directory, numba's cache and JAX's cache at empty folders; "warm" reuses them after one run.

Run: `.venv/bin/python benchmarks/samplers.py [--data CSV --config YAML]` (default: the sample data).
Writes `samplers.json` and `samplers.md` to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_fit(sampler: str, data: str, config: str, cache: Path, out: Path) -> dict:
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "JAX_COMPILATION_CACHE_DIR": str(cache / "jax"),
    }
    start = time.perf_counter()
    if sampler == "pymc-marketing default":
        cmd = [sys.executable, __file__, "--baseline", "--data", data, "--config", config, "--out", str(out)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "mmmlib",
            "fit",
            data,
            "--config",
            config,
            "--out",
            str(out),
            "--sampler",
            sampler,
            "--seed",
            "1",
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed", "seconds": seconds}
    summary = json.loads((out / "summary.json").read_text())
    d = summary["diagnostics"]
    return {
        "seconds": round(seconds, 1),
        "sampling_seconds": summary["run"]["fit_seconds"],
        "draws": summary["run"]["draws"] * summary["run"]["chains"],
        "r_hat_max": round(d["r_hat_max"], 4),
        "ess_bulk_min": round(d["ess_bulk_min"]),
        "ess_tail_min": round(d["ess_tail_min"]),
        "divergences": d["divergences"],
        "ess_per_second": round(d["ess_bulk_min"] / seconds, 2),
    }


def baseline(data: str, config: str, out: str, cores: int | None = None, score: bool = False) -> None:
    """pymc-marketing's default fit of our model: no chains, draws, tune, target_accept or sampler given.

    The same model (priors, components, held-out periods) as `mmm fit`; lift tests in the config are not used.

    ``cores`` is passed only when given (PyMC guesses half the CPUs: 1 on a 2-core machine, chains one after
    another). ``score`` writes a full ``summary.json`` (ROAS and intervals, as `mmm fit` does) after the timing.
    """
    from mmmlib import analysis, model
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset
    from mmmlib.runs import write_json_atomic
    from mmmlib.summary import build_summary

    ds = load_dataset(data, load_config(config))
    mmm, X, y, _ = model.build(ds)
    holdout = ds.config.holdout_periods
    X_fit, y_fit = (X.iloc[:-holdout], y.iloc[:-holdout]) if holdout else (X, y)
    start = time.perf_counter()
    idata = mmm.fit(X_fit, y_fit, progressbar=False, random_seed=1, **({"cores": cores} if cores else {}))
    seconds = time.perf_counter() - start
    posterior = idata["posterior"]
    run = {
        "fit_seconds": round(seconds, 1),
        "chains": posterior.sizes["chain"],
        "draws": posterior.sizes["draw"],
        "sampler": posterior.attrs.get("inference_library", "?"),
        "cores": cores,
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    if score:
        summary = build_summary(idata, ds.config, ds.frame, run=run, mode="quick")
    else:
        summary = {"diagnostics": {**analysis.diagnostics(idata), "r2": 0.0, "mape": 0.0}, "run": run}
    write_json_atomic(Path(out) / "summary.json", summary)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT / "sample_data" / "sample_weekly.csv"))
    parser.add_argument("--config", default=str(ROOT / "sample_data" / "sample_config.yaml"))
    parser.add_argument("--baseline", action="store_true", help="fit once with pymc-marketing's defaults into --out")
    parser.add_argument("--cores", type=int, help="with --baseline: pass cores (default: PyMC's guess)")
    parser.add_argument("--score", action="store_true", help="with --baseline: write a full summary.json")
    parser.add_argument("--out")
    parser.add_argument("--samplers", nargs="+", default=["nutpie", "numpyro", "pymc", "pymc-marketing default"])
    args = parser.parse_args()
    if args.baseline:
        baseline(args.data, args.config, args.out, cores=args.cores, score=args.score)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmm-samplers-") as tmp:
        for sampler in args.samplers:
            cache = Path(tmp) / sampler.replace(" ", "-")
            for phase in ("cold", "warm"):
                result = run_fit(sampler, args.data, args.config, cache, Path(tmp) / f"run-{len(rows)}")
                rows.append({"sampler": sampler, "cache": phase, **result})
                print(json.dumps(rows[-1]), flush=True)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "data": Path(args.data).name,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "samplers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    base = {r["cache"]: r for r in rows if r["sampler"] == "pymc-marketing default" and "error" not in r}
    lines = [
        f"Samplers ({meta['date']}, {meta['machine']}, {meta['data']}; whole process; ratio = this / "
        "pymc-marketing default in the same run)",
        "",
        "| sampler | cache | seconds | sampling s | total draws | max R-hat | min ESS bulk/tail | div. | ESS/s "
        "| time ratio | ESS/s ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['sampler']} | {r['cache']} | failed: {r['error']} |||||||||")
            continue
        b = base.get(r["cache"])
        ratio = f"{r['seconds'] / b['seconds']:.2f}" if b else "—"
        eratio = f"{r['ess_per_second'] / b['ess_per_second']:.2f}" if b and b["ess_per_second"] else "—"
        lines.append(
            f"| {r['sampler']} | {r['cache']} | {r['seconds']:.0f} | {r['sampling_seconds']:.0f} | {r['draws']} "
            f"| {r['r_hat_max']:.3f} | {r['ess_bulk_min']}/{r['ess_tail_min']} | {r['divergences']} "
            f"| {r['ess_per_second']:.1f} | {ratio} | {eratio} |"
        )
    (out / "samplers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
