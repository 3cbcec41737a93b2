"""What the Costs and Analytics tabs show, read from the store in a few indexed queries.

Everything is aggregated in SQL (a reload stays cheap with 100k usage samples); the
arithmetic on the aggregates lives in `usage.analysis`. Both readers take `now` so a
test or snapshot sees fixed windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.store import CostRow, Store
from tundra_tui.usage.analysis import (
    FORECAST_BASIS_DAYS,
    RECENT_HOURS,
    BudgetStatus,
    CycleStat,
    Forecast,
    Heatmap,
    budget_status,
    burn_rate,
    cycle_stats,
    daily_series,
    day_start,
    forecast,
    heatmap,
    hours_today,
    insights,
    month_start,
    throughput,
)

GROUPS = ("agent", "model", "bead", "convoy", "day")
"""The Costs table's groupings, in the order `g` cycles them."""
COST_WINDOWS: tuple[tuple[str, int | None], ...] = (
    ("today", 0),
    ("7 days", 7),
    ("30 days", 30),
    ("all time", None),
)
"""The Costs table's windows: a label and how many days back (0 = since midnight)."""
CHART_DAYS = 30
"""Days of daily spend the Costs chart may show."""
ROW_LIMIT = 500
"""Groups read at most (a rollup by bead over a long history can be huge)."""
ACTIVITY_WINDOWS = (14, 28, 56)
"""The Analytics windows in days, whole weeks so each weekday counts equally."""


@dataclass(frozen=True, slots=True)
class CostReport:
    """Everything the Costs tab shows for one grouping and window."""

    rows: list[CostRow]
    window_cost: float
    window_input: int
    window_output: int
    window_cache: int
    today: BudgetStatus
    month: BudgetStatus
    month_end: BudgetStatus
    """The month's forecast total against the monthly budget."""
    burn_recent: float
    """$/hour over the last RECENT_HOURS hours."""
    burn_today: float
    """$/hour since midnight UTC."""
    forecast: Forecast
    daily: list[tuple[date, float]]
    """Spend per day over the last CHART_DAYS days, oldest first."""
    has_usage: bool
    """Whether any sample was ever recorded (an empty window is not an empty store)."""


def window_since(now: datetime, days: int | None) -> str:
    """The stored timestamp a window starts at: midnight `days` days back, "" for all time."""
    if days is None:
        return ""
    return iso(day_start(now) - timedelta(days=max(0, days - 1)))


async def cost_report(
    store: Store,
    now: datetime,
    *,
    group: str,
    days: int | None,
    daily_budget: float = 0.0,
    monthly_budget: float = 0.0,
) -> CostReport:
    """Read the rollup for `group` over the window and the figures around it."""
    metrics = store.metrics
    since = window_since(now, days)
    rows = await metrics.rollup(group, since=since, limit=ROW_LIMIT)
    window_days = await metrics.rollup("day", since=since)
    chart_since = window_since(now, CHART_DAYS)
    chart_days = (
        window_days if since == chart_since else await metrics.rollup("day", since=chart_since)
    )
    today = await metrics.total_cost(since=iso(day_start(now)))
    month = await metrics.total_cost(since=iso(month_start(now)))
    recent = await metrics.total_cost(since=iso(now - timedelta(hours=RECENT_HOURS)))
    basis = await metrics.total_cost(since=iso(now - timedelta(days=FORECAST_BASIS_DAYS)))
    first = await metrics.first_at()
    projection = forecast(basis, parse_iso(first) if first else None, now, month_spent=month)
    return CostReport(
        rows=rows,
        window_cost=sum(row.cost_usd for row in window_days),
        window_input=sum(row.input_tokens for row in window_days),
        window_output=sum(row.output_tokens for row in window_days),
        window_cache=sum(row.cache_tokens for row in window_days),
        today=budget_status(today, daily_budget),
        month=budget_status(month, monthly_budget),
        month_end=budget_status(projection.month_end, monthly_budget),
        burn_recent=burn_rate(recent, RECENT_HOURS),
        burn_today=burn_rate(today, hours_today(now)),
        forecast=projection,
        daily=daily_series(
            {date.fromisoformat(row.key): row.cost_usd for row in chart_days},
            day_start(now).date(),
            CHART_DAYS,
        ),
        has_usage=bool(first),
    )


@dataclass(frozen=True, slots=True)
class ActivityReport:
    """Everything the Analytics tab shows for one window."""

    days: int
    activity: Heatmap
    """Usage samples plus events per weekday and hour."""
    spend: Heatmap
    """Dollars per weekday and hour."""
    done: list[tuple[date, float]]
    """Beads finished per day, oldest first."""
    cycles: list[CycleStat]
    """Cycle times per week, oldest first."""
    insights: list[str]


async def activity_report(store: Store, now: datetime, *, days: int) -> ActivityReport:
    """Read the heatmaps, throughput and cycle times of the `days` days ending today."""
    since = window_since(now, days)
    cells = await store.metrics.by_hour(since=since) + await store.events.by_hour(since=since)
    activity = heatmap((cell.weekday, cell.hour, cell.count) for cell in cells)
    spend = heatmap((cell.weekday, cell.hour, cell.cost_usd) for cell in cells)
    finished = await store.beads.finished_since(since)
    today = day_start(now).date()
    done = throughput((stamp for stamp, _ in finished), today, days)
    cycles = cycle_stats(finished, today, max(1, days // 7))
    return ActivityReport(days, activity, spend, done, cycles, insights(activity, done, cycles))
