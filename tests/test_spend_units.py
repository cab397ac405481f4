"""Spend and the KPI in different units (PyMC-Marketing's example data: spend scaled to about 1, revenue in
thousands): a prior on money returned per money spent would decide the answer, so the default prior goes on media's
share of the KPI instead (mmmlib.roas_priors.prior_basis), and every view says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmmlib import identification, roas_priors
from mmmlib.data.dataset import propose_config
from mmmlib.data.reader import read_raw
from mmmlib.data.validate import check
from tests.benchtools import load_benchmark


def test_the_default_roas_prior_stands_where_spend_and_kpi_share_their_units() -> None:
    assert roas_priors.prior_basis(5e5, 1e7, valued=True) == (roas_priors.ROAS_BASIS, None)  # spend 5 % of revenue
    assert roas_priors.prior_basis(2e6, 1e6, valued=True)[0] == roas_priors.ROAS_BASIS  # twice: still possible


def test_spend_far_below_the_kpis_value_puts_the_prior_on_medias_share() -> None:
    spend = np.array([[0.3, 0.1]] * 100)  # totals 30 and 10 against a KPI worth 500,000
    basis, why = roas_priors.prior_basis(40.0, 5e5, valued=True)
    assert basis == roas_priors.SHARE_BASIS
    assert why is not None and "0.008 %" in why and "different units" in why
    mu, sigma = roas_priors.roas_lognormal(["a", "b"], spend, kpi_total=5e5, valued=True)
    mean = np.exp(mu + sigma**2 / 2)
    assert mean == pytest.approx([0.4 * 5e5 / 40] * 2)  # media is 40 % of the KPI a priori
    # a count KPI worth 20 per unit: the same money, so the same prior on the return in money
    mu20, sigma20 = roas_priors.roas_lognormal(["a", "b"], spend, kpi_total=25_000, valued=True, value=20.0)
    assert np.exp(mu20 + sigma20**2 / 2) == pytest.approx(mean)
    # a channel's own roas_prior still overrides it
    mu_tv, sigma_tv = roas_priors.roas_lognormal(["a", "b"], spend, 5e5, valued=True, overrides={"b": [1000, 8000]})
    assert (mu_tv[1], sigma_tv[1]) == pytest.approx(roas_priors.lognormal_from_interval(1000, 8000))
    assert mu_tv[0] == pytest.approx(mu[0])


def test_spend_far_above_the_kpis_value_too() -> None:
    basis, why = roas_priors.prior_basis(1e7, 1e6, valued=True)  # at ROAS 0.22 media would be 2.2 × the KPI
    assert basis == roas_priors.SHARE_BASIS and why is not None and "more than all of it" in why


def test_without_a_break_even_the_interval_half_of_the_identification_rule_is_dropped() -> None:
    rng = np.random.default_rng(0)
    roas = rng.lognormal(np.log([0.9, 1.0]), [0.05, 0.6], size=(4000, 2))  # both span 0.5-2 only if wide
    prior = rng.lognormal(0.0, 0.6, size=(4000, 2))  # the second posterior is as wide as its prior
    with_be = identification.identify(roas, prior, breakeven=1.0)
    without = identification.identify(roas, prior, breakeven=None)
    assert [v["identified"] for v in with_be] == [True, False]
    assert [v["identified"] for v in without] == [True, False]  # the second: the data barely narrowed the prior
    assert any("break-even" in r for r in with_be[1]["reasons"])
    assert not any("break-even" in r for r in without[1]["reasons"])


def test_the_sentence_names_the_prior_only_when_it_is_not_on_roas() -> None:
    assert roas_priors.sentence({"roas_prior": {"basis": "roas", "reason": None}}) is None
    assert roas_priors.sentence({}) is None
    said = roas_priors.sentence({"roas_prior": {"basis": "media_share", "reason": "because"}})
    assert said is not None and "40 % ± 20 %" in said and said.endswith("because.")


def test_validation_warns_before_the_fit_on_pymc_marketings_example_only(public_data: Path) -> None:
    for path in sorted(public_data.glob("*.csv")):
        raw = read_raw(path)
        report = check(raw, propose_config(raw)[0]).report
        warned = [i for i in report.warnings if i.code == "spend_units"]
        assert bool(warned) == (path.name == "pymc_marketing_mmm_example.csv"), path.name
        if warned:
            assert "different units" in warned[0].message and "roas_prior" in warned[0].message


@pytest.mark.slow
def test_pymc_marketings_example_recovers_its_published_returns(public_data: Path, tmp_path: Path) -> None:
    """With the default ROAS prior this fit explained 36 % of the KPI and put both returns near 1.9 (truth: about
    5,000 and 2,300 per unit of the scaled spend), not identified."""
    data = public_data / "pymc_marketing_mmm_example.csv"
    truth = load_benchmark("recovery").pymc_example_truth(pd.read_csv(data))

    def mmm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, timeout=900)

    config = tmp_path / "config.yaml"
    assert mmm("config", str(data), "--out", str(config)).returncode == 0
    text = config.read_text()
    for old, new in (("adstock: auto", "adstock: geometric"), ("saturation: auto", "saturation: logistic"),
                     ("yearly_seasonality: auto", "yearly_seasonality: 2")):  # fmt: skip
        assert old in text
        text = text.replace(old, new)  # the example's published structure: one fit
    config.write_text(text)
    run = tmp_path / "run"
    fit = mmm("fit", str(data), "--config", str(config), "--out", str(run), "--seed", "1")
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "Prior on media's share of the KPI" in fit.stdout and "different units" in fit.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"]["roas_prior"]["basis"] == roas_priors.SHARE_BASIS
    assert summary["model"]["roas_prior"]["units_differ"] is True
    # no return here is money per money: nothing is held against break-even
    assert any("different units" in r for r in summary["recommendations"])
    assert not any("headroom" in r or "past its saturation point" in r for r in summary["recommendations"])
    assert all(c["breakeven_spend"] is None for c in summary["response_curves"])
    assert summary["diagnostics"]["r2"] > 0.9
    for row in summary["channels"]:
        roas, true = row["roas"], truth[row["name"]]
        assert roas["hdi_low"] <= true <= roas["hdi_high"], (row["name"], roas, true)
        assert abs(roas["mean"] - true) / true < 0.15 and row["identified"]


def test_a_config_that_prices_every_channel_itself_keeps_its_roas_priors(public_data: Path) -> None:
    from dataclasses import replace

    from mmmlib import model
    from mmmlib.data.dataset import load_dataset

    path = public_data / "pymc_marketing_mmm_example.csv"
    config = propose_config(read_raw(path))[0]
    dataset = load_dataset(path, config)
    spend = model.channel_spend(dataset)
    kpi = float(dataset.frame[config.target_column].sum())
    _, _, basis = model.roas_prior(dataset, spend, kpi)
    assert basis["basis"] == roas_priors.SHARE_BASIS and basis["units_differ"]
    priced = replace(dataset, config=replace(config, roas_prior={"x1": [1000, 9000], "x2": [500, 5000]}))
    mu, sigma, basis = model.roas_prior(priced, spend, kpi)
    assert basis == roas_priors.basis_fields(roas_priors.ROAS_BASIS, None, True)  # units still differ: no break-even
    assert (mu[0], sigma[0]) == pytest.approx(roas_priors.lognormal_from_interval(1000, 9000))
