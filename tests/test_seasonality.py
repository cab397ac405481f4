"""``yearly_seasonality: auto``: the Fourier order kept only when PSIS-LOO clearly prefers it (mmmlib.seasonality),
recorded in summary.json and said by ``mmm fit``; the first structure's fit with the other order joins the candidates;
a real fit keeps four harmonics on a year with three bumps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib import seasonality
from mmmlib.config import ModelConfig, load_config, save_config
from mmmlib.errors import InputError


def fake_loo(pointwise: np.ndarray) -> SimpleNamespace:
    """What :func:`seasonality.choose` reads of an arviz ELPDData: elpd, se and the pointwise values."""
    return SimpleNamespace(
        elpd=float(pointwise.sum()), se=float(np.sqrt(pointwise.size) * pointwise.std()), elpd_i=pointwise
    )


def pair(lead_per_week: np.ndarray) -> dict[int, SimpleNamespace]:
    base = np.full(lead_per_week.size, -1.0)
    return {2: fake_loo(base), 4: fake_loo(base + lead_per_week)}


def test_four_harmonics_kept_only_when_clearly_ahead() -> None:
    weeks = 100
    steady = np.full(weeks, 0.1)  # ahead by 10 elpd, the same every week: se 0
    order, record = seasonality.choose(pair(steady))
    assert order == 4 and record["order"] == 4
    assert record["elpd_diff"] == pytest.approx(10.0) and record["diff_se"] == pytest.approx(0.0)
    assert [o["order"] for o in record["orders"]] == [2, 4]
    assert record["orders"][1]["elpd_loo"] == pytest.approx(-90.0)

    order, record = seasonality.choose(pair(np.full(weeks, 0.03)))  # ahead by 3: within noise
    assert order == 2 and record["elpd_diff"] == pytest.approx(3.0)

    # ahead by 6 but from a few weeks: the difference's se (about 4.9) makes 6 less than two se
    lumpy = np.zeros(weeks)
    lumpy[:3] = 2.0
    order, record = seasonality.choose(pair(lumpy))
    assert record["elpd_diff"] == pytest.approx(6.0) and record["diff_se"] > 3.0
    assert order == 2

    order, record = seasonality.choose(pair(-steady))  # behind
    assert order == 2

    order, record = seasonality.choose({2: fake_loo(np.full(weeks, -1.0)), 4: None})  # not scored: the smaller
    assert order == 2 and record["elpd_diff"] is None and record["orders"][1]["elpd_loo"] is None


def test_sentence_says_which_order_and_why() -> None:
    _, kept = seasonality.choose(pair(np.full(100, 0.1)))
    assert seasonality.sentence({"seasonality": kept}) == (
        "Yearly seasonality: 4 harmonics, chosen out of sample (4 harmonics score +10.0 ± 0.0 elpd against 2)."
    )
    _, held = seasonality.choose(pair(np.full(100, 0.03)))
    assert "2 harmonics; 4 harmonics score +3.0" in seasonality.sentence({"seasonality": held})
    assert seasonality.sentence({}) is None


def test_the_order_not_kept_joins_the_candidates_under_its_own_name() -> None:
    from mmmlib.model import Fitted
    from mmmlib.structures import Structure

    rec = {"adstock": "geometric", "saturation": "logistic", "baseline": "changepoints", "name": "x", "weight": 0.0}
    fitted = Fitted(mmm=None, idata=None, X=None, y=None, control_scales={}, sampler="nutpie", chains=2, draws=10,
                    fit_seconds=1.0, structure=Structure("geometric", "logistic"), score=(rec, "loo"))  # fmt: skip
    seasonality.renamed(fitted, 4)
    assert fitted.structure.name == "geometric+logistic+changepoints+fourier4"
    assert fitted.score[0]["name"] == fitted.structure.name and fitted.score[0]["yearly_seasonality"] == 4
    assert fitted.score[1] == "loo" and rec["name"] == "x"  # the worker's record is not changed in place
    assert Structure("geometric", "logistic").to_dict() == {
        "adstock": "geometric",
        "saturation": "logistic",
        "baseline": "changepoints",
    }

    _, held = seasonality.choose(pair(np.full(100, 0.03)))
    candidates = [{"name": "geometric+logistic+changepoints", "weight": 0.4}, {**fitted.score[0], "weight": 0.6}]
    joined = seasonality.joined(held, candidates)
    assert joined["order"] == 2 and joined["joined"] == {"name": fitted.structure.name, "order": 4, "weight": 0.6}
    assert seasonality.sentence({"seasonality": joined}).endswith(
        "not enough to keep the larger order. The first structure with 4 harmonics is weighed among the candidates:"
        " weight 0.60."
    )
    assert seasonality.joined(held, candidates[:1]) is held  # fixed structures' runs before: nothing joined


def test_a_mixture_of_two_orders_has_the_larger_with_zeros_for_the_missing_terms() -> None:
    from mmmlib import forecast, stacking

    def draws(modes: list[str], value: float) -> xr.Dataset:
        coefs = np.full((2, 10, len(modes)), value)
        return xr.Dataset({"gamma_fourier": (("chain", "draw", "fourier_mode"), coefs)}, coords={"fourier_mode": modes})

    two = ["sin_1", "sin_2", "cos_1", "cos_2"]
    four = [f"{f}_{h}" for f in ("sin", "cos") for h in range(1, 5)]
    mixed, index = stacking.zero_missing_terms(
        stacking.mix_groups([draws(two, 1.0), draws(four, 2.0)], [4, 6], np.random.default_rng(0))
    )
    coefs = mixed["gamma_fourier"]
    assert sorted(str(m) for m in coefs["fourier_mode"].values) == sorted(four)
    assert not np.isnan(coefs.values).any()
    small = coefs.values[index == 0]  # (draws of order 2, mode)
    modes = [str(m) for m in coefs["fourier_mode"].values]
    assert (small[:, [modes.index(m) for m in two]] == 1.0).all()
    assert (small[:, [i for i, m in enumerate(modes) if m not in two]] == 0.0).all()
    assert (coefs.values[index == 1] == 2.0).all()

    # the forecast's seasonality of an order-2 draw is its own two harmonics', nothing from the other terms
    dates = pd.date_range("2024-01-01", periods=52, freq="W-MON")
    post = SimpleNamespace(
        idata={"posterior": mixed},
        draws=lambda name: mixed[name].stack(sample=("chain", "draw")).transpose("sample", ...).values,
    )
    phase = 2 * np.pi * np.asarray(dates.dayofyear, dtype=float) / forecast.DAYS_IN_YEAR
    own = sum(np.sin(h * phase) + np.cos(h * phase) for h in (1, 2))
    flat = index.ravel()  # chain-major, as stack(chain, draw)
    assert np.allclose(forecast.seasonality(post, dates)[flat == 0], own)


def test_config_accepts_auto_and_names_it_when_refusing(tmp_path: Path) -> None:
    cfg = ModelConfig(date_column="week", target_column="sales", channel_columns=["tv"], yearly_seasonality="auto")
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml").yearly_seasonality == "auto"
    with pytest.raises(InputError, match=r"yearly_seasonality.*whole number ≥ 0 or auto"):
        ModelConfig(date_column="week", target_column="sales", channel_columns=["tv"], yearly_seasonality="monthly")


def three_bump_year(out: Path, weeks: int = 156, seed: int = 3) -> tuple[Path, Path]:
    """Weekly sales whose year has three bumps (harmonics 1–3) and little noise, two channels on logistic curves; the
    config lets two candidate structures (logistic or Hill returns) be weighed."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks)
    year = sum(
        a * np.sin(2 * np.pi * (h + 1) * t / 52.18 + p)
        for h, (a, p) in enumerate([(0.10, 0.3), (0.06, 1.1), (0.08, 2.0)])
    )
    tv = rng.gamma(2.0, 500.0, weeks) * (rng.random(weeks) < 0.6)
    search = 300.0 + rng.gamma(4.0, 50.0, weeks)
    media = 4000.0 * np.tanh(tv / 1500.0) + 2500.0 * np.tanh(search / 600.0)
    sales = (20000.0 * (1 + year) + media) * np.exp(rng.normal(0, 0.01, weeks))
    dates = pd.date_range("2021-01-04", periods=weeks, freq="W-MON")
    frame = pd.DataFrame({"week": dates.strftime("%Y-%m-%d"), "sales": sales.round(2), "tv": tv.round(2),
                          "search": search.round(2)})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "data.csv", index=False)
    cfg = ModelConfig(date_column="week", target_column="sales", channel_columns=["tv", "search"],
                      adstock="geometric", saturation="auto", yearly_seasonality="auto")  # fmt: skip
    save_config(cfg, out / "config.yaml")
    return out / "data.csv", out / "config.yaml"


