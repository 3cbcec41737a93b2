"""The Convoys tab: progress bars, the selected convoy's beads, start and pause (Pilot tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from ui_harness import PaneHarness, make_services
from ui_seed import StepClock, seed

from tundra_tui.daemon.protocol import ChangedEvent
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.panes.convoys import ConvoysPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import NavTable


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=StepClock())
    await seed(opened)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def services(town_dir: Path, store: Store) -> Services:
    return make_services(Town(town_dir), store)


def harness(services: Services) -> PaneHarness:
    return PaneHarness(lambda s: ConvoysPane(s, id="pane-convoys"), services)


def screen_text(app: App[Any]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def rows_of(app: App[Any], table_id: str) -> list[list[str]]:
    table = app.query_one(f"#{table_id}", NavTable)
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def settle(pilot: Any) -> None:
    """Let workers (and the workers they start) finish."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()


async def focused(pilot: Any) -> NavTable:
    table: NavTable = pilot.app.query_one("#convoys-table", NavTable)
    table.focus()
    await pilot.pause()
    return table


async def test_convoys_with_progress_and_beads_at_80x24(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert rows_of(pilot.app, "convoys-table") == [
            ["alpha", "active", "████░░░░░░░░░░░░", "1/4 ✗1", "25%"],
            ["beta", "pending", "░░░░░░░░░░░░░░░░", "0/2", "0%"],
        ]
        assert rows_of(pilot.app, "convoys-beads") == [
            ["#1", "done ◌", "Fix [bold]login[/bold] bug", "mayor"],
            ["#2", "review ◔", "Add ␛[31mred␛[0m tests", "deacon"],
            ["#3", "failed", "Docs", "polecat-1"],
            ["#4", "backlog", "Refactor store", "-"],
        ]
        text = screen_text(pilot.app)
        assert "Beads of alpha" in text
        assert "1 done by hand · 1 in review · 1 failed · 4 beads · active" in text
        assert "Fix [bold]login[/bold] bug" in text
        assert all(len(line) <= 80 for line in text.splitlines())


async def test_wide_layout_shows_descriptions_literally(services: Services) -> None:
    async with harness(services).run_test(size=(250, 70)) as pilot:
        await settle(pilot)
        alpha = rows_of(pilot.app, "convoys-table")[0]
        assert alpha[2] == "████████" + "░" * 24
        assert alpha[5] == "first [i]batch[/i]"
        assert "first [i]batch[/i]" in screen_text(pilot.app)
        assert pilot.app.query_one(ConvoysPane).has_class("-wide")


async def test_j_k_g_and_G_select_a_convoy_and_show_its_beads(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await focused(pilot)
        await pilot.press("j")
        await settle(pilot)
        assert [row[2] for row in rows_of(pilot.app, "convoys-beads")] == ["Ship it", "Bench"]
        assert "Beads of beta" in screen_text(pilot.app)
        await pilot.press("k")
        await settle(pilot)
        assert len(rows_of(pilot.app, "convoys-beads")) == 4
        table = pilot.app.query_one("#convoys-table", NavTable)
        await pilot.press("G")
        assert table.cursor_row == 1
        await pilot.press("g")
        assert table.cursor_row == 0


async def test_start_a_pending_convoy(services: Services, store: Store) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await focused(pilot)
        await pilot.press("j", "S")
        await settle(pilot)
        assert (await store.convoys.get("beta")).status is ConvoyStatus.ACTIVE
        assert rows_of(app, "convoys-table")[1][1] == "active"
        assert [(type(m), m.what) for m in app.posted] == [(ChangedEvent, "convoys")]
        (last,) = await store.events.find(limit=1)
        assert (last.kind, last.actor) == ("convoy.start", "operator")
        assert [n.message for n in app._notifications] == ["convoy beta: active"]


async def test_pause_and_an_illegal_pause_says_why(services: Services, store: Store) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await focused(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert (await store.convoys.get("alpha")).status is ConvoyStatus.PAUSED
        await pilot.press("p")
        await settle(pilot)
        notes = [(n.message, n.severity) for n in app._notifications]
        assert notes[-1] == ("cannot pause a convoy that is paused", "error")
        assert len(app.posted) == 1  # only the pause that happened


async def test_starting_an_empty_convoy_is_refused(services: Services, store: Store) -> None:
    await store.convoys.create("gamma", actor="operator")
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await focused(pilot)
        await pilot.press("G", "S")
        await settle(pilot)
        assert list(app._notifications)[-1].message.startswith("convoy 'gamma' has no beads")
        assert not app.posted


async def test_search_finds_convoys_by_name_or_by_their_beads(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = pilot.app.query_one(ConvoysPane)
        pane.search("BATCH")  # alpha's description: every bead of it shows
        await settle(pilot)
        assert [row[0] for row in rows_of(pilot.app, "convoys-table")] == ["alpha"]
        assert len(rows_of(pilot.app, "convoys-beads")) == 4
        pane.search("bench")  # a bead of beta: only that bead shows
        await settle(pilot)
        assert [row[0] for row in rows_of(pilot.app, "convoys-table")] == ["beta"]
        assert rows_of(pilot.app, "convoys-beads") == [["#6", "backlog", "Bench", "-"]]
        pane.search("nothing like it")
        await settle(pilot)
        assert rows_of(pilot.app, "convoys-table") == []
        assert "no convoy matches" in screen_text(pilot.app)
        pane.search("")
        await settle(pilot)
        assert len(rows_of(pilot.app, "convoys-table")) == 2


async def test_no_convoys_yet(town_dir: Path) -> None:
    store = await open_store(Town(town_dir).db_path, clock=StepClock())
    try:
        app = harness(make_services(Town(town_dir), store))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert "no convoy yet" in screen_text(app)
            await pilot.press("S")
            await settle(pilot)
            assert list(app._notifications)[-1].message == "no convoy selected"
    finally:
        await store.close()
