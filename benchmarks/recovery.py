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
Writes `recovery.json` and `recovery.md` (the table in docs/benchmarks.md).

With `--suite`, the yardstick is data the model did not make: the recovery suite's worlds
(`../shared/recovery_suite/`, or `MMM_RECOVERY_SUITE`), each fitted by `mmm fit` and by the suite's peer
(pymc-marketing's MMM out of the box, `peer.py`), both as whole processes, scored by the suite's own
`score.py`. Rows are kept per commit in `recovery_suite.json` (a rerun resumes) and reported with the
issue's targets in `recovery_suite.md`: `benchmarks/recovery.py --suite [--modes quick full]`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    """The PyMC-Marketing example, its proposed config and its published truth (:func:`pymc_example_truth`)."""
    data = PUBLIC / "pymc_marketing_mmm_example.csv"
    config = out / "config.yaml"
    run = mmm("config", str(data), "--out", str(config))
    assert run.returncode == 0, run.stderr
    return data, config, pymc_example_truth(pd.read_csv(data))


def pymc_example_truth(frame: pd.DataFrame) -> dict[str, float]:
    """Each channel's ROAS in PyMC-Marketing's example data, from its published truth: geometric α 0.4/0.2 (l_max 8,
    normalised), logistic λ 4/3, β 3/2, and y ≈ 1000 × the model (a regression on the true transforms gives
    3015/2081)."""

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
    return truth


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["quick", "full"],
        help="fit modes (default: quick full; with --suite: quick — full runs on the strong seeds only)",
    )
    parser.add_argument("--only", nargs="*", help="dataset names to run")
    parser.add_argument(
        "--baseline", action="store_true", help=f"also fit each dataset with the {DEFAULT} sampler and report ratios"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    suite = parser.add_argument_group("recovery suite (--suite)")
    suite.add_argument("--suite", action="store_true", help="run the recovery suite beside its peer instead")
    suite.add_argument("--seeds", default=SUITES["mixed"], help="mixed worlds, e.g. 1000-1023 or 1000,1005-1007")
    suite.add_argument("--strong-seeds", default=SUITES["strong"], help="strong-signal worlds (quick and full)")
    suite.add_argument("--only-worlds", nargs="+", metavar="WORLD", help="only these worlds, e.g. world_1000")
    suite.add_argument("--force", action="store_true", help="refit ours even where this commit's row is stored")
    suite.add_argument("--refit-peer", action="store_true", help="rerun the peer even where its summary exists")
    suite.add_argument("--no-peer-fits", action="store_true", help="score stored peer runs only; never start one")
    suite.add_argument("--dry-run", action="store_true", help="say what would be fitted or reused; fit nothing")
    suite.add_argument("--report-only", action="store_true", help="rewrite the report from the stored rows")
    suite.add_argument("--commit", help="whose rows fill the ours columns (default: this tree's commit)")
    suite.add_argument("--cache", default=str(SUITE_CACHE), help="worlds and runs (default: .cache/recovery)")
    suite.add_argument("--timeout", type=float, default=3600, help="seconds one fitting process may run")
    args = parser.parse_args(argv)
    if args.suite:
        run_suite(args)
        return
    args.modes = args.modes or ["quick", "full"]
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


# ---------------------------------------------------------------------------------------------------------------
# The recovery suite: data the model did not make, ours beside the peer, with the issue's targets.

SUITE_SCRIPTS = Path(os.environ.get("MMM_RECOVERY_SUITE", ROOT.parent / "shared" / "recovery_suite"))
SUITE_CACHE = ROOT / ".cache" / "recovery"
SUITES = {"mixed": "1000-1023", "strong": "2000-2011"}  # suite name = generate.py's --signal
FULL_SUITES = ("strong",)  # full mode takes hours per suite on 2 cores: the strong seeds only
PEER_MODE = "defaults"  # the peer has one setting: pymc-marketing's defaults, 2 × (500 + 500)
SUITE_JSON, SUITE_MD = "recovery_suite.json", "recovery_suite.md"
# the tree's state that is not the product: benchmark outputs and caches do not make a commit dirty
NOT_THE_PRODUCT = (":(exclude)benchmarks/results", ":(exclude).cache")
# issue 12's targets (quick mode, pooled per suite)
COVERAGE_TARGET = CONFIDENT_TARGET = 0.90
IDENTIFIED_WITHIN35_TARGET = 0.80
ERROR_RATIO_TARGET, WIDTH_RATIO_TARGET = 0.75, 1.25
IDENTIFIED_SHARE_TARGET = {"mixed": 0.15, "strong": 0.30}
ABOUT = """**Recovery suite.** Each world of `../shared/recovery_suite/` is weekly data with known truth that the model
did not make (its own carry-over, saturation, trend and noise). Ours is `mmm fit --mode MODE --seed 1` with a config
naming the columns' roles and nothing else; the peer is pymc-marketing's MMM as a user gets it out of the box
(`peer.py`: geometric adstock l_max 8, logistic saturation, yearly Fourier 2, default priors, PyMC's sampler
2 × (500 + 500)), on the same data. Both are timed as whole processes and scored by the suite's `score.py`, pooled
over the channels of the worlds both have run; a channel a failed fit did not report counts as missed. *Covered*:
the 94 % interval contains the true ROAS. *Within 20 / 35 %*: the mean's absolute error ÷ truth. *Width ÷ truth*:
the interval's width over the true ROAS (median). *Confident*: an interval narrower than its own estimate (the
numbers a user acts on); *confident covered* is the coverage among those. *Identified*: channels our summary marks
`identified: true` (— where the run has no such flag), and how many of them are within 35 %. *Divergences*: total,
and worlds with any. Ours columns hold only the rows of the commit named; rows of older commits stay in
`recovery_suite.json` for history. Ratios are ours ÷ peer, of the pooled medians."""


def parse_seeds(text: str) -> list[int]:
    """``1000-1023``, ``1000,1005`` or a mix of both, in order, without repeats."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        seeds += [s for s in range(int(lo), int(hi or lo) + 1) if s not in seeds]
    return seeds


def ensure_worlds(scripts: Path, folder: Path, signal: str, seeds: list[int]) -> list[Path]:
    """The worlds of ``seeds`` under ``folder``, generated by the suite's ``generate.py`` only where missing."""
    missing = [s for s in seeds if not (folder / f"world_{s}" / "truth.json").is_file()]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        manifest_file = folder / "manifest.json"
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        with tempfile.TemporaryDirectory(dir=folder, prefix=".generate-") as tmp:
            for seed in missing:  # generate.py rewrites its manifest per call: one call per seed, merged here
                cmd = [sys.executable, str(scripts / "generate.py"), tmp, "--seeds", str(seed), "--signal", signal]
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                manifest.update(json.loads((Path(tmp) / "manifest.json").read_text()))
                shutil.rmtree(folder / f"world_{seed}", ignore_errors=True)
                os.replace(Path(tmp) / f"world_{seed}", folder / f"world_{seed}")
        manifest_file.write_text(json.dumps(dict(sorted(manifest.items())), indent=1))
    return [folder / f"world_{s}" for s in seeds]


def config_from_truth(truth: dict, path: Path) -> Path:
    """The config a user who knows the columns' roles writes: roles from the truth, every other key its default."""
    from mmmlib.config import ModelConfig, save_config

    config = ModelConfig(
        date_column=truth["date_column"],
        target_column=truth["target_column"],
        channel_columns=list(truth["channel_columns"]),
        control_columns=list(truth.get("control_columns") or []),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_config(config, path)
    return path


def tree_commit(root: Path) -> str:
    """``git rev-parse --short HEAD``, plus ``-dirty-<hash of the changes>`` when the product differs from it.

    The hash keeps resuming honest: rows fitted with other uncommitted changes are not taken for this tree's.
    """

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, check=True).stdout

    head = git("rev-parse", "--short", "HEAD").decode().strip()
    status = git("status", "--porcelain", "-z", "--untracked-files=all", "--", ".", *NOT_THE_PRODUCT)
    if not status:
        return head
    digest = hashlib.sha256(git("diff", "HEAD", "--binary", "--", ".", *NOT_THE_PRODUCT))
    for entry in sorted(status.split(b"\0")):
        if entry.startswith(b"?? "):  # untracked files are part of the tree a fit imports
            digest.update(entry)
            path = root / os.fsdecode(entry[3:])
            digest.update(path.read_bytes() if path.is_file() else b"")
    return f"{head}-dirty-{digest.hexdigest()[:8]}"


def file_sha(path: Path) -> str:
    """The peer's "commit": the first 12 hex digits of ``peer.py``'s sha256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def peer_times(log: Path) -> dict[tuple[str, str], float]:
    """Whole-process seconds per (suite, world) from lines ``suite world_<seed> seconds``; the last line wins."""
    times: dict[tuple[str, str], float] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                try:
                    times[(parts[0], parts[1])] = float(parts[2])
                except ValueError:
                    continue
    return times


def load_score_world(scripts: Path) -> Callable[[dict, dict | None], list[dict]]:
    """The suite's own ``score_world``, imported from its file so the figures are the suite's."""
    spec = importlib.util.spec_from_file_location("recovery_suite_score", scripts / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {scripts / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score_world


def run_timed(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Run one whole process (its own session, so a timeout or Ctrl-C also ends its kernels); rc, seconds, error."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        return -1, time.perf_counter() - start, f"timed out after {timeout:.0f} s"
    lines = (err or "").strip().splitlines()
    return proc.returncode, time.perf_counter() - start, lines[-1] if lines else "failed"


def world_row(
    score_world: Callable[[dict, dict | None], list[dict]],
    key: dict,
    truth: dict,
    summary: dict | None,
    seconds: float | None,
    error: str | None = None,
) -> dict:
    """One stored row: who fitted which world, when, at which commit, and the suite's score per channel."""
    diag = (summary or {}).get("diagnostics") or {}
    identified = {c["name"]: c.get("identified") for c in (summary or {}).get("channels", [])}
    channels = [{**r, "identified": identified.get(r["channel"])} for r in score_world(truth, summary)]
    row = {
        **key,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": None if seconds is None else round(seconds, 1),
        "divergences": diag.get("divergences"),
        "r_hat_max": diag.get("r_hat_max"),
        "status": (summary or {}).get("status"),
        "load_1min": round(os.getloadavg()[0], 2),  # ~2 is one fit alone on 2 cores; more means contention
        "channels": channels,
    }
    if error is not None:
        row["error"] = error
    return row


def row_key(row: dict) -> tuple[str, str, str, str, str]:
    return row["suite"], row["world"], row["who"], row["mode"], row["commit"]


def needs_fit(rows: list[dict], key: dict, force: bool = False) -> bool:
    """Resume: a (suite, world, who, mode) stored at the same commit is done, unless forced or it had failed."""
    stored = [r for r in rows if row_key(r) == row_key(key)]
    return force or not stored or "error" in stored[-1]


def store_row(rows: list[dict], row: dict, path: Path) -> list[dict]:
    """Replace the row of the same key and commit (others, older commits' included, stay) and save at once."""
    rows = [r for r in rows if row_key(r) != row_key(row)] + [row]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"about": "recovery suite rows; see recovery_suite.md", "rows": rows}, indent=1) + "\n")
    os.replace(tmp, path)
    return rows


