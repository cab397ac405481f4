"""A model fitted and saved with PyMC-Marketing the way its own tutorial does, for the import tests.

Run as a script (``python tests/pymc_user_model.py DATA OUT.nc``): PyMC-Marketing's example data, its MMM with
geometric carry-over and logistic returns, fitted briefly and saved with ``MMM.save``. Nothing of mmmlib is used.
"""

from __future__ import annotations

import sys

import pandas as pd


def main(data: str, out: str) -> None:
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    frame = pd.read_csv(data, parse_dates=["date_week"])
    mmm = MMM(
        date_column="date_week",
        channel_columns=["x1", "x2"],
        control_columns=["event_1", "event_2", "t"],
        target_column="y",
        adstock=GeometricAdstock(l_max=8),
        saturation=LogisticSaturation(),
        yearly_seasonality=2,
    )
    X = frame.drop(columns="y")
    mmm.fit(X, frame["y"], chains=2, tune=600, draws=300, random_seed=42, progressbar=False)
    mmm.save(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
