"""Pure arithmetic behind the Costs and Analytics tabs: no I/O, no clock, no Textual.

Every function takes `now` (or a date) and plain numbers or rows, so each figure the
operator reads can be checked by a unit test. Days and hours are UTC, as stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SHADES = " ░▒▓█"
"""Heatmap intensity 0-4, readable in monochrome: the characters carry it, colour only helps."""
WARN_FRACTION = 0.8
"""A budget warns from 80% and is over from 100%."""
RECENT_HOURS = 3
"""The burn rate's short window."""
FORECAST_BASIS_DAYS = 7
"""The forecast averages at most this many recent days."""
FORECAST_DAYS = 30


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day."""
    moment = now.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def month_start(now: datetime) -> datetime:
    """Midnight UTC of the first of `now`'s month."""
    return day_start(now).replace(day=1)


def next_month_start(now: datetime) -> datetime:
    """Midnight UTC of the first of the following month."""
    first = month_start(now)
    return (first + timedelta(days=32)).replace(day=1)


def burn_rate(cost_usd: float, hours: float) -> float:
    """Dollars per hour; no elapsed time means no rate rather than a division by zero."""
    return cost_usd / hours if hours > 0 else 0.0


def hours_today(now: datetime) -> float:
    """Hours since midnight UTC, at least one so the first minutes of a day don't spike."""
    return max(1.0, (now - day_start(now)).total_seconds() / 3600)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Spend projected from the recent daily average."""

    daily_average: float
    basis_days: float
    """How many days the average covers: the last 7, or fewer while usage is younger."""
    next_days: float
    """Spend over the next FORECAST_DAYS days at the daily average."""
    month_end: float
    """This month's spend so far plus the average for the days left in the month."""


def forecast(
    recent_cost: float,
    first_sample_at: datetime | None,
    now: datetime,
    *,
    month_spent: float = 0.0,
) -> Forecast:
    """Project spend from `recent_cost`, what the last FORECAST_BASIS_DAYS days cost.

    While the usage history is younger than that, the average divides by its age instead
    (at least one day, so two busy hours are not extrapolated to a whole day).
    """
    if first_sample_at is None:
        return Forecast(0.0, 0.0, 0.0, month_spent)
    age_days = (now - first_sample_at).total_seconds() / 86400
    basis = min(float(FORECAST_BASIS_DAYS), max(1.0, age_days))
    average = recent_cost / basis
    days_left = (next_month_start(now) - now).total_seconds() / 86400
    return Forecast(average, basis, average * FORECAST_DAYS, month_spent + average * days_left)


class BudgetLevel(StrEnum):
    """Where spend stands against a budget."""

    NONE = "none"
    """No budget is set (0)."""
    OK = "ok"
    NEAR = "near"
    OVER = "over"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Spend against one budget."""

    spent: float
    budget: float
    level: BudgetLevel
    complete: bool = True
    """False when unpriced usage is left out of `spent`: the figure is a floor."""

    @property
    def percent(self) -> float:
        """Spend as a percentage of the budget, 0 when there is none."""
        return 100 * self.spent / self.budget if self.budget > 0 else 0.0


def budget_status(spent: float, budget: float, *, complete: bool = True) -> BudgetStatus:
    """Classify `spent` against `budget`; a budget of 0 (or less) means none is set, and
    `complete=False` marks a spend that leaves unpriced usage out (a floor)."""
    if budget <= 0:
        return BudgetStatus(spent, 0.0, BudgetLevel.NONE, complete)
    if spent >= budget:
        level = BudgetLevel.OVER
    elif spent >= WARN_FRACTION * budget:
        level = BudgetLevel.NEAR
    else:
        level = BudgetLevel.OK
    return BudgetStatus(spent, budget, level, complete)


def share_percent(part: float, total: float) -> float:
    """`part` as a percentage of `total`, 0 for an empty total."""
    return 100 * part / total if total > 0 else 0.0


def format_usd(amount: float) -> str:
    """Dollars with cents and thousands separators; tiny non-zero amounts say so."""
    if 0 < amount < 0.005:
        return "<$0.01"
    return f"${amount:,.2f}"


def compact_number(value: float) -> str:
    """A token count in at most six characters: 950, 12.3k, 4.1M, 2.0B."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Activity per weekday (rows, Monday first) and hour (columns, 0-23)."""

    cells: tuple[tuple[float, ...], ...]

    @property
    def peak(self) -> float:
        """The largest cell."""
        return max((max(row) for row in self.cells), default=0.0)

    @property
    def total(self) -> float:
        """Everything counted."""
        return sum(sum(row) for row in self.cells)

    def level(self, weekday: int, hour: int) -> int:
        """Intensity 0-4 (an index into SHADES): 0 only for an empty cell."""
        value, peak = self.cells[weekday][hour], self.peak
        if value <= 0 or peak <= 0:
            return 0
        return min(4, max(1, math.ceil(4 * value / peak)))

    def busiest(self) -> tuple[int, int, float] | None:
        """(weekday, hour, value) of the largest cell, the earliest on ties; None if empty."""
        best: tuple[int, int, float] | None = None
        for weekday, row in enumerate(self.cells):
            for hour, value in enumerate(row):
                if value > 0 and (best is None or value > best[2]):
                    best = (weekday, hour, value)
        return best

    def busiest_hour(self) -> tuple[int, float] | None:
        """The hour of day with the most activity over all weekdays."""
        totals = [sum(row[hour] for row in self.cells) for hour in range(24)]
        peak = max(totals)
        return (totals.index(peak), peak) if peak > 0 else None

    def busiest_weekday(self) -> tuple[int, float] | None:
        """The weekday with the most activity."""
        totals = [sum(row) for row in self.cells]
        peak = max(totals)
        return (totals.index(peak), peak) if peak > 0 else None


