"""One change, one reload: the control room's writes go through the daemon's board ops, and
the daemon's ChangedEvent (not the pane, not the file watcher) reloads the pane on show."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.worker import WorkerError
from ui_harness import FakeLink, make_services

from tundra_tui.daemon.protocol import BeadMove, ChangedEvent
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, BeadStatus
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.panes.beads import BeadsPane
from tundra_tui.ui.panes.costs import CostsPane
from tundra_tui.ui.tabs import Tab
from tundra_tui.ui.widgets.kanban_board import KanbanBoard

OP = "operator"
DEADLINE = 20.0


class CountingBeads(BeadsPane):
    reloads = 0

    async def reload(self) -> None:
        self.reloads += 1
        await super().reload()


class CountingCosts(CostsPane):
    reloads = 0

    async def reload(self) -> None:
        self.reloads += 1
        await super().reload()


TABS = (
    Tab("beads", "Beads", lambda s, i: CountingBeads(s, id=i)),
    Tab("costs", "Costs", lambda s, i: CountingCosts(s, id=i)),
)


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path)
    await opened.agents.sync_roster([RosterEntry("mayor", Role.MAYOR, Runtime.DEMO)], actor=OP)
    try:
        yield opened
    finally:
        await opened.close()


def make_app(town_dir: Path, store: Store, link: FakeLink) -> TundraApp:
    services = make_services(Town(town_dir), store, link)
    return TundraApp(services, tabs=TABS, watch_files=True, clock_interval=0)


def beads_pane(app: TundraApp) -> CountingBeads:
    found = app.pane("beads")
    assert isinstance(found, CountingBeads)
    return found


def costs_pane(app: TundraApp) -> CountingCosts:
    found = app.pane("costs")
    assert isinstance(found, CountingCosts)
    return found


async def until(pilot: Pilot[None], check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def quiet(app: TundraApp) -> None:
    """Until the writes, announcements and reloads under way are done."""
    for worker in list(app.workers):
        if worker.group.startswith(("reload-", "announced", "beads-write", "prepare-tabs")):
            with contextlib.suppress(WorkerError):
                await worker.wait()


async def settled(app: TundraApp, pilot: Pilot[None]) -> None:
    """The first load done and the file watcher running."""
    await until(pilot, lambda: beads_pane(app).reloads, "the first load")
    # The watcher notes the newest store event, then starts watching in the same step.
    await until(pilot, lambda: app._events_seen > 0, "the watcher")
    await quiet(app)
    await pilot.pause()


def put_cursor(app: TundraApp, bead_id: int) -> None:
    board = app.query_one(KanbanBoard)
    for col, column in enumerate(board.columns):
        for row, bead in enumerate(column.beads):
            if bead.id == bead_id:
                board.column, board.row = col, row
                board.action_cursor(0, 0)
                return
    raise AssertionError(f"#{bead_id} is not on the board")


async def test_a_move_reloads_the_board_once(town_dir: Path, store: Store) -> None:
    bead = await store.beads.add("Move me", actor=OP)
    await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="mayor")
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(app, pilot)
        pane = beads_pane(app)
        put_cursor(app, bead.id)
        before, batches = pane.reloads, app.store_batches
        await pilot.press("L")
        await until(pilot, lambda: pane.reloads > before, "the reload the ChangedEvent brings")
        # The write also touched the database file: wait for the watcher to have seen it.
        await until(pilot, lambda: app.store_batches > batches, "the file watcher's batch")
        await quiet(app)
        await pilot.pause()
        assert pane.reloads == before + 1
        assert (await store.beads.get(bead.id)).status is BeadStatus.SLUNG
        assert app.query_one(KanbanBoard).current.status is BeadStatus.SLUNG  # type: ignore[union-attr]
        assert link.ops(BeadMove) == [BeadMove(id=bead.id, step=1, actor=OP)]


async def test_a_write_by_someone_else_reloads_once_through_the_watcher(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store, FakeLink())
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(app, pilot)
        pane = beads_pane(app)
        before = pane.reloads
        # The CLI's own connection, as `at bead create` writes.
        async with await open_store(Town(town_dir).db_path) as cli:
            await cli.beads.add("From the command line", actor="alice")
        await until(pilot, lambda: pane.reloads > before, "the watcher's reload")
        await until(pilot, lambda: "From the command line" in board_titles(app), "the new card")
        assert pane.reloads == before + 1


def board_titles(app: TundraApp) -> list[str]:
    return [b.title for column in app.query_one(KanbanBoard).columns for b in column.beads]


async def test_only_a_pane_that_shows_the_change_reloads(town_dir: Path, store: Store) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(app, pilot)
        beads, costs = beads_pane(app), costs_pane(app)
        before = beads.reloads
        link.push(ChangedEvent(what="usage"))  # Costs shows it, but is not on show
        link.push(ChangedEvent(what="metrics"))
        link.push(ChangedEvent(what="beads", ids=[1]))  # events come in order: this one last
        await until(pilot, lambda: beads.reloads > before, "the beads change")
        await quiet(app)
        assert beads.reloads == before + 1
        assert costs.reloads == 0  # not shown yet: it reloads when shown
        app.action_show_tab("costs")
        await until(pilot, lambda: costs.reloads == 1, "the costs pane shown")
        link.push(ChangedEvent(what="usage"))
        await until(pilot, lambda: costs.reloads == 2, "new usage shown")
        link.push(ChangedEvent(what="convoys"))  # Costs does not show convoys
        link.push(ChangedEvent(what="metrics"))  # nor KPI snapshots
        link.push(ChangedEvent(what="config"))  # budgets: it does
        await until(pilot, lambda: costs.reloads == 3, "the config change")
        await quiet(app)
        assert costs.reloads == 3
        assert beads.reloads == before + 1
