"""nutpie's PyTensor functions, derived and rewritten once per model graph and kept on disk.

Before nutpie samples a model, it derives the log density and its gradient from the PyMC model and PyTensor rewrites
that graph (canonicalise, stabilise, fuse, in-place) before linking it to numba: 2.2 s per candidate on the sample,
every process, though the numba code itself comes from PyTensor's disk cache (0.45 s loaded from here). With the
data as shared variables (:mod:`mmmlib.graph_data`) the rewritten graph of a model depends on its structure, priors
and parameter shapes, not on the data's values or length, so it is stored under a key describing the PyMC model's
graph exactly: every operation with its properties, every constant's bytes, every variable's type and name, the
transforms, the parameters' shapes, the libraries' versions. A new process fitting a model with the same key (the
same data, a week more, other values) loads the rewritten functions, hands them the model's current data and links
them, instead of deriving and rewriting again. Anything that cannot be described exactly (a closure, an object of
unknown kind) gives no key, and the model is compiled as before; so does a model with its data frozen into the graph
as constants (what the pymc and numpyro samplers are given): its key would change with every dataset.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import pickle
import types
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("mmmlib.graph_cache")

VERSION = "1"  # part of every key: bump when what is stored or how it is described changes
MAX_CONSTANT_BYTES = 1 << 20  # a model holding more than this in constants is not cached (frozen data)
_DEPTH = 12  # how deep an object's description may nest before it counts as not describable


class NotDescribable(Exception):
    """An object in the model's graph that :func:`describe` cannot turn into an exact description."""


def _name(kind: Any) -> str:
    qual = f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"
    if "<locals>" in qual or "<lambda>" in qual:
        raise NotDescribable(qual)
    return qual


def describe(obj: Any, depth: int = 0) -> Any:
    """An exact, JSON-serialisable description of ``obj`` (an op, a type, a transform, a constant's data): what
    makes two of them behave the same. Raises :class:`NotDescribable` where that cannot be told."""
    if depth > _DEPTH:
        raise NotDescribable("nested too deep")
    deeper = depth + 1
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return ["float", repr(obj)]
    if isinstance(obj, bytes):
        return ["bytes", hashlib.sha256(obj).hexdigest()]
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise NotDescribable("object array")
        digest = hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()
        return ["array", obj.dtype.str, list(obj.shape), digest]
    if isinstance(obj, np.generic):
        return ["scalar", obj.dtype.str, repr(obj.item())]
    if isinstance(obj, np.dtype):
        return ["dtype", obj.str]
    if isinstance(obj, tuple | list):
        return [type(obj).__name__, *(describe(x, deeper) for x in obj)]
    if isinstance(obj, dict):
        items = [[describe(k, deeper), describe(v, deeper)] for k, v in obj.items()]
        return ["dict", *sorted(items, key=json.dumps)]
    if isinstance(obj, set | frozenset):
        return ["set", *sorted((describe(x, deeper) for x in obj), key=json.dumps)]
    if isinstance(obj, slice):
        return ["slice", describe(obj.start, deeper), describe(obj.stop, deeper), describe(obj.step, deeper)]
    if isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType | np.ufunc):
        return ["named", _name(obj)]
    if _is_frozen_graph(obj):  # an op's inner graph (a zero-sum normal's, a scan's)
        return _frozen_graph(obj, deeper)
    props = getattr(type(obj), "__props__", None)
    if isinstance(props, tuple):  # PyTensor's ops and types: equal when these are equal
        return [_name(type(obj)), {p: describe(getattr(obj, p), deeper) for p in props}]
    state: dict[str, Any] = {}
    for kind in type(obj).__mro__:
        for slot in getattr(kind, "__slots__", ()):
            if hasattr(obj, slot):
                state[slot] = getattr(obj, slot)
    state.update(getattr(obj, "__dict__", {}))
    if not state and not hasattr(obj, "__dict__"):
        raise NotDescribable(_name(type(obj)))  # state kept where Python cannot see it (an extension type)
    return [_name(type(obj)), {k: describe(v, deeper) for k, v in sorted(state.items())}]