def heatmap(cells: Iterable[tuple[int, int, float]]) -> Heatmap:
    """Build the 7x24 grid from (weekday, hour, value) rows; repeated cells add up."""
    grid = [[0.0] * 24 for _ in range(7)]
    for weekday, hour, value in cells:
        if 0 <= weekday < 7 and 0 <= hour < 24:
            grid[weekday][hour] += value
    return Heatmap(tuple(tuple(row) for row in grid))


def daily_series(values: Mapping[date, float], end: date, days: int) -> list[tuple[date, float]]:
    """The `days` days ending with `end`, oldest first, with zeros where nothing happened."""
    start = end - timedelta(days=days - 1)
    return [
        (start + timedelta(days=i), values.get(start + timedelta(days=i), 0.0))
        for i in range(max(0, days))
    ]


def throughput(done_at: Iterable[str], end: date, days: int) -> list[tuple[date, float]]:
    """Beads finished per day over the `days` days ending with `end` (stored timestamps)."""
    counts: dict[date, float] = {}
    for stamp in done_at:
        day = date.fromisoformat(stamp[:10])
        counts[day] = counts.get(day, 0.0) + 1
    return daily_series(counts, end, days)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * min(100.0, max(0.0, q)) / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class CycleStat:
    """Cycle times (hours from created to done) of the beads finished in one period."""

    start: date
    """First day of the period."""
    count: int
    median: float
    p90: float


def cycle_stats(
    finished: Iterable[tuple[str, float]], end: date, periods: int, period_days: int = 7
) -> list[CycleStat]:
    """Median and p90 per period of `period_days` days, the last one ending with `end`.

    `finished` holds (done_at, hours) pairs; beads outside the periods are ignored.
    Periods are oldest first; an empty period has count 0 and zero times.
    """
    buckets: list[list[float]] = [[] for _ in range(max(0, periods))]
    for stamp, hours in finished:
        back = (end - date.fromisoformat(stamp[:10])).days // period_days
        if 0 <= back < periods:
            buckets[periods - 1 - back].append(hours)
    first = end - timedelta(days=periods * period_days - 1)
    return [
        CycleStat(
            first + timedelta(days=i * period_days),
            len(bucket),
            percentile(bucket, 50),
            percentile(bucket, 90),
        )
        for i, bucket in enumerate(buckets)
    ]


def trend(recent: float, previous: float) -> str:
    """How `recent` compares with `previous`, in words a sentence can end with."""
    if previous <= 0:
        return "up from zero" if recent > 0 else "flat"
    change = 100 * (recent - previous) / previous
    if abs(change) < 5:
        return "flat"
    return f"{'up' if change > 0 else 'down'} {abs(change):.0f}%"


