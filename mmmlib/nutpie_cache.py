"""nutpie's numba-compiled model, with its C callbacks kept in PyTensor's numba disk cache.

nutpie compiles two C callbacks per model (log-density with gradient, and the expansion of a draw into every stored
variable) around the functions PyTensor generates. PyTensor caches its own functions on disk, but nutpie's callbacks
capture the model's data arrays as globals, which numba refuses to cache (nutpie silences that warning), so every
process retypes and recompiles the whole chain: 11-35 s per model structure on the 2-core machine, most of a warm
fit (docs/speed.md). Here the callbacks read the data through the pointer block nutpie passes them at run time, so
they capture nothing but PyTensor's cached functions, and are stored under a key made of those functions' own cache
keys and the shapes they are called with (the approach of nutpie pull request #334). A model whose PyTensor functions
cannot be cached (no key) is compiled by nutpie as before. The functions themselves (derived from the model and
rewritten by PyTensor) come from :mod:`mmmlib.graph_cache` when a model with the same graph was compiled before.

:func:`installed` puts :func:`compile_pymc_model` in nutpie's place while PyMC samples (unless
``MMM_NUTPIE_CACHE=0``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

log = logging.getLogger("mmmlib.nutpie_cache")

VERSION = "1"  # part of every key: bump when the generated source changes
SWITCH = "MMM_NUTPIE_CACHE"  # "0": nutpie compiles every model itself (the benchmark's comparison; a way out)


def enabled() -> bool:
    """Whether fits use the cached compile (``$MMM_NUTPIE_CACHE`` is not ``0``)."""
    import os

    return os.environ.get(SWITCH, "1") != "0"


Layout = list[tuple[int, int, np.dtype]]  # per array a callback reads: its offset in the pointer block, ndim, dtype


def _layout(arrays: list[np.ndarray]) -> tuple[dict[int, int], int]:
    """Each array's offset (by ``id``) in the pointer block (address, size, shape… per array), and the block's size."""
    offsets, at = {}, 0
    for a in arrays:
        offsets[id(a)] = at
        at += 2 + a.ndim
    return offsets, at


def _pointer_block(arrays: list[np.ndarray]) -> np.ndarray:
    """Each array's address, size and shape, in :func:`_layout`'s order: what nutpie hands both callbacks."""
    words: list[int] = []
    for a in arrays:
        words += [a.ctypes.data, a.size, *a.shape]
    return np.asarray(words or [0], dtype=np.uint64)


def _source(kind: str, n_dim: int, n_expanded: int, layout: Layout, words: int) -> str:
    """The callback's source: ``kind`` is ``logp`` or ``expand``; ``layout`` the arrays it passes to PyTensor's
    function, read from a pointer block of ``words`` words."""
    body = [f"_ud = numba.carray(user_data_, ({max(words, 1)},), np.uint64)"] if layout else []
    for i, (at, ndim, dtype) in enumerate(layout):
        dims = [f"np.intp(_ud[{at + 2 + d}])" for d in range(ndim)]
        shape = "(" + ", ".join(dims) + ("," if ndim == 1 else "") + ")"
        body.append(
            f"s{i} = numba.carray(address_as_void_pointer(_ud[{at}]), np.intp(_ud[{at + 1}]), "
            f"np.{dtype.name}).reshape({shape})"
        )
    args = "".join(f", s{i}" for i in range(len(layout)))
    if kind == "logp":
        head = [
            "def nutpie_logp(dim, x_, out_, logp_, user_data_):",
            f"    if dim != {n_dim}:",
            "        return -1",
        ]
        work = [
            f"x = numba.carray(x_, ({n_dim},))",
            f"out = numba.carray(out_, ({n_dim},))",
            "logp = numba.carray(logp_, ())",
            *body,
            f"logp_val, grad = inner(x{args})",
            "logp[()] = logp_val",
            "out[...] = grad",
            "if not np.all(np.isfinite(out)):",
            "    return 3",
            "if not np.isfinite(logp_val):",
            "    return 4",
        ]
        failed = 1
    else:
        head = [
            "def nutpie_expand(dim, expanded, x_, out_, user_data_):",
            f"    if dim != {n_dim}:",
            "        return -1",
            f"    if expanded != {n_expanded}:",
            "        return -1",
        ]
        work = [
            f"x = numba.carray(x_, ({n_dim},))",
            f"out = numba.carray(out_, ({n_expanded},))",
            *body,
            f"(values,) = inner(x{args})",
            "out[...] = values",
        ]
        failed = -2
    lines = [*head, "    try:", *("        " + w for w in work), "    except Exception:", f"        return {failed}"]
    return "\n".join([*lines, "    return 0", ""])


def _inner_key(fn: Any) -> str | None:
    """PyTensor's cache key of a compiled function's numba program, None when PyTensor could not cache it."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    py_func = getattr(fn, "py_func", None)
    return CACHED_SRC_FUNCTIONS.get(py_func) if py_func is not None else None


