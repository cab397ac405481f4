"""Hub settings from environment variables, so one config file serves the laptop demo, a server and Kubernetes."""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mmmlib import assets
from mmmlib.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
# what an analyst's home starts with: their own copy, never overwritten once there (the sample data is the
# checkout's: an installed wheel ships the notebooks and dashboards only)
ANALYST_FOLDERS = {kind: assets.folder(kind) for kind in assets.KINDS} | {
    name: REPO / name for name in ("sample_data",) if (REPO / name).is_dir()
}
AUTH_KINDS = ("native", "generic", "github", "google")
MODES = ("local", "kubernetes")


@dataclass(frozen=True)
class HubSettings:
    ip: str
    port: int
    mode: str  # local | kubernetes
    auth: str  # native | generic | github | google
    home: Path  # MMM_HOME: the store of every client
    state: Path  # hub database, cookie secret, proxy pid: root-only
    users_file: Path | None  # allowed-users YAML (roles and clients per user)
    demo: bool  # create the demo users (loopback only)
    schedules: Path | None  # run `mmm schedule serve --file` as a hub-managed service
    isolate: bool  # one Unix account per user, client directories per Unix group (needs root)
    public_url: str  # what browsers use, for OAuth callbacks

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.ip).is_loopback
        except ValueError:
            return self.ip == "localhost"

    @property
    def dashboards_root(self) -> Path:
        """Per-kind copies of the dashboards that single-user servers serve (world-readable, no data)."""
        return self.home / "dashboards"

    @property
    def proxy_api_port(self) -> int:
        return self.port + 1

    @property
    def hub_port(self) -> int:
        return self.port + 2


def _path(name: str, default: Path | None = None) -> Path | None:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


def from_environment(euid: int | None = None) -> HubSettings:
    """Read ``MMM_HUB_*`` and ``MMM_HOME``; refuse unknown values with the variable named."""
    ip = os.environ.get("MMM_HUB_IP", "127.0.0.1")
    try:
        port = int(os.environ.get("MMM_HUB_PORT", "8000"))
    except ValueError as e:
        raise UsageError(f"MMM_HUB_PORT must be a port number, not {os.environ['MMM_HUB_PORT']!r}.") from e
    auth = os.environ.get("MMM_HUB_AUTH", "native")
    if auth not in AUTH_KINDS:
        raise UsageError(f"MMM_HUB_AUTH must be one of {', '.join(AUTH_KINDS)}, not {auth!r}.")
    mode = os.environ.get("MMM_HUB_MODE", "local")
    if mode not in MODES:
        raise UsageError(f"MMM_HUB_MODE must be one of {', '.join(MODES)}, not {mode!r}.")
    home = _path("MMM_HOME", REPO / "mmm_home")
    assert home is not None
    euid = os.geteuid() if euid is None else euid
    isolate_env = os.environ.get("MMM_HUB_ISOLATE", "auto")
    isolate = mode == "local" and (euid == 0 if isolate_env == "auto" else isolate_env == "1")
    if isolate and euid != 0:
        raise UsageError("MMM_HUB_ISOLATE=1 needs the hub to run as root (it creates one Unix account per user).")
    host = "localhost" if ip in ("127.0.0.1", "::1") else ip
    settings = HubSettings(
        ip=ip,
        port=port,
        mode=mode,
        auth=auth,
        home=home,
        state=_path("MMM_HUB_STATE", home / "hub") or home / "hub",
        users_file=_path("MMM_HUB_USERS", REPO / "hub_config" / "users.yaml"),
        demo=os.environ.get("MMM_HUB_DEMO", "1" if auth == "native" else "0") == "1",
        schedules=_path("MMM_HUB_SCHEDULES"),
        isolate=isolate,
        public_url=os.environ.get("MMM_HUB_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
    )
    public = os.environ.get("MMM_HUB_PUBLIC_URL") or os.environ.get("MMM_OAUTH_CALLBACK_URL")
    if auth != "native" and not public and (mode == "kubernetes" or not settings.loopback):
        # the OAuth callback would be http://<bind address>:<port> (0.0.0.0, a pod's 127.0.0.1): no browser gets there
        raise UsageError(
            f"MMM_HUB_AUTH={auth} needs MMM_HUB_PUBLIC_URL, the address users open (e.g. https://mmm.example.com): "
            "the identity provider sends them back to <MMM_HUB_PUBLIC_URL>/hub/oauth_callback."
        )
    return settings


def proxy_command() -> list[str]:
    """configurable-http-proxy: the Makefile installs it from npm into .cache/chp; else whatever is on PATH."""
    local = REPO / ".cache" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
    found = os.environ.get("MMM_CHP") or (str(local) if local.exists() else shutil.which("configurable-http-proxy"))
    if not found:
        raise UsageError("configurable-http-proxy is not installed: run `make chp` (npm) or put it on PATH.")
    return [found]
