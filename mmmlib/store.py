"""Where data and runs live: ``MMM_HOME/clients/<client>/{datasets,runs}/`` (one folder per client).

Keeping clients in separate folders lets the hub give each client's Unix group its own
directory; nothing here reads another client's folder unless asked to list them all.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mmmlib.errors import MMMError, UsageError
from mmmlib.runs import load_summary

CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RUN_ID_MAX = 100
# run folder names reach URLs (the hub's run-report route), file names and pages: one rule, checked at creation
RUN_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{RUN_ID_MAX - 1}}}$")


def home() -> Path:
    """The store root: ``$MMM_HOME`` or ``./mmm_home``."""
    return Path(os.environ.get("MMM_HOME") or "mmm_home").resolve()


def check_client(client: str) -> str:
    if not CLIENT_NAME.fullmatch(client or ""):  # fullmatch: "$" alone lets a final newline in
        raise UsageError(
            f"Client name {client!r} is not allowed: use lower-case letters, digits, '-' and '_' (at most 63)."
        )
    return client


def check_run_id(run_id: str, what: str = "Run folder name", room: int = 0) -> str:
    """Refuse a run (or schedule) name outside ``RUN_ID``; ``room`` keeps characters free for a suffix."""
    limit = RUN_ID_MAX - room
    if not RUN_ID.fullmatch(run_id or "") or len(run_id) > limit:
        raise UsageError(
            f"{what} {run_id!r} is not allowed: use letters, digits, '.', '-' and '_', starting with a letter "
            f"or digit (at most {limit} characters)."
        )
    return run_id


def client_dir(client: str, root: Path | None = None) -> Path:
    return (root or home()) / "clients" / check_client(client)


def datasets_dir(client: str, root: Path | None = None) -> Path:
    return client_dir(client, root) / "datasets"


def runs_dir(client: str, root: Path | None = None) -> Path:
    return client_dir(client, root) / "runs"


def latest_report_path(client: str, root: Path | None = None) -> Path:
    """The client's latest published HTML report (scheduled ``ok`` runs only); the hub serves it to their users."""
    return client_dir(client, root) / "reports" / "latest.html"


def ensure_client(client: str, root: Path | None = None) -> Path:
    for d in (datasets_dir(client, root), runs_dir(client, root)):
        d.mkdir(parents=True, exist_ok=True)
    return client_dir(client, root)


def clients(root: Path | None = None) -> list[str]:
    base = (root or home()) / "clients"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@dataclass(frozen=True)
class RunInfo:
    """A run as listed: enough to pick one without loading its posterior."""

    client: str
    run_id: str
    path: Path
    status: str
    created_at: str
    target: str
    accepted: bool

    @property
    def published(self) -> bool:
        """Shown to executives: status ``ok``, or a ``warning`` run someone accepted."""
        return self.status == "ok" or self.accepted

    def to_dict(self) -> dict:
        return {
            "client": self.client,
            "id": self.run_id,
            "path": str(self.path),
            "status": self.status,
            "created_at": self.created_at,
            "target": self.target,
            "accepted": self.accepted,
        }


def read_run_info(path: Path, client: str = "") -> RunInfo | None:
    """The listing entry of a run directory, or None when its ``summary.json`` is missing or damaged.

    ``runs.load_summary`` is the one check of what a run must hold, so a run listed here (the gallery, the run
    picker, ``mmm runs``) is one every view and command can open.
    """
    try:
        summary = load_summary(path)
    except (MMMError, PermissionError):  # one unreadable folder must not hide the client's other runs
        return None
    run = summary["run"]
    return RunInfo(
        client=client or summary.get("client") or "",
        run_id=run["id"],
        path=path,
        status=summary["status"],
        created_at=run["created_at"],
        target=summary["target"],
        accepted=(path / "ACCEPTED").exists(),
    )


def list_runs(client: str | Iterable[str] | None = None, root: Path | None = None) -> list[RunInfo]:
    """Complete runs (those with a sound ``summary.json``) of one client, several, or all; newest first.

    Failed attempts are not runs, and nor is a folder whose summary is damaged or partial: it is skipped. Nor
    is a folder whose name breaks ``RUN_ID`` (made by hand: it could never be linked to, so it is never listed,
    nor chosen as a client's latest run).
    """
    if client is None:
        names = clients(root)
    else:
        names = [check_client(c) for c in ([client] if isinstance(client, str) else client)]
    found = []
    for name in names:
        base = runs_dir(name, root)
        if not base.is_dir():
            continue
        for path in base.iterdir():
            if path.is_dir() and ".failed-" not in path.name and RUN_ID.fullmatch(path.name):
                info = read_run_info(path, name)
                if info:
                    found.append(info)
    return sorted(found, key=lambda r: (r.created_at, r.run_id), reverse=True)


def accept_run(path: Path, by: str) -> None:
    """Mark a ``warning`` run as reviewed: executives see it as the latest good run from now on."""
    status = load_summary(path)["status"]  # a missing or damaged summary: its own sentence, nothing written
    stamp = {"accepted_by": by, "accepted_at": datetime.now(UTC).isoformat(), "status_when_accepted": status}
    (path / "ACCEPTED").write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def latest_good_run(client: str, root: Path | None = None) -> RunInfo | None:
    """The newest run executives may see: status ``ok``, or a ``warning`` run someone accepted."""
    for info in list_runs(client, root):
        if info.published:
            return info
    return None
