"""New model, for marketers who don't code: upload a file, map its columns, see its problems, start a fit.

The fit runs as its own process (``mmm fit``, detached from the dashboard's kernel), so it finishes when
the page is closed and the kernel culled; the page only watches its log and its run directory.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as w

from mmmlib import access, markup, runs
from mmmlib.config import ModelConfig, save_config
from mmmlib.data import limits
from mmmlib.data.dataset import propose_config
from mmmlib.data.reader import read_raw
from mmmlib.data.validate import check
from mmmlib.errors import MMMError
from mmmlib.markup import text as esc
from mmmlib.widgets.style import message

POLL_SECONDS = 1.0
# The Jupyter server's kernel websocket carries at most 10 MiB per message (tornado's default), so a larger
# upload never reaches the kernel: the page states the smaller of this (10 MB, room left for the message's
# framing) and MMM_MAX_FILE_MB.
UPLOAD_TRANSPORT_BYTES = 10 * limits.MB


def upload_limit_text() -> str:
    """The largest file this page takes, as the page states it."""
    largest = min(limits.max_bytes(), UPLOAD_TRANSPORT_BYTES)
    return f"Files up to {largest / limits.MB:g} MB."


def start_fit(data: Path, config: Path, run_dir: Path, mode: str) -> subprocess.Popen:
    """Launch ``mmm fit`` in a new session: it outlives this kernel (culling, closed pages)."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(runs.RunDir(run_dir).launch_log, "w", encoding="utf-8") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mmmlib",
                "fit",
                str(data),
                "--config",
                str(config),
                "--out",
                str(run_dir),
                "--mode",
                mode,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def fit_progress(run_dir: Path) -> tuple[str, str]:
    """``(state, last log lines)``: state is running, done or failed, read from the files alone (``RunDir.state``)."""
    state = runs.RunDir(run_dir).state
    lines = [ln for ln in state.log_lines if "Kernel is running over TCP" not in ln]
    if state.phase == "done":
        return "done", ""
    return state.phase, "\n".join(lines[-3:] if state.phase == "failed" else lines[-4:])


class NewModel:
    """Upload → map → validate → fit, with every problem shown in plain words."""

    def __init__(self, client: str, dashboards_url: str = "executive.ipynb") -> None:
        self.client = runs.check_client(client)
        self.dashboards_url = dashboards_url
        self.upload = w.FileUpload(accept=".csv,.tsv,.txt,.xlsx,.parquet", multiple=False, description="Data file")
        self.status = w.HTML()
        self.mapping = w.VBox()
        self.problems = w.HTML()
        self.mode = w.ToggleButtons(options=[("Quick (about 30 s)", "quick"), ("Full (a few minutes)", "full")])
        self.fit_button = w.Button(description="Start fit", button_style="primary", disabled=True)
        self.progress = w.HTML()
        self.progress.add_class("mmm-progress")
        self.data_path: Path | None = None
        self.upload.observe(self._uploaded, "value")
        self.fit_button.on_click(self._start)

    # --- steps -------------------------------------------------------------------------------------
    def _uploaded(self, _: Any = None) -> None:
        if not self.upload.value:
            return
        item = self.upload.value[0]
        name = Path(item["name"]).name
        try:  # the reader's sentence, before anything is written
            limits.check_file_size(name, memoryview(item["content"]).nbytes)
        except MMMError as exc:
            self.status.value = message(str(exc), "error").value
            return
        target = runs.datasets_dir(self.client) / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(item["content"]))
        self.data_path = target
        try:
            raw = read_raw(target)
            config, _ = propose_config(raw)
        except MMMError as exc:
            self.status.value = message(str(exc), "error").value
            return
        self.raw = raw
        cols = list(raw.frame.columns)
        self.date = w.Dropdown(options=cols, value=config.date_column, description="Date")
        self.target = w.Dropdown(options=cols, value=config.target_column, description="KPI")
        self.channels = w.SelectMultiple(
            options=cols, value=tuple(config.channel_columns), description="Spend", rows=min(10, len(cols))
        )
        self.controls = w.SelectMultiple(
            options=cols, value=tuple(config.control_columns), description="Controls", rows=min(10, len(cols))
        )
        self.base_config = config
        for widget in (self.date, self.target, self.channels, self.controls):
            widget.observe(self._validate, "value")
        self.status.value = f"<b>{esc(name)}</b>: {len(raw.frame)} rows; columns detected, change them if needed."
        self.mapping.children = [self.date, self.target, w.HBox([self.channels, self.controls])]
        self._validate()

    def _config(self) -> ModelConfig:
        channels = list(self.channels.value)
        data = {
            **self.base_config.to_dict(),
            "date_column": self.date.value,
            "target_column": self.target.value,
            "channel_columns": channels,
            "control_columns": [c for c in self.controls.value if c not in self.channels.value],
            # a geo file's impressions stay paired with the spend channels still chosen
            "media_columns": {k: v for k, v in self.base_config.media_columns.items() if k in channels},
        }
        return ModelConfig.from_dict(data)

    def _validate(self, _: Any = None) -> None:
        try:
            report = check(self.raw, self._config()).report
        except MMMError as exc:
            self.problems.value = message(str(exc), "error").value
            self.fit_button.disabled = True
            return
        items = "".join(f"<li>{esc(line)}</li>" for line in report.lines(limit=50))
        verdict = "ready to fit" if report.ok else "fix these problems in the file, then upload it again"
        kind = "ok" if report.ok else "error"
        self.problems.value = (
            f"<div class='mmm-validation mmm-{kind}'><b>{esc(report.summary_line())}</b> "
            f"({verdict})<ul>{items}</ul></div>"
        )
        self.fit_button.disabled = not report.ok

    def _start(self, _: Any = None) -> None:
        if self.data_path is None:
            return
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-new"
        run_dir = runs.runs_dir(self.client) / run_id
        config_path = runs.datasets_dir(self.client) / f"{self.data_path.stem}.config.yaml"
        save_config(self._config(), config_path)
        start_fit(self.data_path, config_path, run_dir, self.mode.value)
        self.fit_button.disabled = True
        self.run_dir = run_dir
        self.progress.value = f"Fit started ({self.mode.value} mode): {esc(run_dir)}"
        threading.Thread(target=self._watch, args=(run_dir,), daemon=True).start()

    def _watch(self, run_dir: Path) -> None:
        while True:
            state, tail = fit_progress(run_dir)
            if state == "done":
                href = f"{self.dashboards_url}?run={markup.query_value(run_dir)}"
                opened = markup.link(href, "Open the results", target="_blank")
                self.progress.value = f"<div class='mmm-done'>Fit finished. {opened}</div>"
                return
            if state == "failed":
                self.progress.value = message(f"The fit failed. {tail}", "error").value
                return
            self.progress.value = f"<div>Fitting… <pre style='font-size:11px'>{esc(tail)}</pre></div>"
            time.sleep(POLL_SECONDS)

    def view(self) -> w.Widget:
        return w.VBox(
            [
                w.HTML(
                    f"<div style='color:#666'>Client <b>{esc(self.client)}</b>. Upload weekly (or daily) "
                    "data: one row per period, a column per media spend, the KPI, optional controls. "
                    f"{esc(upload_limit_text())}</div>"
                ),
                self.upload,
                self.status,
                self.mapping,
                self.problems,
                self.mode,
                self.fit_button,
                self.progress,
            ],
            layout=w.Layout(gap="10px", padding="8px"),
        )


def new_model_view(client: str | None = None) -> w.Widget:
    try:
        return NewModel(client or access.default_client()).view()
    except MMMError as exc:
        return message(str(exc), "error")
