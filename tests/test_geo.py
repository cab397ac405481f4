"""Geo models (#15): config and detection, per-geo validation, the national roll-up's arithmetic, and one real
hierarchical fit (``geo_run``) read by the summary, the optimiser, forecasts, the dashboards and the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib import geo
from mmmlib.config import ModelConfig, save_config
from mmmlib.data import synth_geo
from mmmlib.data.reader import read_raw
from mmmlib.data.synth import SynthSpec
from mmmlib.data.validate import check
from mmmlib.errors import InputError


def _mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True)


def _geo_data(tmp_path: Path) -> tuple[pd.DataFrame, ModelConfig]:
    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=5), 3)
    return frame, config


def _check(frame: pd.DataFrame, config: ModelConfig, tmp_path: Path):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return check(read_raw(path), config)


# ---- config ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"geo_model": "pooled"}, "geo_model"),
        ({"geo_model": "hierarchical", "geo_column": None}, "geo_model"),
        ({"media_columns": {"radio_spend": "radio_impressions"}}, "media_columns"),
        ({"holdout_periods": 4}, "holdout_periods"),
    ],
)
def test_geo_config_keys_are_checked(change: dict, key: str) -> None:
    _, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=5), 2)
    with pytest.raises(InputError, match=f"Config key {key}"):
        ModelConfig.from_dict({**config.to_dict(), **change})


def test_aggregate_geos_is_still_read_as_geo_model_aggregate() -> None:
    cfg = ModelConfig(date_column="d", target_column="y", channel_columns=["tv"], geo_column="g", aggregate_geos=True)
    assert cfg.geo_model == "aggregate" and not cfg.hierarchical


def test_meridian_geo_file_validates_as_a_hierarchical_dataset(public_data: Path) -> None:
    from mmmlib.data.dataset import load_dataset, propose_config

    path = public_data / "meridian_geo_all_channels.csv"
    cfg, _ = propose_config(read_raw(path))
    ds = load_dataset(path, cfg)
    assert len(ds.geos) == 40 and ds.geo_frame is not None and len(ds.geo_frame) == 40 * 156
    assert len(ds.frame) == 156  # the national sum the structure is chosen on
    assert ds.frame["Channel0_spend"].sum() == pytest.approx(ds.geo_frame["Channel0_spend"].sum())
    assert "Organic_channel0_impression" in ds.controls


def test_the_national_sum_of_a_geo_config_takes_full_modes_time_slice_folds(public_data: Path) -> None:
    """Full mode chooses the structure on the national sum by time-slice CV, whose folds hold weeks out; a
    hierarchical config refuses held-out weeks, so the sum is fitted under an aggregate one (``mmm fit --mode full``
    on Meridian's geos failed there after the seasonality's fits)."""
    from mmmlib import time_slice
    from mmmlib.data.dataset import load_dataset, propose_config
    from mmmlib.model import national_sum

    path = public_data / "meridian_geo_all_channels.csv"
    cfg, _ = propose_config(read_raw(path))
    ds = load_dataset(path, cfg)
    national = national_sum(ds)
    assert national.geo_frame is None and not national.config.hierarchical and ds.config.hierarchical
    assert national.frame.equals(ds.frame)  # the same summed weeks
    folds = time_slice.folds(len(national.frame), national.frequency)
    assert folds and time_slice.fold_dataset(national, folds[0]).config.holdout_periods == folds[0].horizon


# ---- validation per geo ------------------------------------------------------------------------------------------


def test_a_geo_missing_a_week_is_named(tmp_path: Path) -> None:
    frame, config = _geo_data(tmp_path)
    frame = frame.drop(frame.index[(frame["geo"] == "geo001") & (frame["week"] == frame["week"].iloc[10])])
    errors = [i for i in _check(frame, config, tmp_path).report.errors if i.code == "unbalanced_geos"]
    assert errors and "geo geo001 has 59 of the 60 periods" in errors[0].message


def test_a_geo_whose_kpi_is_all_zero_is_named(tmp_path: Path) -> None:
    frame, config = _geo_data(tmp_path)
    frame.loc[frame["geo"] == "geo002", "revenue"] = 0.0
    errors = [i for i in _check(frame, config, tmp_path).report.errors if i.code == "zero_kpi_geo"]
    assert errors and "geo002" in errors[0].message


def test_a_geo_that_never_spends_on_a_channel_is_a_named_warning(tmp_path: Path) -> None:
    frame, config = _geo_data(tmp_path)
    frame.loc[frame["geo"] == "geo000", "search_spend"] = 0.0
    checked = _check(frame, config, tmp_path)
    warnings = [i for i in checked.report.warnings if i.code == "geo_no_spend"]
    assert checked.report.ok and warnings and "geo000" in warnings[0].message
    assert warnings[0].column == "search_spend"


def test_the_validated_geo_frame_has_every_geo_and_week(tmp_path: Path) -> None:
    frame, config = _geo_data(tmp_path)
    checked = _check(frame.sample(frac=1.0, random_state=1), config, tmp_path)  # shuffled rows
    assert checked.report.ok
    g = checked.geo_frame
    assert g is not None and len(g) == 3 * 60
    assert g["week"].is_monotonic_increasing
    assert checked.frame["revenue"].sum() == pytest.approx(frame["revenue"].sum())


def test_synth_geos_command_writes_a_hierarchical_dataset(tmp_path: Path) -> None:
    out = tmp_path / "g"
    done = _mmm("synth", "--geos", "3", "--weeks", "60", "--channels", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert len(truth["geos"]) == 3
    for j, ch in enumerate(truth["channels"]):  # national truth is the geos' sum
        assert ch["contribution"] == pytest.approx(sum(g["channels"][j]["contribution"] for g in truth["geos"]))
    assert "geo_model: hierarchical" in (out / "config.yaml").read_text()


# ---- the roll-up's arithmetic --------------------------------------------------------------------------------------


def _fake_geo_tree() -> xr.DataTree:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=5, freq="7D")
    coords = {"chain": [0], "draw": np.arange(3), "date": dates, "geo": ["a", "b"], "channel": ["tv"]}
    contrib = rng.random((1, 3, 5, 2, 1))
    posterior = xr.Dataset(
        {
            "channel_contribution": (("chain", "draw", "date", "geo", "channel"), contrib),
            "mu": (("chain", "draw", "geo", "date"), rng.random((1, 3, 2, 5))),
            "y_sigma": (("chain", "draw", "geo"), np.ones((1, 3, 2))),
            "saturation_beta": (("chain", "draw", "geo", "channel"), np.ones((1, 3, 2, 1))),
        },
        coords=coords,
    )
    const = xr.Dataset(
        {
            "channel_data": (("date", "geo", "channel"), np.ones((5, 2, 1))),
            "target_data": (("date", "geo"), np.ones((5, 2))),
            "target_scale": ((), 10.0),
            "channel_scale": (("channel",), [2.0]),
            "population_factor": (("geo",), [0.5, 2.0]),
        },
        coords={k: coords[k] for k in ("date", "geo", "channel")},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "constant_data": const})


def test_national_roll_up_weighs_each_geo_by_its_population() -> None:
    tree = _fake_geo_tree()
    nat = geo.national(tree)
    c = tree["posterior"]["channel_contribution"]
    expected = 0.5 * c.sel(geo="a") + 2.0 * c.sel(geo="b")
    np.testing.assert_allclose(nat["posterior"]["channel_contribution"].values, expected.values)
    np.testing.assert_allclose(nat["posterior"]["y_sigma"].values, np.sqrt(0.5**2 + 2.0**2))
    assert "saturation_beta" not in nat["posterior"].data_vars  # a geo's own parameter has no national meaning
    b = geo.geo_slice(tree, "b")
    assert float(b["constant_data"]["target_scale"]) == pytest.approx(20.0)
    assert float(b["constant_data"]["channel_scale"][0]) == pytest.approx(4.0)
    compact = geo.compact(tree)
    assert compact["posterior"]["channel_contribution"].dtype == np.float32
    assert "geo" not in compact["posterior"]["channel_contribution"].dims


def test_the_national_roll_up_and_the_stored_run_sum_blocks_of_draws_to_exactly_what_one_piece_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    coords = {"chain": [0, 1], "draw": np.arange(10), "date": np.arange(4), "geo": ["a", "b", "c"], "channel": ["tv"]}
    contrib = rng.random((2, 10, 4, 3, 1)).astype(np.float32)  # as a slimmed geo fit holds them
    posterior = xr.Dataset(
        {
            "channel_contribution": (("chain", "draw", "date", "geo", "channel"), contrib),
            "mu": (("chain", "draw", "geo", "date"), rng.random((2, 10, 3, 4)).astype(np.float32)),
        },
        coords=coords,
    )
    const = xr.Dataset(
        {"population_factor": (("geo",), [0.5, 2.0, 1.5]), "target_scale": ((), 10.0)},
        coords={"geo": coords["geo"]},
    )
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": const})
    whole = geo.national(tree)["posterior"].to_dataset()
    stored = geo.compact(tree)["posterior"].to_dataset()  # the run's posterior.nc sums them the same way
    monkeypatch.setattr(geo, "ROLLUP_DRAWS", 3)  # blocks of 3, 3, 3 and 1 draws
    blocks = geo.national(tree)["posterior"].to_dataset()
    xr.testing.assert_identical(blocks, whole)  # values bit for bit, dims, coordinates
    assert blocks["channel_contribution"].dims == ("chain", "draw", "date", "channel")
    summed = []
    real_sum = geo._geo_sum
    monkeypatch.setattr(geo, "_geo_sum", lambda da, f: summed.append(da.name) or real_sum(da, f))
    xr.testing.assert_identical(geo.compact(tree)["posterior"].to_dataset(), stored)
    assert sorted(summed) == ["channel_contribution", "mu"]  # in blocks of draws, not one float64 piece
    assert stored["channel_contribution"].dtype == np.float32 and "geo" not in stored["mu"].dims


# ---- one real geo fit ----------------------------------------------------------------------------------------------


def test_geo_run_reports_national_first_and_every_geo(geo_run: dict) -> None:
    summary = json.loads((geo_run["run_dir"] / "summary.json").read_text())
    truth = geo_run["truth"]
    assert summary["status"] in ("ok", "warning") and summary["diagnostics"]["divergences"] == 0
    assert summary["model"]["selection"] == "national sum" and len(summary["model"]["candidates"]) > 1
    names = [g["name"] for g in summary["geos"]]
    assert sorted(names) == [g["name"] for g in truth["geos"]]
    kpis = [g["kpi"] for g in summary["geos"]]
    assert kpis == sorted(kpis, reverse=True)  # largest first
    assert sum(kpis) == pytest.approx(summary["totals"]["kpi"], rel=1e-9)
    national_media = summary["totals"]["media_contribution"]["mean"]
    assert sum(g["media_contribution"]["mean"] for g in summary["geos"]) == pytest.approx(national_media, rel=1e-6)
    for row in summary["channels"]:  # each national ROAS interval covers the truth
        true = next(c["roas"] for c in truth["channels"] if c["name"] == row["name"])
        assert row["roas"]["hdi_low"] <= true <= row["roas"]["hdi_high"], (row["name"], row["roas"], true)
    for g in summary["geos"]:
        for c in g["channels"]:
            assert c["roas"]["hdi_low"] <= c["roas"]["mean"] <= c["roas"]["hdi_high"]
        assert len(g["response_curves"]) == 2


def test_a_second_structure_the_national_sum_cannot_tell_apart_is_weighed_on_the_geos(geo_run: dict) -> None:
    """Where the national sum cannot tell another structure from its best, both are fitted over the geos, weighed by
    PSIS-LOO on the geos' data, and the run's posterior is their mixture (mmmlib.model.fit_geos)."""
    from mmmlib.refresh import second_within_noise

    model = json.loads((geo_run["run_dir"] / "summary.json").read_text())["model"]
    second = second_within_noise(model["candidates"], model["structure"])
    post = xr.open_datatree(geo_run["run_dir"] / "posterior.nc")["posterior"]
    if second is None:
        assert "geo_candidates" not in model and "second" not in model and "structure" not in post
        return
    assert model["second"] == second
    weighed = {c["name"]: c for c in model["geo_candidates"]}
    assert set(weighed) == {model["structure"], second["structure"]}
    assert sum(c["weight"] for c in weighed.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(c["elpd_loo"] is not None and c["divergences"] == 0 for c in weighed.values())
    # each draw is one structure's, in proportion to the weights
    index = np.asarray(post["structure"].values).ravel()
    for i, c in enumerate(model["geo_candidates"]):
        assert np.mean(index == i) == pytest.approx(c["weight"], abs=0.01)
    log = (geo_run["run_dir"] / "fit.log").read_text()
    assert "the geos' own data weigh the two" in log
    assert "Computing ..." not in log  # workers' deterministics pass writes no progress bar into the log
    # each in a process of its own (its memory returned before the other samples), unless one core is all there is
    assert log.count("over 4 geos in a worker process of its own") == (2 if (os.cpu_count() or 1) > 1 else 0)
    from mmmlib.widgets.quality import structure_roas_table, structures_table

    summary = json.loads((geo_run["run_dir"] / "summary.json").read_text())
    shown = structures_table(summary).value
    assert "Fitted over the geos" in shown and "two structures were then fitted over every geo" in shown
    geo_table = shown.split("mmm-geo-structures", 1)[1]
    assert all(f"{c['weight']:.2f}" in geo_table for c in model["geo_candidates"])
    by_structure = structure_roas_table(summary).value  # the ROAS of the two geo fits the posterior mixes
    assert "fitted over every geo" in by_structure
    for c in model["geo_candidates"]:
        assert f"{c['adstock']}+{c['saturation']} (weight {c['weight']:.2f})" in by_structure


def _pair_member(name: str, divergences: int, seconds: float = 10.0):
    from mmmlib import structures
    from mmmlib.model import Fitted

    adstock, saturation = name.split("+")
    member = Fitted(None, None, None, None, {}, "nutpie", 2, 100, seconds)  # type: ignore[arg-type]
    member.structure = structures.candidates(adstock, saturation, "changepoints")[0]
    member.score = ({"name": member.structure.name, "divergences": divergences}, None)
    return member


@pytest.mark.parametrize(
    ("divergences", "weights", "refitted"),
    [
        ((0, 0), (0.5, 0.5), None),
        ((0, 13), (0.0, 1.0), 1),
        ((4, 0), (0.5, 0.5), 0),
        ((0, 10), (0.94, 0.06), None),
        ((1, 10), (0.0, 1.0), None),
    ],
    ids=["clean", "preferred-diverged", "tie-diverged", "minority-diverged", "both-diverged"],
)
def test_a_geo_pair_refits_the_one_member_that_diverged_where_the_geos_prefer_it(
    monkeypatch, divergences, weights, refitted
) -> None:
    """A member that diverged would be left out of the weighing, so the other structure would stand alone: where the
    geos prefer it (its PSIS-LOO weight as it is, at least half) it is refitted once with smaller steps; a minority
    one is left out. Where both diverged, both are kept (the run is flagged): refitting two geo fits would double the
    longest step."""
    from mmmlib import model, stacking

    names = ["geometric+logistic", "geometric+hill"]
    calls: list[tuple[str, float, dict | None, float]] = []

    def member(job, retried=None, earlier_seconds=0.0):
        name = job[1].name
        calls.append((name, job[2]["target_accept"], retried, earlier_seconds))
        short = f"{job[1].adstock}+{job[1].saturation}"
        again = retried is not None
        return _pair_member(short, 0 if again else divergences[names.index(short)], 20.0 if again else 10.0)

    monkeypatch.setattr(model, "_geo_member", member)
    monkeypatch.setattr(stacking, "loo_weights", lambda members: list(weights))
    shapes = [_pair_member(n, 0).structure for n in names]
    jobs = [(None, s, {"target_accept": 0.95}, "nutpie", 1, None, None) for s in shapes]
    members = model._fit_geo_pair(jobs)
    assert [m.structure.name for m in members] == [s.name for s in shapes]
    assert calls[:2] == [(s.name, 0.95, None, 0.0) for s in shapes]
    if refitted is None:
        assert len(calls) == 2
        return
    retried = {"divergences": divergences[refitted], "target_accept": 0.95}
    assert calls[2:] == [(shapes[refitted].name, model.RETRY_TARGET_ACCEPT, retried, 10.0)]
    assert members[refitted].score[0]["divergences"] == 0


def test_the_seasonality_order_chosen_on_the_national_sum_is_the_geo_fits(geo_run: dict) -> None:
    choice = json.loads((geo_run["run_dir"] / "summary.json").read_text())["model"]["seasonality"]
    assert choice["order"] in (2, 4) and all(o["elpd_loo"] is not None for o in choice["orders"])
    post = xr.open_datatree(geo_run["run_dir"] / "posterior.nc")["posterior"]
    assert post["gamma_fourier"].sizes["fourier_mode"] == 2 * choice["order"]


def test_a_geo_runs_lift_tests_calibrate_the_geo_fit(geo_run: dict) -> None:
    log = (geo_run["run_dir"] / "fit.log").read_text()
    assert "calibrating with 1 lift tests" in log and "not used by geo models" not in log
    lift = xr.open_datatree(geo_run["run_dir"] / "posterior.nc")["posterior"]["lift_measurements_model_estimated_lift"]
    assert lift.sizes["_lift_measurements_dim"] == 1  # the test's likelihood was in the model that was sampled


def test_a_data_poor_geo_is_shrunk_toward_its_channels_population(geo_run: dict) -> None:
    """The last geo spent on search in 4 of 78 weeks: its return there comes from the other geos (the channel's
    population), not from the prior's centre, and its interval is far narrower than the prior's."""
    summary = json.loads((geo_run["run_dir"] / "summary.json").read_text())
    quiet = next(g for g in summary["geos"] if g["name"] == "geo003")
    search = next(c for c in quiet["channels"] if c["name"] == "search_spend")
    national = next(c for c in summary["channels"] if c["name"] == "search_spend")["roas"]["mean"]
    prior_median, prior_width = np.exp(0.2), 6.7 - 0.22  # Meridian's ROAS prior, the product's default
    assert abs(np.log(search["roas"]["mean"] / national)) < 0.5 * abs(np.log(prior_median / national))
    assert search["roas"]["hdi_high"] - search["roas"]["hdi_low"] < 0.5 * prior_width


def test_every_geo_and_the_nation_get_the_full_not_identified_rule(geo_run: dict) -> None:
    """#12 item 4 on a geo run: the prior-sd half of the rule needs the prior, which a geo fit stores as its
    hierarchical ROAS prior; every national and geo row is judged with it, each geo against its own prior."""
    from mmmlib.identification import RSE_MAX, SD_SHARE, spans_breakeven

    summary = json.loads((geo_run["run_dir"] / "summary.json").read_text())
    breakeven = summary["breakeven_roas"]
    national_sd = {}
    for row in summary["channels"]:
        national_sd[row["name"]] = row["identification"]["prior_sd"]
        assert national_sd[row["name"]] is not None and national_sd[row["name"]] > 0
    for g in summary["geos"]:
        for c in g["channels"]:
            verdict = c["identification"]
            assert verdict["prior_sd"] is not None
            # one geo's return is less certain a priori than the spend-weighted national one (the geos' spread adds)
            assert verdict["prior_sd"] > national_sd[c["name"]]
            wide = verdict["roas_sd"] > SD_SHARE * verdict["prior_sd"]
            spans = spans_breakeven(c["roas"]["hdi_low"], c["roas"]["hdi_high"], breakeven)
            imprecise = verdict["roas_sd"] > RSE_MAX * c["roas"]["mean"]
            assert c["identified"] == (not wide and not spans and not imprecise), (g["name"], c)


def test_geo_prior_draws_follow_the_hierarchy() -> None:
    from mmmlib.priors import geo_roas_prior_draws
    from mmmlib.roas_priors import geo_record

    assert geo_roas_prior_draws({}, 3) is None  # a fit that stored no record: the interval rule alone
    attrs = {"geo_roas_prior": geo_record(np.array([0.2, -0.5]), np.array([0.9, 0.4]), 0.3)}
    draws = geo_roas_prior_draws(attrs, 5, draws=200_000, seed=1)
    assert draws.shape == (200_000, 5, 2)
    logs = np.log(draws)
    assert np.median(logs, axis=(0, 1)) == pytest.approx([0.2, -0.5], abs=0.01)
    # each geo: population sd and the geos' spread add (E tau^2 = 0.3^2 for a half-normal of scale 0.3)
    assert logs.var(axis=0).mean(axis=0) == pytest.approx([0.81 + 0.09, 0.16 + 0.09], rel=0.02)
    # two geos share their channel's population draw: covariance is the population's variance
    cov = np.mean((logs[:, 0] - logs[:, 0].mean(0)) * (logs[:, 1] - logs[:, 1].mean(0)), axis=0)
    assert cov == pytest.approx([0.81, 0.16], rel=0.03)
    # since 2026-12-03 the record holds the geos' spend weights: the prior sits on the national return
    weights = np.array([[0.1, 0.5], [0.2, 0.0], [0.3, 0.25], [0.2, 0.25], [0.2, 0.0]])
    attrs = {"geo_roas_prior": geo_record(np.array([0.2, -0.5]), np.array([0.9, 0.4]), 1.0, weights)}
    draws = geo_roas_prior_draws(attrs, 5, draws=200_000, seed=1)
    national = np.log((draws * weights).sum(axis=1))
    assert np.median(national, axis=0) == pytest.approx([0.2, -0.5], abs=0.01)
    assert national.std(axis=0) == pytest.approx([0.9, 0.4], rel=0.02)
    between = np.log(draws[:, 0]) - np.log(draws[:, 2])  # tau (z_1 - z_2): variance 2 E[tau^2] = 2
    assert between.std(axis=0) == pytest.approx([np.sqrt(2)] * 2, rel=0.02)


def test_geo_table_marks_a_geo_whose_return_the_data_do_not_identify() -> None:
    from mmmlib.tables import UNIDENTIFIED_MARK, UNIDENTIFIED_NOTE, any_geo_unidentified, geo_table

    interval = {"mean": 1.5, "hdi_low": 1.2, "hdi_high": 1.8}
    ch = {"spend": 10.0, "roas": interval, "identified": True}
    summary = {
        "breakeven_roas": 1.0,
        "channels": [{"name": "tv", "label": "TV"}],
        "geos": [
            {
                "name": "north",
                "kpi": 2.0,
                "spend": 1.0,
                "media_contribution": interval,
                "channels": [{**ch, "name": "tv"}],
            },
            {
                "name": "south",
                "kpi": 1.0,
                "spend": 1.0,
                "media_contribution": interval,
                "channels": [{**ch, "name": "tv", "identified": False}],
            },
        ],
    }
    table = geo_table(summary)
    assert not table.loc["north", "ROAS TV"].endswith(UNIDENTIFIED_MARK)
    assert table.loc["south", "ROAS TV"].endswith(UNIDENTIFIED_MARK) and any_geo_unidentified(summary)
    summary["geos"][1]["channels"][0]["identified"] = True
    assert not any_geo_unidentified(summary)
    del summary["geos"][1]["channels"][0]["identified"]  # an older run: the interval rule on its stored HDI
    summary["geos"][1]["channels"][0]["roas"] = {"mean": 1.5, "hdi_low": 0.2, "hdi_high": 3.0}
    assert any_geo_unidentified(summary) and geo_table(summary).loc["south", "ROAS TV"].endswith(UNIDENTIFIED_MARK)
    assert UNIDENTIFIED_NOTE.startswith(UNIDENTIFIED_MARK.strip())


def test_geo_posterior_is_stored_compactly(geo_run: dict) -> None:
    tree = xr.open_datatree(geo_run["run_dir"] / "posterior.nc")
    post = tree["posterior"]
    assert not [v for v in post.data_vars if {"date", "geo"} <= set(post[v].dims)]
    assert post["channel_contribution"].dtype == np.float32
    assert "log_likelihood" not in tree.children
    assert (geo_run["run_dir"] / "geo_data.csv").is_file()


def test_optimiser_splits_a_national_budget_over_geo_curves(geo_run: dict) -> None:
    from mmmlib.optimize import allocate, load_curves

    curves = load_curves(geo_run["run_dir"])
    assert curves.geos is not None and len(curves.geos) == 4
    budget = float(curves.current.sum())
    national = allocate(curves, budget, []).to_dict()
    assert sum(c["optimal_spend"] for c in national["channels"]) == pytest.approx(budget, rel=1e-6)
    # the national curve is the sum of the geos' at today's split; the optimiser's tabulated mean is close to it
    x = curves.current[None, :]
    total = sum(p.mean_response(x * curves.shares[g]) for g, p in enumerate(curves.parts))
    np.testing.assert_allclose(curves.response(x).mean(axis=0), total)
    np.testing.assert_allclose(curves.mean_response(x), total, rtol=0.02)
    one = curves.geo("geo000")
    assert allocate(one, float(one.current.sum()), []).to_dict()["budget"] == pytest.approx(one.current.sum())
    done = _mmm("optimize", str(geo_run["run_dir"]), "--budget", f"{budget:.0f}")
    assert done.returncode == 0, done.stderr
    # geo × channel: the same curves, one line each; today's split gives the national model's total
    lines = curves.by_geo()
    assert len(lines.channels) == 8 and lines.channels[0] == f"{curves.geos[0]}:{curves.channels[0]}"
    np.testing.assert_allclose(lines.mean_response(lines.current[None, :]).sum(), total.sum())
    fixed = f"{curves.geos[1]}:{curves.channels[0]}"
    split = allocate(lines, budget * 1.1, [f"{fixed}=fixed"]).to_dict()
    row = next(c for c in split["channels"] if c["name"] == fixed)
    assert row["optimal_spend"] == pytest.approx(row["current_spend"])
    done = _mmm("optimize", str(geo_run["run_dir"]), "--budget", f"{budget:.0f}", "--by-geo")
    assert done.returncode == 0 and "geo003:search_spend" in done.stdout


def test_a_by_geo_split_holds_a_geo_whose_return_the_data_do_not_identify(geo_run: dict, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(geo_run["run_dir"], run)
    summary = json.loads((run / "summary.json").read_text())
    assert all(c["identified"] for c in summary["channels"])  # nationally every channel is identified here
    geo2 = next(g for g in summary["geos"] if g["name"] == "geo002")
    next(c for c in geo2["channels"] if c["name"] == "tv_spend")["identified"] = False
    (run / "summary.json").write_text(json.dumps(summary))
    budget = sum(g["spend"] for g in summary["geos"]) / summary["period"]["periods"]
    done = _mmm("optimize", str(run), "--budget", f"{budget:.0f}", "--by-geo", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["held"] == ["geo002:tv_spend"]
    row = next(c for c in result["channels"] if c["name"] == "geo002:tv_spend")
    assert row["optimal_spend"] == pytest.approx(row["current_spend"])


def test_forecasts_per_geo_add_up_to_the_national_one(geo_run: dict) -> None:
    from mmmlib.forecast import constant_plan, forecast, load_forecaster

    fc = load_forecaster(geo_run["run_dir"])
    summary = json.loads((geo_run["run_dir"] / "summary.json").read_text())
    fitted = sum(f.reproduce_fit().mean(axis=0) for f in fc.geos.values())
    np.testing.assert_allclose(fitted, summary["fit"]["predicted"], rtol=1e-5)
    national = forecast(geo_run["run_dir"], [constant_plan(fc, {}, 6)])["plans"]["plan 1"]["total_kpi"]["mean"]
    per_geo = sum(
        forecast(geo_run["run_dir"], [constant_plan(fc.geo(g), {}, 6)], geo=g)["plans"]["plan 1"]["total_kpi"]["mean"]
        for g in fc.geos
    )
    assert national == pytest.approx(per_geo, rel=1e-6)
    done = _mmm("forecast", str(geo_run["run_dir"]), "--geo", "geo001", "--periods", "4")
    assert done.returncode == 0 and "expected KPI" in done.stdout
    bad = _mmm("forecast", str(geo_run["run_dir"]), "--geo", "atlantis")
    assert bad.returncode != 0 and "no geo 'atlantis'" in bad.stderr


def test_dashboards_offer_a_geo_picker_and_the_geo_table(geo_run: dict) -> None:
    from mmmlib.widgets import executive_view, planner_view

    view = executive_view(geo_run["run_dir"])
    picker, body = view.children
    assert picker.options[0] == "National" and len(picker.options) == 5
    assert any("By geo" in getattr(c, "value", "") for c in body.children[0].children[-1].children)
    picker.value = "geo001"
    html = " ".join(getattr(c, "value", "") for c in body.children[0].children)
    assert "geo001" in html and "Recommendations" not in html  # a geo page never shows national advice as its own
    planner = planner_view(geo_run["run_dir"])
    planner.children[0].value = "geo002"
    assert planner.children[1].children  # the geo's planner drew


def test_html_report_includes_the_geo_table(geo_run: dict, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = _mmm("report", str(geo_run["run_dir"]), "--format", "html", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    html = out.read_text()
    assert "By geo (4 geos" in html and "geo003" in html
    txt = tmp_path / "report.txt"
    assert _mmm("report", str(geo_run["run_dir"]), "--format", "txt", "--out", str(txt)).returncode == 0
    assert "By geo, largest KPI first" in txt.read_text() and "geo003" in txt.read_text()
    from mmmlib.exports import text_report
    from mmmlib.tables import UNIDENTIFIED_NOTE

    summary = json.loads((geo_run["run_dir"] / "summary.json").read_text())
    for g in summary["geos"]:
        for c in g["channels"]:
            c["identified"] = True
    assert UNIDENTIFIED_NOTE not in text_report(summary)
    summary["geos"][-1]["channels"][0]["identified"] = False
    assert UNIDENTIFIED_NOTE in text_report(summary)


def test_save_and_refit_config_round_trip(tmp_path: Path) -> None:
    _, config = _geo_data(tmp_path)
    save_config(config, tmp_path / "c.yaml")
    from mmmlib.config import load_config

    again = load_config(tmp_path / "c.yaml")
    assert again.media_columns == config.media_columns and again.hierarchical


@pytest.mark.server
def test_geo_picker_in_a_real_voila_page(geo_run: dict, browser, tmp_path: Path) -> None:
    """The executive dashboard of a geo run in headless Chromium: national first with the geo table, then a geo."""
    from tests.conftest import ARTIFACTS, executive_page

    with executive_page(browser, geo_run["run_dir"], tmp_path, client="geo", height=3000) as page:
        body = page.inner_text("body")
        assert "By geo (4 geos" in body and "Recommendations" in body
        page.select_option(".mmm-geo-picker select", "geo001")
        page.wait_for_selector("text=geo001: this geo's channels", timeout=30_000)
        page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_executive_geo.png"), full_page=True)
        assert "Recommendations" not in page.inner_text("body")


def test_new_model_page_reads_a_geo_file_as_a_hierarchical_model(
    public_data: Path, tmp_path: Path, monkeypatch
) -> None:
    """Upload Meridian's geo file: ready to fit as one hierarchical model; dropping a spend channel drops its
    impressions pairing instead of refusing the config."""
    from datetime import datetime

    from mmmlib.widgets.new_model import NewModel

    monkeypatch.setenv("MMM_HOME", str(tmp_path / "home"))
    page = NewModel("acme")
    content = (public_data / "meridian_geo_all_channels.csv").read_bytes()
    page.upload.value = (
        {
            "name": "geo.csv",
            "type": "text/csv",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 1, 1),
        },
    )
    assert "ready to fit" in page.problems.value
    assert page._config().hierarchical and page._config().population_column == "population"
    page.channels.value = tuple(c for c in page.channels.value if c != "Channel4_spend")
    cfg = page._config()
    assert "Channel4_spend" not in cfg.media_columns and cfg.media_columns["Channel0_spend"] == "Channel0_impression"
    assert "ready to fit" in page.problems.value


def test_geo_fits_take_their_own_steps_and_overrides_still_win() -> None:
    from mmmlib.model import GEO_STEPS, sampler_settings

    quick = sampler_settings("quick", 5, 1, geo=True)
    assert (quick["tune"], quick["draws"]) == (GEO_STEPS["quick"]["tune"], GEO_STEPS["quick"]["draws"])
    assert sampler_settings("quick", 5, 1, geo=True, draws=300)["draws"] == 300
    assert sampler_settings("quick", 5, 1)["draws"] != quick["draws"]  # national fits keep the mode's


def test_a_geo_pairs_fits_stop_at_a_candidates_targets_and_a_single_geo_fit_at_the_modes() -> None:
    from mmmlib.model import PER_CANDIDATE, pair_settings, sampler_settings, stop_rule

    quick = sampler_settings("quick", 5, 1, geo=True)
    single, pair = stop_rule(quick), stop_rule(pair_settings(quick, "quick"))
    assert (pair.ess, pair.r_hat) == (PER_CANDIDATE["quick"]["stop"]["ess"], PER_CANDIDATE["quick"]["stop"]["r_hat"])
    assert pair.ess < single.ess and pair.r_hat > single.r_hat  # a mixture's member, not the whole posterior
    assert pair.max_draws == single.max_draws == quick["draws"]  # within the geo fit's own draws
    full = sampler_settings("full", 5, 1, geo=True)
    assert stop_rule(pair_settings(full, "full")) == stop_rule(full)  # full mode's candidates have no looser targets


def test_a_slimmed_geo_fit_keeps_the_diagnostics_of_every_sampled_parameter() -> None:
    """A geo pair's fit is slimmed before its score's ROAS and PSIS-LOO (the full draws are not held beside them), but
    its R-hat is measured on every sampled parameter first, also those the mixture does not keep."""
    from mmmlib import stacking

    rng = np.random.default_rng(0)
    chains, draws = 2, 200
    stuck = np.stack([rng.normal(0, 1, draws), rng.normal(5, 1, draws)])  # two chains apart: R-hat far above 1
    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw"), rng.normal(size=(chains, draws))),
            "roas_geo_offset": (("chain", "draw"), stuck),  # sampled, not kept
            "channel_contribution": (("chain", "draw", "date"), rng.normal(size=(chains, draws, 6))),
        }
    )
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))}),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), rng.normal(-1, 0.1, (chains, draws, 6)))}),
        }
    )
    member = _pair_member("geometric+logistic", 0)
    member.idata, member.score, member.mmm = tree, None, object()
    stacking.slim(member)
    assert member.score[0]["r_hat_max"] > 1.5
    assert member.score[0]["elpd_loo"] is not None  # PSIS-LOO read the pointwise likelihood before it was dropped
    assert set(member.idata["posterior"].data_vars) == {"intercept", "channel_contribution"}
    assert all(v.dtype == np.float32 for v in member.idata["posterior"].data_vars.values())
    assert "log_likelihood" not in member.idata.children and member.mmm is None


def test_loo_weights_say_which_fit_the_data_prefer_even_one_that_diverged() -> None:
    from mmmlib import stacking

    rng = np.random.default_rng(1)

    def scored(name: str, level: float, divergent: int) -> object:
        member = _pair_member(name, divergent)
        diverging = np.zeros((2, 200), bool)
        diverging[0, :divergent] = True
        member.idata = xr.DataTree.from_dict(
            {
                "posterior": xr.Dataset({"intercept": (("chain", "draw"), rng.normal(size=(2, 200)))}),
                "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging)}),
                "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), rng.normal(level, 0.05, (2, 200, 40)))}),
            }
        )
        member.score = stacking.score(member)
        return member

    members = [scored("geometric+logistic", -1.0, 0), scored("geometric+hill", -0.5, 13)]  # hill: 20 elpd better
    weights = stacking.loo_weights(members)
    assert weights[1] > 0.9 and sum(weights) == pytest.approx(1.0)
    assert stacking.compare(members)[0][1] == 0.0  # the weighing itself leaves the divergent fit out


@pytest.mark.slow  # two small hierarchical fits
def test_a_geo_fit_whose_spread_mixes_slowly_is_refitted_with_its_pinned_channels_centred(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the spread of the geos' returns misses the stopping rule's ESS target (here a target no fit meets), the
    fit is sampled again with the geo offsets of the channels its draws call pinned down centred, and the better
    mixed of the two is kept, its prior record naming the centred channels."""
    import logging

    from mmmlib import model, roas_priors, structures
    from mmmlib.data.dataset import load_dataset
    from mmmlib.sampling import StopRule

    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=5), 3, quiet_geo=True)
    frame.to_csv(tmp_path / "data.csv", index=False)
    dataset = load_dataset(tmp_path / "data.csv", config)
    settings = model.sampler_settings("quick", 2, 1, geo=True, tune=150, draws=150)
    unmet = StopRule(min_draws=150, max_draws=150, block=150, ess=1e9)
    structure = structures.Structure("geometric", "logistic")
    with caplog.at_level(logging.INFO, logger="mmmlib.model"):
        fitted = model.fit_geo_structure(dataset, structure, settings, "nutpie", 1, None, unmet)
    refits = [r.getMessage() for r in caplog.records if "refitting with the geo offsets of" in r.getMessage()]
    assert len(refits) == 1, [r.getMessage() for r in caplog.records]
    centred = [c for c in config.channel_columns if c in refits[0].split("offsets of ")[1]]
    assert centred  # the large channel's geos are pinned down in these data
    kept = [r.getMessage() for r in caplog.records if "keeping the" in r.getMessage()]
    record = json.loads(fitted.idata.attrs[roas_priors.GEO_ROAS_PRIOR_ATTR])
    if kept[0].endswith("keeping the refit"):
        assert [c for c, yes in zip(config.channel_columns, record["centred"], strict=True) if yes] == centred
    else:
        assert "centred" not in record
    assert int(fitted.idata["posterior"].sizes["draw"]) == 150


