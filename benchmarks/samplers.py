"""Benchmark: how long a fit takes, as whole processes, beside the peer in the same run, cold and warm caches.

Scenarios on one dataset (default: the sample, 156 weeks × 5 channels):

- ours, the default quick fit (``adstock``/``saturation`` ``auto``: four candidate structures), nutpie, candidates
  fitted two at a time in worker processes (the default), and one after another (``MMM_FIT_WORKERS=1``, as before);
- ours with the numpyro loop (``--sampler numpyro``: compiled programs cached on disk, stopping rule);
- ours with one fixed structure (geometric + logistic, 2 harmonics: one fit), nutpie and numpyro, and nutpie
  without the compile cache (``MMM_NUTPIE_CACHE=0``: nutpie compiles the model in every process, as before
  ``mmmlib.nutpie_cache``);
- ours with the four candidates and the seasonality's order named (2 harmonics: no fifth fit choosing it);
- the peer, ``../shared/recovery_suite/peer.py``: pymc-marketing's MMM out of the box, PyMC's sampler 2 × (500 + 500).

"cold" points pytensor's compile directory, numba's cache and JAX's cache at empty folders; "warm" reruns with them;
"refresh" fills fresh caches with an untimed fit of the data without its last period, then fits the whole data: a
weekly refit's case, where every new dataset is a new shape.
Each of our rows also gets its breakdown from the run's fit.log: start (process and kernel start, imports, building
the models), sampling (all candidates, compile included), stacking and analysis (LOO, mixture, summary) and writing.

Run: `.venv/bin/python benchmarks/samplers.py [--data CSV --config YAML --truth JSON]`.
Writes `samplers.json` and `samplers.md` to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PEER = Path(os.environ.get("MMM_RECOVERY_SUITE", ROOT.parent / "shared" / "recovery_suite")) / "peer.py"

# (label, extra `mmm fit` arguments, extra environment, structure override or None)
SCENARIOS: list[tuple[str, list[str], dict[str, str], str | None]] = [
    ("ours: auto, nutpie, candidates in parallel (default)", [], {}, None),
    ("ours: auto, nutpie, candidates one after another", [], {"MMM_FIT_WORKERS": "1"}, None),
    ("ours: auto, numpyro loop", ["--sampler", "numpyro"], {}, None),
    ("ours: geometric+logistic, nutpie", [], {}, "fixed"),
    ("ours: geometric+logistic, numpyro loop", ["--sampler", "numpyro"], {}, "fixed"),
    # the same fit with nutpie compiling the model itself in every process, as before mmmlib.nutpie_cache
    ("ours: geometric+logistic, nutpie, compile cache off", [], {"MMM_NUTPIE_CACHE": "0"}, "fixed"),
    # the default's four candidates with the seasonality's order named (no fifth fit choosing it), as before 2026-12-04
    ("ours: auto structures, 2 harmonics named, nutpie", [], {}, "season2"),
]
PEER_LABEL = "peer: pymc-marketing out of the box (peer.py)"


def cache_env(cache: Path) -> dict[str, str]:
    return {
        "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "MMM_JAX_CACHE": str(cache / "jax"),
    }


STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def breakdown(log: Path, started: float, ended: float) -> dict[str, float]:
    """Seconds of start, sampling, stacking and analysis, and writing, from the fit log's timestamps."""

    def stamp(line: str) -> float | None:
        m = STAMP.search(line)  # a progress bar's escape codes may come first
        return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None

    first_sampling = last_sampled = written = None
    for line in log.read_text(errors="replace").splitlines():
        t = stamp(line)
        if t is None:
            continue
        if "mmmlib.model: sampling " in line and first_sampling is None:
            first_sampling = t
        if " sampled in " in line:
            last_sampled = t
        if "mmmlib.fitting: run written" in line:
            written = t
    if not (first_sampling and last_sampled and written):
        return {}
    return {
        "start_s": round(first_sampling - started, 1),
        "sampling_s": round(last_sampled - first_sampling, 1),
        "stacking_analysis_s": round(written - last_sampled, 1),
        "writing_s": round(ended - written, 1),
    }


def run_ours(args: list[str], env: dict[str, str], data: str, config: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "mmmlib", "fit", data, "--config", config, "--out", str(out), "--seed", "1", *args]
    wall = time.time()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed", "seconds": seconds}
    summary = json.loads((out / "summary.json").read_text())
    d = summary["diagnostics"]
    return {
        "seconds": round(seconds, 1),
        **breakdown(out / "fit.log", wall, wall + seconds),
        "draws_per_chain": summary["run"]["draws"],
        "r_hat_max": round(d["r_hat_max"], 4),
        "ess_bulk_min": round(d["ess_bulk_min"]),
        "ess_tail_min": round(d["ess_tail_min"]),
        "divergences": d["divergences"],
        "ess_per_second": round(min(d["ess_bulk_min"], d["ess_tail_min"]) / seconds, 2),
        "status": summary["status"],
    }


def run_peer(data: str, truth: str, env: dict[str, str], out: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(PEER), data, truth, str(out)], capture_output=True, text=True, env={**os.environ, **env}
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed", "seconds": seconds}
    d = json.loads((out / "summary.json").read_text()).get("diagnostics", {})
    ess = d.get("ess_bulk_min")
    return {
        "seconds": round(seconds, 1),
        "draws_per_chain": 500,
        "r_hat_max": round(d.get("r_hat_max", float("nan")), 4),
        "ess_bulk_min": round(ess) if ess is not None else None,
        "ess_tail_min": round(d["ess_tail_min"]) if d.get("ess_tail_min") is not None else None,
        "divergences": d.get("divergences"),
        "ess_per_second": round(ess / seconds, 2) if ess else None,
        "status": "peer",
    }


