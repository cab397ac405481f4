"""ipywidgets + bqplot views shared by the dashboards and the HTML report; they only draw what analysis computed.

``style`` (colours, cards, health badge), ``charts`` (bqplot figures), ``source`` (which run),
one module per dashboard view. Nothing here imports pymc.
"""

from mmmlib.widgets.executive import executive_view
from mmmlib.widgets.new_model import new_model_view
from mmmlib.widgets.planner import planner_view
from mmmlib.widgets.quality import quality_view
from mmmlib.widgets.source import run_from_environment, with_run_picker

__all__ = [
    "executive_view",
    "new_model_view",
    "planner_view",
    "quality_view",
    "run_from_environment",
    "with_run_picker",
]
