"""When a rate or usage limit ends, read from the screen the CLI showed.

The CLIs say it in a few forms: a clock time (`resets 3pm`, `resets at 3:04 PM
(Europe/London)`, `try again at 15:04`, `resets Dec 8 at 10am`), a delay (`try again in 2 hours
5 minutes`, `retry in 35.5s`, `1m30s`, `resets in 4h 12m`), an ISO time, or Claude's older
`usage limit reached|<epoch>`. A named zone is read with zoneinfo; with none the time is the
machine's local time (`tz`); a clock time already past means tomorrow. The screen is an
agent's output: it is only matched, never trusted beyond the numbers read from it. Only a line
that names a limit is read for a time, with the line after it if it gives none (the message
wrapped); the lowest such line that gives a time wins (the newest message is at the bottom).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_SHOWN: Final = 200
MAX_DELAY: Final = timedelta(days=31)
"""A longer wait is not a rate limit we can trust the screen about."""

_LIMIT = re.compile(
    r"(?i)(rate[ _-]?limit|usage limit|limit reached|hit your (?:[\w-]+ )?limit|quota"
    r"|too many requests|\b429\b|resource[ _]exhausted|try again|retry"
    r"|\bresets?\s+(?:(?:at|in|on)\s+)?\d)"
)
_UNIT = r"(?:days?|d|hours?|hrs?|h|minutes?|mins?|m(?!s)|seconds?|secs?|s|milliseconds?|ms)"
_PART = rf"(\d+(?:\.\d+)?)\s*({_UNIT})(?![A-Za-z])"
_DELAY = re.compile(
    rf"(?i)\b(?:in|after|for|retrydelay\W*)\s*((?:\d+(?:\.\d+)?\s*{_UNIT}(?![A-Za-z])[\s,]*(?:and\s+)?)+)"
)
_PARTS = re.compile(rf"(?i){_PART}")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_CLOCK = re.compile(
    r"(?i)\b(?:resets?|try again|retry|available|again)\s+(?:at\s+|on\s+)?"
    r"(?:(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})"
    r"(?:st|nd|rd|th)?,?\s+(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
    r"(?:\s*\((?P<zone>[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)*)\))?"
)
_ISO = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)"
)
_EPOCH = re.compile(r"(?i)limit reached\|(\d{10})\b")
_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_reset(text: str, now: datetime, tz: tzinfo) -> tuple[datetime | None, str]:
    """The reset time (aware, UTC) the screen `text` shows, and the line that showed it.

    None if no line gives one; the line is then the lowest that mentions a limit ('' if none).
    `now` is aware; `tz` is the zone of a clock time that names none.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line if len(line) <= 2000 else "" for line in lines]
    mention = ""
    for index in reversed(range(len(lines))):
        line = lines[index]
        if not _LIMIT.search(line):
            continue  # other text on screen ("Worked for 1m 30s", a log's date) is no reset
        found = _from_line(line, now, tz)
        if found is None and index + 1 < len(lines) and lines[index + 1]:
            found = _from_line(f"{line} {lines[index + 1]}", now, tz)  # a message that wraps
        if found is not None:
            return found.astimezone(UTC), line[:MAX_SHOWN]
        if not mention:
            mention = line[:MAX_SHOWN]
    return None, mention


def _from_line(line: str, now: datetime, tz: tzinfo) -> datetime | None:
    if match := _EPOCH.search(line):
        return _bounded(datetime.fromtimestamp(int(match.group(1)), UTC), now)
    if match := _ISO.search(line):
        return _iso(match.group(1), now, tz)
    if match := _DELAY.search(line):
        seconds = sum(_seconds(value, unit) for value, unit in _PARTS.findall(match.group(1)))
        if seconds > 0:
            return _bounded(now + timedelta(seconds=seconds), now)
    for match in _CLOCK.finditer(line):
        if match.group("minute") or match.group("ampm") or match.group("zone"):
            found = _clock(match, now, tz)
            if found is not None:
                return found
    return None


def _seconds(value: str, unit: str) -> float:
    unit = unit.lower()
    if unit.startswith("ms") or unit.startswith("milli"):
        return float(value) / 1000
    return float(value) * _SECONDS[unit[0]]


def _bounded(moment: datetime, now: datetime) -> datetime | None:
    return moment if now - timedelta(minutes=5) <= moment <= now + MAX_DELAY else None


def _iso(value: str, now: datetime, tz: tzinfo) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return _bounded(moment, now)


def _clock(match: re.Match[str], now: datetime, tz: tzinfo) -> datetime | None:
    zone: tzinfo = tz
    if name := match.group("zone"):
        try:
            zone = UTC if name.upper() in ("UTC", "GMT", "Z") else ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = tz
    hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
    if ampm := match.group("ampm"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.lower().startswith("p") else 0)
    if hour > 23 or minute > 59:
        return None
    local_now = now.astimezone(zone)
    day = local_now.date()
    if month := match.group("month"):
        try:
            day = day.replace(
                month=_MONTHS.index(month.lower()[:3]) + 1, day=int(match.group("day"))
            )
        except ValueError:
            return None
        if day < local_now.date() - timedelta(days=1):
            day = day.replace(year=day.year + 1)
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if moment <= now and not match.group("month"):
        moment += timedelta(days=1)  # a clock time already past means tomorrow
    return _bounded(moment, now)
