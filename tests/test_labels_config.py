"""Channel display labels and config parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmmlib.config import ModelConfig, load_config
from mmmlib.data.labels import channel_label
from mmmlib.errors import InputError


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("fb_ads", "Facebook Ads"),
        ("FB Ads", "Facebook Ads"),
        ("facebook", "Facebook Ads"),
        ("facebook_S", "Facebook Ads"),
        ("adwords", "Google Ads"),
        ("google_ads", "Google Ads"),
        ("GoogleAds_spend", "Google Ads"),
        ("tv_S", "TV"),
        ("ooh_S", "Out of Home"),
        ("Channel0_spend", "Channel 0"),
        ("x1", "X1"),
        ("youtube_cost", "YouTube"),
        ("meta_prospecting_spend", "Meta Ads Prospecting"),
        ("weird_new_thing", "Weird New Thing"),
    ],
)
def test_default_labels(name: str, label: str) -> None:
    assert channel_label(name) == label


def test_user_aliases_and_overrides_win() -> None:
    assert channel_label("ch_7", aliases={"ch 7": "Podcast Network"}) == "Podcast Network"
    assert channel_label("fb_ads", overrides={"fb_ads": "Meta (FB)"}) == "Meta (FB)"


def test_config_round_trip_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("date_column: week\ntarget_column: revenue\nchannel_columns: [tv, search]\n")
    cfg = load_config(path)
    # structure chosen from the data unless the config names one (#12)
    assert cfg.adstock == cfg.saturation == cfg.baseline == "auto" and cfg.adstock_max_lag == 8
    assert cfg.baseline_form == "changepoints" and cfg.roas_prior == {}
    assert cfg.breakeven_roas == 1.0
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nsaturaton: hill\n", "saturaton is not known"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nsaturation: cubic\n", "not one of"),
        ("date_column: w\ntarget_column: y\nchannel_columns: []\n", "at least one"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a, y]\n", "more than one role"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nmargin: 0\n", "margin"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nbaseline: wiggly\n", "baseline"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nroas_prior: {b: [1, 2]}\n", "not one of the channel"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nroas_prior: {a: [2, 1]}\n", "0 < low < high"),
        ("date_column: w\ntarget_column: y\nchannel_columns: [a]\nroas_prior: {a: 3}\n", "0 < low < high"),
        ("target_column: y\nchannel_columns: [a]\n", "date_column is missing"),
        ("date_column: w\n  bad: [\n", "not valid YAML at line"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, text: str, phrase: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=phrase):
        load_config(path)


def test_breakeven_from_margin_or_target_cost_per_kpi() -> None:
    base = {"date_column": "w", "target_column": "orders", "channel_columns": ["tv"]}
    assert ModelConfig(**base, margin=0.4).breakeven_roas == pytest.approx(2.5)
    count = ModelConfig(**base, kpi_type="count", target_cost_per_kpi=20.0)
    assert count.breakeven_roas == pytest.approx(0.05)  # one order per 20 of spend
    with pytest.raises(InputError, match="target_cost_per_kpi"):
        ModelConfig(**base, target_cost_per_kpi=-1)
