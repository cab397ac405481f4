"""Column detection on files nobody here shaped (../shared/public_data) and on crafted tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmmlib.data.detect import detect
from mmmlib.data.reader import read_raw

EXPECTED = {
    "pymc_marketing_mmm_example.csv": ("date_week", "y", ["x1", "x2"]),
    "robyn_dt_simulated_weekly.csv": ("DATE", "revenue", ["tv_S", "ooh_S", "print_S", "search_S", "facebook_S"]),
    "meridian_national_media.csv": ("time", "conversions", [f"Channel{i}_spend" for i in range(4)]),
    "meridian_national_all_channels.csv": ("time", "conversions", [f"Channel{i}_spend" for i in range(5)]),
    "meridian_geo_media.csv": ("time", "conversions", [f"Channel{i}_spend" for i in range(4)]),
    "meridian_geo_all_channels.csv": ("time", "conversions", [f"Channel{i}_spend" for i in range(5)]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mmm_config_and_validate_on_public_data(public_data: Path, tmp_path: Path, name: str) -> None:
    """`mmm config` then `mmm validate` through the real command, on every public file."""
    path = public_data / name
    before = path.read_bytes()
    cfg_path = tmp_path / "config.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "mmmlib", "config", str(path), "--out", str(cfg_path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    cfg = yaml.safe_load(cfg_path.read_text())
    date, target, spend = EXPECTED[name]
    assert cfg["date_column"] == date
    assert cfg["target_column"] == target
    assert sorted(cfg["channel_columns"]) == sorted(spend)
    assert not set(cfg["control_columns"]) & {target, date, *spend}
    run = subprocess.run(
        [sys.executable, "-m", "mmmlib", "validate", str(path), "--config", str(cfg_path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert path.read_bytes() == before


def test_meridian_count_kpi_and_revenue_per_conversion(public_data: Path) -> None:
    det = detect(read_raw(public_data / "meridian_national_media.csv").frame)
    assert det.kpi_type == "count"
    assert det.revenue_per_kpi == "revenue_per_conversion"
    assert all("impression" not in c for c in det.channel_columns + det.control_columns)


def test_geo_file_is_recognised(public_data: Path) -> None:
    det = detect(read_raw(public_data / "meridian_geo_media.csv").frame)
    assert det.geo_column == "geo"
    assert det.population_column == "population"
    assert det.media_columns == {f"Channel{i}_spend": f"Channel{i}_impression" for i in range(4)}


def test_meridian_geo_file_proposes_a_hierarchical_config(public_data: Path) -> None:
    """Meridian's geo sample: impressions as each channel's media, spend kept for ROAS, the organic channel as such,
    population for per-capita pooling, and a hierarchical model."""
    from mmmlib.data.dataset import propose_config

    cfg, _ = propose_config(read_raw(public_data / "meridian_geo_all_channels.csv"))
    assert cfg.geo_model == "hierarchical" and cfg.geo_column == "geo"
    assert cfg.population_column == "population"
    assert cfg.media_columns["Channel3_spend"] == "Channel3_impression"
    assert cfg.organic_columns == ["Organic_channel0_impression"]
    assert "population" not in cfg.control_columns


def test_robyn_activity_columns_are_not_spend(public_data: Path) -> None:
    det = detect(read_raw(public_data / "robyn_dt_simulated_weekly.csv").frame)
    assert "facebook_I" in det.ignored and "search_clicks_P" in det.ignored
    assert "competitor_sales_B" in det.control_columns


def test_pymc_example_calendar_and_counter_are_not_drivers(public_data: Path) -> None:
    det = detect(read_raw(public_data / "pymc_marketing_mmm_example.csv").frame)
    assert {"dayofyear", "t"} <= set(det.ignored)
    assert det.control_columns == ["event_1", "event_2"]


def _frame(columns: dict[str, np.ndarray], n: int) -> pd.DataFrame:
    frame = pd.DataFrame({"period": pd.date_range("2023-01-02", periods=n, freq="7D").strftime("%Y-%m-%d")})
    for name, values in columns.items():
        frame[name] = [f"{v:g}" for v in values]
    return frame


def test_detection_comes_from_the_data_not_the_names() -> None:
    """Opaque names: the KPI is the series that moves with spend; flags are controls; spend is non-negative."""
    rng = np.random.default_rng(3)
    n = 104
    a, b = rng.gamma(2, 500, n), rng.gamma(2, 300, n) * (rng.random(n) < 0.7)
    flag = (rng.random(n) < 0.1).astype(float)
    kpi = 20000 + 3 * a + 2 * b + 500 * flag + rng.normal(0, 300, n)
    temp = rng.normal(10, 8, n)  # can be negative: not spend
    det = detect(_frame({"q": a, "r": b, "k": kpi, "f": flag, "m": temp}, n))
    assert det.date_column == "period"
    assert det.target_column == "k"
    assert set(det.channel_columns) == {"q", "r"}
    assert set(det.control_columns) == {"f", "m"}


def test_decimal_comma_file(tmp_path: Path) -> None:
    """A European export: ';' between fields, ',' before decimals."""
    rng = np.random.default_rng(1)
    dates = pd.date_range("2023-01-02", periods=60, freq="7D")
    tv = rng.gamma(2, 400, 60)
    sales = 5000 + 2 * tv + rng.normal(0, 50, 60)
    lines = ["Woche;Umsatz;TV_Kosten"] + [
        f"{d:%d.%m.%Y};{s:.2f};{t:.2f}".replace(".", ",", 0) for d, s, t in zip(dates, sales, tv)
    ]
    lines = [lines[0]] + [
        ln.split(";")[0] + ";" + ";".join(v.replace(".", ",") for v in ln.split(";")[1:]) for ln in lines[1:]
    ]
    path = tmp_path / "de.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    det = detect(read_raw(path).frame)
    assert det.decimal_comma
    assert det.date_column == "Woche"
    assert det.target_column == "Umsatz"
    assert det.channel_columns == ["TV_Kosten"]
