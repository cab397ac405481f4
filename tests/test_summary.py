"""``build_summary`` on a small posterior built by hand (tests/fakes.py): every number from known draws, no fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmmlib import analysis
from mmmlib.runs import load_summary, schema_problem
from mmmlib.summary import SCHEMA_VERSION, build_summary
from tests.fakes import FakeFit, fake_fit

RUN = {"id": "fake", "created_at": "2026-01-05T06:00:00+00:00"}
INTERVAL = {"mean", "hdi_low", "hdi_high"}


@pytest.fixture(scope="module")
def fake() -> FakeFit:
    return fake_fit()


@pytest.fixture(scope="module")
def summary(fake: FakeFit) -> dict[str, Any]:
    return build_summary(fake.tree, fake.config, fake.frame, run=RUN, mode="quick", client="acme")


def intervals(value: Any, where: str = "") -> list[tuple[str, dict[str, float]]]:
    """Every ``{"mean", "hdi_low", "hdi_high"}`` of scalars in a summary, with where it is."""
    if isinstance(value, dict):
        if INTERVAL <= set(value) and all(isinstance(value[k], float) for k in INTERVAL):
            return [(where, value)]
        return [found for k, v in value.items() for found in intervals(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in intervals(v, f"{where}[{i}]")]
    return []


def test_the_summary_has_the_contracts_shape_and_round_trips(
    summary: dict[str, Any], fake: FakeFit, tmp_path: Path
) -> None:
    assert schema_problem(summary) is None
    assert {
        "schema_version", "status", "status_reasons", "hdi_prob", "target", "kpi_type", "revenue_per_kpi",
        "breakeven_roas", "client", "run", "period", "totals", "channels", "diagnostics", "response_curves",
        "adstock", "decomposition", "fit", "model", "reallocation", "recommendations",
    } <= set(summary)  # fmt: skip
    assert summary["schema_version"] == SCHEMA_VERSION and summary["hdi_prob"] == analysis.HDI_PROB
    assert summary["target"] == "revenue" and summary["kpi_type"] == "revenue" and summary["client"] == "acme"
    assert summary["run"] == {**RUN, "mode": "quick"}
    weeks = len(fake.frame)
    assert summary["period"] == {"start": "2024-01-01", "end": "2024-07-22", "periods": weeks, "frequency": "weekly"}
    assert [c["name"] for c in summary["channels"]] == ["tv", "search"]
    assert [c["label"] for c in summary["channels"]] == ["TV", "Search"]
    row_keys = {"spend", "contribution", "share", "roas", "mroas", "cost_per_kpi", "identified", "identification"}
    for row in summary["channels"]:
        assert row_keys <= set(row)
        assert row["cost_per_kpi"] is None  # a revenue KPI
    assert set(summary["diagnostics"]) == {
        "r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "r2", "mape", "holdout_mape",
    }  # fmt: skip
    assert summary["model"] is None  # one structure, no stacking record
    # what a run directory holds is what every reader opens
    (tmp_path / "summary.json").write_text(json.dumps(summary, allow_nan=False))
    assert load_summary(tmp_path) == json.loads(json.dumps(summary))


def test_totals_and_roas_are_the_fake_draws_added_up(summary: dict[str, Any], fake: FakeFit) -> None:
    contrib = fake.contributions.sum(axis=1)  # (draw, channel), target units
    spend = fake.spend.sum(axis=0)
    roas = contrib / spend
    for j, row in enumerate(summary["channels"]):
        assert row["spend"] == pytest.approx(spend[j])
        assert row["contribution"]["mean"] == pytest.approx(contrib[:, j].mean(), rel=1e-9)
        assert row["roas"]["mean"] == pytest.approx(roas[:, j].mean(), rel=1e-9)
        assert row["roas"]["mean"] == pytest.approx(row["contribution"]["mean"] / row["spend"], rel=1e-9)
        share = contrib[:, j] / contrib.sum(axis=1)
        assert row["share"]["mean"] == pytest.approx(share.mean(), rel=1e-9)
        low, high = analysis.hdi(roas[:, j])
        assert (row["roas"]["hdi_low"], row["roas"]["hdi_high"]) == pytest.approx((low, high))
    totals = summary["totals"]
    assert totals["kpi"] == pytest.approx(fake.frame["revenue"].sum()) and totals["spend"] == pytest.approx(spend.sum())
    assert totals["media_contribution"]["mean"] == pytest.approx(contrib.sum(axis=1).mean(), rel=1e-9)
    assert totals["blended_roas"]["mean"] == pytest.approx(contrib.sum(axis=1).mean() / spend.sum(), rel=1e-9)
    assert totals["media_share"]["mean"] == pytest.approx(contrib.sum(axis=1).mean() / totals["kpi"], rel=1e-9)
    decomposition = summary["decomposition"]["totals"]
    for row in summary["channels"]:
        assert decomposition[f"channel:{row['name']}"] == pytest.approx(row["contribution"])
    assert set(summary["decomposition"]["series"]) == {"baseline", "channel:tv", "channel:search"}


def test_marginal_roas_is_the_slope_of_the_known_curve_at_todays_spend(summary: dict[str, Any], fake: FakeFit) -> None:
    post = fake.tree["posterior"]
    lam = post["saturation_lam"].values.reshape(-1, 2)
    beta = post["saturation_beta"].values.reshape(-1, 2)
    scale = fake.spend.max(axis=0)
    z = fake.spend.mean(axis=0) / scale  # fewer than 52 weeks: today's spend is the average of them all
    e = np.exp(-lam * z)
    slope = beta * 2 * lam * e / (1 + e) ** 2 * fake.target_scale / scale  # d/dx of beta (1 - e) / (1 + e)
    for j, row in enumerate(summary["channels"]):
        assert row["mroas"]["mean"] == pytest.approx(slope[:, j].mean(), rel=1e-3)
    for j, curve in enumerate(summary["response_curves"]):
        assert curve["current_spend"] == pytest.approx(fake.spend[:, j].mean())
        assert len(curve["spend"]) == 41 and curve["spend"][0] == 0.0 and curve["mean"][0] == pytest.approx(0.0)
        assert np.all(np.diff(curve["mean"]) > 0)  # more spend, more contribution, ever less per unit
        assert np.all(np.diff(curve["mean"], 2) < 0)
        assert np.all(np.array(curve["hdi_low"]) <= np.array(curve["mean"]) + 1e-9)
        assert np.all(np.array(curve["mean"]) <= np.array(curve["hdi_high"]) + 1e-9)


def test_every_interval_is_ordered(summary: dict[str, Any]) -> None:
    found = intervals(summary)
    assert len(found) >= 4 * 2 + 3 + 3  # channel rows, totals, decomposition totals
    for where, iv in found:
        assert iv["hdi_low"] <= iv["mean"] <= iv["hdi_high"], (where, iv)


def test_adstock_and_fit_sections(summary: dict[str, Any], fake: FakeFit) -> None:
    for channel in ("tv", "search"):
        weights = summary["adstock"][channel]
        assert len(weights["mean"]) == fake.config.adstock_max_lag
        assert sum(weights["mean"]) == pytest.approx(1.0)
        assert weights["mean"] == sorted(weights["mean"], reverse=True)  # geometric: each lag carries less
    fit = summary["fit"]
    assert fit["actual"] == pytest.approx(fake.frame["revenue"].tolist())
    mu = fake.tree["posterior"]["mu"].values.reshape(-1, len(fake.frame)) * fake.target_scale
    assert fit["predicted"] == pytest.approx(mu.mean(axis=0).tolist())
    assert len(fit["dates"]) == len(fit["predicted_low"]) == len(fit["predicted_high"]) == len(fake.frame)


def test_good_diagnostics_give_ok_and_advice(summary: dict[str, Any], fake: FakeFit) -> None:
    diag = summary["diagnostics"]
    assert diag["r_hat_max"] < 1.05 and diag["ess_bulk_min"] >= 200 and diag["divergences"] == 0
    assert diag["r2"] > 0.5 and diag["mape"] < 0.05 and diag["holdout_mape"] is None
    assert summary["status"] == "ok" and summary["status_reasons"] == []
    assert all(row["identified"] for row in summary["channels"])  # narrow ROAS well clear of break-even
    assert all(row["identification"]["prior_sd"] is None for row in summary["channels"])  # no prior group kept
    recs = summary["recommendations"]
    assert recs[0].startswith("Model health: good") and len(recs) > 1
    assert summary["reallocation"]["limit_pct"] == 30 and summary["reallocation"]["held"] == []


def test_divergences_or_a_poor_holdout_give_warning_and_no_advice() -> None:
    fake = fake_fit(divergences=3)
    summary = build_summary(fake.tree, fake.config, fake.frame, run=RUN, mode="quick")
    assert summary["status"] == "warning" and summary["diagnostics"]["divergences"] == 3
    assert summary["status_reasons"] == ["3 divergent transitions (the sampler missed part of the posterior)"]
    assert summary["recommendations"][0].startswith("Model health: NOT RELIABLE")
    assert len(summary["recommendations"]) == 1  # no budget advice on a posterior that cannot be trusted
    fake = fake_fit()
    summary = build_summary(fake.tree, fake.config, fake.frame, run=RUN, mode="quick", holdout_mape=0.4)
    assert summary["status"] == "warning" and "held-out error 40%" in summary["status_reasons"][0]


def test_a_count_kpi_with_revenue_per_kpi_gives_money_roas_and_cost_per_kpi() -> None:
    fake = fake_fit()
    fake.config.kpi_type, fake.config.revenue_per_kpi = "count", 2.5
    summary = build_summary(fake.tree, fake.config, fake.frame, run=RUN, mode="quick")
    contrib = fake.contributions.sum(axis=1)
    spend = fake.spend.sum(axis=0)
    assert summary["kpi_type"] == "count" and summary["revenue_per_kpi"] == 2.5
    for j, row in enumerate(summary["channels"]):
        assert row["roas"]["mean"] == pytest.approx((contrib[:, j] * 2.5 / spend[j]).mean(), rel=1e-9)
        assert row["cost_per_kpi"]["mean"] == pytest.approx((spend[j] / contrib[:, j]).mean(), rel=1e-9)


def test_a_candidates_roas_is_its_own_draws_valued_like_the_runs() -> None:
    from mmmlib import stacking

    fake = fake_fit()
    roas = stacking.candidate_roas(fake.tree)
    assert roas is not None
    contrib, spend = fake.contributions.sum(axis=1), fake.spend.sum(axis=0)
    for j, ch in enumerate(("tv", "search")):
        assert roas[ch]["mean"] == pytest.approx((contrib[:, j] / spend[j]).mean(), rel=1e-9)
        assert roas[ch]["hdi_low"] < roas[ch]["mean"] < roas[ch]["hdi_high"]
    diag = {"r_hat_max": 1.0, "ess_bulk_min": 400.0, "ess_tail_min": 400.0, "divergences": 0}
    records = [{"name": "geometric+logistic+changepoints", "weight": 1.0, "roas": roas, **diag}]
    fake.tree.attrs[stacking.CANDIDATES_ATTR] = json.dumps(records)
    fake.config.kpi_type, fake.config.revenue_per_kpi = "count", 2.5
    summary = build_summary(fake.tree, fake.config, fake.frame, run=RUN, mode="quick")
    shown = summary["model"]["candidates"][0]["roas"]
    for ch in ("tv", "search"):  # money per unit of spend, as the run's own ROAS
        assert shown[ch]["mean"] == pytest.approx(2.5 * roas[ch]["mean"], rel=1e-9)


def test_the_quality_view_shows_each_structures_roas_beside_the_combined_one() -> None:
    from mmmlib.widgets.quality import structure_roas_table

    def r(mean: float) -> dict[str, float]:
        return {"mean": mean, "hdi_low": mean / 2, "hdi_high": mean * 2}

    summary: dict[str, Any] = {
        "hdi_prob": 0.9,
        "channels": [{"name": "tv", "label": "TV", "roas": r(1.5)}],
        "model": {
            "selection": "national sum",
            "candidates": [
                {"adstock": "geometric", "saturation": "logistic", "weight": 0.25, "roas": {"tv": r(1.0)}},
                {"adstock": "delayed", "saturation": "hill", "weight": None, "roas": {"tv": r(2.0)}},
            ],
        },
    }
    shown = structure_roas_table(summary).value
    for text in ("TV", "1.00 [0.50, 2.00]", "2.00 [1.00, 4.00]", "1.50 [0.75, 3.00]", "weight 0.25", "weight —"):
        assert text in shown
    assert "national sum" in shown  # a geo run's candidates were fitted to the summed data
    summary["model"]["candidates"][1].pop("roas")  # a run fitted before candidates' ROAS were recorded
    assert structure_roas_table(summary) is None
