"""Benchmark: the same fit by two commits, as fresh ``mmm fit`` processes taken in turn from the same warm caches.

A change worth a second or less cannot be seen in two timings taken minutes apart on a shared machine whose speed
drifts by ±20 % within minutes. Alternating the two checkouts round by round, from the same compile caches, puts
both under the same drift; the medians and each round's pair are reported, with the fit log's last stretch (the
last candidate sampled → the run written: stacking, summary, curves and writing) where most such changes land.

Run: `.venv/bin/python benchmarks/interleaved.py --base COMMIT [--new COMMIT] [--rounds 4] [--structure fixed]
[--mode full]`.
The base (and ``--new`` when given; else this checkout) is checked out in a temporary git worktree. Writes
``interleaved.json`` and ``interleaved.md`` to ``--out`` (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from preheated import fixed_config  # noqa: E402  (the same one-structure config as the preheated benchmark)

STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) mmmlib\.(\w+): (.*)")


def checkout(ref: str, work: Path) -> Path:
    """A worktree of ``ref`` that uses this checkout's virtual environment."""
    path = work / ref.replace("/", "_")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True)
    return path


def tail_seconds(log: Path) -> float | None:
    """Seconds from the last ``sampled in`` line of the fit log to ``run written``."""
    sampled = written = None
    for line in log.read_text(errors="replace").splitlines():
        match = STAMP.search(line)
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if " sampled in " in match.group(3):
            sampled = at
        elif match.group(3).startswith("run written"):
            written = at
    return None if sampled is None or written is None else round(written - sampled, 2)


def fit_once(
    repo: Path, data: Path, config: Path, out: Path, env: dict[str, str], mode: str = "quick"
) -> dict[str, float | None]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mmmlib", "fit", str(data), "--config", str(config), "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run([*cmd, "--mode", mode], cwd=repo, env={**env, "PYTHONPATH": str(repo)}, capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{repo}: the fit failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return {"seconds": round(seconds, 2), "tail": tail_seconds(out / "fit.log")}


def same_roas(a: Path, b: Path) -> bool:
    """Whether the two runs report the same ROAS for every channel (the same draws do)."""
    left, right = (json.loads((p / "summary.json").read_text())["channels"] for p in (a, b))
    return [c["roas"] for c in left] == [c["roas"] for c in right]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the commit compared against")
    ap.add_argument("--new", help="the commit measured (default: this checkout as it is)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--structure", choices=["default", "fixed"], default="default")
    ap.add_argument("--mode", choices=["quick", "full"], default="quick")
    ap.add_argument("--data", type=Path, default=ROOT / "sample_data" / "sample_weekly.csv")
    ap.add_argument("--config", type=Path, default=ROOT / "sample_data" / "sample_config.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="interleaved-"))
    repos = {"base": checkout(args.base, work), "new": checkout(args.new, work) if args.new else ROOT}
    config = fixed_config(args.config, work) if args.structure == "fixed" else args.config.resolve()
    cache = ROOT / ".cache"
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "MMM_JAX_CACHE": str(cache / "jax"),
    }
    rows: list[dict] = []
    try:
        for side, repo in repos.items():  # one unrecorded fit each: the caches hold both sides' compiled models
            fit_once(repo, args.data.resolve(), config, work / f"warm-{side}", env, args.mode)
        for i in range(1, args.rounds + 1):
            for side, repo in repos.items():
                fitted = fit_once(repo, args.data.resolve(), config, work / side, env, args.mode)
                row = {"round": i, "side": side, **fitted}
                rows.append(row)
                print(json.dumps(row), flush=True)
        same = same_roas(work / "base", work / "new")
    finally:
        for side in ("base", "new"):
            if repos[side] != ROOT:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(repos[side])], check=False)
        shutil.rmtree(work, ignore_errors=True)
    median = {s: statistics.median(r["seconds"] for r in rows if r["side"] == s) for s in repos}
    tails = {s: statistics.median(r["tail"] for r in rows if r["side"] == s and r["tail"] is not None) for s in repos}
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "base": args.base,
        "new": args.new or "working tree",
        "structure": args.structure,
        "mode": args.mode,
        "data": args.data.name,
        "same_roas": same,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interleaved.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [
        f"Interleaved fits ({meta['date']}, {meta['machine']}; {meta['structure']} structure on {meta['data']}, "
        f"{meta['mode']} mode; "
        f"whole `mmm fit` processes, warm caches, taken in turn)",
        "",
        "| side | commit | median seconds | each round | median last candidate → written |",
        "|---|---|---|---|---|",
    ]
    for side in repos:
        each = ", ".join(f"{r['seconds']:.1f}" for r in rows if r["side"] == side)
        ref = meta[side]
        lines.append(f"| {side} | {ref} | {median[side]:.1f} | {each} | {tails[side]:.2f} s |")
    lines += ["", f"Same ROAS summaries from both sides: {'yes' if same else 'no'}."]
    (args.out / "interleaved.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
