"""Dask schedulers are used only over TLS or on this machine: Dask runs the pickles it is sent, both ways.

No cluster is needed for the refusals (they happen before any connection); tests/test_schedule.py runs a real
fit on a LocalCluster.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mmmlib.cli import main
from mmmlib.errors import UsageError
from mmmlib.executors import check_dask_address, is_safe_dask_address

REMOTE = "tcp://192.0.2.7:8786"  # TEST-NET-1: never routed, so a connection attempt would hang, not succeed


@pytest.mark.parametrize(
    ("address", "safe"),
    [
        ("tls://scheduler.example.com:8786", True),
        ("wss://scheduler.example.com:8787", True),
        ("inproc://10.0.0.1/1234/1", True),
        ("tcp://127.0.0.1:8786", True),
        ("127.0.0.2:8786", True),
        ("tcp://[::1]:8786", True),
        ("tcp://localhost:8786", True),
        (REMOTE, False),
        ("192.0.2.7:8786", False),  # no scheme is Dask's tcp
        ("ws://192.0.2.7:8787", False),
        ("ucx://192.0.2.7:13337", False),
        ("tcp://127.0.0.1.evil.example:8786", False),
        ("tcp://localhost.evil.example:8786", False),
        ("tcp://0.0.0.0:8786", False),
        ("tcp://[::1:8786", False),  # unparsable
    ],
)
def test_only_tls_or_loopback_schedulers_are_safe(address: str, safe: bool) -> None:
    assert is_safe_dask_address(address) is safe


def _schedules(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text("schedules: []\n")
    return path


def test_mmm_batch_refuses_a_plain_tcp_scheduler_off_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("MMM_DASK_INSECURE", raising=False)
    schedules = _schedules(tmp_path)
    started = time.time()
    assert main(["batch", str(schedules), "--dask", REMOTE]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmm: Refusing the Dask scheduler {REMOTE}:") and err.count("\n") == 1, err
    assert "tls://" in err and "--dask-insecure" in err
    monkeypatch.setenv("MMM_DASK_SCHEDULER", REMOTE)  # the same from the environment
    assert main(["batch", str(schedules)]) == 2
    assert "Refusing the Dask scheduler" in capsys.readouterr().err
    assert time.time() - started < 20  # refused before any connection attempt


def test_the_explicit_opt_in_lets_a_trusted_network_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMM_DASK_INSECURE", raising=False)
    with pytest.raises(UsageError):
        check_dask_address(REMOTE)
    check_dask_address(REMOTE, insecure=True)  # mmm batch --dask-insecure
    monkeypatch.setenv("MMM_DASK_INSECURE", "1")
    check_dask_address(REMOTE)


def _candidate_workers_setting(_: object) -> str | None:
    return os.environ.get("MMM_FIT_WORKERS")


def test_fits_side_by_side_share_the_cores_for_their_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmmlib.executors import LocalExecutor

    monkeypatch.delenv("MMM_FIT_WORKERS", raising=False)
    seen = LocalExecutor(workers=2).map(_candidate_workers_setting, [1, 2])
    assert seen == [str(max(1, (os.cpu_count() or 2) // 4))] * 2
    monkeypatch.setenv("MMM_FIT_WORKERS", "2")  # an explicit setting is kept
    assert LocalExecutor(workers=2).map(_candidate_workers_setting, [1, 2]) == ["2", "2"]
