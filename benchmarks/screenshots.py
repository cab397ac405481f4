"""Dashboard screenshots (README, docs/dashboards.md): each dashboard of RUN_DIR in headless Chromium, laptop-sized.

Run: `.venv/bin/python benchmarks/screenshots.py RUN_DIR` (after `make demo`: mmm_home/clients/sample/runs/demo).
Writes dashboards/screenshots/<dashboard>.png; the gallery shot comes from tests/test_hub.py
(test-artifacts/hub_gallery.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from mmmlib.browser import CHROMIUM_ARGS, chromium_path
from mmmlib.voila_server import running_voila

OUT = Path(__file__).resolve().parent.parent / "dashboards" / "screenshots"
# dashboard → what shows it has drawn
PAGES = {
    "executive": ".bqplot rect.bar",
    "budget_planner": ".bqplot rect.bar",
    "model_quality": ".bqplot rect.bar",
    "new_model": ".widget-upload",
}


def main(run_dir: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    env = {"MMM_RUN": str(Path(run_dir).resolve()), "MMM_CLIENT": "sample"}
    with running_voila(env, timeout=120) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for name, ready in PAGES.items():
            page = browser.new_page(viewport={"width": 1360, "height": 1100})
            page.goto(f"{base}/voila/render/{name}.ipynb", timeout=120_000)
            page.wait_for_selector(ready, state="attached", timeout=120_000)
            page.wait_for_timeout(1500)  # let every chart finish its first draw
            page.screenshot(path=str(OUT / f"{name}.png"))
            print(f"wrote {OUT / (name + '.png')}")
            page.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1])