def _callback(kind: str, inner: Any, key: str, n_dim: int, n_expanded: int, layout: Layout, words: int) -> Any:
    """One C callback, compiled or loaded from the cache under PyTensor's key of ``inner`` and its own source."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    src = _source(kind, n_dim, n_expanded, layout, words)
    digest = hashlib.sha256(f"{VERSION}|{kind}|{key}|{src}".encode()).hexdigest()
    env = {
        "__name__": __name__,  # a callback loaded from the cache rebuilds its environment from this module
        "numba": numba,
        "np": np,
        "inner": inner,
        "address_as_void_pointer": address_as_void_pointer,
    }
    name = f"nutpie_{kind}"
    py_func = compile_numba_function_src(src, name, env, cache_key=f"nutpie-{digest}")
    u64, f64p = numba.types.uint64, numba.types.CPointer(numba.types.double)
    if kind == "logp":
        sig = numba.types.int64(u64, f64p, f64p, f64p, numba.types.voidptr)
    else:
        sig = numba.types.int64(u64, u64, f64p, f64p, numba.types.voidptr)
    return numba.cfunc(sig, cache=True)(py_func)


def compile_pymc_model(model: Any, **kwargs: Any) -> Any:
    """nutpie's ``compile_pymc_model`` with cached callbacks (numba backend, nothing frozen); anything else, a model
    PyTensor could not cache, or a failure here goes to nutpie's own (a cache is never a reason for a fit to fail)."""
    import nutpie.compile_pymc as npc

    original = npc.compile_pymc_model
    backend = str(kwargs.get("backend") or "numba").lower()
    plain = {"backend", "var_names", "initial_points", "jitter_rvs", "default_initialization_strategy"}
    if backend != "numba" or kwargs.get("freeze_model") or set(kwargs) - plain:
        return original(model, **kwargs)
    try:
        return _compile(model, **kwargs)
    except Exception as exc:
        log.warning("cached compile failed (%s); nutpie compiles the model itself", exc)
        return original(model, **kwargs)


def _compile(model: Any, **kwargs: Any) -> Any:
    import nutpie.compile_pymc as npc

    from mmmlib import graph_cache

    jitter = kwargs.get("jitter_rvs")
    strategy = kwargs.get("default_initialization_strategy", "support_point")
    if strategy == "support_point" and jitter is None:
        jitter = set(model.free_RVs)
    initial_point_fn = npc._wrap_with_lock(
        graph_cache.initial_point_function(
            model,
            overrides=kwargs.get("initial_points"),
            default_strategy=strategy,
            jitter_rvs=jitter,
            return_transformed=True,
        )
    )
    n_dim, n_expanded, logp_pt, expand_pt, initial_fn, shape_info, renamed = graph_cache.make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=initial_point_fn,
        var_names=kwargs.get("var_names"),
    )
    logp_key, expand_key = _inner_key(logp_pt.vm.jit_fn), _inner_key(expand_pt.vm.jit_fn)
    if logp_key is None or expand_key is None:
        log.info("PyTensor could not cache this model's functions; nutpie compiles it")
        return npc.compile_pymc_model(model, **kwargs)

    shared_data: dict[str, np.ndarray] = {}
    keys: dict[Any, str] = {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var in keys:
            continue
        keys[var] = f"s{len(keys)}"
        value = np.array(var.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_data[keys[var]] = value
    arrays = list(shared_data.values())
    offsets, words = _layout(arrays)

    def layout(fn: Any) -> Layout:
        return [(offsets[id(a)], a.ndim, a.dtype) for a in (shared_data[keys[v]] for v in fn.get_shared())]

    logp_cb = _callback("logp", logp_pt.vm.jit_fn, logp_key, n_dim, n_expanded, layout(logp_pt), words)
    expand_cb = _callback("expand", expand_pt.vm.jit_fn, expand_key, n_dim, n_expanded, layout(expand_pt), words)
    dims, coords = npc._prepare_dims_and_coords(model, shape_info, renamed)
    return npc.CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_cb,
        compiled_expand_func=expand_cb,
        initial_point_func=initial_fn,
        shared_data=shared_data,
        shared_var_keys=keys,
        user_data=_pointer_block(arrays),  # nutpie's with_data (new data, same model) is not supported here
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
        reparameterized_names=renamed,
    )


# PyTensor compiles its numba code with LLVM's fast-math flags by default. A function compiled in the process and the
# same function loaded from the disk cache are then optimised differently and round differently; the sampler grows
# that last bit into a different chain, so the first fit of a new shape (compiled cold) gave other numbers than every
# later fit of it with the same seed (docs/benchmarks.md, Reproducibility). Strict IEEE arithmetic makes both the
# same; on the sample it cost no measurable sampling time (29-32 s per fit either way, 2026-12-04).
NUMBA_FASTMATH = False


def assign_step_methods(
    pymc_assign: Any, model: Any, step: Any = None, methods: Any = None
) -> tuple[list[Any], dict[Any, list[Any]]]:
    """PyMC's step assignment (``pymc_assign``) for a model handed to nutpie: every variable to NUTS when none is
    given a step and all are continuous, without the log density and gradient PyMC builds to find that out (0.7 s per
    fit on the sample; nutpie builds both again for itself, and a variable without a gradient fails there); anything
    else as PyMC does."""
    from pymc.step_methods import NUTS
    from pytensor.tensor.type import continuous_dtypes

    if step is None and all(v.dtype in continuous_dtypes for v in model.value_vars):
        return [], {NUTS: list(model.value_vars)}
    return pymc_assign(model, step, methods=methods)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """:func:`compile_pymc_model` in nutpie's place while PyMC compiles a model for it, with PyTensor's numba code
    compiled without fast-math (:data:`NUMBA_FASTMATH`) whether or not the cache is switched on, and
    :func:`assign_step_methods` in PyMC's."""
    import nutpie
    import pymc.sampling.mcmc as mcmc
    import pytensor

    pymc_assign = mcmc.assign_step_methods
    mcmc.assign_step_methods = functools.partial(assign_step_methods, pymc_assign)
    try:
        with pytensor.config.change_flags(numba__fastmath=NUMBA_FASTMATH):
            if not enabled():
                yield
                return
            original = nutpie.compile_pymc_model
            nutpie.compile_pymc_model = compile_pymc_model
            try:
                yield
            finally:
                nutpie.compile_pymc_model = original
    finally:
        mcmc.assign_step_methods = pymc_assign
