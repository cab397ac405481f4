"""benchmarks/adaptation.py: its per-case summary and the sample's config, on known rows (no sampling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.benchtools import load_benchmark

adaptation = load_benchmark("adaptation")


def _row(adaptation_name: str, seed: int, seconds: float, ess: float, divergences: int) -> dict:
    return {
        "case": "sample:geometric+logistic+changepoints",
        "weeks": 156,
        "channels": 5,
        "adaptation": adaptation_name,
        "target_accept": 0.95,
        "variant": f"{adaptation_name}@0.95",
        "seed": seed,
        "compile_seconds": 20.0,
        "seconds": seconds,
        "step_size": 0.1,
        "steps_per_draw": 100.0,
        "divergences": divergences,
        "ess_bulk_min": ess,
        "ess_tail_min": ess,
        "r_hat_max": 1.01,
        "ess_per_second": ess / seconds,
    }


def test_the_summary_pools_seeds_per_adaptation_and_divides_their_ess_per_second() -> None:
    rows = [
        _row("diag", 1, 10.0, 200.0, 0),
        _row("diag", 2, 10.0, 200.0, 1),  # diag: 400 ESS in 20 s, 1 divergence
        _row("low_rank", 1, 2.5, 100.0, 3),
        _row("low_rank", 2, 7.5, 300.0, 4),  # low rank: 400 ESS in 10 s, 7 divergences
    ]
    text = adaptation.markdown(rows, {"date": "d", "machine": "m", "commit": "c"})
    summary = text.split("Per case, summed over its seeds")[1]
    assert "| case | diag@0.95 | low_rank@0.95 | low_rank@0.95 ÷ diag@0.95 ESS/s |" in summary
    assert "| sample:geometric+logistic+changepoints | 20, 1, 20.0 | 10, 7, 40.0 | 2.00 × |" in summary
    assert text.count("| sample:geometric+logistic+changepoints | 156 × 5 |") == 4


def test_a_variant_is_an_adaptation_at_a_target_acceptance_with_the_coordinates_form() -> None:
    assert adaptation.variant("low_rank@0.99") == ("low_rank", 0.99, "both")  # what fits sample
    assert adaptation.variant("diag") == ("diag", 0.95, "both")
    assert adaptation.variant("diag@0.95/plain") == ("diag", 0.95, "plain")
    assert adaptation.variant("diag@0.95/centred") == ("diag", 0.95, "centred")
    with pytest.raises(ValueError, match="both, plain, centred, whitened"):
        adaptation.variant("diag@0.95/uncentred")


def test_a_variant_may_start_its_chains_at_the_mode() -> None:
    assert adaptation.variant("diag@0.95/plain+mode") == ("diag", 0.95, "plain")
    assert adaptation.start("diag@0.95/plain+mode") == "mode"
    assert adaptation.start("diag@0.95") == "jitter"  # PyMC's jittered initial point, as fits start
    with pytest.raises(ValueError, match="jitter, mode"):
        adaptation.start("diag@0.95+map")


def test_the_mode_start_finds_the_mode_and_jitters_each_chain_around_it() -> None:
    """A correlated Gaussian log density in the compiled model's place: every chain starts within the jitter of its
    mean, the chains differ, and a seed gives its chain the same start again."""
    import dataclasses

    mean = np.array([3.0, -2.0, 0.5])
    precision = np.array([[4.0, 1.5, 0.0], [1.5, 2.0, 0.3], [0.0, 0.3, 1.0]])

    @dataclasses.dataclass(frozen=True)
    class Compiled:
        logp_func: object
        initial_point_func: object

    def logp(x: np.ndarray) -> tuple[float, np.ndarray]:
        d = x - mean
        return -0.5 * float(d @ precision @ d), -(precision @ d)

    moved, found = adaptation.mode_start(Compiled(logp, lambda seed: np.zeros(3)), seed=1, jitter=0.1)
    starts = [moved.initial_point_func(np.uint64(seed)) for seed in (11, 12)]
    for point in starts:
        assert np.all(np.abs(point - mean) <= 0.1 + 1e-5)
    assert not np.allclose(starts[0], starts[1])
    assert np.array_equal(moved.initial_point_func(np.uint64(11)), starts[0])
    assert found["mode_iterations"] > 0 and found["mode_seconds"] >= 0


def test_the_sample_case_names_the_seasonality_and_leaves_the_structure_to_the_case(tmp_path: Path) -> None:
    data, config = adaptation.sample_config(tmp_path)
    text = config.read_text()
    assert data.name == "sample_weekly.csv" and data.is_file()
    assert "yearly_seasonality: 2" in text and "yearly_seasonality: auto" not in text
    assert "adstock: auto" in text  # each case builds its own structure


def test_the_model_helpers_it_builds_with_still_exist() -> None:
    """The benchmark builds each case as ``mmm fit`` does; a renamed helper should fail here, not in an hour's run."""
    from mmmlib import model

    assert callable(model.build) and callable(model._fit_rows)
