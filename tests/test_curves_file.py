"""``curves.npz``: the planner and ``mmm optimize`` read a run's curves without opening its posterior, get exactly
what the posterior gives, and fall back to the posterior whenever the stored file is missing, damaged or stale."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmmlib import curves_file, optimize, runs
from mmmlib.identification import unidentified
from mmmlib.optimize import frontier, load_curves


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, copy_function=os.link)
    return dest


def _from_posterior(run: Path, tmp_path: Path, name: str) -> optimize.Curves:
    bare = _copy(run, tmp_path / name)
    (bare / runs.CURVES).unlink()
    return load_curves(bare)


def _texts(widget: object) -> str:
    value = getattr(widget, "value", "")
    own = value if isinstance(value, str) else ""
    return own + " ".join(_texts(c) for c in getattr(widget, "children", ()))


def _same(a: optimize.Curves, b: optimize.Curves) -> None:
    x = np.stack([a.current * 0.5, a.current, a.current * 2.0])
    assert a.channels == b.channels and a.kind == b.kind and (a.geos == b.geos)
    np.testing.assert_array_equal(a.response(x), b.response(x))
    np.testing.assert_array_equal(a.mean_gradient(a.current), b.mean_gradient(b.current))
    assert frontier(a, steps=3) == frontier(b, steps=3)


@pytest.mark.parametrize("fixture", ["synth_run", "geo_run"])
def test_stored_curves_are_the_posteriors(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    run = request.getfixturevalue(fixture)["run_dir"]
    assert (run / runs.CURVES).is_file(), "a fit writes curves.npz with the run"
    _same(load_curves(run), _from_posterior(run, tmp_path, "bare"))


def test_the_planner_does_not_open_the_posterior(
    synth_run: dict, geo_run: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's cost was the posterior (xarray, netCDF) and 27 optimisations: neither happens on a load."""
    from mmmlib.widgets.planner import planner_view

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the planner opened posterior.nc")

    monkeypatch.setattr(runs, "load_posterior", refuse)
    monkeypatch.setattr("mmmlib.widgets.planner.frontier", refuse)
    for run in (synth_run["run_dir"], geo_run["run_dir"]):
        text = _texts(planner_view(run))
        assert "Plan a budget" in text and "damaged" not in text
    assert optimize.load_curves(synth_run["run_dir"]).current.sum() > 0


def test_stored_scenarios_are_the_planners_frontier(synth_run: dict) -> None:
    """``summary.json`` ``scenarios``: the frontier the planner would compute, unidentified channels held."""
    run = synth_run["run_dir"]
    summary = runs.load_summary(run)
    held = unidentified(summary)
    live = frontier(load_curves(run), bounds=[f"{c}=fixed" for c in held])
    stored = summary["scenarios"]
    assert [p["change_pct"] for p in stored] == [p["change_pct"] for p in live]
    for s, p in zip(stored, live, strict=True):
        assert s["expected_contribution"] == pytest.approx(p["expected_contribution"], rel=1e-9)
        assert s["marginal_roas"] == pytest.approx(p["marginal_roas"], rel=1e-6)
        for c in held:
            assert s["allocation"][c] == pytest.approx(p["allocation"][c])


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "cut in half",
        "posterior replaced",
        "another KPI value",
    ],
)
def test_a_stale_or_damaged_curves_file_falls_back_to_the_posterior(
    synth_run: dict, tmp_path: Path, damage: str
) -> None:
    run = _copy(synth_run["run_dir"], tmp_path / "run")
    stored = run / runs.CURVES
    data = stored.read_bytes()
    stored.unlink()  # hard-linked: write a new file, never into the shared run's
    if damage == "garbage":
        stored.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif damage == "cut in half":
        stored.write_bytes(data[: len(data) // 2])
    elif damage == "posterior replaced":
        stored.write_bytes(data)
        post = (run / runs.POSTERIOR).read_bytes()
        (run / runs.POSTERIOR).unlink()
        (run / runs.POSTERIOR).write_bytes(post + b"\0")  # another file: the stored curves are not its curves
    else:
        stored.write_bytes(data)
    value = 2.0 if damage == "another KPI value" else 1.0
    assert curves_file.read(run, value, 0.94) is None
    if damage != "posterior replaced":
        _same(load_curves(run), _from_posterior(synth_run["run_dir"], tmp_path, "bare"))


def test_a_damaged_posterior_is_still_found_with_curves_stored(synth_run: dict, tmp_path: Path) -> None:
    """The stored curves name their posterior, so a damaged one is reported, not hidden behind the cache."""
    from mmmlib.errors import MMMError

    run = _copy(synth_run["run_dir"], tmp_path / "run")
    post = (run / runs.POSTERIOR).read_bytes()
    (run / runs.POSTERIOR).unlink()
    (run / runs.POSTERIOR).write_bytes(post[: len(post) // 2])
    with pytest.raises(MMMError, match="damaged or incomplete"):
        load_curves(run)
