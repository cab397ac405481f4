"""Each fact has one home: a read of the package shows it, so a copy that creeps back in fails here.

- the run directory's file names are spelled in ``runs`` only (``data/synth.py`` writes a dataset folder, not a run);
- interval labels come from ``wording`` (the run's ``hdi_prob``), never a literal 94 %;
- the saturation families' ``if kind == ...`` ladders are gone from analysis, optimiser, forecast and model;
- the recent window, reallocation limit and scenario grid are ``policy``'s numbers;
- presentation never loops back: widgets use ``exports`` (not ``reports``), and the computing modules import no
  widgets.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mmmlib"
RUN_FILES = ("summary.json", "posterior.nc", "config.yaml", "data.csv", "fit.log", "fit.ipynb", "ACCEPTED")


def _sources(*skip: str) -> dict[str, str]:
    return {
        str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8")
        for p in PACKAGE.rglob("*.py")
        if str(p.relative_to(PACKAGE)) not in skip
    }


def _string_literals(text: str) -> list[str]:
    """Every string constant in the code (docstrings and comments excluded: they may name files to explain)."""
    tree = ast.parse(text)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_run_file_names_are_spelled_in_runs_only() -> None:
    offenders = {
        name: sorted({s for s in _string_literals(text) if s in RUN_FILES})
        for name, text in _sources("runs.py", "data/synth.py").items()
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_no_interval_label_is_written_literally() -> None:
    literal = re.compile(r"\b(89|90|94|95)\s?% HDI")  # the ROAS prior's "94 % interval" is the prior's own definition
    for name, text in _sources("wording.py").items():
        hits = [s for s in _string_literals(text) if literal.search(s)]
        assert not hits, f"{name}: {hits}"
    for folder in ("dashboards", "notebooks"):
        for nb in (PACKAGE.parent / folder).glob("*.ipynb"):
            assert not re.search(r"\b94\s?%", nb.read_text(encoding="utf-8")), nb.name


def test_saturation_families_come_from_the_registry() -> None:
    for name in ("analysis.py", "optimize.py", "forecast.py", "model.py", "summary.py"):
        text = (PACKAGE / name).read_text(encoding="utf-8")
        assert not re.search(r'(kind|family|saturation) == "(logistic|hill|michaelis_menten)"', text), name


def test_policies_are_policy_numbers() -> None:
    for name in ("analysis.py", "optimize.py", "forecast.py", "summary.py", "insights.py", "widgets/planner.py"):
        code = "\n".join(line.split("#")[0] for line in (PACKAGE / name).read_text(encoding="utf-8").splitlines())
        assert not re.search(r"\[-52:\]|\b52\b|±\s?30\b|\(-30, 50|=-30\b", code), name


def test_presentation_does_not_loop_back() -> None:
    for name, text in _sources().items():
        imports = set(re.findall(r"^\s*(?:from|import) (mmmlib[\w.]*)", text, flags=re.M))
        if name.startswith("widgets/"):
            assert "mmmlib.reports" not in imports, name
        if name in ("analysis.py", "summary.py", "exports.py", "tables.py", "wording.py", "runs.py", "policy.py"):
            assert not any(i.startswith("mmmlib.widgets") for i in imports), name
