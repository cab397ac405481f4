"""Local spawners: each user's server as their own Unix account (hub as root), or a shared account on a laptop.

Both pass the user's clients and role to the server (``MMM_CLIENTS``, ``MMM_ROLE``) so the gallery and the
dashboards show only that user's clients; as root the account's groups make the same limit hold for any
code run in the user's kernels.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner, set_user_setuid
from traitlets import HasTraits, Unicode

from mmmlib.hub import accounts
from mmmlib.hub.roles import access_of
from mmmlib.hub.settings import ANALYST_FOLDERS


class MMMSpawnerMixin(HasTraits):
    """The environment every flavour of server gets."""

    mmm_home = Unicode("", config=True, help="MMM_HOME passed to the user's server")

    def access(self) -> Any:
        return access_of(g.name for g in self.user.groups)  # type: ignore[attr-defined]

    def mmm_env(self, env: dict[str, str]) -> dict[str, str]:
        access = self.access()
        env["MMM_HOME"] = self.mmm_home
        env["MMM_CLIENTS"] = ",".join(access.clients)
        env["MMM_ROLE"] = access.role or ""
        env["MMM_DASHBOARDS"] = ",".join(access.dashboards)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        return env


class IsolatedSpawner(MMMSpawnerMixin, LocalProcessSpawner):
    """One Unix account per hub user (``mmm-<name>``), created on first login, groups = the user's clients."""

    homes = Unicode("/home", config=True, help="where the accounts' private homes are created")

    async def start(self) -> Any:
        access = self.access()
        entry = accounts.ensure_account(self.user.name, Path(self.homes))
        accounts.set_client_groups(self.user.name, access.clients, write=access.writes)
        for client in access.clients:  # a client new since the hub started gets its group-owned folder now
            folder = Path(self.mmm_home) / "clients" / client
            if not accounts.is_secured(folder, client):
                accounts.secure_client(folder, client)
        if access.lab:
            accounts.copy_notebooks(Path(entry.pw_dir), ANALYST_FOLDERS, entry)
        return await super().start()

    def make_preexec_fn(self, name: str) -> Any:
        switch = set_user_setuid(accounts.account_name(name))

        def preexec() -> None:
            switch()
            os.umask(0o002)  # new runs readable by the client's readers (the client folder keeps everyone else out)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        import pwd

        entry = pwd.getpwnam(accounts.account_name(self.user.name))
        env.update(USER=entry.pw_name, HOME=entry.pw_dir, SHELL=entry.pw_shell)
        return env

    def get_env(self) -> dict[str, str]:
        return self.mmm_env(super().get_env())


class SharedSpawner(MMMSpawnerMixin, SimpleLocalProcessSpawner):
    """Laptop demo without root: every server runs as the hub's own account. Users are NOT isolated."""

    async def start(self) -> Any:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        if self.access().lab:
            accounts.copy_notebooks(home, ANALYST_FOLDERS, None)
        return await super().start()

    def get_env(self) -> dict[str, str]:
        return self.mmm_env(super().get_env())
