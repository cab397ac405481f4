"""Fit a tiny Google Meridian model the way a Meridian user would, for the importer's tests.

Run in the Meridian environment (it conflicts with ours), e.g.::

    .venv-meridian/bin/python -I tests/meridian_tiny_fit.py OUT_DIR [--geo]

It writes ``OUT_DIR/saved_mmm.pkl`` (``meridian.model.model.save_mmm``, the deprecated joblib pickle users still
have), ``OUT_DIR/model.binpb`` (``schema.serde.meridian_serde.save_meridian``, the supported format) and
``OUT_DIR/meridian_reference.json``: Meridian's own Analyzer numbers, so our tests compare against Meridian itself
rather than against our converter. The fit is deliberately tiny (2 chains, 100 kept draws, few adaptation steps) so
it stays affordable in CI on 2 cores; it is not meant to converge well.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before tensorflow is imported anywhere

import numpy as np
import pandas as pd

PUBLIC = Path(os.environ.get("MMM_PUBLIC_DATA", Path(__file__).resolve().parents[2] / "shared" / "public_data"))
CHANNELS = [f"Channel{i}" for i in range(4)]
CONTROLS = ["competitor_activity_score_control", "sentiment_score_control"]
MULTIPLIERS = [0.0, 0.5, 1.0, 1.5, 2.0]
N_GEOS = 5  # the geo fit keeps the first 5 geos: big enough to be a geo model, small enough for CI
SEED = 20260101
N_KEEP = 100
# (ModelSpec arguments, n_adapt, n_burnin). National: Meridian's defaults (one knot). Geo: Meridian's geo default puts
# a knot at every period (156 here), which a CI-sized run cannot mix (max R-hat 13 with 60/20 steps); one knot, a
# documented ModelSpec choice, and a longer warm-up give max R-hat 1.04-1.10 (seeds, geo counts and warm-ups tried:
# none is reliably under 1.05 at CI cost), under the 1.2 Meridian itself calls converged and the importer accepts.
SETTINGS = {False: ({}, 60, 20), True: ({"knots": 1}, 120, 40)}


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence fd 2 while TensorFlow/JAX load: their C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _input_data(geo: bool):
    """Meridian InputData built with Meridian's own loader, as its getting-started guide does."""
    from meridian import constants
    from meridian.data import load

    csv = PUBLIC / ("meridian_geo_media.csv" if geo else "meridian_national_media.csv")
    df = pd.read_csv(csv)
    if geo:
        keep = sorted(df["geo"].unique(), key=lambda g: int(str(g).removeprefix("Geo")))[:N_GEOS]
        df = df[df["geo"].isin(keep)].reset_index(drop=True)
    columns = load.CoordToColumns(
        time="time",
        geo="geo",
        kpi="conversions",
        revenue_per_kpi="revenue_per_conversion",
        population="population",
        media=[f"{c}_impression" for c in CHANNELS],
        media_spend=[f"{c}_spend" for c in CHANNELS],
        controls=CONTROLS,
    )
    loader = load.DataFrameDataLoader(
        df=df,
        coord_to_columns=columns,
        kpi_type=constants.NON_REVENUE,
        media_to_channel={f"{c}_impression": c for c in CHANNELS},
        media_spend_to_channel={f"{c}_spend": c for c in CHANNELS},
    )
    return loader.load()


def _reference(mmm) -> dict:
    """Meridian's Analyzer numbers the importer's output is compared with (revenue units: revenue_per_kpi given)."""
    from meridian.analysis import analyzer

    an = analyzer.Analyzer(mmm)
    channels = [str(c) for c in mmm.input_data.media_channel.values]
    roi = np.asarray(an.roi())  # (chain, draw, channel), revenue / spend
    roi_kpi = np.asarray(an.roi(use_kpi=True))  # incremental KPI / spend
    curves = an.response_curves(spend_multipliers=MULTIPLIERS)  # revenue
    curves_kpi = an.response_curves(spend_multipliers=MULTIPLIERS, use_kpi=True)
    return {
        "channels": channels,
        "n_chains": int(roi.shape[0]),
        "n_draws": int(roi.shape[1]),
        "draw_order": "chain-major: index = chain * n_draws + draw",
        "roi_units": "revenue per unit of spend (Analyzer.roi(), default use_kpi=False)",
        "roi_draws": {c: roi[:, :, i].reshape(-1).tolist() for i, c in enumerate(channels)},
        "roi_mean": {c: float(roi[:, :, i].mean()) for i, c in enumerate(channels)},
        "roi_kpi_mean": {c: float(roi_kpi[:, :, i].mean()) for i, c in enumerate(channels)},
        "response_curves": {
            "spend_multipliers": MULTIPLIERS,
            "confidence_level": float(curves.attrs["confidence_level"]),
            "spend": {c: curves["spend"].sel(channel=c).values.tolist() for c in channels},
            "incremental_outcome_mean": {
                c: curves["incremental_outcome"].sel(channel=c, metric="mean").values.tolist() for c in channels
            },
            "incremental_kpi_mean": {
                c: curves_kpi["incremental_outcome"].sel(channel=c, metric="mean").values.tolist() for c in channels
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--geo", action="store_true", help=f"fit the geo data (first {N_GEOS} geos)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # Meridian's deprecation and national-model notices are expected here

    t0 = time.perf_counter()
    with _quiet_fd2():
        from meridian.model import model, spec  # loads TensorFlow and JAX
        from meridian.schema.serde import meridian_serde

    timings: dict[str, float] = {"import": time.perf_counter() - t0}
    spec_args, n_adapt, n_burnin = SETTINGS[args.geo]
    t = time.perf_counter()
    mmm = model.Meridian(input_data=_input_data(args.geo), model_spec=spec.ModelSpec(**spec_args))
    mmm.sample_prior(50, seed=SEED)
    timings["prior"] = time.perf_counter() - t
    t = time.perf_counter()
    mmm.sample_posterior(n_chains=2, n_adapt=n_adapt, n_burnin=n_burnin, n_keep=N_KEEP, seed=SEED)
    timings["posterior"] = time.perf_counter() - t

    t = time.perf_counter()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    model.save_mmm(mmm, str(args.out_dir / "saved_mmm.pkl"))
    meridian_serde.save_meridian(mmm, str(args.out_dir / "model.binpb"))
    timings["save"] = time.perf_counter() - t

    t = time.perf_counter()
    reference = _reference(mmm)
    timings["reference"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    reference["geo"] = bool(args.geo)
    reference["model_spec_args"] = spec_args
    reference["sampling"] = {"n_chains": 2, "n_adapt": n_adapt, "n_burnin": n_burnin, "n_keep": N_KEEP, "seed": SEED}
    reference["geos"] = [str(g) for g in mmm.input_data.geo.values]
    reference["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    (args.out_dir / "meridian_reference.json").write_text(json.dumps(reference, indent=1))
    print(f"fitted {'geo' if args.geo else 'national'} Meridian model in {timings['total']:.0f}s: {args.out_dir}")
    print("timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
