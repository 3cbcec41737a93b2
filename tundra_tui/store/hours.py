"""Activity by weekday and hour, shared by the event and metrics tables' heatmap reads.

Its own module so that the event log (which every client opens) does not import the
metrics repository and its cost dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

WEEKDAY_HOUR = "(CAST(strftime('%w', at) AS INTEGER) + 6) % 7, CAST(strftime('%H', at) AS INTEGER)"
"""Monday-first weekday (0-6) and hour (0-23) of a stored UTC timestamp."""


@dataclass(frozen=True, slots=True)
class HourCell:
    """How much happened in one hour of one weekday (UTC), summed over a window."""

    weekday: int
    """0 = Monday ... 6 = Sunday."""
    hour: int
    count: int
    cost_usd: float
