"""Reading a pickle that someone uploaded without letting it run code.

Meridian's ``save_mmm`` writes a pickle, and a pickle can name any callable (``os.system``) for the loader to call.
:func:`load` resolves only classes and functions from the modules a saved Meridian model is made of; anything else
is refused by name before it is called, so the pickle's payload never runs. Within those packages only data classes
and a few named reconstructors pass (a whole package would let numpy.testing's ``runstring`` through). Standard
library, numpy and joblib only: the Meridian converter loads this file in its own environment (``.venv-meridian``).
"""

from __future__ import annotations

import importlib
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
    | {("builtins", "object")}
)

# joblib's records of the numpy arrays it writes after the pickle (data only: they build arrays, call nothing else)
JOBLIB_WRAPPERS = frozenset({("joblib.numpy_pickle", "NumpyArrayWrapper"), ("joblib.numpy_pickle", "ArrayWrapper")})


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names something outside the allowed modules: it would run code, so it is not read."""


# Functions (and two odd classes) a saved Meridian model's pickle legitimately calls to rebuild arrays, indexes and
# distributions. Everything else it names must be a class of a data family below: a package-wide rule
# alone would also let through callables such as numpy.testing's ``runstring`` (an ``exec``), ``pandas.read_pickle``
# or file writers in tensorflow.io, so :func:`allowed` narrows it to these.
RECONSTRUCTORS = frozenset(
    {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("jax._src.array", "_reconstruct_array"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
        ("pandas.core.indexes.period", "_new_PeriodIndex"),
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.internals.blocks", "new_block"),
        ("pandas.core.internals.blocks", "_unpickle_block"),
        ("tensorflow_probability.substrates.jax.distributions.transformed_distribution", "_default_kwargs_split_fn"),
        ("tensorflow_probability.python.distributions.transformed_distribution", "_default_kwargs_split_fn"),
        # a model fitted with MERIDIAN_BACKEND=tensorflow: tensors are rebuilt from numpy arrays, dtypes from enums
        ("tensorflow.python.framework.ops", "convert_to_tensor"),
        ("tensorflow.python.framework.dtypes", "as_dtype"),
        ("tensorflow.python.framework.ops", "name_scope_v2"),  # a class holding a scope name
    }
)
# modules whose classes are plain data (arrays, indexes, datasets, distributions, Meridian's own containers)
DATA_CLASS_MODULES = (
    "meridian.",
    "numpy",
    "pandas.core.indexes.",
    "pandas.core.arrays.",
    "pandas.core.frame",
    "pandas.core.series",
    "pandas.core.internals.",
    "pandas._libs.",
    "xarray.core.",
    "arviz.data.",
    "jax._src.array",
    "tensorflow_probability.substrates.jax.distributions.",
    "tensorflow_probability.substrates.jax.bijectors.",
    "tensorflow_probability.python.distributions.",
    "tensorflow_probability.python.bijectors.",
    "tensorflow_probability.python.internal.backend.",
    "tensorflow.python.framework.tensor_shape",
    "tensorflow.python.framework.dtypes",
)


def is_data_class(module: str, name: str) -> bool:
    """Whether ``module.name`` is a class from a data family (importing the library module runs library code only)."""
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception:  # an unknown name is simply not allowed
        return False
    if not isinstance(obj, type):
        return False
    home = getattr(obj, "__module__", "") or ""
    if home.startswith("numpy") or module.startswith("numpy"):
        import numpy as np

        if issubclass(obj, np.memmap):  # an ndarray whose constructor creates or truncates files
            return False
        return issubclass(obj, (np.ndarray, np.dtype, np.generic)) or isinstance(obj, type(np.dtype))
    return any(home.startswith(prefix) for prefix in DATA_CLASS_MODULES)


def allowed(module: str, name: str) -> bool:
    """A harmless builtin container, or, inside :data:`ALLOWED_PACKAGES`, a reconstructor of :data:`RECONSTRUCTORS`
    or a data class (:func:`is_data_class`): the package alone is not enough, numpy.testing's ``runstring`` execs."""
    if (module, name) in ALLOWED_BUILTINS:
        return True
    if module.split(".", 1)[0] not in ALLOWED_PACKAGES:
        return False
    return (module, name) in RECONSTRUCTORS or is_data_class(module, name)


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
