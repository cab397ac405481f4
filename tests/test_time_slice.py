"""Time-slice cross-validation (full mode's weights of candidate structures): folds, scores and weights, no sampling."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from mmmlib import stacking, time_slice
from tests.test_structures import fake_member

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def test_folds_are_expanding_windows_each_a_quarter_ahead_ending_with_the_data() -> None:
    cuts = time_slice.folds(156, "weekly")
    assert [(c.train, c.horizon) for c in cuts] == [(117, 13), (130, 13), (143, 13)]
    assert cuts[-1].train + cuts[-1].horizon == 156  # the last quarter is the last one scored
    daily = time_slice.folds(3 * 364, "daily")
    assert [c.horizon for c in daily] == [91, 91, 91] and daily[-1].train + 91 == 3 * 364
    # a fold must train on a year at least: 52 + 3 × 13 weeks is the shortest series scored
    assert time_slice.folds(91, "weekly") and not time_slice.folds(90, "weekly")


def test_fold_dataset_holds_out_the_quarter_after_its_cut_and_never_the_users_own_holdout() -> None:
    from mmmlib.config import load_config
    from mmmlib.data.dataset import load_dataset

    config = dataclasses.replace(load_config(SAMPLE / "sample_config.yaml"), holdout_periods=8)
    ds = load_dataset(SAMPLE / "sample_weekly.csv", config)
    base = time_slice.fitted_rows(ds)
    assert len(base.frame) == len(ds.frame) - 8 and base.config.holdout_periods == 0
    cut = time_slice.folds(len(base.frame), ds.frequency)[0]
    fold = time_slice.fold_dataset(base, cut)
    assert len(fold.frame) == cut.train + 13 and fold.config.holdout_periods == 13
    # the held-out rows are the 13 weeks right after the training rows, never the user's last 8
    pd.testing.assert_frame_equal(fold.frame, ds.frame.iloc[: cut.train + 13].reset_index(drop=True))


def fold_fit(actual: np.ndarray, means: np.ndarray, sigma: np.ndarray, scale: float) -> SimpleNamespace:
    """A fold's fit as the scorer reads it: held-out draws (KPI units), ``y_sigma`` on the scaled KPI, the KPI."""
    chains, draws = 2, len(sigma) // 2
    post = xr.Dataset(
        {"y_sigma": (("chain", "draw"), sigma.reshape(chains, draws))},
        coords={"chain": [0, 1], "draw": np.arange(draws)},
    )
    tree = xr.DataTree.from_dict({"posterior": post, "constant_data": xr.Dataset({"target_scale": scale})})
    y = pd.Series(np.concatenate([np.full(10, 1.0), actual]))
    return SimpleNamespace(holdout_draws=means, idata=tree, y=y, holdout=len(actual))


def test_the_score_is_the_log_of_the_mean_predictive_density_of_each_held_out_period() -> None:
    rng = np.random.default_rng(0)
    scale = 200.0
    sigma = rng.uniform(0.02, 0.05, size=400)  # on the KPI divided by its scale
    means = rng.normal(100.0, 3.0, size=(400, 4))
    actual = np.array([98.0, 101.0, 104.0, 90.0])
    got = time_slice.pointwise_lpd(fold_fit(actual, means, sigma, scale))
    # on the KPI divided by its scale, as the PSIS-LOO log-likelihood is
    want = np.log(np.mean(norm.pdf(actual[None, :] / scale, means / scale, sigma[:, None]), axis=0))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_time_slice_scores_decide_the_weights_and_are_recorded_beside_loo() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(-1.0, 0.05, size=(2, 200, 60))
    members = [fake_member("geometric", same, 1), fake_member("delayed", same + 0.001, 2)]
    ahead = rng.normal(-2.0, 0.3, size=39)
    # PSIS-LOO cannot tell the two apart; the held-out quarters can
    weights, records = stacking.compare(
        members, {members[0].structure.name: ahead, members[1].structure.name: ahead - 0.4}
    )
    assert weights[0] > 0.99
    assert records[0]["weighted_by"] == "time-slice CV" and records[0]["elpd_cv"] == pytest.approx(ahead.sum())
    assert records[1]["elpd_cv"] == pytest.approx((ahead - 0.4).sum()) and records[1]["elpd_loo"] is not None
    # equal held-out scores share the weight, as equal LOO scores do
    alike = ahead + rng.normal(0, 0.01, size=39)
    weights, _ = stacking.compare(members, {members[0].structure.name: ahead, members[1].structure.name: alike})
    assert weights == pytest.approx([0.5, 0.5], abs=0.1)


@pytest.mark.slow
def test_full_mode_refits_each_candidate_on_the_folds_and_weighs_by_the_quarters_ahead(tmp_path: Path) -> None:
    import subprocess
    import sys

    def mmm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)

    data = tmp_path / "data"
    assert mmm("synth", "--out", str(data), "--weeks", "104", "--channels", "2", "--seed", "7").returncode == 0
    config = (data / "config.yaml").read_text().replace("saturation: logistic", "saturation: auto")
    # two candidates: geometric carry-over, logistic or Hill returns; and the seasonality's order chosen, so the first
    # one's fit with the order not kept joins them, with folds of its own
    config = config.replace("yearly_seasonality: 2", "yearly_seasonality: auto")
    (data / "config.yaml").write_text(config)
    run = tmp_path / "run"
    steps = ["--chains", "2", "--tune", "300", "--draws", "300"]  # small, for the test's time; folds take them too
    fit = mmm("fit", str(data / "data.csv"), "--config", str(data / "config.yaml"), "--out", str(run), "--mode", "full",
              "--seed", "3", *steps)  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "Structures weighed out of sample (time-slice CV, pseudo-BMA+)" in fit.stdout
    log = (run / "fit.log").read_text()
    assert "time-slice cross-validation: 2 candidates × 3 folds, training on the first 65/78/91 periods" in log
    assert "time-slice cross-validation: 1 candidates × 3 folds" in log  # the other order's
    # the folds are fitted by the candidates' worker processes (started with the kernel), not by a fresh pair
    assert "fitting 6 candidate structures, 2 at a time in worker processes" in log
    assert "starting 2 fit worker processes" not in log
    model = json.loads((run / "summary.json").read_text())["model"]
    candidates = model["candidates"]
    kept = model["seasonality"]["order"]
    assert [(c["saturation"], c.get("yearly_seasonality")) for c in candidates] == [
        ("logistic", None),
        ("hill", None),
        ("logistic", 6 - kept),
    ]
    for c in candidates:
        assert c["weighted_by"] == "time-slice CV" and np.isfinite(c["elpd_cv"]) and c["elpd_cv_se"] > 0
        assert np.isfinite(c["elpd_loo"])  # still reported beside it
    assert sum(c["weight"] for c in candidates) == pytest.approx(1.0, abs=1e-3)
