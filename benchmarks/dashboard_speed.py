"""Benchmark: dashboards in a real browser (targets: executive charts drawn ≤ 2 s; budget change → new outcome ≤ 0.5 s).

Starts Voilà on loopback over ``dashboards/`` for RUN_DIR, then in headless Chromium measures, five times each:
request → first bqplot bar drawn (executive, budget planner), and typing a new budget → the outcome text changing.

Run: `.venv/bin/python benchmarks/dashboard_speed.py RUN_DIR [--preheat | --hub-server [--cold]]`.
``--preheat``: standalone Voilà with its preheated kernels (what ``make demo`` serves). ``--hub-server``: a hub
user's Jupyter server (``mmmlib/hub/server_config.py``, Voilà as a server extension, what the hub serves) with its
warm kernel, each load once the kernel is waiting, as for a user who opens a page; ``--cold`` turns warm kernels
off there (``MMM_WARM_KERNELS=0``: every page starts its own kernel); ``--Class.trait=value`` goes to that server.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import sync_playwright

from mmmlib.hub.warm_kernels import WARM_ENV
from mmmlib.voila_server import running_user_server, running_voila


def main(
    run_dir: str,
    repeats: int = 5,
    preheat: bool = False,
    hub_server: bool = False,
    cold: bool = False,
    server_args: list[str] | None = None,
) -> None:
    env = {"MMM_RUN": str(Path(run_dir).resolve())}
    if hub_server:
        with tempfile.TemporaryDirectory(prefix="mmm-bench-") as tmp:
            log = Path(tmp) / "server.log"
            server_env = {**env, WARM_ENV: "0" if cold else "1"}
            with running_user_server(server_env, log=log, timeout=120, args=server_args) as base:
                results = measure(base, repeats, None if cold else lambda n: _warm_kernels_ready(log, n))
        how = "hub user's server, " + ("no warm kernels" if cold else "a warm kernel waiting")
    else:
        args = ["--preheat_kernel=True", "--pool_size=1"] if preheat else []
        with running_voila(env, args) as base:
            results = measure(base, repeats)
        how = "standalone Voilà" + (", preheated kernels" if preheat else "")
    print(f"| measured in headless Chromium ({how}) | median s | min s | max s |")
    print("|---|---|---|---|")
    for name, label in (
        ("executive", "executive: request → charts drawn"),
        ("budget_planner", "budget planner: request → charts drawn"),
        ("budget change", "budget planner: new budget → new outcome"),
    ):
        t = results[name]
        print(f"| {label} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} |")


def _warm_kernels_ready(log: Path, loads: int) -> None:
    """Wait until the server has started its warm kernel for the next load (one more than pages loaded so far)."""
    deadline = time.monotonic() + 120
    while log.read_text().count("Warm kernel") <= loads:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm kernel was not ready within 2 minutes")
        time.sleep(0.2)


def measure(base: str, repeats: int, before_load: Callable[[int], None] | None = None) -> dict[str, list[float]]:
    from mmmlib.browser import CHROMIUM_ARGS, chromium_path

    results: dict[str, list[float]] = {"executive": [], "budget_planner": [], "budget change": []}
    loads = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for _ in range(repeats):
            for name in ("executive", "budget_planner"):
                if before_load is not None:
                    before_load(loads)
                loads += 1
                page = browser.new_page(viewport={"width": 1400, "height": 3000})
                start = time.perf_counter()
                page.goto(f"{base}/voila/render/{name}.ipynb")
                page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
                results[name].append(time.perf_counter() - start)
                if name == "budget_planner":
                    before = page.inner_text(".mmm-outcome")
                    box = page.locator("input[type=number]").first
                    value = float(box.input_value())
                    box.fill(f"{value * 1.1:.2f}")
                    start = time.perf_counter()
                    box.press("Enter")
                    page.wait_for_function(
                        "prev => document.querySelector('.mmm-outcome').innerText !== prev", arg=before
                    )
                    results["budget change"].append(time.perf_counter() - start)
                page.close()
        browser.close()
    return results


if __name__ == "__main__":
    main(
        sys.argv[1],
        preheat="--preheat" in sys.argv,
        hub_server="--hub-server" in sys.argv,
        cold="--cold" in sys.argv,
        server_args=[a for a in sys.argv[2:] if a.startswith("--") and "." in a.split("=")[0]],  # --Class.trait=value
    )
