"""Reports of a run (``mmm report``): the offline HTML report, its PDF, and the text exports written to files.

HTML is the executive dashboard executed for the run (the run is its papermill parameter) and exported by nbconvert
with its code hidden and its widget state kept, so the charts are the dashboard's own; the JavaScript they need is
inlined so the file opens with no server and no network. Text exports are :mod:`mmmlib.exports`; the browser that
prints the PDF is :mod:`mmmlib.browser`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from mmmlib import safe_fs
from mmmlib.assets import dashboard
from mmmlib.browser import html_to_pdf
from mmmlib.exports import FORMATS, export
from mmmlib.runs import RunDir


def html_report(run_dir: Path, notebook: Path | None = None) -> str:
    """Execute the executive dashboard for ``run_dir`` (its ``run`` parameter) and export it as one HTML file, code
    hidden."""
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from mmmlib.pipeline import kernel_stderr_to

    notebook = notebook or dashboard("executive")
    # the run is the dashboard's papermill parameter: nothing in this process's environment changes
    nb = parameterize_notebook(load_notebook_node(str(notebook)), {"run": str(Path(run_dir).resolve())})
    with kernel_stderr_to(Path(os.devnull)):
        NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(notebook.parent)}},
            store_widget_state=True,
        ).execute()
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
    if fmt in FORMATS:
        safe_fs.write_text(target, export(summary, fmt))
    elif fmt == "pdf":
        with tempfile.TemporaryDirectory(prefix="mmm-print-") as private:  # Chromium prints from a file
            html_path = Path(private) / "report.html"
            html_path.write_text(html_report(run_dir), encoding="utf-8")
            html_to_pdf(html_path, target)
    else:
        safe_fs.write_text(target, html_report(run_dir))
    return target


__all__ = ["html_report", "offline_assets", "write_report"]
