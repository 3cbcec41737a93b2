"""When the operator is at the control room, and when they come back to it.

Two kinds of return make the Dashboard lead with a "while you were away" recap: a new
`at tui` on a town (away since the last time any control room saw them, kept in the store)
and, in a running one, input after `ui.away_minutes` without any. Times come from the
app's clock (`Services.now`), so tests move it by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta

SEEN_EVERY = timedelta(minutes=1)
"""How often, while input arrives, the store is told the operator is here."""


class Presence:
    """The operator's last input, and when the store last heard of them."""

    def __init__(self) -> None:
        self.last_input: datetime | None = None
        """The last key or click (the start of the app counts as one)."""
        self.noted: datetime | None = None
        """When the store was last told (None: not since the app started)."""

    def start(self, now: datetime) -> None:
        """The app started: presence counts from here."""
        self.last_input = now

    def input(self, now: datetime, away_minutes: int) -> datetime | None:
        """Input at `now`: the time the operator left if this input is a return after at
        least `away_minutes` (0 turns returns off), else None."""
        left, self.last_input = self.last_input, now
        if away_minutes <= 0 or left is None:
            return None
        return left if now - left >= timedelta(minutes=away_minutes) else None

    def due(self, now: datetime) -> bool:
        """Whether the store should be told now (first input, then once a minute)."""
        if self.noted is not None and now - self.noted < SEEN_EVERY:
            return False
        self.noted = now
        return True
