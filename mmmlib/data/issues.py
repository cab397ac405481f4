"""A validation problem, located at a spreadsheet row and column (docs/contract.md's ISSUE)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mmmlib.data.reader import spreadsheet_row

MAX_LISTED = 20  # rows listed one by one per rule and column; a file wrong in every row still gives a short report


@dataclass(frozen=True)
class Issue:
    """One problem: ``row`` is the spreadsheet row (header = 1), ``None`` when it is about a whole column or file."""

    code: str
    message: str
    row: int | None = None
    column: str | None = None

    def to_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}

    def sentence(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"Row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class Report:
    """Everything wrong with a file, errors and warnings, found in one pass."""

    rows: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unlisted: dict[str, int] = field(default_factory=lambda: {"error": 0, "warning": 0})  # counted, not spelled out

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_count(self) -> int:
        """Errors found, including the rows counted in a "… more rows" issue."""
        return len(self.errors) + self.unlisted["error"]

    @property
    def warning_count(self) -> int:
        return len(self.warnings) + self.unlisted["warning"]

    def error(self, code: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.errors.append(Issue(code, message, row, column))

    def warn(self, code: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.warnings.append(Issue(code, message, row, column))

    def per_row(
        self,
        code: str,
        positions: Sequence[int],
        column: str,
        message: Callable[[int], str],
        warning: bool = False,
    ) -> None:
        """An issue for each data row at ``positions`` (0-based, ascending); ``message(i)`` says what is wrong in row i.

        The first :data:`MAX_LISTED` are spelled out; the rest become one issue at the first unlisted row that
        counts them and names the last, so the report stays short and its cost does not grow with the rows.
        """
        add = self.warn if warning else self.error
        for i in positions[:MAX_LISTED]:
            add(code, message(int(i)), row=spreadsheet_row(i), column=column)
        rest = len(positions) - MAX_LISTED
        if rest > 0:
            last = spreadsheet_row(positions[-1])
            more = "this row has" if rest == 1 else f"this row and {rest - 1:,} more up to row {last} have"
            add(
                code,
                f"{more} the same problem ({code}); only the first {MAX_LISTED} rows are spelled out.",
                row=spreadsheet_row(positions[MAX_LISTED]),
                column=column,
            )
            self.unlisted["warning" if warning else "error"] += rest - 1

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }

    def lines(self, limit: int | None = None) -> list[str]:
        """Human lines: errors first, then warnings; ``limit`` caps each list (``--json`` has all)."""
        out: list[str] = []
        for label, items in (("error", self.errors), ("warning", self.warnings)):
            shown = items if limit is None else items[:limit]
            out += [f"{label}: {i.sentence()}" for i in shown]
            if len(items) > len(shown):
                out.append(f"… and {len(items) - len(shown)} more {label}s (use --json to see every one)")
        return out

    def summary_line(self) -> str:
        verdict = "usable" if self.ok else "not usable"
        return f"{self.rows} data rows: {verdict}, {self.error_count} errors, {self.warning_count} warnings."
