"""A geo refit keeps its previous run's structure while the data cannot tell it from the best (mmmlib.refresh)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmmlib import cli
from mmmlib.config import load_config
from mmmlib.model import _kept_structure, _simpler_structure
from mmmlib.refresh import (
    KEEP_ELPD,
    fitted_structure,
    geo_structure_sentence,
    keep_or_switch,
    previous_run,
    second_within_noise,
    simpler_within_noise,
    with_previous,
)
from mmmlib.request import FitRequest
from tests.conftest import _fit


def _records(**scores: float) -> list[dict]:
    """Candidate records as :func:`mmmlib.stacking.compare` writes them; the highest score gets the most weight."""
    best = max(scores.values())
    return [{"name": n, "elpd_loo": s, "weight": 1.0 if s == best else 0.1} for n, s in scores.items()]


def test_the_previous_structure_is_kept_within_noise_and_replaced_when_the_data_prefer_another() -> None:
    tied = _records(a=100.0, b=100.0 - KEEP_ELPD, c=90.0)
    assert keep_or_switch(tied, None) == ("a", None)  # a first fit: the best
    assert keep_or_switch(tied, "a") == ("a", None)  # the best already
    assert keep_or_switch(tied, "b") == ("b", {"structure": "b", "best": "a", "elpd_behind": KEEP_ELPD})
    assert keep_or_switch(tied, "c") == ("a", None)  # 10 behind: the data prefer a
    assert keep_or_switch(tied, "d") == ("a", None)  # no longer a candidate (the config changed)
    excluded = [dict(r, excluded="3 divergent transitions") if r["name"] == "b" else r for r in tied]
    assert keep_or_switch(excluded, "b") == ("a", None)  # its sampler diverged this time
    unscored = [dict(r, elpd_loo=None) if r["name"] == "b" else r for r in tied]
    assert keep_or_switch(unscored, "b") == ("a", None)
    cv = [dict(r, elpd_cv=r["elpd_loo"] - (20 if r["name"] == "b" else 0)) for r in tied]
    assert keep_or_switch(cv, "b") == ("a", None)  # full mode weighs by time-slice CV: so does the rule
    ahead = _records(a=100.0, b=101.0)  # weights and scores can disagree (pseudo-BMA+ is not argmax elpd)
    ahead[0]["weight"], ahead[1]["weight"] = 0.6, 0.4
    assert keep_or_switch(ahead, "b") == ("b", {"structure": "b", "best": "a", "elpd_behind": 0.0})


def test_a_simpler_returns_curve_within_noise_of_the_best_is_fitted_over_the_geos() -> None:
    sizes = {"gh": 2, "gl": 1, "dh": 2, "dl": 1}  # returns-shape parameters: Hill 2, logistic 1
    tied = _records(gh=100.0, gl=100.0 - KEEP_ELPD, dh=99.0, dl=97.0)
    assert simpler_within_noise(tied, sizes) == {"structure": "gl", "best": "gh", "elpd_behind": KEEP_ELPD}
    weighted = [dict(r, weight=0.5) if r["name"] == "dl" else r for r in tied]  # two close: the higher weight
    assert simpler_within_noise(weighted, sizes)["structure"] == "dl"
    assert simpler_within_noise(_records(gh=100.0, gl=90.0, dh=99.0), sizes) is None  # 10 behind: the data decide
    assert simpler_within_noise(_records(gl=100.0, gh=100.0), sizes) is None  # the best is already the simplest
    excluded = [dict(r, excluded="diverged") if r["name"] in ("gl", "dl") else r for r in tied]
    assert simpler_within_noise(excluded, sizes) is None
    unscored = [dict(r, elpd_loo=None) if r["name"] in ("gl", "dl") else r for r in tied]
    assert simpler_within_noise(unscored, sizes) is None
    cv = [dict(r, elpd_cv=r["elpd_loo"] - (20 if r["name"] in ("gl", "dl") else 0)) for r in tied]
    assert simpler_within_noise(cv, sizes) is None  # full mode scores by time-slice CV: so does the rule
    ahead = _records(gh=100.0, gl=101.0)  # pseudo-BMA+ weights are not argmax elpd: behind by nothing
    ahead[0]["weight"], ahead[1]["weight"] = 0.6, 0.4
    assert simpler_within_noise(ahead, sizes) == {"structure": "gl", "best": "gh", "elpd_behind": 0.0}
    # the registry's sizes, as a geo fit applies them: Hill's two shape parameters against logistic's one
    config = SimpleNamespace(adstock="auto", saturation="auto", baseline_form="changepoints")
    records = _records(**{"geometric+hill+changepoints": 50.0, "delayed+logistic+changepoints": 48.0})
    structure, why = _simpler_structure(records, config)
    assert structure.name == "delayed+logistic+changepoints" and why["best"] == "geometric+hill+changepoints"
    assert _simpler_structure(_records(**{"geometric+logistic+changepoints": 50.0}), config) is None


def test_the_geos_weigh_a_second_structure_the_national_sum_cannot_tell_apart() -> None:
    tied = _records(gh=100.0, gl=100.0 - KEEP_ELPD, dh=99.0, dl=90.0)
    # the simpler one was fitted in the best's place: the best itself goes beside it
    assert second_within_noise(tied, "gl") == {"structure": "gh", "best": "gh", "elpd_behind": 0.0}
    # the best was fitted: the highest-weighted other one within noise
    weighted = [dict(r, weight=0.5) if r["name"] == "gl" else r for r in tied]
    assert second_within_noise(weighted, "gh") == {"structure": "gl", "best": "gh", "elpd_behind": KEEP_ELPD}
    assert second_within_noise(_records(gh=100.0, gl=90.0), "gh") is None  # 10 behind: the sum tells them apart
    assert second_within_noise(_records(gh=100.0), "gh") is None
    excluded = [dict(r, excluded="diverged") if r["name"] in ("gl", "dh") else r for r in tied]
    assert second_within_noise(excluded, "gh") is None
    unscored = [dict(r, elpd_loo=None) if r["name"] in ("gl", "dh") else r for r in tied]
    assert second_within_noise(unscored, "gh") is None
    cv = [dict(r, elpd_cv=r["elpd_loo"] - (20 if r["name"] != "gh" else 0)) for r in tied]
    assert second_within_noise(cv, "gh") is None  # full mode scores by time-slice CV: so does the rule


def test_sentences_say_what_was_fitted_and_why() -> None:
    kept = {"structure": "b", "best": "a", "elpd_behind": 1.25, "run": "r1"}
    said = geo_structure_sentence({"structure": "b", "kept": kept})
    assert said is not None and "kept from the previous run r1" in said and "1.2 elpd" in said and "a," in said
    assert geo_structure_sentence({"structure": "a"}) == (
        "a was fitted over the geos (the best-weighted on their national sum)."
    )
    assert geo_structure_sentence({"selection": "weighted"}) is None
    simpler = {"structure": "gl", "best": "gh", "elpd_behind": 2.5}
    said = geo_structure_sentence({"structure": "gl", "simpler": simpler})
    assert said is not None and said.startswith("gl was fitted") and "gh, leads it by 2.5 elpd" in said
    assert "fewer parameters" in said
    second = {"structure": "gh", "best": "gh", "elpd_behind": 0.0}
    weighed = [{"name": "gl", "weight": 0.25}, {"name": "gh", "weight": 0.75}]
    said = geo_structure_sentence({"structure": "gl", "simpler": simpler, "second": second, "geo_candidates": weighed})
    assert said is not None and said.startswith("gl was fitted") and "gh, the best-weighted on the national sum" in said
    assert said.endswith("the geos' own data weighed the two (weights 0.25 and 0.75).")
    said = geo_structure_sentence({"structure": "gh", "second": {"structure": "dh", "best": "gh", "elpd_behind": 1.5}})
    assert said is not None and "dh, which the national sum cannot tell from its best (1.5 elpd behind)" in said


def test_a_refit_beside_a_geo_run_keeps_its_structure_while_the_data_cannot_tell(
    geo_run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second ``mmm fit`` into the folder of a geo run finds it, and keeps its structure unless the new best
    leads by more than KEEP_ELPD; the run says so in ``summary.json``, the quality view's wording and the CLI."""
    runs = tmp_path / "clients" / "geo" / "runs"
    first = runs / "g1"
    shutil.copytree(geo_run["run_dir"], first)
    summary = json.loads((first / "summary.json").read_text())
    model = summary["model"]
    assert model["selection"] == "national sum" and model["structure"] == fitted_structure(geo_run["run_dir"])
    # a first fit: the best-weighted structure, or a simpler returns curve the sum cannot tell from it
    config = load_config(geo_run["data_dir"] / "config.yaml")
    simpler_first = _simpler_structure(model["candidates"], config)
    best = max(model["candidates"], key=lambda c: c["weight"])
    assert model["structure"] == (best["name"] if simpler_first is None else simpler_first[0].name)
    assert model.get("simpler") == (None if simpler_first is None else simpler_first[1])
    assert previous_run(runs / "g2") == first and previous_run(tmp_path / "elsewhere" / "x") is None
    asked = FitRequest("d.csv", "c.yaml", str(runs / "g2"))
    assert with_previous(asked).previous == str(first)  # what mmm fit and schedules do
    assert with_previous(FitRequest("d.csv", "c.yaml", str(runs / "g2"), previous="")).previous == ""  # --fresh
    assert with_previous(FitRequest("d.csv", "c.yaml", str(tmp_path / "x" / "r"))).previous == ""  # none there
    # make the first run one that fitted the runner-up, as a refit of slightly different data may have chosen
    runner_up = max((c for c in model["candidates"] if c is not best), key=lambda c: c["elpd_loo"])
    model["structure"] = runner_up["name"]
    (first / "summary.json").write_text(json.dumps(summary))
    assert fitted_structure(first) == runner_up["name"]

    fit = _fit(geo_run["data_dir"], runs / "g2", "--tune", "300", "--draws", "300")
    assert fit.returncode == 0, fit.stderr[-3000:]
    second = json.loads((runs / "g2" / "summary.json").read_text())["model"]
    expected, kept = keep_or_switch(second["candidates"], runner_up["name"])
    simpler = None if kept is not None else _simpler_structure(second["candidates"], config)
    assert second["structure"] == (expected if simpler is None else simpler[0].name)
    if kept is not None:  # the usual case on this small data: every candidate within a few elpd
        assert second["kept"] == {**kept, "run": summary["run"]["id"]} and "simpler" not in second
        assert f"kept from the previous run {summary['run']['id']}" in fit.stdout
    elif simpler is not None:
        assert second["simpler"] == simpler[1] and "kept" not in second
    else:
        assert "kept" not in second and "the best-weighted on their national sum" in fit.stdout
    said = geo_structure_sentence(second)
    assert said and said[0].upper() + said[1:] in fit.stdout
    # --fresh-structure beside the same previous run: the request names none, so nothing is kept
    # (checked without a third geo fit: the CLI's request, and the fit's choice from that request)
    asked_fresh: list[FitRequest] = []
    monkeypatch.setattr("mmmlib.pipeline.fit_run", lambda request: asked_fresh.append(request) or {})
    cli.main(["fit", "d.csv", "--config", "c.yaml", "--out", str(runs / "g3"), "--fresh-structure"])  # no summary
    assert asked_fresh[0].previous == "" and with_previous(asked_fresh[0]).previous == ""
    assert _kept_structure(second["candidates"], "", config) is None
    if kept is not None:  # the same records with the previous run named do keep it
        assert _kept_structure(second["candidates"], str(first), config)[0].name == runner_up["name"]


@pytest.mark.parametrize("broken", ["missing", "garbage"])
def test_an_unreadable_or_national_previous_run_keeps_nothing(synth_run: dict, tmp_path: Path, broken: str) -> None:
    assert fitted_structure(synth_run["run_dir"]) is None  # a national run: its structures are combined, not kept
    run = tmp_path / "r1"
    run.mkdir()
    if broken == "garbage":
        (run / "summary.json").write_text("{not json")
    assert fitted_structure(run) is None and previous_run(tmp_path / "r2") is None
