"""The choices behind the numbers users see, each made once: what "today's spend" averages over, how far the
suggested reallocation may move a channel, which total budgets the scenarios try, and what a period is.

The data's frequency is found once, by validation (:mod:`mmmlib.data.validate`), carried on the dataset and recorded
in the run's summary (``period.frequency``); readers of a run take it from there (:func:`run_frequency`) rather than
guess it again from the dates. Windows are set in weeks, as docs/contract.md states them, and converted to periods by
the frequency (:func:`periods`): 52 weeks are 52 weekly periods or 364 daily ones.
"""

from __future__ import annotations

from typing import Any

# The frequencies a model takes, as days per period.
PERIOD_DAYS = {"daily": 1, "weekly": 7}
DEFAULT_FREQUENCY = "weekly"  # what a summary records when a run's frequency was not given (docs/contract.md's default)

# "Today's spend": the average spend per period over the last 52 weeks of the fitted data (all of it if shorter).
# Response curves, marginal ROAS, the reallocation, the optimiser's bounds in % and forecasts' default spend use it.
RECENT_WEEKS = 52

# The reallocation a summary suggests moves each channel by at most ±30 % of today's spend (Meridian's default too);
# the budget planner's bounds start there.
REALLOCATION_LIMIT_PCT = 30

# Budget scenarios (``mmm scenarios``, the planner's frontier): total budgets from -30 % to +50 % of today's, 9 steps.
SCENARIO_LOW_PCT = -30
SCENARIO_HIGH_PCT = 50
SCENARIO_STEPS = 9


def periods(weeks: int, frequency: str) -> int:
    """``weeks`` weeks as a whole number of periods of ``frequency`` (``"weekly"`` or ``"daily"``)."""
    if frequency not in PERIOD_DAYS:
        raise ValueError(f"frequency must be one of {', '.join(PERIOD_DAYS)}, not {frequency!r}")
    return weeks * 7 // PERIOD_DAYS[frequency]


def recent_periods(frequency: str) -> int:
    """How many periods "today's spend" averages over: :data:`RECENT_WEEKS` weeks of ``frequency``."""
    return periods(RECENT_WEEKS, frequency)


def run_frequency(summary: dict[str, Any]) -> str:
    """The frequency validation found for a run's data, as its summary records it (``period.frequency``).

    Every summary written records it; one that does not, or names a frequency no model takes, reads as
    :data:`DEFAULT_FREQUENCY`, the value summaries are written with when none was given.
    """
    period = summary.get("period")
    frequency = period.get("frequency") if isinstance(period, dict) else None
    return frequency if isinstance(frequency, str) and frequency in PERIOD_DAYS else DEFAULT_FREQUENCY
