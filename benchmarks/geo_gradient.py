"""Geo-model cost per gradient against the number of geos (#15): what one leapfrog step costs at 10, 40 and 100 geos.

A fit's seconds are its gradient evaluations times their cost; ``geo_scale.py`` times whole fits, where the steps
per draw (the posterior's geometry) and the structure chosen move the total as much as the geos do. This separates
the two: for each case the hierarchical model is built as ``mmm fit`` builds it (``mmmlib.geo_model.build``, one
fixed structure, logistic and Hill returns by default), its log density and gradient compiled by PyTensor's numba
backend (what nutpie samples with) and evaluated ``--repeats`` times at the initial point, one thread, nothing
sampled. Reported: free parameters, observations (geo × week rows), milliseconds per gradient and microseconds per
observation.

Cases as in ``geo_scale.py``: ``meridian`` (Meridian's 40-geo sample) and ``synthN`` (``mmm synth --geos N``, 156
weeks × 5 channels, seed 1).

Run: `.venv/bin/python benchmarks/geo_gradient.py [--cases synth10 meridian synth100] [--structures
geometric+logistic+changepoints geometric+hill+changepoints]`. Writes ``benchmarks/results/geo_gradient.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))  # geo_scale, whose data and configs these are


def measure(case: str, structure: str, repeats: int, work: Path) -> dict:
    """One case's model compiled once and its gradient timed (median of five blocks of ``repeats // 5`` calls)."""
    import geo_scale  # the same data and config as the whole-fit benchmark
    import pytensor
    from pymc.blocking import DictToArrayBijection

    from mmmlib import geo_model, nutpie_cache, structures
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    work.mkdir(parents=True, exist_ok=True)
    data, config, geos = geo_scale._data(case, work)
    text = config.read_text().replace("yearly_seasonality: auto", "yearly_seasonality: 2")
    config.write_text(text)
    dataset = load_dataset(data, load_config(config))
    mmm, X, y, _ = geo_model.build(dataset, structures.Structure(*structure.split("+")))
    mmm.build_model(X, y)
    model = mmm.model
    point = model.initial_point()
    x = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars}).data
    start = time.perf_counter()
    with pytensor.config.change_flags(numba__fastmath=nutpie_cache.NUMBA_FASTMATH):
        f = model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")
    f.set_extra_values({})
    fn = f._pytensor_function
    fn.trust_input = True
    fn(x)
    compile_seconds = time.perf_counter() - start
    block = max(repeats // 5, 1)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(block):
            fn(x)
        times.append((time.perf_counter() - t) / block)
    per_gradient = float(np.median(times))
    return {
        "case": case,
        "geos": geos,
        "structure": structure,
        "parameters": int(x.size),
        "observations": len(y),
        "ms_per_gradient": round(1e3 * per_gradient, 3),
        "us_per_observation": round(1e6 * per_gradient / len(y), 3),
        "compile_seconds": round(compile_seconds, 1),
    }


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Geo model: cost per gradient against the number of geos",
        "",
        f"{meta['date']}; {meta['machine']}; commit `{meta['commit']}`. Log density and gradient of the hierarchical "
        "model (`mmmlib.geo_model.build`, one structure), PyTensor's numba backend, one thread, at the initial point; "
        "median over five blocks of calls. Whole fits: `geo_scale.md`.",
        "",
        "| case | geos | structure | parameters | observations | ms per gradient | µs per observation |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['geos']} | {r['structure']} | {r['parameters']} | {r['observations']} "
            f"| {r['ms_per_gradient']:.3f} | {r['us_per_observation']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=["synth10", "meridian", "synth100"])
    parser.add_argument(
        "--structures", nargs="*", default=["geometric+logistic+changepoints", "geometric+hill+changepoints"]
    )
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmm-geo-gradient-") as tmp:
        rows = []
        for case in args.cases:
            for structure in args.structures:
                row = measure(case, structure, args.repeats, Path(tmp) / case)
                print(json.dumps(row), flush=True)
                rows.append(row)
    import geo_scale

    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} cores",
        "commit": geo_scale._commit(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "geo_gradient.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (RESULTS / "geo_gradient.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
