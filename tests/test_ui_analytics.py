"""The Analytics tab: heatmap, throughput and cycle-time charts, insights, keys and sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Label
from ui_harness import PaneHarness, fixed_clock, make_services

from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.panes.analytics import AnalyticsPane, kpi_strip
from tundra_tui.ui.widgets.bar_chart import BarChart, bar_layout, column
from tundra_tui.ui.widgets.heatmap_chart import HeatmapChart, cell_width, hour_axis, row_height
from tundra_tui.ui.widgets.range_chart import RangeChart, range_bar


def screen_text(app: App[None]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def shown(app: App[None], selector: str) -> str:
    return str(app.query_one(selector).render())


@pytest.fixture
async def store(town_dir: Path, tmp_path: Path) -> AsyncIterator[Store]:
    # Not the town's own database: `at init` logged events at the real time.
    opened = await open_store(tmp_path / "analytics.db", clock=fixed_clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def seeded(store: Store) -> Store:
    """Friday 14:00 is the busiest hour; seven beads finished on known days."""
    await store.metrics.record(
        [
            UsageSample(at=at, agent="mayor", cost_usd=cost)
            for at, cost in (
                ("2026-11-20T14:05:00.000000Z", 1.0),
                ("2026-11-20T14:10:00.000000Z", 1.0),
                ("2026-11-20T14:20:00.000000Z", 0.5),
                ("2026-11-16T09:00:00.000000Z", 0.25),
                ("2026-11-11T22:00:00.000000Z", 4.0),
                ("2026-11-11T22:30:00.000000Z", 4.0),
            )
        ]
    )
    finished = [
        ("2026-11-20T10:00:00.000000Z", 4),
        ("2026-11-20T11:00:00.000000Z", 6),
        ("2026-11-18T08:00:00.000000Z", 10),
        ("2026-11-05T08:00:00.000000Z", 20),
        ("2026-11-05T09:00:00.000000Z", 30),
        ("2026-11-05T10:00:00.000000Z", 40),
        ("2026-10-10T10:00:00.000000Z", 5),
    ]
    async with store.db.write() as conn:
        await conn.executemany(
            "INSERT INTO beads (title, status, created_at, updated_at, done_at) "
            "VALUES (?, 'done', ?, ?, ?)",
            [
                (f"bead {n}", iso(parse_iso(done) - timedelta(hours=h)), done, done)
                for n, (done, h) in enumerate(finished)
            ],
        )
    return store


def harness(town_dir: Path, store: Store) -> PaneHarness:
    services = make_services(Town(town_dir), store)
    return PaneHarness(lambda s: AnalyticsPane(s, id="pane-analytics"), services)


async def test_heatmap_busiest_cell_and_insights(town_dir: Path, seeded: Store) -> None:
    app = harness(town_dir, seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        heat = app.query_one(HeatmapChart)
        assert heat.heat is not None and heat.heat.busiest() == (4, 14, 3)
        assert heat.heat.level(4, 14) == 4 and heat.heat.level(0, 9) == 2
        drawing = shown(app, "#analytics-heatmap")
        assert "peak Fri 14:00 (3)" in drawing
        fri = next(line for line in drawing.splitlines() if line.startswith("Fri"))
        assert fri[4 + 14 * cell_width(heat.size.width)] == "█"
        assert shown(app, "#analytics-insights").splitlines() == [
            "Busiest hour: 14:00 UTC",
            "Busiest day: Fri",
            "Throughput up from zero: 3 beads in the last 7 days, 0 in the 7 before",
            "Cycle time down 80%: median 6.0h (was 30.0h)",
        ]


async def test_throughput_bars_and_cycle_times(town_dir: Path, seeded: Store) -> None:
    app = harness(town_dir, seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        chart = app.query_one(BarChart)
        assert len(chart.data) == 28 and chart.shown == 28
        assert chart.data[-1] == ("20", 2) and chart.data[-3] == ("18", 1)
        assert sum(value for _, value in chart.data) == 6
        title = app.query_one("#analytics-throughput-title", Label)
        assert str(title.render()) == "Beads done per day: 6 in the last 28 days"
        cycle = app.query_one(RangeChart)
        assert [(row.label, row.note) for row in cycle.rows] == [
            ("10-24", "-"),
            ("10-31", "30.0/38.0"),
            ("11-07", "-"),
            ("11-14", "6.0/9.2"),
        ]


async def test_w_cycles_the_window_and_charts_shrink_to_fit(town_dir: Path, seeded: Store) -> None:
    app = harness(town_dir, seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        chart = app.query_one(BarChart)
        assert len(chart.data) == 56 and sum(v for _, v in chart.data) == 7
        assert 14 <= chart.shown < 56  # the newest days that fit at 80 columns
        assert len(app.query_one(RangeChart).rows) == 8
        assert "last 56 days" in shown(app, "#analytics-heat-title")
        await pilot.resize_terminal(80, 20)
        await pilot.pause()
        cycle = app.query_one(RangeChart)
        lines = shown(app, "#analytics-cycle").splitlines()
        assert len(lines) == cycle.size.height < 8  # the newest weeks that fit
        assert lines[-1].startswith("11-14 ")
        await pilot.resize_terminal(250, 70)
        await pilot.pause()
        assert chart.shown == 56
        await pilot.press("w")
        assert len(chart.data) == 14 and len(app.query_one(RangeChart).rows) == 2
        await pilot.press("w")
        assert len(chart.data) == 28


async def test_m_toggles_activity_and_spend(town_dir: Path, seeded: Store) -> None:
    app = harness(town_dir, seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("m")
        assert shown(app, "#analytics-heat-title") == "Spend by hour, UTC, last 28 days"
        # Wednesday 22:00 cost $8 in two calls; Friday 14:00 had three cheaper ones.
        assert "peak Wed 22:00 ($8.00)" in shown(app, "#analytics-heatmap")
        await pilot.press("m")
        assert "peak Fri 14:00 (3)" in shown(app, "#analytics-heatmap")


async def test_empty_store(town_dir: Path, store: Store) -> None:
    app = harness(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = screen_text(app)
        assert "No activity recorded in the last 28 days." in screen
        assert shown(app, "#analytics-insights").startswith("Nothing to report yet: no activity")
        assert "No beads finished in the last 28 days." in screen
        for chart in ("#analytics-throughput", "#analytics-cycle"):
            assert shown(app, chart) == "No beads finished in the last 28 days."
        assert "nan" not in screen.lower()
        await pilot.press("m", "w")
        assert "No spend recorded in the last 56 days." in screen_text(app)


async def test_sizes(town_dir: Path, seeded: Store) -> None:
    app = harness(town_dir, seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert len(lines) == 24 and all(len(line) == 80 for line in lines)
        for day in ("Mon", "Sun"):
            assert any(line.startswith(f" {day} ") for line in lines)
        assert "Cycle time per week" in "\n".join(lines)
        assert app.query_one(BarChart).region.bottom <= 24
        await pilot.resize_terminal(250, 70)
        await pilot.pause()
        assert app.query_one(AnalyticsPane).has_class("-roomy")
        heat = app.query_one(HeatmapChart)
        assert row_height(heat.size.height) == 3 and cell_width(heat.size.width) == 5
        screen = screen_text(app)
        assert " 23 " in screen and "Insights" in screen


def test_chart_geometry() -> None:
    assert bar_layout(0, 50) == (0, 0, 0)
    assert bar_layout(10, 50) == (10, 4, 1)
    assert bar_layout(28, 28) == (28, 1, 0)
    assert bar_layout(56, 49) == (25, 1, 1)
    assert column(0, 5, 2) == [" ", " "]
    assert column(5, 5, 2) == ["█", "█"]
    assert column(0.01, 5, 2) == [" ", "▁"]  # tiny but visible
    assert column(3, 6, 2) == [" ", "█"]
    assert cell_width(40) == 1 and cell_width(200) == 5
    assert row_height(9) == 1 and row_height(23) == 3 and row_height(100) == 3
    assert hour_axis(1).split() == ["0", "3", "6", "9", "12", "15", "18", "21"]
    assert range_bar(5, 10, 10, 20) == (10, 10)
    assert range_bar(0.01, 0.02, 10, 20) == (1, 0)
    assert range_bar(0, 0, 0, 20) == (0, 0)


async def test_kpi_strip_and_sparklines(town_dir: Path, store: Store) -> None:
    """The latest snapshot in one strip, the window's burn and cost as sparklines."""
    for n, (burn, today) in enumerate(((0.0, 0.5), (1.0, 1.5), (2.0, 4.0))):
        await store.metrics.snapshot(
            KpiSnapshot(
                at=f"2026-11-20T1{n}:00:00.000000Z",
                beads_active=3,
                cost_today_usd=today,
                tokens_today=45_200,
                window_seconds=300,
                done_window=2,
                failed_window=1,
                agents_by_state={"working": 2, "idle": 1, "stopped": 0},
                convoys_active=1,
                burn_usd_hour=burn,
                unpriced_tokens_today=900,
                burn_unpriced_tokens=300 if n == 2 else 0,
            )
        )
    app = harness(town_dir, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        strip = shown(app, "#analytics-kpi")
        assert strip.startswith("KPI 12:00 UTC  beads 3 active, 2 done, 1 failed in the last 5 min")
        assert "agents 1 idle · 2 working" in strip
        # Unpriced usage today: the dollars are a floor, said as the Costs tab says it.
        assert "today $4.00 + unpriced (45.2k tok, 900 unpriced) · burn at least $2.00/h" in strip
        spark = shown(app, "#analytics-spark").splitlines()
        assert spark[0].startswith("Burn $/h      ▁▅█  now at least $2.00/h, peak at least $2.00/h")
        assert spark[1].startswith("Cost today    ▂▄█  now $4.00 + unpriced (900 tok)")


def test_kpi_strip_of_a_day_all_unpriced_is_never_zero_dollars() -> None:
    kpi = KpiSnapshot(
        at="2026-11-20T12:00:00.000000Z",
        tokens_today=4000,
        unpriced_tokens_today=4000,
        burn_unpriced_tokens=4000,
    )
    strip = str(kpi_strip(kpi))
    assert "today unknown (4.0k tok, 4.0k unpriced) · burn at least $0.00/h" in strip
    assert "$0.00 (" not in strip
    priced = str(kpi_strip(KpiSnapshot(at=kpi.at, cost_today_usd=1.5, tokens_today=10)))
    assert "today $1.50 (10 tok) · burn $0.00/h" in priced


async def test_no_snapshot_yet_says_so(town_dir: Path, store: Store) -> None:
    app = harness(town_dir, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert shown(app, "#analytics-kpi").startswith("KPI: no snapshot yet")
        assert not app.query_one("#analytics-spark").display
