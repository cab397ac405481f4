"""Benchmark: dashboards in a real browser (targets: executive charts drawn ≤ 2 s; budget change → new outcome ≤ 0.5 s).

Starts Voilà on loopback over ``dashboards/`` for RUN_DIR, then in headless Chromium measures, five times each:
request → first bqplot bar drawn (executive, budget planner), and typing a new budget → the outcome text changing.

Run: `.venv/bin/python benchmarks/dashboard_speed.py RUN_DIR`.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from mmmlib.voila_server import running_voila


def main(run_dir: str, repeats: int = 5, preheat: bool = False) -> None:
    args = ["--preheat_kernel=True", "--pool_size=1"] if preheat else []
    with running_voila({"MMM_RUN": str(Path(run_dir).resolve())}, args) as base:
        results = measure(base, repeats)
    print(f"| measured in headless Chromium{' (preheated kernels)' if preheat else ''} | median s | min s | max s |")
    print("|---|---|---|---|")
    for name, label in (
        ("executive", "executive: request → charts drawn"),
        ("budget_planner", "budget planner: request → charts drawn"),
        ("budget change", "budget planner: new budget → new outcome"),
    ):
        t = results[name]
        print(f"| {label} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} |")


def measure(base: str, repeats: int) -> dict[str, list[float]]:
    from mmmlib.browser import CHROMIUM_ARGS, chromium_path

    results: dict[str, list[float]] = {"executive": [], "budget_planner": [], "budget change": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for _ in range(repeats):
            for name in ("executive", "budget_planner"):
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
    main(sys.argv[1], preheat="--preheat" in sys.argv)
