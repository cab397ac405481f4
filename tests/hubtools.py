"""A real JupyterHub (with configurable-http-proxy) in a subprocess, and a logged-in browser-like session."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"


def free_port_block(size: int = 3) -> int:
    """A port p with p..p+size-1 free (the hub uses port, port+1 for the proxy API, port+2 for itself)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + size >= 65535:
            continue
        ok = True
        for p in range(port, port + size):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port block")


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float) -> bool:
    """Poll ``url`` until it answers 2xx (True) or ``timeout`` passes (False); a process that exits is an error."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


class Hub:
    """``jupyterhub -f hub_config/jupyterhub_config.py`` with the given environment; stop() waits for its PID."""

    def __init__(self, workdir: Path, env: dict[str, str], run_as: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port_block()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "hub.log"
        full = {**os.environ, **env, "MMM_HUB_PORT": str(self.port)}
        as_user = ["runuser", "-u", run_as, "--"] if run_as else []
        self.proc = subprocess.Popen(
            [*as_user, str(Path(sys.executable).parent / "jupyterhub"), "-f", str(CONFIG)],
            cwd=workdir,
            env=full,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until_up(self.url + "/hub/health", self.proc, self.log, "hub", 60):
            self.stop()
            raise RuntimeError(f"hub did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def logs(self) -> str:
        return self.log.read_text()


class Browser:
    """A requests session that logs in through the hub's form (with its _xsrf token)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.s = requests.Session()

    def get(self, path: str, **kw: object) -> requests.Response:
        return self.s.get(self.hub.url + path, timeout=60, **kw)  # type: ignore[arg-type]

    def login(self, user: str, password: str) -> requests.Response:
        page = self.get("/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf, page.text[:500]
        return self.s.post(
            self.hub.url + "/hub/login",
            data={"username": user, "password": password, "_xsrf": xsrf.group(1)},
            timeout=120,
        )

    def voila_kernel(self, user: str, path: str) -> str:
        """Open a Voilà page on the user's server and return the id of the kernel it started for the page."""
        page = self.open_server(user, path)
        kernel = re.search(r'kernelId": "([0-9a-f-]{36})', page.text)
        assert kernel, page.text[:1000]
        return kernel.group(1)

    def open_server(self, user: str, path: str = "", wait: float = 90) -> requests.Response:
        """Follow the hub to the user's server (spawning it if needed) and return the final response."""
        deadline = time.time() + wait
        while True:
            r = self.get(f"/user/{user}/{path}")
            if (f"/user/{user}/" in r.url and "spawn-pending" not in r.url) or time.time() > deadline:
                return r
            time.sleep(1)


def landed(r: requests.Response) -> str:
    """The decoded path a response ended on, without the query the hub may add (``?redirects=1`` after a spawn)."""
    return unquote(urlsplit(r.url).path)


def kernel_socket(browser: Browser, user: str, kernel_id: str, timeout: float = 60) -> Any:
    """A websocket on the kernel's channels, as the page's JavaScript opens (the server counts it connected)."""
    import websocket

    url = browser.hub.url.replace("http://", "ws://") + f"/user/{user}/api/kernels/{kernel_id}/channels"
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.s.cookies)
    return websocket.create_connection(url, cookie=cookie, origin=browser.hub.url, timeout=timeout)


def kernel_exec(browser: Browser, user: str, kernel_id: str, code: str, timeout: float = 60) -> dict[str, str]:
    """Send ``code`` over the kernel websocket the way a crafted client could; returns its stdout and error."""
    import json
    import uuid

    ws = kernel_socket(browser, user, kernel_id, timeout)
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": user,
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    out = {"stdout": "", "error": ""}
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out["stdout"] += msg["content"]["text"]
            elif kind == "error":
                out["error"] += f"{msg['content']['ename']}: {msg['content']['evalue']}"
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return out  # iopub's idle comes after every output of the request (the shell reply may not)
    finally:
        ws.close()
    raise TimeoutError(f"no reply from kernel {kernel_id}: {out}")
