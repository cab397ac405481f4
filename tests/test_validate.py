"""Every validation rule, each checked for its code, spreadsheet row and column."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib.config import ModelConfig
from mmmlib.data.reader import read_raw
from mmmlib.data.validate import check

CFG = ModelConfig(
    date_column="week",
    target_column="sales",
    channel_columns=["tv", "search"],
    control_columns=["promo", "price"],
)


def good_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "week": pd.date_range("2023-01-02", periods=n, freq="7D").strftime("%Y-%m-%d"),
            "sales": np.round(10000 + rng.normal(0, 100, n), 2),
            "tv": np.round(rng.gamma(2, 100, n), 2),
            "search": np.round(rng.gamma(2, 50, n), 2),
            "promo": (rng.random(n) < 0.2).astype(int),
            "price": np.round(1 + rng.normal(0, 0.02, n), 3),
        }
    ).astype(str)


def run_check(frame: pd.DataFrame, tmp_path: Path, config: ModelConfig = CFG):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return check(read_raw(path), config)


def codes(checked, kind: str = "errors") -> set[tuple[str, int | None, str | None]]:
    return {(i.code, i.row, i.column) for i in getattr(checked.report, kind)}


def test_good_file_passes(tmp_path: Path) -> None:
    checked = run_check(good_frame(), tmp_path)
    assert checked.report.ok and not checked.report.warnings
    assert checked.frequency == "weekly"
    assert list(checked.frame.columns) == ["week", "tv", "search", "sales", "promo", "price"]


def _set(row: int, col: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[row - 2, col] = value  # spreadsheet row → frame index
        return f

    return mutate


ERROR_CASES = [
    ("empty spend", _set(12, "tv", ""), ("missing_value", 12, "tv")),
    ("text spend", _set(7, "search", "lots"), ("not_a_number", 7, "search")),
    ("negative spend", _set(9, "tv", "-5"), ("negative_spend", 9, "tv")),
    ("bad date", _set(15, "week", "2023-02-30"), ("bad_date", 15, "week")),
    ("missing date", _set(16, "week", ""), ("missing_value", 16, "week")),
    ("text KPI", _set(20, "sales", "n.a."), ("not_a_number", 20, "sales")),
    ("missing KPI", _set(21, "sales", ""), ("missing_value", 21, "sales")),
    ("text control", _set(22, "promo", "yes"), ("not_a_number", 22, "promo")),
]


@pytest.mark.parametrize(("label", "mutate", "expected"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_cell_errors_name_row_and_column(tmp_path: Path, label: str, mutate, expected) -> None:
    checked = run_check(mutate(good_frame()), tmp_path)
    assert expected in codes(checked)
    assert checked.frame is None
    issue = next(i for i in checked.report.errors if (i.code, i.row, i.column) == expected)
    assert issue.sentence().startswith(f"Row {expected[1]}, column {expected[2]}: ")


def test_the_contract_example_sentence(tmp_path: Path) -> None:
    checked = run_check(_set(12, "tv", "")(good_frame()), tmp_path)
    sentences = [i.sentence() for i in checked.report.errors]
    assert "Row 12, column tv: empty value; spend must be a number (use 0 for no spend)." in sentences


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    frame = good_frame()
    for mutate in (c[1] for c in ERROR_CASES):
        frame = mutate(frame)
    checked = run_check(frame, tmp_path)
    assert {c[2] for c in ERROR_CASES} <= codes(checked)


def test_duplicate_date(tmp_path: Path) -> None:
    frame = good_frame()
    frame.loc[10, "week"] = frame.loc[9, "week"]  # spreadsheet row 12 repeats row 11
    checked = run_check(frame, tmp_path)
    assert ("duplicate_date", 12, "week") in codes(checked)
    assert not any(i.code == "missing_periods" for i in checked.report.errors)  # the repeat explains the gap


def test_unsorted_dates_warn_and_are_sorted(tmp_path: Path) -> None:
    frame = good_frame()
    frame.iloc[[3, 4]] = frame.iloc[[4, 3]].to_numpy()
    checked = run_check(frame, tmp_path)
    assert checked.report.ok
    assert any(i.code == "unsorted_dates" for i in checked.report.warnings)
    assert checked.frame["week"].is_monotonic_increasing


def test_gap_is_an_error_unless_filled(tmp_path: Path) -> None:
    frame = good_frame().drop(index=[30, 31]).reset_index(drop=True)
    checked = run_check(frame, tmp_path)
    gap = [i for i in checked.report.errors if i.code == "missing_periods"]
    assert len(gap) == 1 and gap[0].row == 32 and "2 weeks missing" in gap[0].message
    filled = run_check(frame, tmp_path, ModelConfig(**{**CFG.to_dict(), "fill_missing_periods": "zero"}))
    assert filled.report.ok and any(i.code == "missing_periods" for i in filled.report.warnings)
    assert len(filled.frame) == 60
    assert filled.frame.loc[30, "tv"] == 0.0 and not filled.frame["sales"].isna().any()


def test_mixed_frequency(tmp_path: Path) -> None:
    frame = good_frame()
    frame.loc[20, "week"] = (pd.Timestamp(frame.loc[20, "week"]) + pd.Timedelta(days=2)).strftime("%Y-%m-%d")
    checked = run_check(frame, tmp_path)
    assert ("mixed_frequency", 22, "week") in codes(checked)


def test_monthly_data_is_refused(tmp_path: Path) -> None:
    frame = good_frame()
    frame["week"] = pd.date_range("2019-01-01", periods=60, freq="MS").strftime("%Y-%m-%d")
    checked = run_check(frame, tmp_path)
    assert any(i.code == "unsupported_frequency" for i in checked.report.errors)


def test_too_few_periods_weekly_and_daily(tmp_path: Path) -> None:
    checked = run_check(good_frame(40), tmp_path)
    assert any(i.code == "too_few_periods" and "52" in i.message for i in checked.report.errors)
    daily = good_frame(150)
    daily["week"] = pd.date_range("2023-01-01", periods=150, freq="D").strftime("%Y-%m-%d")
    checked = run_check(daily, tmp_path)
    assert checked.frequency == "daily"
    assert any(i.code == "too_few_periods" and "180" in i.message for i in checked.report.errors)


def test_configured_column_missing(tmp_path: Path) -> None:
    checked = run_check(good_frame().drop(columns=["search"]), tmp_path)
    assert ("missing_column", None, "search") in codes(checked)


def test_channel_without_spend_and_sparse_channel(tmp_path: Path) -> None:
    frame = good_frame()
    frame["tv"] = "0"
    frame["search"] = ["0"] * 57 + ["10", "20", "30"]
    checked = run_check(frame, tmp_path)
    assert ("no_spend", None, "tv") in codes(checked)
    assert ("sparse_spend", None, "search") in codes(checked, "warnings")


def test_non_positive_target_warns(tmp_path: Path) -> None:
    checked = run_check(_set(30, "sales", "0")(good_frame()), tmp_path)
    assert checked.report.ok
    assert ("non_positive_target", 30, "sales") in codes(checked, "warnings")


def test_constant_control_warns_and_is_dropped(tmp_path: Path) -> None:
    frame = good_frame()
    frame["price"] = "1.0"
    checked = run_check(frame, tmp_path)
    assert ("constant_control", None, "price") in codes(checked, "warnings")
    assert "price" not in checked.frame.columns


def test_geo_data_is_recognised_and_aggregated(tmp_path: Path) -> None:
    a, b = good_frame(), good_frame()
    a.insert(0, "region", "north")
    b.insert(0, "region", "south")
    both = pd.concat([a, b], ignore_index=True)
    checked = run_check(both, tmp_path)
    assert any(i.code == "geo_data" and "geo_model: hierarchical" in i.message for i in checked.report.errors)
    cfg = ModelConfig(**{**CFG.to_dict(), "geo_column": "region", "aggregate_geos": True})
    summed = run_check(both, tmp_path, cfg)
    assert summed.report.ok and len(summed.frame) == 60
    assert summed.frame["tv"].iloc[0] == pytest.approx(2 * float(a["tv"].iloc[0]))
    assert summed.frame["price"].iloc[0] == pytest.approx(float(a["price"].iloc[0]))  # controls are averaged


@pytest.mark.slow
def test_cli_validate_json_on_the_messy_sample(sample_copy: Path) -> None:
    data = sample_copy / "sample_messy.csv"
    before = data.read_bytes()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmmlib",
            "validate",
            str(data),
            "--config",
            str(sample_copy / "sample_config.yaml"),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["ok"] is False and report["rows"] == 119
    found = {(e["row"], e["column"], e["code"]) for e in report["errors"]}
    assert {
        (12, "tv_spend", "missing_value"),
        (20, "search_spend", "missing_value"),
        (25, "social_spend", "negative_spend"),
        (31, "week", "bad_date"),
        (41, "week", "duplicate_date"),
        (56, "revenue", "not_a_number"),
        (61, "promo", "not_a_number"),
        (81, "week", "missing_periods"),
    } == found
    assert data.read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "code"),
    [(b"", "unreadable"), (b"week,sales,tv\n", "unreadable"), (b"\x00\x01\x02binary", "unreadable")],
)
def test_cli_validate_broken_files_exit_1_without_traceback(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    run = subprocess.run(
        [sys.executable, "-m", "mmmlib", "validate", str(path), "--json"], capture_output=True, text=True
    )
    assert run.returncode == 1
    assert json.loads(run.stdout)["errors"][0]["code"] == code
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mmmlib", "validate", str(tmp_path / "nope.csv")], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert run.stderr.strip().startswith("mmm: File") and "Traceback" not in run.stderr
