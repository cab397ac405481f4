"""The "not identified by this data" rule on cases with known answers, and every reader that honours it.

No fitting: the rule gets draws with known sd and HDI; the summary, the command line and the views get a small
posterior built by hand whose prior draws are known (one channel learned from the data, one whose posterior is
its prior).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from mmmlib import analysis
from mmmlib.cli import main
from mmmlib.identification import identify, is_identified, unidentified
from mmmlib.insights import recommendations

N = 4000


def normal_draws(mean: float, sd: float, n: int = N) -> np.ndarray:
    """Draws placed at a normal's quantiles: their sd and 94% HDI are the normal's, with no sampling noise."""
    return norm.ppf((np.arange(n) + 0.5) / n, mean, sd)


def test_posterior_equal_to_prior_is_not_identified() -> None:
    draws = normal_draws(3.0, 0.3)[:, None]  # a narrow HDI far from break-even: only the sd rule can fire
    (verdict,) = identify(draws, draws.copy(), breakeven=1.0)
    assert not verdict["identified"]
    assert verdict["roas_sd"] == pytest.approx(verdict["prior_sd"])
    assert len(verdict["reasons"]) == 1 and "prior" in verdict["reasons"][0]


def test_a_sharp_posterior_clear_of_break_even_is_identified() -> None:
    post = normal_draws(2.0, 0.255)[:, None]  # 94% HDI ≈ [1.52, 2.48]
    prior = normal_draws(2.0, 2.55)[:, None]  # posterior sd = 0.1 × prior sd
    low, high = analysis.hdi(post)
    assert low[0] == pytest.approx(1.52, abs=0.01) and high[0] == pytest.approx(2.48, abs=0.01)
    (verdict,) = identify(post, prior, breakeven=1.0)
    assert verdict == {
        "identified": True,
        "reasons": [],
        "roas_sd": pytest.approx(0.255, rel=1e-2),
        "prior_sd": pytest.approx(2.55, rel=1e-2),
    }


def test_an_interval_holding_half_and_twice_break_even_is_not_identified() -> None:
    post = normal_draws(1.45, 0.558)[:, None]  # 94% HDI ≈ [0.40, 2.50] at break-even 1: holds 0.5 and 2
    prior = normal_draws(1.0, 20.0)[:, None]  # the data narrowed the prior a lot: the sd rule does not fire
    (verdict,) = identify(post, prior, breakeven=1.0)
    assert not verdict["identified"]
    assert len(verdict["reasons"]) == 1 and "0.40–2.50" in verdict["reasons"][0]
    # the rule follows break-even: at 0.5 (margin 2) the same HDI starts above a quarter, so it tells loss from gain
    assert identify(post, prior, breakeven=0.5)[0]["identified"] is True


def lognormal_draws(median: float, sigma: float, n: int = N) -> np.ndarray:
    """A lognormal's quantiles: a positive ROAS posterior with known relative sd ``sqrt(exp(sigma²) − 1)``."""
    return median * np.exp(norm.ppf((np.arange(n) + 0.5) / n, 0.0, sigma))


def test_a_return_too_imprecise_to_act_on_is_not_identified() -> None:
    """The relative-precision rule alone: sd > half the mean (relative sd 0.59) with an HDI of about [0.2, 1.9],
    which holds half break-even but not twice, and a prior far wider, so neither other rule fires."""
    post = lognormal_draws(0.8, 0.55)[:, None]
    prior = lognormal_draws(1.0, 3.0)[:, None]
    low, high = analysis.hdi(post)
    assert low[0] < 0.5 < high[0] < 2.0
    (verdict,) = identify(post, prior, breakeven=1.0)
    assert not verdict["identified"]
    assert len(verdict["reasons"]) == 1 and "too imprecise" in verdict["reasons"][0]
    # it needs no break-even and no prior: it applies to every run
    assert not identify(post, None, breakeven=None)[0]["identified"]
    # just inside the bound (relative sd 0.47) the same median is identified
    assert identify(lognormal_draws(0.8, 0.45)[:, None], prior, breakeven=1.0)[0]["identified"] is True


