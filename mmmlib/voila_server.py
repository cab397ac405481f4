"""Start Voilà on loopback over the dashboards, for tests, benchmarks and local use without the hub."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmmlib import assets

DASHBOARDS = assets.dashboards_dir()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_voila(
    env: dict[str, str] | None = None, args: list[str] | None = None, log: Path | None = None, timeout: float = 60
) -> Iterator[str]:
    """Yield the base URL of a Voilà server on 127.0.0.1 serving ``dashboards/``; stop it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "voila", str(DASHBOARDS), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}"]
    with _serving(command + (args or []), port, env, log, timeout) as base:
        yield base


@contextmanager
def running_user_server(
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 60,
    kind: str = "viewer",
    args: list[str] | None = None,
) -> Iterator[str]:
    """Yield the base URL of a hub user's Jupyter server (its ``server_config.py``: Voilà as a server extension,
    the kernel cap, warm kernels) over ``dashboards/`` on 127.0.0.1, without the hub: no login, every request
    allowed. What the hub serves pages with, for tests and benchmarks."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--config={Path(__file__).with_name('hub') / 'server_config.py'}",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={DASHBOARDS}",
        "--IdentityProvider.token=",
        "--ServerApp.authorizer_class=jupyter_server.auth.authorizer.AllowAllAuthorizer",
        "--ServerApp.allow_root=True",  # the hub runs it as the user; tests and benchmarks may be root
    ]
    environment = {"MMM_SERVER_KIND": kind, **(env or {})}
    with _serving(command + (args or []), port, environment, log, timeout, "/api/status") as base:
        yield base


@contextmanager
def _serving(
    command: list[str], port: int, env: dict[str, str] | None, log: Path | None, timeout: float, ready: str = ""
) -> Iterator[str]:
    """Start ``command`` (a server on ``port``), yield its base URL once ``ready`` answers, stop it afterwards."""
    stderr = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(base + ready, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{command[2]} did not start") from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            stderr.close()
