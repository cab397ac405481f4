"""Property-based: corrupt a good file at random; validation never crashes, always points at the damage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmmlib.data.cells import parse_dates, parse_numbers
from mmmlib.data.reader import read_raw
from mmmlib.data.validate import check
from mmmlib.errors import InputError
from tests.test_validate import CFG, good_frame

pytestmark = pytest.mark.slow  # hundreds of generated files: not in make test-fast

BASE = good_frame(60)
COLUMNS = list(BASE.columns)
NUMERIC = [c for c in COLUMNS if c != "week"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

bad_text = st.one_of(
    st.just(""),
    st.sampled_from(["abc", "n/a", "#REF!", "1e400x", "--5", "12..5", "∞", "NULL"]),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), min_size=1, max_size=8
    ),
).filter(lambda s: _unreadable(s))


def _unreadable(text: str) -> bool:
    """Neither a number nor a date, so it is wrong in every column."""
    cell = pd.Series([text])
    return bool(parse_numbers(cell)[0].isna().all() and parse_dates(cell)[0].isna().all())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _validate(path: Path):
    """Validation as the CLI runs it: a file that cannot be read is an InputError, anything else a report."""
    try:
        return check(read_raw(path), CFG).report
    except InputError as exc:
        assert str(exc).endswith(".") or "\n" in str(exc)
        return None


@SETTINGS
@given(
    cells=st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.sampled_from(COLUMNS), bad_text), min_size=1, max_size=6)
)
def test_bad_cells_are_always_pinned_to_row_and_column(tmp_path_factory, cells) -> None:
    frame = BASE.copy()
    for row, col, value in cells:
        frame.loc[row, col] = value
    path = tmp_path_factory.mktemp("p") / "data.csv"
    frame.to_csv(path, index=False)
    digest = _sha(path)
    report = _validate(path)
    assert _sha(path) == digest
    assert report is not None and not report.ok
    located = {(i.row, i.column) for i in report.errors}
    for row, col, value in cells:
        if frame.loc[row, col] == value:  # not overwritten by a later corruption of the same cell
            assert (row + 2, col) in located, (row + 2, col, value, [i.sentence() for i in report.errors])


@SETTINGS
@given(
    drop=st.lists(st.integers(0, len(BASE) - 1), max_size=4, unique=True),
    swap=st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, len(BASE) - 1)), max_size=3),
    dup=st.lists(st.integers(0, len(BASE) - 1), max_size=2),
    negative=st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.sampled_from(["tv", "search"])), max_size=3),
)
def test_structural_damage_is_reported_not_raised(tmp_path_factory, drop, swap, dup, negative) -> None:
    frame = BASE.copy()
    for row, col in negative:
        frame.loc[row, col] = "-" + frame.loc[row, col].lstrip("-")
    for a, b in swap:
        frame.iloc[[a, b]] = frame.iloc[[b, a]].to_numpy()
    frame = pd.concat([frame, frame.iloc[dup]], ignore_index=True)
    frame = frame.drop(index=drop).reset_index(drop=True)
    path = tmp_path_factory.mktemp("s") / "data.csv"
    frame.to_csv(path, index=False)
    digest = _sha(path)
    report = _validate(path)
    assert _sha(path) == digest
    assert report is not None
    for issue in report.errors + report.warnings:
        assert issue.row is not None or issue.column is not None, issue
        assert issue.message and issue.message[-1] in ".;)"
    dates = pd.to_datetime(frame["week"]).sort_values()
    has_gap = bool((dates.drop_duplicates().diff().dt.days > 7).any())
    has_negative = bool((frame[["tv", "search"]].astype(float) < 0).any().any())
    assert report.ok == (not frame["week"].duplicated().any() and not has_gap and not has_negative)


@SETTINGS
@given(data=st.data())
def test_random_byte_damage_never_crashes(tmp_path_factory, data) -> None:
    blob = bytearray(BASE.to_csv(index=False).encode())
    for _ in range(data.draw(st.integers(1, 5))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            blob[pos] = data.draw(st.integers(1, 255))
        elif action == "cut":
            del blob[pos : pos + data.draw(st.integers(1, 200))]
        else:
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=5))
    path = tmp_path_factory.mktemp("b") / "data.csv"
    path.write_bytes(bytes(blob))
    report = _validate(path)
    assert path.read_bytes() == bytes(blob)
    if report is not None:
        for issue in report.errors + report.warnings:
            assert issue.row is not None or issue.column is not None, issue
