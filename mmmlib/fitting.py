"""One fit from data to a complete staging directory: what ``notebooks/fit_model.ipynb`` calls.

Kept out of the notebook so the notebook stays a few lines and the same code runs in tests.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmmlib import runs, safe_fs
from mmmlib.config import lift_tests_path, load_config, save_config
from mmmlib.data.dataset import load_dataset
from mmmlib.data.lift_tests import read_lift_tests
from mmmlib.errors import InputError
from mmmlib.optimize import run_curves, store_curves
from mmmlib.request import FitRequest

if TYPE_CHECKING:
    from mmmlib.config import ModelConfig
    from mmmlib.data.dataset import Dataset
    from mmmlib.model import Fitted

log = logging.getLogger("mmmlib.fitting")


def fit_to_directory(request: FitRequest, progressbar: bool = True) -> dict[str, Any]:
    """Validate, fit, analyse, and write ``posterior.nc``, ``config.yaml``, ``data.csv`` and, last, ``summary.json``."""
    from mmmlib import model

    data, config = request.data, request.config
    target = runs.RunDir(request.out)
    target.path.mkdir(parents=True, exist_ok=True)
    cfg = load_config(config)
    dataset = load_dataset(data, cfg)
    for warning in dataset.report.warnings:
        log.warning("data: %s", warning.sentence())
    dataset.frame.to_csv(target.frame_file, index=False)
    save_config(cfg, target.config_file)
    lift = None
    if cfg.lift_tests:
        # copied first, then read from the copy: the file checked is the file read, even if swapped meanwhile
        copy = target.lift_tests_file(Path(cfg.lift_tests).suffix.lower() or ".csv")
        try:
            safe_fs.copy_file(lift_tests_path(cfg, config), copy)
        except safe_fs.UnsafePathError as exc:
            raise InputError(f"Config key lift_tests: {exc.strerror}.") from exc
        geos = dataset.geos if dataset.hierarchical else None
        lift = read_lift_tests(copy, cfg.channel_columns, Path(cfg.lift_tests).name, geos, cfg.geo_column)
    fitted = model.fit(dataset, request, progressbar=progressbar, lift_tests=lift)
    if dataset.geo_frame is not None:
        from mmmlib import geo

        dataset.geo_frame.to_csv(target.geo_frame_file, index=False)
        written = geo.compact(fitted.idata)
    else:
        written = fitted.idata
    # the posterior (tens of MB through HDF5, which lets go of the interpreter while it writes) is written while the
    # summary is computed from the same tree in memory; the summary, written last, waits for it
    finish = _writing(written, target.posterior_file)
    try:
        summary = _analysed(fitted, cfg, dataset, request)
        curves = run_curves(target, summary, written)
    except BaseException:
        finish(quiet=True)
        raise
    finish()
    store_curves(target, summary, curves)  # with the finished posterior's fingerprint
    target.write_summary(summary)
    log.info("run written: status %s", summary["status"])
    return summary


def _analysed(fitted: Fitted, cfg: ModelConfig, dataset: Dataset, request: FitRequest) -> dict[str, Any]:
    """The run's summary, from the fitted posterior in memory; a fit that did not converge raises."""
    from mmmlib import model
    from mmmlib.analysis import UNUSABLE_RHAT
    from mmmlib.summary import build_summary

    mode, seed = request.mode, request.seed
    holdout_mape = None
    held = model.predict_holdout(fitted, seed=seed)
    if held is not None:
        actual = fitted.y.iloc[-fitted.holdout :].to_numpy()
        holdout_mape = float(np.mean(np.abs(held.mean(axis=0) - actual) / np.abs(actual)))
        log.info("held-out MAPE over the last %d periods: %.1f%%", fitted.holdout, 100 * holdout_mape)
    created = datetime.now(UTC)
    run = {
        "id": f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        "created_at": created.isoformat(),
        "data_sha256": dataset.sha256(),
        "sampler": fitted.sampler,
        "chains": fitted.chains,
        "tune": fitted.tune,
        "draws": fitted.draws,
        "target_accept": fitted.target_accept,
        "fit_seconds": round(fitted.fit_seconds, 2),
        "seed": seed,
        "frequency": dataset.frequency,
        "source": str(dataset.source),
    }
    summary = build_summary(
        fitted.idata, cfg, dataset.frame, run=run, mode=mode, client=request.client, holdout_mape=holdout_mape
    )
    rhat = summary["diagnostics"]["r_hat_max"]
    if rhat > UNUSABLE_RHAT:
        why = "a chain never moved: R-hat is infinite"
        if math.isfinite(rhat):
            why = f"max R-hat {rhat:.2f} > {UNUSABLE_RHAT}"
        raise InputError(
            f"The fit did not converge ({why}), "
            "so its results are unusable; try --mode full, more tuning steps, fewer channels or more data."
        )
    return summary


def _writing(tree: Any, path: Path) -> Callable[..., None]:
    """Start writing ``tree`` to ``path`` in a thread. The function returned waits for it and raises what the write
    raised (unless ``quiet``: the caller is already failing for another reason)."""
    failed: list[BaseException] = []

    def write() -> None:
        try:
            tree.to_netcdf(path)
        except BaseException as exc:  # handed to the waiting caller
            failed.append(exc)

    thread = threading.Thread(target=write, name="mmm-posterior-write", daemon=True)
    thread.start()

    def finish(quiet: bool = False) -> None:
        thread.join()
        if failed and not quiet:
            raise failed[0]

    return finish