def _is_frozen_graph(obj: Any) -> bool:
    from pytensor.graph.fg import FrozenFunctionGraph

    return isinstance(obj, FrozenFunctionGraph)


def _frozen_graph(graph: Any, depth: int) -> list[Any]:
    """An op's inner graph by its structure: inputs' types, then each node's op, inputs and output types in the
    graph's fixed order, constants by value, the outputs. Its variables are interned objects holding closures, which
    a description by attributes cannot read."""
    from pytensor.graph.basic import Constant

    ids: dict[Any, int] = {}
    entries: list[Any] = []
    for v in graph.inputs:
        ids[v] = len(ids)
        entries.append(["input", describe(v.type, depth)])

    def variable(v: Any) -> int:
        if v not in ids:
            if not isinstance(v, Constant):
                raise NotDescribable("a variable of an inner graph that is neither its input nor a constant")
            ids[v] = len(ids)
            entries.append(["constant", describe(v.type, depth), describe(v.data, depth)])
        return ids[v]

    for node in graph.toposort():
        inputs = [variable(v) for v in node.inputs]
        entries.append(["apply", describe(node.op, depth), inputs, [describe(o.type, depth) for o in node.outputs]])
        for o in node.outputs:
            ids[o] = len(ids)
    return ["frozen_graph", entries, [variable(v) for v in graph.outputs]]


def _outputs(model: Any) -> list[Any]:
    """Every variable of ``model`` whose graph the sampler's functions are derived from."""
    return [
        *model.free_RVs,
        *model.observed_RVs,
        *model.deterministics,
        *model.potentials,
        *model.rvs_to_values.values(),
    ]


