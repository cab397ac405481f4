"""Geo-model fit cost against the number of geos (#15): whole-process seconds and peak memory of ``mmm fit``.

Each case is one ``mmm fit`` process (structure choice on the national sum included), its process tree's summed
RSS polled every half second for the peak. Cases: Meridian's 40-geo sample (``meridian_geo_all_channels.csv``,
156 weeks × 5 channels, impressions) and ``mmm synth --geos N`` data (156 weeks × 5 channels) for other sizes.

    python benchmarks/geo_scale.py --cases meridian:nutpie synth10:nutpie synth100:nutpie meridian:numpyro

Results append to ``benchmarks/results/geo_scale.json`` (one record per case, with the commit); ``--report`` writes
the table ``benchmarks/results/geo_scale.md``; ``--keep DIR`` keeps each fitted run as ``DIR/CASE``;
``--structure ADSTOCK+SATURATION`` fixes the structure in the config (no choice on the national sum: the geo fit of
one structure alone, e.g. the slower returns form, whichever the sum would have chosen). ``--drop-periods N`` fits the
data without their last N periods: data no cache has seen, so ``--drop-periods 2`` then ``--drop-periods 1`` times a
first fit and then the weekly refresh after it (the compiled code of the first reused, or not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PUBLIC = ROOT.parent / "shared" / "public_data"
TIMELINE_STEP = 10  # seconds between the memory timeline's samples


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def _mmm(*args: str, **kw: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmmlib", *args], cwd=ROOT, **kw)  # type: ignore[call-overload]


def _fix_structure(config: Path, structure: str | None) -> None:
    if structure is None:
        return
    from dataclasses import replace

    from mmmlib.config import load_config, save_config

    adstock, saturation = structure.split("+")
    save_config(replace(load_config(config), adstock=adstock, saturation=saturation), config)


def _data(case: str, work: Path) -> tuple[Path, Path, int]:
    if case == "meridian":
        data = PUBLIC / "meridian_geo_all_channels.csv"
        config = work / "config.yaml"
        subprocess.run(
            [sys.executable, "-m", "mmmlib", "config", str(data), "--out", str(config)], check=True, cwd=ROOT
        )
        return data, config, 40
    geos = int(case.removeprefix("synth"))
    out = work / case
    subprocess.run(
        [sys.executable, "-m", "mmmlib", "synth", "--geos", str(geos), "--out", str(out), "--seed", "1"],
        check=True,
        cwd=ROOT,
    )
    return out / "data.csv", out / "config.yaml", geos


def _drop_periods(data: Path, config: Path, periods: int, work: Path) -> Path:
    """``data`` without its last ``periods`` periods (every geo's), as a new file."""
    import pandas as pd

    from mmmlib.config import load_config

    if not periods:
        return data
    frame = pd.read_csv(data)
    date = load_config(config).date_column
    kept = sorted(frame[date].unique())[:-periods]
    out = work / f"data_without_last_{periods}.csv"
    frame[frame[date].isin(kept)].to_csv(out, index=False)
    return out


def measure(
    case: str,
    sampler: str,
    mode: str,
    keep: Path | None = None,
    structure: str | None = None,
    drop_periods: int = 0,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, config, geos = _data(case, work)
        _fix_structure(config, structure)
        data = _drop_periods(data, config, drop_periods, work)
        run = work / "run"
        start = time.perf_counter()
        proc = _mmm(
            "fit",
            str(data),
            "--config",
            str(config),
            "--out",
            str(run),
            "--mode",
            mode,
            "--sampler",
            sampler,
            stdout=subprocess.DEVNULL,
            stderr=open(work / "stderr.log", "w"),
        )
        peak, window, timeline, last = 0, 0, [], 0.0
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
                peak, window = max(peak, rss), max(window, rss)
                now = time.perf_counter() - start
                if now - last >= TIMELINE_STEP:  # when memory rose and fell, to match with the run's fit.log
                    timeline.append([round(now), round(window / 2**30, 2), len(procs)])
                    window, last = 0, now
            except psutil.Error:
                pass
            time.sleep(0.5)
        seconds = time.perf_counter() - start
        record: dict[str, object] = {
            "case": case,
            "geos": geos,
            "sampler": sampler,
            "mode": mode,
            "seconds": round(seconds, 1),
            "peak_rss_gb": round(peak / 2**30, 2),
            # [seconds since start, the process tree's peak GB in the TIMELINE_STEP before, processes in it then]
            "memory_timeline": timeline,
            "rc": proc.returncode,
            "commit": _commit(),
            "cpus": os.cpu_count(),
        }
        notes = []
        if structure is not None:
            notes.append(f"structure fixed to {structure} in the config (no choice on the national sum)")
        if drop_periods:
            record["dropped_periods"] = drop_periods
            notes.append(f"the data without their last {drop_periods} periods")
        if notes:
            record["note"] = "; ".join(notes)
        summary = run / "summary.json"
        if summary.is_file():
            s = json.loads(summary.read_text())
            record.update(
                {
                    "status": s["status"],
                    "diagnostics": s["diagnostics"],
                    "fit_seconds": s["run"]["fit_seconds"],
                    "posterior_mb": round((run / "posterior.nc").stat().st_size / 2**20, 1),
                    "tune": s["run"]["tune"],
                    "draws": s["run"]["draws"],
                    "structure": _fitted_structures(s["model"]),
                    "summary_kb": round(summary.stat().st_size / 2**10, 1),
                    "national_roas": {c["name"]: c["roas"] for c in s["channels"]},
                }
            )
        else:
            record["error"] = (work / "stderr.log").read_text()[-2000:]
        if keep is not None and summary.is_file():  # for benchmarks/dashboard_speed.py on the same run
            shutil.rmtree(keep / case, ignore_errors=True)
            shutil.copytree(run, keep / case)
        return record


def _fitted_structures(model: dict) -> str:
    """What was fitted over the geos: the pair with their weights, else the one structure."""
    if model.get("geo_candidates"):
        return " & ".join(f"{c['name']} ({c['weight']:.2f})" for c in model["geo_candidates"])
    if model.get("structure"):
        return model["structure"]
    return max(model["candidates"], key=lambda c: c.get("weight", 0))["name"]


def report() -> str:
    rows = [json.loads(line) for line in (RESULTS / "geo_scale.json").read_text().splitlines() if line.strip()]
    lines = [
        "| data | geos | sampler | steps per chain | structure | whole process (s) | fit (s) | peak RSS (GB) | "
        "R-hat max | ESS min | divergences | commit | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r.get("diagnostics") or {}
        steps = f"{r['tune']} + {r['draws']}" if r.get("tune") else "—"
        cells = [
            r["case"],
            r["geos"],
            r["sampler"],
            steps,
            r.get("structure", "—"),
            r.get("seconds") or "—",
            r.get("fit_seconds") or "—",
            r.get("peak_rss_gb") or "—",
            f"{d['r_hat_max']:.3f}" if d else "—",
            f"{d['ess_bulk_min']:.0f}" if d else "—",
            d.get("divergences", "—"),
            r["commit"],
            "; ".join(x for x in (r.get("note"), r.get("error")) if x),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=["meridian:nutpie"], help="DATA:SAMPLER, DATA meridian|synthN")
    parser.add_argument("--mode", default="quick")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--keep", type=Path, help="copy each fitted run to KEEP/CASE (the dashboards' benchmark)")
    parser.add_argument("--structure", help="ADSTOCK+SATURATION fixed in the config, e.g. geometric+hill")
    parser.add_argument("--drop-periods", type=int, default=0, help="fit without the data's last N periods")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for item in [] if args.report else args.cases:
        case, sampler = item.split(":")
        record = measure(case, sampler, args.mode, args.keep, args.structure, args.drop_periods)
        print(json.dumps(record), flush=True)
        with (RESULTS / "geo_scale.json").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    (RESULTS / "geo_scale.md").write_text(report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
