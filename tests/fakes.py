"""Small fakes shared by the unit tests (no model is fitted here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from mmmlib import structures
from mmmlib.config import ModelConfig


def raise_key_error(key: str) -> None:
    """A helper outside ``mmmlib`` and ``cli.py`` that fails the way a bug does."""
    return {}[key]


@dataclass
class FakeFit:
    """A posterior built by hand in the shape ``mmmlib.model`` saves, with the config and data it was "fitted" to.

    ``contributions`` ``(draw, date, channel)`` are in target units, the draws flattened chain by chain as
    ``analysis.stacked`` flattens them; ``spend`` is ``(date, channel)``.
    """

    tree: xr.DataTree
    config: ModelConfig
    frame: pd.DataFrame
    contributions: np.ndarray
    spend: np.ndarray
    target_scale: float


def fake_fit(
    chains: int = 2,
    draws: int = 200,
    weeks: int = 30,
    channels: tuple[str, ...] = ("tv", "search"),
    *,
    l_max: int = 4,
    divergences: int = 0,
    seed: int = 0,
) -> FakeFit:
    """Logistic saturation after geometric carry-over, as pymc-marketing computes it, on max-scaled spend.

    Parameters are drawn independently (every chain from the same distribution, so R-hat ≈ 1 and ESS ≈ the number
    of draws); ``divergences`` marks that many transitions divergent. The KPI is the posterior mean of ``mu`` with
    a little noise: R² near 1, MAPE a few percent.
    """
    rng = np.random.default_rng(seed)
    n, k = chains * draws, len(channels)
    dates = pd.date_range("2024-01-01", periods=weeks, freq="7D")
    base = np.linspace(100.0, 40.0, k)
    spend = base * (1 + 0.3 * np.sin(np.arange(weeks)[:, None] / 3.0 + np.arange(k)))  # (date, channel)
    channel_scale = spend.max(axis=0)
    target_scale = 1000.0
    lam = rng.normal(np.linspace(2.0, 1.0, k), 0.1, (n, k))
    beta = rng.normal(np.linspace(0.3, 0.2, k), 0.02, (n, k))
    alpha = rng.uniform(0.3, 0.5, (n, k))
    w = structures.adstock_weights("geometric", {"alpha": alpha[:, None, :]}, l_max)  # (draw, lag, channel)
    x = spend / channel_scale
    carried = sum(w[:, lag, None, :] * np.vstack([np.zeros((lag, k)), x[: weeks - lag]])[None] for lag in range(l_max))
    contrib = structures.SATURATION_FAMILIES["logistic"].curve(
        {"lam": lam[:, None, :], "beta": beta[:, None, :]}, carried
    )
    intercept = rng.normal(0.5, 0.01, n)
    mu = intercept[:, None] + contrib.sum(axis=2)
    target = mu.mean(axis=0) * target_scale * (1 + 0.02 * np.cos(np.arange(weeks)))

    def by_chain(a: np.ndarray) -> np.ndarray:
        return a.reshape(chains, draws, *a.shape[1:])

    sample = {"chain": np.arange(chains), "draw": np.arange(draws)}
    names = list(channels)
    posterior = xr.Dataset(
        {
            "saturation_lam": (("chain", "draw", "channel"), by_chain(lam)),
            "saturation_beta": (("chain", "draw", "channel"), by_chain(beta)),
            "adstock_alpha": (("chain", "draw", "channel"), by_chain(alpha)),
            "intercept_contribution": (("chain", "draw"), by_chain(intercept)),
            "y_sigma": (("chain", "draw"), by_chain(rng.normal(0.05, 0.002, n))),
            "channel_contribution": (("chain", "draw", "date", "channel"), by_chain(contrib)),
            "mu": (("chain", "draw", "date"), by_chain(mu)),
        },
        coords={**sample, "date": dates, "channel": names},
    )
    constant = xr.Dataset(
        {
            "channel_data": (("date", "channel"), spend),
            "target_data": (("date",), target),
            "target_scale": ((), target_scale),
            "channel_scale": (("channel",), channel_scale),
        },
        coords={"date": dates, "channel": names},
    )
    diverging = np.zeros(n, dtype=bool)
    diverging[rng.choice(n, size=divergences, replace=False)] = True
    stats = xr.Dataset({"diverging": (("chain", "draw"), by_chain(diverging))}, coords=sample)
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant, "sample_stats": stats})
    config = ModelConfig(
        date_column="week",
        target_column="revenue",
        channel_columns=names,
        adstock="geometric",
        saturation="logistic",
        adstock_max_lag=l_max,
    )
    frame = pd.DataFrame({"week": dates, "revenue": target, **{c: spend[:, j] for j, c in enumerate(names)}})
    return FakeFit(tree, config, frame, contrib * target_scale, spend, target_scale)
