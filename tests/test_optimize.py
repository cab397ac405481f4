"""Budget optimisation: closed-form optima, exact budgets, bounds, infeasibility, and pymc-marketing parity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib.analysis import Posterior
from mmmlib.errors import InputError, UsageError
from mmmlib.optimize import Curves, allocate, load_curves, optimise, parse_bounds


def mm_curves(alpha: list[float], lam: list[float], draws: int = 1) -> Curves:
    """Michaelis–Menten curves f_c(x) = alpha_c x / (lam_c + x) with unit scales (closed-form optimum)."""
    k = len(alpha)
    return Curves(
        channels=[f"c{i}" for i in range(k)],
        kind="michaelis_menten",
        params={"alpha": np.tile(alpha, (draws, 1)).astype(float), "lam": np.tile(lam, (draws, 1)).astype(float)},
        channel_scale=np.ones(k),
        target_scale=1.0,
        current=np.full(k, 10.0),
    )


def mm_optimum(alpha: np.ndarray, lam: np.ndarray, budget: float) -> np.ndarray:
    """KKT: alpha lam / (lam + x)^2 = mu for all c  →  x_c = sqrt(alpha_c lam_c / mu) - lam_c (all interior)."""
    root = np.sqrt(alpha * lam)
    return root * (budget + lam.sum()) / root.sum() - lam


@pytest.mark.parametrize("budget", [50.0, 120.0, 400.0])
def test_closed_form_optimum_is_found(budget: float) -> None:
    alpha, lam = np.array([100.0, 60.0, 30.0]), np.array([20.0, 10.0, 5.0])
    x = optimise(mm_curves(alpha, lam), budget, np.zeros(3), np.full(3, np.inf))
    assert x.sum() == pytest.approx(budget, rel=1e-12)
    assert x == pytest.approx(mm_optimum(alpha, lam, budget), rel=1e-4, abs=1e-3)


def test_bounds_are_kept_and_budget_spent_exactly() -> None:
    curves = mm_curves([100.0, 60.0, 30.0], [20.0, 10.0, 5.0])
    lower, upper = parse_bounds(["c0=0:30", "c2=fixed"], curves.channels, curves.current)
    x = optimise(curves, 100.0, lower, upper)
    assert x.sum() == pytest.approx(100.0, rel=1e-12)
    assert x[0] <= 30.0 + 1e-9 and x[2] == pytest.approx(10.0)
    assert x[1] == pytest.approx(100.0 - 30.0 - 10.0, rel=1e-6)  # c0 at its cap takes what the cap allows


def test_percent_bounds_are_relative_to_current() -> None:
    lower, upper = parse_bounds(["c1=-20%:+50%"], ["c0", "c1"], np.array([10.0, 200.0]))
    assert lower[1] == pytest.approx(160.0) and upper[1] == pytest.approx(300.0)
    assert lower[0] == 0 and np.isinf(upper[0])


def test_s_shaped_curves_get_the_global_optimum() -> None:
    """Hill curves with slope 3 are not concave: a local method started badly stalls; the grid does not."""
    k = 2
    curves = Curves(
        channels=["a", "b"],
        kind="hill",
        params={"slope": np.full((1, k), 3.0), "kappa": np.array([[0.5, 0.5]]), "beta": np.array([[1.0, 1.2]])},
        channel_scale=np.ones(k),
        target_scale=1.0,
        current=np.array([0.5, 0.5]),
    )
    x = optimise(curves, 1.0, np.zeros(k), np.full(k, np.inf))
    grid = np.linspace(0, 1, 100001)
    values = curves.mean_response(np.column_stack([grid, 1 - grid])).sum(axis=1)
    assert curves.mean_response(x[None, :]).sum() >= values.max() - 1e-6


@pytest.mark.parametrize(
    ("bounds", "budget", "phrase"),
    [(["c0=60:", "c1=50:"], 100.0, "minimum bounds"), (["c0=:10", "c1=:10", "c2=:10"], 100.0, "maximum bounds")],
)
def test_infeasible_bounds_name_the_conflict(bounds: list[str], budget: float, phrase: str) -> None:
    curves = mm_curves([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    lower, upper = parse_bounds(bounds, curves.channels, curves.current)
    with pytest.raises(InputError, match=phrase) as err:
        optimise(curves, budget, lower, upper)
    assert "c0" in str(err.value)


def test_an_infeasible_allocation_over_many_cells_names_the_largest_bounds_not_all_of_them() -> None:
    """A geo x channel allocation has hundreds of bounds: the sentence names the largest few and counts the rest."""
    curves = mm_curves([1.0] * 200, [1.0] * 200)
    caps = np.arange(1.0, 201.0) / 100
    with pytest.raises(InputError, match="maximum bounds") as err:
        optimise(curves, 1e6, np.zeros(200), caps)
    text = str(err.value)
    assert "c199 ≤ 2.00" in text and "c194 ≤ 1.95" in text and "and 194 more" in text
    assert "c193" not in text and "c0 " not in text


def test_bad_bound_syntax_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_bounds(["tv:1:2"], ["tv"], np.ones(1))
    with pytest.raises(InputError, match="empty"):
        parse_bounds(["tv=5:1"], ["tv"], np.ones(1))


def test_allocation_intervals_come_from_the_draws() -> None:
    rng = np.random.default_rng(0)
    curves = mm_curves([100.0, 60.0], [20.0, 10.0], draws=400)
    curves.params["alpha"] *= rng.lognormal(0, 0.2, curves.params["alpha"].shape)
    result = allocate(curves, 40.0).to_dict()
    total = result["expected_total_contribution"]
    assert total["hdi_low"] < total["mean"] < total["hdi_high"]
    assert result["expected_gain"]["mean"] >= -1e-9  # never worse than today's split, in expectation
    assert sum(c["optimal_spend"] for c in result["channels"]) == pytest.approx(40.0)


def test_cli_optimize_on_the_fitted_run(synth_run: dict, tmp_path: Path) -> None:
    run = synth_run["run_dir"]
    curves = load_curves(run)
    budget = float(curves.current.sum())
    out = subprocess.run(
        [sys.executable, "-m", "mmmlib", "optimize", str(run), "--budget", str(budget), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert sum(c["optimal_spend"] for c in result["channels"]) == pytest.approx(budget, rel=1e-9)
    assert result["expected_total_contribution"]["mean"] >= result["current_total_contribution"]["mean"] - 1e-6
    for ext in ("csv", "txt", "json"):
        path = tmp_path / f"alloc.{ext}"
        cmd = [sys.executable, "-m", "mmmlib", "optimize", str(run), "--budget", str(budget), "--out", str(path)]
        assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
        assert curves.channels[0] in path.read_text()
    assert len(pd.read_csv(tmp_path / "alloc.csv")) == len(curves.channels)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmmlib",
            "optimize",
            str(run),
            "--budget",
            "10",
            "--bounds",
            f"{curves.channels[0]}=100:200",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "minimum bounds" in bad.stderr and "Traceback" not in bad.stderr


def test_numpy_response_and_optimum_match_pymc_marketing(synth_run: dict) -> None:
    """Same posterior draws: our curves equal pymc-marketing's within 1 %, and our optimum is at least as good."""
    from pymc_marketing.mmm import MMM

    run = synth_run["run_dir"]
    idata = xr.open_datatree(run / "posterior.nc")
    curves = Curves.from_posterior(Posterior.from_idata(idata), max_draws=10**9)
    post = idata["posterior"]
    mmm = MMM.load_from_idata(idata)
    # pymc-marketing's own curve of the fitted saturation, on max-scaled spend 0..1.5, every draw
    theirs = mmm.saturation.sample_curve(post.to_dataset(), max_value=1.5, num_points=31)
    theirs = theirs.transpose(..., "x", "channel").values.reshape(-1, 31, len(curves.channels)) * curves.target_scale
    grid = np.linspace(0, 1.5, 31)[:, None] * curves.channel_scale[None, :]
    ours = curves.response(grid)
    assert ours.mean(axis=0)[1:] == pytest.approx(theirs.mean(axis=0)[1:], rel=0.01)
    assert ours[:, 1:].mean() == pytest.approx(theirs[:, 1:].mean(), rel=0.01)

    last = pd.Timestamp(post["date"].values[-1])
    start = last + pd.Timedelta(days=7)
    budget = float(curves.current.sum())
    optimizer = mmm.budget_optimizer(start, start + pd.Timedelta(weeks=11))
    pm_split = np.asarray(optimizer.allocate_budget(total_budget=budget).budgets.values, dtype=float)
    k = len(curves.channels)
    our_split = optimise(curves, budget, np.zeros(k), np.full(k, np.inf))
    value = lambda s: float(curves.mean_response(s[None, :]).sum())  # noqa: E731
    assert value(our_split) >= value(pm_split) * (1 - 1e-9)
