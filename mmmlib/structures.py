"""The registry of model structures: carry-over and saturation families, each with its fitted component and formula.

One entry per family (:class:`AdstockFamily`, :class:`SaturationFamily`) holds its name, the pymc-marketing component
the model fits (with its default priors and where they come from), its parameter names and the numpy formula that
analysis, the optimiser, forecasts and prior draws evaluate on posterior draws, so a family is defined once for all
of them. ``auto`` in the config means "fit the candidates below and combine them"
(:mod:`mmmlib.stacking`); a named family fixes it.

Default priors and their sources:
- geometric carry-over ``alpha ~ Beta(1, 3)``: PyMC-Marketing's default and both libraries' setting in their joint
  recovery benchmark (pymc-labs/mmm-param-recovery).
- delayed carry-over (Jin, Wang, Sun, Chan & Koehler 2017, "Bayesian methods for media mix modeling with carryover
  and shape effects", Google), which peaks ``theta`` periods after the spend: PyMC-Marketing's ``DelayedAdstock``
  defaults ``alpha ~ Beta(1, 3)``, ``theta ~ HalfNormal(1)``.
- Weibull (PDF) carry-over, which can also peak after a delay: PyMC-Marketing's defaults ``lam ~ Gamma(mu=2, sigma=1)``,
  ``k ~ Gamma(mu=3, sigma=1)``.
- logistic returns ``lam ~ Gamma(3, 1)``: PyMC-Marketing's default.
- Hill returns ``kappa ~ Beta(2, 2)`` (half-saturation within the observed spend range), ``slope ~ Gamma(2, 1)``
  (concave and S-shaped curves alike): the Meridian side of pymc-labs/mmm-param-recovery.
- Michaelis-Menten ``lam ~ Gamma(mu=1, sigma=0.5)`` (half-saturation near the largest weekly spend).
- The effect size of every family is not given a prior of its own: the national model samples each channel's ROAS
  and derives the effect size from it (:class:`mmmlib.roas_priors.RoasParameterisation`), the geo model gives it the
  prior a ROAS prior implies at the curve's central shape; as in Meridian, small channels are not pulled toward zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

BASELINES = ("changepoints", "linear", "flat")
AUTO = "auto"
# what ``auto`` fits: carry-over that peaks at once (geometric) or after a delay (Jin et al.'s delayed form, which
# sampled without the divergences the Weibull PDF form gave), and the two returns families that between them hold
# the concave, S-shaped and nearly linear curves (Michaelis-Menten is Hill with slope 1)
AUTO_ADSTOCKS = ("geometric", "delayed")
AUTO_SATURATIONS = ("logistic", "hill")
AUTO_BASELINE = "changepoints"


@dataclass(frozen=True)
class Structure:
    """One candidate model: a carry-over family, a returns family and a baseline. ``harmonics`` names the yearly
    seasonality's order where it differs from the other candidates' (``yearly_seasonality: auto`` keeps the first
    structure's fit with the order not chosen among the candidates, :mod:`mmmlib.seasonality`); None: the run's."""

    adstock: str
    saturation: str
    baseline: str = AUTO_BASELINE
    harmonics: int | None = None

    @property
    def name(self) -> str:
        order = "" if self.harmonics is None else f"+fourier{self.harmonics}"
        return f"{self.adstock}+{self.saturation}+{self.baseline}{order}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"adstock": self.adstock, "saturation": self.saturation, "baseline": self.baseline}
        if self.harmonics is not None:
            out["yearly_seasonality"] = self.harmonics
        return out


def candidates(adstock: str, saturation: str, baseline: str) -> list[Structure]:
    """The structures a config asks for: the product of its families, ``auto`` expanding to the registry's set."""
    ads = AUTO_ADSTOCKS if adstock == AUTO else (adstock,)
    sats = AUTO_SATURATIONS if saturation == AUTO else (saturation,)
    base = AUTO_BASELINE if baseline == AUTO else baseline
    return [Structure(a, s, base) for a in ads for s in sats]


# ---- the registry ------------------------------------------------------------------------------------------------
# Parameters are arrays broadcast against the input; names are pymc-marketing's. A prior is (distribution, arguments),
# one per channel. The order of each registry is part of the run files: a combined posterior (mmmlib.stacking) stores
# each draw's family as its index (``adstock_family``, ``saturation_family``), so families are only ever appended.

PriorSpec = tuple[str, dict[str, float]]
Formula = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


def _prior(spec: PriorSpec) -> Any:
    from pymc_extras.prior import Prior

    dist, kwargs = spec
    return Prior(dist, **kwargs, dims="channel")


def _pymc_marketing_class(name: str) -> Any:
    import pymc_marketing.mmm

    return getattr(pymc_marketing.mmm, name)


@dataclass(frozen=True)
class AdstockFamily:
    """A carry-over family: its pymc-marketing component with its priors, and its lag kernel in numpy."""

    name: str
    component: str  # the class in ``pymc_marketing.mmm`` the model fits
    priors: dict[str, PriorSpec]  # every parameter's prior, by pymc-marketing's name
    kernel: Formula  # weights at ``lags`` (0..L-1, on axis -2) for parameters ``(..., 1, channel)``, not normalised

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(self.priors)

    def weights(self, params: dict[str, np.ndarray], l_max: int) -> np.ndarray:
        """Normalised weights ``(..., lag, channel)``, as pymc-marketing applies them (``normalize=True``)."""
        w = self.kernel(params, np.arange(l_max)[:, None])
        return w / np.maximum(w.sum(axis=-2, keepdims=True), 1e-300)

    def build(self, l_max: int) -> Any:
        """The pymc-marketing component with this family's priors."""
        priors = {name: _prior(spec) for name, spec in self.priors.items()}
        return _pymc_marketing_class(self.component)(l_max=l_max, priors=priors)


@dataclass(frozen=True)
class SaturationFamily:
    """A returns family: its pymc-marketing component with its shape priors, and its curve and slope in numpy."""

    name: str
    component: str  # the class in ``pymc_marketing.mmm`` the model fits
    effect: str  # the parameter that scales the curve: derived from the sampled ROAS (mmmlib.roas_priors)
    shape_priors: dict[str, PriorSpec]  # the other parameters' priors, by pymc-marketing's name
    nominal: dict[str, float]  # the shape priors' medians: the curve an effect prior is referred to
    curve: Formula  # response on max-scaled spend ``z``
    gradient: Formula  # d response / d z, exact: the optimiser's gradient

    @property
    def params(self) -> tuple[str, ...]:
        return (self.effect, *self.shape_priors)

    def build(self, effect: Any) -> Any:
        """The pymc-marketing component with ``effect`` (a ``Prior``, or a number that fixes it) as its effect size."""
        priors = {self.effect: effect, **{name: _prior(spec) for name, spec in self.shape_priors.items()}}
        return _pymc_marketing_class(self.component)(priors=priors)

    def nominal_response(self, z: np.ndarray) -> np.ndarray:
        """The curve at the priors' central shape with unit effect, on max-scaled spend ``z``."""
        p = {k: np.asarray(v) for k, v in self.nominal.items()}
        p[self.effect] = np.asarray(1.0)
        return self.curve(p, z)


def _geometric(p: dict[str, np.ndarray], lags: np.ndarray) -> np.ndarray:
    return np.power(p["alpha"], lags)


def _delayed(p: dict[str, np.ndarray], lags: np.ndarray) -> np.ndarray:
    return np.power(p["alpha"], (lags - p["theta"]) ** 2)


def _weibull(p: dict[str, np.ndarray], lags: np.ndarray) -> np.ndarray:
    lam, k = p["lam"], p["k"]
    t = lags + 1.0
    w = (k / lam) * np.power(t / lam, k - 1) * np.exp(-np.power(t / lam, k))
    lo, hi = w.min(axis=-2, keepdims=True), w.max(axis=-2, keepdims=True)
    return (w - lo) / np.where(hi > lo, hi - lo, 1.0)


def _logistic(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    e = np.exp(-p["lam"] * z)
    return p["beta"] * (1 - e) / (1 + e)


def _logistic_gradient(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    e = np.exp(-p["lam"] * z)
    return p["beta"] * 2 * p["lam"] * e / (1 + e) ** 2


def _hill(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    zs = np.power(np.maximum(z, 0), p["slope"])
    return p["beta"] * zs / (zs + np.power(p["kappa"], p["slope"]))


def _hill_gradient(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    z = np.maximum(z, 1e-12)
    zs, ks = np.power(z, p["slope"]), np.power(p["kappa"], p["slope"])
    return p["beta"] * p["slope"] * zs / z * ks / (zs + ks) ** 2


def _michaelis_menten(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    return p["alpha"] * z / (p["lam"] + z)


def _michaelis_menten_gradient(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    return p["alpha"] * p["lam"] / (p["lam"] + z) ** 2


ADSTOCK_FAMILIES: dict[str, AdstockFamily] = {
    f.name: f
    for f in (
        # alpha ** l
        AdstockFamily("geometric", "GeometricAdstock", {"alpha": ("Beta", {"alpha": 1, "beta": 3})}, _geometric),
        # the Weibull density at lags 1..L, min-max scaled (pymc_marketing.mmm.transformers.weibull_adstock)
        AdstockFamily(
            "weibull",
            "WeibullPDFAdstock",
            {"lam": ("Gamma", {"mu": 2, "sigma": 1}), "k": ("Gamma", {"mu": 3, "sigma": 1})},
            _weibull,
        ),
        # Jin et al. 2017: alpha ** ((l - theta) ** 2), peaking at lag theta
        AdstockFamily(
            "delayed",
            "DelayedAdstock",
            {"alpha": ("Beta", {"alpha": 1, "beta": 3}), "theta": ("HalfNormal", {"sigma": 1})},
            _delayed,
        ),
    )
}
SATURATION_FAMILIES: dict[str, SaturationFamily] = {
    f.name: f
    for f in (
        # beta (1 - e^(-lam z)) / (1 + e^(-lam z))
        SaturationFamily(
            "logistic",
            "LogisticSaturation",
            "beta",
            {"lam": ("Gamma", {"alpha": 3, "beta": 1})},
            {"lam": 3.0},
            _logistic,
            _logistic_gradient,
        ),
        # beta z^slope / (z^slope + kappa^slope)
        SaturationFamily(
            "hill",
            "HillSaturation",
            "beta",
            {"kappa": ("Beta", {"alpha": 2, "beta": 2}), "slope": ("Gamma", {"alpha": 2, "beta": 1})},
            {"slope": 2.0, "kappa": 0.5},
            _hill,
            _hill_gradient,
        ),
        # alpha z / (lam + z)
        SaturationFamily(
            "michaelis_menten",
            "MichaelisMentenSaturation",
            "alpha",
            {"lam": ("Gamma", {"mu": 1, "sigma": 0.5})},
            {"lam": 1.0},
            _michaelis_menten,
            _michaelis_menten_gradient,
        ),
    )
}
ADSTOCKS = tuple(ADSTOCK_FAMILIES)
SATURATIONS = tuple(SATURATION_FAMILIES)
# parameter names by family name (views of the registry)
ADSTOCK_PARAMS = {name: f.params for name, f in ADSTOCK_FAMILIES.items()}
SATURATION_PARAMS = {name: f.params for name, f in SATURATION_FAMILIES.items()}


def adstock_family(name: str) -> AdstockFamily:
    try:
        return ADSTOCK_FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown carry-over family {name!r}") from None


def saturation_family(name: str) -> SaturationFamily:
    try:
        return SATURATION_FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown returns family {name!r}") from None


def family_of(registry: Mapping[str, AdstockFamily | SaturationFamily], names: Iterable[str]) -> str | None:
    """The family of ``registry`` whose parameters ``names`` are, or None.

    Of the families whose parameters are all among ``names``, the one with the most (Hill's ``beta, kappa, slope``
    before logistic's ``beta, lam``, delayed's ``alpha, theta`` before geometric's ``alpha``); the first on a tie.
    """
    present = set(names)
    fits = [f for f in registry.values() if set(f.params) <= present]
    return max(fits, key=lambda f: len(f.params)).name if fits else None


def adstock_weights(family: str, params: dict[str, np.ndarray], l_max: int) -> np.ndarray:
    """Normalised carry-over weights ``(..., lag, channel)`` of ``family`` for parameter draws ``(..., 1, channel)``."""
    return adstock_family(family).weights(params, l_max)


def nominal_response(family: str, z: np.ndarray) -> np.ndarray:
    """The family's curve at its priors' central shape with unit effect, on max-scaled spend ``z``."""
    return saturation_family(family).nominal_response(z)


def adstock_component(family: str, l_max: int) -> Any:
    return adstock_family(family).build(l_max)


def saturation_component(family: str, effect: Any) -> Any:
    """The returns component with ``effect`` (a ``Prior``, or a number that fixes it) as its effect size."""
    return saturation_family(family).build(effect)
