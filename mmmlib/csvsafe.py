"""CSV that a spreadsheet opens as data, never as formulas (OWASP's CSV injection advice).

Channel names and labels come from clients' spreadsheets and config files, so a cell such as
``=HYPERLINK("http://x", "click")`` would run when an executive opens ``channels.csv`` in Excel or
LibreOffice. Every CSV the product writes goes through ``csv_text``: a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, which spreadsheets show
as text. Numbers are written as numbers, negative ones included: ``-2.5`` is a value, not a formula,
and prefixing it would turn the column into text. Only text cells are neutralised (so the text ``"-2"``
is, the number ``-2`` is not).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """``cell`` with a leading ``'`` when it is text a spreadsheet would read as a formula; anything else as is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return cell


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows (the header first) as CSV text, every text cell neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buf.getvalue()
