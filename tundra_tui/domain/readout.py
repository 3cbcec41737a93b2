"""Numbers as the control room shows them: money, change, durations, memory, tokens, CPU.

Pure functions, so every pane formats the same way and the formats are unit tested
without a terminal. Unknown values read `-`; nothing here ever invents a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from tundra_tui.domain.clock import iso, parse_iso

UNKNOWN = "-"
"""What a value nobody reported reads as."""

BAR_FULL, BAR_EMPTY = "█", "░"


@dataclass(frozen=True, slots=True)
class DayWindow:
    """Store timestamps bounding yesterday and today (days as `now`'s time zone counts them)."""

    yesterday: str
    today: str
    tomorrow: str
    a_day_ago: str
    """This time yesterday: today so far compares with yesterday up to here."""


def day_window(now: datetime) -> DayWindow:
    """The start of yesterday, today and tomorrow around `now`, as store timestamps."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return DayWindow(
        yesterday=iso(midnight - timedelta(days=1)),
        today=iso(midnight),
        tomorrow=iso(midnight + timedelta(days=1)),
        a_day_ago=iso(now - timedelta(days=1)),
    )


def money(usd: float) -> str:
    """`$47.20`; cents below a dollar still show (`$0.04`)."""
    return f"${usd:,.2f}"


def change(now: float, before: float) -> str:
    """Relative change, `+12%` or `-5%`; `new` when there was nothing before, `-` if neither."""
    if before <= 0:
        return "new" if now > 0 else UNKNOWN
    percent = round((now - before) * 100 / before)
    return f"{percent:+d}%" if percent else "±0%"


def duration(seconds: float | None) -> str:
    """`4m07s`, `2h05m` or `3d04h`, as `at session list` prints it; `-` when unknown."""
    if seconds is None or seconds < 0:
        return UNKNOWN
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def memory(kib: int | None) -> str:
    """Resident memory: `812 MiB`, `1.4 GiB`; `-` when unknown."""
    if kib is None or kib < 0:
        return UNKNOWN
    if kib >= 1024 * 1024:
        return f"{kib / (1024 * 1024):.1f} GiB"
    return f"{kib // 1024} MiB" if kib >= 1024 else f"{kib} KiB"


def tokens(count: int | None) -> str:
    """Token counts: `950`, `12.3k`, `4.1M`; `-` when unknown."""
    if count is None or count < 0:
        return UNKNOWN
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 100_000:
        return f"{count // 1_000}k"
    if count >= 1_000:
        return f"{count / 1_000:.1f}k"
    return str(count)


def percent(value: float | None) -> str:
    """A whole percentage, `45%`; `-` when unknown."""
    return UNKNOWN if value is None else f"{value:.0f}%"


def cpu_percent(before: tuple[float, float] | None, after: tuple[float, float]) -> float | None:
    """CPU use between two samples of (cpu seconds, uptime seconds) of one process.

    Both figures come from the daemon at the same instant, so the share does not
    depend on when the control room asked. None on the first sample, or when the
    process restarted (its counters went backwards) or no time passed.
    """
    if before is None:
        return None
    cpu = after[0] - before[0]
    elapsed = after[1] - before[1]
    if elapsed <= 0 or cpu < 0:
        return None
    return cpu * 100 / elapsed


def bar(fraction: float, width: int) -> tuple[str, str]:
    """A progress bar as its filled and empty parts, so each can take its own colour."""
    width = max(width, 0)
    filled = round(min(max(fraction, 0.0), 1.0) * width)
    return BAR_FULL * filled, BAR_EMPTY * (width - filled)


def clock_time(at: str, now: datetime, zone: tzinfo | None = None, *, short: bool = False) -> str:
    """`14:32` for a store timestamp of today; another day is `11-19 14:32`, or `11-19` if short."""
    try:
        moment = parse_iso(at)
    except ValueError:
        return UNKNOWN
    zone = zone or now.tzinfo
    local, today = moment.astimezone(zone), now.astimezone(zone)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return local.strftime("%m-%d" if short else "%m-%d %H:%M")
