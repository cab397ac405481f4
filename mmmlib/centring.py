"""The intercept sampled as the baseline plus the media's mean contribution: the same model without its ridge.

Used by every fit since 2026-12-05, together with whitened trend and control coefficients (:mod:`mmmlib.whitening`;
``centre_intercept`` and ``whiten_controls`` on the model, both on by default). Measured alone on 2026-12-04 it cut a
quick fit's time on the mixed recovery suite by about a fifth, but the candidates' ESS per draw fell where the
changepoint slopes set the pace; with those whitened too, the sample's candidates took three to five times fewer
gradient steps per draw at a higher ESS (docs/speed.md).

Spend that runs most weeks contributes a nearly constant amount, which the intercept can take over. On the sample and
on the recovery suite's worlds the posterior correlation of the intercept with the media's mean contribution is
-0.99 to -0.999: the data pin only their sum, and NUTS with a diagonal mass matrix crawls along that ridge in many
small steps. With ROAS sampled (:mod:`mmmlib.roas_priors`) the media's contribution summed over the fitted weeks is
exactly ``ROAS × spend / (value × target scale)``, whatever the curves at a draw, so that sum is

    level = intercept + Σ_c ROAS_c × spend_c / (value × target_scale × weeks)

a linear function of the sampled returns. The model samples ``level`` and derives the intercept from it (a shear, so
the Jacobian is 1). ``level`` is flat and the intercept keeps its Normal prior, entered as an observed Normal term
(the density is symmetric in its mean and its value), so the posterior is the model's own. Only the coordinates NUTS
moves in change; the intercept and everything after it are as before, and new weeks keep each draw's intercept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from numbers import Real
from typing import Any

import numpy as np

from mmmlib import graph_data

LEVEL_SUFFIX = "_level"  # the sampled sum: ``intercept_contribution_level``
PRIOR_SUFFIX = "_prior"  # the intercept's prior as an observed term: ``intercept_contribution_prior``
INTERCEPT = "intercept"  # pymc-marketing's model_config key


def applies(mmm: Any) -> bool:
    """Whether ``mmm`` samples ROAS with a constant intercept whose prior is a Normal of fixed numbers."""
    from pymc_extras.prior import Prior

    prior = (mmm.model_config or {}).get(INTERCEPT)
    return bool(
        getattr(mmm, "centre_intercept", False)
        and getattr(mmm, "roas", None) is not None
        and mmm.adstock_first
        and not mmm.time_varying_intercept
        and not mmm.time_varying_media
        and isinstance(prior, Prior)
        and prior.distribution == "Normal"
        and set(prior.parameters) == {"mu", "sigma"}
        and all(isinstance(v, Real) for v in prior.parameters.values())
    )


@contextlib.contextmanager
def centred(mmm: Any) -> Iterator[None]:
    """While pymc-marketing builds ``mmm``'s model, its intercept is :class:`CentredIntercept` (when it applies)."""
    if not applies(mmm):
        yield
        return
    prior = mmm.model_config[INTERCEPT]
    mmm.model_config[INTERCEPT] = CentredIntercept(prior, mmm)
    try:
        yield
    finally:
        mmm.model_config[INTERCEPT] = prior
        mmm.early_roas = None


class CentredIntercept:
    """Stands in for the intercept's prior in pymc-marketing's ``build_model``: see the module's docstring."""

    def __init__(self, prior: Any, mmm: Any) -> None:
        self.prior, self.mmm = prior, mmm

    def create_variable(self, name: str, xdist: bool = True) -> Any:
        import pymc as pm
        import pymc.dims as pmd
        from pytensor.xtensor import as_xtensor

        from mmmlib.roas_priors import target_scale_of

        mmm = self.mmm
        # the returns are created here, before the media (pymc-marketing makes the intercept first); the forward pass
        # then takes this variable (mmm.early_roas) instead of making another
        roas = mmm.roas.roas_variable(mmm.saturation.prefix)
        mmm.early_roas = roas
        weeks = int(mmm.xarray_dataset.sizes["date"])
        media = (roas * mmm.roas.per_roas(target_scale_of(mmm))).sum("channel") * graph_data.shared(1.0 / weeks, ())
        dims = tuple(self.prior.dims or ())
        level = pmd.Flat(name + LEVEL_SUFFIX, dims=dims)
        intercept = pmd.Deterministic(name, level - media)
        mu, sigma = float(self.prior.parameters["mu"]), float(self.prior.parameters["sigma"])
        coords = pm.modelcontext(None).coords
        at = as_xtensor(np.full(tuple(len(coords[d]) for d in dims), mu), dims=dims)
        pmd.Normal(name + PRIOR_SUFFIX, mu=intercept, sigma=sigma, observed=at, dims=dims)
        return intercept
