"""`mmm import pymc-marketing`: a model fitted and saved with PyMC-Marketing becomes a run, with no refit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from mmmlib import pymc_import
from mmmlib.errors import InputError

HERE = Path(__file__).parent


def _mmm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmmlib", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def pymc_model(public_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PyMC-Marketing's example data fitted and saved as its tutorial does (tests/pymc_user_model.py)."""
    out = tmp_path_factory.mktemp("pymc-user") / "model.nc"
    done = subprocess.run(
        [sys.executable, str(HERE / "pymc_user_model.py"), str(public_data / "pymc_marketing_mmm_example.csv"), out],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def imported(pymc_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    run_dir = tmp_path_factory.mktemp("imported") / "pymc_run"
    done = _mmm("import", "pymc-marketing", str(pymc_model), "--out", str(run_dir), "--client", "acme")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"run_dir": run_dir, "summary": summary, "model": pymc_model, "stdout": done.stdout}


def test_imported_run_reports_the_models_own_roas(imported: dict) -> None:
    summary, tree = imported["summary"], xr.open_datatree(imported["model"])
    assert summary["source"] == "pymc-marketing" and summary["source_version"]
    assert summary["client"] == "acme" and summary["run"]["source"] == "model.nc"
    const, post = tree["constant_data"], tree["posterior"]
    contribution = post["channel_contribution"].sum("date") * const["target_scale"]
    roas = (contribution / const["channel_data"].sum("date")).stack(sample=("chain", "draw"))
    for row in summary["channels"]:
        draws = roas.sel(channel=row["name"]).values
        assert row["roas"]["mean"] == pytest.approx(float(draws.mean()), rel=1e-9)
        assert row["roas"]["hdi_low"] <= float(np.median(draws)) <= row["roas"]["hdi_high"]
    for name in ("summary.json", "posterior.nc", "config.yaml", "data.csv", "fit.ipynb"):
        assert (imported["run_dir"] / name).is_file(), name
    notebook = (imported["run_dir"] / "fit.ipynb").read_text()
    assert "import_to_directory" in notebook and "pymc-marketing" in notebook  # the audit trail of the import


def test_imported_model_is_held_to_the_diagnostic_thresholds(imported: dict) -> None:
    summary = imported["summary"]
    diag = summary["diagnostics"]
    assert diag["ess_bulk_min"] < 400  # 2 × 300 draws cannot reach full mode's bulk ESS
    assert summary["status"] == "warning" and summary["status_reasons"]
    first = summary["recommendations"][0]
    assert "Do not move budget" in first and "refit the model in PyMC-Marketing" in first
    assert len(summary["recommendations"]) == 1  # no advice on a poor fit
    assert "Warning:" in imported["stdout"]


def test_identification_uses_the_saved_models_own_prior(imported: dict) -> None:
    tree = xr.open_datatree(imported["run_dir"] / "posterior.nc")
    assert "prior" in tree.children and tree["prior"]["channel_contribution"].sizes["draw"] == pymc_import.PRIOR_DRAWS
    for row in imported["summary"]["channels"]:
        assert row["identification"]["prior_sd"] is not None


def test_forecast_reproduces_the_saved_models_prediction(imported: dict) -> None:
    """Controls enter PyMC-Marketing's model raw and ours scaled: re-expressed on import, the prediction is the
    saved model's own."""
    from mmmlib.forecast import load_forecaster

    tree = xr.open_datatree(imported["model"])
    mu = (tree["posterior"]["mu"].mean(("chain", "draw")) * tree["constant_data"]["target_scale"]).values
    ours = load_forecaster(imported["run_dir"]).reproduce_fit().mean(axis=0)
    np.testing.assert_allclose(ours, mu, rtol=1e-8)
    done = _mmm("forecast", str(imported["run_dir"]), "--periods", "4", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plans"]


def test_optimiser_and_report_work_on_an_imported_run(imported: dict, tmp_path: Path) -> None:
    done = _mmm("optimize", str(imported["run_dir"]), "--budget", "5000", "--bounds", "x1=0:10000", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sum(c["optimal_spend"] for c in result["channels"]) == pytest.approx(5000, rel=1e-6)
    done = _mmm("report", str(imported["run_dir"]), "--format", "txt", "--out", str(tmp_path / "r.txt"))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.txt").read_text()
    assert "Imported from PyMC-Marketing" in text and "Status: WARNING" in text


def test_an_unusable_model_is_refused_and_the_last_good_run_kept(imported: dict, tmp_path: Path) -> None:
    before = (imported["run_dir"] / "summary.json").read_bytes()
    bogus = tmp_path / "notes.nc"
    bogus.write_text("date,y\n2024-01-01,1\n")
    done = _mmm("import", "pymc-marketing", str(bogus), "--out", str(imported["run_dir"]))
    assert done.returncode == 1
    assert "notes.nc is not a PyMC-Marketing model" in done.stderr
    assert (imported["run_dir"] / "summary.json").read_bytes() == before
    assert list(imported["run_dir"].parent.glob("pymc_run.failed-*"))


def test_executive_dashboard_opens_an_imported_run(imported: dict, browser, tmp_path: Path) -> None:
    from tests.conftest import ARTIFACTS, executive_page

    with executive_page(browser, imported["run_dir"], tmp_path) as page:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_imported_pymc.png"), full_page=True)
        body = page.inner_text("body")
    assert "imported from PyMC-Marketing" in body
    assert body.index("Model health") < body.index("Recommendations")
    assert "Do not move budget" in body


# --- refusals that need no fit ---------------------------------------------------------------------------------


def test_a_netcdf_that_is_not_a_saved_model_is_named(tmp_path: Path) -> None:
    path = tmp_path / "draws.nc"
    xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(path)
    with pytest.raises(InputError, match=r"draws\.nc is not a PyMC-Marketing model: it has no model_type"):
        pymc_import.load_model(path)


def test_a_model_of_another_kind_is_named(tmp_path: Path) -> None:
    path = tmp_path / "clv.nc"
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("x", [1.0])})})
    tree.attrs = {"model_type": "BG/NBD", "id": "x", "version": "0.0.1"}
    tree.to_netcdf(path)
    with pytest.raises(InputError, match="holds a PyMC-Marketing 'BG/NBD' model"):
        pymc_import.load_model(path)


