"""A candidate stops at the ESS its largest possible share of the mixture needs (mmmlib.candidate_share)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mmmlib import analysis, candidate_share, stacking
from mmmlib.candidate_share import Finished

OBS = 40


def synthetic_loo(shift: float, noise: float, seed: int) -> object:
    """PSIS-LOO of a made-up model of ``OBS`` observations: pointwise log densities around ``shift``, varying by
    draw (``noise``) and by observation, 2 chains × 300 draws."""
    rng = np.random.default_rng(seed)
    per_obs = rng.normal(shift, 0.5, OBS)
    ll = per_obs + rng.normal(0, noise, (2, 300, OBS))
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(2, 300)))}),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)}),
        }
    )
    return stacking.psis_loo(tree)


def test_the_weight_beside_finished_candidates_bounds_the_final_one() -> None:
    loos = {f"m{i}": synthetic_loo(shift, 0.3, i) for i, shift in enumerate([-1.0, -1.02, -1.05, -1.6, -1.01])}
    names = list(loos)
    final = dict(zip(names, stacking._weights(names, loos, None), strict=True))  # the fit's own comparison
    for name in names:
        others = [n for n in names if n != name]
        for beside in (others[:1], others[:2], others):  # finished: any subset of the other candidates
            bound = candidate_share.largest_weight(loos[name], Finished(tuple(beside), tuple(loos[n] for n in beside)))
            assert bound >= final[name] - 1e-12, (name, beside, bound, final[name])
            if len(beside) == len(others):  # every other candidate finished: the bound is the weight itself
                assert bound == pytest.approx(final[name], abs=1e-9)
    # a candidate the data have ruled out (0.6 lower log density per week) can take next to nothing
    far = candidate_share.largest_weight(loos["m3"], Finished(("m0",), (loos["m0"],)))
    assert far < 1e-3
    # and one as good as the finished ones about an equal share
    even = candidate_share.largest_weight(loos["m4"], Finished(("m0", "m1"), (loos["m0"], loos["m1"])))
    assert 0.15 < even < 0.6


def test_candidates_at_their_shares_needed_ess_keep_the_mixtures_target() -> None:
    """If each candidate's own ESS is its weight times the target, the mixture's ESS is the target."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        weights = rng.dirichlet(np.ones(4))
        records = []
        for w in weights:
            kept = round(w * 1e6)  # every draw it drew kept, in proportion to its weight: its ESS counts whole
            records.append(
                {"draws_per_chain": kept, "drawn_per_chain": kept, "chains": 2,
                 "ess_bulk_min": candidate_share.needed_ess(float(w), 250.0)}
            )  # fmt: skip
        assert analysis.mixture_ess(records, "ess_bulk_min") == pytest.approx(250.0, rel=1e-3)
    assert candidate_share.needed_ess(0.2, 250.0) == 50.0
    assert candidate_share.needed_ess(1.7, 250.0) == 250.0 and candidate_share.needed_ess(-0.1, 250.0) == 0.0


def test_finished_candidates_need_every_score_and_get_distinct_names() -> None:
    class Member:
        def __init__(self, name: str, score: object) -> None:
            self.structure = type("S", (), {"name": name})()
            self.score = score

    loo = synthetic_loo(-1.0, 0.3, 0)
    both = candidate_share.finished([Member("g+l", ({}, loo)), Member("g+l", ({}, loo))])
    assert both is not None and len(set(both.names)) == 2  # the first structure with either seasonality order
    assert candidate_share.finished([Member("g+l", ({}, loo)), Member("g+h", ({}, None))]) is None
    assert candidate_share.finished([]) is None


def shifted(loo: object, per_observation: float) -> object:
    """``loo`` with every observation's elpd moved by ``per_observation`` (a finished candidate far better or worse)."""
    out = copy.deepcopy(loo)
    out.elpd_i = out.elpd_i + per_observation
    out.elpd = float(out.elpd + per_observation * out.n_data_points)
    return out