def shared_inputs(model: Any) -> list[Any]:
    """The model's shared variables (its data) in an order fixed by its graph: how a stored function's data inputs
    are matched with a new model's."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    return [v for v in ancestors(_outputs(model)) if isinstance(v, SharedVariable)]


def model_key(model: Any, shapes: dict[str, tuple[int, ...]], **settings: Any) -> str | None:
    """The key of ``model``'s sampler functions compiled with ``settings``, or None when the model cannot be
    described exactly or holds more than :data:`MAX_CONSTANT_BYTES` in constants."""
    graph = description(model, **settings)
    return None if graph is None else _key(graph, shapes)


def _key(graph: str, shapes: dict[str, tuple[int, ...]]) -> str:
    fixed = [[k, [int(n) for n in v]] for k, v in shapes.items()]
    return hashlib.sha256(f"{graph}|{json.dumps(fixed, separators=(',', ':'))}".encode()).hexdigest()


def description(model: Any, **settings: Any) -> str | None:
    """``model``'s graph described exactly (JSON text; ``settings``, what it is compiled with, included), or None when
    it cannot be described exactly or holds more than :data:`MAX_CONSTANT_BYTES` in constants."""
    import nutpie
    import pymc
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort

    outputs = _outputs(model)
    ids: dict[Any, int] = {}
    entries: list[Any] = []
    constant_bytes = 0

    def variable(v: Any) -> int:
        nonlocal constant_bytes
        if v not in ids:
            if isinstance(v, Constant):
                constant_bytes += getattr(v.data, "nbytes", 0)
                entries.append(["constant", describe(v.type), describe(v.data)])
            elif isinstance(v, SharedVariable):  # the data: its value is an input of the compiled code
                entries.append(["shared", describe(v.type), v.name])
            else:
                entries.append(["input", describe(v.type), v.name])
            ids[v] = len(ids)
        return ids[v]

    try:
        for node in toposort(outputs):
            inputs = [variable(v) for v in node.inputs]
            entries.append(["apply", describe(node.op), inputs, [[describe(o.type), o.name] for o in node.outputs]])
            for o in node.outputs:
                ids[o] = len(ids)
        for v in outputs:
            variable(v)
        roles = {
            "free": [ids[v] for v in model.free_RVs],
            "observed": [ids[v] for v in model.observed_RVs],
            "deterministic": [ids[v] for v in model.deterministics],
            "potential": [ids[v] for v in model.potentials],
            "values": [[ids[rv], ids[value]] for rv, value in model.rvs_to_values.items()],
            "transforms": [[ids[rv], describe(t)] for rv, t in model.rvs_to_transforms.items()],
        }
        compiled_with = describe(settings)
    except NotDescribable as exc:
        log.info("model not cached: %s cannot be described exactly", exc)
        return None
    if not any(_is_data(v) for v in ids) or constant_bytes > MAX_CONSTANT_BYTES:
        log.info("model not cached: its data are frozen into the graph (%d bytes of constants)", constant_bytes)
        return None
    config = pytensor.config
    head = {
        "version": VERSION,
        "libraries": [pytensor.__version__, pymc.__version__, nutpie.__version__],
        "config": [config.floatX, config.optimizer_including, config.optimizer_excluding, config.optimizer_requiring],
        "check_bounds": bool(model.check_bounds),
        "settings": compiled_with,
    }
    return json.dumps([head, roles, entries], separators=(",", ":"))


def _is_data(v: Any) -> bool:
    """Whether ``v`` is a shared variable holding data (not a random generator's state)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.tensor.type import TensorType

    return isinstance(v, SharedVariable) and isinstance(v.type, TensorType)


def directory() -> Path:
    """Where the rewritten functions are kept: beside PyTensor's own compiled code (one cache per Unix account)."""
    import pytensor

    return Path(pytensor.config.compiledir) / "mmmlib_graphs"


def make_functions(model: Any, **kwargs: Any) -> tuple[Any, ...]:
    """nutpie's ``_make_functions(model, **kwargs)`` (keyword arguments as nutpie passes them), the rewritten
    functions loaded from :func:`directory` when the model's key is there, derived and stored otherwise."""
    import nutpie.compile_pymc as npc

    key, shapes = None, None
    try:
        settings = {k: v for k, v in kwargs.items() if k != "pymc_initial_point_fn"}
        settings["var_names"] = None if kwargs.get("var_names") is None else list(kwargs["var_names"])
        graph = description(model, **settings)
        if graph is not None:
            shapes = variable_shapes(model, graph)
            # the sampler's variables' shapes are part of the key; the stored ones' (deterministics over the weeks)
            # are not: the same graph stores a week more, and their shapes are the current data's (_load)
            values = [model.rvs_to_values[rv].name for rv in model.free_RVs]
            key = _key(graph, {name: shapes[name] for name in values})
    except Exception as exc:  # describing is an optimisation: never a reason for a fit to fail
        log.warning("model key failed (%s); its functions are derived anew", exc)
    if key is not None and shapes is not None:
        loaded = _load(key, model, shapes, kwargs["pymc_initial_point_fn"])
        if loaded is not None:
            return loaded
    made = npc._make_functions(model, **kwargs)
    if key is not None:
        _store(key, model, made)
    return made


def data_signature(model: Any) -> list[Any]:
    """What the shapes of ``model``'s variables can depend on besides its graph: every shared input's type and
    array shape, and the values of the integer ones (the dimensions' lengths, index arrays)."""
    from pytensor.tensor.type import TensorType

    signature: list[Any] = []
    for v in shared_inputs(model):
        if not isinstance(v.type, TensorType):  # a random generator's state
            signature.append(["other", _name(type(v.type))])
            continue
        value = np.asarray(v.get_value(borrow=True))
        entry = [value.dtype.str, list(value.shape)]
        if value.dtype.kind in "biu":
            entry.append(hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest())
        signature.append(entry)
    return signature


def variable_shapes(model: Any, graph: str) -> dict[str, tuple[int, ...]]:
    """nutpie's ``_compute_shapes(model)`` (every variable's shape for the model's current data: a PyTensor function
    compiled for the purpose, 0.35 s on the sample), kept beside the functions under the graph ``graph`` and the
    :func:`data_signature`, so a later fit of the same graph on data of the same shape reads them."""
    import nutpie.compile_pymc as npc

    signature = json.dumps(data_signature(model), separators=(",", ":"))
    path = directory() / f"{hashlib.sha256(f'{graph}|{signature}'.encode()).hexdigest()}.shapes.json"
    try:
        stored = json.loads(path.read_text())
        return {name: tuple(int(n) for n in shape) for name, shape in stored.items()}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("stored shapes of this model unreadable (%s); computed anew", exc)
    shapes = {name: tuple(int(n) for n in shape) for name, shape in npc._compute_shapes(model).items()}
    _write(path, json.dumps({name: list(shape) for name, shape in shapes.items()}).encode())
    return shapes


def _write(path: Path, blob: bytes) -> None:
    """``blob`` at ``path`` whole or not at all (:func:`mmmlib.safe_fs.write_bytes`: a reader never sees half a
    file); a failure is only logged."""
    from mmmlib import safe_fs

    try:
        safe_fs.write_bytes(path, blob)
    except OSError as exc:
        log.warning("could not store %s (%s)", path.name, exc)


def _store(key: str, model: Any, made: tuple[Any, ...]) -> None:
    n_dim, _, logp_fn, expand_fn, _, shape_info, renamed = made
    maps = _data_maps(model, (logp_fn, expand_fn))
    if maps is None:
        return
    names = list(shape_info[0])
    blob = pickle.dumps(
        {"functions": (logp_fn, expand_fn), "maps": maps, "made": (n_dim, names, len(model.free_RVs), renamed)},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    _write(directory() / f"{key}.pkl", blob)


def _load(key: str, model: Any, shapes: dict[str, Any], pymc_initial_point_fn: Any) -> tuple[Any, ...] | None:
    """The stored functions of ``key`` reading ``model``'s data, or None (not stored, unreadable, or not matching)."""
    import nutpie.compile_pymc as npc

    path = directory() / f"{key}.pkl"
    if not path.exists():
        return None
    try:
        stored = pickle.loads(path.read_bytes())
        logp_fn, expand_fn = stored["functions"]
        _hand_data(model, (logp_fn, expand_fn), stored["maps"])
        n_dim, names, n_free, renamed = stored["made"]
        sizes = [tuple(int(n) for n in shapes[name]) for name in names]  # as nutpie lays out a draw, for these data
        if sum(math.prod(size) for size in sizes[:n_free]) != n_dim:
            raise ValueError("the sampler's variables have other sizes")
    except Exception as exc:
        log.warning("stored functions of this model unusable (%s); derived anew", exc)
        return None
    slices, at = [], 0
    for size in sizes:
        slices.append(slice(at, at + math.prod(size)))
        at += math.prod(size)
    initial_point_fn = npc._rv_dict_to_flat_array_wrapper(
        pymc_initial_point_fn, names=names[:n_free], shapes=sizes[:n_free]
    )
    log.info("sampler functions loaded from the graph cache")
    return n_dim, at, logp_fn, expand_fn, initial_point_fn, (names, slices, sizes), renamed


def _data_maps(model: Any, functions: tuple[Any, ...], copies: bool = False) -> list[list[int]] | None:
    """Where each shared input of each function sits in :func:`shared_inputs` (how a later model hands over its
    data), or None when a function reads a shared variable outside the model's graph. ``copies``: the functions
    were compiled from a copy of the graph (PyMC's initial point), so they read copies of the model's data variables,
    matched by their names (where unique), and random generators of their own, left out."""
    order = shared_inputs(model)

    def at(v: Any) -> int:
        if v in order:
            return order.index(v)
        same = [i for i, o in enumerate(order) if o.name == v.name and o.type == v.type] if copies and v.name else []
        if len(same) != 1:
            raise ValueError(v.name)
        return same[0]

    try:
        return [[at(v) for v in _inputs(fn, copies)] for fn in functions]
    except ValueError:
        log.info("model not cached: a function reads a shared variable outside the model's graph")
        return None


def _inputs(fn: Any, copies: bool) -> list[Any]:
    """A compiled function's shared inputs; for ``copies``, those holding data (not a random generator's state,
    which the caller reseeds)."""
    from pytensor.tensor.random.type import RandomGeneratorType

    shared = fn.get_shared()
    return [v for v in shared if not isinstance(v.type, RandomGeneratorType)] if copies else shared


def _hand_data(model: Any, functions: tuple[Any, ...], maps: list[list[int]], copies: bool = False) -> None:
    """Set the stored ``functions``' shared inputs to ``model``'s data, as ``maps`` (:func:`_data_maps`) matches
    them; raises ValueError when they do not match."""
    order = shared_inputs(model)
    for fn, mapping in zip(functions, maps, strict=True):
        kept = _inputs(fn, copies)
        if len(kept) != len(mapping):
            raise ValueError("stored function reads other data")
        for var, at in zip(kept, mapping, strict=True):
            if var.type != order[at].type:
                raise ValueError(f"data of type {order[at].type} where {var.type} was stored")
            var.set_value(order[at].get_value(), borrow=True)


def _entry(model: Any, purpose: str, **settings: Any) -> Path | None:
    """Where the compiled function of ``purpose`` for ``model``'s graph and ``settings`` is kept, or None when the
    graph cannot be described exactly."""
    try:
        graph = description(model, purpose=purpose, **settings)
    except Exception as exc:  # describing is an optimisation: never a reason for a fit to fail
        log.warning("%s's key failed (%s); compiled anew", purpose, exc)
        return None
    if graph is None:
        return None
    suffix = {"initial point": "initial"}.get(purpose, purpose)
    return directory() / f"{hashlib.sha256(graph.encode()).hexdigest()}.{suffix}.pkl"


def _put(path: Path, entry: dict[str, Any], what: str) -> None:
    """``entry`` pickled at ``path`` (:func:`_write`); one that does not pickle is only logged."""
    try:
        blob = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # storing is an optimisation: never a reason for a fit to fail
        log.warning("%s not stored (%s)", what, exc)
        return
    _write(path, blob)


def _stored(path: Path | None, model: Any, what: str, copies: bool = False) -> dict[str, Any] | None:
    """The entry at ``path`` with its function reading ``model``'s data (:func:`_hand_data`), or None (not stored,
    unreadable, or reading other data)."""
    if path is None or not path.exists():
        return None
    try:
        stored = pickle.loads(path.read_bytes())
        _hand_data(model, (stored["function"],), stored["maps"], copies=copies)
    except Exception as exc:
        log.warning("stored %s unusable (%s); compiled anew", what, exc)
        return None
    return stored


def compute_deterministics(compute: Any, dataset: Any, **kwargs: Any) -> Any:
    """``compute`` (PyMC's ``compute_deterministics``, which pymc-marketing runs over the draws after nutpie has
    sampled the free variables) with its compiled function of the model's deterministics loaded from
    :func:`directory` when a model with the same graph compiled it before, compiled and stored otherwise: compiling
    it took 0.6 s per candidate on the sample, every process. Only the plain call (every deterministic, the default
    backend) is served from here; any other is passed through."""
    from pymc.model import modelcontext

    model = modelcontext(kwargs.get("model"))
    if any(kwargs.get(name) is not None for name in ("var_names", "backend", "compile_kwargs")):
        return compute(dataset, **kwargs)
    model.compile_fn = functools.partial(_deterministics_function, model, model.compile_fn)
    try:
        return compute(dataset, **kwargs)
    finally:
        del model.compile_fn  # the method again


def _deterministics_function(model: Any, compile_fn: Any, outs: Any, **kwargs: Any) -> Any:
    """``model.compile_fn(outs, **kwargs)`` (``compile_fn``), loaded from the graph cache or compiled and stored."""
    from pymc.pytensorf import PointFunc
    from pytensor.graph.replace import clone_replace

    inputs = kwargs.get("inputs") or []
    path = _entry(
        model,
        "deterministics",
        inputs=[v.name for v in inputs],
        outs=[v.name for v in outs],
        **{k: v for k, v in kwargs.items() if k != "inputs"},
    )
    stored = _stored(path, model, "deterministics' function")
    if stored is not None:
        log.info("deterministics' function loaded from the graph cache")
        return PointFunc(stored["function"])
    if path is None or not kwargs.get("inputs"):
        return compile_fn(outs, **kwargs)
    # the function's inputs as plain variables of the same types and names, cut from the random variables (whose
    # PyMC attributes do not pickle): the same graph from there on
    inputs = list(kwargs.pop("inputs"))
    try:
        fresh = [v.type(name=v.name) for v in inputs]
        plain = clone_replace(list(outs), dict(zip(inputs, fresh, strict=True)))
    except Exception as exc:  # storing is an optimisation: never a reason for a fit to fail
        log.warning("deterministics' function not stored (%s)", exc)
        return compile_fn(outs, inputs=inputs, **kwargs)
    made = compile_fn(plain, inputs=fresh, **kwargs)
    maps = _data_maps(model, (made.f,)) if isinstance(made, PointFunc) else None
    if maps is not None:
        _put(path, {"function": made.f, "maps": maps}, "deterministics' function")
    return made


def initial_point_function(model: Any, **kwargs: Any) -> Any:
    """PyMC's ``make_initial_point_fn(model=model, **kwargs)`` (where each chain starts: the support points, jittered
    by a seeded generator), its compiled function loaded from :func:`directory` when a model with the same graph and
    the same settings compiled it before, compiled and stored otherwise: 0.2 s per candidate, every process. The
    loaded function draws what PyMC's own would for the same seed (tested). Initial values given by name
    (``overrides``) are passed through."""
    from pymc.initial_point import make_initial_point_fn

    if kwargs.get("overrides"):
        return make_initial_point_fn(model=model, **kwargs)
    jitter = sorted(rv.name for rv in kwargs.get("jitter_rvs") or set())
    settings = {k: v for k, v in kwargs.items() if k not in ("jitter_rvs", "overrides")}
    path = _entry(model, "initial point", jitter=jitter, **settings)
    stored = _stored(path, model, "initial point", copies=True)
    if stored is not None:
        log.debug("initial point loaded from the graph cache")
        return _seeded(stored["function"], stored["names"])
    made = make_initial_point_fn(model=model, **kwargs)
    function = getattr(made, "__wrapped__", None)  # PyMC's compiled function inside its seeded wrapper
    if path is None or function is None:
        return made
    maps = _data_maps(model, (function,), copies=True)
    if maps is not None:
        names = list(made(0))  # the wrapper's names, in its order (one call: microseconds)
        _put(path, {"function": function, "maps": maps, "names": names}, "initial point")
    return made


def _seeded(function: Any, names: list[str]) -> Any:
    """PyMC's wrapper around an initial point's compiled function: reseed its generators, name its values."""
    from pymc.pytensorf import find_rng_nodes, reseed_rngs

    rngs = find_rng_nodes(function.maker.fgraph.outputs)

    @functools.wraps(function)
    def inner(seed: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        reseed_rngs(rngs, seed)
        return dict(zip(names, function(*args, **kwargs), strict=True))

    return inner
