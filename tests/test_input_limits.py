"""Input limits (issue 11): each refused early with one sentence naming the limit, the value and the variable to raise;
validation that stays linear and short on files wrong in every row; column names the model cannot take."""

from __future__ import annotations

import html
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from benchmarks.input_limits import xlsx_bomb
from mmmlib.config import ModelConfig
from mmmlib.data.issues import MAX_LISTED
from mmmlib.data.reader import read_raw
from mmmlib.errors import InputError, UsageError
from tests.test_validate import CFG, good_frame, run_check


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _refused(path: Path) -> str:
    with pytest.raises(InputError) as exc:
        read_raw(path)
    return str(exc.value)


# --- limits --------------------------------------------------------------------------------------------------------


def test_file_over_the_size_limit_is_refused_with_its_sentence(tmp_path: Path, monkeypatch) -> None:
    path = _csv(tmp_path, good_frame())
    size = path.stat().st_size
    monkeypatch.setenv("MMM_MAX_FILE_MB", "0.001")
    assert _refused(path) == (
        f"File data.csv is {size / 1e6:.2g} MB, above the limit of 0.001 MB; aggregate it to fewer rows or keep "
        "only the columns the model uses, or raise MMM_MAX_FILE_MB."
    )
    monkeypatch.setenv("MMM_MAX_FILE_MB", "1")
    assert len(read_raw(path).frame) == 60


@pytest.mark.slow
def test_limits_reach_the_command_line_as_exit_1(tmp_path: Path, monkeypatch) -> None:
    path = _csv(tmp_path, good_frame())
    monkeypatch.setenv("MMM_MAX_FILE_MB", "0.001")
    for command in (["validate", str(path)], ["config", str(path)]):
        run = subprocess.run([sys.executable, "-m", "mmmlib", *command], capture_output=True, text=True)
        assert run.returncode == 1, run.stdout + run.stderr
        assert "above the limit of 0.001 MB" in run.stdout + run.stderr
        assert "Traceback" not in run.stderr


def test_rows_over_the_limit_are_refused_while_reading(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMM_MAX_ROWS", "50")
    assert _refused(_csv(tmp_path, good_frame(60))) == (
        "File data.csv has more than 50 data rows, the limit; aggregate it (one row per week, or per geo and week), "
        "or raise MMM_MAX_ROWS."
    )
    # exactly at the limit, with blank lines at the end (not rows) and one in between (a row, kept in its place)
    lines = good_frame(49).to_csv(index=False).splitlines()
    lines.insert(5, "")  # spreadsheet row 6 left blank
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines) + "\n" * 500)
    raw = read_raw(path)
    assert len(raw.frame) == 50 and (raw.frame.iloc[4] == "").all()


