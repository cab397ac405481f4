"""The interval-form benchmark (`benchmarks/interval_forms.py`) without runs: its intervals and its table."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from tests.benchtools import load_benchmark


@pytest.fixture(scope="module")
def forms() -> ModuleType:
    return load_benchmark("interval_forms")


def test_on_a_right_skewed_posterior_the_hdi_runs_to_zero_and_misses_the_upper_tail(forms: ModuleType) -> None:
    draws = np.random.default_rng(0).lognormal(0.2, 0.9, 200_000)  # a ROAS posterior that is only the prior
    got = forms.intervals(draws)
    hdi, eti, log_hdi = got["HDI (reported)"], got["equal-tailed"], got["HDI of log ROAS"]
    assert hdi[0] < 0.1 and hdi[1] < 5.2  # shortest in ROAS: from almost nothing to well short of the 97 % quantile
    assert eti == pytest.approx(np.exp([0.2 - 1.8808 * 0.9, 0.2 + 1.8808 * 0.9]).tolist(), rel=0.02)
    assert log_hdi == pytest.approx(eti, rel=0.03)  # a lognormal is symmetric in log ROAS


def test_the_table_separates_identified_from_unidentified_channels(forms: ModuleType) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for k in range(40):
        draws = rng.lognormal(0.0, 0.2 if k % 2 else 1.0, 4000)
        true = float(np.exp(rng.normal(0.0, 0.2 if k % 2 else 1.0)))
        rows.append(
            {"suite": "mixed", "true": true, "mean": float(draws.mean()), "pit": float(np.mean(draws < true)),
             "identified": bool(k % 2), "intervals": forms.intervals(draws)}
        )  # fmt: skip
    lines = forms.table(rows)
    assert lines[0].count("covers, width ÷ truth") == 3
    assert [line.split(" | ")[1] for line in lines[2:]] == ["identified", "not identified", "all"]
    assert [line.split(" | ")[2] for line in lines[2:]] == ["20", "20", "40"]
