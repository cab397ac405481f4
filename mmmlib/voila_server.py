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
    stderr = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            str(DASHBOARDS),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--port={port}",
            *(args or []),
        ],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(base, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("Voilà did not start") from None
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
