"""The headless browser the product prints with: Debian's Chromium driven by Playwright (it cannot download its own
browsers here), its settings, and the PDF of an offline HTML report."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mmmlib import safe_fs
from mmmlib.errors import UsageError

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> str:
    """Debian's Chromium (Playwright cannot download its own browsers here); ``MMM_CHROMIUM`` overrides."""
    path = os.environ.get("MMM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise UsageError("PDF reports need Chromium: install Debian's chromium (make test does) or set MMM_CHROMIUM.")
    return path


def html_to_pdf(html_path: Path, pdf_path: Path) -> None:
    """Print the offline HTML report to PDF in headless Chromium once its charts have drawn."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(Path(html_path).resolve().as_uri())
        page.wait_for_selector(".bqplot rect.bar", state="attached", timeout=60_000)
        page.wait_for_timeout(500)  # let the last transitions finish
        pdf = page.pdf(format="A4", landscape=True, print_background=True, scale=0.7)
        browser.close()
    safe_fs.write_bytes(pdf_path, pdf)