def test_a_posterior_at_zero_has_no_relative_precision() -> None:
    (verdict,) = identify(np.zeros((N, 1)), None, breakeven=None)
    assert not verdict["identified"] and "too imprecise" in verdict["reasons"][0]


def test_without_prior_draws_only_the_interval_rule_applies() -> None:
    narrow, wide = normal_draws(3.0, 0.3), normal_draws(1.45, 0.558)
    verdicts = identify(np.c_[narrow, wide], None, breakeven=1.0)
    assert [v["identified"] for v in verdicts] == [True, False]
    assert [v["prior_sd"] for v in verdicts] == [None, None]


def test_old_summary_rows_without_the_flag_get_the_interval_rule() -> None:
    iv = lambda m, lo, hi: {"mean": m, "hdi_low": lo, "hdi_high": hi}  # noqa: E731
    assert is_identified({"roas": iv(1.0, 0.0, 4.0)}, 1.0) is False
    assert is_identified({"roas": iv(2.0, 1.6, 2.4)}, 1.0) is True
    assert is_identified({"roas": iv(1.0, 0.0, 4.0), "identified": True}, 1.0) is True  # a stored flag wins


# ---- a small posterior built by hand: c0 learned from the data, c1's posterior is its prior ----

WEEKS, DRAWS = 60, 400


def hand_posterior(seed: int = 0) -> xr.DataTree:
    """Two chains of logistic-saturation draws for two channels, with a ``prior`` group of channel contributions.

    c0 is saturated (ROAS ≈ 2.7, narrow) and its prior contributions spread ×/÷ e around the posterior's; c1 is
    nearly linear with a high return (ROAS ≈ 4.9, narrow) and its prior draws equal its posterior draws.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=WEEKS, freq="7D")
    spend = np.tile([100.0, 50.0], (WEEKS, 1))
    spend[::7] *= 1.1
    cs = spend.max(axis=0)
    lam = np.c_[rng.normal(3.0, 0.03, DRAWS), rng.normal(0.5, 0.005, DRAWS)]
    beta = np.c_[rng.normal(0.3, 0.003, DRAWS), rng.normal(1.0, 0.01, DRAWS)]
    e = np.exp(-lam[:, None, :] * spend / cs)
    contrib = beta[:, None, :] * (1 - e) / (1 + e)  # (draw, date, channel), scaled units
    prior = contrib.copy()
    prior[:, :, 0] *= rng.lognormal(0.0, 1.0, DRAWS)[:, None]

    def chains(x: np.ndarray) -> np.ndarray:
        return x.reshape(2, DRAWS // 2, *x.shape[1:])

    names = ["c0", "c1"]
    coords = {"chain": [0, 1], "draw": np.arange(DRAWS // 2), "channel": names, "date": dates}
    posterior = xr.Dataset(
        {
            "saturation_lam": (("chain", "draw", "channel"), chains(lam)),
            "saturation_beta": (("chain", "draw", "channel"), chains(beta)),
            "adstock_alpha": (("chain", "draw", "channel"), chains(rng.uniform(0.29, 0.31, lam.shape))),
            "channel_contribution": (("chain", "draw", "date", "channel"), chains(contrib)),
            "mu": (("chain", "draw", "date"), chains(contrib.sum(axis=2) + 1.0)),
            "intercept_contribution": (("chain", "draw"), chains(rng.normal(1.0, 0.01, DRAWS))),
        },
        coords=coords,
    )
    prior_group = xr.Dataset(
        {"channel_contribution": (("chain", "draw", "date", "channel"), chains(prior))}, coords=coords
    )
    const = xr.Dataset(
        {
            "channel_data": (("date", "channel"), spend),
            "target_data": (("date",), (contrib.mean(axis=0).sum(axis=1) + 1.0) * 1000.0),
            "target_scale": ((), 1000.0),
            "channel_scale": (("channel",), cs),
        },
        coords={"date": dates, "channel": names},
    )
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((2, DRAWS // 2), dtype=bool))},
        coords={"chain": [0, 1], "draw": np.arange(DRAWS // 2)},
    )
    return xr.DataTree.from_dict(
        {"posterior": posterior, "prior": prior_group, "constant_data": const, "sample_stats": stats}
    )


def hand_summary(tree: xr.DataTree) -> dict:
    from mmmlib.config import ModelConfig
    from mmmlib.summary import build_summary

    config = ModelConfig(date_column="week", target_column="revenue", channel_columns=["c0", "c1"])
    post = analysis.Posterior.from_idata(tree)
    frame = pd.DataFrame({"week": post.dates, "revenue": post.target, "c0": post.spend[:, 0], "c1": post.spend[:, 1]})
    return build_summary(tree, config, frame, run={"id": "hand", "created_at": "2026-12-01T00:00:00"}, mode="quick")


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory (summary.json + posterior.nc) from the hand-built posterior."""
    run = tmp_path_factory.mktemp("runs") / "hand"
    run.mkdir()
    tree = hand_posterior()
    tree.to_netcdf(run / "posterior.nc")
    (run / "summary.json").write_text(json.dumps(hand_summary(tree)))
    return run


