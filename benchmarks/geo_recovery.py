"""Geo recovery (#15 item 7): does one hierarchical fit over geos recover ROAS better than a national model of the
summed data, and than the peer (pymc-marketing out of the box, ``../shared/recovery_suite/peer.py``) on that sum?

Each seed draws ``mmm synth --geos N`` data from forms the model does not assume (Weibull-shaped carry-over that
peaks after a delay, Hill curves, a return per geo spread around its channel's), then fits, each as a whole process:

- ``hierarchical``: ``mmm fit`` with the generated config (``geo_model: hierarchical``);
- ``national``: the same file with ``geo_model: aggregate`` (our national model on the summed data);
- ``peer``: peer.py on the summed data (spend columns, the same controls).

Scores per channel nationally (interval covers the true ROAS; error; interval width ÷ truth) and, for the
hierarchical fit, per geo × channel. Results append to ``benchmarks/results/geo_recovery.json`` with the commit;
``--report`` writes ``geo_recovery.md``.

    python benchmarks/geo_recovery.py --seeds 1 2 3 --geos 10 --weeks 104 --channels 4
    python benchmarks/geo_recovery.py --hierarchical-only   # a change to the geo model alone: the same data, the
                                                             # stored national and peer rows
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PEER = ROOT.parent / "shared" / "recovery_suite" / "peer.py"


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def _timed(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as fh:
        done = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed; see {log}")
    return round(time.perf_counter() - start, 1)


def _fit(data: Path, config: str, out: str, log: str) -> float:
    """Whole-process seconds of ``mmm fit`` on ``data/data.csv`` with ``data/config`` into ``data/out``."""
    cmd = [sys.executable, "-m", "mmmlib", "fit", str(data / "data.csv"), "--config", str(data / config)]
    return _timed([*cmd, "--out", str(data / out)], data / log)


def _score(rows: list[tuple[float, float, float, float]]) -> dict[str, float]:
    """rows: (truth, mean, low, high)."""
    t, m, lo, hi = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    err = np.abs(m - t) / t
    return {
        "channels": len(t),
        "coverage": float(np.mean((lo <= t) & (t <= hi))),
        "within_20": float(np.mean(err <= 0.2)),
        "within_35": float(np.mean(err <= 0.35)),
        "median_error": float(np.median(err)),
        "median_width_over_truth": float(np.median((hi - lo) / t)),
    }


def _national_rows(summary: dict, truth: dict) -> list[tuple[float, float, float, float]]:
    true = {c["name"]: c["roas"] for c in truth["channels"]}
    return [
        (true[c["name"]], c["roas"]["mean"], c["roas"]["hdi_low"], c["roas"]["hdi_high"])
        for c in summary["channels"]
        if c["name"] in true
    ]


def _stored(seed: int, geos: int, weeks: int, channels: int) -> dict | None:
    """The newest stored record of the same seed and sizes, or None."""
    path = RESULTS / "geo_recovery.json"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    same = [r for r in records if (r["seed"], r["geos"], r["weeks"], r["channels"]) == (seed, geos, weeks, channels)]
    return same[-1] if same else None


def run_seed(seed: int, geos: int, weeks: int, channels: int, work: Path, reuse: dict | None = None) -> dict:
    """Fit and score one seed; ``reuse``: a stored record whose national and peer fits stand for this run's (only
    the hierarchical model changed: its data are the same draws of ``mmm synth``)."""
    from mmmlib.config import load_config, save_config
    from mmmlib.data.dataset import load_dataset

    data = work / f"seed{seed}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mmmlib",
            "synth",
            "--geos",
            str(geos),
            "--weeks",
            str(weeks),
            "--channels",
            str(channels),
            "--seed",
            str(seed),
            "--adstock",
            "weibull",
            "--saturation",
            "hill",
            "--out",
            str(data),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    truth = json.loads((data / "truth.json").read_text())
    cfg = load_config(data / "config.yaml")
    seconds = {}
    seconds["hierarchical"] = _fit(data, "config.yaml", "run_h", "hierarchical.log")
    if reuse is not None:
        summary = json.loads((data / "run_h" / "summary.json").read_text())
        record = {"seed": seed, "geos": geos, "weeks": weeks, "channels": channels}
        record["seconds"] = {**reuse["seconds"], "hierarchical": seconds["hierarchical"]}
        record["hierarchical"] = {"rows": _national_rows(summary, truth), "diagnostics": summary.get("diagnostics")}
        record.update({"national": reuse["national"], "peer": reuse["peer"], "reused_from": reuse["commit"]})
        record["hierarchical_per_geo"] = _per_geo_rows(summary, truth)
        record["commit"] = _commit()
        return record
    aggregate = load_config(data / "config.yaml")
    aggregate.geo_model = "aggregate"
    save_config(aggregate, data / "config_national.yaml")
    seconds["national"] = _fit(data, "config_national.yaml", "run_n", "national.log")
    summed = load_dataset(data / "data.csv", aggregate).frame
    summed.to_csv(data / "summed.csv", index=False)
    (data / "peer_truth.json").write_text(
        json.dumps(
            {
                "date_column": cfg.date_column,
                "target_column": cfg.target_column,
                "channel_columns": cfg.channel_columns,
                "control_columns": cfg.control_columns,
            }
        )
    )
    seconds["peer"] = _timed(
        [sys.executable, str(PEER), str(data / "summed.csv"), str(data / "peer_truth.json"), str(data / "peer")],
        data / "peer.log",
    )
    record: dict = {"seed": seed, "geos": geos, "weeks": weeks, "channels": channels, "seconds": seconds}
    for name, folder in (("hierarchical", "run_h"), ("national", "run_n"), ("peer", "peer")):
        summary = json.loads((data / folder / "summary.json").read_text())
        record[name] = {"rows": _national_rows(summary, truth), "diagnostics": summary.get("diagnostics")}
    record["hierarchical_per_geo"] = _per_geo_rows(json.loads((data / "run_h" / "summary.json").read_text()), truth)
    record["commit"] = _commit()
    return record


def _per_geo_rows(summary: dict, truth: dict) -> list[tuple[float, float, float, float]]:
    per_geo = []
    for g in summary["geos"]:
        true = next(t for t in truth["geos"] if t["name"] == g["name"])
        for c in g["channels"]:
            t = next(x["roas"] for x in true["channels"] if x["name"] == c["name"])
            if t:
                per_geo.append((t, c["roas"]["mean"], c["roas"]["hdi_low"], c["roas"]["hdi_high"]))
    return per_geo


def report(commit: str | None = None) -> str:
    """The table of one commit's records (default: the last record's commit); ``a,b``: several commits' records,
    for a run whose seeds were recorded under commits that differ in no fitting code (docs committed meanwhile)."""
    records = [json.loads(line) for line in (RESULTS / "geo_recovery.json").read_text().splitlines() if line.strip()]
    commits = (commit or records[-1]["commit"]).split(",")
    records = [r for r in records if r["commit"] in commits]
    lines = [
        f"Seeds {', '.join(str(r['seed']) for r in records)}; "
        f"{records[0]['geos']} geos × {records[0]['weeks']} weeks × {records[0]['channels']} channels "
        "(Weibull carry-over, Hill curves, per-geo returns); "
        f"commit {', '.join(dict.fromkeys(r['commit'] for r in records))}"
        + (
            f"; the national and peer rows are those of commit {reused} (same data; only the hierarchical model "
            "was refitted)."
            if (reused := records[-1].get("reused_from"))
            else "."
        ),
        "",
        "| fit | scored on | channels | coverage | within 20 % | within 35 % | median error | median width ÷ truth | "
        "median seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, key, what in (
        ("hierarchical (ours)", "hierarchical", "national ROAS"),
        ("national on the sum (ours)", "national", "national ROAS"),
        ("peer on the sum (pymc-marketing defaults)", "peer", "national ROAS"),
        ("hierarchical (ours)", "hierarchical_per_geo", "each geo's ROAS"),
    ):
        rows = [row for r in records for row in (r[key]["rows"] if isinstance(r[key], dict) else r[key])]
        s = _score(rows)
        secs = np.median([r["seconds"][key.removesuffix("_per_geo")] for r in records])
        lines.append(
            f"| {name} | {what} | {s['channels']} | {s['coverage']:.0%} | {s['within_20']:.0%} | "
            f"{s['within_35']:.0%} | {s['median_error']:.0%} | {s['median_width_over_truth']:.2f} | {secs:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--geos", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--work", default=str(ROOT / ".cache" / "geo_recovery"))
    parser.add_argument("--report", action="store_true")
    parser.add_argument(
        "--hierarchical-only",
        action="store_true",
        help="refit the hierarchical model only; the national and peer rows are the newest stored ones of each seed",
    )
    parser.add_argument(
        "--commit", help="with --report: this commit's records, or A,B for several (default: the last record's)"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for seed in [] if args.report else args.seeds:
        reuse = _stored(seed, args.geos, args.weeks, args.channels) if args.hierarchical_only else None
        if args.hierarchical_only and reuse is None:
            parser.error(f"--hierarchical-only: no stored record of seed {seed} at these sizes")
        record = run_seed(seed, args.geos, args.weeks, args.channels, work, reuse)
        print(json.dumps({k: record[k] for k in ("seed", "seconds")}), flush=True)
        with (RESULTS / "geo_recovery.json").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    (RESULTS / "geo_recovery.md").write_text(report(args.commit))
    print((RESULTS / "geo_recovery.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