def insights(
    heat: Heatmap, done: Sequence[tuple[date, float]], cycles: Sequence[CycleStat]
) -> list[str]:
    """A few plain sentences: busiest hour and weekday, throughput and cycle-time trends."""
    lines: list[str] = []
    hour = heat.busiest_hour()
    if hour is not None:
        lines.append(f"Busiest hour: {hour[0]:02d}:00 UTC")
    weekday = heat.busiest_weekday()
    if weekday is not None:
        lines.append(f"Busiest day: {WEEKDAYS[weekday[0]]}")
    recent = sum(value for _, value in done[-7:])
    previous = sum(value for _, value in done[-14:-7])
    if len(done) >= 14 and recent + previous > 0:
        lines.append(
            f"Throughput {trend(recent, previous)}: {recent:.0f} beads in the last 7 days, "
            f"{previous:.0f} in the 7 before"
        )
    measured = [stat for stat in cycles if stat.count]
    if len(measured) >= 2:
        last, before = measured[-1], measured[-2]
        # Shorter is better, but the words follow the time: "up" means slower.
        lines.append(
            f"Cycle time {trend(last.median, before.median)}: median {last.median:.1f}h "
            f"(was {before.median:.1f}h)"
        )
    elif measured:
        lines.append(f"Cycle time: median {measured[-1].median:.1f}h")
    return lines


_RELATIVE = re.compile(r"(\d+)\s*([dhm])")


def parse_window(text: str, now: datetime) -> datetime | None:
    """The instant a `--since`/`--until` word names; None for `all` (no bound).

    `today` and `yesterday` are midnights UTC, `7d`/`2h`/`30m` count back from `now`, a date
    is its midnight UTC, and an ISO time without a zone is UTC. Anything else is a ValueError
    whose message lists the forms.
    """
    word = text.strip().lower()
    if word in ("", "all"):
        return None
    if word == "today":
        return day_start(now)
    if word == "yesterday":
        return day_start(now) - timedelta(days=1)
    if match := _RELATIVE.fullmatch(word):
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        if len(word) == 10:
            return datetime.combine(date.fromisoformat(word), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read the time {text!r}: use today, yesterday, all, 7d, 2h, 30m, "
            "a date (2026-12-01) or an ISO time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True, slots=True)
class DailyForecast:
    """The 30-day forecast from whole past days, with its method in words."""

    mean: float
    """Mean spend of the basis days."""
    basis_days: int
    """How many full days the mean covers (0: no full day of data yet)."""
    next_30: float
    month_spent: float
    month_end: float
    days_left: float
    method: str


FORECAST_METHOD = (
    "mean daily spend of the last N full days (N = min({cap}, days with data)) × {days}; "
    "month-end = spent + mean × days left"
)


def daily_forecast(
    full_days: Sequence[float], now: datetime, *, month_spent: float
) -> DailyForecast:
    """Project from `full_days`, the spend of each whole UTC day since the first sample
    (oldest first, today excluded): the mean of the last FORECAST_BASIS_DAYS of them."""
    basis = list(full_days)[-FORECAST_BASIS_DAYS:]
    mean = sum(basis) / len(basis) if basis else 0.0
    days_left = (next_month_start(now) - now).total_seconds() / 86400
    return DailyForecast(
        mean=mean,
        basis_days=len(basis),
        next_30=mean * FORECAST_DAYS,
        month_spent=month_spent,
        month_end=month_spent + mean * days_left,
        days_left=days_left,
        method=FORECAST_METHOD.format(cap=FORECAST_BASIS_DAYS, days=FORECAST_DAYS),
    )


SPARK = "▁▂▃▄▅▆▇█"
"""Sparkline heights, lowest first (the shape reads in monochrome)."""


def sparkline(values: Sequence[float], width: int) -> str:
    """The last `width` values as one line of block heights, scaled to their own peak
    (an all-zero series is a flat baseline, not empty)."""
    shown = list(values)[-width:] if width > 0 else []
    peak = max(shown, default=0.0)
    if peak <= 0:
        return SPARK[0] * len(shown)
    top = len(SPARK) - 1
    return "".join(SPARK[min(top, max(0, math.ceil(top * value / peak)))] for value in shown)
