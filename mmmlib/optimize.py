"""Budget allocation over the posterior (``mmm optimize``): numpy and scipy on stored draws, no pymc.

The objective is the expected (posterior-mean) steady-state contribution per period,
``sum_c E[f_c(x_c)]``, which is separable by channel. A dynamic programme over a fine budget
grid finds the global optimum even for S-shaped (Hill) curves, and SLSQP with exact gradients
polishes it; the result spends exactly the budget and keeps every bound. Intervals for the
optimal and current splits come from the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize

from mmmlib import curves_file, policy
from mmmlib.analysis import (
    HDI_PROB,
    FamilySplit,
    Posterior,
    current_spend,
    family_split,
    interval,
    kpi_value,
    saturation,
    saturation_gradient,
    saturation_kind,
    saturation_params,
)
from mmmlib.errors import InputError, UsageError

if TYPE_CHECKING:
    from mmmlib.runs import RunDir

GRID = 400  # budget steps in the dynamic programme
TABLE_POINTS = 256  # mean curves tabulated for the dynamic programme (Curves._table): points per channel
TABLE_DRAWS = 500  # draws their means are taken over (the mean's error is a few % of the interval's width)
GEO_SEP = ":"  # a geo × channel line of a by-geo allocation: ``GEO:CHANNEL``
MAX_DRAWS = 1000  # posterior draws kept for optimisation (thinned evenly)


@dataclass
class Curves:
    """Saturation-curve draws for every channel, in target units per period of spend per period."""

    channels: list[str]
    kind: str
    params: dict[str, np.ndarray]  # each (draw, channel)
    channel_scale: np.ndarray
    target_scale: float
    current: np.ndarray  # today's spend per period (analysis.current_spend, over policy.RECENT_WEEKS)
    value_per_kpi: float = 1.0
    hdi_prob: float = HDI_PROB  # the run's interval probability
    parts: list[Curves] | None = None  # a geo fit: each geo's curves, national spend split by ``shares``
    shares: np.ndarray | None = None  # (geo, channel)
    _mean_table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _split: FamilySplit | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_posterior(cls, post: Posterior, max_draws: int = MAX_DRAWS, value_per_kpi: float = 1.0) -> Curves:
        if post.parts is not None:
            parts = [cls.from_posterior(p, max_draws, value_per_kpi) for p in post.parts]
            return cls(
                channels=post.channels,
                kind=parts[0].kind,
                params={},
                channel_scale=post.channel_scale,
                target_scale=post.target_scale,
                current=current_spend(post),
                value_per_kpi=value_per_kpi,
                hdi_prob=post.hdi_prob,
                parts=parts,
                shares=post.shares,
                geos=post.geos,
            )
        params = saturation_params(post)
        n = next(iter(params.values())).shape[0]
        keep = np.unique(np.linspace(0, n - 1, min(n, max_draws)).astype(int))
        return cls(
            channels=post.channels,
            kind=saturation_kind(params),
            params={k: v[keep] for k, v in params.items()},
            channel_scale=post.channel_scale,
            target_scale=post.target_scale,
            current=current_spend(post),
            value_per_kpi=value_per_kpi,
            hdi_prob=post.hdi_prob,
        )

    geos: list[str] | None = None

    def geo(self, name: str | None) -> Curves:
        """One geo's curves (its own budget and today's spend there), or these for the national run (``None`` or
        any name a national run does not have, such as ``National``)."""
        if self.parts is None or self.geos is None or name not in self.geos:
            return self
        return self.parts[self.geos.index(name)]

    def by_geo(self) -> Curves:
        """Every geo × channel as its own line to allocate (``GEO:CHANNEL``), for a budget split across geos too:
        each geo's curves, its scale folded into the effect size so that one target scale serves them all."""
        from mmmlib.structures import SATURATION_FAMILIES

        if self.parts is None or self.geos is None:
            raise UsageError("Only a geo run can be allocated by geo (its config has geo_model: hierarchical).")
        # a combined posterior (kind "mixed") holds every family's effect size, NaN in the other families' draws
        kinds = SATURATION_FAMILIES if self.kind == "mixed" else [self.kind]
        effects = {SATURATION_FAMILIES[k].effect for k in kinds}
        ref = self.target_scale
        params = {
            k: np.concatenate(
                [p.params[k] * (p.target_scale / ref if k in effects else 1.0) for p in self.parts], axis=1
            )
            for k in self.parts[0].params
        }
        return Curves(
            channels=[f"{g}{GEO_SEP}{c}" for g in self.geos for c in self.channels],
            kind=self.kind,
            params=params,
            channel_scale=np.concatenate([p.channel_scale for p in self.parts]),
            target_scale=ref,
            current=np.concatenate([p.current for p in self.parts]),
            value_per_kpi=self.value_per_kpi,
            hdi_prob=self.hdi_prob,
        )

    def response(self, x: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Contribution draws at spend ``x`` per channel: x ``(..., k)`` → ``(draw, ..., k)``."""
        sel = slice(None) if idx is None else idx
        if self.parts is not None and self.shares is not None:
            x = np.asarray(x, dtype=float)
            return sum(p.response(x * self.shares[g][sel], idx) for g, p in enumerate(self.parts))
        params = {k: v[:, sel] for k, v in self.params.items()}
        z = np.asarray(x, dtype=float) / self.channel_scale[sel]
        y = saturation(self.kind, params, z, out_ndim=z.ndim + 1, split=self._family_split() if idx is None else None)
        return y * self.target_scale * self.value_per_kpi

    def _family_split(self) -> FamilySplit | None:
        """A mixture's draws grouped by family, once (:func:`mmmlib.analysis.family_split`)."""
        if self.kind == "mixed" and self._split is None:
            self._split = family_split(self.params)
        return self._split

    def _table(self, top: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The mean curves tabulated once per channel: points ``(K, channel)`` (denser near zero), the mean response
        there and its slope. Every draw's curve (every geo's, in a geo run) would otherwise be evaluated at each
        step of the dynamic programme (a frontier of 9 budgets took 31 s at 40 geos); the intervals still come from
        every draw (:meth:`response`)."""
        if self._mean_table is None or np.any(top > self._mean_table[0][-1]):
            hi = np.maximum.reduce(
                [
                    np.asarray(top, dtype=float) * 2,
                    self.current * 4,
                    np.full_like(self.current, 2 * self.current.sum()),
                    np.ones_like(self.current),
                ]
            )
            xs = np.linspace(0.0, 1.0, TABLE_POINTS)[:, None] ** 2 * hi[None, :]
            ys = self.thinned(TABLE_DRAWS).response(xs).mean(axis=0)
            slope = np.stack([np.gradient(ys[:, j], xs[:, j]) for j in range(xs.shape[1])], axis=1)
            self._mean_table = (xs, ys, slope)
        return self._mean_table

    def thinned(self, draws: int) -> Curves:
        """These curves on at most ``draws`` evenly spaced posterior draws (the parts' too)."""
        n = next(iter(self.params.values())).shape[0] if self.params else 0
        if self.parts is not None:
            return replace(self, parts=[p.thinned(draws) for p in self.parts], _mean_table=None, _split=None)
        if n <= draws:
            return self
        keep = np.unique(np.linspace(0, n - 1, draws).astype(int))
        return replace(self, params={k: v[keep] for k, v in self.params.items()}, _split=None)

    def _interp(self, x: np.ndarray, which: int) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, x.shape[-1])
        table = self._table(flat.max(axis=0))
        xs, ys = table[0], table[which]
        out = np.stack([np.interp(flat[:, j], xs[:, j], ys[:, j]) for j in range(flat.shape[1])], axis=1)
        return out.reshape(x.shape)

    def channel_mean(self, j: int, x: np.ndarray) -> np.ndarray:
        """E[f_j] at the points ``x`` (1-D) of channel ``j`` alone (the dynamic programme's grid), from the mean
        curves tabulated once: the programme only picks the basin (S-shaped curves have two), and a national run's
        optimum is then polished on every draw (:func:`optimise`)."""
        x = np.asarray(x, dtype=float)
        xs, ys, _ = self._table(np.where(np.arange(len(self.channels)) == j, x.max(initial=0.0), 0.0))
        return np.interp(x, xs[:, j], ys[:, j])

    def mean_response(self, x: np.ndarray) -> np.ndarray:
        if self.parts is not None:
            return self._interp(x, 1)
        return self.response(x).mean(axis=0)

    def mean_gradient(self, x: np.ndarray) -> np.ndarray:
        """d E[f_c] / d x_c, per channel (exact, by the chain rule on each family; a geo run's from its table)."""
        if self.parts is not None:
            return self._interp(np.asarray(x, dtype=float)[None, :], 2)[0]
        z = np.asarray(x, dtype=float) / self.channel_scale
        d = saturation_gradient(self.kind, self.params, z, split=self._family_split())
        return d.mean(axis=0) * self.target_scale * self.value_per_kpi / self.channel_scale


@dataclass
class Allocation:
    budget: float
    channels: list[str]
    current: np.ndarray
    optimal: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    expected: np.ndarray  # draws (draw, channel) at the optimal split
    baseline: np.ndarray  # draws (draw, channel) at the current split
    hdi_prob: float = HDI_PROB

    def to_dict(self) -> dict[str, Any]:
        def iv(draws: np.ndarray) -> dict[str, float]:
            return interval(draws, self.hdi_prob)

        return {
            "hdi_prob": self.hdi_prob,
            "budget": float(self.budget),
            "channels": [
                {
                    "name": name,
                    "current_spend": float(self.current[j]),
                    "optimal_spend": float(self.optimal[j]),
                    "change": float(self.optimal[j] - self.current[j]),
                    "min_spend": float(self.lower[j]),
                    "max_spend": float(self.upper[j]),
                    "expected_contribution": iv(self.expected[:, j]),
                    "current_contribution": iv(self.baseline[:, j]),
                }
                for j, name in enumerate(self.channels)
            ],
            "expected_total_contribution": iv(self.expected.sum(axis=1)),
            "current_total_contribution": iv(self.baseline.sum(axis=1)),
            "expected_gain": iv(self.expected.sum(axis=1) - self.baseline.sum(axis=1)),
        }


def parse_bounds(specs: list[str], channels: list[str], current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``CHANNEL=MIN:MAX`` (spend per period), ``CHANNEL=-20%:+30%`` (of current) or ``CHANNEL=fixed``."""
    lower = np.zeros(len(channels))
    upper = np.full(len(channels), np.inf)
    for spec in specs or []:
        name, sep, rng = spec.partition("=")
        if not sep or name not in channels:
            raise UsageError(
                f"Bound {spec!r} must be CHANNEL=MIN:MAX with a channel of the run ({', '.join(channels)})."
            )
        j = channels.index(name)
        if rng.strip().lower() == "fixed":
            lower[j] = upper[j] = current[j]
            continue
        lo, sep, hi = rng.partition(":")
        if not sep:
            raise UsageError(f"Bound {spec!r} must be CHANNEL=MIN:MAX, CHANNEL=-20%:+30% or CHANNEL=fixed.")
        try:
            lower[j] = _bound_value(lo, current[j], 0.0)
            upper[j] = _bound_value(hi, current[j], np.inf)
        except ValueError as exc:
            raise UsageError(f"Bound {spec!r}: {exc}.") from exc
        if lower[j] > upper[j]:
            raise InputError(
                f"Bound {spec!r} is empty: its minimum {lower[j]:,.2f} is above its maximum {upper[j]:,.2f}."
            )
    return lower, upper


def hold_unidentified(channels: list[str], held: list[str], bounds: list[str] | None) -> tuple[list[str], list[str]]:
    """Bounds that keep each channel of ``held`` (not identified by the data) at today's spend, unless ``bounds``
    names it: an explicit bound is the user choosing to move it. Returns the bounds and the channels held."""
    named = {spec.partition("=")[0] for spec in bounds or []}
    holding = [c for c in channels if c in set(held) and c not in named]
    return [f"{c}=fixed" for c in holding] + list(bounds or []), holding


def _bound_value(text: str, current: float, default: float) -> float:
    text = text.strip()
    if not text:
        return default
    if text.endswith("%"):
        return max(current * (1 + float(text[:-1]) / 100), 0.0)
    value = float(text)
    if value < 0:
        raise ValueError("spend bounds cannot be negative")
    return value


NAMED_BOUNDS = 6


def _named_bounds(channels: list[str], values: np.ndarray, sign: str) -> str:
    """The bounds an infeasible budget's sentence names: the largest few, then how many more (a geo x channel
    allocation has hundreds, and a wall of them hides the one the user should change)."""
    order = sorted(range(len(channels)), key=lambda i: -values[i])
    named = ", ".join(f"{channels[i]} {sign} {values[i]:,.2f}" for i in order[:NAMED_BOUNDS])
    more = len(order) - NAMED_BOUNDS
    return named + (f" and {more} more" if more > 0 else "")


def check_feasible(budget: float, channels: list[str], lower: np.ndarray, upper: np.ndarray) -> None:
    if budget < 0 or not np.isfinite(budget):
        raise InputError(f"The budget must be a non-negative number, not {budget}.")
    if lower.sum() > budget + 1e-6:
        positive = [i for i, lo in enumerate(lower) if lo > 0]
        named = _named_bounds([channels[i] for i in positive], lower[positive], "≥")
        raise InputError(
            f"The minimum bounds ({named}) add up to {lower.sum():,.2f}, more than the budget {budget:,.2f} per period."
        )
    if np.isfinite(upper).all() and upper.sum() < budget - 1e-6:
        named = _named_bounds(channels, upper, "≤")
        raise InputError(
            f"The maximum bounds ({named}) add up to {upper.sum():,.2f}, less than the budget {budget:,.2f} per period."
        )


def _dynamic_programme(curves: Curves, budget: float, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Global optimum on a grid of the budget left after the minimums (max-plus convolution per channel)."""
    free = budget - lower.sum()
    k = len(curves.channels)
    if free <= 0:
        return lower.copy()
    step = free / GRID
    units = np.arange(GRID + 1)
    cap = np.minimum(np.floor((upper - lower) / step + 1e-9), GRID).astype(int)
    values = np.full((k, GRID + 1), -np.inf)
    for j in range(k):
        x = (lower[j] + units[: cap[j] + 1] * step)[:, None]
        values[j, : cap[j] + 1] = curves.channel_mean(j, x[:, 0])
    best = values[0].copy()
    choice = np.zeros((k, GRID + 1), dtype=int)
    choice[0] = units
    for j in range(1, k):
        # new[b] = max_u best[b - u] + values[j, u]  (a max-plus convolution)
        total = np.full((cap[j] + 1, GRID + 1), -np.inf)  # [u, b]
        for u in range(cap[j] + 1):
            total[u, u:] = best[: GRID + 1 - u] + values[j, u]
        choice[j] = np.argmax(total, axis=0)
        best = total.max(axis=0)
    alloc = np.zeros(k)
    b = GRID
    for j in range(k - 1, 0, -1):
        u = choice[j, b]
        alloc[j] = u
        b -= u
    alloc[0] = b
    return lower + alloc * step


def optimise(curves: Curves, budget: float, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Spend per channel maximising expected contribution with ``sum == budget`` and bounds kept."""
    check_feasible(budget, curves.channels, lower, upper)
    hi = np.where(np.isfinite(upper), upper, budget)
    start = _dynamic_programme(curves, budget, lower, hi)
    if curves.parts is not None:  # tabulated (piecewise-linear) curves: SLSQP's polish stalls on their kinks, and
        return _exact_budget(start, budget, lower, hi)  # the grid is already 1/GRID of the budget fine
    scale = max(budget, 1.0)

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        x = u * scale
        return -float(curves.mean_response(x[None, :]).sum()) / scale, -curves.mean_gradient(x) * 1.0

    result = minimize(
        objective,
        start / scale,
        jac=True,
        method="SLSQP",
        bounds=list(zip(lower / scale, hi / scale, strict=True)),
        constraints=[{"type": "eq", "fun": lambda u: u.sum() - budget / scale, "jac": lambda u: np.ones_like(u)}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    polished = np.clip(result.x * scale, lower, hi)
    best = polished if _value(curves, polished) >= _value(curves, start) else start
    return _exact_budget(best, budget, lower, hi)


def _value(curves: Curves, x: np.ndarray) -> float:
    return float(curves.mean_response(x[None, :]).sum())


def _exact_budget(x: np.ndarray, budget: float, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Spread rounding error over channels with room, so the split sums to the budget exactly."""
    x = np.clip(x, lower, upper)
    for _ in range(5):
        gap = budget - x.sum()
        if abs(gap) <= 1e-9 * max(budget, 1.0):
            break
        room = (upper - x) if gap > 0 else (x - lower)
        if room.sum() <= 0:
            break
        x = np.clip(x + gap * room / room.sum(), lower, upper)
    return x


def allocate(curves: Curves, budget: float, bounds: list[str] | None = None) -> Allocation:
    lower, upper = parse_bounds(bounds or [], curves.channels, curves.current)
    optimal = optimise(curves, budget, lower, upper)
    return Allocation(
        budget=budget,
        channels=curves.channels,
        current=curves.current,
        optimal=optimal,
        lower=lower,
        upper=upper,
        expected=curves.response(optimal[None, :])[:, 0, :],
        baseline=curves.response(curves.current[None, :])[:, 0, :],
        hdi_prob=curves.hdi_prob,
    )


def _curves_from_posterior(run: RunDir, summary: dict[str, Any], tree: Any = None) -> Curves:
    if tree is None:
        tree = run.posterior(keep=lambda name: name.startswith("saturation_"), need=["saturation_"])
    with run.reading():
        post = Posterior.from_idata(tree, policy.run_frequency(summary), hdi_prob=summary.get("hdi_prob") or HDI_PROB)
        return Curves.from_posterior(post, value_per_kpi=_kpi_value(summary))


def _kpi_value(summary: dict[str, Any]) -> float:
    return kpi_value(summary.get("kpi_type"), summary.get("revenue_per_kpi"))


def run_curves(run_dir: str | Path, summary: dict[str, Any], posterior: Any = None) -> Curves:
    """The run's curves from ``posterior`` (the tree written as its ``posterior.nc``, still in memory: reading it
    back took 0.5 s of a fit), else from the file."""
    from mmmlib.runs import RunDir

    return _curves_from_posterior(RunDir(run_dir), summary, posterior)


def store_curves(run_dir: str | Path, summary: dict[str, Any], curves: Curves | None = None) -> None:
    """Write the run's ``curves.npz`` (:mod:`mmmlib.curves_file`), before its summary and once its ``posterior.nc``
    is whole (the file records the posterior's fingerprint): ``curves`` when given (:func:`run_curves`)."""
    curves_file.write(curves if curves is not None else run_curves(run_dir, summary), run_dir)


def load_curves(run_dir: str | Path) -> Curves:
    """Curves of a run: its ``curves.npz`` when that reads back whole, else from ``posterior.nc`` (only the
    saturation draws are read).

    A damaged summary or posterior is one sentence naming the run (``runs``): the curves are evaluated once at
    today's spend here, so a posterior lacking a parameter of its curve family fails now, not in the optimiser.
    """
    from mmmlib.runs import RunDir

    run = RunDir(run_dir)
    summary = run.summary()
    stored = curves_file.read(run.path, _kpi_value(summary), summary.get("hdi_prob") or HDI_PROB)
    curves = stored if stored is not None else _curves_from_posterior(run, summary)
    with run.reading():
        curves.mean_response(curves.current[None, :])
        curves.mean_gradient(curves.current)
    return curves


def marginal_at(curves: Curves, budget: float, lower: np.ndarray, upper: np.ndarray) -> float:
    """Return on the next unit of budget when it is allocated optimally (the constraint's shadow price)."""
    return marginal_of(curves, optimise(curves, budget, lower, upper), budget, lower, upper)


def marginal_of(curves: Curves, x: np.ndarray, budget: float, lower: np.ndarray, upper: np.ndarray) -> float:
    """The shadow price at ``x``, the optimal split of ``budget``: exact where ``x`` is shown to be a KKT point
    (:func:`shadow_price`), else the difference of the best totals at a budget 1 % either side."""
    exact = shadow_price(curves, x, lower, upper)
    if exact is not None:
        return exact
    step = max(budget * 0.01, 1e-6)
    lo_budget = max(budget - step, float(lower.sum()))
    hi_budget = budget + step
    if np.isfinite(upper).all():
        hi_budget = min(hi_budget, float(upper.sum()))
    if hi_budget <= lo_budget:
        return 0.0
    hi_value = _value(curves, optimise(curves, hi_budget, lower, upper))
    lo_value = _value(curves, optimise(curves, lo_budget, lower, upper))
    return float((hi_value - lo_value) / (hi_budget - lo_budget))


KKT_TOLERANCE = 1e-3  # relative disagreement of the free channels' marginal returns accepted as one shadow price


def shadow_price(curves: Curves, x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """The budget constraint's multiplier at the optimal split ``x``, from the curves' gradient, or None where ``x``
    is not shown to satisfy the Karush-Kuhn-Tucker conditions.

    At the optimum every channel strictly inside its bounds returns the same at the margin, one at its minimum no
    more and one at its maximum no less; that common value is what the next unit of budget returns. It is exact and
    needs no further optimisation (the difference quotient at a budget 1 % either side cost two optimisations per
    budget, two thirds of the planner's opening frontier). Where the curves are too steep for the optimiser to settle
    (returns with an S-shape or a slope without bound at zero spend) or bounds hold every channel (a kink), None."""
    gradient = curves.mean_gradient(x)
    room = 1e-6 * max(float(np.sum(x)), 1.0)
    free = (x > lower + room) & (x < upper - room)
    if not free.any() or not np.isfinite(gradient).all():
        return None
    price = float(np.mean(gradient[free]))
    tol = KKT_TOLERANCE * max(abs(price), 1e-12)
    if np.ptp(gradient[free]) > tol:
        return None
    movable = upper > lower  # a channel held fixed takes no part
    at_min, at_max = movable & ~free & (x <= lower + room), movable & ~free & (x >= upper - room)
    if (gradient[at_min] > price + tol).any() or (gradient[at_max] < price - tol).any():
        return None
    return price


def frontier(
    curves: Curves,
    low_pct: float = policy.SCENARIO_LOW_PCT,
    high_pct: float = policy.SCENARIO_HIGH_PCT,
    steps: int = policy.SCENARIO_STEPS,
    bounds: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Expected contribution and marginal ROAS of the best split, for total budgets around today's (by default the
    scenario grid of :mod:`mmmlib.policy`)."""
    lower, upper = parse_bounds(bounds or [], curves.channels, curves.current)
    today = float(curves.current.sum())
    points = []
    for pct in np.linspace(low_pct, high_pct, steps):
        budget = today * (1 + pct / 100)
        try:
            x = optimise(curves, budget, lower, upper)
        except InputError:
            continue  # outside what the bounds allow
        draws = curves.response(x[None, :])[:, 0, :].sum(axis=1)
        points.append(
            {
                "change_pct": float(pct),
                "budget": budget,
                "allocation": dict(zip(curves.channels, map(float, x), strict=True)),
                "expected_contribution": interval(draws, curves.hdi_prob),
                "marginal_roas": marginal_of(curves, x, budget, lower, upper),
            }
        )
    return points


def largest_budget_with_marginal(
    curves: Curves, threshold: float, bounds: list[str] | None = None, ceiling_factor: float = 5.0
) -> dict[str, Any]:
    """The largest total budget per period whose optimal split still returns at least ``threshold`` at the margin."""
    lower, upper = parse_bounds(bounds or [], curves.channels, curves.current)
    low = max(float(lower.sum()), 1e-6)
    high = float(curves.current.sum()) * ceiling_factor
    if np.isfinite(upper).all():
        high = min(high, float(upper.sum()))
    if marginal_at(curves, low, lower, upper) < threshold:
        return {"threshold": threshold, "budget": None, "reason": "even the smallest allowed budget returns less"}
    if marginal_at(curves, high, lower, upper) >= threshold:
        return {"threshold": threshold, "budget": high, "reason": "still above the threshold at the search ceiling"}
    for _ in range(40):
        mid = 0.5 * (low + high)
        if marginal_at(curves, mid, lower, upper) >= threshold:
            low = mid
        else:
            high = mid
        if high - low < 1e-4 * high:
            break
    x = optimise(curves, low, lower, upper)
    return {
        "threshold": threshold,
        "budget": low,
        "allocation": dict(zip(curves.channels, map(float, x), strict=True)),
        "expected_contribution": interval(curves.response(x[None, :])[:, 0, :].sum(axis=1), curves.hdi_prob),
    }
