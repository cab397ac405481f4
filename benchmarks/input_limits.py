"""Benchmark: `mmm validate` on the hostile inputs of issue 11, and on the largest file the limits must let through.

Each case is a whole `mmm validate` process on a file generated in a temporary folder (deleted afterwards):
its wall-clock seconds, its peak resident memory (``os.wait4``'s ``ru_maxrss``), its exit code and the first
line it printed, so a reader sees whether it was refused (and with which sentence) or validated, and how fast.
Timings are measurements, never assertions.

Run: `.venv/bin/python benchmarks/input_limits.py [--cases NAME,...] [--timeout S] [--out FILE.md]`.
Prefix `PYTHONPATH=OTHER_CHECKOUT` to measure another version of mmmlib (the "before" column).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

CONFIG = """date_column: week
target_column: sales
channel_columns: [{channels}]
geo_column: {geo}
aggregate_geos: {aggregate}
"""


@dataclass
class Case:
    """A file to build (and its config, if `mmm validate` gets one), what the row says about it, limits to set."""

    name: str
    what: str
    build: Callable[[Path], tuple[Path, Path | None]]
    env: dict[str, str] = field(default_factory=dict)


def _config(folder: Path, channels: list[str], geo: str | None = None) -> Path:
    path = folder / "config.yaml"
    path.write_text(
        CONFIG.format(channels=", ".join(channels), geo=geo or "null", aggregate=str(geo is not None).lower())
    )
    return path


def _repeated_dates_block(rows: int, weeks: int = 156) -> bytes:
    """``rows`` lines of week, sales, tv, search whose weeks cycle through ``weeks`` dates (every date repeated)."""
    rng = np.random.default_rng(0)
    dates = pd.date_range("2022-01-03", periods=weeks, freq="7D").strftime("%Y-%m-%d").to_numpy()
    frame = pd.DataFrame(
        {
            "week": dates[np.arange(rows) % weeks],
            "sales": rng.integers(10_000, 99_999, rows),
            "tv": rng.integers(0, 9_999, rows),
            "search": rng.integers(0, 9_999, rows),
        }
    )
    return frame.to_csv(index=False, header=False).encode()


def repeated_dates(folder: Path, rows: int = 300_000) -> tuple[Path, Path | None]:
    path = folder / "repeated_dates.csv"
    path.write_bytes(b"week,sales,tv,search\n" + _repeated_dates_block(rows))
    return path, _config(folder, ["tv", "search"])


def csv_200mb(folder: Path, megabytes: int = 200) -> tuple[Path, Path | None]:
    """The repeated-dates file grown to ``megabytes`` by writing the same block again (7.5 M rows)."""
    path = folder / "big.csv"
    block = _repeated_dates_block(100_000)
    with open(path, "wb") as out:
        out.write(b"week,sales,tv,search\n")
        while out.tell() < megabytes * 1_000_000:
            out.write(block)
    return path, _config(folder, ["tv", "search"])


def wide(folder: Path, columns: int = 50_000, rows: int = 60) -> tuple[Path, Path | None]:
    """60 weeks × 50,000 spend-named columns, validated without a config (detection runs on every column)."""
    rng = np.random.default_rng(1)
    path = folder / "wide.csv"
    header = "week,sales," + ",".join(f"ch{i}_spend" for i in range(columns))
    dates = pd.date_range("2022-01-03", periods=rows, freq="7D").strftime("%Y-%m-%d")
    lines = [header]
    for day in dates:
        values = rng.integers(0, 999, columns + 1).astype(str)
        lines.append(f"{day}," + ",".join(values))
    path.write_text("\n".join(lines) + "\n")
    return path, None


def xlsx_bomb(folder: Path, expanded_mb: int = 311) -> tuple[Path, Path | None]:
    """A valid workbook whose one sheet is ``expanded_mb`` MB of identical rows: a small file that unpacks hugely."""
    path = folder / "bomb.xlsx"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="data" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'
        ),
    }
    row = '<row><c t="inlineStr"><is><t>2024-01-01</t></is></c><c><v>100</v></c><c><v>5</v></c><c><v>7</v></c></row>'
    head = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row><c t="inlineStr"><is><t>week</t></is></c><c t="inlineStr"><is><t>sales</t></is></c>'
        '<c t="inlineStr"><is><t>tv</t></is></c><c t="inlineStr"><is><t>search</t></is></c></row>'
    )
    repeats = expanded_mb * 1_000_000 // len(row)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as book:
        for name, text in parts.items():
            book.writestr(name, text)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            chunk = (row * 10_000).encode()
            for _ in range(repeats // 10_000):
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")
    return path, _config(folder, ["tv", "search"])


def largest_allowed(folder: Path, days: int = 3650, channels: int = 50, geos: int = 100) -> tuple[Path, Path | None]:
    """10 years of daily data × 50 channels × 100 geos (365,000 rows): what the default limits must let through."""
    rng = np.random.default_rng(2)
    path = folder / "geo_daily.csv"
    names = [f"ch{i:02d}_spend" for i in range(channels)]
    dates = pd.date_range("2015-01-01", periods=days, freq="D").strftime("%Y-%m-%d")
    with open(path, "w") as out:
        out.write(",".join(["week", "geo", "sales", *names]) + "\n")
        for g in range(geos):
            block = pd.DataFrame({"week": dates, "geo": f"geo{g:03d}", "sales": rng.integers(1_000, 99_999, days)})
            spend = rng.integers(0, 9_999, (days, channels)) * (rng.random((days, channels)) < 0.8)
            block = pd.concat([block, pd.DataFrame(spend, columns=names)], axis=1)
            block.to_csv(out, index=False, header=False)
    return path, _config(folder, names, geo="geo")


CASES = [
    Case("repeated_dates", "300,000 rows, 156 weekly dates each repeated ~1,900 times (8 MB CSV)", repeated_dates),
    Case("wide", "60 rows × 50,000 columns, no config (detection on every column)", wide),
    Case("xlsx_bomb", "a small .xlsx whose sheet unpacks to 311 MB", xlsx_bomb),
    Case("csv_200mb", "200 MB CSV, 7.5 million rows of repeated dates", csv_200mb),
    Case(
        "csv_200mb_rows",
        "the same 200 MB CSV with MMM_MAX_FILE_MB=300, so the row limit stops it",
        csv_200mb,
        {"MMM_MAX_FILE_MB": "300"},
    ),
    Case("largest_allowed", "10 years daily × 50 channels × 100 geos (365,000 rows), aggregate_geos", largest_allowed),
]


def measure(data: Path, config: Path | None, timeout: float, env: dict[str, str]) -> dict:
    """Run `mmm validate` once; seconds, peak RSS of that process and what it printed first."""
    args = [sys.executable, "-m", "mmmlib", "validate", str(data)] + (["--config", str(config)] if config else [])
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
    killed = seconds > timeout
    return {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "exit": "killed" if killed else proc.returncode,
        "first": lines[0] if lines else "",
        "last": lines[-1] if lines else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(c.name for c in CASES))
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, help="write the results table (markdown) here")
    parser.add_argument("--append", action="store_true", help="add the table to --out instead of replacing it")
    parser.add_argument("--title", default="", help="what this run measured, e.g. which version")
    args = parser.parse_args()
    wanted = args.cases.split(",")
    rows = [
        f"`mmm validate` on hostile inputs{args.title} ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}; whole process, limits at their defaults unless set in the environment)",
        "",
        "| case | file MB | seconds | peak RSS MB | exit | what it said |",
        "|---|---|---|---|---|---|",
    ]
    for case in (c for c in CASES if c.name in wanted):
        with tempfile.TemporaryDirectory(prefix="mmm-limits-") as tmp:
            data, config = case.build(Path(tmp))
            size = data.stat().st_size / 1e6
            result = measure(data, config, args.timeout, case.env)
        said = result["first"] if result["first"] == result["last"] else f"{result['first']} … {result['last']}"
        said = said.replace("|", "/")[:400]
        rows.append(
            f"| {case.what} | {size:.1f} | {result['seconds']:.1f} | {result['peak_mb']:.0f} | "
            f"{result['exit']} | {said} |"
        )
        print(rows[-1], flush=True)
    if args.out:
        text = "\n".join(rows) + "\n"
        if args.append and args.out.exists():
            text = args.out.read_text() + "\n" + text
        args.out.write_text(text)


if __name__ == "__main__":
    main()
