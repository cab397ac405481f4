"""Benchmark: nutpie's mass-matrix adaptation (diagonal or low-rank) and the coordinates sampled, on our models (#13).

NUTS takes as many gradient steps per draw as the posterior's correlations force on it. nutpie adapts a diagonal
mass matrix by default; ``adaptation="low_rank"`` adds the directions in which the draws and their gradients are
correlated (Seyboldt et al., nutpie's "low-rank modified mass matrix"). Whether that pays here is a question of our
posteriors: the intercept, the trend and the largest channel trade off against each other, and long, low-noise
series sharpen that ridge.

For each dataset and structure the model is built as ``mmm fit`` builds it (``mmmlib.model.build``: ROAS prior,
changepoint baseline, the config's controls and seasonality), compiled once, and sampled with each adaptation and
seed at a quick candidate's settings (2 chains, 600 tuning steps, 1,000 draws, target acceptance 0.95; no stopping
rule, so the draws are comparable). Reported per run: seconds of sampling, mean step size and gradient steps per
draw, divergences, min bulk and tail ESS and max R-hat over the parameters the product's diagnostics check
(``mmmlib.analysis.diagnosed_names``), and bulk ESS per second.

Cases are ``DATA:STRUCTURE``, DATA being ``sample`` (the bundled sample and its config with fixed seasonality), a
recovery-suite world such as ``strong/world_2002`` (generated into .cache/recovery if missing, config from its
truth as the suite benchmark writes it), or ``meridian``: Meridian's 40-geo sample with the config ``mmm config``
proposes, built as the hierarchical geo fit (:mod:`mmmlib.geo_model`; ``--tune``/``--draws`` set the steps, e.g. a
geo fit's 500 + 500).

A variant may also name the coordinates the model is sampled in: ``diag@0.95/both`` (the default, as fits sample
since 2026-12-05: the intercept as baseline + media, :mod:`mmmlib.centring`, and the trend and control coefficients
whitened, :mod:`mmmlib.whitening`), ``/plain`` (neither: the model's own parameters, as fits sampled before),
``/centred`` or ``/whitened`` (one of the two); the case is then built and compiled once per form. Steps per draw
are reported for the kept draws and for warm-up, where
a badly scaled ridge costs most.

A ``+mode`` suffix (``diag@0.95+mode``) starts the chains at the posterior's mode instead of PyMC's jittered
initial point (:func:`mode_start`), the "start from a good point" of issue #13; the mode's search is reported beside
the sampling time, not in it.

Run: `.venv/bin/python benchmarks/adaptation.py [CASE ...] [--seeds 1 2] [--variants diag@0.95 low_rank@0.99]
[--name adaptation]`. Writes `NAME.json` and `NAME.md` to benchmarks/results/ (each variant is an adaptation at a
target acceptance, optionally with the coordinates' form; ratios are against the first).
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import recovery  # noqa: E402  (the suite's worlds and configs, as the suite benchmark makes them)

DEFAULT_CASES = [
    "sample:geometric+logistic+changepoints",
    "sample:delayed+hill+changepoints",
    *(
        f"{world}:{structure}"
        for world in (
            "mixed/world_1000",
            "mixed/world_1010",
            "mixed/world_1020",
            "strong/world_2002",
            "strong/world_2006",
            "strong/world_2011",
        )
        for structure in ("geometric+logistic+changepoints", "delayed+hill+changepoints")
    ),
]
VARIANTS = ("diag@0.95", "low_rank@0.95")  # adaptation@target acceptance; 0.95 is a quick candidate's
SETTINGS = {"chains": 2, "tune": 600, "draws": 1000}  # a quick fit's candidate, no stopping rule


FORMS = ("both", "plain", "centred", "whitened")  # coordinates: both (what fits sample), neither, or one of the two


STARTS = ("jitter", "mode")  # where chains start: PyMC's jittered initial point (what fits do), or the mode


def variant(text: str) -> tuple[str, float, str]:
    """``low_rank@0.99`` → ``("low_rank", 0.99, "both")``; ``diag@0.95/plain`` → ``("diag", 0.95, "plain")``; a
    ``+mode`` suffix (:func:`start`) does not change these."""
    body, _, form = text.split("+")[0].partition("/")
    adaptation, _, target = body.partition("@")
    form = form or FORMS[0]
    if form not in FORMS:
        raise ValueError(f"the coordinates are one of {', '.join(FORMS)}, not {form!r}")
    return adaptation, float(target or 0.95), form


def start(text: str) -> str:
    """Where a variant's chains start: ``diag@0.95+mode`` → ``"mode"``; without a suffix PyMC's jittered start."""
    _, _, where = text.partition("+")
    where = where or STARTS[0]
    if where not in STARTS:
        raise ValueError(f"chains start at one of {', '.join(STARTS)}, not {where!r}")
    return where


def mode_start(compiled: Any, seed: int, jitter: float = 0.1) -> tuple[Any, dict]:
    """``compiled`` with its chains starting at the posterior's mode (L-BFGS on the log density in the sampler's
    unconstrained coordinates, from PyMC's initial point), each chain moved by up to ``jitter`` in every coordinate
    (nutpie's first mass matrix comes from the gradient, which is zero at the mode); and what finding it cost. The
    "start from a good point" that issue #13 asks about, measured against PyMC's jittered start."""
    import dataclasses

    from scipy.optimize import minimize

    logp = compiled.logp_func

    def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = logp(x)[:2]
        if not np.isfinite(value):
            return 1e20, np.zeros_like(x)
        return -float(value), -np.asarray(grad, dtype=float)

    first = np.asarray(compiled.initial_point_func(seed), dtype=float)
    negative(first)  # the log density's first call from Python compiles it: not the optimiser's cost
    begun = time.perf_counter()
    found = minimize(negative, first, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    info = {"mode_seconds": round(time.perf_counter() - begun, 3), "mode_iterations": int(found.nit)}
    mode = found.x

    def initial(chain_seed: Any) -> np.ndarray:
        rng = np.random.default_rng(int(np.asarray(chain_seed).ravel()[0]))
        return mode + rng.uniform(-jitter, jitter, len(mode))

    return dataclasses.replace(compiled, initial_point_func=initial), info


def sample_config(folder: Path) -> tuple[Path, Path]:
    """The sample and its config with the seasonality's order named (the structure is named per case)."""
    text = (ROOT / "sample_data" / "sample_config.yaml").read_text()
    path = folder / "sample_config.yaml"
    path.write_text(text.replace("yearly_seasonality: auto", "yearly_seasonality: 2"))
    return ROOT / "sample_data" / "sample_weekly.csv", path


def world_config(where: str, folder: Path) -> tuple[Path, Path]:
    """A suite world's data and the config the suite benchmark fits it with."""
    suite, name = where.split("/")
    seed = int(name.removeprefix("world_"))
    (world,) = recovery.ensure_worlds(recovery.SUITE_SCRIPTS, recovery.SUITE_CACHE / suite, suite, [seed])
    truth = json.loads((world / "truth.json").read_text())
    config = recovery.config_from_truth(truth, folder / f"{suite}_{name}.yaml")
    text = config.read_text().replace("yearly_seasonality: auto", "yearly_seasonality: 2")
    config.write_text(text)
    return world / "data.csv", config


def meridian_config(folder: Path) -> tuple[Path, Path]:
    """Meridian's 40-geo sample and the config ``mmm config`` proposes for it (hierarchical, impressions)."""
    import geo_scale  # proposes it as the geo scale benchmark does

    data, config, _ = geo_scale._data("meridian", folder)
    text = config.read_text().replace("yearly_seasonality: auto", "yearly_seasonality: 2")
    config.write_text(text)
    return data, config


def diagnostics(posterior: object) -> tuple[float, float, float]:
    """Min bulk and tail ESS and max R-hat over the parameters the run's diagnostics check.

    Bulk ESS and R-hat equal the product's (:func:`mmmlib.sampling.convergence`); tail ESS is arviz's default, whose
    quantiles are not the product's (0.05, 0.95), so this column is not the stopping rule's tail ESS.
    """
    import arviz as az

    from mmmlib.analysis import diagnosed_names

    post = posterior.to_dataset()[diagnosed_names(posterior)]
    bulk, tail, rhat = az.ess(post), az.ess(post, method="tail"), az.rhat(post)
    low = min(float(np.min(bulk[v].values)) for v in bulk.data_vars)
    low_tail = min(float(np.min(tail[v].values)) for v in tail.data_vars)
    return low, low_tail, max(float(np.max(rhat[v].values)) for v in rhat.data_vars)


def run_case(case: str, seeds: list[int], folder: Path, variants: list[str]) -> list[dict]:
    """Compile the case's model once per form of its coordinates; sample it with each variant and seed."""
    import nutpie
    import pytensor

    from mmmlib import model, nutpie_cache, structures
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    where, structure = case.split(":")
    if where == "sample":
        data, config = sample_config(folder)
    elif where == "meridian":
        data, config = meridian_config(folder)
    else:
        data, config = world_config(where, folder)
    dataset = load_dataset(data, load_config(config))
    geo = dataset.hierarchical
    rows = []
    for form in dict.fromkeys(variant(name)[2] for name in variants):
        shape = structures.Structure(*structure.split("+"))
        if geo:  # as model.fit_structure builds a hierarchical geo fit
            from mmmlib import geo_model

            mmm, X, y, _ = geo_model.build(dataset, shape)
        else:
            mmm, X, y, _ = model.build(dataset, shape)
            X, y = model._fit_rows(dataset, X, y)
        mmm.centre_intercept = form in ("both", "centred")  # both: as model.fit_structure builds it
        mmm.whiten_controls = form in ("both", "whitened")
        mmm.build_model(X, y)
        with pytensor.config.change_flags(numba__fastmath=nutpie_cache.NUMBA_FASTMATH):
            begun = time.perf_counter()
            compiled = nutpie.compile_pymc_model(mmm.model)
            compile_seconds = time.perf_counter() - begun
            mine = [name for name in variants if variant(name)[2] == form]
            rows += _sample_variants(case, dataset, len(y), compiled, compile_seconds, mine, seeds)
    return rows


def _sample_variants(
    case: str, dataset: Any, weeks: int, compiled: Any, compile_seconds: float, variants: list[str], seeds: list[int]
) -> list[dict]:
    """Sample one compiled model with each variant and seed; one row each."""
    import nutpie

    rows = []
    for name in variants:
        adaptation, target_accept, form = variant(name)
        for seed in seeds:
            chosen, found = mode_start(compiled, seed) if start(name) == "mode" else (compiled, {})
            begun = time.perf_counter()
            trace = nutpie.sample(
                chosen,
                chains=SETTINGS["chains"],
                cores=SETTINGS["chains"],
                tune=SETTINGS["tune"],
                draws=SETTINGS["draws"],
                target_accept=target_accept,
                seed=seed,
                progress_bar=False,
                adaptation=adaptation,
            )
            seconds = time.perf_counter() - begun
            stats = trace["sample_stats"]
            warmup = trace["warmup_sample_stats"] if "warmup_sample_stats" in trace.children else None
            bulk, tail, rhat = diagnostics(trace["posterior"])
            row = {
                "case": case,
                "weeks": weeks,
                "channels": len(dataset.config.channel_columns),
                "adaptation": adaptation,
                "target_accept": target_accept,
                "coordinates": form,
                "variant": name,
                "seed": seed,
                "compile_seconds": round(compile_seconds, 1),
                "seconds": round(seconds, 2),
                "step_size": round(float(stats["step_size"].mean()), 4),
                "steps_per_draw": round(float(stats["n_steps"].mean()), 1),
                "warmup_steps_per_draw": round(float(warmup["n_steps"].mean()), 1) if warmup is not None else None,
                "divergences": int(stats["diverging"].sum()),
                "ess_bulk_min": round(bulk, 1),
                "ess_tail_min": round(tail, 1),
                "r_hat_max": round(rhat, 4),
                "ess_per_second": round(bulk / seconds, 2),
                # per gradient evaluation of the kept draws: what the coordinates buy, whatever else runs beside
                "ess_per_1k_steps": round(1000 * bulk / (float(stats["n_steps"].sum()) or 1.0), 2),
                "start": start(name),
                **found,  # the mode's search (seconds, L-BFGS iterations), not in "seconds"
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# nutpie's adaptation (diagonal or low-rank mass matrix) and the coordinates sampled",
        "",
        f"{meta['date']}; {meta['machine']}; commit `{meta['commit']}`. "
        "Each case compiled once per form of its coordinates, "
        "sampled 2 chains × "
        f"({SETTINGS['tune']} tuning + {SETTINGS['draws']} draws) at each variant's target acceptance, "
        "no stopping rule. ESS and R-hat over the parameters the product's diagnostics check; ESS/s is min bulk "
        "ESS per second of sampling; ESS per 1k steps is min bulk ESS per 1,000 gradient steps of the kept draws.",
        "",
        "| case | weeks × channels | variant | seed | s | step | steps/draw (warm-up) | div | ESS bulk / tail | R-hat |"
        " ESS/s | ESS per 1k steps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        warmup = r.get("warmup_steps_per_draw")
        steps = f"{r['steps_per_draw']:.0f}" + (f" ({warmup:.0f})" if warmup is not None else "")
        lines.append(
            f"| {r['case']} | {r['weeks']} × {r['channels']} | {r['variant']} | {r['seed']} | {r['seconds']:.1f} "
            f"| {r['step_size']:.3f} | {steps} | {r['divergences']} "
            f"| {r['ess_bulk_min']:.0f} / {r['ess_tail_min']:.0f} | {r['r_hat_max']:.3f} | {r['ess_per_second']:.1f} "
            f"| {r.get('ess_per_1k_steps', float('nan')):.2f} |"
        )
    names = list(dict.fromkeys(r["variant"] for r in rows))
    first = names[0] if names else ""
    lines += ["", "Per case, summed over its seeds (s, divergences, min bulk ESS per second):", ""]
    lines += [
        "| case | " + " | ".join(names) + " | " + " | ".join(f"{n} ÷ {first} ESS/s" for n in names[1:]) + " |",
        "|---|" + "---|" * (2 * len(names) - 1),
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        cells = []
        rates = []
        for name in names:
            mine = [r for r in rows if r["case"] == case and r["variant"] == name]
            secs = sum(r["seconds"] for r in mine)
            rate = sum(r["ess_bulk_min"] for r in mine) / secs if secs else float("nan")
            rates.append(rate)
            cells.append(f"{secs:.0f}, {sum(r['divergences'] for r in mine)}, {rate:.1f}")
        ratios = [f"{rate / rates[0]:.2f} ×" for rate in rates[1:]]
        lines.append(f"| {case} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=DEFAULT_CASES, help="DATA:STRUCTURE (default: seven datasets)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="ADAPTATION@TARGET_ACCEPT")
    parser.add_argument("--name", default="adaptation", help="results file stem")
    parser.add_argument("--tune", type=int, default=SETTINGS["tune"], help="tuning steps per chain")
    parser.add_argument("--draws", type=int, default=SETTINGS["draws"], help="draws per chain")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    SETTINGS.update(tune=args.tune, draws=args.draws)
    sys.path.insert(0, str(ROOT))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.platform()}, {platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "commit": commit.stdout.strip(),
    }
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            rows += run_case(case, args.seeds, Path(tmp), args.variants)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
