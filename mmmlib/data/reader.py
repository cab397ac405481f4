"""Read a table from disk exactly as the user wrote it: every cell a string, nothing converted.

Keeping raw text lets validation point at the spreadsheet cell that is wrong (row 1 is the
header) instead of silently coercing it. CSV delimiter and encoding are sniffed; ``.xlsx``
and ``.parquet`` are read through pandas and turned into the same raw form. This is the one place where a
file's size, rows, columns and unpacked size are held to :mod:`mmmlib.data.limits`.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmmlib.data import limits
from mmmlib.errors import InputError, UsageError

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024
_QUOTED = re.compile(r'"[^"]*"')


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
    when it opens but holds no table (empty, header only, binary) or is above a size limit
    (:mod:`mmmlib.data.limits`, each checked before the step it protects).
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"File {path} does not exist.")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a data file.")
    if not path.is_file():
        raise UsageError(f"{path} is not a regular file (a device or a pipe never ends), not a data file.")
    try:
        limits.check_file_size(path.name, path.stat().st_size)
        with open(path, "rb") as handle:
            blob = handle.read(limits.max_bytes() + 1)  # a file that grew after stat still stops at the limit
    except OSError as exc:
        raise UsageError(f"File {path} cannot be read: {exc.strerror or exc}.") from exc
    limits.check_file_size(path.name, len(blob))
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        frame = _read_excel(path, blob)
        return RawTable(_as_text(frame), path, None, None)
    if suffix in {".parquet", ".pq"}:
        frame = _read_parquet(path, blob)
        return RawTable(_as_text(frame), path, None, None)
    if not blob.strip():
        raise InputError(f"File {path.name} is empty: there is no header and no data.")
    text, encoding = _decode(path, blob)
    del blob  # the text replaces it: a large file is not held twice
    return _read_csv(path, text, encoding)


def _read_excel(path: Path, blob: bytes) -> pd.DataFrame:
    if not blob:
        raise InputError(f"File {path.name} is empty: there is no data to read.")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as book:
            # zipfile never returns more than a member's declared size, so the sum bounds what openpyxl can unpack
            unpacked = sum(member.file_size for member in book.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"File {path.name} is not a readable .xlsx workbook ({type(exc).__name__}).") from exc
    limits.check_xlsx_expanded(path.name, unpacked)
    max_rows = int(limits.ROWS.value())
    try:
        frame = pd.read_excel(io.BytesIO(blob), sheet_name=0, dtype=object, nrows=max_rows + 1)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise InputError(f"File {path.name} is not a readable .xlsx workbook ({type(exc).__name__}).") from exc
    limits.check_rows(path.name, len(frame), stopped=True)
    limits.check_columns(path.name, frame.shape[1])
    return _check_not_empty(frame, path)


def _read_parquet(path: Path, blob: bytes) -> pd.DataFrame:
    if not blob:
        raise InputError(f"File {path.name} is empty: there is no data to read.")
    import pyarrow.parquet as pq  # local: only Parquet files pay for it

    try:
        meta = pq.ParquetFile(io.BytesIO(blob)).metadata
        shape = (meta.num_rows, meta.num_columns)
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except Exception as exc:
        raise InputError(f"File {path.name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    limits.check_rows(path.name, shape[0])
    limits.check_columns(path.name, shape[1])
    if unpacked > limits.max_bytes():
        raise limits.FILE_MB.refuse(f"File {path.name} unpacks to", f"{limits.megabytes(unpacked)} MB")
    try:
        frame = pd.read_parquet(io.BytesIO(blob))
    except Exception as exc:
        raise InputError(f"File {path.name} is not a readable Parquet file ({type(exc).__name__}).") from exc
    limits.check_rows(path.name, len(frame))
    limits.check_columns(path.name, frame.shape[1])
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
    """The delimiter that splits the header and the first lines into the same, largest count of fields.

    Only the first :data:`SNIFF_BYTES` characters are looked at (whole lines), so a huge file costs nothing here.
    """
    head = text[:SNIFF_BYTES]
    if len(text) > SNIFF_BYTES and ("\n" in head or "\r" in head):
        head = head[: max(head.rfind("\n"), head.rfind("\r"))]  # a cut last line would look inconsistent
    lines = [ln for ln in head.splitlines()[:50] if ln.strip()]
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


def _read_csv(path: Path, text: str, encoding: str) -> RawTable:
    delimiter = sniff_delimiter(text)
    rows = _records(text, delimiter, path.name)
    if not rows:
        raise InputError(f"File {path.name} is empty: there is no header and no data.")
    header = [h.strip() for h in rows.pop(0)]  # rows is now the data, index 0 = spreadsheet row 2
    if not rows:
        raise InputError(f"File {path.name} has a header but no data rows.")
    width = len(header)
    for i, row in enumerate(rows):
        if len(row) > width:
            raise InputError(
                f"Row {spreadsheet_row(i)} has {len(row)} fields but the header (row 1) has {width}; "
                f"check the delimiter {delimiter!r} and quoting in {path.name}."
            )
        if len(row) < width:
            row.extend([""] * (width - len(row)))
    frame = pd.DataFrame(rows, columns=_unique_header(header), dtype=object)
    del rows
    frame = frame.apply(lambda s: s.str.strip())
    return RawTable(frame, path, delimiter, encoding)


def _records(text: str, delimiter: str, name: str) -> list[list[str]]:
    """The header and data records; blank lines before the header and at the end are dropped.

    Blank rows in between keep their place (and row numbers). Reading stops at the first row over
    MMM_MAX_ROWS, and a line with more fields than MMM_MAX_COLUMNS is refused before it is split.
    """
    max_rows = int(limits.ROWS.value())
    reader = csv.reader(_guarded_lines(text, delimiter, name), delimiter=delimiter)
    rows: list[list[str]] = []
    blank: list[list[str]] = []  # blank records after the last filled one: rows only if more data follows
    unkept = 0  # blank records past the limit, counted but not kept
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                if not rows:
                    continue
                if len(rows) + len(blank) <= max_rows:
                    blank.append(record)
                else:
                    unkept += 1
                continue
            if rows and len(rows) + len(blank) + unkept > max_rows:  # rows holds the header: this is one too many
                limits.check_rows(name, max_rows + 1, stopped=True)
            rows += blank
            blank = []
            rows.append(record)
    except csv.Error as exc:
        raise InputError(f"Line {reader.line_num} of {name} cannot be read as CSV ({exc}); check its quoting.") from exc
    return rows


def _guarded_lines(text: str, delimiter: str, name: str) -> Iterator[str]:
    """Lines of ``text`` for :func:`csv.reader`; one with more fields than MMM_MAX_COLUMNS is refused unsplit."""
    max_columns = int(limits.COLUMNS.value())
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        # counting delimiters is cheap; quoted ones are only left out (slower) for a line already over the limit
        if line.count(delimiter) >= max_columns:
            fields = _QUOTED.sub("", line).count(delimiter) + 1
            limits.check_columns(name, fields, line=number)
        yield line


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
