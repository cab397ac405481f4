"""Benchmark: the hub in a real browser — login → gallery (server spawn included the first time), gallery → executive
dashboard with charts drawn, and the dashboard reloaded with the server running.

Run against a running hub (`make demo`): `.venv/bin/python benchmarks/hub_speed.py http://127.0.0.1:8000 executive
PASSWORD`. Stop the user's server first (or use a fresh hub) to measure a cold spawn.
"""

from __future__ import annotations

import statistics
import sys
import time

from playwright.sync_api import sync_playwright

from mmmlib.browser import CHROMIUM_ARGS, chromium_path


def main(url: str, user: str, password: str, repeats: int = 5) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/hub/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        start = time.perf_counter()
        page.click("[type=submit]")
        page.wait_for_selector("a.card", timeout=180_000)
        login = time.perf_counter() - start
        dashboard = []
        for _ in range(repeats):
            page.goto(f"{url}/user/{user}/mmm/gallery")
            start = time.perf_counter()
            page.click("text=Executive summary")
            page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=120_000)
            dashboard.append(time.perf_counter() - start)
        browser.close()
    print("| measured in headless Chromium through the hub | median s | min s | max s |")
    print("|---|---|---|---|")
    print(f"| login → gallery (first login: spawns the user's server) | {login:.2f} | {login:.2f} | {login:.2f} |")
    print(
        f"| gallery → executive dashboard, charts drawn | {statistics.median(dashboard):.2f} | "
        f"{min(dashboard):.2f} | {max(dashboard):.2f} |"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
