"""The model config (``config.yaml``, docs/contract.md): which columns play which role, and model choices.

One dataclass, read and written as YAML. Unknown keys and bad values are refused with a
sentence naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePath
from typing import Any

import yaml

from mmmlib import seasonality, structures
from mmmlib.errors import InputError, UsageError

ADSTOCKS = (structures.AUTO, *structures.ADSTOCKS)
SATURATIONS = (structures.AUTO, *structures.SATURATIONS)
BASELINES = (structures.AUTO, *structures.BASELINES)
KPI_TYPES = ("revenue", "count")
FILL_MODES = ("error", "zero")
GEO_MODELS = ("hierarchical", "aggregate")  # one model over the geos, or one model of their national sum


@dataclass
class ModelConfig:
    """Column roles and model choices for one dataset."""

    date_column: str
    target_column: str
    channel_columns: list[str]
    control_columns: list[str] = field(default_factory=list)
    adstock: str = structures.AUTO
    saturation: str = structures.AUTO
    baseline: str = structures.AUTO
    adstock_max_lag: int = 8
    yearly_seasonality: int | str = seasonality.AUTO  # harmonics, or auto: 2 or 4 chosen out of sample
    trend: bool = True
    holdout_periods: int = 0
    kpi_type: str | None = None
    revenue_per_kpi: float | str | None = None
    target_cost_per_kpi: float | None = None
    margin: float = 1.0
    geo_column: str | None = None
    geo_model: str | None = None  # hierarchical | aggregate, for data with a row per geo and period
    aggregate_geos: bool = False  # the old spelling of geo_model: aggregate, still read
    population_column: str | None = None  # per-geo population: the hierarchy pools effects per capita
    media_columns: dict[str, str] = field(default_factory=dict)  # channel → impressions/clicks column fitted on
    organic_columns: list[str] = field(default_factory=list)  # media with no spend: a contribution, no ROAS
    fill_missing_periods: str = "error"
    channel_labels: dict[str, str] = field(default_factory=dict)
    label_aliases: dict[str, str] = field(default_factory=dict)
    priors: dict[str, Any] = field(default_factory=dict)
    lift_tests: str | None = None
    roas_prior: dict[str, list[float]] = field(default_factory=dict)
    hdi_prob: float = 0.94  # probability of every interval the run reports (ArviZ's default)

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        def bad(key: str, why: str) -> InputError:
            return InputError(f"Config key {key}: {why}.")

        if not isinstance(self.date_column, str) or not self.date_column:
            raise bad("date_column", "must name the date column")
        if not isinstance(self.target_column, str) or not self.target_column:
            raise bad("target_column", "must name the KPI column")
        if not isinstance(self.channel_columns, list) or not self.channel_columns:
            raise bad("channel_columns", "must list at least one media spend column")
        if not all(isinstance(c, str) for c in self.channel_columns + list(self.control_columns or [])):
            raise bad("channel_columns", "column names must be text")
        self.control_columns = list(self.control_columns or [])
        self._check_geo_keys(bad)
        roles = [
            self.date_column,
            self.target_column,
            *self.channel_columns,
            *self.control_columns,
            *self.media_columns.values(),
            *self.organic_columns,
            *([self.population_column] if self.population_column else []),
        ]
        dupes = sorted(c for c, n in Counter(roles).items() if n > 1)  # Counter: list.count per name is quadratic
        if dupes:
            raise bad("channel_columns", f"column {dupes[0]} is given more than one role")
        if self.adstock not in ADSTOCKS:
            raise bad("adstock", f"{self.adstock!r} is not one of {', '.join(ADSTOCKS)}")
        if self.saturation not in SATURATIONS:
            raise bad("saturation", f"{self.saturation!r} is not one of {', '.join(SATURATIONS)}")
        if self.baseline not in BASELINES:
            raise bad("baseline", f"{self.baseline!r} is not one of {', '.join(BASELINES)}")
        self._check_roas_prior(bad)
        for key, low in (("adstock_max_lag", 1), ("yearly_seasonality", 0), ("holdout_periods", 0)):
            value = getattr(self, key)
            if key == "yearly_seasonality" and value == seasonality.AUTO:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                also = f" or {seasonality.AUTO}" if key == "yearly_seasonality" else ""
                raise bad(key, f"must be a whole number ≥ {low}{also}, not {value!r}")
        if self.kpi_type is not None and self.kpi_type not in KPI_TYPES:
            raise bad("kpi_type", f"{self.kpi_type!r} is not one of {', '.join(KPI_TYPES)}")
        if self.fill_missing_periods not in FILL_MODES:
            raise bad("fill_missing_periods", f"{self.fill_missing_periods!r} is not one of {', '.join(FILL_MODES)}")
        if not isinstance(self.margin, (int, float)) or isinstance(self.margin, bool) or not 0 < self.margin <= 10:
            raise bad("margin", f"must be a number in (0, 10], not {self.margin!r}")
        if (
            isinstance(self.hdi_prob, bool)
            or not isinstance(self.hdi_prob, (int, float))
            or not 0.5 <= self.hdi_prob < 1
        ):
            raise bad("hdi_prob", f"must be a probability in [0.5, 1), e.g. 0.9, not {self.hdi_prob!r}")
        self.hdi_prob = float(self.hdi_prob)
        if self.target_cost_per_kpi is not None and (
            isinstance(self.target_cost_per_kpi, bool)
            or not isinstance(self.target_cost_per_kpi, (int, float))
            or self.target_cost_per_kpi <= 0
        ):
            raise bad("target_cost_per_kpi", f"must be a positive number, not {self.target_cost_per_kpi!r}")
        if isinstance(self.revenue_per_kpi, bool) or (
            self.revenue_per_kpi is not None and not isinstance(self.revenue_per_kpi, (int, float, str))
        ):
            raise bad("revenue_per_kpi", "must be a number or the name of a column")
        for key in ("trend", "aggregate_geos"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "must be true or false")
        for key in ("channel_labels", "label_aliases", "priors", "media_columns"):
            if not isinstance(getattr(self, key), dict):
                raise bad(key, "must be a mapping")
        if self.lift_tests is not None:
            if not isinstance(self.lift_tests, str) or not self.lift_tests.strip():
                raise bad("lift_tests", "must name a file next to the config")
            if PurePath(self.lift_tests).is_absolute() or ".." in PurePath(self.lift_tests).parts:
                why = "must be a path inside the config's folder (no absolute path, no '..')"
                raise bad("lift_tests", f"{self.lift_tests!r} {why}: the scheduler reads it with its own rights")

    def _check_geo_keys(self, bad: Any) -> None:
        if self.aggregate_geos is True and self.geo_model is None:
            self.geo_model = "aggregate"
        if self.geo_model is not None and self.geo_model not in GEO_MODELS:
            raise bad("geo_model", f"{self.geo_model!r} is not one of {', '.join(GEO_MODELS)}")
        if self.geo_model == "hierarchical" and not self.geo_column:
            raise bad("geo_model", "hierarchical needs geo_column, the column naming each row's geo")
        if self.geo_model == "hierarchical" and self.holdout_periods:
            raise bad("holdout_periods", "geo models hold nothing out yet; set it to 0 or use geo_model: aggregate")
        if self.population_column is not None and (
            not isinstance(self.population_column, str) or not self.population_column
        ):
            raise bad("population_column", "must name the column holding each geo's population")
        if not isinstance(self.media_columns, dict):
            raise bad("media_columns", "must map channel (spend) columns to the impressions or clicks column fitted")
        for channel, column in self.media_columns.items():
            if channel not in self.channel_columns:
                raise bad("media_columns", f"{channel!r} is not one of the channel_columns")
            if not isinstance(column, str) or not column:
                raise bad("media_columns", f"{channel}: give the name of its impressions or clicks column")
        self.organic_columns = list(self.organic_columns or [])
        if not all(isinstance(c, str) and c for c in self.organic_columns):
            raise bad("organic_columns", "must list column names")

    @property
    def hierarchical(self) -> bool:
        """Whether the data's geos are fitted as one hierarchical model (else summed, or there are none)."""
        return self.geo_model == "hierarchical"

    def media_column(self, channel: str) -> str:
        """The column a channel's media effect is fitted on: its impressions/clicks if given, else its spend."""
        return self.media_columns.get(channel, channel)

    def _check_roas_prior(self, bad: Any) -> None:
        if not isinstance(self.roas_prior, dict):
            raise bad("roas_prior", "must map channel names to [low, high]")
        for name, value in self.roas_prior.items():
            if name not in self.channel_columns:
                raise bad("roas_prior", f"{name!r} is not one of the channel_columns")
            ok = isinstance(value, list | tuple) and len(value) == 2
            ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            if not ok or not 0 < value[0] < value[1]:
                raise bad(
                    "roas_prior", f"{name}: give [low, high] with 0 < low < high (a 94 % interval), not {value!r}"
                )
            self.roas_prior[name] = [float(value[0]), float(value[1])]

    @property
    def baseline_form(self) -> str:
        """The trend the model fits: ``trend: false`` means a flat baseline whatever ``baseline`` says."""
        if not self.trend:
            return "flat"
        return structures.AUTO_BASELINE if self.baseline == structures.AUTO else self.baseline

    @property
    def breakeven_roas(self) -> float:
        """Marginal return below which another unit of spend loses money.

        Revenue (or a count KPI turned into revenue): 1 / margin. A count KPI with a target cost per KPI
        and no revenue per KPI: 1 / target cost, in KPI units per unit of spend.
        """
        if self.revenue_per_kpi is None and self.target_cost_per_kpi and self.kpi_type == "count":
            return 1.0 / self.target_cost_per_kpi
        return 1.0 / self.margin

    @property
    def referenced_columns(self) -> list[str]:
        cols = [self.date_column, self.target_column, *self.channel_columns, *self.control_columns]
        if isinstance(self.revenue_per_kpi, str):
            cols.append(self.revenue_per_kpi)
        if self.geo_column:
            cols.append(self.geo_column)
        cols += [*self.media_columns.values(), *self.organic_columns]
        if self.population_column:
            cols.append(self.population_column)
        return cols

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        if not isinstance(data, dict):
            raise InputError("The config must be a YAML mapping of keys to values.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"Config key {unknown[0]} is not known; known keys are {', '.join(sorted(known))}.")
        missing = [k for k in ("date_column", "target_column", "channel_columns") if k not in data]
        if missing:
            raise InputError(f"Config key {missing[0]} is missing.")
        clean = {k: v for k, v in data.items() if v is not None or k in ("kpi_type", "revenue_per_kpi")}
        return cls(**clean)


def lift_tests_path(cfg: ModelConfig, config_path: str | Path) -> Path:
    """The config's lift-test file, which must stay inside the folder holding the config, links included.

    Root's scheduler fits clients' configs: a ``lift_tests`` path leading outside would have it read (and copy
    into the client's run, and quote in error messages) any file on the machine.
    """
    if not cfg.lift_tests:
        raise ValueError("the config names no lift_tests file")
    folder = Path(config_path).parent
    path = folder / cfg.lift_tests
    if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder)):
        raise InputError(
            f"Config key lift_tests: {cfg.lift_tests} is a link to a file outside the config's folder; "
            "copy the file next to the config instead."
        )
    return path


def load_config(path: str | Path) -> ModelConfig:
    """Read ``config.yaml``; a YAML error names the line."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"Config file {path.name} is not valid YAML{where}.") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"Config file {path.name} is not UTF-8 text.") from exc
    return ModelConfig.from_dict(data or {})


def dump_config(config: ModelConfig, comments: dict[str, str] | None = None) -> str:
    """YAML text of the config, with optional ``# why`` comments after keys (for ``mmm config``)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    if not comments:
        return text
    lines = []
    for line in text.splitlines():
        key = line.split(":", 1)[0]
        if key in comments and not line.startswith(" "):
            line = f"{line}  # {comments[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def save_config(config: ModelConfig, path: str | Path) -> None:
    Path(path).write_text(dump_config(config), encoding="utf-8")
