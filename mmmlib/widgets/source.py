"""Which run a dashboard shows, and the clear message when there is none (never a traceback)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as w

from mmmlib import access, markup
from mmmlib.errors import MMMError, UsageError
from mmmlib.runs import load_summary
from mmmlib.widgets.style import message


def _query_string() -> str:
    """The page's query string. A preheated Voilà kernel runs before its request exists: wait for it there."""
    if os.environ.get("VOILA_PREHEAT", "False") != "False":
        from voila.utils import get_query_string

        return get_query_string() or ""
    return os.environ.get("QUERY_STRING", "")


def run_from_environment(default: str | None = None) -> Path | None:
    """The run to show: ``?run=`` in the Voilà URL, ``?client=`` (its latest good run), ``$MMM_RUN``, ``default``.

    Under the hub with no query, the latest good run of the user's first client.
    """
    from mmmlib.runs import client_dir, latest_good_run

    query = parse_qs(_query_string())
    if query.get("run"):
        return Path(query["run"][0])
    client = query["client"][0] if query.get("client") else None
    if client is None and not os.environ.get("MMM_RUN") and default is None and access.allowed_clients():
        client = access.default_client()
    if client:
        try:
            if not access.may_see_client(client):
                return client_dir(client)  # load_or_message refuses it with a clear sentence
            info = latest_good_run(client)
        except (MMMError, PermissionError):
            return None
        return info.path if info else None
    value = os.environ.get("MMM_RUN") or default
    return Path(value) if value else None


def chosen_run(run: str | Path | None = None) -> Path | None:
    """The run a dashboard shows: its ``run`` parameter when papermill set one (the HTML report of that run), else
    :func:`run_from_environment` (a Voilà page's ``?run=``, preheated kernels included)."""
    return Path(run) if run else run_from_environment()


def load_or_message(run: Path | None) -> tuple[dict[str, Any] | None, w.Widget | None]:
    """``(summary, None)`` for a readable run, else ``(None, message widget)``."""
    if run is None:
        return None, message("No run selected: open this dashboard with ?run=<run directory> or set MMM_RUN.")
    if not access.may_see_run(run):
        return None, message(access.no_access_sentence("this client's runs"), "error")
    try:
        summary = load_summary(run)
        if not access.may_open_run(run):  # executives: published runs only, whatever ?run= names
            return None, message(access.unpublished_sentence(), "error")
        return summary, None
    except PermissionError:
        return None, message(access.no_access_sentence("this client's runs"), "error")
    except UsageError:
        return None, message(f"No results at {run}: the run is missing or its fit has not finished.")
    except MMMError as exc:  # damaged or partial summary.json: load_summary's sentence names the run and file
        return None, message(str(exc), "error")


def with_run_picker(view: Callable[[Path | None], w.Widget], run: Path | None, client: str | None = None) -> w.Widget:
    """A dropdown of the client's runs (newest first, with status) above ``view``, which redraws on change."""
    from mmmlib.runs import list_runs

    try:
        runs = list_runs(client or os.environ.get("MMM_CLIENT") or access.allowed_clients())
        runs = [r for r in runs if access.may_see_client(r.client) and access.shown_to_role(r)]
    except (MMMError, PermissionError):
        runs = []
    options = [(f"{r.created_at[:16].replace('T', ' ')} · {r.client} · {r.status}", str(r.path)) for r in runs]
    if run is not None and str(run) not in {v for _, v in options}:
        options.insert(0, (f"{run}", str(run)))
    body = w.VBox([view(run)])
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")  # under the hub: a way back to the user's gallery
    nav = [w.HTML(markup.link(f"{prefix}mmm/gallery", "← All dashboards", class_="mmm-nav"))] if prefix else []
    if len(options) < 2:
        return w.VBox([*nav, body]) if nav else body
    picker = w.Dropdown(
        options=options, value=str(run) if run else options[0][1], description="Run", layout=w.Layout(width="520px")
    )

    def changed(change: dict) -> None:
        body.children = [view(Path(change["new"]))]

    picker.observe(changed, "value")
    return w.VBox([*nav, picker, body])
