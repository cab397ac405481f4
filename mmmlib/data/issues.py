"""A validation problem, located at a spreadsheet row and column (CONTRACT.md's ISSUE)."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, code: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.errors.append(Issue(code, message, row, column))

    def warn(self, code: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.warnings.append(Issue(code, message, row, column))

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
        return f"{self.rows} data rows: {verdict}, {len(self.errors)} errors, {len(self.warnings)} warnings."
