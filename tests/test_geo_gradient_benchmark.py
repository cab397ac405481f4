"""benchmarks/geo_gradient.py: one small synthetic geo model per size, built and its gradient timed for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchtools import load_benchmark

geo_gradient = load_benchmark("geo_gradient")


@pytest.mark.slow
def test_each_size_is_the_hierarchical_model_of_that_many_geos_and_its_table_row(tmp_path: Path) -> None:
    rows = [geo_gradient.measure(f"synth{n}", "geometric+logistic+changepoints", 5, tmp_path / str(n)) for n in (2, 3)]
    two, three = rows
    assert (two["geos"], three["geos"]) == (2, 3)
    assert two["observations"] == 2 * 156 and three["observations"] == 3 * 156  # every geo's weeks, one row each
    assert three["parameters"] > two["parameters"]  # a geo more: its own baseline and media offsets
    assert all(r["ms_per_gradient"] > 0 and r["us_per_observation"] > 0 for r in rows)
    text = geo_gradient.markdown(rows, {"date": "d", "machine": "m", "commit": "c"})
    assert "| synth3 | 3 | geometric+logistic+changepoints | " in text and "commit `c`" in text