def test_prior_roas_draws_come_from_the_prior_group() -> None:
    tree = hand_posterior()
    post = analysis.Posterior.from_idata(tree)
    prior = analysis.roas_draws(post, group="prior")
    by_hand = tree["prior"]["channel_contribution"].values.reshape(DRAWS, WEEKS, 2).sum(axis=1) * 1000.0
    np.testing.assert_allclose(prior, by_hand / post.spend.sum(axis=0))
    np.testing.assert_allclose(prior[:, 1], analysis.roas_draws(post)[:, 1])  # c1: prior draws = posterior draws


def test_the_summary_marks_each_channel_and_holds_the_unidentified_one(hand_run: Path) -> None:
    summary = json.loads((hand_run / "summary.json").read_text())
    c0, c1 = summary["channels"]
    assert c0["identified"] is True and c1["identified"] is False
    assert c0["identification"]["prior_sd"] > 4 * c0["identification"]["roas_sd"]
    assert c1["identification"]["prior_sd"] == pytest.approx(c1["identification"]["roas_sd"])
    assert c1["roas"]["hdi_low"] > 2.0  # a narrow interval: the old width rule would have acted on it
    move = summary["reallocation"]
    assert move["held"] == ["c1"]
    held = next(c for c in move["channels"] if c["name"] == "c1")
    assert held["change"] == pytest.approx(0.0, abs=1e-9) and held["min_spend"] == held["max_spend"]
    assert unidentified(summary) == ["c1"]


def test_recommendations_hold_an_unidentified_channel_after_the_health_sentence(hand_run: Path) -> None:
    summary = json.loads((hand_run / "summary.json").read_text())
    text = recommendations(summary)
    assert text[0].startswith("Model health: good")
    label = summary["channels"][1]["label"]
    r = summary["channels"][1]["roas"]
    sentence = (
        f"{label}: not identified by this data — ROAS {r['mean']:.2f} (94% HDI {r['hdi_low']:.2f}–"
        f"{r['hdi_high']:.2f}); hold its budget and run a lift test."
    )
    assert sentence in text
    about_c1 = [s for s in text if s.startswith(label)]
    assert about_c1 == [sentence]  # no headroom or cut advice on it
    assert not any(f"{label} +" in s or f"{label} -" in s for s in text)  # never part of a move


