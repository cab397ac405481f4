"""Which run a dashboard shows, and the clear message when there is none (never a traceback)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as w

from mmmlib.runs import load_summary
from mmmlib.widgets.style import message


def run_from_environment(default: str | None = None) -> Path | None:
    """The run to show: ``?run=`` in the Voilà URL, else ``$MMM_RUN``, else ``default``."""
    query = parse_qs(os.environ.get("QUERY_STRING", ""))
    if query.get("run"):
        return Path(query["run"][0])
    value = os.environ.get("MMM_RUN") or default
    return Path(value) if value else None


def load_or_message(run: Path | None) -> tuple[dict[str, Any] | None, w.Widget | None]:
    """``(summary, None)`` for a readable run, else ``(None, message widget)``."""
    if run is None:
        return None, message("No run selected: open this dashboard with ?run=<run directory> or set MMM_RUN.")
    try:
        return load_summary(run), None
    except FileNotFoundError:
        return None, message(f"No results at {run}: the run is missing or its fit has not finished.")
    except ValueError:
        return None, message(
            f"The results at {run} are damaged (summary.json is not valid JSON); refit this run.", "error"
        )
