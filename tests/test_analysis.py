"""Costs and Analytics arithmetic (pure), the store queries behind them, and the reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tundra_tui.domain.clock import iso
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import Store, open_store
from tundra_tui.usage.analysis import (
    BudgetLevel,
    budget_status,
    burn_rate,
    compact_number,
    cycle_stats,
    daily_series,
    day_start,
    forecast,
    format_usd,
    heatmap,
    hours_today,
    insights,
    month_start,
    next_month_start,
    percentile,
    share_percent,
    throughput,
    trend,
)
from tundra_tui.usage.reports import activity_report, cost_report, window_since

NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
"""A Friday."""


def at(**back: float) -> str:
    return iso(NOW - timedelta(**back))


# ---- pure arithmetic ---------------------------------------------------------------------


def test_calendar_boundaries_are_utc() -> None:
    assert day_start(NOW) == datetime(2026, 11, 20, tzinfo=UTC)
    assert month_start(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert next_month_start(NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month_start(datetime(2026, 12, 31, 23, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert next_month_start(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)


def test_burn_rate_never_divides_by_zero() -> None:
    assert burn_rate(6.0, 3) == 2.0
    assert burn_rate(6.0, 0) == 0.0
    assert burn_rate(0.0, 3) == 0.0
    assert hours_today(NOW) == pytest.approx(14.5)
    assert hours_today(datetime(2026, 11, 20, 0, 5, tzinfo=UTC)) == 1.0


def test_forecast_uses_the_last_seven_days() -> None:
    result = forecast(14.0, NOW - timedelta(days=40), NOW, month_spent=30.0)
    assert result.basis_days == 7
    assert result.daily_average == pytest.approx(2.0)
    assert result.next_days == pytest.approx(60.0)
    days_left = (datetime(2026, 12, 1, tzinfo=UTC) - NOW).total_seconds() / 86400
    assert result.month_end == pytest.approx(30.0 + 2.0 * days_left)


def test_forecast_with_young_or_no_history() -> None:
    two_days = forecast(10.0, NOW - timedelta(days=2), NOW)
    assert two_days.basis_days == pytest.approx(2.0)
    assert two_days.daily_average == pytest.approx(5.0)
    # Two busy hours are one day's spend, not twelve days' worth.
    one_day = forecast(3.0, NOW - timedelta(hours=2), NOW)
    assert one_day.basis_days == 1.0
    assert one_day.next_days == pytest.approx(90.0)
    empty = forecast(0.0, None, NOW, month_spent=0.0)
    assert (empty.daily_average, empty.next_days, empty.month_end) == (0.0, 0.0, 0.0)


def test_budget_levels_at_80_and_100_percent() -> None:
    assert budget_status(7.99, 10).level is BudgetLevel.OK
    assert budget_status(8.0, 10).level is BudgetLevel.NEAR
    assert budget_status(10.0, 10).level is BudgetLevel.OVER
    assert budget_status(12.0, 10).percent == pytest.approx(120.0)
    none = budget_status(50.0, 0)
    assert (none.level, none.percent) == (BudgetLevel.NONE, 0.0)
    assert budget_status(1.0, -5).level is BudgetLevel.NONE


def test_shares_and_formats() -> None:
    assert share_percent(1, 4) == 25.0
    assert share_percent(1, 0) == 0.0
    assert format_usd(1234.5) == "$1,234.50"
    assert format_usd(0) == "$0.00"
    assert format_usd(0.001) == "<$0.01"
    assert [compact_number(n) for n in (0, 950, 12_345, 4_100_000, 2e9)] == [
        "0",
        "950",
        "12.3k",
        "4.1M",
        "2.0B",
    ]


def test_heatmap_levels_and_busiest_cell() -> None:
    heat = heatmap([(4, 14, 8), (4, 14, 2), (0, 9, 5), (6, 23, 1), (9, 99, 50)])
    assert heat.cells[4][14] == 10  # repeated cells add up; out-of-range ones are dropped
    assert heat.peak == 10 and heat.total == 16
    assert heat.busiest() == (4, 14, 10)
    assert heat.busiest_hour() == (14, 10)
    assert heat.busiest_weekday() == (4, 10)
    assert [heat.level(4, 14), heat.level(0, 9), heat.level(6, 23), heat.level(1, 1)] == [
        4,
        2,
        1,
        0,
    ]


def test_empty_heatmap() -> None:
    heat = heatmap([])
    assert (heat.peak, heat.busiest(), heat.busiest_hour(), heat.level(0, 0)) == (0, None, None, 0)
    assert insights(heat, [], []) == []
    quiet = [(date(2026, 11, 1) + timedelta(days=i), 0.0) for i in range(14)]
    assert insights(heat, quiet, cycle_stats([], date(2026, 11, 14), 2)) == []


def test_daily_series_and_throughput_fill_gaps() -> None:
    end = date(2026, 11, 20)
    series = daily_series({date(2026, 11, 19): 2.0}, end, 3)
    assert series == [(date(2026, 11, 18), 0.0), (date(2026, 11, 19), 2.0), (end, 0.0)]
    assert daily_series({}, end, 0) == []
    done = throughput(
        ["2026-11-20T01:00:00.000000Z", "2026-11-20T09:00:00.000000Z", "2026-11-01T00:00:00Z"],
        end,
        2,
    )
    assert done == [(date(2026, 11, 19), 0.0), (end, 2.0)]


def test_percentile_interpolates() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 90) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0, 10.0], 90) == pytest.approx(7.6)


def test_cycle_stats_per_week() -> None:
    end = date(2026, 11, 20)
    finished = [
        ("2026-11-20T10:00:00.000000Z", 2.0),
        ("2026-11-14T10:00:00.000000Z", 4.0),
        ("2026-11-14T11:00:00.000000Z", 10.0),
        ("2026-11-13T10:00:00.000000Z", 6.0),
        ("2026-10-01T10:00:00.000000Z", 99.0),
    ]
    last, previous = cycle_stats(finished, end, 2)[-1], cycle_stats(finished, end, 2)[0]
    assert (last.start, last.count, last.median, last.p90) == (date(2026, 11, 14), 3, 4.0, 8.8)
    assert (previous.start, previous.count, previous.median) == (date(2026, 11, 7), 1, 6.0)
    assert cycle_stats([], end, 1) == [cycle_stats([], end, 1)[0]]
    assert cycle_stats([], end, 1)[0].count == 0


def test_trend_words() -> None:
    assert trend(12, 10) == "up 20%"
    assert trend(5, 10) == "down 50%"
    assert trend(10.2, 10) == "flat"
    assert trend(3, 0) == "up from zero"
    assert trend(0, 0) == "flat"


def test_insights_name_busiest_hour_and_trends() -> None:
    heat = heatmap([(4, 14, 9), (1, 3, 2)])
    done = [(date(2026, 11, 1) + timedelta(days=i), 1.0 if i < 7 else 2.0) for i in range(14)]
    cycles = cycle_stats(
        [("2026-11-10T00:00:00.000000Z", 10.0), ("2026-11-19T00:00:00.000000Z", 5.0)],
        date(2026, 11, 20),
        2,
    )
    assert insights(heat, done, cycles) == [
        "Busiest hour: 14:00 UTC",
        "Busiest day: Fri",
        "Throughput up 100%: 14 beads in the last 7 days, 7 in the 7 before",
        "Cycle time down 50%: median 5.0h (was 10.0h)",
    ]


# ---- store queries and reports -----------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db", clock=lambda: NOW)
    try:
        yield opened
    finally:
        await opened.close()


def sample(when: str, agent: str, cost: float, **extra: object) -> UsageSample:
    return UsageSample(at=when, agent=agent, runtime="claude", cost_usd=cost, **extra)  # type: ignore[arg-type]


async def test_rollup_by_bead_and_convoy(store: Store) -> None:
    one = await store.beads.add("Fix login", actor="op")
    two = await store.beads.add("Write docs", actor="op")
    await store.convoys.create("alpha", actor="op")
    await store.convoys.add("alpha", [one.id], actor="op")
    await store.metrics.record(
        [
            sample(at(hours=1), "mayor", 3.0, bead_id=one.id, input_tokens=10, cache_read_tokens=5),
            sample(at(hours=2), "mayor", 1.0, bead_id=two.id, cache_write_tokens=7),
            sample(at(hours=3), "crew", 2.5),
        ]
    )
    by_bead = await store.metrics.rollup("bead")
    assert [(r.key, r.label, r.cost_usd) for r in by_bead] == [
        (str(one.id), "Fix login", 3.0),
        ("", "", 2.5),
        (str(two.id), "Write docs", 1.0),
    ]
    assert (by_bead[0].input_tokens, by_bead[0].cache_tokens) == (10, 5)
    by_convoy = await store.metrics.rollup("convoy")
    assert [(r.key, r.cost_usd, r.samples) for r in by_convoy] == [("", 3.5, 2), ("alpha", 3.0, 1)]
    assert [r.key for r in await store.metrics.rollup("bead", limit=1)] == [str(one.id)]


async def test_first_sample_and_hourly_buckets(store: Store) -> None:
    assert await store.metrics.first_at() == ""
    assert await store.metrics.by_hour(since="") == []
    await store.metrics.record(
        [
            sample("2026-11-20T14:05:00.000000Z", "a", 1.0),
            sample("2026-11-20T14:55:00.000000Z", "a", 2.0),
            sample("2026-11-16T00:10:00.000000Z", "a", 0.5),
        ]
    )
    assert await store.metrics.first_at() == "2026-11-16T00:10:00.000000Z"
    cells = await store.metrics.by_hour(since="2026-11-01")
    assert [(c.weekday, c.hour, c.count, c.cost_usd) for c in cells] == [
        (0, 0, 1, 0.5),
        (4, 14, 2, 3.0),
    ]
    assert await store.metrics.by_hour(since="2026-11-17") == [cells[1]]
    await store.events.record("note", actor="op")
    (event_cell,) = await store.events.by_hour(since="2026-11-01")
    assert (event_cell.weekday, event_cell.hour, event_cell.count) == (4, 14, 1)


async def test_finished_since_gives_cycle_hours(store: Store) -> None:
    async with store.db.write() as conn:
        await conn.executemany(
            "INSERT INTO beads (title, status, created_at, updated_at, done_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                ("a", "done", at(hours=30), at(hours=6), at(hours=6)),
                ("b", "done", at(days=40), at(days=39), at(days=39)),
                ("c", "backlog", at(hours=3), at(hours=3), ""),
            ],
        )
    finished = await store.beads.finished_since(window_since(NOW, 28))
    ((done_at, hours),) = finished
    assert done_at == at(hours=6)
    assert hours == pytest.approx(24.0)


async def test_cost_report_on_an_empty_store(store: Store) -> None:
    report = await cost_report(store, NOW, group="agent", days=30, daily_budget=5.0)
    assert (report.rows, report.window_cost, report.has_usage) == ([], 0.0, False)
    assert (report.burn_recent, report.burn_today, report.forecast.next_days) == (0.0, 0.0, 0.0)
    assert report.today.level is BudgetLevel.OK
    assert len(report.daily) == 30 and all(cost == 0 for _, cost in report.daily)


async def test_cost_report_figures(store: Store) -> None:
    await store.metrics.record(
        [
            sample(at(minutes=30), "mayor", 3.0),
            sample(at(hours=2), "polecat", 1.0),
            sample(at(days=1), "mayor", 4.0),
            sample(at(days=5), "crew", 2.0),
            sample(at(days=40), "mayor", 10.0),
        ]
    )
    report = await cost_report(
        store, NOW, group="agent", days=30, daily_budget=5.0, monthly_budget=20.0
    )
    assert [(r.key, r.cost_usd) for r in report.rows] == [
        ("mayor", 7.0),
        ("crew", 2.0),
        ("polecat", 1.0),
    ]
    assert report.window_cost == 10.0
    assert (report.today.spent, report.today.level) == (4.0, BudgetLevel.NEAR)
    assert (report.month.spent, report.month.level) == (10.0, BudgetLevel.OK)
    assert report.burn_recent == pytest.approx(4.0 / 3)
    assert report.burn_today == pytest.approx(4.0 / 14.5)
    # The last 7 full days (today excluded) cost $6; month-end adds that mean for the days left.
    assert report.forecast.daily_average == pytest.approx(6.0 / 7)
    assert report.month_end.level is BudgetLevel.NEAR
    assert report.daily[-1] == (date(2026, 11, 20), 4.0)
    everything = await cost_report(store, NOW, group="day", days=None)
    assert everything.window_cost == 20.0 and everything.has_usage


async def test_activity_report(store: Store) -> None:
    await store.metrics.record([sample(at(minutes=10), "a", 1.0)])
    async with store.db.write() as conn:
        await conn.execute(
            "INSERT INTO beads (title, status, created_at, updated_at, done_at) "
            "VALUES ('x', 'done', ?, ?, ?)",
            (at(hours=5), at(hours=1), at(hours=1)),
        )
    report = await activity_report(store, NOW, days=14)
    assert report.activity.busiest() == (4, 14, 1)
    assert report.spend.busiest() == (4, 14, 1.0)
    assert len(report.done) == 14 and report.done[-1] == (date(2026, 11, 20), 1.0)
    assert len(report.cycles) == 2 and report.cycles[-1].median == pytest.approx(4.0)
    assert report.insights[0] == "Busiest hour: 14:00 UTC"