def test_an_identified_flag_wins_over_a_wide_interval_and_a_missing_flag_falls_back() -> None:
    iv = lambda m, lo, hi: {"mean": m, "hdi_low": lo, "hdi_high": hi}  # noqa: E731
    summary = {
        "status": "ok",
        "breakeven_roas": 1.0,
        "target": "revenue",
        "diagnostics": {"r_hat_max": 1.0, "ess_bulk_min": 900, "divergences": 0, "r2": 0.9, "mape": 0.05},
        "channels": [
            {"name": "a", "label": "A", "spend": 1.0, "identified": False, "roas": iv(3.0, 2.5, 3.5),
             "mroas": iv(2.0, 1.5, 2.5), "contribution": iv(3.0, 2.5, 3.5)},
            {"name": "b", "label": "B", "spend": 1.0, "roas": iv(1.0, 0.1, 3.0),
             "mroas": iv(2.0, 1.5, 2.5), "contribution": iv(1.0, 0.1, 3.0)},
            {"name": "c", "label": "C", "spend": 1.0, "identified": True, "roas": iv(1.0, 0.1, 3.0),
             "mroas": iv(2.0, 1.5, 2.5), "contribution": iv(1.0, 0.1, 3.0)},
        ],
    }  # fmt: skip
    joined = "\n".join(recommendations(summary))
    assert "A: not identified by this data" in joined and "A has headroom" not in joined
    assert "B: not identified by this data" in joined  # an old summary: its interval holds 0.5 and 2
    assert "C has headroom" in joined and "C: not identified" not in joined


