"""The ``mmm`` command (docs/contract.md). Each subcommand is a thin call into the library.

Exit codes: 0 success, 1 input or model not acceptable, 2 usage error or unreadable file.
Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from mmmlib import policy
from mmmlib.errors import InputError, MMMError, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage and exits 2; keep it one sentence
        self.print_usage(sys.stderr)
        raise UsageError(f"{message[0].upper()}{message[1:]}.")


def _cmd_config(args: argparse.Namespace) -> int:
    from mmmlib.config import dump_config
    from mmmlib.data.dataset import propose_config
    from mmmlib.data.reader import read_raw

    raw = read_raw(args.data)
    config, det = propose_config(raw)
    comments = {
        "date_column": "detected: reads as dates",
        "target_column": f"detected KPI ({det.kpi_type})",
        "channel_columns": "detected media spend",
    }
    header = "# Proposed by `mmm config` from " + raw.path.name + "; edit freely.\n"
    header += "".join(f"#   {line}\n" for line in det.describe())
    text = header + dump_config(config, comments)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"Wrote {args.out}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from mmmlib.config import load_config
    from mmmlib.data.dataset import propose_config
    from mmmlib.data.issues import Report
    from mmmlib.data.reader import read_raw
    from mmmlib.data.validate import check

    try:
        raw = read_raw(args.data)
        config = load_config(args.config) if args.config else propose_config(raw)[0]
        report = check(raw, config).report
    except InputError as exc:
        report = Report()
        report.error("unreadable" if "file" in str(exc).lower() else "detection", str(exc))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.lines(limit=200):
            print(line)
        for note in report.notes:
            print(f"note: {note}")
        print(report.summary_line())
    return 0 if report.ok else 1


def _cmd_synth(args: argparse.Namespace) -> int:
    from mmmlib.data.synth import SynthSpec, write

    spec = SynthSpec(
        weeks=args.weeks,
        channels=args.channels,
        seed=args.seed,
        adstock=args.adstock,
        saturation=args.saturation,
        seasonal_spend=args.seasonal_spend,
    )
    try:
        if args.geos:
            from mmmlib.data import synth_geo

            out = synth_geo.write(spec, args.geos, args.out)
        else:
            out = write(spec, args.out)
    except ValueError as exc:
        raise UsageError(f"{str(exc).capitalize()}.") from exc
    geos = f", {args.geos} geos" if args.geos else ""
    print(f"Wrote {out}/data.csv, config.yaml and truth.json ({spec.weeks} weeks, {spec.channels} channels{geos}).")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from mmmlib.runs import list_runs

    runs = list_runs(args.client)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print("No runs yet.")
        return 0
    for r in runs:
        flag = " (accepted)" if r.accepted else ""
        print(f"{r.created_at}  {r.client:<16} {r.run_id:<28} {r.status}{flag}  {r.path}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from mmmlib import roas_priors, seasonality
    from mmmlib.pipeline import fit_run
    from mmmlib.refresh import geo_structure_sentence
    from mmmlib.request import FitRequest

    request = FitRequest(
        args.data,
        args.config,
        args.out,
        mode=args.mode,
        seed=args.seed,
        sampler=args.sampler,
        chains=args.chains,
        tune=args.tune,
        draws=args.draws,
        previous="" if args.fresh_structure else None,
    )
    summary = fit_run(request)
    diag = summary["diagnostics"]
    print(
        f"Fit {summary['status']}: max R-hat {diag['r_hat_max']:.3f}, min ESS {diag['ess_bulk_min']:.0f}, "
        f"{diag['divergences']} divergences, R² {diag['r2']:.2f}, MAPE {diag['mape']:.1%}. Run: {args.out}"
    )
    candidates = (summary.get("model") or {}).get("candidates") or []
    if len(candidates) > 1:
        weights = ", ".join(f"{seasonality.label(c)} {c['weight']:.2f}" for c in candidates)
        score = "time-slice CV" if any("elpd_cv" in c for c in candidates) else "PSIS-LOO"
        print(f"Structures weighed out of sample ({score}, pseudo-BMA+): {weights}.")
        for c in candidates:
            if c.get("excluded"):
                print(f"Left out of the combination: {seasonality.label(c)} ({c['excluded']}).")
    geo_structure = geo_structure_sentence(summary.get("model") or {})
    if geo_structure:
        print(geo_structure[0].upper() + geo_structure[1:])
    for said in (seasonality.sentence(summary.get("model") or {}), roas_priors.sentence(summary.get("model") or {})):
        if said:
            print(said)
    unidentified = [c["label"] for c in summary["channels"] if c.get("identified") is False]
    if unidentified:
        print(f"Not identified by this data (budgets held, lift tests advised): {', '.join(unidentified)}.")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from mmmlib.pipeline import import_run
    from mmmlib.request import ImportRequest

    request = ImportRequest(
        args.kind,
        args.model,
        args.out,
        client=args.client,
        kpi_type=args.kpi_type,
        revenue_per_kpi=args.revenue_per_kpi,
    )
    summary = import_run(request)
    diag = summary["diagnostics"]
    print(
        f"Imported a {summary['source']} {summary['source_version']} model, {summary['status']}: "
        f"max R-hat {diag['r_hat_max']:.3f}, min ESS {diag['ess_bulk_min']:.0f}, {diag['divergences']} divergences, "
        f"R² {diag['r2']:.2f}. Run: {args.out}"
    )
    for reason in summary["status_reasons"]:
        print(f"Warning: {reason}.")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


def _hold_unidentified(run_dir: str, channels: list[str], bounds: list[str]) -> tuple[list[str], list[str]]:
    """The user's bounds plus ``CH=fixed`` for each channel the run's summary marks not identified and the user
    did not bound: optimize and scenarios never move money on a return the data cannot tell unless asked to. A
    by-geo allocation's ``GEO:CHANNEL`` lines are held where the channel is not identified nationally or in that
    geo."""
    from mmmlib.identification import unidentified, unidentified_in_geos
    from mmmlib.optimize import GEO_SEP, hold_unidentified
    from mmmlib.runs import load_summary

    summary = load_summary(run_dir)
    held = unidentified(summary)
    in_geo = {f"{geo}{GEO_SEP}{channel}" for geo, channel in unidentified_in_geos(summary)}
    held += [c for c in channels if c.partition(GEO_SEP)[2] in held or c in in_geo]
    return hold_unidentified(channels, held, bounds)


def _held_line(held: list[str]) -> str:
    return (
        f"Held at today's spend, not identified by this data (run a lift test; --bounds {held[0]}=MIN:MAX moves it): "
        f"{', '.join(held)}."
    )


def _holding(held: list[str], run: Callable[[], dict]) -> dict:
    """``run()``, with an infeasible budget's sentence saying which channels the hold fixed."""
    try:
        return run()
    except InputError as exc:
        if not held:
            raise
        raise InputError(
            f"{str(exc).rstrip('.')}; {', '.join(held)} held at today's spend because the data do not identify "
            "them (move them with --bounds CH=MIN:MAX)."
        ) from exc


