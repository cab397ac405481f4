"""A candidate whose sampler diverged is refitted once with smaller steps (mmmlib.model.fit_checked)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import xarray as xr

from mmmlib import model, structures
from mmmlib.widgets.quality import sampling_note

GEOMETRIC = structures.Structure("geometric", "hill")


def sampled(divergent: int) -> SimpleNamespace:
    """What fit_structure returns, as far as the refit rule reads it: sampler stats and the time it took."""
    diverging = np.zeros((2, 100), bool)
    diverging[1, :divergent] = True
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return SimpleNamespace(idata=xr.DataTree.from_dict({"sample_stats": stats}), fit_seconds=10.0, retried=None)


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each sampling attempt's settings; the sampler diverges twice unless its steps are the refit's."""
    calls: list[dict[str, Any]] = []

    def fake_fit(dataset: Any, structure: Any, settings: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(dict(settings))
        return sampled(0 if settings["target_accept"] >= model.RETRY_TARGET_ACCEPT else 2)

    monkeypatch.setattr(model, "fit_structure", fake_fit)
    monkeypatch.setattr(model, "predict_holdout", lambda fitted, seed=0: None)
    return calls


def test_a_divergent_fit_is_refitted_with_smaller_steps_and_says_so(attempts: list[dict[str, Any]]) -> None:
    settings = {"chains": 2, "tune": 600, "draws": 800, "target_accept": 0.95}
    fitted = model.fit_checked(None, GEOMETRIC, settings, "nutpie", 1, False, None)  # type: ignore[arg-type]
    assert [a["target_accept"] for a in attempts] == [0.95, model.RETRY_TARGET_ACCEPT]
    assert attempts[1]["draws"] == 800 and settings["target_accept"] == 0.95  # the caller's settings untouched
    assert fitted.retried == {"divergences": 2, "target_accept": 0.95}
    assert fitted.fit_seconds == 20.0  # both attempts count


def test_a_clean_fit_or_one_already_at_small_steps_is_not_refitted(attempts: list[dict[str, Any]]) -> None:
    attempts_before = len(attempts)
    fitted = model.fit_checked(None, GEOMETRIC, {"target_accept": 0.99}, "nutpie", 1, False, None)  # type: ignore[arg-type]
    assert len(attempts) == attempts_before + 1 and fitted.retried is None


def test_candidates_are_refitted_but_fold_fits_are_not(attempts: list[dict[str, Any]]) -> None:
    job = (None, GEOMETRIC, {"target_accept": 0.95}, "nutpie", 1, None, None)
    model._fit_jobs([job], workers=1, score=False)  # a time-slice fold: only its forecast is used
    assert len(attempts) == 1
    model._fit_jobs([job], workers=1)
    assert len(attempts) == 3


def test_the_quality_view_says_what_happened_to_a_candidate() -> None:
    assert sampling_note({"divergences": 0}) == "—"
    note = sampling_note({"retried": {"divergences": 2, "target_accept": 0.95}, "excluded": "1 divergent transitions"})
    assert note.startswith("refitted with smaller steps after 2 divergences at target_accept 0.95")
    assert note.endswith("left out of the combination: 1 divergent transitions")
