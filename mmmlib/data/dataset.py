"""The dataset a model fits: validated, sorted, one row per period, with display labels.

``propose_config`` turns detection into an editable config; ``load_dataset`` refuses
anything validation calls an error, with every problem in the message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmmlib.config import ModelConfig
from mmmlib.data.detect import Detection, detect
from mmmlib.data.issues import Report
from mmmlib.data.labels import channel_label
from mmmlib.data.reader import RawTable, read_raw
from mmmlib.data.validate import check
from mmmlib.errors import InputError


@dataclass
class Dataset:
    """Clean data plus the config that gives its columns their roles."""

    frame: pd.DataFrame
    config: ModelConfig
    frequency: str
    report: Report
    source: Path
    geo_frame: pd.DataFrame | None = None  # hierarchical geo data: one row per (period, geo); ``frame`` is their sum

    @property
    def geos(self) -> list[str]:
        """The geos of a hierarchical dataset, sorted (empty for national data)."""
        if self.geo_frame is None:
            return []
        return sorted(self.geo_frame[self.config.geo_column].unique())

    @property
    def hierarchical(self) -> bool:
        """Whether this is fitted as one hierarchical geo model (geo rows, and a config that says so); the national
        sum of a geo dataset is not (:func:`mmmlib.model.national_sum`)."""
        return self.geo_frame is not None and self.config.hierarchical

    @property
    def channels(self) -> list[str]:
        return list(self.config.channel_columns)

    @property
    def controls(self) -> list[str]:
        """The columns fitted as controls: the config's, then its organic media (a linear effect, no ROAS)."""
        wanted = [*self.config.control_columns, *self.config.organic_columns]
        return [c for c in wanted if c in self.frame.columns]

    @property
    def labels(self) -> dict[str, str]:
        return {c: channel_label(c, self.config.label_aliases, self.config.channel_labels) for c in self.channels}

    @property
    def dates(self) -> pd.Series:
        return self.frame[self.config.date_column]

    @property
    def target(self) -> pd.Series:
        return self.frame[self.config.target_column]

    def sha256(self) -> str:
        return hashlib.sha256(self.frame.to_csv(index=False).encode()).hexdigest()


def propose_config(raw: RawTable) -> tuple[ModelConfig, Detection]:
    """A config from detected roles; raises when no date, KPI or spend column can be found."""
    det = detect(raw.frame)
    if det.date_column is None:
        raise InputError(f"No column of {raw.path.name} reads as dates; name the date column in the config.")
    if det.target_column is None:
        raise InputError(f"No numeric column of {raw.path.name} looks like a KPI; name target_column in the config.")
    if not det.channel_columns:
        raise InputError(
            f"No column of {raw.path.name} looks like media spend (non-negative numbers); "
            "name channel_columns in the config."
        )
    config = ModelConfig(
        date_column=det.date_column,
        target_column=det.target_column,
        channel_columns=det.channel_columns,
        control_columns=det.control_columns,
        kpi_type=det.kpi_type,
        revenue_per_kpi=det.revenue_per_kpi,
        geo_column=det.geo_column,
        geo_model="hierarchical" if det.geo_column is not None else None,
        population_column=det.population_column,
        media_columns=det.media_columns,
        organic_columns=det.organic_columns,
    )
    return config, det


def load_dataset(path: str | Path, config: ModelConfig) -> Dataset:
    """Read and validate ``path``; raise :class:`InputError` listing every error if it is not usable."""
    raw = read_raw(path)
    checked = check(raw, config)
    if checked.frame is None or checked.frequency is None:
        lines = checked.report.lines(limit=20)
        raise InputError(f"{raw.path.name} is not usable: {checked.report.error_count} problems.\n" + "\n".join(lines))
    return Dataset(checked.frame, config, checked.frequency, checked.report, raw.path, checked.geo_frame)
