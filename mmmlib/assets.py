"""Where the notebooks and dashboards are: the one place that finds them, however mmmlib is installed.

They ship as package data: pyproject.toml maps the packages ``mmmlib.notebooks`` and ``mmmlib.dashboards``
onto the repository's top-level ``notebooks/`` and ``dashboards/``, so a wheel holds them inside the
package (``site-packages/mmmlib/notebooks/``). A checkout (``pip install -e``, or the repository on
``PYTHONPATH``) keeps them next to the package, where people edit them. The package's own folder is asked
first: importing the sub-packages instead could let another checkout's editable finder answer for this one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

KINDS = ("notebooks", "dashboards")


def folder(kind: str) -> Path:
    """The folder of ``notebooks`` or ``dashboards`` that belongs to this mmmlib."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    package = Path(str(resources.files(__package__)))
    installed = package / kind
    return installed if installed.is_dir() else package.parent / kind


def notebooks_dir() -> Path:
    return folder("notebooks")


def dashboards_dir() -> Path:
    return folder("dashboards")


def notebook(name: str) -> Path:
    """``notebook("fit_model")``: the path of ``notebooks/fit_model.ipynb``."""
    return notebooks_dir() / f"{name}.ipynb"


def dashboard(name: str) -> Path:
    """``dashboard("executive")``: the path of ``dashboards/executive.ipynb``."""
    return dashboards_dir() / f"{name}.ipynb"
