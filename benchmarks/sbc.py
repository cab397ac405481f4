"""Benchmark: simulation-based calibration (SBC) of each structure ``auto`` fits, on the sample data's design.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference algorithms with simulation-based
calibration": draw parameters and data from the prior, fit the data, and rank each true value among L posterior
draws. Where the model is right and the fit is exact, every rank 0..L is equally likely; a histogram that is
U-shaped means intervals too narrow, a hump too wide, a slope a biased posterior. This is the "prove calibration
where the model is right" half of issue #12 (the recovery suite is the "data the model did not make" half).

Design: the bundled sample data's dates, spend and controls (``sample_data/sample_weekly.csv`` with
``sample_config.yaml``; ``--weeks`` keeps the first N weeks; no held-out weeks). For each structure of the auto
set (``mmmlib.structures.candidates``) and each simulation:

1. The model of that structure is built on the design with the ORIGINAL KPI, so its priors get the design's scales
   (the return priors of ``mmmlib.roas_priors`` and pymc-marketing's priors live on the KPI divided by its largest
   value, ``target_scale``). Prior draws and their simulated KPI (the likelihood ``y`` × ``target_scale``) come from
   ``pm.sample_prior_predictive`` with the simulation's seed, in chunks of ``PRIOR_CHUNK``; the first draw whose
   KPI is positive in every week and at most ``ABSURD`` × the design's largest KPI is the truth. The draws passed
   over are counted and reported. Choosing a draw by its simulated data alone does not bias the ranks (uniformity
   holds for the posterior of every data set, so for any selection of data sets), but the check then speaks only for
   data like the kept ones: the acceptance rate says how much of the prior that is.
2. The same structure is fitted to the simulated KPI with ``model.fit_structure`` (quick settings, or ``--draws`` /
   ``--tune``) and ``target_scale`` fixed to the design's, so the fitted model's priors are exactly the priors the
   truth was drawn from (without it the scale, and with it every prior on the scaled KPI, would follow the
   simulated data).
3. The posterior is thinned evenly to L = 99 draws and each true value ranked among them (ties broken at random):
   each channel's ROAS (``analysis.roas_draws``, the truth's from its own ``channel_contribution`` the same way),
   each channel's carry-over and returns parameters (effect size included), and the intercept.

Rows (commit, structure, simulation, seed, seconds, divergences, draws passed over, ranks) are stored in
``benchmarks/results/sbc.json`` as each simulation finishes; a rerun skips the (structure, simulation) pairs stored
for the same commit. ``sbc.md`` has, per structure and quantity group, the 20-bin rank histogram and the chi-square
uniformity p-value (pooled over the group's channels and parameters, and per ROAS channel), and a PNG per structure.

Run (hours on 2 cores: in the background): ``.venv/bin/python benchmarks/sbc.py [--sims 100] [--structures
geometric+logistic ...] [--weeks N] [--seed S] [--draws N --tune N] [--report-only]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import time
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT / "sample_data" / "sample_weekly.csv"
CONFIG = ROOT / "sample_data" / "sample_config.yaml"
L = 99  # posterior draws each truth is ranked among: ranks 0..99, 5 per bin of 20 (Talts et al. use L + 1 = 100)
BINS = 20
PRIOR_CHUNK = 200  # prior draws per call; most are passed over (see ABSURD)
MAX_CHUNKS = 25
ABSURD = 100.0  # a simulated KPI whose largest week exceeds this × the design's largest is not a business's KPI
GROUPS = ("roas", "carry-over", "returns", "intercept")
GROUP_TITLES = {"roas": "ROAS", "carry-over": "carry-over", "returns": "returns", "intercept": "intercept"}
BARS = " ▁▂▃▄▅▆▇█"


# ---- ranks, histograms, uniformity --------------------------------------------------------------------------------


def thin(draws: np.ndarray, keep: int = L) -> np.ndarray:
    """``keep`` draws taken evenly along axis 0 (chains stacked), which also cuts their autocorrelation."""
    draws = np.asarray(draws)
    if len(draws) < keep:
        raise ValueError(f"{len(draws)} posterior draws cannot be thinned to {keep}")
    return draws[np.round(np.linspace(0, len(draws) - 1, keep)).astype(int)]


def rank_of(true: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """How many draws lie below the true value, 0..len(draws); ties are broken uniformly at random."""
    draws = np.asarray(draws, dtype=float).reshape(-1)
    below = int(np.sum(draws < true))
    ties = int(np.sum(draws == true))
    return below + int(rng.integers(0, ties + 1))


def rank_histogram(ranks: Iterable[int], draws: int = L, bins: int = BINS) -> np.ndarray:
    """Counts of ranks 0..``draws`` in ``bins`` equal bins (``draws + 1`` a multiple of ``bins`` keeps them equal)."""
    r = np.asarray(list(ranks), dtype=int)
    if r.size and (r.min() < 0 or r.max() > draws):
        raise ValueError(f"ranks must lie in 0..{draws}")
    return np.bincount(r * bins // (draws + 1), minlength=bins)


def uniformity_p(counts: np.ndarray) -> float | None:
    """Chi-square test of equal bin counts (``scipy.stats.chisquare``); None without ranks."""
    from scipy.stats import chisquare

    counts = np.asarray(counts)
    if counts.sum() == 0:
        return None
    return float(chisquare(counts).pvalue)


def group_of(quantity: str) -> str:
    """The group of a ranked quantity: ``roas:<ch>``, ``adstock_<p>:<ch>``, ``saturation_<p>:<ch>``, ``intercept``."""
    name = quantity.split(":", 1)[0]
    if name == "roas":
        return "roas"
    if name.startswith("adstock_"):
        return "carry-over"
    if name.startswith("saturation_"):
        return "returns"
    if name.startswith("intercept"):
        return "intercept"
    raise ValueError(f"no group for {quantity!r}")


# ---- stored rows and resuming -------------------------------------------------------------------------------------


def load_rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def row_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["commit"], row["structure"], int(row["sim"])


def store_row(rows: list[dict[str, Any]], row: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """Replace the row of the same (commit, structure, simulation), keep all others, and save at once."""
    rows = [r for r in rows if row_key(r) != row_key(row)] + [row]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"about": "SBC ranks per simulation; see sbc.md", "rows": rows}, indent=1) + "\n")
    os.replace(tmp, path)
    return rows


def pending(rows: list[dict[str, Any]], commit: str, names: list[str], sims: int) -> list[tuple[str, int]]:
    """The (structure, simulation) pairs still to run: not stored for ``commit``, or stored with an error."""
    done = {(r["structure"], int(r["sim"])) for r in rows if r["commit"] == commit and "error" not in r}
    return [(name, sim) for name in names for sim in range(sims) if (name, sim) not in done]


def sim_seed(seed: int, structure: str, sim: int) -> int:
    """A seed per (base seed, structure, simulation), the same on every rerun."""
    return int(np.random.SeedSequence([seed, zlib.crc32(structure.encode()), sim]).generate_state(1)[0])


def tree_commit() -> str:
    """The commit the rows belong to: the recovery benchmark's (``-dirty-<hash>`` for uncommitted changes)."""
    spec = importlib.util.spec_from_file_location("recovery_benchmark", Path(__file__).with_name("recovery.py"))
    if spec is None or spec.loader is None:
        raise SystemExit("cannot import benchmarks/recovery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tree_commit(ROOT)


# ---- one simulation -----------------------------------------------------------------------------------------------


def acceptable(kpi: np.ndarray, design_max: float) -> bool:
    """A simulated KPI a business could have: positive every week, not ``ABSURD`` times the design's largest."""
    kpi = np.asarray(kpi, dtype=float)
    return bool(np.all(np.isfinite(kpi)) and kpi.min() > 0 and kpi.max() <= ABSURD * design_max)


def load_design(weeks: int | None) -> Any:
    """The sample data as the SBC design: its first ``weeks`` rows, no held-out weeks, no lift tests."""
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    config = dataclasses.replace(load_config(CONFIG), holdout_periods=0, lift_tests=None)
    ds = load_dataset(DATA, config)
    if weeks:
        ds = dataclasses.replace(ds, frame=ds.frame.iloc[:weeks].reset_index(drop=True))
    return ds


class Truths:
    """Prior draws of one structure on the design, built once: its model has the design KPI's scales."""

    def __init__(self, ds: Any, structure: Any) -> None:
        from mmmlib import model

        self.mmm, X, y, _ = model.build(ds, structure)
        # PyMC draws from the prior only in the model's own coordinates (flat ones cannot be drawn); fits sample the
        # same posterior in mmmlib.centring's and mmmlib.whitening's
        self.mmm.centre_intercept = self.mmm.whiten_controls = False
        self.mmm.build_model(X, y)
        self.target_scale = float(np.abs(y.to_numpy()).max())  # pymc-marketing's max scaling of the design KPI
        self.design_max = float(y.max())

    def draw(self, seed: int) -> tuple[Any, np.ndarray, int]:
        """The first acceptable prior draw (one-draw ``prior`` dataset), its KPI, and how many were passed over."""
        import pymc as pm

        passed = 0
        for chunk in range(MAX_CHUNKS):
            with self.mmm.model:
                pp = pm.sample_prior_predictive(draws=PRIOR_CHUNK, random_seed=np.random.default_rng([seed, chunk]))
            kpi = np.asarray(pp["prior_predictive"]["y"].transpose("chain", "draw", "date").values)[0]
            kpi = kpi * self.target_scale
            for k in range(PRIOR_CHUNK):
                if acceptable(kpi[k], self.design_max):
                    return pp["prior"].to_dataset().isel(draw=[k]), kpi[k], passed
                passed += 1
        raise RuntimeError(f"no acceptable prior draw among {passed}")


def ranks_of(
    fitted_idata: Any, truth: Any, target_scale: float, rng: np.random.Generator
) -> tuple[dict[str, int], float]:
    """Rank of each true value among L thinned posterior draws, keyed ``roas:<ch>``, ``<param>:<ch>``, ``intercept``.

    Returns the ranks and the fitted model's target scale (it must be the truth's for the ranks to mean anything).
    """
    from mmmlib import analysis

    post = analysis.Posterior.from_idata(fitted_idata)
    # ROAS is rank-invariant to the KPI's value per unit, so 1 serves for any KPI
    truth_post = dataclasses.replace(post, idata={"prior": truth}, target_scale=target_scale)
    true_roas = analysis.roas_draws(truth_post, 1.0, group="prior")[0]
    draws_roas = thin(analysis.roas_draws(post, 1.0))
    ranks = {f"roas:{ch}": rank_of(true_roas[j], draws_roas[:, j], rng) for j, ch in enumerate(post.channels)}
    names = [
        str(n)
        for n in fitted_idata["posterior"].data_vars
        if str(n).startswith(("adstock_", "saturation_")) or str(n) == "intercept_contribution"
        if str(n) != "saturation_roas"  # the sampled ROAS: ranked above as roas:<ch>, from the contributions
    ]
    for name in names:
        drawn = thin(analysis.stacked(fitted_idata, name))
        true = np.asarray(truth[name].values).reshape(-1)
        if drawn.ndim == 1:
            ranks["intercept" if name == "intercept_contribution" else name] = rank_of(true[0], drawn, rng)
            continue
        channels = [str(c) for c in truth[name]["channel"].values]
        if channels != post.channels:
            raise ValueError(f"{name}: channels {channels} differ from the fit's {post.channels}")
        for j, ch in enumerate(channels):
            ranks[f"{name}:{ch}"] = rank_of(true[j], drawn[:, j], rng)
    return ranks, post.target_scale


def simulate(ds: Any, structure: Any, truths: Truths, sim: int, seed: int, settings: dict, sampler: str) -> dict:
    """One simulation: draw the truth, fit the simulated KPI, rank; the stored row (without commit)."""
    from mmmlib import analysis, model

    start = time.perf_counter()
    truth, kpi, passed = truths.draw(seed)
    frame = ds.frame.copy()
    frame[ds.config.target_column] = kpi
    sim_ds = dataclasses.replace(ds, frame=frame)
    # a fixed number of draws (the sampler's own, not the stopping rule's): every simulation is fitted alike
    rule = model.fixed_rule(settings["draws"], sampler, settings)
    fitted = model.fit_structure(sim_ds, structure, settings, sampler, seed, False, None, truths.target_scale, rule)
    ranks, fit_scale = ranks_of(fitted.idata, truth, truths.target_scale, np.random.default_rng(seed))
    if not np.isclose(fit_scale, truths.target_scale):
        raise RuntimeError(f"the fit's target scale {fit_scale} is not the truth's {truths.target_scale}")
    diag = analysis.diagnostics(fitted.idata)
    return {
        "structure": structure.name,
        "sim": sim,
        "seed": seed,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 1),
        "fit_seconds": round(fitted.fit_seconds, 1),
        "divergences": diag["divergences"],
        "r_hat_max": round(diag["r_hat_max"], 4),
        "ess_bulk_min": round(diag["ess_bulk_min"]),
        "passed_over": passed,
        "draws": L,
        "sampler": {"name": sampler, **settings},
        "weeks": len(ds.frame),
        "load_1min": round(os.getloadavg()[0], 2),
        "ranks": ranks,
    }