@pytest.mark.slow
def test_a_year_with_three_bumps_keeps_four_harmonics_in_every_candidate(tmp_path: Path) -> None:
    data, config = three_bump_year(tmp_path / "data")
    run = tmp_path / "store" / "clients" / "acme" / "runs" / "season"
    args = ["fit", str(data), "--config", str(config), "--out", str(run), "--seed", "1", "--tune", "300"]
    fit = subprocess.run([sys.executable, "-m", "mmmlib", *args, "--draws", "300"], capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    choice = summary["model"]["seasonality"]
    assert choice["order"] == 4, choice
    assert (
        choice["elpd_diff"] > seasonality.KEEP_ELPD
        and choice["elpd_diff"] > seasonality.SE_MULTIPLE * choice["diff_se"]
    )
    assert [o["order"] for o in choice["orders"]] == [2, 4]
    assert "Yearly seasonality: 4 harmonics, chosen out of sample" in fit.stdout
    post = xr.open_datatree(run / "posterior.nc")
    # both candidates refitted with the order kept, and the first one's fit with two harmonics, then combined: the
    # two-harmonic fit is weighed like the others (next to nothing here) and the mixture has four harmonics
    candidates = summary["model"]["candidates"]
    assert [(c["saturation"], c.get("yearly_seasonality")) for c in candidates] == [
        ("logistic", None),
        ("hill", None),
        ("logistic", 2),
    ]
    assert candidates[2]["name"] == "geometric+logistic+changepoints+fourier2"
    assert choice["joined"] == {"name": candidates[2]["name"], "order": 2, "weight": candidates[2]["weight"]}
    assert candidates[2]["weight"] < 0.05
    assert post["posterior"]["gamma_fourier"].sizes["fourier_mode"] == 8
    assert not np.isnan(post["posterior"]["gamma_fourier"].values).any()
