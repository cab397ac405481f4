"""The notebooks run top to bottom (nbval --nbval-lax) on small data: the fit, the first look, the comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_source_notebooks_have_no_outputs() -> None:
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} has outputs"


def test_notebooks_run_under_nbval(synth_run: dict, scheduled: dict, tmp_path: Path) -> None:
    data = synth_run["data_dir"]
    env = {
        **os.environ,
        "MMM_NOTEBOOK_DATA": str(data / "data.csv"),
        "MMM_NOTEBOOK_CONFIG": str(data / "plain.yaml"),
        "MMM_NOTEBOOK_OUT": str(tmp_path / "notebook-run"),
        "MMM_EXPLORE_DATA": str(data / "data.csv"),
        "MMM_EXPLORE_CONFIG": str(data / "plain.yaml"),
        "MMM_COMPARE_A": str(synth_run["run_dir"]),
        "MMM_COMPARE_B": scheduled["results"][0]["run"],
    }
    env.pop("PYTEST_ADDOPTS", None)  # this run's options (workers, a junit file) are not the notebooks' run's
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "fit_model.ipynb",
            "explore_data.ipynb",
            "compare_runs.ipynb",
        ],
        cwd=ROOT / "notebooks",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert (tmp_path / "notebook-run" / "summary.json").is_file()
