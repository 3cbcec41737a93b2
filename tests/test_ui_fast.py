"""A fast control room: only the first tab's pane is composed and loaded at start, the others
on first show, and showing a tab again reloads it only if what it shows changed meanwhile."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.app import ComposeResult
from textual.pilot import Pilot
from textual.widgets import Button, Static
from ui_harness import FakeLink, make_services, state_event

from tundra_tui.daemon.protocol import ChangedEvent
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.panes.beads import BeadsPane
from tundra_tui.ui.panes.dashboard import DashboardPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.tabs import TAB_TITLES, Tab, default_tabs
from tundra_tui.ui.widgets.kanban_board import KanbanBoard
from tundra_tui.ui.widgets.nav_table import NavTable

DEADLINE = 20.0
MADE: list[str] = []
"""The ids of the counting panes made, in order (reset by each test)."""


class CountingPane(Pane):
    """Counts loads and cheap re-shows; shows beads only."""

    SHOWS: ClassVar[frozenset[str]] = frozenset({"beads"})

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        MADE.append(id or "")
        self.reloads = 0
        self.again = 0
        self.searches: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(f"pane {self.id}")
        yield Button("focus me")

    async def reload(self) -> None:
        self.query_one(Button)  # the widgets exist by the time a pane loads
        self.reloads += 1

    def shown_again(self) -> bool:
        self.again += 1
        return False

    def search(self, text: str) -> None:
        self.query_one(Static)
        self.searches.append(text)


TABS = tuple(Tab(tab_id, title, lambda s, i: CountingPane(s, id=i)) for tab_id, title in TAB_TITLES)


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    async with await open_store(Town(town_dir).db_path) as opened:
        yield opened


@pytest.fixture(autouse=True)
def forget_made() -> None:
    MADE.clear()


def make_app(
    town_dir: Path, store: Store, link: FakeLink, tabs: tuple[Tab, ...] = TABS
) -> TundraApp:
    services = make_services(Town(town_dir), store, link)
    return TundraApp(services, tabs=tabs, watch_files=False, clock_interval=0)


def counting(app: TundraApp, tab_id: str) -> CountingPane:
    found = app.pane(tab_id)
    assert isinstance(found, CountingPane)
    return found


async def until(pilot: Pilot[None], check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def idle(app: TundraApp, pilot: Pilot[None]) -> None:
    """Every reload and first show done."""
    await until(
        pilot,
        lambda: not app._reloading and not app.first_shows and all(p.is_mounted for p in app.panes),
        "the panes to settle",
    )
    busy = [w for w in app.workers if w.group not in ("link", "watch", "approvals")]
    if busy:  # (none would mean every worker, the endless ones too)
        await app.workers.wait_for_complete(busy)
    await pilot.pause()


async def test_only_the_first_tab_is_composed_and_loaded_at_start(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store, FakeLink())
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(app, pilot)
        assert MADE == ["pane-dashboard"]
        assert [pane.id for pane in app.query(Pane)] == ["pane-dashboard"]
        assert app.panes == [app.query_one(Pane)]
        assert counting(app, "dashboard").reloads == 1


async def test_a_tab_is_composed_on_first_show_and_keeps_working(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store, FakeLink())
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(app, pilot)
        await pilot.press("slash", "x", "enter")  # the Dashboard's filter, not the Beads tab's
        await pilot.press("3")
        await idle(app, pilot)
        assert MADE == ["pane-dashboard", "pane-beads"]
        beads = counting(app, "beads")
        assert beads.display and not counting(app, "dashboard").display
        assert beads.reloads == 1
        assert beads.searches == []
        assert app.focused is not None and beads in app.focused.ancestors
        await pilot.press("1", "3")
        await idle(app, pilot)
        assert MADE == ["pane-dashboard", "pane-beads"], "composed once"
        assert app.pane("beads") is beads and beads.display


async def test_showing_a_tab_again_does_not_reload_what_did_not_change(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store, FakeLink())
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(app, pilot)
        for key in "3131":
            await pilot.press(key)
            await idle(app, pilot)
        dashboard, beads = counting(app, "dashboard"), counting(app, "beads")
        assert (dashboard.reloads, beads.reloads) == (1, 1)
        assert (dashboard.again, beads.again) == (2, 1)  # the cheap refresh instead
        await pilot.press("r")  # asked for: it reloads
        await idle(app, pilot)
        assert dashboard.reloads == 2


async def test_a_change_while_hidden_reloads_once_when_shown(town_dir: Path, store: Store) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(app, pilot)
        await pilot.press("3", "1")
        await idle(app, pilot)
        beads = counting(app, "beads")
        link.push(ChangedEvent(what="usage"))  # it does not show usage
        link.push(ChangedEvent(what="beads", ids=[1]))
        link.push(ChangedEvent(what="beads", ids=[2]))
        await until(pilot, link._queue.empty, "the changes heard")
        await idle(app, pilot)
        assert beads.reloads == 1, "hidden: marked, not reloaded"
        await pilot.press("3")
        await idle(app, pilot)
        assert beads.reloads == 2, "one reload for both changes"
        await pilot.press("1", "3")
        await idle(app, pilot)
        assert beads.reloads == 2


async def test_help_and_palette_list_the_keys_of_tabs_not_shown_yet(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store, FakeLink(), tabs=default_tabs())
    async with app.run_test(size=(120, 40)) as pilot:
        await idle(app, pilot)
        assert [pane.id for pane in app.query(Pane)] == ["pane-dashboard"]
        await pilot.press("question_mark")
        await pilot.pause()
        ids = {row.id for row in app.screen.rows}  # type: ignore[attr-defined]
        assert {"beads-new", "beads-down", "sessions-all", "mcp-detail"} <= ids
        assert not app._stale - {t.id for t in app.tabs if t.id != "dashboard"}
        assert app.query_one(BeadsPane).display is False, "composed, not shown"


async def test_ui_keys_for_a_tab_not_shown_yet_are_known_and_work(
    town_dir: Path, store: Store
) -> None:
    (town_dir / ".tundra" / "local.toml").write_text(
        '[ui.keys]\nbeads-new = "N"\nno-such-binding = "z"\n'
    )
    await store.beads.add("A card", actor="operator")
    app = make_app(town_dir, store, FakeLink(), tabs=default_tabs())
    async with app.run_test(size=(120, 40)) as pilot:
        await until(
            pilot,
            lambda: any("no-such-binding" in n.message for n in app._notifications),
            "the check of ui.keys",
        )
        said = [n.message for n in app._notifications if "ui.keys" in n.message]
        assert len(said) == 1 and "no-such-binding" in said[0]
        await pilot.press("3")
        await until(pilot, lambda: app.query(KanbanBoard) and not app._reloading, "the board")
        await idle(app, pilot)
        await pilot.press("N")
        await until(pilot, lambda: "BeadForm" in type(app.screen).__name__, "the new-bead form")


class CountingDashboard(DashboardPane):
    live_draws = 0

    def _redraw_live(self) -> None:
        self.live_draws += 1
        super()._redraw_live()


async def test_the_dashboard_draws_live_changes_once_when_shown_again(
    town_dir: Path, store: Store
) -> None:
    link = FakeLink()
    tabs = (
        Tab("dashboard", "Dashboard", lambda s, i: CountingDashboard(s, id=i)),
        *TABS[1:],
    )
    app = make_app(town_dir, store, link, tabs=tabs)
    async with app.run_test(size=(120, 40)) as pilot:
        await idle(app, pilot)
        dashboard = app.query_one(CountingDashboard)
        await pilot.press("3")
        await idle(app, pilot)
        before = dashboard.live_draws
        for state in ("working", "idle", "working"):
            link.push(state_event("mayor", state))
        await until(pilot, lambda: app.services.live.agents.get("mayor"), "the events")
        await idle(app, pilot)
        assert dashboard.live_draws == before, "hidden: nothing drawn"
        await pilot.press("1")
        await idle(app, pilot)
        assert dashboard.live_draws == before + 1
        table = app.query_one("#dash-agents", NavTable)
        assert "mayor" in [key for key, _ in table._rows]


class PartsDashboard(DashboardPane):
    reads: ClassVar[list[frozenset[str]]] = []

    async def _read(self, parts: frozenset[str], window: Any) -> dict[str, Any]:
        self.reads.append(parts)
        return await super()._read(parts, window)


async def test_the_dashboard_re_reads_only_the_part_that_changed(
    town_dir: Path, store: Store
) -> None:
    PartsDashboard.reads = []
    link = FakeLink()
    tabs = (Tab("dashboard", "Dashboard", lambda s, i: PartsDashboard(s, id=i)), *TABS[1:])
    app = make_app(town_dir, store, link, tabs=tabs)
    async with app.run_test(size=(120, 40)) as pilot:
        await idle(app, pilot)
        everything = frozenset({"agents", "beads", "convoys", "usage", "events"})
        assert PartsDashboard.reads == [everything]
        link.push(ChangedEvent(what="usage"))
        await until(pilot, lambda: len(PartsDashboard.reads) == 2, "the usage read")
        assert PartsDashboard.reads[-1] == {"usage"}
        assert await app._caught_up_now() == set()  # the watcher's first look
        await store.beads.add("Read me", actor="alice")  # as the CLI would: the watcher's news
        app.data_changed(*await app._caught_up_now())
        await until(pilot, lambda: len(PartsDashboard.reads) == 3, "the news read")
        assert PartsDashboard.reads[-1] == {"beads", "events"}
        await until(
            pilot,
            lambda: "Read me" in str(app.query_one("#dash-activity").render_line(0)),
            "the new row",
        )
        await pilot.press("r")
        await until(pilot, lambda: len(PartsDashboard.reads) == 4, "the refresh")
        assert PartsDashboard.reads[-1] == everything


async def test_a_flood_of_changes_reloads_the_shown_pane_a_few_times(
    town_dir: Path, store: Store
) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(app, pilot)
        dashboard = counting(app, "dashboard")
        for n in range(30):
            link.push(ChangedEvent(what="beads", ids=[n]))
        await until(pilot, link._queue.empty, "the changes heard")
        await until(pilot, lambda: not app._due and not app._reloading, "the last reload")
        assert 1 < dashboard.reloads < 10, "one reload per gap, not one per change"