def test_columns_over_the_limit_are_refused_before_the_line_is_split(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMM_MAX_COLUMNS", "5")
    assert _refused(_csv(tmp_path, good_frame())) == (
        "File data.csv has 6 columns on line 1, above the limit of 5 columns; keep only the date, KPI, spend and "
        "control columns, or raise MMM_MAX_COLUMNS."
    )
    monkeypatch.setenv("MMM_MAX_COLUMNS", "10")
    lines = good_frame().to_csv(index=False).splitlines()
    lines[7] += "," * 10_000  # one data line of 10,006 fields
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    assert _refused(path).startswith("File long.csv has 10,006 columns on line 8, above the limit of 10 columns;")
    # delimiters inside quotes are not columns
    monkeypatch.setenv("MMM_MAX_COLUMNS", "6")
    frame = good_frame().rename(columns={"promo": "promo, coupons, bundles, sales, events, more"})
    assert read_raw(_csv(tmp_path, frame)).columns[4] == "promo, coupons, bundles, sales, events, more"


def test_xlsx_bomb_is_refused_before_openpyxl_opens_it(tmp_path: Path, monkeypatch) -> None:
    """A 60 MB sheet packed into a small file: refused from the zip's directory, openpyxl never called."""
    path, _ = xlsx_bomb(tmp_path, expanded_mb=60)
    assert path.stat().st_size < 1_000_000
    with zipfile.ZipFile(path) as book:
        unpacked_mb = sum(member.file_size for member in book.infolist()) / 1e6

    def unpacked(*args, **kwargs):
        raise AssertionError("openpyxl was asked to unpack the workbook")

    monkeypatch.setattr(openpyxl, "load_workbook", unpacked)
    assert _refused(path) == (
        f"Workbook bomb.xlsx unpacks to {unpacked_mb:.1f} MB, above the limit of 50 MB; save the sheet as CSV, "
        "which is read faster and with less memory, or raise MMM_MAX_XLSX_EXPANDED_MB."
    )


def test_xlsx_and_parquet_rows_and_columns_are_limited(tmp_path: Path, monkeypatch) -> None:
    frame = good_frame()
    frame.to_excel(tmp_path / "data.xlsx", index=False)
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    monkeypatch.setenv("MMM_MAX_ROWS", "10")
    assert _refused(tmp_path / "data.xlsx").startswith("File data.xlsx has more than 10 data rows, the limit;")
    assert _refused(tmp_path / "data.parquet").startswith("File data.parquet has 60 data rows, above the limit of 10")
    monkeypatch.delenv("MMM_MAX_ROWS")
    monkeypatch.setenv("MMM_MAX_COLUMNS", "3")
    assert _refused(tmp_path / "data.xlsx").startswith("File data.xlsx has 6 columns, above the limit of 3 columns;")
    assert _refused(tmp_path / "data.parquet").startswith("File data.parquet has 6 columns, above the limit of 3")


@pytest.mark.parametrize("value", ["lots", "0", "-5", "inf", "0.4"])
def test_a_limit_must_be_a_positive_number(tmp_path: Path, monkeypatch, value: str) -> None:
    monkeypatch.setenv("MMM_MAX_ROWS", value)
    with pytest.raises(UsageError, match=f"MMM_MAX_ROWS must be a positive number, not '{value}'."):
        read_raw(_csv(tmp_path, good_frame()))


def test_a_device_is_not_read(tmp_path: Path) -> None:
    """/dev/zero would never end; any file that is not a regular one is refused before reading."""
    with pytest.raises(UsageError, match="is not a regular file"):
        read_raw("/dev/null")


def test_an_oversized_cell_is_a_sentence(tmp_path: Path) -> None:
    lines = good_frame().to_csv(index=False).splitlines()
    lines[3] = lines[3].replace(",", ',"' + "x" * 200_000 + '",', 1)
    path = tmp_path / "cell.csv"
    path.write_text("\n".join(lines) + "\n")
    message = _refused(path)
    assert message.startswith("Line 4 of cell.csv cannot be read as CSV (field larger than field limit")


# --- validation on files wrong in every row ------------------------------------------------------------------------


@pytest.mark.slow
def test_repeated_dates_are_found_by_grouping_and_listed_briefly(tmp_path: Path) -> None:
    """200,000 rows cycling through 52 weeks: every repeat counted, the first 20 spelled out with their first row."""
    n, weeks = 200_000, 52
    rng = np.random.default_rng(3)
    dates = pd.date_range("2023-01-02", periods=weeks, freq="7D").strftime("%Y-%m-%d")
    frame = pd.DataFrame(
        {
            "week": dates[np.arange(n) % weeks],
            "sales": rng.integers(1_000, 9_999, n),
            "tv": rng.integers(0, 99, n),
            "search": rng.integers(0, 99, n),
        }
    )
    config = ModelConfig(date_column="week", target_column="sales", channel_columns=["tv", "search"])
    report = run_check(frame, tmp_path, config).report
    dupes = [i for i in report.errors if i.code == "duplicate_date"]
    assert len(dupes) == MAX_LISTED + 1
    assert report.error_count == n - weeks
    assert all(i.column == "week" and i.row is not None for i in dupes)
    assert dupes[0].row == weeks + 2
    assert dupes[0].message.startswith("date 2023-01-02 already appears in row 2;")
    assert dupes[19].message.startswith(f"date {dates[19]} already appears in row 21;")
    assert dupes[20].row == weeks + 22
    assert dupes[20].message == (
        f"this row and {n - weeks - 21:,} more up to row {n + 1} have the same problem (duplicate_date); "
        "only the first 20 rows are spelled out."
    )
    assert report.summary_line() == f"{n} data rows: not usable, {n - weeks} errors, 1 warnings."


def test_many_gaps_are_listed_briefly(tmp_path: Path) -> None:
    keep = np.arange(300) % 3 != 2  # every third week missing: 99 gaps between the 200 weeks kept
    frame = good_frame(300)[keep].reset_index(drop=True)
    report = run_check(frame, tmp_path).report
    gaps = [i for i in report.errors if i.code == "missing_periods"]
    assert len(gaps) == MAX_LISTED + 1 and report.error_count == 99
    assert gaps[0].row == 4 and gaps[0].message.startswith("1 week missing between 2023-01-09 and 2023-01-23;")
    assert gaps[-1].message.startswith("this row and 78 more up to row 200 have the same problem (missing_periods)")
    filled = run_check(frame, tmp_path, ModelConfig(**{**CFG.to_dict(), "fill_missing_periods": "zero"})).report
    assert filled.ok and len(filled.warnings) == MAX_LISTED + 1 and filled.warning_count == 99


def test_a_column_wrong_in_every_row_is_listed_briefly(tmp_path: Path) -> None:
    frame = good_frame(100)
    frame["tv"] = "lots"
    report = run_check(frame, tmp_path).report
    assert [i.row for i in report.errors] == list(range(2, 2 + MAX_LISTED + 1))
    assert (
        report.errors[0].sentence()
        == "Row 2, column tv: 'lots' is not a number; spend must be a number (use 0 for no spend)."
    )
    assert report.errors[-1].sentence().startswith("Row 22, column tv: this row and 79 more up to row 101 have")
    assert report.error_count == 100


# --- column names the model cannot take ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "char"), [("tv/spend", "'/'"), ("tv=1", "'='"), ("tv\x07", "a control character")])
def test_channel_names_the_model_cannot_take_are_refused_naming_the_column(tmp_path: Path, name: str, char: str):
    """'/' failed after sampling (posterior.nc), '=' when the summary parsed CHANNEL=VALUE bounds."""
    config = ModelConfig(**{**CFG.to_dict(), "channel_columns": [name, "search"]})
    report = run_check(good_frame().rename(columns={"tv": name}), tmp_path, config).report
    assert [(i.code, i.row, i.column) for i in report.errors] == [("bad_column_name", None, name)]
    message = report.errors[0].message
    assert message.startswith(f"the name contains {char}, which the model cannot take (")
    assert message.endswith(f"rename the column in the file and in the config's channel_columns: {name}, search.")


def test_controls_may_hold_equals_but_not_slash(tmp_path: Path) -> None:
    frame = good_frame().rename(columns={"promo": "promo=1", "price": "price/unit"})
    config = ModelConfig(**{**CFG.to_dict(), "control_columns": ["promo=1", "price/unit"]})
    report = run_check(frame, tmp_path, config).report
    assert [(i.code, i.column) for i in report.errors] == [("bad_column_name", "price/unit")]


@pytest.mark.parametrize(
    ("name", "trend", "refused"), [("date", True, True), ("trend", True, True), ("trend", False, False)]
)
def test_names_the_model_uses_itself_are_refused(tmp_path: Path, name: str, trend: bool, refused: bool) -> None:
    """The model's inputs have their own `date` and trend columns: a channel of that name would be overwritten."""
    config = ModelConfig(**{**CFG.to_dict(), "channel_columns": [name, "search"], "trend": trend})
    report = run_check(good_frame().rename(columns={"tv": name}), tmp_path, config).report
    assert report.ok != refused
    if refused:
        assert report.errors[0].column == name and "the model uses the name" in report.errors[0].message


# --- the upload page -----------------------------------------------------------------------------------------------


def test_upload_over_the_limit_is_refused_with_the_reader_sentence(tmp_path: Path, monkeypatch) -> None:
    from mmmlib.widgets.new_model import NewModel

    monkeypatch.setenv("MMM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMM_MAX_FILE_MB", "0.001")
    page = NewModel("acme")
    assert "Files up to 0.001 MB." in page.view().children[0].value
    content = good_frame().to_csv(index=False).encode()
    page.upload.value = (
        {
            "name": "big.csv",
            "type": "text/csv",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 1, 1),
        },
    )
    path = _csv(tmp_path, good_frame(), "big.csv")
    with pytest.raises(InputError) as exc:
        read_raw(path)
    assert html.escape(str(exc.value)) in page.status.value
    assert not (tmp_path / "home" / "clients" / "acme" / "datasets").exists()
    monkeypatch.delenv("MMM_MAX_FILE_MB")
    page.upload.value = ({**page.upload.value[0], "name": "small.csv"},)
    assert "columns detected" in page.status.value
