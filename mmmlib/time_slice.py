"""Time-slice cross-validation of candidate structures: full mode's out-of-sample score.

PSIS-LOO (quick mode's score) leaves out one week at a time with its neighbours still in the fit, so a structure
that bends its baseline around every week can look as good as one that forecasts. Time-slice cross-validation asks
what a planner needs: fitted on the weeks up to a cut, how well does each structure predict the next quarter it has
not seen? The folds are pymc-marketing's ``TimeSliceCrossValidator.split`` (expanding window): ``FOLDS`` cuts, each
``HORIZON_WEEKS`` before the next, the last one ``HORIZON_WEEKS`` before the end of the fitted data. Each candidate
is refitted on every fold's training weeks with quick mode's per-candidate steps and scored on the held-out weeks by
its log predictive density, week by week (``log mean_s N(y_t | mu_ts, sigma_s)``, carry-over from the training
weeks included). The pointwise scores go to arviz as leave-future-out results, and ``arviz.compare`` weighs the
candidates by pseudo-BMA+, as quick mode weighs PSIS-LOO (:mod:`mmmlib.stacking`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mmmlib import jax_placeholder, policy
from mmmlib.data.dataset import Dataset

log = logging.getLogger("mmmlib.time_slice")

FOLDS = 3  # forecast origins
HORIZON_WEEKS = 13  # a quarter ahead from each origin: how far budgets are usually planned
MIN_TRAIN_WEEKS = 52  # a fold's training weeks hold at least a year, so yearly seasonality is learned


@dataclasses.dataclass(frozen=True)
class Fold:
    """Train on rows ``[0, train)``, score rows ``[train, train + horizon)`` of the fitted data."""

    train: int
    horizon: int


def folds(rows: int, frequency: str) -> list[Fold]:
    """The expanding-window folds over ``rows`` fitted periods (``[]`` when the data are too short for them)."""
    from pymc_marketing.mmm.time_slice_cross_validation import TimeSliceCrossValidator

    horizon = policy.periods(HORIZON_WEEKS, frequency)
    first = rows - FOLDS * horizon
    if first < policy.periods(MIN_TRAIN_WEEKS, frequency):
        return []
    splitter = TimeSliceCrossValidator(n_init=first, forecast_horizon=horizon, date_column="date", step_size=horizon)
    index = pd.DataFrame({"date": pd.date_range("2000-01-03", periods=rows, freq="D")})
    return [Fold(int(test[0]), len(test)) for _, test in splitter.split(index)]


def fold_dataset(dataset: Dataset, fold: Fold) -> Dataset:
    """The dataset of one fold: its training rows, then the held-out rows as the model's held-out periods."""
    frame = dataset.frame.iloc[: fold.train + fold.horizon].reset_index(drop=True)
    config = dataclasses.replace(dataset.config, holdout_periods=fold.horizon)
    return dataclasses.replace(dataset, frame=frame, config=config)


def fitted_rows(dataset: Dataset) -> Dataset:
    """The rows the full fit is fitted to (a config's own held-out periods are never seen by the folds either)."""
    holdout = dataset.config.holdout_periods
    if not holdout:
        return dataset
    frame = dataset.frame.iloc[:-holdout].reset_index(drop=True)
    return dataclasses.replace(dataset, frame=frame, config=dataclasses.replace(dataset.config, holdout_periods=0))


def pointwise_lpd(fitted: Any) -> np.ndarray:
    """Log predictive density of each held-out period under a fold's fit, ``log mean_s N(y_t | mu_ts, sigma_s)``, on
    the KPI divided by the fold's scale, the units of the PSIS-LOO log-likelihood (:mod:`mmmlib.model`)."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    draws = fitted.holdout_draws  # (sample, period) in KPI units, samples in (chain, draw) order
    if draws is None:
        raise ValueError("a fold's fit has no held-out predictions")
    post = fitted.idata["posterior"]
    scale = float(np.asarray(fitted.idata["constant_data"]["target_scale"].values).reshape(-1)[0])
    sigma = np.asarray(post["y_sigma"].stack(sample=("chain", "draw")).values).reshape(-1)
    actual = fitted.y.iloc[-fitted.holdout :].to_numpy(dtype=float) / scale
    density = norm.logpdf(actual[None, :], loc=draws / scale, scale=sigma[:, None])
    with jax_placeholder.hidden():
        return logsumexp(density, axis=0) - np.log(len(sigma))


def score(
    dataset: Dataset, shapes: list[Any], fit_jobs: Callable[[list[tuple[Any, Any]]], list[Any]]
) -> dict[str, np.ndarray] | None:
    """Pointwise held-out log predictive densities per candidate name, over every fold's held-out periods.

    ``fit_jobs([(fold dataset, structure), ...])`` fits each and returns them with their held-out predictions (the
    caller's worker pool). None when the data are too short for the folds.
    """
    base = fitted_rows(dataset)
    cuts = folds(len(base.frame), dataset.frequency)
    if not cuts:
        log.info("time-slice cross-validation skipped: too few periods for %d folds of %d weeks", FOLDS, HORIZON_WEEKS)
        return None
    log.info(
        "time-slice cross-validation: %d candidates × %d folds, training on the first %s periods, %d ahead each",
        len(shapes),
        len(cuts),
        "/".join(str(c.train) for c in cuts),
        cuts[0].horizon,
    )
    jobs = [(fold_dataset(base, cut), shape) for shape in shapes for cut in cuts]
    fits = fit_jobs(jobs)
    out: dict[str, np.ndarray] = {}
    for k, shape in enumerate(shapes):
        parts = fits[k * len(cuts) : (k + 1) * len(cuts)]
        out[shape.name] = np.concatenate([pointwise_lpd(f) for f in parts])
    return out


def elpd_data(pointwise: np.ndarray, samples: int) -> Any:
    """arviz's leave-future-out record of one candidate's pointwise scores, for ``arviz.compare``."""
    import xarray as xr
    from arviz_stats.utils import ELPDDataLFO

    n = len(pointwise)
    return ELPDDataLFO(
        elpd=float(pointwise.sum()),
        se=float(np.sqrt(n * np.var(pointwise))),
        p=float("nan"),
        n_samples=samples,
        n_data_points=n,
        scale="log",
        warning=False,
        good_k=None,
        elpd_i=xr.DataArray(pointwise, dims=("period",)),
        forecast_horizon=HORIZON_WEEKS,
        min_observations=MIN_TRAIN_WEEKS,
        refits=np.arange(FOLDS),
        n_refits=FOLDS,
    )
