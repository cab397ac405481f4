"""New model, for marketers who don't code: upload a file, map its columns, see its problems, start a fit; or
upload a model fitted elsewhere (Meridian, PyMC-Marketing) and import it.

The fit or import runs as its own process (``mmm fit`` / ``mmm import``, detached from the dashboard's kernel, as
the page's own Unix account), so it finishes when the page is closed and the kernel culled; the page only watches
its log and its run directory. An uploaded pickle is never read here: only the Meridian converter's process reads
it, through :mod:`mmmlib.safe_pickle`.
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

from mmmlib import access, markup, runs, wording
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


# saved models the page imports, by file suffix: whose they are
MODEL_SUFFIXES = {
    ".nc": "pymc-marketing",
    ".pkl": "meridian",
    ".binpb": "meridian",
    ".txtpb": "meridian",
    ".textproto": "meridian",
}
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")


def start_fit(data: Path, config: Path, run_dir: Path, mode: str) -> subprocess.Popen:
    """Launch ``mmm fit`` in a new session: it outlives this kernel (culling, closed pages)."""
    return _launch(["fit", str(data), "--config", str(config), "--out", str(run_dir), "--mode", mode], run_dir)


def start_import(model: Path, kind: str, run_dir: Path, client: str) -> subprocess.Popen:
    """Launch ``mmm import`` in a new session, as :func:`start_fit` does."""
    return _launch(["import", kind, str(model), "--out", str(run_dir), "--client", client], run_dir)


def _launch(args: list[str], run_dir: Path) -> subprocess.Popen:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(runs.RunDir(run_dir).launch_log, "w", encoding="utf-8") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "mmmlib", *args],
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
        accept = ",".join((*DATA_SUFFIXES, *MODEL_SUFFIXES))
        self.upload = w.FileUpload(accept=accept, multiple=False, description="Data or model")
        self.status = w.HTML()
        self.mapping = w.VBox()
        self.problems = w.HTML()
        self.mode = w.ToggleButtons(options=[("Quick (about 2 minutes)", "quick"), ("Full (5-10 minutes)", "full")])
        self.fit_button = w.Button(description="Start fit", button_style="primary", disabled=True)
        self.import_button = w.Button(description="Import model", button_style="primary")
        self.import_button.layout.display = "none"
        self.model_path: Path | None = None
        self.progress = w.HTML()
        self.progress.add_class("mmm-progress")
        self.data_path: Path | None = None
        self.upload.observe(self._uploaded, "value")
        self.fit_button.on_click(self._start)
        self.import_button.on_click(self._start_import)

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
        suffix = Path(name).suffix.lower()
        if suffix not in (*DATA_SUFFIXES, *MODEL_SUFFIXES):
            self.status.value = message(
                f"{name} is neither a data file ({', '.join(DATA_SUFFIXES)}) nor a saved Meridian or PyMC-Marketing "
                f"model ({', '.join(MODEL_SUFFIXES)}).",
                "error",
            ).value
            return
        target.write_bytes(bytes(item["content"]))
        if suffix in MODEL_SUFFIXES:
            self._model_uploaded(target, name, MODEL_SUFFIXES[suffix])
            return
        self.model_path = None
        self.import_button.layout.display = "none"
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

    def _model_uploaded(self, target: Path, name: str, kind: str) -> None:
        """A saved model: nothing to map or validate here; importing it reads it in its own process."""
        self.model_path, self.model_kind, self.data_path = target, kind, None
        self.mapping.children, self.problems.value = [], ""
        self.fit_button.disabled = True
        self.import_button.layout.display = None
        self.import_button.disabled = False
        who = wording.SOURCES[kind]
        self.status.value = (
            f"<b>{esc(name)}</b>: a saved {esc(who)} model. Importing it makes a run from its own posterior (no "
            "refit); its diagnostics are checked as ours are."
        )

    def _start_import(self, _: Any = None) -> None:
        if self.model_path is None:
            return
        run_dir = runs.runs_dir(self.client) / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-imported"
        start_import(self.model_path, self.model_kind, run_dir, self.client)
        self.import_button.disabled = True
        self.progress.value = f"Import started: {esc(run_dir)}"
        threading.Thread(target=self._watch, args=(run_dir, "import"), daemon=True).start()

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
        threading.Thread(target=self._watch, args=(run_dir, "fit"), daemon=True).start()

    def _watch(self, run_dir: Path, what: str) -> None:
        doing = {"fit": "Fitting", "import": "Importing"}[what]
        while True:
            state, tail = fit_progress(run_dir)
            if state == "done":
                href = f"{self.dashboards_url}?run={markup.query_value(run_dir)}"
                opened = markup.link(href, "Open the results", target="_blank")
                self.progress.value = f"<div class='mmm-done'>{what.capitalize()} finished. {opened}</div>"
                return
            if state == "failed":
                self.progress.value = message(f"The {what} failed. {tail}", "error").value
                return
            self.progress.value = f"<div>{doing}… <pre style='font-size:11px'>{esc(tail)}</pre></div>"
            time.sleep(POLL_SECONDS)

    def view(self) -> w.Widget:
        return w.VBox(
            [
                w.HTML(
                    f"<div style='color:#666'>Client <b>{esc(self.client)}</b>. Upload weekly (or daily) "
                    "data: one row per period, a column per media spend, the KPI, optional controls; or a model "
                    "saved by Meridian (.binpb, .txtpb, saved_mmm.pkl) or PyMC-Marketing (MMM.save's .nc). "
                    f"{esc(upload_limit_text())}</div>"
                ),
                self.upload,
                self.status,
                self.mapping,
                self.problems,
                self.mode,
                self.fit_button,
                self.import_button,
                self.progress,
            ],
            layout=w.Layout(gap="10px", padding="8px"),
        )


def new_model_view(client: str | None = None) -> w.Widget:
    try:
        return NewModel(client or access.default_client()).view()
    except MMMError as exc:
        return message(str(exc), "error")
