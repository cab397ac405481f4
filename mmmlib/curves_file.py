"""``curves.npz``: the optimiser's inputs, stored beside the posterior when a run is written.

The budget planner, ``mmm optimize`` and ``mmm scenarios`` need only the returns-curve draws, the scales and today's
spend. Reading them out of ``posterior.nc`` means importing xarray and its netCDF backend and decoding the file:
about 1.5 s of every planner page, more for a geo run, whose national mean curves must also be tabulated
(:meth:`mmmlib.optimize.Curves._table`). This file holds exactly the arrays :func:`mmmlib.optimize.load_curves`
would build from the posterior (it is written by reading the posterior back), the table included, in one plain
numpy archive that loads in milliseconds.

It is a cache, never the only copy: it names the ``posterior.nc`` it was read from (size and sha256, about 40 ms
to check for 40 MB), and a run without it (written before it existed), with a file that does not read back whole,
or whose posterior is no longer that one (damaged, replaced) is read from ``posterior.nc`` as before, with that
file's checks.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmmlib.runs import RunDir

if TYPE_CHECKING:
    from mmmlib.optimize import Curves

FORMAT = 1
_ARRAYS = ("channel_scale", "current")


def _fingerprint(run: RunDir) -> dict[str, Any]:
    path = run.posterior_file
    with path.open("rb") as handle:
        return {"size": path.stat().st_size, "sha256": hashlib.file_digest(handle, "sha256").hexdigest()}


def _flatten(curves: Curves, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each array of ``curves`` under ``prefix``; the rest (names, kind, scalars) as a JSON-able dict."""
    for name, values in curves.params.items():
        arrays[f"{prefix}param.{name}"] = np.asarray(values)
    for name in _ARRAYS:
        arrays[f"{prefix}{name}"] = np.asarray(getattr(curves, name), dtype=float)
    meta: dict[str, Any] = {
        "channels": list(curves.channels),
        "kind": curves.kind,
        "params": list(curves.params),
        "target_scale": float(curves.target_scale),
    }
    if curves.parts is not None:
        assert curves.shares is not None and curves.geos is not None
        arrays[f"{prefix}shares"] = np.asarray(curves.shares, dtype=float)
        meta["geos"] = list(curves.geos)
        meta["parts"] = [_flatten(part, f"{prefix}{g}/", arrays) for g, part in enumerate(curves.parts)]
    return meta


def write(curves: Curves, run_dir: str | Path) -> Path:
    """Store ``curves`` (read from the run's posterior) in ``run_dir``, with their tabulated mean curves."""
    table = curves._table(np.asarray(curves.current, dtype=float))  # as the planner's first optimisation would
    arrays: dict[str, np.ndarray] = {}
    meta = _flatten(curves, "", arrays)
    meta["format"] = FORMAT
    meta["value_per_kpi"] = float(curves.value_per_kpi)
    run = RunDir(run_dir)
    meta["posterior"] = _fingerprint(run)
    for name, values in zip(("xs", "ys", "slope"), table, strict=True):
        arrays[f"table.{name}"] = values
    path = run.curves_file
    with path.open("wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
    return path


def _build(meta: dict[str, Any], prefix: str, arrays: Any, value_per_kpi: float, hdi_prob: float) -> Curves:
    from mmmlib.optimize import Curves

    parts = meta.get("parts")
    return Curves(
        channels=list(meta["channels"]),
        kind=str(meta["kind"]),
        params={name: arrays[f"{prefix}param.{name}"] for name in meta["params"]},
        channel_scale=arrays[f"{prefix}channel_scale"],
        target_scale=float(meta["target_scale"]),
        current=arrays[f"{prefix}current"],
        value_per_kpi=value_per_kpi,
        hdi_prob=hdi_prob,
        parts=None
        if parts is None
        else [_build(p, f"{prefix}{g}/", arrays, value_per_kpi, hdi_prob) for g, p in enumerate(parts)],
        shares=None if parts is None else arrays[f"{prefix}shares"],
        geos=None if parts is None else list(meta["geos"]),
    )


def read(run_dir: str | Path, value_per_kpi: float, hdi_prob: float) -> Curves | None:
    """The run's stored curves, or ``None`` when there are none that read back whole, for this KPI value and
    from the run's ``posterior.nc`` as it is now.

    ``value_per_kpi`` and ``hdi_prob`` come from the run's summary; stored curves made with another KPI value (a
    run whose files were mixed by hand) are not used.
    """
    run = RunDir(run_dir)
    path = run.curves_file
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != FORMAT or not np.isclose(meta["value_per_kpi"], value_per_kpi, rtol=1e-12):
            return None
        if run.posterior_file.stat().st_size != meta["posterior"]["size"] or _fingerprint(run) != meta["posterior"]:
            return None
        curves = _build(meta, "", arrays, value_per_kpi, hdi_prob)
        curves._mean_table = (arrays["table.xs"], arrays["table.ys"], arrays["table.slope"])
        # a mixture's parameters (a geo's under its prefix) are NaN where a draw's family lacks them: only the rest
        # must be numbers
        if not all(np.isfinite(v).all() for k, v in arrays.items() if not k.rsplit("/", 1)[-1].startswith("param.")):
            return None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    return curves
