"""The registry of model structures: carry-over and saturation families, each with its fitted component and formula.

One entry per family holds the pymc-marketing component the model fits (with its default priors and where they come
from) and the numpy formula that analysis, the optimiser and forecasts evaluate on posterior draws, so a family is
defined once for all of them. ``auto`` in the config means "fit the candidates below and combine them"
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
- The effect size of every family is not given a prior of its own: it gets the prior implied by a prior on the
  channel's ROAS (:func:`effect_prior`), as Meridian does, so small channels are not pulled toward zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

ADSTOCKS = ("geometric", "weibull", "delayed")
SATURATIONS = ("logistic", "hill", "michaelis_menten")
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
    """One candidate model: a carry-over family, a returns family and a baseline."""

    adstock: str
    saturation: str
    baseline: str = AUTO_BASELINE

    @property
    def name(self) -> str:
        return f"{self.adstock}+{self.saturation}+{self.baseline}"

    def to_dict(self) -> dict[str, str]:
        return {"adstock": self.adstock, "saturation": self.saturation, "baseline": self.baseline}


def candidates(adstock: str, saturation: str, baseline: str) -> list[Structure]:
    """The structures a config asks for: the product of its families, ``auto`` expanding to the registry's set."""
    ads = AUTO_ADSTOCKS if adstock == AUTO else (adstock,)
    sats = AUTO_SATURATIONS if saturation == AUTO else (saturation,)
    base = AUTO_BASELINE if baseline == AUTO else baseline
    return [Structure(a, s, base) for a in ads for s in sats]


# ---- numpy formulas (posterior draws) ---------------------------------------------------------------------------
# Parameters are arrays broadcast against the input; names are pymc-marketing's.

EFFECT_PARAM = {"logistic": "beta", "hill": "beta", "michaelis_menten": "alpha"}
SATURATION_PARAMS = {
    "logistic": ("lam", "beta"),
    "hill": ("slope", "kappa", "beta"),
    "michaelis_menten": ("alpha", "lam"),
}
ADSTOCK_PARAMS = {"geometric": ("alpha",), "weibull": ("lam", "k"), "delayed": ("alpha", "theta")}


def _logistic(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    e = np.exp(-p["lam"] * z)
    return p["beta"] * (1 - e) / (1 + e)


def _hill(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    zs = np.power(np.maximum(z, 0), p["slope"])
    return p["beta"] * zs / (zs + np.power(p["kappa"], p["slope"]))


def _michaelis_menten(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    return p["alpha"] * z / (p["lam"] + z)


SATURATION_FORMULAS: dict[str, Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]] = {
    "logistic": _logistic,
    "hill": _hill,
    "michaelis_menten": _michaelis_menten,
}


def _logistic_gradient(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    e = np.exp(-p["lam"] * z)
    return p["beta"] * 2 * p["lam"] * e / (1 + e) ** 2


def _hill_gradient(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    z = np.maximum(z, 1e-12)
    zs, ks = np.power(z, p["slope"]), np.power(p["kappa"], p["slope"])
    return p["beta"] * p["slope"] * zs / z * ks / (zs + ks) ** 2


def _michaelis_menten_gradient(p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    return p["alpha"] * p["lam"] / (p["lam"] + z) ** 2


# d response / d z, exact: the optimiser's gradient
SATURATION_GRADIENTS: dict[str, Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]] = {
    "logistic": _logistic_gradient,
    "hill": _hill_gradient,
    "michaelis_menten": _michaelis_menten_gradient,
}


def adstock_weights(family: str, params: dict[str, np.ndarray], l_max: int) -> np.ndarray:
    """Normalised carry-over weights ``(..., lag, channel)`` for parameter draws ``(..., 1, channel)``.

    Geometric: ``alpha**l``. Delayed (Jin et al. 2017): ``alpha**((l - theta)**2)``, peaking at lag ``theta``.
    Weibull (PDF form): the density at lags ``1..L``, min-max scaled, as in
    ``pymc_marketing.mmm.transformers.weibull_adstock``.
    """
    lags = np.arange(l_max)[:, None]
    if family == "geometric":
        w = np.power(params["alpha"], lags)
    elif family == "delayed":
        w = np.power(params["alpha"], (lags - params["theta"]) ** 2)
    elif family == "weibull":
        lam, k = params["lam"], params["k"]
        t = lags + 1.0
        w = (k / lam) * np.power(t / lam, k - 1) * np.exp(-np.power(t / lam, k))
        lo, hi = w.min(axis=-2, keepdims=True), w.max(axis=-2, keepdims=True)
        w = (w - lo) / np.where(hi > lo, hi - lo, 1.0)
    else:
        raise ValueError(f"unknown carry-over family {family!r}")
    return w / np.maximum(w.sum(axis=-2, keepdims=True), 1e-300)


# ---- pymc-marketing components -----------------------------------------------------------------------------------

# prior medians of the shape parameters: the curve an effect prior is referred to (effect_prior)
NOMINAL_SHAPE = {
    "logistic": {"lam": 3.0},
    "hill": {"slope": 2.0, "kappa": 0.5},
    "michaelis_menten": {"lam": 1.0},
}


def nominal_response(family: str, z: np.ndarray) -> np.ndarray:
    """The family's curve at its priors' central shape with unit effect, on max-scaled spend ``z``."""
    p = {k: np.asarray(v) for k, v in NOMINAL_SHAPE[family].items()}
    p[EFFECT_PARAM[family]] = np.asarray(1.0)
    return SATURATION_FORMULAS[family](p, z)


def adstock_component(family: str, l_max: int) -> Any:
    from pymc_extras.prior import Prior
    from pymc_marketing.mmm import DelayedAdstock, GeometricAdstock, WeibullPDFAdstock

    if family == "delayed":
        return DelayedAdstock(
            l_max=l_max,
            priors={
                "alpha": Prior("Beta", alpha=1, beta=3, dims="channel"),
                "theta": Prior("HalfNormal", sigma=1, dims="channel"),
            },
        )
    if family == "geometric":
        return GeometricAdstock(l_max=l_max, priors={"alpha": Prior("Beta", alpha=1, beta=3, dims="channel")})
    if family == "weibull":
        return WeibullPDFAdstock(
            l_max=l_max,
            priors={
                "lam": Prior("Gamma", mu=2, sigma=1, dims="channel"),
                "k": Prior("Gamma", mu=3, sigma=1, dims="channel"),
            },
        )
    raise ValueError(f"unknown carry-over family {family!r}")


def saturation_component(family: str, effect: Any) -> Any:
    """The returns component with ``effect`` (a ``Prior``) as the prior of its effect size."""
    from pymc_extras.prior import Prior
    from pymc_marketing.mmm import HillSaturation, LogisticSaturation, MichaelisMentenSaturation

    if family == "logistic":
        return LogisticSaturation(priors={"beta": effect, "lam": Prior("Gamma", alpha=3, beta=1, dims="channel")})
    if family == "hill":
        return HillSaturation(
            priors={
                "beta": effect,
                "kappa": Prior("Beta", alpha=2, beta=2, dims="channel"),
                "slope": Prior("Gamma", alpha=2, beta=1, dims="channel"),
            }
        )
    if family == "michaelis_menten":
        return MichaelisMentenSaturation(
            priors={"alpha": effect, "lam": Prior("Gamma", mu=1, sigma=0.5, dims="channel")}
        )
    raise ValueError(f"unknown returns family {family!r}")
