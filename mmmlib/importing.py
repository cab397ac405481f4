"""One model fitted elsewhere turned into a complete staging directory: what ``notebooks/import_model.ipynb`` calls.

The run is written as a fit's is (docs/contract.md: ``posterior.nc``, ``config.yaml``, ``data.csv``, last
``summary.json``), so the dashboards, reports, optimiser, forecasts and schedules treat it as one of ours. The summary
says where it came from (``source``, ``source_version``) and judges the model by full mode's diagnostic thresholds:
an imported model is a finished model, so a poor fit is flagged and refused advice as ours would be.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmmlib import geo, runs
from mmmlib.config import ModelConfig, save_config
from mmmlib.optimize import store_curves
from mmmlib.request import ImportRequest

log = logging.getLogger("mmmlib.importing")

MODE = "full"  # whose thresholds an imported model's diagnostics are held to


@dataclass
class Imported:
    """A model fitted elsewhere, in the shape a run is written from."""

    idata: Any  # the posterior in mmmlib's conventions (analysis reads it as one of our fits)
    config: ModelConfig
    frame: Any  # the data the model was fitted on (a pandas frame), one row per period (and geo)
    source: str  # who fitted it: "pymc-marketing" or "meridian"
    version: str  # that library's version
    sampler: dict[str, Any]  # sampler, chains, tune, draws, as the run's ``run`` block records them
    diagnostics: dict[str, Any] | None = None  # R-hat, ESS, divergences as its library measured them (else ours)
    amend: Callable[[dict[str, Any]], None] | None = None  # puts the library's own numbers into the summary


def read_model(request: ImportRequest, workdir: Path) -> Any:
    """The request's model as :class:`Imported` (``workdir``: where a converter may write)."""
    if request.kind == "pymc-marketing":
        from mmmlib import pymc_import

        return pymc_import.read(request.model, request.kpi_type, request.revenue_per_kpi)
    from mmmlib import meridian_import

    return meridian_import.read(request.model, request.kpi_type, request.revenue_per_kpi, workdir)


# Meridian's own model review calls a model converged below R-hat 1.2
# (meridian.analysis.review.configs.ConvergenceConfig.convergence_threshold), and its users are told so. Refusing
# such a model would hide one Meridian passes; it imports instead as a `warning` run (full mode's 1.01 is missed):
# no advice, executives see it only after `mmm accept`. Other sources are refused above our own UNUSABLE_RHAT.
REFUSED_ABOVE_RHAT = {"meridian": 1.2}


def import_to_directory(request: ImportRequest) -> dict[str, Any]:
    """Read the model, analyse its posterior, and write the run's files, ``summary.json`` last."""
    from mmmlib.analysis import UNUSABLE_RHAT
    from mmmlib.data.dataset import load_dataset
    from mmmlib.errors import InputError
    from mmmlib.summary import build_summary

    target = runs.RunDir(request.out)
    target.path.mkdir(parents=True, exist_ok=True)
    model = read_model(request, target.path / request.kind)
    by_geo = model.config.geo_column is not None
    model.frame.to_csv(target.geo_frame_file if by_geo else target.frame_file, index=False)
    save_config(model.config, target.config_file)
    # the model's data, checked as any data we fit (a geo model's: per geo, then summed as a geo fit's data.csv)
    dataset = load_dataset(target.geo_frame_file if by_geo else target.frame_file, model.config)
    for warning in dataset.report.warnings:
        log.warning("data: %s", warning.sentence())
    if by_geo:
        dataset.frame.to_csv(target.frame_file, index=False)
        geo.compact(model.idata).to_netcdf(target.posterior_file)
    else:
        model.idata.to_netcdf(target.posterior_file)
    created = datetime.now(UTC)
    run = {
        "id": f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        "created_at": created.isoformat(),
        "data_sha256": dataset.sha256(),
        **model.sampler,
        "fit_seconds": None,
        "seed": None,
        "frequency": dataset.frequency,
        "source": str(Path(request.model).name),
        "model_sha256": _sha256(Path(request.model)),
    }
    summary = build_summary(
        model.idata,
        model.config,
        dataset.frame,
        run=run,
        mode=MODE,
        client=request.client,
        source=(model.source, model.version),
        diagnostics=model.diagnostics,
    )
    if model.amend is not None:
        model.amend(summary)
    limit = REFUSED_ABOVE_RHAT.get(model.source, UNUSABLE_RHAT)
    if summary["diagnostics"]["r_hat_max"] > limit:
        raise InputError(
            f"The {model.source} model did not converge (max R-hat {summary['diagnostics']['r_hat_max']:.2f} > "
            f"{limit}), so its results are unusable; refit it with more draws before importing."
        )
    store_curves(target, summary)
    target.write_summary(summary)
    log.info("%s model imported: status %s", model.source, summary["status"])
    return summary


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