# ---- report -------------------------------------------------------------------------------------------------------


def bars(counts: np.ndarray) -> str:
    """Text histogram: the expected count (uniform ranks) sits at half height."""
    expected = max(counts.sum() / len(counts), 1e-12)
    levels = np.clip(np.round(counts / (2 * expected) * (len(BARS) - 1)), 0, len(BARS) - 1).astype(int)
    return "".join(BARS[k] for k in levels)


def fmt_p(p: float | None) -> str:
    return "–" if p is None else f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def pooled(rows: list[dict[str, Any]], group: str) -> list[int]:
    return [r for row in rows for q, r in row["ranks"].items() if group_of(q) == group]


def structure_block(name: str, rows: list[dict[str, Any]], failed: int) -> list[str]:
    ok = [r for r in rows if "error" not in r]
    passed = sum(r["passed_over"] for r in ok)
    divergent = [r["divergences"] for r in ok if r["divergences"]]
    lines = [
        f"## {name}",
        "",
        f"{len(ok)} simulations ({failed} failed); prior draws passed over: {passed} "
        f"(acceptance {len(ok) / max(len(ok) + passed, 1):.1%}); divergences: {sum(divergent)} in {len(divergent)} "
        f"simulations; max R-hat {max((r['r_hat_max'] for r in ok), default=float('nan')):.3f}; median "
        f"{np.median([r['seconds'] for r in ok]) if ok else float('nan'):.0f} s per simulation.",
        "",
        f"| quantities | ranks | histogram ({BINS} bins, ranks 0..{L}) | counts | χ² p |",
        "|---|---|---|---|---|",
    ]
    for group in GROUPS:
        ranks = pooled(ok, group)
        counts = rank_histogram(ranks)
        lines.append(
            f"| {GROUP_TITLES[group]} (pooled) | {len(ranks)} | `{bars(counts)}` | {' '.join(map(str, counts))} "
            f"| {fmt_p(uniformity_p(counts))} |"
        )
    quantities = sorted({q for r in ok for q in r["ranks"] if group_of(q) == "roas"})
    for q in quantities:
        counts = rank_histogram([r["ranks"][q] for r in ok if q in r["ranks"]])
        lines.append(
            f"| ROAS {q.split(':', 1)[1]} | {counts.sum()} | `{bars(counts)}` | {' '.join(map(str, counts))} "
            f"| {fmt_p(uniformity_p(counts))} |"
        )
    return [*lines, ""]


