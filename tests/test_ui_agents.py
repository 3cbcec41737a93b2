"""The Agents tab: rows, tiling, and a Pilot test for every key it binds."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from at_cli import until
from history_fake import FakeHistory
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Static
from ui_harness import FakeLink, PaneHarness, fixed_clock, make_services, pending, state_event

from tundra_tui.config import AgentSpec, load_config, set_value
from tundra_tui.daemon.protocol import (
    Approve,
    Deny,
    Event,
    ExitedEvent,
    History,
    RemovedEvent,
    Request,
    Resize,
    Restart,
    ScreenEvent,
    SendKeys,
    Spawn,
    StateEvent,
    Stop,
)
from tundra_tui.domain.agents import Agent, AgentState, Role, Runtime
from tundra_tui.store import Store, open_store
from tundra_tui.store.agents import RosterEntry
from tundra_tui.town import Town
from tundra_tui.ui.agent_rows import AgentRow, agent_rows
from tundra_tui.ui.live import LiveModel
from tundra_tui.ui.messages import DaemonRequest, RememberChoice
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.panes.agents import AgentsPane
from tundra_tui.ui.tiling import Layout, tile_shape, visible_window
from tundra_tui.ui.widgets.agent_list import AgentList, row_content
from tundra_tui.ui.widgets.terminal_view import RELEASE_KEY, TerminalView

R = TypeVar("R", bound=Request)

# Tiling (headless)


@pytest.mark.parametrize(
    ("layout", "width", "height", "count", "shape"),
    [
        (Layout.GRID, 52, 20, 4, (1, 2)),  # 80x24: two tiles, stacked
        (Layout.GRID, 210, 64, 8, (3, 2)),  # 250x70: 3x2
        (Layout.GRID, 210, 64, 4, (2, 2)),
        (Layout.GRID, 210, 64, 3, (3, 1)),
        (Layout.GRID, 210, 64, 1, (1, 1)),
        (Layout.GRID, 210, 64, 0, (1, 1)),
        (Layout.GRID, 10, 5, 9, (1, 1)),
        (Layout.SPLIT, 210, 64, 5, (2, 1)),
        (Layout.SPLIT, 52, 20, 5, (1, 2)),
        (Layout.SPLIT, 52, 12, 5, (1, 1)),
        (Layout.SINGLE, 210, 64, 5, (1, 1)),
    ],
)
def test_tile_shape(
    layout: Layout, width: int, height: int, count: int, shape: tuple[int, int]
) -> None:
    assert tile_shape(layout, width, height, count) == shape


def test_visible_window_is_a_full_page_holding_the_selection() -> None:
    assert visible_window(7, 0, 4) == range(0, 4)
    assert visible_window(7, 5, 4) == range(3, 7)
    assert visible_window(7, 4, 2) == range(4, 6)
    assert visible_window(2, 1, 6) == range(0, 2)
    assert visible_window(0, 0, 6) == range(0)


def test_layouts_cycle() -> None:
    assert [Layout.SINGLE.next(), Layout.SPLIT.next(), Layout.GRID.next()] == [
        Layout.SPLIT,
        Layout.GRID,
        Layout.SINGLE,
    ]


# Rows (headless)


def spec(name: str, model: str = "") -> AgentSpec:
    return AgentSpec(name=name, role=Role.POLECAT, runtime=Runtime.DEMO, model=model)


def test_rows_merge_store_config_and_daemon() -> None:
    live = LiveModel()
    live.apply(state_event("b", "awaiting_approval"))
    live.apply(pending(3, "b", "ls"))
    live.apply(state_event("c", "exited"))
    live.apply(ExitedEvent(agent="c", code=2))
    live.apply(state_event("[bold]x\x1b", "working"))
    stored = [Agent("a", Role.MAYOR, Runtime.CLAUDE, AgentState.IDLE, model="opus")]
    rows = agent_rows(stored, live, {"a": spec("a", "haiku"), "b": spec("b", "m1")})
    by_name = {row.name: row for row in rows}
    assert list(by_name) == sorted(by_name)
    assert by_name["a"].state is AgentState.IDLE and by_name["a"].engine == "claude/opus"
    assert by_name["b"].state is AgentState.AWAITING_APPROVAL and by_name["b"].pending == 1
    assert by_name["b"].engine == "demo/m1" and by_name["b"].running
    assert by_name["c"].trouble == "exit 2" and not by_name["c"].running
    hostile = by_name["[bold]x\x1b"]
    assert hostile.label == "[bold]x␛" and hostile.role == ""


def test_rows_match_name_role_and_engine() -> None:
    row = AgentRow("mayor", "mayor", "claude", "opus", AgentState.IDLE, 0, "")
    assert row.matches("") and row.matches("MAY") and row.matches("opus") and row.matches("claude/")
    assert not row.matches("codex")


def test_a_row_is_one_line_and_drops_the_role_before_cutting() -> None:
    row = AgentRow("polecat-1", "polecat", "codex", "gpt-5", AgentState.AWAITING_APPROVAL, 2, "")
    assert row_content(row, 80, 10).plain == "! polecat-1  !2 polecat codex/gpt-5"
    assert row_content(row, 28, 10).plain == "! polecat-1  !2 codex/gpt-5"
    narrow = row_content(row, 20, 10).plain
    assert narrow.startswith("! polecat-1  !2") and narrow.endswith("…") and len(narrow) == 20


# The pane


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    """The sample town's store with its team (crew-1, deacon, mayor, polecat-1) synced."""
    town = Town(town_dir)
    opened = await open_store(town.db_path, clock=fixed_clock)
    specs = load_config(town).agents().values()
    await opened.agents.sync_roster(
        [RosterEntry(s.name, s.role, s.runtime, s.model) for s in specs], actor="test"
    )
    yield opened
    await opened.close()


