"""Reports of a run (``mmm report``): HTML from the executed executive dashboard, and TXT / CSV / JSON exports.

HTML is the dashboard notebook executed against the run and exported by nbconvert with
its code hidden and its widget state kept, so the charts are the dashboard's own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mmmlib import safe_fs
from mmmlib.assets import dashboard
from mmmlib.csvsafe import csv_text
from mmmlib.errors import UsageError
from mmmlib.identification import is_identified
from mmmlib.runs import RunDir, write_json_atomic
from mmmlib.tables import channel_table, diagnostics_table
from mmmlib.wording import interval_label


def text_report(summary: dict[str, Any]) -> str:
    lines = [
        f"Marketing mix report — run {summary['run']['id']} "
        f"({summary['period']['start']} to {summary['period']['end']})",
        f"Status: {summary['status'].upper()}",
        "",
    ]
    lines += [f"- {s}" for s in summary["recommendations"]]
    table = channel_table(summary)
    table["identified"] = ["yes" if ok else "NO" for ok in _identified(summary)]
    lines += [
        "",
        "Diagnostics",
        diagnostics_table(summary).to_string(),
        "",
        f"Channels (mean [{interval_label(summary)}])",
    ]
    lines += [table.to_string(), ""]
    if not all(_identified(summary)):
        lines += [
            "identified NO: not identified by this data — the ROAS interval cannot tell a loss from a gain, or the",
            "data barely narrowed the prior; hold the channel's budget and run a lift test.",
            "",
        ]
    return "\n".join(lines)


def _identified(summary: dict[str, Any]) -> list[bool]:
    """Each channel's ``identified`` flag (old runs: the interval rule on their stored ROAS HDI)."""
    breakeven = summary.get("breakeven_roas") or 1.0
    return [is_identified(ch, breakeven) for ch in summary["channels"]]


def csv_report(summary: dict[str, Any]) -> str:
    """The channel table as CSV (``mmm report --format csv``, the dashboard's channels.csv), formulas neutralised."""
    metrics = ["contribution", "share", "roas", "mroas"]
    header = ["channel", "label", "spend"] + [f"{m}_{k}" for m in metrics for k in ("mean", "hdi_low", "hdi_high")]
    header.append("identified")
    rows = [
        [ch["name"], ch["label"], ch["spend"]]
        + [ch[m][k] for m in metrics for k in ("mean", "hdi_low", "hdi_high")]
        + [ok]
        for ch, ok in zip(summary["channels"], _identified(summary), strict=True)
    ]
    return csv_text([header, *rows])


def json_report(summary: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "schema_version",
        "status",
        "status_reasons",
        "hdi_prob",
        "target",
        "run",
        "period",
        "totals",
        "channels",
        "diagnostics",
        "model",
        "recommendations",
    )
    out = {k: summary[k] for k in keys if k in summary}
    out["channels"] = [
        {**ch, "identified": ok} for ch, ok in zip(summary["channels"], _identified(summary), strict=True)
    ]
    return out


