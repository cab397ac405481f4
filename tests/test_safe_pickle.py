"""Uploaded pickles are read without running their code (mmmlib.safe_pickle, used by the Meridian converter)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mmmlib import safe_pickle


class _Payload:
    """What a malicious pickle looks like: unpickling it calls ``os.system``."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.canary}",))


def test_a_pickle_that_calls_os_system_is_refused_and_never_runs(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "saved_mmm.pkl"
    path.write_bytes(pickle.dumps({"model": _Payload(canary)}))
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"asks for (posix|os)\.system"):
        safe_pickle.load(path)
    assert not canary.exists()


def test_a_joblib_pickle_that_calls_os_system_is_refused_and_never_runs(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    canary = tmp_path / "canary"
    path = tmp_path / "saved_mmm.pkl"
    joblib.dump({"weights": np.arange(3.0), "payload": _Payload(canary)}, path)
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"system"):
        safe_pickle.load_joblib(path)
    assert not canary.exists()


def test_allowed_data_still_loads(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    data = {"beta": np.linspace(0, 1, 5), "names": ["tv", "search"], "shape": (2, 3)}
    joblib.dump(data, tmp_path / "ok.pkl")
    loaded = safe_pickle.load_joblib(tmp_path / "ok.pkl")
    np.testing.assert_array_equal(loaded["beta"], data["beta"])
    assert loaded["names"] == data["names"] and loaded["shape"] == (2, 3)
    assert safe_pickle.loads(pickle.dumps(data))["names"] == ["tv", "search"]


@pytest.mark.parametrize(
    ("module", "name"),
    [("builtins", "eval"), ("builtins", "exec"), ("subprocess", "Popen"), ("os", "system"), ("builtins", "getattr")],
)
def test_code_running_names_are_not_allowed(module: str, name: str) -> None:
    assert not safe_pickle.allowed(module, name)


class _Runstring:
    """A pickle naming a function inside an allowed package that runs code: numpy.testing's ``runstring`` execs."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple:
        from numpy.testing._private.utils import runstring

        return (runstring, (f"open({str(self.canary)!r}, 'w').close()", {}))


def test_code_running_functions_inside_allowed_packages_are_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    with pytest.raises(safe_pickle.UnsafePickleError, match="runstring"):
        safe_pickle.loads(pickle.dumps(_Runstring(canary)))
    assert not canary.exists()
    assert not safe_pickle.allowed("numpy", "memmap")  # an array whose constructor writes files
    assert not safe_pickle.allowed("pandas", "read_pickle")
    assert not safe_pickle.allowed("pandas.io.pytables", "HDFStore")  # opens files
    assert safe_pickle.allowed("numpy", "ndarray") and safe_pickle.allowed("xarray.core.dataset", "Dataset")
