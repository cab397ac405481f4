"""Read a table from disk exactly as the user wrote it: every cell a string, nothing converted.

Keeping raw text lets validation point at the spreadsheet cell that is wrong (row 1 is the
header) instead of silently coercing it. CSV delimiter and encoding are sniffed; ``.xlsx``
and ``.parquet`` are read through pandas and turned into the same raw form.
"""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmmlib.errors import InputError, UsageError

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawTable:
    """Cells as text, the header as written, and how the file was read."""

    frame: pd.DataFrame  # object dtype, "" for empty cells; index 0 is spreadsheet row 2
    path: Path
    delimiter: str | None
    encoding: str | None

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)


def spreadsheet_row(index: int) -> int:
    """Row number a spreadsheet shows for data row ``index`` (header is row 1)."""
    return int(index) + 2


def read_raw(path: str | Path) -> RawTable:
    """Read CSV/TSV, ``.xlsx`` or ``.parquet`` into a :class:`RawTable` of strings.

    Raises :class:`UsageError` when the file cannot be opened and :class:`InputError`
    when it opens but holds no table (empty, header only, binary).
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"File {path} does not exist.")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a data file.")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"File {path} cannot be read: {exc.strerror or exc}.") from exc
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        frame = _read_excel(path, blob)
        return RawTable(_as_text(frame), path, None, None)
    if suffix in {".parquet", ".pq"}:
        frame = _read_parquet(path, blob)
        return RawTable(_as_text(frame), path, None, None)
    return _read_csv(path, blob)


def _read_excel(path: Path, blob: bytes) -> pd.DataFrame:
    if not blob:
        raise InputError(f"File {path.name} is empty: there is no data to read.")
    try:
        frame = pd.read_excel(io.BytesIO(blob), sheet_name=0, dtype=object)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise InputError(f"File {path.name} is not a readable .xlsx workbook ({type(exc).__name__}).") from exc
    return _check_not_empty(frame, path)


def _read_parquet(path: Path, blob: bytes) -> pd.DataFrame:
    if not blob:
        raise InputError(f"File {path.name} is empty: there is no data to read.")
    try:
        frame = pd.read_parquet(io.BytesIO(blob))
    except Exception as exc:
        raise InputError(f"File {path.name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    return _check_not_empty(frame, path)


def _check_not_empty(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if frame.shape[1] == 0:
        raise InputError(f"File {path.name} is empty: there is no header and no data.")
    if frame.shape[0] == 0:
        raise InputError(f"File {path.name} has a header but no data rows.")
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed cells → strings (dates as ISO), missing → ""."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            text = values.dt.strftime("%Y-%m-%d").where(values.notna(), "")
        else:
            text = values.map(_cell_text)
        out[str(col)] = text.astype(object).to_numpy()
    return out


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, (pd.Timestamp, datetime.datetime, datetime.date)):
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _decode(path: Path, blob: bytes) -> tuple[str, str]:
    if b"\x00" in blob[:SNIFF_BYTES]:
        raise InputError(f"File {path.name} is a binary file, not a table: save it as CSV (UTF-8), .xlsx or .parquet.")
    try:
        return blob.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Latin-1 decodes every byte; cp1252 is what Excel on Windows writes and is a superset for text.
    try:
        return blob.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return blob.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header and the first lines into the same, largest count of fields."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters="".join(DELIMITERS))
        if _consistent(lines, dialect.delimiter):
            return dialect.delimiter
    except csv.Error:
        pass
    best, best_fields = ",", 1
    for delim in DELIMITERS:
        if not _consistent(lines, delim):
            continue
        fields = len(next(csv.reader([lines[0]], delimiter=delim)))
        if fields > best_fields:
            best, best_fields = delim, fields
    return best


def _consistent(lines: list[str], delim: str) -> bool:
    counts = {len(row) for row in csv.reader(lines[:20], delimiter=delim)}
    return len(counts) == 1 and counts.pop() > 1


def _read_csv(path: Path, blob: bytes) -> RawTable:
    if not blob.strip():
        raise InputError(f"File {path.name} is empty: there is no header and no data.")
    text, encoding = _decode(path, blob)
    delimiter = sniff_delimiter(text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    # blank lines before the header and at the end are dropped; blank rows in between keep their row numbers
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise InputError(f"File {path.name} is empty: there is no header and no data.")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise InputError(f"File {path.name} has a header but no data rows.")
    width = len(header)
    problems = [(i, len(r)) for i, r in enumerate(body) if len(r) > width]
    if problems:
        i, n = problems[0]
        raise InputError(
            f"Row {spreadsheet_row(i)} has {n} fields but the header (row 1) has {width}; "
            f"check the delimiter {delimiter!r} and quoting in {path.name}."
        )
    header = _unique_header(header)
    padded = [r + [""] * (width - len(r)) for r in body]
    frame = pd.DataFrame(padded, columns=header, dtype=object)
    frame = frame.apply(lambda s: s.str.strip())
    return RawTable(frame, path, delimiter, encoding)


def _unique_header(header: list[str]) -> list[str]:
    """Empty header cells become ``column_N`` (N = spreadsheet column); repeats get a suffix."""
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(header, start=1):
        name = name or ("index" if i == 1 else f"column_{i}")
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out
