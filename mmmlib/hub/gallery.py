"""The landing page of dashboard users, and each client's latest HTML report, as a Jupyter server extension.

Served by the user's own server (``/user/<name>/mmm/gallery``), so it lists only the clients the hub gave
that user (``MMM_CLIENTS``) and reads their runs with that user's Unix account: a client the account may
not read cannot appear, whatever the page asks for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from mmmlib import access, runs
from mmmlib.errors import UsageError
from mmmlib.hub.roles import LAB_ROLES
from mmmlib.markup import attributes, path_part, text

TITLES = {
    "executive": ("Executive summary", "What media returned, with intervals, and what to do next."),
    "budget_planner": ("Budget planner", "Response curves and live re-allocation of a budget."),
    "model_quality": ("Model quality", "Diagnostics, fit, residuals and priors against posteriors."),
    "new_model": ("New model", "Upload data, check it, and start a fit."),
}
ACCENT = "#1f77b4"
CLIENT = f"({runs.CLIENT_NAME.pattern.strip('^$')})"  # URL parts: the store's own rules for client names
RUN = f"({runs.RUN_ID.pattern.strip('^$')})"  # and run folders
CSS = f"""
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2433}}
header{{background:#fff;border-bottom:1px solid #e3e6eb;padding:14px 32px;display:flex;justify-content:space-between}}
header b{{color:{ACCENT};font-size:18px}} header a{{color:#555;margin-left:16px;text-decoration:none}}
main{{max-width:1100px;margin:24px auto;padding:0 24px}}
section{{background:#fff;border:1px solid #e3e6eb;border-radius:8px;padding:18px 22px;margin-bottom:20px}}
h2{{margin:0 0 4px}} .meta{{color:#5b6475;font-size:14px;margin-bottom:14px}}
.cards{{display:flex;flex-wrap:wrap;gap:12px}}
a.card{{display:block;width:230px;padding:12px 14px;border:1px solid #d5dae2;border-radius:6px;
  text-decoration:none;color:#1d2433}}
a.card:hover{{border-color:{ACCENT}}} a.card b{{color:{ACCENT}}}
a.card span{{display:block;font-size:13px;color:#5b6475}}
.badge{{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px}}
.ok{{background:#edf7ed;color:#1e4620}} .warning{{background:#fff4e5;color:#8a4b00}}
.none{{color:#8b1a1a}}
"""


def _client_section(base: str, client: str, dashboards: tuple[str, ...]) -> str:
    """One client's card: its latest published run and links. Run ids and dates come from the writers'
    ``summary.json``, so every value is escaped here, and URL parts are percent-encoded."""
    name = text(client)
    try:
        info = runs.latest_good_run(client)
        report = runs.latest_report_path(client).exists()
    except (PermissionError, UsageError):
        return f'<section><h2>{name}</h2><p class="none">{text(access.no_access_sentence(client))}</p></section>'
    if info is None:
        return (
            f'<section><h2>{name}</h2><p class="none">No published run for {name} yet: '
            "results appear here once a fit passes its checks or an analyst accepts it.</p></section>"
        )
    badge = "accepted" if info.status != "ok" else "ok"
    meta = (
        f"Latest run {text(info.run_id)} · {text(info.created_at[:16].replace('T', ' '))} UTC · "
        f'<span class="badge {"ok" if info.status == "ok" else "warning"}">model health: {badge}</span>'
    )
    cards = []
    for d in dashboards:
        title, blurb = TITLES[d]
        href = url_path_join(base, "voila/render", f"{d}.ipynb") + f"?client={path_part(client)}"
        cards.append(f"<a{attributes(class_='card', href=href)}><b>{text(title)}</b><span>{text(blurb)}</span></a>")
    if report:
        href = url_path_join(base, "mmm/report", path_part(client))
        cards.append(
            f"<a{attributes(class_='card', href=href, download=f'{client}-report.html')}><b>HTML report</b>"
            "<span>The latest scheduled report: one file that opens offline.</span></a>"
        )
    return f'<section><h2>{name}</h2><div class="meta">{meta}</div><div class="cards">{"".join(cards)}</div></section>'


def gallery_html(base: str, user: str, hub_prefix: str = "/hub/") -> str:
    clients = access.allowed_clients() or ()
    dashboards = tuple(d for d in (os.environ.get("MMM_DASHBOARDS", "") or "").split(",") if d in TITLES)
    sections = [_client_section(base, c, dashboards) for c in clients] or [
        '<section><p class="none">You are not assigned to any client yet. Ask an administrator.</p></section>'
    ]
    lab = f"<a{attributes(href=url_path_join(base, 'lab'))}>JupyterLab</a>" if access.role() in LAB_ROLES else ""
    logout = attributes(href=url_path_join(hub_prefix, "logout"))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>MMM dashboards</title><style>{CSS}</style>"
        f"</head><body><header><b>Marketing mix · dashboards</b><div>{text(user)}{lab}"
        f"<a{logout}>Log out</a></div></header><main>{''.join(sections)}</main></body></html>"
    )


class GalleryHandler(JupyterHandler):
    auth_resource = "mmm"

    @web.authenticated
    @authorized
    def get(self) -> None:
        user = getattr(self.current_user, "username", "")
        self.finish(gallery_html(self.base_url, user, self.settings.get("hub_prefix", "/hub/")))


class _ClientFileHandler(JupyterHandler):
    """Serves one HTML file of a client to that client's users (the Unix account's groups check it again)."""

    auth_resource = "mmm"

    def serve(self, client: str, locate: Callable[[], Path], missing: str) -> None:
        if not access.may_see_client(client):
            raise web.HTTPError(403, access.no_access_sentence(f"client {client}"))
        try:
            body = locate().read_bytes()
        except PermissionError as e:
            raise web.HTTPError(403, access.no_access_sentence(f"client {client}")) from e
        except (FileNotFoundError, NotADirectoryError, UsageError) as e:
            raise web.HTTPError(404, missing) from e
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(body)


class ReportHandler(_ClientFileHandler):
    """The client's latest published report (scheduled ``ok`` runs publish it)."""

    @web.authenticated
    @authorized
    def get(self, client: str) -> None:
        self.serve(client, lambda: runs.latest_report_path(client), f"No published report for {client} yet.")


class RunReportHandler(_ClientFileHandler):
    """One run's own ``report.html``; executives get only published runs' (``ok`` or accepted)."""

    @web.authenticated
    @authorized
    def get(self, client: str, run_id: str) -> None:
        def locate() -> Path:
            report = runs.RunDir(runs.runs_dir(client) / run_id).report_file("html")
            if report.is_file() and not access.may_open_run(report.parent):  # a missing one stays a 404
                raise web.HTTPError(403, access.unpublished_sentence())
            return report

        self.serve(client, locate, f"Run {run_id} of {client} has no HTML report.")


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "mmmlib.hub.gallery"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "mmm/gallery"), GalleryHandler),
            (url_path_join(base, f"mmm/report/{CLIENT}"), ReportHandler),
            (url_path_join(base, f"mmm/run-report/{CLIENT}/{RUN}"), RunReportHandler),
        ],
    )