@pytest.mark.parametrize(
    ("attrs", "named"),
    [
        ({"dims": '["geo"]'}, "dims ('geo',)"),
        ({"time_varying_media": "true"}, "time-varying media"),
        ({"mu_effects": '[{"type": "LinearTrendEffect"}]'}, "mu_effects"),
        ({"adstock_first": "false"}, "adstock_first=False"),
        ({"saturation": '{"__type__": "pymc_marketing.mmm.components.saturation.TanhSaturation"}'}, "TanhSaturation"),
    ],
)
def test_components_this_product_cannot_evaluate_are_named(attrs: dict, named: str) -> None:
    base = {
        "adstock": '{"__type__": "pymc_marketing.mmm.components.adstock.GeometricAdstock", "l_max": 8}',
        "saturation": '{"__type__": "pymc_marketing.mmm.components.saturation.LogisticSaturation"}',
    }
    with pytest.raises(InputError, match=named.replace("(", r"\(").replace(")", r"\)")):
        pymc_import.check_supported({**base, **attrs})


def test_supported_components_map_to_the_registry() -> None:
    attrs = {
        "adstock": '{"__type__": "pymc_marketing.mmm.components.adstock.WeibullPDFAdstock", "l_max": 6}',
        "saturation": '{"__type__": "pymc_marketing.mmm.components.saturation.HillSaturation"}',
        "dims": "[]",
        "adstock_first": "true",
    }
    assert pymc_import.check_supported(attrs) == ("weibull", "hill", 6)


def test_a_schedule_reimports_the_newest_model_file(
    pymc_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shutil

    from mmmlib.schedule import Schedule, run_schedule

    monkeypatch.setenv("MMM_HOME", str(tmp_path / "home"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "old.nc").write_text("an older upload")
    os.utime(models / "old.nc", (1, 1))
    shutil.copy(pymc_model, models / "new.nc")
    sched = Schedule(
        name="acme-import",
        client="acme",
        cron="0 6 * * 1",
        kind="pymc-marketing",
        model=str(models / "*.nc"),
        reports=["txt"],
    )
    outcome = run_schedule(sched)
    assert outcome["status"] == "warning", outcome
    summary = json.loads((Path(outcome["run"]) / "summary.json").read_text())
    assert summary["source"] == "pymc-marketing" and summary["run"]["source"] == "new.nc"
    assert "published" not in outcome  # a warning run never becomes the client's latest report
    assert (Path(outcome["run"]) / "report.txt").is_file()


@pytest.mark.parametrize(
    "entry",
    [
        {"data": "d.csv", "config": "c.yaml", "model": "m.nc", "kind": "pymc-marketing"},
        {"model": "m.nc"},
        {"model": "m.nc", "kind": "robyn"},
        {"data": "d.csv"},
    ],
)
def test_a_schedule_fits_or_imports_never_both(entry: dict) -> None:
    from mmmlib.schedule import Schedule

    with pytest.raises(InputError, match="Schedule s: "):
        Schedule(name="s", client="acme", cron="0 6 * * 1", **entry)


def _upload(page: object, name: str, content: bytes) -> None:
    from datetime import datetime

    item = {
        "name": name,
        "type": "",
        "size": len(content),
        "content": memoryview(content),
        "last_modified": datetime(2026, 1, 1),
    }
    page.upload.value = (item,)  # type: ignore[attr-defined]


def _wait_for(page: object, timeout: float = 300) -> str:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        text = page.progress.value  # type: ignore[attr-defined]
        if "finished" in text or "failed" in text:
            return text
        time.sleep(1)
    raise AssertionError(f"no end in sight: {page.progress.value}")  # type: ignore[attr-defined]


def test_the_new_model_page_imports_an_uploaded_model(
    pymc_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmmlib.widgets.new_model import NewModel

    monkeypatch.setenv("MMM_HOME", str(tmp_path / "home"))
    page = NewModel("acme")
    _upload(page, "model.nc", pymc_model.read_bytes())
    assert "a saved PyMC-Marketing model" in page.status.value and page.fit_button.disabled
    page._start_import()
    assert "Import finished" in _wait_for(page)
    (run_dir,) = (tmp_path / "home" / "clients" / "acme" / "runs").glob("*-imported")
    assert json.loads((run_dir / "summary.json").read_text())["source"] == "pymc-marketing"


@pytest.mark.slow  # an import process with its papermill kernel
def test_the_new_model_page_says_why_an_upload_is_not_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmmlib.widgets.new_model import NewModel

    monkeypatch.setenv("MMM_HOME", str(tmp_path / "home"))
    page = NewModel("acme")
    _upload(page, "brief.docx", b"PK\x03\x04")
    assert "brief.docx is neither a data file" in page.status.value
    _upload(page, "export.nc", b"date,y\n2024-01-01,1\n")
    page._start_import()
    text = _wait_for(page)
    assert "The import failed" in text and "export.nc is not a PyMC-Marketing model" in text