def fit_once(label: str, extra: list[str], env: dict[str, str], data: str, config: str, truth: str, out: Path) -> dict:
    """One timed fit of ``data``: the peer's when ``label`` is the peer's, else ours with ``extra`` arguments."""
    if label == PEER_LABEL:
        return run_peer(data, truth, env, out) if PEER.is_file() else {"error": "no peer.py"}
    return run_ours(extra, env, data, config, out)


def peer_truth(config: str, out: Path) -> str:
    """The column roles peer.py reads from a truth file, taken from our config."""
    import yaml

    cfg = yaml.safe_load(Path(config).read_text())
    truth = {
        "date_column": cfg["date_column"],
        "target_column": cfg["target_column"],
        "channel_columns": cfg["channel_columns"],
        "control_columns": cfg.get("control_columns") or [],
    }
    out.write_text(json.dumps(truth))
    return str(out)


def fixed_config(config: str, out: Path, structure: bool = True) -> str:
    """``config`` with the seasonality's order named (2 harmonics) and, with ``structure``, one structure: one fit."""
    text = re.sub(r"(?m)^yearly_seasonality: .*$", "yearly_seasonality: 2", Path(config).read_text())
    if structure:
        text = re.sub(r"(?m)^adstock: .*$", "adstock: geometric", text)
        text = re.sub(r"(?m)^saturation: .*$", "saturation: logistic", text)
    out.write_text(text)
    return str(out)


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
    parser.add_argument("--truth", help="column roles for peer.py (default: from --config)")
    parser.add_argument("--baseline", action="store_true", help="fit once with pymc-marketing's defaults into --out")
    parser.add_argument("--cores", type=int, help="with --baseline: pass cores (default: PyMC's guess)")
    parser.add_argument("--score", action="store_true", help="with --baseline: write a full summary.json")
    parser.add_argument("--out")
    parser.add_argument("--only", nargs="+", type=int, help="scenario numbers (0-based; the peer is last)")
    parser.add_argument(
        "--phases",
        nargs="+",
        default=["cold", "warm", "refresh"],
        choices=["cold", "warm", "refresh"],
        help="cache states to time (refresh: caches filled by a fit of the data without its last period)",
    )
    args = parser.parse_args()
    if args.baseline:
        baseline(args.data, args.config, args.out, cores=args.cores, score=args.score)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmm-samplers-") as tmp:
        work = Path(tmp)
        truth = args.truth or peer_truth(args.config, work / "truth.json")
        configs = {
            "fixed": fixed_config(args.config, work / "fixed.yaml"),
            "season2": fixed_config(args.config, work / "season2.yaml", structure=False),
        }
        shorter = str(work / f"{Path(args.data).stem}-last-period-removed.csv")
        if "refresh" in args.phases:
            pd.read_csv(args.data).iloc[:-1].to_csv(shorter, index=False)
        plans = [(label, extra, env, configs.get(shape or "", args.config)) for label, extra, env, shape in SCENARIOS]
        plans.append((PEER_LABEL, [], {}, ""))
        for i, (label, extra, env, config) in enumerate(plans):
            if args.only and i not in args.only:
                continue
            for phase in args.phases:
                cache = work / f"cache-{i}" if phase != "refresh" else work / f"cache-{i}-refresh"
                environ = {**cache_env(cache), **env}
                if phase == "refresh":  # the module's docstring says why
                    earlier = work / "store" / "clients" / "bench-earlier" / "runs" / f"r{len(rows)}"
                    fit_once(label, extra, environ, shorter, config, truth, earlier)
                out = work / "store" / "clients" / "bench" / "runs" / f"r{len(rows)}"
                result = fit_once(label, extra, environ, args.data, config, truth, out)
                rows.append({"scenario": label, "cache": phase, **result})
                print(json.dumps(rows[-1]), flush=True)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "data": Path(args.data).name,
    }
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "samplers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (out_dir / "samplers.md").write_text(table(rows, meta) + "\n")
    print(table(rows, meta))


def table(rows: list[dict], meta: dict) -> str:
    peer = {r["cache"]: r for r in rows if r["scenario"] == PEER_LABEL and "error" not in r}
    lines = [
        f"Fit speed ({meta['date']}, {meta['machine']}, {meta['data']}; whole processes; × peer = peer's seconds ÷ "
        "ours, same run, same cache state)",
        "",
        "| scenario | cache | seconds | × peer | start | sampling | stacking + analysis | writing | draws/chain "
        "| max R-hat | min ESS bulk/tail | div. | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scenario']} | {r['cache']} | failed: {r['error']} ||||||||||")
            continue
        p = peer.get(r["cache"])
        speed = f"{p['seconds'] / r['seconds']:.2f}" if p else "—"
        parts = [r.get(k) for k in ("start_s", "sampling_s", "stacking_analysis_s", "writing_s")]
        cells = " | ".join("—" if v is None else f"{v:.0f}" for v in parts)
        ess = "—" if r["ess_bulk_min"] is None else f"{r['ess_bulk_min']}/{r['ess_tail_min']}"
        lines.append(
            f"| {r['scenario']} | {r['cache']} | {r['seconds']:.0f} | {speed} | {cells} | {r['draws_per_chain']} "
            f"| {r['r_hat_max']:.3f} | {ess} | {r['divergences']} | {r['status']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