def _cmd_optimize(args: argparse.Namespace) -> int:
    from mmmlib.optimize import allocate, load_curves
    from mmmlib.wording import interval_label

    curves = load_curves(args.run_dir)
    if args.by_geo:
        curves = curves.by_geo()
    bounds, held = _hold_unidentified(args.run_dir, curves.channels, args.bounds)
    result = _holding(held, lambda: allocate(curves, args.budget, bounds).to_dict())
    result["held"] = held
    if args.out:
        _export_allocation(result, Path(args.out))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Budget per period: {result['budget']:,.2f}")
    if held:
        print(_held_line(held))
    label = interval_label(result)
    print(f"{'channel':<24}{'current':>14}{'optimal':>14}{'change':>12}  expected contribution ({label})")
    for ch in result["channels"]:
        e = ch["expected_contribution"]
        print(
            f"{ch['name']:<24}{ch['current_spend']:>14,.2f}{ch['optimal_spend']:>14,.2f}{ch['change']:>+12,.2f}"
            f"  {e['mean']:,.0f} [{e['hdi_low']:,.0f}, {e['hdi_high']:,.0f}]"
        )
    for key, name in (
        ("current_total_contribution", "current split"),
        ("expected_total_contribution", "optimal split"),
        ("expected_gain", "gain"),
    ):
        i = result[key]
        print(f"{name:<16}{i['mean']:>14,.0f} per period [{label} {i['hdi_low']:,.0f}, {i['hdi_high']:,.0f}]")
    return 0