class _Handed(Exception):
    """Raised by the stand-in loop once it has seen what it was handed."""


@pytest.mark.parametrize("hierarchical", [True, False])
def test_the_numpyro_loop_takes_a_diagonal_mass_matrix_for_a_geo_fit_and_a_dense_one_nationally(
    hierarchical: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A geo model's 185-1,715 parameters are too many for a dense mass matrix estimated from a quick warm-up's last
    window of 200 draws, which cost numpyro 30 % more time at 10 geos (docs/geo.md, Scale)."""
    from dataclasses import replace

    from mmmlib import model, sampling, structures
    from mmmlib.data.dataset import load_dataset

    frame, config = _geo_data(tmp_path)
    if not hierarchical:
        frame = frame.groupby(config.date_column, as_index=False).sum(numeric_only=True)
        config = replace(config, geo_column=None, geo_model=None, population_column=None)
    frame.to_csv(tmp_path / "data.csv", index=False)
    dataset = load_dataset(tmp_path / "data.csv", config)
    assert dataset.hierarchical is hierarchical
    handed: dict = {}

    def loop(sampling_model: object, **kwargs: object) -> None:
        handed.update(kwargs)
        raise _Handed

    monkeypatch.setattr(sampling, "sample", loop)
    settings = model.sampler_settings("quick", 2, 1, geo=hierarchical)
    with pytest.raises(_Handed):
        model.fit_structure(dataset, structures.Structure("geometric", "logistic"), settings, "numpyro", 1, False, None)
    assert handed["dense"] is (not hierarchical)