def screen_event(agent: str, lines: list[str]) -> ScreenEvent:
    rows = {
        y: [(text, "default", "default", False, False, False, False)]
        for y, text in enumerate(lines)
    }
    return ScreenEvent(agent=agent, rows=rows, cursor=(0, 0), size=(80, 24), full=True)


class AgentsApp(PaneHarness):
    """The harness plus app-level keys like the real app's, which must not fire while an
    agent's terminal has the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("1", "note('tab1')"),
        Binding("colon", "note('palette')"),
    ]

    def __init__(self, services: Any) -> None:
        super().__init__(lambda s: AgentsPane(s, id="pane-agents"), services)
        self.notes: list[str] = []
        self.toasts: list[str] = []

    def action_note(self, what: str) -> None:
        self.notes.append(what)

    def notify(self, message: str, **kwargs: Any) -> None:
        self.toasts.append(message)

    @property
    def agents(self) -> AgentsPane:
        pane = self.pane
        assert isinstance(pane, AgentsPane)
        return pane

    def requests(self, kind: type[R]) -> list[R]:
        """The requests of one type the pane asked the app to send, in order."""
        posted = [m.request for m in self.posted if isinstance(m, DaemonRequest)]
        return [request for request in posted if isinstance(request, kind)]

    def tiles(self) -> list[TerminalView]:
        return [view for view in self.agents.views if view.display]


def make_app(
    town_dir: Path,
    store: Store,
    *,
    running: tuple[str, ...] = ("deacon", "mayor"),
    kind: type[AgentsApp] = AgentsApp,
) -> AgentsApp:
    services = make_services(Town(town_dir), store, FakeLink())
    for name in running:
        services.live.apply(state_event(name, "working"))
        services.live.apply(screen_event(name, [f"{name} says hi", "$ "]))
    return kind(services)


def live_change(app: AgentsApp, event: Event) -> None:
    app.agents.live_changed(app.services.live.apply(event))


def keys_sent(app: AgentsApp, agent: str) -> bytes:
    link = app.services.link
    assert isinstance(link, FakeLink)
    return b"".join(keys.data for keys in link.ops(SendKeys) if keys.name == agent)


def focused(app: AgentsApp) -> Widget | None:
    return app.screen.focused


def prompt(listing: AgentList, index: int) -> str:
    content = listing.get_option_at_index(index).prompt
    assert isinstance(content, Content)
    return content.plain


def select(app: AgentsApp, name: str) -> None:
    listing = app.agents.query_one(AgentList)
    listing.highlighted = [row.name for row in listing.rows].index(name)


async def test_80x24_shows_fewer_tiles_than_250x70(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert 1 <= len(app.tiles()) <= 2
        assert [row.name for row in app.agents.query_one(AgentList).rows] == [
            "crew-1",
            "deacon",
            "mayor",
            "polecat-1",
        ]
    app = make_app(town_dir, store)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        assert len(app.tiles()) == 4
        grid = app.agents.query_one("#agents-grid")
        assert (grid.styles.grid_size_columns, grid.styles.grid_size_rows) == (2, 2)
        for view in app.tiles():
            assert view.size.width >= 60 and view.size.height >= 20


async def test_tiles_show_live_screens_and_dim_stored_ones(town_dir: Path, store: Store) -> None:
    await store.agents.set_state(
        "crew-1", AgentState.EXITED, actor="test", last_screen="[bold]bye[/bold]\n$ "
    )
    app = make_app(town_dir, store)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        tiles = {view.agent: view for view in app.tiles()}
        crew, mayor = tiles["crew-1"], tiles["mayor"]
        assert crew.dimmed and crew.has_class("-stopped") and "exited" in crew.label
        assert crew.render_line(0).text.startswith("[bold]bye[/bold]")
        assert not mayor.dimmed and mayor.render_line(0).text.startswith("mayor says hi")
        assert "(no screen recorded" in tiles["polecat-1"].render_line(0).text


async def test_j_and_k_move_the_selection_and_the_selected_tile(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        assert app.agents.selected and app.agents.selected.name == "crew-1"
        await pilot.press("j", "j")
        assert app.agents.selected.name == "mayor"
        assert [v.agent for v in app.tiles() if v.has_class("-selected")] == ["mayor"]
        await pilot.press("k")
        assert app.agents.selected.name == "deacon"
        assert [v.agent for v in app.tiles() if v.has_class("-selected")] == ["deacon"]


async def test_f_hands_every_key_to_the_agent_until_ctrl_right_bracket(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        view = focused(app)
        assert isinstance(view, TerminalView) and view.agent == "mayor"
        assert view.border_subtitle == "ctrl+] to release"
        await pilot.press("q", "1", "9", "question_mark", "colon", "slash", "tab", "escape")
        await pilot.press("ctrl+c", "up", "f1", "j", "s", "y")
        await pilot.pause(0.1)
        assert app.is_running and app.notes == []
        assert app.requests(Approve) == []
        assert keys_sent(app, "mayor") == b"q19?:/\t\x1b\x03\x1b[A\x1bOPjsy"
        await pilot.press(RELEASE_KEY)
        await pilot.pause()
        assert isinstance(focused(app), AgentList)
        assert b"\x1d" not in keys_sent(app, "mayor")
        await pilot.press("1")
        assert app.notes == ["tab1"]


async def test_f_refuses_an_agent_that_is_not_running(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "crew-1")
        await pilot.press("f")
        assert isinstance(focused(app), AgentList)
        assert any("not running" in toast for toast in app.toasts)


async def test_focusing_resizes_the_agents_pty_once(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "deacon")
        await pilot.pause(0.3)
        assert app.requests(Resize) == []
        await pilot.press("f")
        await pilot.pause(0.4)
        view = focused(app)
        assert isinstance(view, TerminalView)
        expected = Resize(name="deacon", columns=view.size.width, rows=view.size.height)
        assert app.requests(Resize) == [expected]
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.4)
        assert len(app.requests(Resize)) == 2
        assert app.requests(Resize)[-1].columns == view.size.width > expected.columns


async def test_z_zooms_the_selected_terminal_and_z_or_escape_restores(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.pause()
        await pilot.press("z")
        await pilot.pause(0.4)
        listing = app.agents.query_one(AgentList)
        assert not listing.display
        assert [v.agent for v in app.tiles()] == ["mayor"]
        assert app.tiles()[0].size.width == 78
        assert app.requests(Resize) == [Resize(name="mayor", columns=78, rows=22)]
        await pilot.press("escape")
        await pilot.pause()
        assert listing.display and len(app.tiles()) == 2
        await pilot.press("z", "z")
        await pilot.pause()
        assert listing.display


async def test_s_cycles_single_split_grid(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        assert len(app.tiles()) == 4
        await pilot.press("s")
        await pilot.pause()
        assert [v.agent for v in app.tiles()] == ["crew-1"]
        await pilot.press("s")
        await pilot.pause()
        assert [v.agent for v in app.tiles()] == ["crew-1", "deacon"]
        await pilot.press("s")
        await pilot.pause()
        assert len(app.tiles()) == 4


async def test_y_and_n_answer_the_oldest_request_of_the_selected_agent(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("y")
        assert app.requests(Approve) == []
        assert app.toasts[-1] == "mayor has no request waiting"
        live_change(app, pending(4, "mayor", "ls"))
        live_change(app, pending(9, "mayor", "rm"))
        await pilot.press("y")
        assert app.requests(Approve) == [Approve(id=4, actor="operator", seen="ls")]
        await pilot.press("n")
        assert app.requests(Deny) == [Deny(id=4, actor="operator", seen="ls")]


async def test_a_approves_everything_listed_after_confirmation(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        assert app.toasts[-1] == "no requests waiting"
        live_change(app, pending(4, "mayor", "[bold]ls[/]\x1b"))
        live_change(app, pending(2, "deacon", "rm x"))
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert app.screen.styles.background.a < 1  # the tab stays visible behind the question
        assert app.screen.items == ["deacon: Bash rm x", "mayor: Bash [bold]ls[/]␛"]
        texts = [str(w.render()) for w in app.screen.query(".confirm-item")]
        assert texts[1] == "mayor: Bash [bold]ls[/]␛"
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal) and app.requests(Approve) == []
        await pilot.press("a")
        await pilot.pause()
        live_change(app, pending(11, "mayor", "late"))
        await pilot.press("y")
        await pilot.pause()
        assert app.requests(Approve) == [
            Approve(id=2, actor="operator", seen="rm x"),
            Approve(id=4, actor="operator", seen="[bold]ls[/]\x1b"),
        ]


async def test_u_starts_x_stops_and_r_restarts_after_confirmation(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "crew-1")
        await pilot.press("u")
        assert app.requests(Spawn) == [Spawn(name="crew-1")]
        await pilot.press("x")
        assert app.toasts[-1] == "crew-1 is not running" and app.requests(Stop) == []
        select(app, "mayor")
        await pilot.press("u")
        assert app.requests(Spawn) == [Spawn(name="crew-1")]
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("escape")
        await pilot.pause()
        assert app.requests(Stop) == []
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.requests(Stop) == [Stop(name="mayor")]
        await pilot.press("R")  # running: a restart asks first, as a stop does
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and app.requests(Restart) == []
        await pilot.press("escape")
        await pilot.pause()
        assert app.requests(Restart) == []
        await pilot.press("R")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.requests(Restart) == [Restart(name="mayor")]
        select(app, "crew-1")
        await pilot.press("R")  # not running: nothing to interrupt, no question
        await pilot.pause()
        assert app.requests(Restart) == [Restart(name="mayor"), Restart(name="crew-1")]


async def test_live_changes_update_glyphs_and_new_agents_appear(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        listing = app.agents.query_one(AgentList)
        live_change(app, state_event("crew-1", "awaiting_approval"))
        live_change(app, state_event("[red]ghost", "idle"))
        await pilot.pause()
        assert prompt(listing, 0).startswith("* [red]ghost")
        assert (
            listing.rows[1].name == "crew-1"
            and listing.rows[1].state is AgentState.AWAITING_APPROVAL
        )
        assert prompt(listing, 1).startswith("! crew-1")


async def test_search_filters_by_name_role_and_runtime(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        listing = app.agents.query_one(AgentList)
        app.agents.search("codex")
        await pilot.pause()
        assert [row.name for row in listing.rows] == ["deacon"]
        assert [v.agent for v in app.tiles()] == ["deacon"]
        app.agents.search("")
        await pilot.pause()
        assert len(listing.rows) == 4


async def test_keys_are_sent_in_order_and_a_refusal_is_one_line(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    link = app.services.link
    assert isinstance(link, FakeLink)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("f")
        await pilot.press(*"hello", "enter")
        await pilot.pause(0.1)
        assert keys_sent(app, "mayor") == b"hello\r"
        from tundra_tui.domain.errors import TundraError

        link.answers[SendKeys] = TundraError("mayor is not running")
        await pilot.press("x")
        await pilot.pause(0.1)
        assert app.toasts[-1] == "keys not sent to mayor: mayor is not running"
        assert app.is_running


async def test_the_grabbed_agent_keeps_its_tile_and_a_stopped_one_releases(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("f")
        view = focused(app)
        assert isinstance(view, TerminalView) and view.agent == "mayor"
        live_change(app, state_event("a-new", "idle"))
        await pilot.pause()
        assert focused(app) is view and view.agent == "mayor"
        await pilot.press("k")
        assert keys_sent(app, "mayor") == b"k"
        live_change(app, state_event("mayor", "exited"))
        await pilot.pause()
        assert isinstance(focused(app), AgentList)
        assert app.toasts[-1] == "mayor left; keys released"


async def test_release_while_zoomed_keeps_the_zoom_keys_working(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("z", "f")
        assert isinstance(focused(app), TerminalView)
        await pilot.press("z", RELEASE_KEY)
        await pilot.pause()
        assert keys_sent(app, "mayor") == b"z"
        assert focused(app) is app.agents
        await pilot.press("z")
        await pilot.pause()
        assert isinstance(focused(app), AgentList)
        assert app.agents.query_one(AgentList).display


async def test_a_search_matching_nothing_says_so(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        app.agents.search("[b]zzz")
        await pilot.pause()
        empty = app.agents.query_one("#agents-empty", Static)
        assert empty.display and app.tiles() == []
        assert str(empty.render()) == "No agent matches “[b]zzz”."


async def test_focus_default_is_the_list_or_the_pane_while_zoomed(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        app.set_focus(None)
        app.agents.focus_default()
        await pilot.pause()
        assert isinstance(focused(app), AgentList)
        await pilot.press("z")
        app.set_focus(None)
        app.agents.focus_default()
        await pilot.pause()
        assert focused(app) is app.agents


# Scrollback


def fake_link(app: AgentsApp) -> FakeLink:
    link = app.services.link
    assert isinstance(link, FakeLink)
    return link


def subtitle(view: TerminalView) -> str:
    return Content.from_markup(view.border_subtitle or "").plain


async def wheel(pilot: Pilot[Any], view: TerminalView, *, up: bool = True) -> None:
    event = events.MouseScrollUp if up else events.MouseScrollDown
    await pilot._post_mouse_events([event], view, offset=(3, 3))


async def test_left_bracket_scrolls_the_selected_tile_back_and_q_gives_the_keys_back(
    town_dir: Path, store: Store
) -> None:
    history = FakeHistory.numbered(300)
    app = make_app(town_dir, store)
    fake_link(app).answers[History] = history.answer
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "crew-1")
        await pilot.press("left_square_bracket")
        assert app.toasts[-1] == "crew-1 is not running: no history to scroll"
        select(app, "mayor")
        await pilot.press("left_square_bracket")
        await pilot.pause()
        view = focused(app)
        assert isinstance(view, TerminalView) and view.agent == "mayor" and view.scrolling
        page = view.size.height - 1
        assert subtitle(view) == f"[scrollback {page}/300] · q to leave"
        assert {request.name for request in fake_link(app).ops(History)} == {"mayor"}
        # The motions scroll the tile, not the list; q leaves, and does not quit.
        await pilot.press("k", "k", "j")
        assert subtitle(view).startswith(f"[scrollback {page + 1}/300]")
        assert app.agents.selected is not None and app.agents.selected.name == "mayor"
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and not view.scrolling
        assert isinstance(focused(app), AgentList)
        assert keys_sent(app, "mayor") == b""


async def test_the_wheel_scrolls_a_zoomed_tile_and_escape_steps_back_out(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    fake_link(app).answers[History] = FakeHistory.numbered(100).answer
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("z")
        await pilot.pause(0.3)
        (view,) = app.tiles()
        await wheel(pilot, view)
        await pilot.pause()
        assert view.scrolling and focused(app) is view
        assert subtitle(view).startswith("[scrollback 3/100]")
        await pilot.press("escape")
        await pilot.pause()
        assert not view.scrolling and focused(app) is app.agents
        assert app.tiles() == [view]  # still zoomed
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.tiles()) == 2


async def test_a_grabbed_tile_scrolls_back_and_typing_goes_on_to_the_agent(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    fake_link(app).answers[History] = FakeHistory.numbered(100).answer
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("f", "shift+pageup")
        await pilot.pause()
        view = focused(app)
        assert isinstance(view, TerminalView) and view.scrolling
        await pilot.press("l", "s")
        await pilot.pause()
        assert not view.scrolling and focused(app) is view
        assert keys_sent(app, "mayor") == b"ls"


class TabbedApp(AgentsApp):
    """The pane as one of two tabs, switched as the real app switches them."""

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="pane-agents"):
            yield from super().compose()
            yield Static("another tab", id="other")

    def show_tab(self, tab: str) -> None:
        self.query_one(ContentSwitcher).current = tab
        if tab == "pane-agents":
            self.agents.focus_default()


async def test_the_daemon_is_told_which_screens_are_on_show_once_per_change(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store, kind=TabbedApp)
    assert isinstance(app, TabbedApp)
    shows = fake_link(app).shows

    def on_show() -> list[str]:
        return sorted(view.agent for view in app.tiles())

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert shows == [on_show()] and len(shows[0]) == 2
        for n in range(5):  # screens and states that move no tile tell nothing
            live_change(app, screen_event("crew-1", [f"tick {n}"]))
            live_change(app, state_event("deacon", "idle"))
        await pilot.pause()
        assert len(shows) == 1
        select(app, "mayor")
        await pilot.press("z")
        await pilot.pause(0.2)
        assert shows[-1] == ["mayor"]
        await pilot.press("z")
        await pilot.pause(0.2)
        assert shows[-1] == on_show() and "mayor" in shows[-1]
        app.show_tab("other")
        await pilot.pause()
        assert shows[-1] == []
        app.show_tab("pane-agents")
        await pilot.pause()
        assert shows[-1] == on_show()
        await pilot.press("s")
        await pilot.pause()
        assert shows[-1] == ["mayor"]
        await pilot.press("s", "s")
        await pilot.pause()
        assert shows[-1] == ["mayor", "polecat-1"]
        live_change(app, state_event("mayor-2", "idle"))
        await pilot.pause()
        assert shows[-1] == ["mayor", "mayor-2"] == on_show()
        live_change(app, RemovedEvent(agent="mayor-2"))
        await pilot.pause()
        assert shows[-1] == ["mayor", "polecat-1"] == on_show()
        assert all(before != after for before, after in itertools.pairwise(shows))


def tile_text(view: TerminalView) -> str:
    return view.render_line(0).text


async def test_while_a_tile_is_grabbed_it_repaints_at_once_and_the_others_slowly(
    town_dir: Path, store: Store
) -> None:
    """The echo of a key shows in the grabbed tile on its screen event, without waiting
    for a frame; the other tiles repaint a few times a second, not at the full rate, until
    the keys are released."""
    app = make_app(town_dir, store)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        tiles = {view.agent: view for view in app.tiles()}
        mayor, deacon = tiles["mayor"], tiles["deacon"]
        select(app, "mayor")
        await pilot.press("f")
        assert focused(app) is mayor and not mayor.background and deacon.background
        live_change(app, screen_event("mayor", ["mayor typed k", "$ "]))
        assert tile_text(mayor).startswith("mayor typed k")  # no frame waited for
        live_change(app, screen_event("deacon", ["deacon 1", "$ "]))
        deacon.tick()
        assert tile_text(deacon).startswith("deacon 1")  # drawn, as a frame would
        live_change(app, screen_event("deacon", ["deacon 2", "$ "]))
        deacon.tick()  # a frame of the full rate, well within the background's period
        assert tile_text(deacon).startswith("deacon 1")
        await pilot.press(RELEASE_KEY)
        await pilot.pause()
        assert not any(view.background for view in app.agents.views)
        live_change(app, screen_event("deacon", ["deacon 3", "$ "]))
        deacon.tick()
        assert tile_text(deacon).startswith("deacon 3")


async def test_the_daemon_is_told_which_tiles_are_only_glanced_at(
    town_dir: Path, store: Store
) -> None:
    """Tiles behind a grabbed one repaint a few times a second, so the daemon is told to
    emulate and send them no faster (`Show.glance`); released, they are watched again."""
    app = make_app(town_dir, store)
    link = app.services.link
    assert isinstance(link, FakeLink)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        tiles = ["crew-1", "deacon", "mayor", "polecat-1"]
        await until(lambda: bool(link.shows) and link.shows[-1] == tiles)
        assert link.glances[-1] == []
        select(app, "mayor")
        await pilot.press("f")
        await until(lambda: link.glances[-1] == ["crew-1", "deacon", "polecat-1"])
        assert link.shows[-1] == tiles
        await pilot.press(RELEASE_KEY)
        await until(lambda: link.glances[-1] == [])
        assert link.shows[-1] == tiles


def test_an_operators_stop_reads_stopped_by_you_not_an_exit_code() -> None:
    live = LiveModel()
    evidence = {"source": "process", "rule": "stopped", "matched": "killed by SIGHUP"}
    live.apply(
        StateEvent(agent="a", state="stopped", glyph="-", evidence={**evidence, "by": "operator"})
    )
    live.apply(ExitedEvent(agent="a", code=None, signal=1))
    live.apply(StateEvent(agent="b", state="stopped", glyph="-", evidence={**evidence, "by": "m"}))
    live.apply(StateEvent(agent="c", state="stopped", glyph="-", evidence=evidence))
    live.apply(ExitedEvent(agent="c", code=None, signal=1))
    live.apply(state_event("d", "failed"))
    live.apply(ExitedEvent(agent="d", code=3))
    rows = {row.name: row for row in agent_rows([], live, {})}
    assert (rows["a"].note, rows["a"].trouble) == ("stopped by you", "")
    assert rows["b"].note == "stopped by m"
    assert (rows["c"].note, rows["c"].trouble) == ("", ""), "who stopped it is unknown: stopped"
    assert (rows["d"].note, rows["d"].trouble) == ("", "exit 3"), "a crash still reads as one"


async def test_the_layout_starts_as_configured_and_a_change_is_remembered(
    town_dir: Path, store: Store
) -> None:
    set_value(Town(town_dir), "ui.agents_layout", "split", "local")
    app = make_app(town_dir, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.agents._layout is Layout.SPLIT
        await pilot.press("s")
        await pilot.pause()
        assert app.agents._layout is Layout.GRID
        remembered = [m for m in app.posted if isinstance(m, RememberChoice)]
        assert remembered == [RememberChoice("ui.agents_layout", "grid")]


async def test_the_list_says_which_agents_have_tiles_when_not_all_do(
    town_dir: Path, store: Store
) -> None:
    names = tuple(f"agent-{n}" for n in range(1, 10))
    app = make_app(town_dir, store, running=names)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        listing = app.agents.query_one(AgentList)
        tiles, total = len(app.tiles()), len(listing.rows)
        assert 1 < tiles < total
        assert str(listing.border_subtitle) == f"grid · 1-{tiles}/{total}"
        select(app, listing.rows[-1].name)
        await pilot.pause()
        assert str(listing.border_subtitle) == f"grid · {total - tiles + 1}-{total}/{total}"
        await pilot.press("z")
        await pilot.pause()
        assert str(listing.border_subtitle) == f"zoom · {total}/{total}"


async def test_a_tile_says_when_the_agents_own_hooks_decided_its_state(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        live_change(
            app,
            StateEvent(
                agent="mayor", state="working", glyph="@",
                evidence={"source": "hook", "rule": "claude.hook.UserPromptSubmit"},
            ),
        )  # fmt: skip
        screen = {"source": "screen", "rule": "demo.idle"}
        live_change(app, StateEvent(agent="deacon", state="idle", glyph="*", evidence=screen))
        for name, said in (("mayor", True), ("deacon", False)):
            select(app, name)
            await pilot.pause()
            label = next(view.label for view in app.tiles() if view.agent == name)
            assert label.endswith("working · by its hooks") if said else "hooks" not in label