def html_report(run_dir: Path, notebook: Path | None = None) -> str:
    """Execute the executive dashboard against ``run_dir`` and export it as one HTML file, code hidden."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from mmmlib.pipeline import kernel_stderr_to

    notebook = notebook or dashboard("executive")
    nb = nbformat.read(notebook, as_version=4)
    previous = os.environ.get("MMM_RUN")
    os.environ["MMM_RUN"] = str(Path(run_dir).resolve())
    try:
        with kernel_stderr_to(Path(os.devnull)):
            NotebookClient(
                nb,
                timeout=300,
                kernel_name="python3",
                resources={"metadata": {"path": str(notebook.parent)}},
                store_widget_state=True,
            ).execute()
    finally:
        if previous is None:
            os.environ.pop("MMM_RUN", None)
        else:
            os.environ["MMM_RUN"] = previous
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    assets = offline_assets()
    if assets is None:
        import sys

        print(
            "mmm: warning: the offline JavaScript bundles are missing (run `make js`); this report's charts will "
            "load require.js and the widget renderer from public CDNs.",
            file=sys.stderr,
        )
        body, _ = exporter.from_notebook_node(nb)
        return body
    exporter.require_js_url = REQUIRE_PLACEHOLDER
    exporter.widget_renderer_url = _data_url(assets["embed"])
    body, _ = exporter.from_notebook_node(nb)
    inline = "".join(f"<script>{_safe_js(js)}</script>" for js in [assets["require"], *assets["modules"]])
    body = body.replace(f'<script src="{REQUIRE_PLACEHOLDER}"></script>', inline, 1)
    # the report has no equations; MathJax is the one thing that would still be fetched from a CDN
    return re.sub(r'<script[^>]*src="[^"]*mathjax[^"]*"[^>]*>\s*</script>', "", body, flags=re.IGNORECASE)


REQUIRE_PLACEHOLDER = "mmm-offline-require.js"
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


JS_ROOT = Path(__file__).resolve().parent.parent / ".cache" / "js" / "node_modules"
WIDGET_MODULES = ("bqplot", "bqscales")


def offline_assets() -> dict[str, Any] | None:
    """require.js, the widget renderer and bqplot's AMD modules, for a report that renders with no network.

    The Makefile installs require.js and @jupyter-widgets/html-manager from npm into .cache/js
    (``MMM_JS_ASSETS`` overrides); bqplot and bqscales come from the installed Python packages.
    Returns None when they are missing (the report then loads them from public CDNs).
    """
    import sys

    root = Path(os.environ.get("MMM_JS_ASSETS", JS_ROOT))
    require = root / "requirejs" / "require.js"
    embed = root / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js"
    nbext = Path(sys.prefix) / "share" / "jupyter" / "nbextensions"
    modules = [nbext / name / "index.js" for name in WIDGET_MODULES]
    if not all(p.is_file() for p in (require, embed, *modules)):
        return None
    named = []
    for name, path in zip(WIDGET_MODULES, modules, strict=True):
        text = path.read_text(encoding="utf-8")
        if not text.lstrip().startswith(("define([", "/*")) or "define([" not in text:
            return None
        named.append(text.replace("define([", f'define("{name}",[', 1))  # anonymous AMD module → named
    return {"require": require.read_text(encoding="utf-8"), "embed": embed.read_bytes(), "modules": named}


def _data_url(blob: bytes) -> str:
    import base64

    return "data:text/javascript;base64," + base64.b64encode(blob).decode("ascii")


def _safe_js(text: str) -> str:
    """JavaScript inside <script>: a literal closing tag would end the element early."""
    return text.replace("</script", "<\\/script")


def write_report(run_dir: str | Path, fmt: str = "html", out: str | Path | None = None) -> Path:
    """Write one report; through :mod:`mmmlib.safe_fs`, as root's scheduler writes into the client's run."""
    run_dir = Path(run_dir)
    # a run swapped for a link (to another client's run) is refused, not reported; a missing one is said below
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), safe_fs.dir_fd(run_dir):
        pass
    summary = RunDir(run_dir).summary()
    target = Path(out) if out else RunDir(run_dir).report_file(fmt)
    if fmt == "json":
        write_json_atomic(target, json_report(summary))
        return target
    if fmt == "pdf":
        with tempfile.TemporaryDirectory(prefix="mmm-print-") as private:  # Chromium prints from a file
            html_path = Path(private) / "report.html"
            html_path.write_text(html_report(run_dir), encoding="utf-8")
            html_to_pdf(html_path, target)
        return target
    text = {
        "txt": lambda: text_report(summary),
        "csv": lambda: csv_report(summary),
        "html": lambda: html_report(run_dir),
    }[fmt]()
    safe_fs.write_text(target, text)
    return target


__all__ = ["csv_report", "html_report", "json_report", "text_report", "write_report"]