@pytest.mark.slow
def test_a_candidate_the_finished_ones_outscore_stops_early_with_the_final_scores_own_loo(tmp_path: Path) -> None:
    """Real nutpie fits of one small structure: beside a finished candidate that predicts every week far better, the
    next one stops at the first check point R-hat allows and records why; PSIS-LOO on its draws so far is exactly the
    final score's. Beside a far worse one it needs the whole target and stops only by the usual rule."""
    pytest.importorskip("nutpie")
    from mmmlib import model as mmm_model
    from mmmlib.config import ModelConfig
    from mmmlib.data.dataset import load_dataset
    from mmmlib.sampling import StopRule

    rng = np.random.default_rng(5)
    weeks = 104
    tv = rng.gamma(2.0, 500.0, weeks)
    sales = 20000.0 + 4000.0 * np.tanh(tv / 1500.0) + rng.normal(0, 300.0, weeks)
    dates = pd.date_range("2022-01-03", periods=weeks, freq="W-MON").strftime("%Y-%m-%d")
    pd.DataFrame({"week": dates, "sales": sales.round(2), "tv": tv.round(2)}).to_csv(tmp_path / "d.csv", index=False)
    cfg = ModelConfig(date_column="week", target_column="sales", channel_columns=["tv"], adstock="geometric",
                      saturation="logistic", baseline="linear", yearly_seasonality=0)  # fmt: skip
    dataset = load_dataset(tmp_path / "d.csv", cfg)
    structure = mmm_model.structures.candidates(cfg.adstock, cfg.saturation, cfg.baseline_form)[0]
    settings = {**mmm_model.sampler_settings("quick", 1, 2), "tune": 300}

    def fit(rule: StopRule, seed: int) -> mmm_model.Fitted:
        fitted = mmm_model.fit_structure(dataset, structure, settings, "nutpie", seed, False, None, rule=rule)
        fitted.score = stacking.score(fitted)
        return fitted

    first = fit(StopRule.fixed(300), 1)
    rule = StopRule(min_draws=100, max_draws=1000, block=100, ess=250.0, r_hat=1.1)
    ruled_out = fit(replace(rule, beside=Finished(("better",), (shifted(first.score[1], 5.0),))), 2)
    record, loo = ruled_out.score
    why = record["stopped_for_share"]
    n = record["drawn_per_chain"]
    assert n <= 300  # the first check points where R-hat is within SHARE_R_HAT on this easy posterior
    from mmmlib import nutpie_stop

    assert nutpie_stop.diagnostics_at(ruled_out.idata, n)["r_hat_max"] <= candidate_share.SHARE_R_HAT
    assert why["weight_at_most"] < 1e-6 and why["ess_needed"] < 1e-3
    assert why["elpd_loo"] == pytest.approx(float(loo.elpd), abs=1e-3)  # the same draws, scored the same way
    assert json.loads(ruled_out.idata["posterior"].attrs[candidate_share.SHARE_ATTR]) == why
    final = stacking._weights(["better", "this"], {"better": shifted(first.score[1], 5.0), "this": loo}, None)
    assert final[1] <= why["weight_at_most"] + 1e-9

    dominant = fit(replace(rule, beside=Finished(("worse",), (shifted(first.score[1], -5.0),))), 2)
    assert "stopped_for_share" not in dominant.score[0]
    assert (
        dominant.score[0]["drawn_per_chain"] > 100
        or min(dominant.score[0]["ess_bulk_min"], dominant.score[0]["ess_tail_min"]) >= 250
    )


def test_jobs_start_as_workers_free_up_bounded_by_every_clean_candidate_finished_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mmmlib.model._fit_bounded: results in the jobs' order; the first jobs (nothing finished) keep their rule; a
    later one is bounded against the candidates given and every one finished before it started, except one that
    diverged (the weighing may leave it out, and its weight would go to the others)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mmmlib import model as mmm_model
    from mmmlib.sampling import StopRule

    loo = synthetic_loo(-1.0, 0.3, 0)
    seen: dict[str, tuple[str, ...] | None] = {}
    gate = threading.Event()

    class Member:
        def __init__(self, name: str, divergences: int = 0) -> None:
            self.structure = type("S", (), {"name": name})()
            self.score = ({"divergences": divergences}, loo)

    def fake_job(job: tuple) -> Member:
        name, rule = job[1], job[6]
        seen[name] = rule.beside.names if rule is not None and rule.beside is not None else None
        if name == "b":  # the second job outlasts the first and the third: it ends once the fourth has started
            gate.wait(5)
        if name == "d":
            gate.set()
        return Member(name, divergences=3 if name == "a" else 0)

    monkeypatch.setattr(mmm_model, "_fit_job", fake_job)
    settings = {"draws": 1000}
    jobs = [(None, n, settings, "nutpie", 1, None, None) for n in ("a", "b", "c", "d")]
    with ThreadPoolExecutor(2) as pool:
        out = mmm_model._fit_bounded(jobs, 2, pool, [])
    assert [m.structure.name for m in out] == ["a", "b", "c", "d"]
    assert seen["a"] is None and seen["b"] is None  # nothing had finished
    assert seen["c"] is None  # only "a" had, and it diverged
    assert seen["d"] is not None and len(seen["d"]) == 1 and seen["d"][0].startswith("c ")  # "c", not "b" yet

    seen.clear()
    gate.clear()
    given = [Member("first"), Member("other order")]
    jobs[0] = (None, "a", settings, "nutpie", 1, None, StopRule.fixed(300))
    with ThreadPoolExecutor(2) as pool:
        mmm_model._fit_bounded(jobs, 2, pool, given)
    assert [n.split(" #")[0] for n in seen["b"]] == ["first", "other order"]


def test_no_share_stop_while_r_hat_is_above_its_own_limit_unless_the_share_is_negligible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chains that have not mixed keep drawing whatever ESS their share needs, unless the candidate can take no draw
    of the mixture."""
    bound = {"weight": 0.3}
    monkeypatch.setattr(candidate_share, "loo_of", lambda posterior, model: synthetic_loo(-1.0, 0.3, 0))
    monkeypatch.setattr(candidate_share, "largest_weight", lambda loo, beside: bound["weight"])
    enough = candidate_share.check(type("MMM", (), {"model": None})(), Finished((), ()), 250.0, "c")
    above = {"ess_bulk_min": 1e6, "ess_tail_min": 1e6, "r_hat_max": candidate_share.SHARE_R_HAT + 0.001}
    within = {**above, "r_hat_max": candidate_share.SHARE_R_HAT}
    assert enough(lambda: None, above) is None
    assert enough(lambda: None, within) == {
        "weight_at_most": 0.3,
        "ess_needed": 75.0,
        "elpd_loo": pytest.approx(-40, abs=5),
    }
    bound["weight"] = candidate_share.NEGLIGIBLE / 2
    assert enough(lambda: None, above)["weight_at_most"] == round(candidate_share.NEGLIGIBLE / 2, 6)
    few = {**within, "ess_bulk_min": 74.0}
    bound["weight"] = 0.3
    assert enough(lambda: None, few) is None  # 75 needed
