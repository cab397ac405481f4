"""Benchmark: a fit in a preheated kernel (``mmmlib.kernel_pool``) beside a fresh ``mmm fit`` process, warm caches.

One fixed structure (geometric + logistic) on one dataset (default: the sample), three ways, each ``--repeat`` times:

- a fresh ``mmm fit`` process (interpreter start, imports, kernel start, the fit);
- ``pipeline.fit_run`` in a long-lived process without a pool (a kernel started for the fit, as ``mmm fit`` does);
- ``pipeline.fit_run`` in a long-lived process with a warm pool (what the scheduler does): kernel and imports ready;

and, per fit, three fits asked for back to back through the warm pool (each kernel's replacement has no time to start
between them), and the scheduler's own loop: three schedules due at once, each a fit and its HTML report
(``schedule.run_due``), through the warm pool.

Seconds are from the request to the published run. Caches are warmed by one unrecorded fit first, so the rows compare
kernel start and imports, not compilation.

Run: `.venv/bin/python benchmarks/preheated.py [--data CSV --config YAML] [--repeat 3]`.
Writes `preheated.json` and `preheated.md` to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def fixed_config(config: Path, out: Path) -> Path:
    data = yaml.safe_load(config.read_text())
    data.update({"adstock": "geometric", "saturation": "logistic", "yearly_seasonality": 2})  # one fit
    path = out / "fixed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def back_to_back(pool: Any, request: Any) -> list[float]:
    """Seconds per fit of three fits asked for one after another, the pool ready at the first."""
    from mmmlib.pipeline import fit_run

    pool.wait_ready(300)
    t = time.perf_counter()
    for i in range(3):
        fit_run(request(f"row{i}"), pool=pool)
    return [(time.perf_counter() - t) / 3]


def schedules(pool: Any, data: str, config: Path, work: Path) -> list[float]:
    """Seconds per schedule of three due at once (fit, HTML report, publish), as ``mmm schedule serve`` runs them."""
    from mmmlib.schedule import Schedule, run_due

    os.environ["MMM_HOME"] = str(work / "home")
    due = [
        Schedule(name=f"s{i}", client="bench", cron="* * * * *", data=data, config=str(config), seed=1)
        for i in range(3)
    ]
    pool.wait_ready(300)
    t = time.perf_counter()
    outcomes = run_due(due, pool=pool)
    assert all(o["status"] == "ok" for o in outcomes), outcomes
    return [(time.perf_counter() - t) / 3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "sample_data" / "sample_weekly.csv"))
    parser.add_argument("--config", default=str(ROOT / "sample_data" / "sample_config.yaml"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    from mmmlib.pipeline import fit_pool, fit_run
    from mmmlib.request import FitRequest

    rows: dict[str, list[float]] = {"fresh `mmm fit` process": [], "fit_run, no pool": [], "fit_run, warm pool": []}
    with tempfile.TemporaryDirectory(prefix="mmm-preheat-") as tmp:
        work = Path(tmp)
        config = fixed_config(Path(args.config), work)

        def request(name: str) -> FitRequest:
            return FitRequest(args.data, str(config), str(work / "runs" / name), mode="quick", seed=1)

        fit_run(request("warm-up"))  # caches warm: the rows compare starts, not compiles
        with fit_pool(1) as pool:
            for i in range(args.repeat):
                t = time.perf_counter()
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "mmmlib",
                        "fit",
                        args.data,
                        "--config",
                        str(config),
                        "--out",
                        str(work / "runs" / f"fresh{i}"),
                        "--seed",
                        "1",
                    ],
                    capture_output=True,
                    text=True,
                )
                assert done.returncode == 0, done.stderr
                rows["fresh `mmm fit` process"].append(time.perf_counter() - t)
                t = time.perf_counter()
                fit_run(request(f"plain{i}"))
                rows["fit_run, no pool"].append(time.perf_counter() - t)
                pool.wait_ready(300)  # the replacement kernel is up before the next timed fit, as between fits
                t = time.perf_counter()
                fit_run(request(f"pool{i}"), pool=pool)
                rows["fit_run, warm pool"].append(time.perf_counter() - t)
                pool.wait_ready(300)
            rows["three fits back to back, warm pool (per fit)"] = back_to_back(pool, request)
            rows["three schedules due at once, fit + HTML report, warm pool (per schedule)"] = schedules(
                pool, args.data, config, work
            )
    out = Path(args.out)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "data": args.data,
        "structure": "geometric + logistic, quick mode, seed 1",
        "seconds": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "preheated.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# A fit in a preheated kernel",
        "",
        f"{result['date']}; {result['machine']}; {Path(args.data).name}, {result['structure']}; warm caches; "
        "seconds from request to published run.",
        "",
        "| | median | runs |",
        "|---|---|---|",
    ]
    for label, values in rows.items():
        lines.append(f"| {label} | {statistics.median(values):.1f} s | {', '.join(f'{v:.1f}' for v in values)} |")
    (out / "preheated.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
