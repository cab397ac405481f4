"""Trend and control coefficients sampled in whitened coordinates: the same model without the trend's ridge.

The trend's changepoint columns (hinges ``max(t - knot, 0)``) overlap most of their weeks, so their coefficients'
posterior correlates at about 0.96 between neighbours, and NUTS with a diagonal mass matrix (nutpie's) crawls along
that ridge in many small steps. In a linear regression the coefficients' posterior precision is
``P = X'X / s² + diag(1 / sd²)`` (the controls' Gram matrix over the noise variance, plus the prior's), so with
``L L' = P`` the coordinates ``u = L' γ`` are roughly independent with unit scale. The model samples ``u`` and derives

    γ = L'⁻¹ u

a fixed linear map (constant Jacobian), so the posterior is the model's own. ``u`` is flat and γ keeps its Normal
prior, entered as an observed Normal term (the density is symmetric in its mean and its value). Only the
coordinates NUTS moves in change; ``gamma_control`` and everything after it are as before. ``s`` is the residual sd
of a least-squares fit of the scaled KPI on the controls, the media and a yearly Fourier pair: any fixed ``L`` keeps
the posterior exact, a good one only makes it faster. A geo model whitens each geo's coefficients on its own rows.

Together with the intercept sampled as baseline + media (:mod:`mmmlib.centring`) this cut the gradient steps per
draw three- to five-fold on the sample's candidates at a higher ESS (docs/speed.md); either alone did not pay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from numbers import Real
from typing import Any

import numpy as np

WHITE_SUFFIX = "_white"  # the sampled coordinates: ``gamma_control_white``
PRIOR_SUFFIX = "_prior"  # γ's prior as an observed term: ``gamma_control_prior``
CONTROL = "gamma_control"  # pymc-marketing's model_config key
PERIOD_WEEKS = 52.18  # a year in weeks, for the Fourier pair of the noise estimate


def applies(mmm: Any) -> bool:
    """Whether ``mmm`` whitens: asked to, with controls whose prior is a Normal of fixed numbers over the controls
    (and the geos, for a geo model)."""
    from pymc_extras.prior import Prior

    prior = (mmm.model_config or {}).get(CONTROL)
    if not (getattr(mmm, "whiten_controls", False) and mmm.control_columns and isinstance(prior, Prior)):
        return False
    dims = _dims(prior)
    return (
        prior.distribution == "Normal"
        and set(prior.parameters) == {"mu", "sigma"}
        and all(_fixed(v) for v in prior.parameters.values())
        and dims[-1:] == ("control",)
        and set(dims[:-1]) <= set(mmm.dims or ())
    )


def _fixed(value: Any) -> bool:
    """A number, or an array of numbers over the controls (not another prior)."""
    import xarray as xr

    if isinstance(value, Real):
        return True
    return isinstance(value, xr.DataArray | np.ndarray) and np.issubdtype(np.asarray(value).dtype, np.number)


def _dims(prior: Any) -> tuple[str, ...]:
    dims = prior.dims or ()
    return (dims,) if isinstance(dims, str) else tuple(dims)


@contextlib.contextmanager
def whitened(mmm: Any) -> Iterator[None]:
    """While pymc-marketing builds ``mmm``'s model, its control coefficients are :class:`WhitenedControls`."""
    if not applies(mmm):
        yield
        return
    prior = mmm.model_config[CONTROL]
    mmm.model_config[CONTROL] = WhitenedControls(prior, mmm)
    try:
        yield
    finally:
        mmm.model_config[CONTROL] = prior


def _per_control(value: Any, controls: list[str]) -> np.ndarray:
    """A prior parameter as one number per control, in the model's order."""
    import xarray as xr

    if isinstance(value, xr.DataArray) and "control" in value.coords:
        value = value.sel(control=controls)
    if isinstance(value, xr.DataArray):  # without labels, in the model's order (as mmmlib.model writes it)
        value = value.values
    return np.broadcast_to(np.asarray(value, dtype=float), (len(controls),)).astype(float)


