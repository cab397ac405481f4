"""ipywidgets + bqplot views shared by the dashboards and the HTML report; they only draw what analysis computed.

``style`` (colours, cards, health badge), ``charts`` (bqplot figures), ``source`` (which run),
one module per dashboard view. Nothing here imports pymc, and views are imported on first use so the
executive page does not pay for the planner's scipy or the upload page's pandas.
"""

from importlib import import_module
from typing import Any

_VIEWS = {
    "executive_view": "mmmlib.widgets.executive",
    "planner_view": "mmmlib.widgets.planner",
    "quality_view": "mmmlib.widgets.quality",
    "new_model_view": "mmmlib.widgets.new_model",
    "run_from_environment": "mmmlib.widgets.source",
    "chosen_run": "mmmlib.widgets.source",
    "with_run_picker": "mmmlib.widgets.source",
}

__all__ = sorted(_VIEWS)
VIEW_MODULES = tuple(sorted(set(_VIEWS.values())))  # what a dashboard kernel imports (the hub's warm kernels do first)


def __getattr__(name: str) -> Any:
    if name in _VIEWS:
        return getattr(import_module(_VIEWS[name]), name)
    raise AttributeError(f"module 'mmmlib.widgets' has no attribute {name!r}")
