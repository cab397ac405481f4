"""Groups → role, clients and dashboards: the one place that says who sees what.

Hub groups are ``analysts``, ``managers``, ``executives``, ``admins`` and ``client:<name>``. A user's role
is their most capable role group; their clients are their ``client:`` groups. Groups come from the identity
provider's claims, from an allowed-users YAML, or both (merged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from mmmlib.errors import UsageError
from mmmlib.runs import CLIENT_NAME

# Most capable first: a user in several role groups gets the first that matches.
ROLES = ("admins", "analysts", "managers", "executives")
CLIENT_PREFIX = "client:"

# Which dashboards each role may open (file names in dashboards/), and whether it gets JupyterLab.
DASHBOARDS = {
    "admins": ("executive", "budget_planner", "model_quality", "new_model"),
    "analysts": ("executive", "budget_planner", "model_quality", "new_model"),
    "managers": ("executive", "budget_planner", "model_quality", "new_model"),
    "executives": ("executive", "budget_planner"),
}
LAB_ROLES = frozenset({"admins", "analysts"})


@dataclass(frozen=True)
class Access:
    """What one user may do: their role, clients and dashboards."""

    role: str | None
    clients: tuple[str, ...]

    @property
    def dashboards(self) -> tuple[str, ...]:
        return DASHBOARDS.get(self.role or "", ())

    @property
    def lab(self) -> bool:
        return self.role in LAB_ROLES

    @property
    def writes(self) -> bool:
        """Whether they may change their clients' data (start fits, upload, accept runs): all but executives."""
        return self.role is not None and self.role != "executives"

    @property
    def kind(self) -> str:
        """The single-user server flavour: ``lab`` (JupyterLab + dashboards) or ``viewer``/``manager`` (Voilà only)."""
        if self.lab:
            return "lab"
        return "manager" if self.role == "managers" else "viewer"


def access_of(groups: Iterable[str]) -> Access:
    names = set(groups)
    role = next((r for r in ROLES if r in names), None)
    clients = tuple(sorted(g[len(CLIENT_PREFIX) :] for g in names if g.startswith(CLIENT_PREFIX)))
    return Access(role, clients)


def client_group(client: str) -> str:
    return CLIENT_PREFIX + client


def load_users(path: Path | None) -> dict[str, list[str]]:
    """The allowed-users YAML: ``users: {name: {roles: [analysts], clients: [acme]}}`` → name → hub groups.

    Unknown roles and bad client names are refused with the file and user named, so a typo never grants
    or silently drops access.
    """
    if path is None or not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{path} is not valid YAML: {e}") from e
    users = raw.get("users") or {}
    if not isinstance(users, dict):
        raise UsageError(f"{path}: 'users' must map user names to their roles and clients.")
    out: dict[str, list[str]] = {}
    for name, entry in users.items():
        entry = entry or {}
        roles = list(entry.get("roles") or [])
        clients = list(entry.get("clients") or [])
        bad_roles = [r for r in roles if r not in ROLES]
        if bad_roles:
            raise UsageError(f"{path}: user {name!r} has unknown role(s) {bad_roles}; roles are {', '.join(ROLES)}.")
        bad_clients = [c for c in clients if not CLIENT_NAME.fullmatch(str(c))]
        if bad_clients:
            raise UsageError(f"{path}: user {name!r} has invalid client name(s) {bad_clients}.")
        out[str(name)] = roles + [client_group(c) for c in clients]
    return out
