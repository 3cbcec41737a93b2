"""The Costs tab: figures, grouping and window keys, budgets, search, empty store, sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Label, Static
from ui_harness import FIXED_NOW, PaneHarness, fixed_clock, make_services

from tundra_tui.config import set_value
from tundra_tui.domain.clock import iso
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.panes.costs import CostsPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.bar_chart import BarChart
from tundra_tui.ui.widgets.cost_table import CostTable, share_bar

TITLE = "Fix [bold]login[/bold]"


def ago(**back: float) -> str:
    return iso(FIXED_NOW - timedelta(**back))


def screen_text(app: App[None]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def text_of(app: App[None], selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def bar_width(app: App[None]) -> int:
    table = app.query_one(CostTable)
    return list(table.columns.values())[-1].width


def rows(app: App[None]) -> list[list[str]]:
    table = app.query_one(CostTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=fixed_clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def seeded(store: Store) -> Store:
    """Today $4 (a bead in convoy alpha, one outside), $6 earlier this month, $10 in October."""
    login = await store.beads.add(TITLE, actor="op")
    docs = await store.beads.add("Write docs", actor="op")
    await store.convoys.create("alpha", actor="op")
    await store.convoys.add("alpha", [login.id], actor="op")

    def usage(when: str, agent: str, model: str, cost: float, bead: int | None) -> UsageSample:
        return UsageSample(
            at=when,
            agent=agent,
            model=model,
            runtime="claude",
            bead_id=bead,
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=3000,
            cost_usd=cost,
        )

    await store.metrics.record(
        [
            usage(ago(minutes=30), "mayor", "opus", 3.0, login.id),
            usage(ago(hours=2), "polecat-1", "sonnet", 1.0, docs.id),
            usage(ago(days=1), "mayor", "opus", 4.0, login.id),
            usage(ago(days=5), "crew-1", "haiku", 2.0, None),
            usage(ago(days=40), "mayor", "opus", 10.0, None),
        ]
    )
    return store


def harness(services: Services) -> PaneHarness:
    return PaneHarness(lambda s: CostsPane(s, id="pane-costs"), services)


async def test_figures_shares_and_burn_rate(town_dir: Path, seeded: Store) -> None:
    app = harness(make_services(Town(town_dir), seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        bar = bar_width(app)
        assert bar >= 4
        assert rows(app) == [
            ["mayor", "2.0k", "6.0k", "400", "$7.00", "70.0%", share_bar(70.0, bar)],
            ["crew-1", "1.0k", "3.0k", "200", "$2.00", "20.0%", share_bar(20.0, bar)],
            ["polecat-1", "1.0k", "3.0k", "200", "$1.00", "10.0%", share_bar(10.0, bar)],
            ["Total", "4.0k", "12.0k", "800", "$10.00", "100%", ""],
        ]
        assert text_of(app, "#costs-today") == "Today   $4.00 (no daily budget)"
        assert text_of(app, "#costs-month").startswith("Month   $10.00 (no monthly budget)")
        # $4 in the last 3 hours; $4 over the 14.5 hours since midnight.
        assert text_of(app, "#costs-burn") == "Burn    $1.33/h last 3 h · $0.28/h today"
        # The last 7 full days (today not yet whole) cost $6: $0.86 a day.
        assert text_of(app, "#costs-forecast") == "Next 30 days ≈ $25.71 at $0.86/day"
        footnote = text_of(app, "#costs-footnote")
        assert "Forecast: mean daily spend of the last N full days" in footnote
        assert not app.query_one("#costs-alert-day").display
        assert "nan" not in screen_text(app).lower()


async def test_g_cycles_the_grouping(town_dir: Path, seeded: Store) -> None:
    app = harness(make_services(Town(town_dir), seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(CostTable)
        await pilot.press("g")
        assert str(next(iter(table.columns.values())).label) == "Model"
        assert [row[0] for row in rows(app)] == ["opus", "haiku", "sonnet", "Total"]
        await pilot.press("g")
        # A title an agent or user wrote shows literally (markup and all), cut to the column.
        assert [row[0] for row in rows(app)] == [
            "#1 Fix [bold]logi…",
            "(no bead)",
            "#2 Write docs",
            "Total",
        ]
        await pilot.resize_terminal(250, 70)
        await pilot.pause()
        assert rows(app)[0][0] == f"#1 {TITLE}"
        assert f"#1 {TITLE}" in screen_text(app)
        await pilot.press("g")
        assert [row[:2] for row in rows(app)][:2] == [["alpha", "2.0k"], ["(no convoy)", "2.0k"]]
        await pilot.press("g")
        assert [row[0] for row in rows(app)] == ["(no role)", "Total"]
        await pilot.press("g")
        assert [row[0] for row in rows(app)] == ["claude", "Total"]
        await pilot.press("g")
        assert [row[0] for row in rows(app)] == [
            "2026-11-20 Fri",
            "2026-11-19 Thu",
            "2026-11-15 Sun",
            "Total",
        ]
        await pilot.press("g")
        assert rows(app)[0][0] == "mayor"
        assert " agent " in text_of(app, "#costs-selector")


async def test_w_cycles_the_window(town_dir: Path, seeded: Store) -> None:
    app = harness(make_services(Town(town_dir), seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("w")
        assert "all time" in text_of(app, "#costs-selector")
        assert rows(app)[0][:5] == ["mayor", "3.0k", "9.0k", "600", "$17.00"]
        assert rows(app)[-1][4] == "$20.00"
        await pilot.press("w")
        assert "today" in text_of(app, "#costs-selector")
        assert [row[4] for row in rows(app)] == ["$3.00", "$1.00", "$4.00"]
        await pilot.press("w", "w")
        assert "30 days" in text_of(app, "#costs-selector")


async def test_near_daily_and_forecast_over_monthly_budget(town_dir: Path, seeded: Store) -> None:
    town = Town(town_dir)
    set_value(town, "costs.daily_budget_usd", "5", "project")
    set_value(town, "costs.monthly_budget_usd", "20", "project")
    assert "[costs]" in town.config_path.read_text()
    app = harness(make_services(town, seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        day = app.query_one("#costs-alert-day", Label)
        assert str(day.render()) == "▲ Near the daily budget: 80% of $5.00"
        assert day.has_class("-near") and app.query_one("#costs-today").has_class("-near")
        month = app.query_one("#costs-alert-month", Label)
        # $10 spent + $0.86 a day for the 10.4 days left: $18.91, 95% of $20.
        assert (
            str(month.render()) == "▲ Forecast near the monthly budget: 95% of $20.00 by month-end"
        )
        assert month.has_class("-near") and not month.has_class("-over")
        assert text_of(app, "#costs-today") == "Today   $4.00 of $5.00 budget (80%)"


async def test_over_budget_says_so_in_words(town_dir: Path, seeded: Store) -> None:
    town = Town(town_dir)
    set_value(town, "costs.daily_budget_usd", "3", "project")
    set_value(town, "costs.monthly_budget_usd", "8", "project")
    app = harness(make_services(town, seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert text_of(app, "#costs-alert-day") == "✖ OVER the daily budget: $4.00 of $3.00 (133%)"
        month = app.query_one("#costs-alert-month", Label)
        assert str(month.render()) == "✖ OVER the monthly budget: $10.00 of $8.00 (125%)"
        assert month.has_class("-over")
        assert "OVER the daily budget" in screen_text(app)


async def test_zero_budget_means_none(town_dir: Path, seeded: Store) -> None:
    town = Town(town_dir)
    set_value(town, "costs.daily_budget_usd", "0", "project")
    app = harness(make_services(town, seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert text_of(app, "#costs-today") == "Today   $4.00 (no daily budget)"
        assert not app.query_one("#costs-alert-day").display


async def test_a_broken_config_is_one_line_not_a_crash(town_dir: Path, seeded: Store) -> None:
    town = Town(town_dir)
    with town.config_path.open("a") as config:
        config.write('\n[costs]\ndaily_budget_usd = "lots"\n')
    app = harness(make_services(town, seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        (note,) = app._notifications
        assert note.severity == "error" and "budgets ignored" in note.message
        assert rows(app)[0][0] == "mayor"
        await app.query_one(CostsPane).reload()
        assert len(app._notifications) == 1  # the watcher's reloads do not repeat it


async def test_empty_store(town_dir: Path, store: Store) -> None:
    app = harness(make_services(Town(town_dir), store))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.query_one(CostsPane).has_class("-empty")
        assert app.query_one(CostTable).has_focus  # so g and w still reach the pane
        assert text_of(app, "#costs-empty").startswith("No usage recorded yet.")
        screen = screen_text(app)
        assert "No usage recorded yet" in screen and "nan" not in screen.lower()
        assert "Next 30 days ≈ $0.00" in screen
        await pilot.press("g", "w")
        assert text_of(app, "#costs-empty").startswith("No usage recorded yet.")


async def test_search_filters_groups(town_dir: Path, seeded: Store) -> None:
    app = harness(make_services(Town(town_dir), seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(CostsPane)
        pane.search("POLE")
        await pilot.pause()
        assert [row[0] for row in rows(app)] == ["polecat-1", "Total"]
        pane.search("nobody")
        await pilot.pause()
        assert text_of(app, "#costs-empty") == "No agent matches the search."
        pane.search("")
        await pilot.pause()
        assert len(rows(app)) == 4


async def test_j_and_k_move_the_cursor(town_dir: Path, seeded: Store) -> None:
    app = harness(make_services(Town(town_dir), seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(CostTable)
        table.focus()
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1


async def test_sizes(town_dir: Path, seeded: Store) -> None:
    app = harness(make_services(Town(town_dir), seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not app.query_one("#costs-chart-box").display
        screen = screen_text(app).splitlines()
        assert len(screen) == 24 and all(len(line) == 80 for line in screen)
        assert any(line.strip().startswith("Total") for line in screen)
        await pilot.resize_terminal(250, 70)
        await pilot.pause()
        assert app.query_one(CostsPane).has_class("-roomy")
        chart = app.query_one(BarChart)
        assert chart.display and chart.shown == 30
        assert bar_width(app) == 60
        wide = screen_text(app)
        assert "Spend per day, last 30 days (UTC)" in wide and "$4.00" in wide


async def test_footer_unpriced_and_brake(town_dir: Path, seeded: Store) -> None:
    """An unpriced model is flagged (never $0.00), the footer names the price tables, the
    unpriced model's hint and spend with no bead; the brake's lines sit in the summary."""
    await seeded.metrics.record(
        [
            UsageSample(
                at=ago(minutes=10),
                agent="polecat-1",
                model="mystery",
                runtime="claude",
                input_tokens=500,
                output_tokens=100,
                priced=False,
                source_key="u1",
            ),
            UsageSample(
                at=ago(minutes=11),
                agent="mayor",
                model="opus",
                runtime="claude",
                cost_usd=0.5,
                price_source="genai-prices 0.2.5",
                source_key="u2",
            ),
        ]
    )
    town = Town(town_dir)
    set_value(town, "costs.daily_budget_usd", "4", "project")
    app = harness(make_services(town, seeded))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("g")  # by model
        table = {row[0]: row for row in rows(app)}
        assert table["mystery"][4] == "unknown (unpriced)"
        assert table["Total"][4] == "$10.50 + unpriced (600 tok)"
        footer = text_of(app, "#costs-footnote")
        assert "Priced with genai-prices 0.2.5 (1 call)." in footer
        assert (
            "Unpriced: claude model 'mystery' (600 tokens): set its price in "
            '[costs.prices."mystery"]' in footer
        )
        assert "No bead on the hook: $2.50 + unpriced (600 tok) over 3 calls" in footer
        assert text_of(app, "#costs-alert-day").startswith(
            "✖ OVER the daily budget: at least $4.50"
        )
        assert not app.query_one("#costs-brake").display  # no convoy budget, override or pause


async def test_unpriced_usage_makes_the_summary_a_floor(town_dir: Path, store: Store) -> None:
    """An agent on a model with no price all day: Today, Month, Burn and the forecast say
    unknown or "at least", never a plain $0.00 beside a table that says unpriced."""

    def unpriced(when: str, key: str) -> UsageSample:
        return UsageSample(
            at=when,
            agent="polecat-1",
            model="demo-mystery",
            runtime="claude",
            input_tokens=3000,
            output_tokens=1000,
            priced=False,
            source_key=key,
        )

    yesterday = UsageSample(
        at=ago(days=1),
        agent="mayor",
        model="opus",
        runtime="claude",
        cost_usd=0.7,
        source_key="p1",
    )
    await store.metrics.record(
        [unpriced(ago(hours=1), "u1"), unpriced(ago(days=1, hours=1), "u2"), yesterday]
    )
    town = Town(town_dir)
    set_value(town, "costs.daily_budget_usd", "0.25", "project")
    app = harness(make_services(town, store))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert text_of(app, "#costs-today") == ("Today   unknown (unpriced) of $0.25 budget (0%)")
        assert text_of(app, "#costs-month").startswith(
            "Month   $0.70 + unpriced (8.0k tok) (no monthly budget) · forecast at least $"
        )
        assert text_of(app, "#costs-burn") == (
            "Burn    at least $0.00/h last 3 h · at least $0.00/h today"
        )
        # One full day as the basis ($0.70 and unpriced usage): the forecast is a floor.
        assert text_of(app, "#costs-forecast") == (
            "Next 30 days ≈ at least $21.00 (at least $0.70/day)"
        )
        assert "$0.00 of" not in screen_text(app)


async def test_title_bar_marks_a_spent_budget(town_dir: Path, seeded: Store) -> None:
    """The app reads the brake as `at cost budget` does: $4 spent of a $4.50 day warns."""
    assert "$ 89% today" in await title_bar_with(town_dir, seeded, "costs.daily_budget_usd", "4.5")


async def test_title_bar_names_a_spent_convoy(town_dir: Path, seeded: Store) -> None:
    """Convoy alpha's $7 is past its $5 budget: only its beads wait, so the bar names it and
    never says the town's bare `$ STOP`."""
    shown = await title_bar_with(town_dir, seeded, "convoys.alpha.budget_usd", "5")
    assert "$ STOP alpha" in shown and shown.count("$ STOP") == 1, shown