def precisions(mmm: Any, sd: np.ndarray) -> np.ndarray:
    """The coefficients' approximate posterior precision per group of the data's leading dims (one for a national
    model, one per geo): ``X'X / s² + diag(1 / sd²)`` on that group's rows of the controls as the model sees them,
    shape ``(*groups, K, K)``."""
    from mmmlib.roas_priors import target_scale_of

    ds = mmm.xarray_dataset
    groups = tuple(d for d in ds["_control"].dims if d not in ("date", "control"))
    controls = ds["_control"].transpose(*groups, "date", "control")
    target = ds["_target"].transpose(*groups, "date") / target_scale_of(mmm)
    channels = ds["_channel"].transpose(*groups, "date", "channel")
    shape = tuple(controls.sizes[g] for g in groups)
    out = np.empty((*shape, len(sd), len(sd)))
    weeks = controls.sizes["date"]
    t = 2 * np.pi * np.arange(weeks) / PERIOD_WEEKS
    fourier = np.column_stack([np.sin(t), np.cos(t)])
    for index in np.ndindex(*shape):
        X = np.asarray(controls.values[index], dtype=float)
        y = np.asarray(target.values[index], dtype=float)
        media = np.asarray(channels.values[index], dtype=float)
        media = media / np.maximum(np.abs(media).max(axis=0), 1e-12)
        design = np.column_stack([np.ones(weeks), X, media, fourier])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        s = float(np.std(y - design @ coef)) or float(np.std(y)) or 1.0
        out[index] = X.T @ X / s**2 + np.diag(1.0 / sd**2)
    return out


def whitening_maps(precision: np.ndarray) -> np.ndarray:
    """``L'⁻¹`` of each precision ``L L'`` (Cholesky), over the leading axes: ``M' P M = I``."""
    return np.swapaxes(np.linalg.inv(np.linalg.cholesky(precision)), -1, -2)


class WhitenedControls:
    """Stands in for the control coefficients' prior in pymc-marketing's ``build_model``: see the module's docstring."""

    def __init__(self, prior: Any, mmm: Any) -> None:
        self.prior, self.mmm = prior, mmm

    def create_variable(self, name: str, xdist: bool = True) -> Any:
        import pymc.dims as pmd
        import pytensor
        import pytensor.tensor as pt
        from pytensor.xtensor import as_xtensor

        dims = _dims(self.prior)
        controls = [str(c) for c in self.mmm.xarray_dataset["_control"].coords["control"].values]
        sd = _per_control(self.prior.parameters["sigma"], controls)
        mu = _per_control(self.prior.parameters["mu"], controls)
        groups = dims[:-1]
        data_groups = tuple(d for d in self.mmm.xarray_dataset["_control"].dims if d not in ("date", "control"))
        if set(data_groups) != set(groups):  # one coefficient shared by geos (or the like): the prior as it is
            return self.prior.create_variable(name, xdist=xdist)
        maps = whitening_maps(precisions(self.mmm, sd))  # in the data's group order; moved to the prior's
        if data_groups != groups:
            maps = np.moveaxis(maps, [data_groups.index(g) for g in groups], list(range(len(groups))))
        white = pmd.Flat(name + WHITE_SUFFIX, dims=dims)
        u = white.values
        # γ = L'⁻¹ u per group: sum over the last axis of maps (…, K, K) times u (…, 1, K)
        gamma = (pytensor.shared(maps) * pt.shape_padaxis(u, -2)).sum(axis=-1) + pt.as_tensor(mu)
        gamma = pmd.Deterministic(name, as_xtensor(gamma, dims=dims))
        at = as_xtensor(pt.as_tensor(np.broadcast_to(mu, (*maps.shape[:-2], len(sd))).copy()), dims=dims)
        pmd.Normal(
            name + PRIOR_SUFFIX, mu=gamma, sigma=as_xtensor(pt.as_tensor(sd), dims=("control",)), observed=at, dims=dims
        )
        return gamma
