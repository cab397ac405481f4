"""The simulation-based calibration benchmark (`benchmarks/sbc.py`) without sampling: ranks, histograms, resuming."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.benchtools import load_benchmark

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sbc() -> ModuleType:
    return load_benchmark("sbc")


def test_rank_counts_the_draws_below_the_truth(sbc: ModuleType) -> None:
    rng = np.random.default_rng(0)
    draws = np.arange(1.0, 100.0)  # L = 99 draws
    assert sbc.rank_of(0.0, draws, rng) == 0
    assert sbc.rank_of(1000.0, draws, rng) == 99
    assert sbc.rank_of(50.5, draws, rng) == 50


def test_ties_are_broken_at_random_over_every_place_the_truth_could_take(sbc: ModuleType) -> None:
    rng = np.random.default_rng(1)
    draws = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    ranks = {sbc.rank_of(2.0, draws, rng) for _ in range(400)}
    assert ranks == {1, 2, 3, 4}  # one below, three tied: the truth may sit before, between or after them
    everything_tied = [sbc.rank_of(0.0, np.zeros(99), rng) for _ in range(5000)]
    counts = sbc.rank_histogram(everything_tied)
    assert sbc.uniformity_p(counts) > 1e-3  # a channel with no spend (ROAS 0 in truth and draws) ranks uniformly


def test_thinning_keeps_l_evenly_spaced_draws_from_first_to_last(sbc: ModuleType) -> None:
    draws = np.arange(1600.0)
    kept = sbc.thin(draws)
    assert len(kept) == sbc.L == 99
    assert kept[0] == 0 and kept[-1] == 1599
    assert np.ptp(np.diff(kept)) <= 1  # even steps, up to rounding
    with pytest.raises(ValueError):
        sbc.thin(np.arange(50.0))


def test_histogram_puts_five_ranks_in_each_of_twenty_bins(sbc: ModuleType) -> None:
    counts = sbc.rank_histogram(range(100))
    assert counts.tolist() == [5] * 20
    assert sbc.rank_histogram([0, 4, 5, 99]).tolist() == [2, 1] + [0] * 17 + [1]
    with pytest.raises(ValueError):
        sbc.rank_histogram([100])


def test_chi_square_accepts_uniform_ranks_and_rejects_skewed_ones(sbc: ModuleType) -> None:
    rng = np.random.default_rng(2)
    uniform = sbc.rank_histogram(rng.integers(0, 100, size=2000))
    assert sbc.uniformity_p(uniform) > 0.01
    assert sbc.uniformity_p(sbc.rank_histogram([0] * 400)) < 1e-6
    # a U shape: intervals too narrow, truths too often outside all draws
    u_shaped = sbc.rank_histogram(np.r_[rng.integers(0, 100, size=1000), [0] * 150, [99] * 150])
    assert sbc.uniformity_p(u_shaped) < 1e-6
    assert sbc.uniformity_p(np.zeros(20, dtype=int)) is None


def test_quantities_fall_into_their_groups(sbc: ModuleType) -> None:
    assert sbc.group_of("roas:tv_spend") == "roas"
    assert sbc.group_of("adstock_theta:tv_spend") == "carry-over"
    assert sbc.group_of("saturation_beta:tv_spend") == "returns"
    assert sbc.group_of("intercept") == "intercept"
    with pytest.raises(ValueError):
        sbc.group_of("y_sigma")


def _row(commit: str, structure: str, sim: int, **extra: object) -> dict:
    return {"commit": commit, "structure": structure, "sim": sim, "seed": 1, "date": "2026-12-01", **extra}


def test_resume_skips_what_this_commit_stored_and_retries_failures(sbc: ModuleType, tmp_path: Path) -> None:
    a, b = "geometric+logistic+changepoints", "delayed+hill+changepoints"
    rows = [
        _row("abc", a, 0, ranks={}),
        _row("abc", a, 1, error="RuntimeError('no acceptable prior draw')"),
        _row("old", a, 2, ranks={}),  # another commit's row is no answer for this one
        _row("abc", b, 0, ranks={}),
    ]
    assert sbc.pending(rows, "abc", [a, b], 3) == [(a, 1), (a, 2), (b, 1), (b, 2)]
    assert sbc.pending(rows, "new", [a], 2) == [(a, 0), (a, 1)]

    path = tmp_path / "sbc.json"
    stored: list[dict] = []
    for row in rows:
        stored = sbc.store_row(stored, row, path)
    stored = sbc.store_row(stored, _row("abc", a, 1, ranks={"intercept": 3}), path)  # the retry replaces the failure
    again = sbc.load_rows(path)
    assert again == stored and len(again) == 4
    assert sbc.pending(again, "abc", [a, b], 3) == [(a, 2), (b, 1), (b, 2)]


def test_seeds_differ_per_simulation_and_structure_and_repeat_on_rerun(sbc: ModuleType) -> None:
    seeds = {sbc.sim_seed(0, s, i) for s in ("a", "b") for i in range(50)}
    assert len(seeds) == 100
    assert sbc.sim_seed(0, "a", 3) == sbc.sim_seed(0, "a", 3) != sbc.sim_seed(1, "a", 3)


def test_a_simulated_kpi_must_be_positive_and_not_absurd(sbc: ModuleType) -> None:
    assert sbc.acceptable(np.array([1.0, 5.0, 2.0]), design_max=10.0)
    assert not sbc.acceptable(np.array([1.0, 0.0, 2.0]), design_max=10.0)
    assert not sbc.acceptable(np.array([1.0, 5.0, sbc.ABSURD * 10.0 + 1]), design_max=10.0)
    assert not sbc.acceptable(np.array([1.0, np.nan]), design_max=10.0)


@pytest.mark.slow
def test_report_pools_each_group_and_tests_each_roas_channel(sbc: ModuleType, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = [
        _row(
            "abc",
            "geometric+logistic+changepoints",
            i,
            seconds=10.0,
            divergences=int(i == 0),
            r_hat_max=1.0,
            passed_over=3,
            ranks={"roas:tv": 0, "roas:radio": int(rng.integers(0, 100)), "adstock_alpha:tv": 50, "intercept": 7},
        )
        for i in range(40)
    ]
    text = sbc.report(rows, "abc", tmp_path)
    assert "40 simulations (0 failed); prior draws passed over: 120 (acceptance 25.0%)" in text
    assert "divergences: 1 in 1 simulations" in text
    roas_tv = next(line for line in text.splitlines() if line.startswith("| ROAS tv |"))
    assert roas_tv.endswith(f"| {sbc.fmt_p(sbc.uniformity_p(sbc.rank_histogram([0] * 40)))} |")
    assert "| ROAS (pooled) | 80 |" in text
    assert "| returns (pooled) | 0 |" in text


@pytest.mark.slow  # imports PyMC: seconds
def test_a_fixed_target_scale_gives_the_fit_the_priors_of_the_design(sbc: ModuleType) -> None:
    """SBC fits simulated KPIs with the design KPI's scale, so its priors are those the truth was drawn from."""
    from mmmlib import model, structures

    ds = sbc.load_design(weeks=52)
    structure = structures.Structure("geometric", "logistic")
    own, X, y, _ = model.build(ds, structure)
    design_scale = float(np.abs(y.to_numpy()).max())
    fixed, *_ = model.build(ds, structure, target_scale=design_scale / 4)
    fixed.build_model(X, y * 3)  # another KPI: without the fixed scale its largest value would be the scale
    assert float(fixed.model["target_scale"].get_value()) == pytest.approx(design_scale / 4)
    own.build_model(X, y)
    # the same ROAS, carry-over and shape (both models' initial point) on a KPI divided by a quarter of its scale:
    # effect sizes four times as large
    beta = [
        m.model.compile_fn(
            m.model.replace_rvs_by_values([m.model["saturation_beta"]])[0],
            inputs=m.model.value_vars,
            on_unused_input="ignore",
        )(m.model.initial_point())
        for m in (own, fixed)
    ]
    np.testing.assert_allclose(beta[1] / beta[0], 4.0, rtol=1e-9)
