"""Everything ``hub_config/jupyterhub_config.py`` sets, from :mod:`mmmlib.hub.settings`.

One machine (default): the hub and configurable-http-proxy on 127.0.0.1:8000, SQLite, local servers (one
Unix account per user when run as root), the idle culler and the scheduler as hub-managed services.
Kubernetes (``MMM_HUB_MODE=kubernetes``, under zero-to-jupyterhub): the chart owns the proxy and database;
this adds the same authentication and roles, and per-user pods that mount only their clients' volumes.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mmmlib import assets
from mmmlib.errors import UsageError
from mmmlib.hub import accounts
from mmmlib.hub.authenticators import DEMO_USERS, MMMNativeAuthenticator, demo_password, oauth_settings
from mmmlib.hub.kernels import DEFAULT_MAX_KERNELS
from mmmlib.hub.roles import DASHBOARDS, access_of
from mmmlib.hub.settings import ANALYST_FOLDERS, REPO, HubSettings, from_environment, proxy_command
from mmmlib.hub.warm_kernels import WARM_ENV
from mmmlib.runs import clients

log = logging.getLogger("mmmlib.hub")
SERVER_CONFIG = Path(__file__).with_name("server_config.py")
VENV_BIN = Path(sys.executable).parent
NOT_ISOLATED = (
    "USERS ARE NOT ISOLATED: the hub is not running as root, so every user's server and kernels run as "
    "this one account and can read every client's runs. Fine for a laptop demo; run the hub as root "
    "(or on Kubernetes) for real users."
)
# Dashboard-only server flavours and the notebooks each may render.
KINDS = {"viewer": DASHBOARDS["executives"], "manager": DASHBOARDS["managers"]}
# Kubernetes: MMM_HOME in every user pod (the image holds dashboards/, the client volumes mount in clients/).
K8S_HOME = Path("/srv/mmm")
CLIENT_VOLUME = "client-"


def role_overrides(dashboards_root: Path) -> dict[str, dict[str, Any]]:
    """``Spawner.group_overrides``: later keys win, so the most capable role a user holds decides."""

    def kind(name: str, url: str, root: str) -> dict[str, Any]:
        return {"environment": {"MMM_SERVER_KIND": name}, "default_url": url, "notebook_dir": root}

    viewer, manager = str(dashboards_root / "viewer"), str(dashboards_root / "manager")
    return {
        "1-executives": {"groups": ["executives"], "spawner_override": kind("viewer", "/mmm/gallery", viewer)},
        "2-managers": {"groups": ["managers"], "spawner_override": kind("manager", "/mmm/gallery", manager)},
        "3-analysts": {"groups": ["analysts", "admins"], "spawner_override": kind("lab", "/lab", "~")},
    }


def prepare_dashboards(root: Path) -> None:
    """Copy the notebooks each dashboard-only flavour may render into its own folder (nothing else is there)."""
    for name, notebooks in KINDS.items():
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for nb in notebooks:
            shutil.copy(assets.dashboard(nb), target / f"{nb}.ipynb")
            os.chmod(target / f"{nb}.ipynb", 0o644)
        os.chmod(target, 0o755)
    os.chmod(root, 0o755)


def _authentication(c: Any, s: HubSettings) -> None:
    c.Authenticator.users_file = str(s.users_file) if s.users_file else ""
    c.Authenticator.manage_groups = True
    if s.auth == "native":
        c.JupyterHub.authenticator_class = MMMNativeAuthenticator
        c.MMMNativeAuthenticator.minimum_password_length = 10
        c.MMMNativeAuthenticator.check_common_password = True
        c.MMMNativeAuthenticator.allowed_failed_logins = 5
        c.MMMNativeAuthenticator.enable_signup = True
        if s.demo:
            if not s.loopback:
                raise SystemExit(
                    f"Refusing to start: demo users have a shared password and must not be reachable from the "
                    f"network, but MMM_HUB_IP is {s.ip}. Set MMM_HUB_DEMO=0 or bind to 127.0.0.1."
                )
            password, new = demo_password(s.home)
            c.MMMNativeAuthenticator.demo_users = DEMO_USERS
            c.MMMNativeAuthenticator.demo_password = password
            c.MMMNativeAuthenticator.admin_users = {n for n, e in DEMO_USERS.items() if "admins" in e["roles"]}
            where = "MMM_DEMO_PASSWORD" if os.environ.get("MMM_DEMO_PASSWORD") else s.home / "demo_credentials.txt"
            print(f"Demo users {', '.join(DEMO_USERS)} on {s.public_url}; password in {where}", file=sys.stderr)
            if new:
                print(f"Demo password (shown once): {password}", file=sys.stderr)
        return
    cls, settings = oauth_settings(s.auth, f"{s.public_url}/hub/oauth_callback")
    c.JupyterHub.authenticator_class = cls
    for key, value in settings.items():
        setattr(getattr(c, cls.__name__), key, value)


def _scheduler(s: HubSettings) -> dict[str, Any]:
    env = {k: os.environ[k] for k in ("PYTENSOR_FLAGS", "XLA_FLAGS") if k in os.environ}
    return {
        "name": "scheduler",
        # umask 002: what it writes stays writable by the client's writers and readable by its readers
        "command": ["/bin/sh", "-c", f'umask 002 && exec "{VENV_BIN / "mmm"}" schedule serve --file "{s.schedules}"'],
        "environment": {"MMM_HOME": str(s.home), **env},
    }


def _services(c: Any, s: HubSettings) -> None:
    services = [
        {
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600", "--cull-every=300"],
        }
    ]
    roles = [
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    ]
    if s.schedules:
        services.append(_scheduler(s))
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def _without_clients(items: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    listed = [items[k] for k in sorted(items)] if isinstance(items, dict) else list(items)
    return [v for v in listed if not str(v.get("name", "")).startswith(CLIENT_VOLUME)]


def kubernetes_volumes(spawner: Any) -> None:
    """``KubeSpawner.pre_spawn_hook``: the pod mounts its user's clients' volumes (PVC ``mmm-client-<name>``,
    at ``/srv/mmm/clients/<name>``) and no other client's, next to what the chart mounts (the home volume).

    Runs at every start, after the group overrides, so a client taken away since the last start is unmounted.
    """
    access = access_of(g.name for g in spawner.user.groups)
    spawner.volumes = _without_clients(spawner.volumes) + [
        {"name": f"{CLIENT_VOLUME}{c}", "persistentVolumeClaim": {"claimName": f"mmm-client-{c}"}}
        for c in access.clients
    ]
    # executives read; the kubelet mounts their clients' volumes read-only, as the Unix groups do on one machine
    spawner.volume_mounts = _without_clients(spawner.volume_mounts) + [
        {"name": f"{CLIENT_VOLUME}{c}", "mountPath": f"{K8S_HOME}/clients/{c}", "readOnly": not access.writes}
        for c in access.clients
    ]
    spawner.environment.update(
        MMM_HOME=str(K8S_HOME),
        MMM_CLIENTS=",".join(access.clients),
        MMM_ROLE=access.role or "",
        MMM_DASHBOARDS=",".join(access.dashboards),
    )
    spawner.environment.setdefault("MMM_SERVER_KIND", access.kind)
    spawner.lifecycle_hooks = {"postStart": {"exec": {"command": seed_home_command()}}} if access.lab else {}


def seed_home_command() -> list[str]:
    """The pod's postStart command giving an analyst their own copy of the notebooks in their persistent home
    (the image's checkout, as on one machine); a folder already there is kept, with the analyst's edits."""
    copies = " ; ".join(f'[ -e "$HOME/{n}" ] || cp -r "{src}" "$HOME/{n}"' for n, src in ANALYST_FOLDERS.items())
    return ["/bin/sh", "-c", copies]


def server_environment() -> dict[str, str]:
    """What every user's server gets from the hub's environment: its kind (overridden per role), its kernel cap and
    how many of those kernels wait warm for the next dashboard.

    Both are checked here, so a typo stops the hub at start instead of every user's server at spawn.
    """
    cap = os.environ.get("MMM_MAX_KERNELS", str(DEFAULT_MAX_KERNELS))
    if not cap.isdigit() or int(cap) < 1:
        raise UsageError(f"MMM_MAX_KERNELS must be a whole number of kernels per user, at least 1, not {cap!r}.")
    warm = os.environ.get(WARM_ENV, "1" if int(cap) > 1 else "0")  # a cap of one leaves no room for a warm one
    if not warm.isdigit() or int(warm) >= int(cap):
        raise UsageError(
            f"{WARM_ENV} must be a whole number of warm kernels per user, below MMM_MAX_KERNELS ({int(cap)}), "
            f"not {warm!r}."
        )
    return {"MMM_SERVER_KIND": "viewer", "MMM_MAX_KERNELS": str(int(cap)), WARM_ENV: str(int(warm))}


def configure(c: Any, settings: HubSettings | None = None) -> HubSettings:
    """Fill the hub's config object ``c``; returns the settings used (tests read them)."""
    s = settings or from_environment()
    _authentication(c, s)
    c.Spawner.args = [f"--config={SERVER_CONFIG}"]
    c.Spawner.environment = server_environment()
    c.Spawner.default_url = "/mmm/gallery"
    c.JupyterHub.default_url = "/hub/spawn"

    if s.mode == "kubernetes":
        # Run by the chart's hub.extraConfig, after its own config: the chart keeps the proxy, the database
        # (hub.db; MMM_HUB_DB_URL overrides it), user pods across hub restarts and the idle culler (cull.*).
        c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
        c.Spawner.cmd = ["jupyterhub-singleuser"]
        c.Spawner.group_overrides = role_overrides(K8S_HOME / "dashboards")
        c.KubeSpawner.pre_spawn_hook = kubernetes_volumes
        if os.environ.get("MMM_HUB_DB_URL"):
            c.JupyterHub.db_url = os.environ["MMM_HUB_DB_URL"]
        if s.schedules:
            c.JupyterHub.services.append(_scheduler(s))  # next to the chart's services, not instead of them
        return s

    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.bind_url = f"http://{s.ip}:{s.port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.hub_port}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.pid_file = str(s.state / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{s.state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(s.state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(s.state / "jupyterhub.pid")
    c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
    c.Spawner.mmm_home = str(s.home)
    c.Spawner.group_overrides = role_overrides(s.dashboards_root)
    c.Spawner.notebook_dir = str(s.dashboards_root / "viewer")
    c.Spawner.http_timeout = 60
    _services(c, s)

    accounts.secure_state(s.state)
    prepare_dashboards(s.dashboards_root)
    if s.isolate:
        c.JupyterHub.spawner_class = "mmmlib.hub.spawners.IsolatedSpawner"
        c.IsolatedSpawner.homes = os.environ.get("MMM_HUB_HOMES", "/home")
        accounts.secure_store(s.home, clients(s.home))
        changed = accounts.make_traversable([Path(sys.base_prefix), Path(sys.prefix), REPO, s.home])
        for d in changed:
            print(f"Made {d} enterable by other accounts (o+x, not listable) so user servers reach the code.",
                  file=sys.stderr)  # fmt: skip
    else:
        c.JupyterHub.spawner_class = "mmmlib.hub.spawners.SharedSpawner"
        c.SharedSpawner.home_dir_template = str(s.state.parent / "hub-homes" / "{username}")
        print(NOT_ISOLATED, file=sys.stderr)
    return s
