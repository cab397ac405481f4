"""Keep a lazily registered ``jax`` from being imported by SciPy's array checks during PSIS-LOO.

arviz (``arviz_base.io_numpyro``) registers ``jax`` in ``sys.modules`` as a lazy module when it is imported. SciPy's
array-API helpers (inside ``logsumexp``, which arviz's Pareto-smoothing calls) ask every array whether it is a JAX
array by looking the class up on ``sys.modules["jax"]``, which turns the placeholder into a full import of JAX: 0.7 s
in every process that scores a candidate, only to learn that a NumPy array is not a JAX array (measured on the
sample's quick fit, 2026-12-06). :func:`hidden` takes the placeholder out of ``sys.modules`` for such a call and puts
it back after; a ``jax`` that is really imported (the numpyro sampler) is left alone.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

NAME = "jax"


def is_placeholder(module: object) -> bool:
    """Whether ``module`` is a lazy module not loaded yet (``importlib.util.LazyLoader``'s, which changes its class
    when it loads)."""
    return type(module).__name__ == "_LazyModule"


@contextlib.contextmanager
def hidden() -> Iterator[None]:
    """Run the block with a not-yet-loaded ``jax`` placeholder out of ``sys.modules`` (restored after)."""
    placeholder = sys.modules.get(NAME)
    if placeholder is None or not is_placeholder(placeholder):
        yield
        return
    del sys.modules[NAME]
    try:
        yield
    finally:
        if NAME not in sys.modules:  # nothing imported the real one meanwhile
            sys.modules[NAME] = placeholder