def load_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def product_env() -> dict[str, str]:
    """The fitting process and its notebook kernel import this tree's ``mmmlib``, not whichever is installed."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def run_suite(args: argparse.Namespace) -> None:
    """Fit (or resume) every world with ours and the peer, store the rows, print and write the report."""
    scripts, cache, out = SUITE_SCRIPTS, Path(args.cache), Path(args.out)
    modes = args.modes or ["quick"]
    commit = args.commit or tree_commit(ROOT)
    peer_file = scripts / "peer.py"
    peer_commit = file_sha(peer_file) if peer_file.is_file() else "missing"
    seeds = {"mixed": parse_seeds(args.seeds), "strong": parse_seeds(args.strong_seeds)}
    results = out / SUITE_JSON
    rows = load_rows(results)
    load_before = os.getloadavg()[0]
    if not args.report_only:
        score_world = load_score_world(scripts)
        times = peer_times(cache / "runs" / "peer_times.log")
        for suite, suite_seeds in seeds.items():
            worlds = ensure_worlds(scripts, cache / suite, suite, suite_seeds)
            suite_modes = [m for m in modes if m == "quick" or suite in FULL_SUITES]
            for world in worlds:
                if args.only_worlds and world.name not in args.only_worlds:
                    continue
                truth = json.loads((world / "truth.json").read_text())
                rows = suite_world(
                    args, rows, results, score_world, times, suite, world, truth, suite_modes, commit, peer_commit
                )
    text = suite_report(rows, seeds, modes, commit, peer_commit, [load_before, os.getloadavg()[0]])
    if not args.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        (out / SUITE_MD).write_text(text)
    print(text)


def suite_world(
    args: argparse.Namespace,
    rows: list[dict],
    results: Path,
    score_world: Callable[[dict, dict | None], list[dict]],
    times: dict[tuple[str, str], float],
    suite: str,
    world: Path,
    truth: dict,
    modes: list[str],
    commit: str,
    peer_commit: str,
) -> list[dict]:
    """One world: the peer (reused where its run exists), then ours in each mode; each row stored as it comes."""
    runs = Path(args.cache) / "runs"
    fitting = "would fit (dry run)" if args.dry_run else "fitting"
    key = {"suite": suite, "world": world.name, "who": "peer", "mode": PEER_MODE, "commit": peer_commit}
    peer_dir = runs / "peer" / suite / world.name
    have_peer = (peer_dir / "summary.json").is_file() and not args.refit_peer
    if needs_fit(rows, key, force=args.refit_peer or not have_peer):
        if have_peer:
            summary = json.loads((peer_dir / "summary.json").read_text())
            seconds = times.get((suite, world.name), summary.get("seconds"))
            print(f"{suite} {world.name} peer: scoring its stored run", flush=True)
            if not args.dry_run:
                rows = store_row(rows, world_row(score_world, key, truth, summary, seconds), results)
        elif args.no_peer_fits:
            print(f"{suite} {world.name} peer: no run yet (--no-peer-fits)", flush=True)
        else:
            print(f"{suite} {world.name} peer: {fitting}", flush=True)
            if not args.dry_run:
                cmd = [
                    sys.executable,
                    str(SUITE_SCRIPTS / "peer.py"),
                    str(world / "data.csv"),
                    str(world / "truth.json"),
                    str(peer_dir),
                ]
                rc, seconds, error = run_timed(cmd, args.timeout)
                summary_file = peer_dir / "summary.json"
                summary = json.loads(summary_file.read_text()) if rc == 0 and summary_file.is_file() else None
                if summary is not None:
                    with open(runs / "peer_times.log", "a") as log:
                        log.write(f"{suite} {world.name} {seconds:.2f}\n")
                row = world_row(score_world, key, truth, summary, seconds, None if summary else error)
                rows = store_row(rows, row, results)
    for mode in modes:
        key = {"suite": suite, "world": world.name, "who": "ours", "mode": mode, "commit": commit}
        if not needs_fit(rows, key, force=args.force):
            print(f"{suite} {world.name} ours {mode}: stored at {commit}, skipped", flush=True)
            continue
        print(f"{suite} {world.name} ours {mode}: {fitting}", flush=True)
        if args.dry_run:
            continue
        config = config_from_truth(truth, runs / "configs" / suite / f"{world.name}.yaml")
        run_dir = runs / f"ours-{mode}" / suite / world.name
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "mmmlib",
            "fit",
            str(world / "data.csv"),
            "--config",
            str(config),
            "--out",
            str(run_dir),
            "--mode",
            mode,
            "--seed",
            "1",
        ]
        rc, seconds, error = run_timed(cmd, args.timeout, env=product_env())
        summary = json.loads((run_dir / "summary.json").read_text()) if rc == 0 else None
        rows = store_row(
            rows, world_row(score_world, key, truth, summary, seconds, None if rc == 0 else error), results
        )
        print(f"  {seconds:.0f} s" + ("" if rc == 0 else f": {error}"), flush=True)
    return rows


def pool(rows: list[dict]) -> dict:
    """Pooled figures over every channel of ``rows`` (score.py's definitions; a missing channel counts as missed)."""
    channels = [c for r in rows for c in r["channels"]]
    ok = [c for c in channels if not c.get("missing")]
    n = len(channels)
    confident = [c for c in ok if c["confident"]]
    flagged = [c for c in channels if c.get("identified") is not None]
    identified = [c for c in ok if c.get("identified") is True]
    seconds = [r["seconds"] for r in rows if r.get("seconds") is not None]
    divergences = [r["divergences"] for r in rows if r.get("divergences") is not None]

    def share(part: list[dict], whole: int) -> float | None:
        return len(part) / whole if whole else None

    return {
        "worlds": len(rows),
        "channels": n,
        "missing": n - len(ok),
        "failed": sum("error" in r for r in rows),
        "covered": share([c for c in ok if c["covered"]], n),
        "within20": share([c for c in ok if c["error"] <= 0.20], n),
        "within35": share([c for c in ok if c["error"] <= 0.35], n),
        "median_error": statistics.median(c["error"] for c in ok) if ok else None,
        "error_p75": float(np.quantile([c["error"] for c in ok], 0.75)) if ok else None,
        "error_p90": float(np.quantile([c["error"] for c in ok], 0.90)) if ok else None,
        "median_width": statistics.median(c["width"] for c in ok) if ok else None,
        "confident": share(confident, n),
        "confident_covered": share([c for c in confident if c["covered"]], len(confident)),
        "identified": share(identified, n) if flagged else None,
        "identified_within35": share([c for c in identified if c["error"] <= 0.35], len(identified)),
        "divergences": sum(divergences) if divergences else None,
        "divergent_worlds": sum(d > 0 for d in divergences),
        "seconds_median": statistics.median(seconds) if seconds else None,
        "seconds_total": sum(seconds) if seconds else None,
    }


def paired(ours: list[dict], peer: list[dict]) -> tuple[int, int]:
    """``(closer, n)``: of the ``n`` channels both fitted (same world and channel), how many ours estimates closer to
    the truth than the peer. The pooled median error compares the middles of two distributions; this compares the
    same channels, and with the error quantiles shows where the two differ (tails or middle)."""
    theirs = {(r["world"], c["channel"]): c for r in peer for c in r["channels"] if not c.get("missing")}
    pairs = [
        (c["error"], theirs[(r["world"], c["channel"])]["error"])
        for r in ours
        for c in r["channels"]
        if not c.get("missing") and (r["world"], c["channel"]) in theirs
    ]
    return sum(a < b for a, b in pairs), len(pairs)


def targets(suite: str, ours: dict, peer: dict) -> list[tuple[str, str, bool]]:
    """Issue 12's targets for one suite: (target, what was measured, met). Not measured is not met."""

    def pct(x: float | None) -> str:
        return "not measured" if x is None else percent(x)

    def at_least(x: float | None, floor: float) -> bool:
        return x is not None and x >= floor - 1e-12

    error_ratio = ratio_or_none(ours["median_error"], peer["median_error"])
    width_ratio = ratio_or_none(ours["median_width"], peer["median_width"])
    share_floor = IDENTIFIED_SHARE_TARGET[suite]
    return [
        (
            f"intervals cover the true ROAS ≥ {percent(COVERAGE_TARGET)}",
            pct(ours["covered"]),
            at_least(ours["covered"], COVERAGE_TARGET),
        ),
        (
            f"confident intervals cover it ≥ {percent(CONFIDENT_TARGET)}",
            pct(ours["confident_covered"]) if ours["confident"] else "no confident intervals",
            at_least(ours["confident_covered"], CONFIDENT_TARGET),
        ),
        (
            f"identified channels within 35 % ≥ {percent(IDENTIFIED_WITHIN35_TARGET)}",
            pct(ours["identified_within35"]),
            at_least(ours["identified_within35"], IDENTIFIED_WITHIN35_TARGET),
        ),
        (
            f"median ROAS error ≤ {ERROR_RATIO_TARGET} × the peer's",
            fmt_ratio(error_ratio),
            error_ratio is not None and error_ratio <= ERROR_RATIO_TARGET + 1e-12,
        ),
        (
            f"median width ÷ truth ≤ {WIDTH_RATIO_TARGET} × the peer's",
            fmt_ratio(width_ratio),
            width_ratio is not None and width_ratio <= WIDTH_RATIO_TARGET + 1e-12,
        ),
        (
            "zero divergences",
            "not measured" if ours["divergences"] is None else str(ours["divergences"]),
            ours["divergences"] == 0 and ours["failed"] == 0,
        ),
        (
            f"identified share ≥ {percent(share_floor)} ({suite})",
            pct(ours["identified"]),
            at_least(ours["identified"], share_floor),
        ),
    ]


def percent(x: float) -> str:
    return f"{x * 100:.0f} %"


def ratio_or_none(ours: float | None, peer: float | None) -> float | None:
    return ours / peer if ours is not None and peer else None


def fmt_ratio(x: float | None) -> str:
    return "not measured" if x is None else f"{x:.2f} ×"


def suite_report(
    rows: list[dict], seeds: dict[str, list[int]], modes: list[str], commit: str, peer_commit: str, load: list[float]
) -> str:
    """The suite table per suite and mode, ours (rows of ``commit`` only) beside the peer, then the targets."""
    shown = [r for r in rows if (r["who"], r["commit"]) in {("ours", commit), ("peer", peer_commit)}]
    lines = [
        "# Recovery suite: ours beside pymc-marketing's defaults",
        "",
        ABOUT,
        "",
        f"Report of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.platform(terse=True)}, {platform.machine()}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; ours at commit `{commit}`, "
        f"the peer at `peer.py` sha256 `{peer_commit}`; 1-minute load average {load[0]:.2f} at start, "
        f"{load[1]:.2f} at end. Fitted rows' dates: {date_span(shown)}.",
    ]
    for suite, suite_seeds in seeds.items():
        names = [f"world_{s}" for s in suite_seeds]
        if not names:
            continue
        peer = {r["world"]: r for r in shown if r["suite"] == suite and r["who"] == "peer" and r["world"] in names}
        for mode in [m for m in modes if m == "quick" or suite in FULL_SUITES]:
            ours = {
                r["world"]: r
                for r in shown
                if r["suite"] == suite and r["who"] == "ours" and r["mode"] == mode and r["world"] in names
            }
            lines += suite_block(suite, mode, names, ours, peer)
    return "\n".join(lines) + "\n"


def closer_sentence(closer: int, n: int) -> str:
    if not n:
        return ""
    return f"Channel by channel, ours is closer to the truth than the peer on {closer} of {n} ({percent(closer / n)})."


def date_span(rows: list[dict]) -> str:
    dates = sorted(r["date"][:10] for r in rows)
    return "none yet" if not dates else dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"


def suite_block(suite: str, mode: str, names: list[str], ours: dict[str, dict], peer: dict[str, dict]) -> list[str]:
    """One suite and mode: pooled over the worlds both have fitted, the ratios, the targets, then per world."""
    both = [w for w in names if w in ours and w in peer]
    ours_p, peer_p = pool([ours[w] for w in both]), pool([peer[w] for w in both])
    partial = "" if len(both) == len(names) else " — PARTIAL: only these worlds have both runs so far"
    lines = ["", f"## {suite}, {mode} mode: {len(both)} of {len(names)} worlds{partial}", ""]
    lines += ["| | ours | peer |", "|---|---|---|"]

    def pct(x: float | None) -> str:
        return "—" if x is None else percent(x)

    def num(x: float | None, f: str = ".2f") -> str:
        return "—" if x is None else format(x, f)

    for label, key, f in (
        ("channels (missing)", None, None),
        ("interval covers truth", "covered", pct),
        ("within 20 %", "within20", pct),
        ("within 35 %", "within35", pct),
        ("median error", "median_error", pct),
        ("75th / 90th percentile error", "error_p75", None),
        ("median width ÷ truth", "median_width", num),
        ("confident share", "confident", pct),
        ("confident covered", "confident_covered", pct),
        ("identified share", "identified", pct),
        ("identified within 35 %", "identified_within35", pct),
    ):
        if key is None:
            cells = [f"{p['channels']} ({p['missing']})" for p in (ours_p, peer_p)]
        elif f is None:
            cells = [f"{pct(p['error_p75'])} / {pct(p['error_p90'])}" for p in (ours_p, peer_p)]
        else:
            cells = [f(ours_p[key]), "—" if key.startswith("identified") else f(peer_p[key])]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    lines += [
        "| divergences (worlds with any) | "
        + " | ".join(f"{num(q['divergences'], 'd')} ({q['divergent_worlds']})" for q in (ours_p, peer_p))
        + " |",
        "| seconds, median / total | "
        + " | ".join(f"{num(q['seconds_median'], '.0f')} / {num(q['seconds_total'], '.0f')}" for q in (ours_p, peer_p))
        + " |",
        f"| failed fits | {ours_p['failed']} | {peer_p['failed']} |",
    ]
    lines += [
        "",
        f"Ours ÷ peer: median error {fmt_ratio(ratio_or_none(ours_p['median_error'], peer_p['median_error']))}, "
        f"median width {fmt_ratio(ratio_or_none(ours_p['median_width'], peer_p['median_width']))}. "
        + closer_sentence(*paired([ours[w] for w in both], [peer[w] for w in both])),
        "",
        f"Targets ({suite}, {mode}{'' if mode == 'quick' else '; the issue sets them for quick mode'}):",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {v} | {'met' if met else 'MISSED'} |" for t, v, met in targets(suite, ours_p, peer_p)]
    lines += [
        "",
        "| world | ch | ours covered | ours ≤35 % | ours s | peer covered | peer ≤35 % | peer s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in names:
        cells = []
        for r in (ours.get(w), peer.get(w)):
            if r is None:
                cells += ["not run", "", ""]
                continue
            ok = [c for c in r["channels"] if not c.get("missing")]
            fail = " (failed)" if "error" in r else ""
            cells += [
                f"{sum(c['covered'] for c in ok)}{fail}",
                str(sum(c["error"] <= 0.35 for c in ok)),
                num(r.get("seconds"), ".0f"),
            ]
        n = max((len(r["channels"]) for r in (ours.get(w), peer.get(w)) if r), default="")
        lines.append(f"| {w} | {n} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
