"""PSIS-LOO without importing JAX (``mmmlib.jax_placeholder``): arviz registers ``jax`` lazily, and SciPy's array
checks would import all of it in every process that scores a candidate."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import numpy as np
import arviz_base  # registers jax as a lazy module
from scipy.special import logsumexp
from mmmlib import jax_placeholder

assert jax_placeholder.is_placeholder(sys.modules["jax"])
{call}
print("loaded" if not jax_placeholder.is_placeholder(sys.modules.get("jax")) else "placeholder")
"""


def _probe(call: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(call=call)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_scipy_would_import_jax_and_hidden_keeps_it_a_placeholder() -> None:
    assert _probe("logsumexp(np.ones(3))") == "loaded"  # what happens without it
    assert _probe("with jax_placeholder.hidden():\n    logsumexp(np.ones(3))\nlogsumexp(np.ones(4))") == "placeholder"


def test_psis_loo_of_a_candidate_leaves_jax_unimported() -> None:
    call = """
import arviz_base as azb
from types import SimpleNamespace
from mmmlib import stacking, structures
rng = np.random.default_rng(0)
idata = azb.from_dict({
    "posterior": {"y_sigma": rng.gamma(5.0, 0.02, (2, 200))},
    "log_likelihood": {"y": rng.normal(1.0, 0.1, (2, 200, 30))},
    "observed_data": {"y": np.zeros(30)},
    "sample_stats": {"diverging": np.zeros((2, 200), bool)},
})
member = SimpleNamespace(structure=structures.candidates("geometric", "logistic", "changepoints")[0], idata=idata,
                         fit_seconds=1.0)
diag = {"r_hat_max": 1.0, "ess_bulk_min": 400.0, "ess_tail_min": 400.0, "divergences": 0}
record, loo = stacking.score(member, diag)
assert loo is not None and record["elpd_loo"] is not None
"""
    assert _probe(call) == "placeholder"
