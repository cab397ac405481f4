"""Reading a pickle that someone uploaded without letting it run code.

Meridian's ``save_mmm`` writes a pickle, and a pickle can name any callable (``os.system``) for the loader to call.
:func:`load` resolves only classes and functions from the modules a saved Meridian model is made of; anything else
is refused by name before it is imported, so the pickle's payload never runs. Standard library only: the Meridian
converter imports this from its own environment (``.venv-meridian``).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import IO, Any

# top-level packages a Meridian model's pickle may name (the list), and the harmless builtins containers use
ALLOWED_PACKAGES = (
    "meridian",
    "numpy",
    "pandas",
    "xarray",
    "arviz",
    "tensorflow",
    "tensorflow_probability",
    "tfp_nightly",
    "jax",
    "keras",
    "tf_keras",
)
ALLOWED_BUILTINS = frozenset(
    {
        ("builtins", name)
        for name in ("dict", "list", "tuple", "set", "frozenset", "bytearray", "bytes", "complex", "slice", "range")
    }
    | {("collections", "OrderedDict"), ("collections", "defaultdict"), ("datetime", "datetime")}
    | {("datetime", "date"), ("datetime", "timedelta"), ("datetime", "timezone"), ("copyreg", "_reconstructor")}
    | {("builtins", "object"), ("enum", "Enum"), ("functools", "partial")}
)

# joblib's records of the numpy arrays it writes after the pickle (data only: they build arrays, call nothing else)
JOBLIB_WRAPPERS = frozenset({("joblib.numpy_pickle", "NumpyArrayWrapper"), ("joblib.numpy_pickle", "ArrayWrapper")})


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names something outside the allowed modules: it would run code, so it is not read."""


def allowed(module: str, name: str) -> bool:
    return module.split(".", 1)[0] in ALLOWED_PACKAGES or (module, name) in ALLOWED_BUILTINS


def _refuse(module: str, name: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"the pickle asks for {module}.{name}, which a saved Meridian model never contains (it could run code)"
    )


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` resolves only what :func:`allowed` allows."""

    def find_class(self, module: str, name: str) -> Any:
        if allowed(module, name):
            return super().find_class(module, name)
        raise _refuse(module, name)


def load(source: str | Path | IO[bytes]) -> Any:
    """The object in a pickle file (or open binary stream), or :class:`UnsafePickleError` naming what it asked for."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            return RestrictedUnpickler(fh).load()
    return RestrictedUnpickler(source).load()


def loads(data: bytes) -> Any:
    return load(io.BytesIO(data))


def load_joblib(path: str | Path) -> Any:
    """A ``joblib.dump`` file (what Meridian's ``save_mmm`` writes: a pickle with numpy arrays inline), read through
    joblib's own unpickler with the same ``find_class`` check. Needs joblib (the Meridian environment has it)."""
    from joblib import numpy_pickle

    class RestrictedNumpyUnpickler(numpy_pickle.NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if allowed(module, name) or (module, name) in JOBLIB_WRAPPERS:
                return super().find_class(module, name)
            raise _refuse(module, name)

    with open(path, "rb") as fh:
        with numpy_pickle._validate_fileobject_and_memmap(fh, str(path), None) as (stream, _):
            return RestrictedNumpyUnpickler(str(path), stream, ensure_native_byte_order=True).load()