def _run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_optimize_holds_an_unidentified_channel_unless_bounded(hand_run: Path, capsys) -> None:
    summary = json.loads((hand_run / "summary.json").read_text())
    today = {c["name"]: c["current_spend"] for c in summary["response_curves"]}
    budget = str(sum(today.values()))
    code, out, err = _run_cli(capsys, "optimize", str(hand_run), "--budget", budget, "--json")
    assert code == 0, err
    result = json.loads(out)
    spend = {c["name"]: c["optimal_spend"] for c in result["channels"]}
    assert result["held"] == ["c1"] and spend["c1"] == pytest.approx(today["c1"])
    # c1 returns far more at the margin: bounded explicitly, the optimiser moves money to it
    code, out, err = _run_cli(
        capsys, "optimize", str(hand_run), "--budget", budget, "--bounds", "c1=-30%:+30%", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    spend = {c["name"]: c["optimal_spend"] for c in result["channels"]}
    assert result["held"] == [] and spend["c1"] == pytest.approx(1.3 * today["c1"])
    code, out, _ = _run_cli(capsys, "optimize", str(hand_run), "--budget", budget)
    assert code == 0 and "Held at today's spend, not identified by this data" in out and "c1" in out


def test_optimize_names_the_hold_when_it_makes_a_budget_infeasible(hand_run: Path, capsys) -> None:
    code, _, err = _run_cli(capsys, "optimize", str(hand_run), "--budget", "10")
    assert code == 1 and "c1 held at today's spend because the data do not identify them" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_scenarios_hold_an_unidentified_channel(hand_run: Path, capsys) -> None:
    summary = json.loads((hand_run / "summary.json").read_text())
    now = next(c["current_spend"] for c in summary["response_curves"] if c["name"] == "c1")
    code, out, err = _run_cli(capsys, "scenarios", str(hand_run), "--steps", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["held"] == ["c1"] and result["frontier"]
    assert all(p["allocation"]["c1"] == pytest.approx(now) for p in result["frontier"])


@pytest.mark.parametrize("fmt", ["txt", "csv", "json"])
def test_reports_carry_the_flag(hand_run: Path, tmp_path: Path, fmt: str, capsys) -> None:
    out = tmp_path / f"report.{fmt}"
    assert _run_cli(capsys, "report", str(hand_run), "--format", fmt, "--out", str(out))[0] == 0
    if fmt == "csv":
        assert list(pd.read_csv(out)["identified"]) == [True, False]
    elif fmt == "json":
        assert [c["identified"] for c in json.loads(out.read_text())["channels"]] == [True, False]
    else:
        text = out.read_text()
        assert "identified" in text and "NO" in text and "not identified by this data" in text


def test_views_mark_unidentified_channels_and_show_the_structures(hand_run: Path) -> None:
    from mmmlib.optimize import load_curves
    from mmmlib.widgets.charts import interval_bars, unidentified_legend
    from mmmlib.widgets.planner import BudgetPlanner
    from mmmlib.widgets.quality import identification_table, structures_table

    summary = json.loads((hand_run / "summary.json").read_text())
    label = summary["channels"][1]["label"]
    summary["channels"][1]["label"] = label = f"<b>{label}</b>"  # labels are the client's text: escaped
    bars = interval_bars(summary, "roas", "ROAS", mark_unidentified=True).marks[0]
    assert list(bars.x) == [summary["channels"][0]["label"], f"{label} (not identified)"]
    assert list(bars.opacities) == [1.0, 0.35]
    assert "not identified" in unidentified_legend(summary).value

    table = identification_table(summary).value
    assert "&lt;b&gt;" in table and "<b>" not in table.replace("<b>Channel", "")
    info = summary["channels"][1]["identification"]
    assert f"{info['prior_sd']:.2f}" in table and f"{info['roas_sd']:.2f}" in table
    assert "records no comparison" in structures_table(summary).value  # no model section: a sentence
    summary["model"] = {
        "selection": "weighted",
        "candidates": [
            {"adstock": "geometric", "saturation": "hill", "baseline": "changepoints", "elpd_loo": -120.5,
             "elpd_se": 8.25, "p_loo": 12.0, "weight": 0.7, "r_hat_max": 1.004, "divergences": 0},
            {"adstock": "weibull", "saturation": "<i>x</i>", "baseline": "linear", "elpd_loo": None,
             "elpd_se": None, "p_loo": None, "weight": 0.3, "r_hat_max": 1.01, "divergences": 2},
        ],
    }  # fmt: skip
    shown = structures_table(summary).value
    assert "-120.5 ± 8.2" in shown and "0.70" in shown and "1.004" in shown and "pseudo-BMA+" in shown
    assert "&lt;i&gt;x&lt;/i&gt;" in shown and "<i>" not in shown
    assert "time-slice" not in shown  # quick mode: PSIS-LOO alone
    summary["model"]["candidates"][0].update({"elpd_cv": -45.25, "elpd_cv_se": 3.5, "weighted_by": "time-slice CV"})
    shown = structures_table(summary).value  # full mode: the quarters ahead decide the weights
    assert "-45.2 ± 3.5" in shown and "time-slice cross-validation" in shown and "quarters ahead" in shown
    assert "break-even" in identification_table(summary).value and "Prior on media" not in shown
    summary["model"]["roas_prior"] = {"basis": "media_share", "reason": "spend in thousands", "units_differ": True}
    assert "share of the KPI (40 % ± 20 %" in structures_table(summary).value  # said where the structures are
    assert "break-even" not in identification_table(summary).value  # no break-even in those units

    planner = BudgetPlanner(summary, load_curves(hand_run))
    low, high = planner.bounds["c1"]
    assert low.value == high.value == pytest.approx(planner.curves.current[1], abs=0.01)
    low0, high0 = planner.bounds["c0"]
    assert low0.value < high0.value
    assert "not identified by this data" in planner.held_note.value
    c1 = next(c for c in planner.result["channels"] if c["name"] == "c1")
    assert c1["change"] == pytest.approx(0.0, abs=0.01)
    high.value = round(planner.curves.current[1] * 1.3, 2)  # the user widens it: the plan moves money there
    c1 = next(c for c in planner.result["channels"] if c["name"] == "c1")
    assert c1["change"] > 0
