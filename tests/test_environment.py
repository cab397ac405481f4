"""conda/Binder cannot be reached from here, so these tests keep their files in step with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _conda_specs(path: Path) -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load(path.read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
            continue
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", dep).groups()
        conda[name.lower()] = spec.replace(" ", "")
    return conda, pip


def _pyproject() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(d) for d in project["dependencies"]], [
        Requirement(d) for d in project["optional-dependencies"]["dev"]
    ]


def test_environment_yml_matches_pyproject() -> None:
    conda, pip = _conda_specs(ROOT / "environment.yml")
    assert conda["python"] == "=3.12"
    runtime, dev = _pyproject()
    for req in runtime + dev:
        name = req.name.lower()
        if name in conda:
            assert set(conda[name].split(",")) - {""} == {str(s) for s in req.specifier}, name
        else:
            assert any(p.startswith(name) and p[len(name) :] == str(req.specifier) for p in pip), f"{name} missing"
    assert "-e ." in pip


def test_binder_environment_is_the_same() -> None:
    root_conda, root_pip = _conda_specs(ROOT / "environment.yml")
    binder_conda, binder_pip = _conda_specs(ROOT / "binder" / "environment.yml")
    assert root_conda == binder_conda
    assert [p for p in root_pip if not p.startswith("-e")] == [p for p in binder_pip if not p.startswith("-e")]
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "mmm fit sample_data/sample_weekly.csv" in post
    assert "voila/render/dashboards/executive.ipynb" in (ROOT / "binder" / "start").read_text()


def test_constraints_pin_every_direct_dependency() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    runtime, dev = _pyproject()
    for req in runtime + dev:
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} not pinned in constraints.txt"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} outside {req.specifier}"
