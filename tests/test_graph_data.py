"""Data enter the sampled model as shared variables (``mmmlib.graph_data``) and nutpie fits, national and geo, sample
the model unfrozen: the compiled code is then the same for any dataset with the same parameters, so a refit with one
more week, or another client's data of the same shape, loads it instead of compiling every candidate anew."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmmlib import model, nutpie_cache
from mmmlib.config import load_config
from mmmlib.data.dataset import load_dataset

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def _keys(frame: pd.DataFrame, tmp: Path, name: str, freeze: bool) -> tuple[str | None, str | None]:
    """PyTensor's cache keys of the log-density and expansion code nutpie would compile for ``frame``."""
    import nutpie.compile_pymc as npc

    config = yaml.safe_load((SAMPLE / "sample_config.yaml").read_text())
    config.update({"adstock": "geometric", "saturation": "logistic", "yearly_seasonality": 2})
    (tmp / "fixed.yaml").write_text(yaml.safe_dump(config))
    frame.to_csv(tmp / f"{name}.csv", index=False)
    dataset = load_dataset(str(tmp / f"{name}.csv"), load_config(str(tmp / "fixed.yaml")))
    mmm, X, y, _ = model.build(dataset)
    mmm.build_model(X, y)
    mmm.freeze_for_sampling = freeze
    sampled = mmm._get_sampling_model()
    names = [v.name for v in sampled.free_RVs]
    _, _, logp, expand, *_ = npc._make_functions(
        sampled, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=None, var_names=names
    )
    return nutpie_cache._inner_key(logp.vm.jit_fn), nutpie_cache._inner_key(expand.vm.jit_fn)


@pytest.mark.slow  # builds and links five models' numba functions
def test_another_dataset_with_the_same_parameters_reuses_the_compiled_code(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE / "sample_weekly.csv")
    scaled = frame.assign(tv_spend=frame["tv_spend"] * 1.1, revenue=frame["revenue"] * 0.9)
    full = _keys(frame, tmp_path, "full", freeze=False)
    assert None not in full
    assert _keys(frame.iloc[:-1], tmp_path, "week_fewer", freeze=False) == full  # last week's refit
    assert _keys(scaled, tmp_path, "scaled", freeze=False) == full  # other values, same shape
    # what pymc-marketing samples by default: the data frozen into the code, new code for new data
    assert _keys(frame, tmp_path, "full_frozen", freeze=True) != _keys(scaled, tmp_path, "scaled_frozen", freeze=True)


def _geo_dataset(tmp: Path):
    from mmmlib.config import save_config
    from mmmlib.data import synth_geo
    from mmmlib.data.synth import SynthSpec

    frame, config, _ = synth_geo.generate(SynthSpec(weeks=60, channels=2, seed=5), 3)
    frame.to_csv(tmp / "geo.csv", index=False)
    save_config(config, tmp / "geo.yaml")
    return load_dataset(str(tmp / "geo.csv"), load_config(str(tmp / "geo.yaml")))


@pytest.mark.parametrize("geo", [False, True])
@pytest.mark.parametrize(("sampler", "frozen"), [("nutpie", False), ("numpyro", True), ("pymc", True)])
def test_only_nutpie_fits_sample_the_model_unfrozen_national_and_geo(
    sampler: str, frozen: bool, geo: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmmlib import structures

    seen = []

    class Sampled(Exception):
        pass

    def fit(self: object, *args: object, **kwargs: object) -> None:
        seen.append(self.freeze_for_sampling)  # type: ignore[attr-defined]
        raise Sampled

    monkeypatch.setattr(model.mmm_class(), "fit", fit)
    if geo:
        dataset = _geo_dataset(tmp_path)
        assert dataset.hierarchical
    else:
        dataset = load_dataset(str(SAMPLE / "sample_weekly.csv"), load_config(str(SAMPLE / "sample_config.yaml")))
    shape = structures.candidates("geometric", "logistic", "changepoints")[0]
    settings = model.sampler_settings("quick", len(dataset.config.channel_columns))
    with pytest.raises(Sampled):
        model.fit_structure(dataset, shape, settings, sampler, 1, False, None)
    assert seen == [frozen]
