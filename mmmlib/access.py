"""What the current user may see, as the hub told their server (``MMM_CLIENTS``, ``MMM_ROLE``).

This is the polite layer: pages show only the user's clients and say so clearly when asked for another.
The boundary that holds against crafted kernel messages is the Unix account and client groups the hub
sets (``mmmlib.hub.accounts``). Outside the hub (no ``MMM_CLIENTS``) everything in ``MMM_HOME`` is visible.
"""

from __future__ import annotations

import os
from pathlib import Path

from mmmlib import runs


def allowed_clients() -> tuple[str, ...] | None:
    """The user's clients under the hub, else ``None`` (no restriction)."""
    value = os.environ.get("MMM_CLIENTS")
    if value is None:
        return None
    return tuple(c for c in value.split(",") if c)


def role() -> str:
    return os.environ.get("MMM_ROLE", "")


def executives_only() -> bool:
    """Executives see published runs only: ``ok`` or accepted, never an unreviewed ``warning``."""
    return role() == "executives"


def shown_to_role(info: runs.RunInfo | None) -> bool:
    """Executives open published runs only (``ok`` or accepted); other roles open every run of their clients."""
    return not executives_only() or (info is not None and info.published)


def may_open_run(path: Path) -> bool:
    """``shown_to_role`` for a run folder, whatever the URL asked for (``?run=``, ``mmm/run-report``)."""
    return not executives_only() or shown_to_role(runs.read_run_info(Path(path)))


def unpublished_sentence() -> str:
    return (
        "This run is not published to executives: its model did not pass every check and no analyst has "
        "accepted it. Open the latest published run from your dashboards page."
    )


def may_see_client(client: str) -> bool:
    allowed = allowed_clients()
    return allowed is None or client in allowed


def may_see_run(path: Path) -> bool:
    """Whether ``path`` lies inside one of the user's clients' folders."""
    allowed = allowed_clients()
    if allowed is None:
        return True
    resolved = Path(os.path.abspath(path))
    return any(resolved.is_relative_to(Path(os.path.abspath(runs.client_dir(c)))) for c in allowed)


def default_client() -> str:
    allowed = allowed_clients()
    return os.environ.get("MMM_CLIENT") or (allowed[0] if allowed else "sample")


def no_access_sentence(what: str) -> str:
    return f"You do not have access to {what}. Ask an administrator to add you to its client group."
