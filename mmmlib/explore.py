"""The analyst's first look at a dataset (``notebooks/explore_data.ipynb``): quality, series, correlations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mmmlib.data.dataset import Dataset

COLLINEAR = 0.8


def roles(dataset: Dataset) -> dict[str, str]:
    cfg = dataset.config
    out = {cfg.target_column: "KPI"}
    out.update({c: "media spend" for c in cfg.channel_columns})
    out.update({c: "control" for c in dataset.controls})
    return out


def quality_table(dataset: Dataset) -> pd.DataFrame:
    """One row per modelled column: role, total, mean, min, max, share of periods at zero."""
    rows = []
    for col, role in roles(dataset).items():
        v = dataset.frame[col].astype(float)
        rows.append(
            {
                "column": col,
                "label": dataset.labels.get(col, col),
                "role": role,
                "total": v.sum(),
                "mean": v.mean(),
                "min": v.min(),
                "max": v.max(),
                "zero periods": f"{(v == 0).mean():.0%}",
            }
        )
    return pd.DataFrame(rows).set_index("column")


def spend_share(dataset: Dataset) -> pd.Series:
    spend = dataset.frame[dataset.channels].sum()
    return (spend / spend.sum()).rename(index=dataset.labels).sort_values(ascending=False)


def correlations(dataset: Dataset) -> pd.DataFrame:
    cols = [dataset.config.target_column, *dataset.channels, *dataset.controls]
    return dataset.frame[cols].astype(float).corr()


def collinear_channels(dataset: Dataset, threshold: float = COLLINEAR) -> list[str]:
    """Sentences naming channel pairs whose spend moves together (the model cannot tell them apart)."""
    corr = dataset.frame[dataset.channels].astype(float).corr()
    out = []
    for i, a in enumerate(dataset.channels):
        for b in dataset.channels[i + 1 :]:
            r = corr.loc[a, b]
            if abs(r) >= threshold:
                out.append(
                    f"{dataset.labels[a]} and {dataset.labels[b]} move together (r = {r:.2f}): their effects will be "
                    "hard to separate; a lift test on one of them helps."
                )
    return out


def plot_series(dataset: Dataset) -> Any:
    """KPI and spend per channel over time (matplotlib, so it renders in any notebook export)."""
    import matplotlib.pyplot as plt

    dates = pd.to_datetime(dataset.dates)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    ax1.plot(dates, dataset.target, color="black")
    ax1.set_title(f"{dataset.config.target_column} per period")
    bottom = np.zeros(len(dates))
    for ch in dataset.channels:
        values = dataset.frame[ch].to_numpy(dtype=float)
        ax2.fill_between(dates, bottom, bottom + values, step="mid", alpha=0.8, label=dataset.labels[ch])
        bottom = bottom + values
    ax2.set_title("Media spend per period (stacked)")
    ax2.legend(loc="upper left", ncol=4, fontsize=8)
    fig.tight_layout()
    return fig
