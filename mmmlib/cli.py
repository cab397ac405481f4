"""The ``mmm`` command (CONTRACT.md). Each subcommand is a thin call into the library.

Exit codes: 0 success, 1 input or model not acceptable, 2 usage error or unreadable file.
Errors are one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
        out = write(spec, args.out)
    except ValueError as exc:
        raise UsageError(f"{str(exc).capitalize()}.") from exc
    print(f"Wrote {out}/data.csv, config.yaml and truth.json ({spec.weeks} weeks, {spec.channels} channels).")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from mmmlib.store import list_runs

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
    from mmmlib.pipeline import fit_run

    summary = fit_run(args.data, args.config, args.out, mode=args.mode, seed=args.seed, sampler=args.sampler)
    diag = summary["diagnostics"]
    print(
        f"Fit {summary['status']}: max R-hat {diag['r_hat_max']:.3f}, min ESS {diag['ess_bulk_min']:.0f}, "
        f"{diag['divergences']} divergences, R² {diag['r2']:.2f}, MAPE {diag['mape']:.1%}. Run: {args.out}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mmmlib.reports import write_report

    out = write_report(args.run_dir, fmt=args.format, out=args.out)
    print(f"Wrote {out}.")
    return 0


def _cmd_accept(args: argparse.Namespace) -> int:
    import getpass

    from mmmlib.store import accept_run

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
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("fit", help="fit the model with papermill into a run directory")
    p.add_argument("data")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", choices=["nutpie", "pymc", "numpyro"], default=None)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("report", help="write a report of a run")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["html", "txt", "csv", "json"], default="html")
    p.add_argument("--out")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("accept", help="mark a run with status warning as reviewed, so executives see it")
    p.add_argument("run_dir")
    p.add_argument("--by", help="who accepted it (default: the current user)")
    p.set_defaults(func=_cmd_accept)

    p = sub.add_parser("runs", help="list the runs in the store, newest first")
    p.add_argument("--client")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_runs)
    return parser


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
