"""Time as the store writes it: ISO-8601 UTC strings that sort the way time does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Anything returning an aware datetime; tests and snapshots inject a fixed one."""


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Format with fixed-width microseconds so string order equals time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """Parse a timestamp written by `iso`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