def plot(name: str, rows: list[dict[str, Any]], path: Path) -> bool:
    """Four rank histograms (one per group) with the 99 % band of a uniform histogram's bin counts."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from scipy.stats import binom

    fig, axes = plt.subplots(1, len(GROUPS), figsize=(4 * len(GROUPS), 3), constrained_layout=True)
    for ax, group in zip(axes, GROUPS, strict=True):
        ranks = pooled(rows, group)
        counts = rank_histogram(ranks)
        n = int(counts.sum())
        if n:
            low, high = binom.ppf([0.005, 0.995], n, 1 / BINS)
            ax.axhspan(low, high, color="0.85")
            ax.axhline(n / BINS, color="0.5", lw=1)
        ax.bar(np.arange(BINS), counts, width=0.9, color="#3b6ea5")
        ax.set_title(f"{GROUP_TITLES[group]}: {n} ranks, χ² p {fmt_p(uniformity_p(counts))}", fontsize=9)
        ax.set_xticks([-0.5, BINS - 0.5], ["0", str(L)])
        ax.set_xlabel(f"rank ({(L + 1) // BINS} per bar)")
    fig.suptitle(f"SBC {name}", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def report(rows: list[dict[str, Any]], commit: str, out: Path) -> str:
    """``sbc.md`` (and a PNG per structure) from the rows of ``commit``."""
    mine = [r for r in rows if r["commit"] == commit]
    names = list(dict.fromkeys(r["structure"] for r in mine))
    dates = sorted(r["date"][:10] for r in mine)
    settings = next((r["sampler"] for r in mine if "sampler" in r), {})
    lines = [
        "# Simulation-based calibration",
        "",
        "Talts et al. (2018): parameters and a KPI drawn from each structure's prior on the sample data's design "
        "(dates, spend, controls), the same structure fitted to that KPI, each true value ranked among L = "
        f"{L} evenly thinned posterior draws. Uniform ranks say the posterior is calibrated where the model is right; "
        "a U shape means intervals too narrow, a hump too wide, a slope a bias. χ² p is `scipy.stats.chisquare` on "
        f"the {BINS} bin counts; pooled rows put every channel's and parameter's ranks together, and ranks from the "
        "same simulation are not independent, so a pooled p is only a guide. Prior draws whose KPI is not positive "
        f"every week or exceeds {ABSURD:g} × the design's largest week are passed over (selection on the data does "
        "not bias the ranks, but the check speaks only for such data). How it is run: `benchmarks/sbc.py`.",
        "",
        f"Report of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.platform(terse=True)}, {platform.machine()}, "
        f"{os.cpu_count()} cores; commit `{commit}`; simulations dated "
        f"{(dates[0] + ' to ' + dates[-1]) if dates else 'none yet'}; "
        f"weeks {sorted({r.get('weeks') for r in mine if 'weeks' in r})}; sampler {settings}.",
        "",
    ]
    for name in names:
        own = [r for r in mine if r["structure"] == name]
        lines += structure_block(name, own, sum("error" in r for r in own))
        png = out / f"sbc_{name.replace('+', '_')}.png"
        if plot(name, [r for r in own if "error" not in r], png):
            lines += [f"![SBC {name}]({png.name})", ""]
        errors = sorted({r["error"] for r in own if "error" in r})
        lines += [f"- failed: {e}" for e in errors] + ([""] if errors else [])
    return "\n".join(lines) + "\n"


# ---- command line -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    from mmmlib import model, structures

    auto = structures.candidates(structures.AUTO, structures.AUTO, structures.AUTO)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--structures", nargs="+", default=[s.name for s in auto], help="e.g. geometric+logistic")
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--weeks", type=int, help="keep the design's first N weeks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int)
    parser.add_argument("--tune", type=int)
    parser.add_argument("--sampler", default=model.DEFAULT_SAMPLER, choices=model.SAMPLERS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--commit", help="with --report-only: report this commit's rows (default: this tree's)")
    args = parser.parse_args(argv)

    by_name = {s.name: s for s in auto}
    by_name.update({s.name.removesuffix(f"+{s.baseline}"): s for s in auto})
    unknown = [n for n in args.structures if n not in by_name]
    if unknown:
        parser.error(f"unknown structures {unknown}; choose from {sorted(by_name)}")
    chosen = list(dict.fromkeys(by_name[n] for n in args.structures))
    path = args.out / "sbc.json"
    rows = load_rows(path)
    commit = args.commit or tree_commit()

    if not args.report_only:
        ds = load_design(args.weeks)
        settings = model.sampler_settings("quick", channels=len(ds.channels), tune=args.tune, draws=args.draws)
        todo = pending(rows, commit, [s.name for s in chosen], args.sims)
        print(f"SBC at {commit}: {len(todo)} simulations to run", flush=True)
        truths: dict[str, Truths] = {}
        for name, sim in todo:
            structure = next(s for s in chosen if s.name == name)
            seed = sim_seed(args.seed, name, sim)
            try:
                if name not in truths:
                    truths[name] = Truths(ds, structure)
                row = simulate(ds, structure, truths[name], sim, seed, settings, args.sampler)
            except Exception as exc:  # a failed simulation is recorded and reported, the others go on
                when = datetime.now(UTC).isoformat(timespec="seconds")
                row = {"structure": name, "sim": sim, "seed": seed, "date": when, "error": repr(exc)[:300]}
            rows = store_row(rows, {"commit": commit, **row}, path)
            print(json.dumps({k: v for k, v in row.items() if k not in ("ranks", "sampler")}), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    text = report(rows, commit, args.out)
    (args.out / "sbc.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