async def test_a_budget_set_from_a_shell_is_read_at_the_next_reload(
    town_dir: Path, seeded: Store
) -> None:
    town = Town(town_dir)
    app = harness(make_services(town, seeded))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert text_of(app, "#costs-today") == "Today   $4.00 (no daily budget)"
        set_value(town, "costs.daily_budget_usd", "5", "project")  # `at config set`
        await app.query_one(CostsPane).reload()
        assert text_of(app, "#costs-today") == "Today   $4.00 of $5.00 budget (80%)"


async def title_bar_with(town_dir: Path, seeded: Store, key: str, value: str) -> str:
    """What the app's title bar says once it has read the brake, with `key` set to `value`."""
    from tundra_tui.ui.app import TundraApp
    from tundra_tui.ui.tabs import TAB_TITLES, Tab
    from tundra_tui.ui.widgets.title_bar import TitleBar

    town = Town(town_dir)
    set_value(town, key, value, "project")
    tabs = tuple(Tab(t, title, lambda s, i: CostsPane(s, id=i)) for t, title in TAB_TITLES)
    app = TundraApp(make_services(town, seeded), tabs=tabs, watch_files=False, clock_interval=0)
    async with app.run_test(size=(160, 30)) as pilot:
        bar = app.query_one(TitleBar)
        for _ in range(50):  # the read is a worker: wait for it with a bound, not a sleep
            await pilot.pause()
            if bar.brake is not None:
                break
        assert bar.brake is not None, "the app never read the brake"
        return str(bar.render())
