"""Arrays computed from the fitted rows enter a model's graph as shared variables, not constants.

PyTensor folds constants into the code it generates, so a constant made from the data (each channel's spend per unit
of ROAS, the fitted weeks' media, the whitening maps) gave every new dataset its own numba code to compile: 10-15 s
per candidate on the sample's shape before sampling could start, a minute for a default fit. As shared variables they
are the compiled code's inputs (nutpie receives them through :mod:`mmmlib.nutpie_cache`'s pointer block), so a
dataset with the same parameters reuses the code compiled for another, once the model is sampled unfrozen
(``EngineMMM.freeze_for_sampling``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def shared(values: Any, dims: tuple[str, ...]) -> Any:
    """``values`` (float64) as a named-dimension tensor backed by a shared variable."""
    import pytensor
    from pytensor.xtensor import as_xtensor

    return as_xtensor(pytensor.shared(np.array(values, dtype=float)), dims=dims)