def _export_allocation(result: dict, path: Path) -> None:
    """An allocation as JSON, CSV (a row per channel, formulas neutralised) or TXT, by the file's extension."""
    import io

    from mmmlib.csvsafe import csv_text
    from mmmlib.wording import interval_label

    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(result, indent=2) + "\n"
    elif suffix in (".csv", ".txt"):
        buf = io.StringIO()
        fields = ["name", "current_spend", "optimal_spend", "change", "min_spend", "max_spend"]
        extra = [f"expected_contribution_{k}" for k in ("mean", "hdi_low", "hdi_high")] + ["held_not_identified"]
        held = result.get("held", [])
        if suffix == ".csv":
            rows = [
                [ch[f] for f in fields]
                + [ch["expected_contribution"][k] for k in ("mean", "hdi_low", "hdi_high")]
                + [ch["name"] in held]
                for ch in result["channels"]
            ]
            buf.write(csv_text([fields + extra, *rows]))
        else:
            buf.write(f"Budget per period: {result['budget']:,.2f}\n")
            if held:
                buf.write(_held_line(held) + "\n")
            for ch in result["channels"]:
                e = ch["expected_contribution"]
                buf.write(
                    f"{ch['name']}: {ch['current_spend']:,.2f} -> {ch['optimal_spend']:,.2f} "
                    f"({ch['change']:+,.2f}); expected {e['mean']:,.0f} [{e['hdi_low']:,.0f}, {e['hdi_high']:,.0f}]\n"
                )
            g = result["expected_gain"]
            buf.write(
                f"Expected gain per period: {g['mean']:,.0f} [{interval_label(result)} {g['hdi_low']:,.0f}, "
                f"{g['hdi_high']:,.0f}]\n"
            )
        text = buf.getvalue()
    else:
        raise UsageError(f"--out {path} must end in .json, .csv or .txt.")
    path.write_text(text, encoding="utf-8")


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from mmmlib.optimize import frontier, largest_budget_with_marginal, load_curves
    from mmmlib.runs import load_summary
    from mmmlib.wording import interval_label

    curves = load_curves(args.run_dir)
    threshold = args.min_mroas if args.min_mroas is not None else load_summary(args.run_dir).get("breakeven_roas", 1.0)
    bounds, held = _hold_unidentified(args.run_dir, curves.channels, args.bounds)
    result = _holding(
        held,
        lambda: {
            "current_budget": float(curves.current.sum()),
            "frontier": frontier(curves, args.low, args.high, args.steps, bounds),
            "largest_budget_at_min_mroas": largest_budget_with_marginal(curves, threshold, bounds),
            "held": held,
            "hdi_prob": curves.hdi_prob,
        },
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Today's budget per period: {result['current_budget']:,.2f}")
    if held:
        print(_held_line(held))
    header = f"expected contribution ({interval_label(result)})"
    print(f"{'change':>8}{'budget':>14}  {header:<40}{'marginal ROAS':>14}")
    for p in result["frontier"]:
        e = p["expected_contribution"]
        print(
            f"{p['change_pct']:>+7.0f}%{p['budget']:>14,.0f}  {e['mean']:>12,.0f} [{e['hdi_low']:,.0f}, "
            f"{e['hdi_high']:,.0f}]".ljust(56)
            + f"{p['marginal_roas']:>14.2f}"
        )
    big = result["largest_budget_at_min_mroas"]
    if big["budget"] is None:
        print(f"No budget keeps marginal ROAS at or above {threshold:.2f}: {big['reason']}.")
    else:
        print(f"Largest budget per period with marginal ROAS ≥ {threshold:.2f}: {big['budget']:,.0f}.")
    return 0


def _cmd_forecast(args: argparse.Namespace) -> int:
    from mmmlib.forecast import constant_plan, forecast, load_forecaster
    from mmmlib.wording import span

    plans: list = list(args.plan or [])
    if args.spend or not plans:
        fc = load_forecaster(args.run_dir).geo(args.geo)
        spend = {}
        for item in args.spend or []:
            name, _, value = item.partition("=")
            try:
                spend[name] = float(value)
            except ValueError as exc:
                raise UsageError(f"--spend {item!r} must be CHANNEL=AMOUNT.") from exc
        plans.append(constant_plan(fc, spend, args.periods))
    if len(plans) > 2:
        raise UsageError("Give at most two plans to compare.")
    names = [Path(p).stem if isinstance(p, str) else "spend" for p in plans]
    if len(set(names)) < len(names):
        names = [f"plan {i + 1}" for i in range(len(plans))]
    result = forecast(args.run_dir, plans, names, geo=args.geo)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if result.get("media_only"):
        print("Media contribution only: this model's baseline (Meridian's knots) cannot be extended past its data.")
    for name, r in result["plans"].items():
        t = r["total_kpi"]
        print(
            f"{name}: {r['periods']} periods, spend {r['total_spend']:,.0f} → expected KPI {t['mean']:,.0f} "
            f"({span(t, '{:,.0f}', result)})"
        )
    if "difference" in result:
        d = result["difference"]["total_kpi"]
        print(f"{result['difference']['of']}: {d['mean']:+,.0f} ({span(d, '{:+,.0f}', result, ' to ')})")
    return 0


def _cmd_schedule(args: argparse.Namespace) -> int:
    import logging

    from mmmlib.schedule import load_schedules, run_due, serve

    if args.action == "serve":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        serve(args.file, interval=args.interval)
        return 0
    if not args.once:
        raise UsageError("Use `mmm schedule run --once` (or `mmm schedule serve` to keep running).")
    from datetime import datetime

    now = datetime.fromisoformat(args.now) if args.now else None
    results = run_due(load_schedules(args.file), now=now)
    print(json.dumps(results, indent=2) if args.json else _outcome_lines(results))
    return 1 if any(r["status"] == "failed" for r in results) else 0


def _outcome_lines(results: list[dict]) -> str:
    if not results:
        return "Nothing is due."
    lines = []
    for r in results:
        extra = f" — {r['error']}" if r.get("error") else ""
        published = f"; report published to {r['published']}" if r.get("published") else ""
        lines.append(f"{r['schedule']}: {r['status']}{extra} ({r.get('run', '')}){published}")
    return "\n".join(lines)


def _cmd_batch(args: argparse.Namespace) -> int:
    from mmmlib.executors import executor_from_env
    from mmmlib.schedule import load_schedules, run_batch

    results = run_batch(load_schedules(args.file), executor_from_env(args.dask, args.workers, args.dask_insecure))
    print(json.dumps(results, indent=2) if args.json else _outcome_lines(results))
    return 1 if any(r["status"] == "failed" for r in results) else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mmmlib.reports import write_report

    out = write_report(args.run_dir, fmt=args.format, out=args.out)
    print(f"Wrote {out}.")
    return 0


def _cmd_accept(args: argparse.Namespace) -> int:
    import getpass

    from mmmlib.runs import accept_run

    accept_run(Path(args.run_dir), args.by or getpass.getuser())
    print(f"Accepted {args.run_dir}: it is now shown to executives as the latest good run.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmm", description="Marketing Mix Modeling workbench.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("config", help="propose a config.yaml by detecting the columns of a data file")
    p.add_argument("data")
    p.add_argument("--out")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("validate", help="check a data file and list every problem with its row and column")
    p.add_argument("data")
    p.add_argument("--config")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("synth", help="write synthetic data with known truth")
    p.add_argument("--out", required=True)
    p.add_argument("--weeks", type=int, default=156)
    p.add_argument("--channels", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--adstock", choices=["geometric", "weibull"], default="geometric")
    p.add_argument("--saturation", choices=["logistic", "hill"], default="logistic")
    p.add_argument("--seasonal-spend", action="store_true")
    p.add_argument("--geos", type=int, default=0, help="per-geo data for a hierarchical model (rows per week and geo)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("fit", help="fit the model with papermill into a run directory")
    p.add_argument("data")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", choices=["nutpie", "pymc", "numpyro"], default=None)
    for name, what in (("chains", "chains"), ("tune", "tuning steps per chain"), ("draws", "kept draws per chain")):
        p.add_argument(f"--{name}", type=_positive_int, metavar="N", help=f"override the mode's {what}")
    p.add_argument(
        "--fresh-structure",
        action="store_true",
        help="geo models: choose the structure anew, not keep the previous run's in --out's folder",
    )
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("import", help="turn a model fitted with Meridian or PyMC-Marketing into a run (no refit)")
    p.add_argument("kind", choices=["meridian", "pymc-marketing"])
    p.add_argument("model", help="the saved model: Meridian's .binpb/.txtpb/.pkl, PyMC-Marketing's MMM.save .nc")
    p.add_argument("--out", required=True)
    p.add_argument("--client", default=None)
    p.add_argument("--kpi-type", choices=["revenue", "count"], default=None, help="what the KPI is (default revenue)")
    p.add_argument("--revenue-per-kpi", type=float, default=None, help="for a count KPI: revenue per unit")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("optimize", help="best split of a budget per period across channels")
    p.add_argument("run_dir")
    p.add_argument("--budget", type=float, required=True, help="total spend per period (per week for weekly data)")
    p.add_argument(
        "--bounds",
        nargs="*",
        default=[],
        metavar="CHANNEL=MIN:MAX",
        help="spend per period (tv=1000:5000), percent of current (tv=-20%%:+30%%) or tv=fixed; channels the data "
        "do not identify are held at today's spend unless bounded here",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="also write the allocation to a .json, .csv or .txt file")
    p.add_argument(
        "--by-geo",
        action="store_true",
        help="a geo run: split the budget over every geo × channel (lines GEO:CHANNEL, bounds too)",
    )
    p.set_defaults(func=_cmd_optimize)

    p = sub.add_parser(
        "scenarios", help="efficiency frontier over total budgets, and the largest budget worth spending"
    )
    p.add_argument("run_dir")
    p.add_argument(
        "--low",
        type=float,
        default=policy.SCENARIO_LOW_PCT,
        help="smallest budget change in %% of today (default %(default)+g)",
    )
    p.add_argument(
        "--high",
        type=float,
        default=policy.SCENARIO_HIGH_PCT,
        help="largest budget change in %% of today (default %(default)+g)",
    )
    p.add_argument("--steps", type=int, default=policy.SCENARIO_STEPS)
    p.add_argument("--min-mroas", type=float, help="marginal ROAS floor (default: break-even, 1 / margin)")
    p.add_argument(
        "--bounds",
        nargs="*",
        default=[],
        metavar="CHANNEL=MIN:MAX",
        help="as for optimize; channels the data do not identify are held at today's spend unless bounded here",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_scenarios)

    p = sub.add_parser("forecast", help="predict the KPI for planned spend, carry-over included; compare two plans")
    p.add_argument("run_dir")
    p.add_argument("--plan", action="append", help="CSV: one row per future period, a column per channel")
    p.add_argument(
        "--spend",
        nargs="*",
        metavar="CHANNEL=AMOUNT",
        help=f"constant spend per period (channels not named keep their average over the last {policy.RECENT_WEEKS} "
        "weeks)",
    )
    p.add_argument("--periods", type=int, default=13)
    p.add_argument("--geo", help="one geo of a geo run: the plan is that geo's spend (default: the whole run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_forecast)

    p = sub.add_parser("report", help="write a report of a run")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["html", "pdf", "txt", "csv", "json"], default="html")
    p.add_argument("--out")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("accept", help="mark a run with status warning as reviewed, so executives see it")
    p.add_argument("run_dir")
    p.add_argument("--by", help="who accepted it (default: the current user)")
    p.set_defaults(func=_cmd_accept)

    p = sub.add_parser("schedule", help="scheduled refits: run what is due once, or keep serving")
    p.add_argument("action", choices=["run", "serve"])
    p.add_argument("--file", default="schedules.yaml", help="the schedules YAML (default: schedules.yaml)")
    p.add_argument("--once", action="store_true", help="with run: run whatever is due now, then exit")
    p.add_argument("--now", help="pretend it is this UTC time (ISO 8601), for testing and back-fills")
    p.add_argument("--interval", type=float, default=60.0, help="with serve: seconds between checks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_schedule)

    p = sub.add_parser("batch", help="fit every schedule in a file now, on local processes or a Dask cluster")
    p.add_argument("file")
    p.add_argument("--dask", help="Dask scheduler address (default: $MMM_DASK_SCHEDULER, else local processes)")
    p.add_argument(
        "--dask-insecure",
        action="store_true",
        help="allow a scheduler off this machine without tls:// (Dask runs the pickles it is sent; trusted networks)",
    )
    p.add_argument("--workers", type=int, help="local processes (default: half the CPUs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("runs", help="list the runs in the store, newest first")
    p.add_argument("--client")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_runs)
    return parser


def _where(exc: BaseException) -> str:
    """`` (runs.py:42)``: the innermost frame of ``exc``'s traceback, where it was raised (not where it was caught).

    When that frame is outside mmmlib (pandas, numpy), the innermost mmmlib frame below the command line is named
    too: `` (base.py:3812 via runs.py:42)``.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    package = os.path.dirname(os.path.abspath(__file__))

    def ours(frame: traceback.FrameSummary) -> bool:
        path = os.path.abspath(frame.filename)
        return path.startswith(package + os.sep) and path != os.path.abspath(__file__)

    def name(frame: traceback.FrameSummary) -> str:
        return f"{os.path.basename(frame.filename)}:{frame.lineno}"

    inner = frames[-1]
    via = next((f for f in reversed(frames) if ours(f)), None) if not ours(inner) else None
    return f" ({name(inner)}{f' via {name(via)}' if via else ''})"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except MMMError as exc:
        print(f"mmm: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mmm: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug or an environment problem: still one sentence, never a traceback
        print(f"mmm: unexpected error{_where(exc)}: {type(exc).__name__}: {exc}. Please report it.", file=sys.stderr)
        return 1
