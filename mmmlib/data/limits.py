"""Size limits on data files, read from the environment, each refused with one sentence that says how to change it.

A data file comes from whoever uploaded it, and without limits one file could hold the machine's memory or a
core for minutes (issue 11: a 1.3 MB workbook that unpacks to 311 MB, 50,000 columns, 200 MB of rows). The
defaults let 10 years of daily data × 50 channels × 100 geos through (365,000 rows, about 130 MB as CSV); the
reader checks each limit as soon as the number is known, before the expensive step it guards.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from mmmlib.errors import InputError, UsageError

MB = 1_000_000


@dataclass(frozen=True)
class Limit:
    """One limit: its environment variable, its default, and what to do when a file is above it."""

    env: str
    default: float
    what: str  # "MB" or a noun like "data rows"
    advice: str

    def value(self) -> float:
        """The limit in force: the environment variable when set (a positive number), else the default."""
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            value = 0.0
        if self.what != "MB" and math.isfinite(value):
            value = float(int(value))  # rows and columns are whole
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{self.env} must be a positive number, not {text!r}.")
        return value

    def shown(self) -> str:
        """The limit as a reader sees it: "200 MB", "1,000,000 data rows"."""
        limit = self.value()
        return f"{limit:g} MB" if self.what == "MB" else f"{int(limit):,} {self.what}"

    def refuse(self, subject: str, amount: str | None = None) -> InputError:
        """``subject`` (e.g. "File x.csv has") ``amount`` over this limit, with the advice and the variable to raise.

        Without ``amount`` the reader stopped at the first unit too many, so the sentence says "more than" the limit.
        """
        over = f"{amount}, above the limit of {self.shown()}" if amount else f"more than {self.shown()}, the limit"
        return InputError(f"{subject} {over}; {self.advice}, or raise {self.env}.")


FILE_MB = Limit("MMM_MAX_FILE_MB", 200, "MB", "aggregate it to fewer rows or keep only the columns the model uses")
ROWS = Limit("MMM_MAX_ROWS", 1_000_000, "data rows", "aggregate it (one row per week, or per geo and week)")
COLUMNS = Limit("MMM_MAX_COLUMNS", 500, "columns", "keep only the date, KPI, spend and control columns")
XLSX_EXPANDED_MB = Limit(
    "MMM_MAX_XLSX_EXPANDED_MB", 50, "MB", "save the sheet as CSV, which is read faster and with less memory"
)


def megabytes(size: int) -> str:
    """``size`` bytes in MB as a sentence shows it: "200.8", "0.003" (never "0.0" for a small file)."""
    return f"{size / MB:,.1f}" if size >= MB // 10 else f"{size / MB:.2g}"


def max_bytes() -> int:
    """The largest data file, in bytes."""
    return int(FILE_MB.value() * MB)


def check_file_size(name: str, size: int) -> None:
    """Refuse a file of ``size`` bytes above MMM_MAX_FILE_MB (before anything reads it)."""
    if size > max_bytes():
        raise FILE_MB.refuse(f"File {name} is", f"{megabytes(size)} MB")


def check_rows(name: str, rows: int, stopped: bool = False) -> None:
    """Refuse more data rows than MMM_MAX_ROWS; ``stopped`` when reading stopped at the first row too many."""
    if rows > ROWS.value():
        raise ROWS.refuse(f"File {name} has", None if stopped else f"{rows:,} data rows")


def check_columns(name: str, columns: int, line: int | None = None) -> None:
    """Refuse more columns than MMM_MAX_COLUMNS; ``line`` names the CSV line that has them."""
    if columns > COLUMNS.value():
        raise COLUMNS.refuse(f"File {name} has", f"{columns:,} columns" + (f" on line {line}" if line else ""))


def check_xlsx_expanded(name: str, size: int) -> None:
    """Refuse a workbook whose parts unpack to more than MMM_MAX_XLSX_EXPANDED_MB (before openpyxl opens it)."""
    if size > XLSX_EXPANDED_MB.value() * MB:
        raise XLSX_EXPANDED_MB.refuse(f"Workbook {name} unpacks to", f"{megabytes(size)} MB")
