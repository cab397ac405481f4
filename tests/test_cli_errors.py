"""The command line's catch-all: an unexpected error is one sentence naming where it was raised (not cli.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmmlib import cli, runs
from tests import fakes


def _one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_unexpected_error_names_the_module_that_raised_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a run folder whose summary passes load_summary but lacks "run": runs.read_run_info raises KeyError
    (tmp_path / "clients" / "acme" / "runs" / "r1").mkdir(parents=True)
    monkeypatch.setenv("MMM_HOME", str(tmp_path))
    monkeypatch.setattr(runs, "load_summary", lambda path: {"status": "ok"})
    assert cli.main(["runs", "--client", "acme"]) == 1
    line = _one_sentence(capsys.readouterr().err)
    assert line.startswith("mmm: unexpected error (runs.py:") and "KeyError: 'run'" in line, line
    assert "cli.py" not in line and line.endswith("Please report it."), line


def test_a_command_helper_in_another_module_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_cmd_runs", lambda args: fakes.raise_key_error("tv"))
    assert cli.main(["runs"]) == 1
    line = _one_sentence(capsys.readouterr().err)
    assert line.startswith("mmm: unexpected error (fakes.py:") and "KeyError: 'tv'" in line, line
    assert "cli.py" not in line, line


def test_an_error_raised_inside_a_library_also_names_the_mmmlib_line_that_called_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # pandas raises the KeyError; the sentence names pandas' frame and the runs.py line that indexed it
    (tmp_path / "clients" / "acme" / "runs" / "r1").mkdir(parents=True)
    monkeypatch.setenv("MMM_HOME", str(tmp_path))
    monkeypatch.setattr(runs, "load_summary", lambda path: pd.Series({"status": "ok"}))
    assert cli.main(["runs", "--client", "acme"]) == 1
    line = _one_sentence(capsys.readouterr().err)
    assert "unexpected error (" in line and " via runs.py:" in line and "KeyError" in line, line
    assert "cli.py" not in line, line
