"""What one KPI unit is worth follows one rule (``analysis.kpi_value``) in the summary, the optimiser and the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib import analysis
from mmmlib.config import ModelConfig
from mmmlib.summary import build_summary
from tests.test_identification import hand_posterior


def _summary(**config: object) -> dict:
    tree = hand_posterior()
    cfg = ModelConfig(date_column="week", target_column="revenue", channel_columns=["c0", "c1"], **config)
    post = analysis.Posterior.from_idata(tree)
    frame = pd.DataFrame({"week": post.dates, "revenue": post.target, "c0": post.spend[:, 0], "c1": post.spend[:, 1]})
    return build_summary(tree, cfg, frame, run={"id": "v", "created_at": "2026-12-01T00:00:00"}, mode="quick")


def _blended(summary: dict) -> float:
    media = sum(c["contribution"]["mean"] for c in summary["channels"])
    value = analysis.kpi_value(summary["kpi_type"], summary["revenue_per_kpi"])
    return media * value / summary["totals"]["spend"]


@pytest.mark.parametrize("kpi_type", ["revenue", "count"])
def test_blended_roas_agrees_with_the_channels_when_revenue_per_kpi_is_set(kpi_type: str) -> None:
    """A revenue KPI with ``revenue_per_kpi`` in its config is worth 1 per unit: the blended ROAS is not doubled."""
    summary = _summary(kpi_type=kpi_type, revenue_per_kpi=2.0)
    blended = summary["totals"]["blended_roas"]["mean"]
    assert blended == pytest.approx(_blended(summary), rel=1e-9)
    spend = np.array([c["spend"] for c in summary["channels"]])
    by_channel = sum(c["roas"]["mean"] * s for c, s in zip(summary["channels"], spend, strict=True)) / spend.sum()
    assert blended == pytest.approx(by_channel, rel=1e-9)  # the spend-weighted channel ROAS
    plain = _summary()["totals"]["blended_roas"]["mean"]
    assert blended == pytest.approx(plain * (2.0 if kpi_type == "count" else 1.0), rel=1e-9)


def test_the_optimiser_values_a_revenue_kpi_at_one(tmp_path: Path) -> None:
    from mmmlib.optimize import load_curves

    tree = hand_posterior()
    for name, config in (
        ("revenue", {"kpi_type": "revenue", "revenue_per_kpi": 2.0}),
        ("count", {"kpi_type": "count", "revenue_per_kpi": 2.0}),
    ):
        run = tmp_path / name
        run.mkdir()
        tree.to_netcdf(run / "posterior.nc")
        (run / "summary.json").write_text(json.dumps(_summary(**config)))
        assert load_curves(run).value_per_kpi == (1.0 if name == "revenue" else 2.0)
