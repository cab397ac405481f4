"""Benchmark: validating 10 years of daily data with 50 channels (target: under 2 s).

Whole-process view of what `mmm validate` does: read the CSV as text, check every rule.
Run: `make benchmarks` or `.venv/bin/python benchmarks/validation_speed.py`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mmmlib.config import ModelConfig
from mmmlib.data.reader import read_raw
from mmmlib.data.validate import check


def make(path: Path, days: int = 3650, channels: int = 50) -> ModelConfig:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"date": pd.date_range("2015-01-01", periods=days, freq="D").strftime("%Y-%m-%d")})
    frame["sales"] = np.round(rng.gamma(5, 2000, days), 2)
    names = [f"ch{i:02d}_spend" for i in range(channels)]
    for name in names:
        frame[name] = np.round(rng.gamma(2, 100, days) * (rng.random(days) < 0.8), 2)
    frame["promo"] = (rng.random(days) < 0.1).astype(int)
    frame.to_csv(path, index=False)
    return ModelConfig(date_column="date", target_column="sales", channel_columns=names, control_columns=["promo"])


def main(repeats: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "daily.csv"
        config = make(path)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            checked = check(read_raw(path), config)
            times.append(time.perf_counter() - start)
        assert checked.report.ok, checked.report.lines(5)
        size = path.stat().st_size / 1e6
    print(
        f"validate 3650 days x 50 channels ({size:.1f} MB): median {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s over {repeats} runs (python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    main()
