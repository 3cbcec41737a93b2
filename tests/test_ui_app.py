"""The app shell: tabs, global keys, help, palette, search, themes, keymap and approvals.

Panes here are simple recording panes, so these tests pin the shell's behaviour alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from at_cli import until
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Button, Static
from ui_harness import FakeLink, make_services, pending, state_event

from tundra_tui.config import load_config, set_value
from tundra_tui.daemon.protocol import (
    ApprovalEvent,
    ApprovalResolvedEvent,
    Approve,
    ConfigSet,
    Deny,
    LinkEvent,
    ScreenEvent,
    Shutdown,
    Spawn,
    Stop,
)
from tundra_tui.store import Store, open_store
from tundra_tui.town import find_town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.live import Change
from tundra_tui.ui.modals.approval import ApprovalModal
from tundra_tui.ui.modals.help import HelpModal
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.tabs import TAB_TITLES, Tab
from tundra_tui.ui.widgets.search_bar import SearchBar
from tundra_tui.ui.widgets.tab_bar import TabBar


class RecordingPane(Pane):
    """Counts reloads, remembers searches and live changes, has one binding."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "poke", "Poke the pane", id="rec-poke"),
    ]

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.reloads = 0
        self.searches: list[str] = []
        self.changes: list[Change] = []
        self.pokes = 0

    def compose(self) -> ComposeResult:
        yield Static(f"pane {self.id}")
        yield Button("focus me")

    async def reload(self) -> None:
        self.reloads += 1

    def search(self, text: str) -> None:
        self.searches.append(text)

    def live_changed(self, change: Change) -> None:
        self.changes.append(change)

    def action_poke(self) -> None:
        self.pokes += 1


TABS = tuple(
    Tab(tab_id, title, lambda s, i: RecordingPane(s, id=i)) for tab_id, title in TAB_TITLES
)


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    town = find_town(town_dir)
    async with await open_store(town.db_path) as opened:
        yield opened


def make_app(town_dir: Path, store: Store, link: FakeLink | None = None, **kw: Any) -> TundraApp:
    services = make_services(find_town(town_dir), store, link)
    kw.setdefault("clock_interval", 0)
    return TundraApp(services, tabs=TABS, watch_files=False, **kw)


def pane(app: TundraApp, tab: str) -> RecordingPane:
    found = app.pane(tab)
    assert isinstance(found, RecordingPane)
    return found


async def test_number_keys_switch_tabs_and_reload(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.current_tab == "dashboard"
        for number, (tab_id, _title) in enumerate(TAB_TITLES, 1):
            await pilot.press(str(number))
            await pilot.pause()
            assert app.current_tab == tab_id
            assert app.query_one(TabBar).active == tab_id
            assert pane(app, tab_id).display
            assert pane(app, tab_id).reloads == 1  # loaded when first shown, and only then


async def test_tab_bar_fits_80_columns_without_cutting_words(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await pilot.pause()
        line = str(app.query_one(TabBar).render())
        assert "7 Analytics" in line and len(line) <= 80
        for other in ("Dashboard", "Convoys"):
            assert other not in line
    app = make_app(town_dir, store)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        line = str(app.query_one(TabBar).render())
        assert all(title in line for _, title in TAB_TITLES)


async def test_r_reloads_the_active_pane(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        before = pane(app, "dashboard").reloads
        await pilot.press("r")
        await pilot.pause()
        assert pane(app, "dashboard").reloads == before + 1


async def test_t_cycles_themes(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        seen = {app.theme}
        for _ in range(3):
            await pilot.press("t")
            seen.add(app.theme)
        assert len(seen) == 4


async def test_the_theme_chosen_with_t_is_written_once_for_the_next_start(
    town_dir: Path, store: Store
) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test() as pilot:
        for _ in range(3):
            await pilot.press("t")
        chosen = app.theme
        await until(lambda: link.ops(ConfigSet), what="the choice written")
        assert not app._choices, "no other write is pending"
        assert link.ops(ConfigSet) == [ConfigSet(key="ui.theme", value=chosen, layer="local")], (
            "three presses, one write: the last"
        )
    assert load_config(find_town(town_dir)).get("ui.theme") == chosen


async def test_ui_settings_changed_in_the_files_apply_while_the_app_runs(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        assert app.theme != "nord" and app.approval_popup
        town = find_town(town_dir)
        set_value(town, "ui.theme", "nord", "local")
        set_value(town, "ui.approval_popup", "false", "local")
        set_value(town, "ui.keys.theme", "f6", "local")
        app.data_changed("config")
        await pilot.pause()
        assert app.theme == "nord" and not app.approval_popup
        await pilot.press("f6")
        assert app.theme != "nord", "the remapped key works at once"


async def test_q_quits_without_stopping_agents(town_dir: Path, store: Store) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app._exit
    assert app.return_code == 0
    assert not [r for r in link.requests if isinstance(r, Stop | Shutdown)]


async def test_help_lists_every_binding_with_its_id(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        ids = {row.id for row in app.screen.rows}
        assert {"quit", "help", "palette", "search", "theme", "refresh", "rec-poke"} <= ids
        assert {f"tab-{t}" for t, _ in TAB_TITLES} <= ids
        assert app.screen.rows[0].group == "Dashboard", "the current tab's keys come first"
        await pilot.press("escape", "2")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        groups = [row.group for row in app.screen.rows]
        here = dict(TAB_TITLES)["agents"]
        assert groups[: groups.count(here)] == [here] * groups.count(here) and here in groups, (
            "the current tab's keys come first"
        )
        assert {"approval-yes", "approval-no"} <= ids
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpModal)


async def test_palette_reaches_pane_actions(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press(*"Costs: Poke")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.current_tab == "costs"
        assert pane(app, "costs").pokes == 1


async def test_search_filters_the_active_pane(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.press("3", "slash", "a", "b")
        await pilot.pause()
        assert pane(app, "beads").searches[-1] == "ab"
        assert app.query_one(SearchBar).has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert pane(app, "beads").searches[-1] == ""
        assert not app.query_one(SearchBar).display


async def test_each_tab_keeps_its_own_filter(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.press("3", "slash", "a", "b", "enter")
        await pilot.pause()
        assert pane(app, "beads").searches[-1] == "ab"
        await pilot.press("2")
        await pilot.pause()
        bar = app.query_one(SearchBar)
        assert pane(app, "agents").searches == [], "the Beads filter stays on Beads"
        assert not bar.display and bar.value == ""
        await pilot.press("slash", "x", "enter", "3")
        await pilot.pause()
        assert bar.display and bar.value == "ab", "back on Beads: its own filter, shown"
        assert pane(app, "beads").searches[-1] == "ab"
        assert pane(app, "agents").searches == ["x"]


async def test_letters_typed_right_after_slash_reach_the_search(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        # Queued at once, as a terminal delivers fast typing: no pause between the keys.
        app.post_message(events.Key("slash", "/"))
        for letter in "xyz":
            app.post_message(events.Key(letter, letter))
        await pilot.pause()
        assert pane(app, "dashboard").searches[-1] == "xyz"


async def test_keys_remapped_from_config(town_dir: Path, store: Store) -> None:
    (town_dir / ".tundra" / "local.toml").write_text(
        '[ui.keys]\nquit = "ctrl+x"\ntab-beads = "b"\nno-such-binding = "z"\n'
    )
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running
        await pilot.press("b")
        await pilot.pause()
        assert app.current_tab == "beads"
        messages = [n.message for n in app._notifications]
        assert any("no-such-binding" in m for m in messages)


def approval(
    approval_id: int, agent: str = "polecat-1", subject: str = "rm -rf build", source: str = "hook"
) -> ApprovalEvent:
    return pending(approval_id, agent, subject, source=source)


async def test_approval_modal_arms_then_answers(town_dir: Path, store: Store) -> None:
    link = FakeLink([approval(7)])
    app = make_app(town_dir, store, link, approval_popup=True)
    app.arm_seconds = 30
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        modal = app.screen
        assert isinstance(modal, ApprovalModal)
        text = str(modal.query_one("#approval-subject").render())
        assert "rm -rf build" in text
        await pilot.press("y", "n")  # type-ahead: ignored before the keys arm
        await pilot.pause()
        assert app.screen is modal
        assert not link.ops(Approve) and not link.ops(Deny)
        modal._arm()  # what the arming timer does when it fires
        await pilot.press("y")
        await pilot.pause()
        assert link.ops(Approve) == [Approve(id=7, actor="operator", seen="rm -rf build")]
        assert not isinstance(app.screen, ApprovalModal)


async def test_approval_keys_arm_by_themselves(town_dir: Path, store: Store) -> None:
    link = FakeLink([approval(8)])
    app = make_app(town_dir, store, link, approval_popup=True)
    app.arm_seconds = 0.1
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        modal = app.screen
        assert isinstance(modal, ApprovalModal)
        for _ in range(50):
            if modal.armed:
                break
            await pilot.pause(0.05)
        await pilot.press("n")
        await pilot.pause()
    assert link.ops(Deny) == [Deny(id=8, actor="operator", seen="rm -rf build")]


async def test_approvals_are_queued_one_modal_at_a_time(town_dir: Path, store: Store) -> None:
    link = FakeLink([approval(1, "a"), approval(2, "b")])
    app = make_app(town_dir, store, link, approval_popup=True)
    app.arm_seconds = 0
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        assert isinstance(app.screen, ApprovalModal) and app.screen.approval.id == 1
        assert len(app.screen_stack) == 2
        await pilot.press("n")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ApprovalModal) and app.screen.approval.id == 2
        await pilot.press("escape")  # decide later: stays pending, nothing sent
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ApprovalModal)
    assert link.ops(Deny) == [Deny(id=1, actor="operator", seen="rm -rf build")]
    assert link.ops(Approve) == []
    assert 2 in app.services.live.approvals


async def test_approval_answered_elsewhere_closes_its_modal(town_dir: Path, store: Store) -> None:
    link = FakeLink([approval(3)])
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        assert isinstance(app.screen, ApprovalModal)
        link.push(ApprovalResolvedEvent(approval=approval(3).approval))
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ApprovalModal)
    assert not link.ops(Approve) and not link.ops(Deny)


async def test_an_upgraded_request_shows_its_new_words_and_arms_again(
    town_dir: Path, store: Store
) -> None:
    """One prompt, one request: when the hook's exact words replace the screen's, the open
    modal shows them, and a `y` typed for the old words cannot answer the new ones."""
    screen = approval(4, subject="# Shell command", source="screen")
    link = FakeLink([screen])
    app = make_app(town_dir, store, link, approval_popup=True)
    app.arm_seconds = 30
    async with app.run_test(size=(100, 30)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, ApprovalModal))
        modal = app.screen
        assert isinstance(modal, ApprovalModal)
        modal._arm()
        link.push(approval(4, subject="rm -rf build/cache"))
        await _until(pilot, lambda: "cache" in str(modal.query_one("#approval-subject").render()))
        assert app.screen is modal and len(app.screen_stack) == 2, "no second modal"
        assert "rm -rf build/cache" in str(modal.query_one("#approval-subject").render())
        assert "hook" in str(modal.query_one("#approval-source").render())
        await pilot.press("y")
        await pilot.pause()
        assert not link.ops(Approve), "answered words the operator had no time to read"
        modal._arm()
        await pilot.press("y")
        await pilot.pause()
    assert link.ops(Approve) == [Approve(id=4, actor="operator", seen="rm -rf build/cache")]


async def _until(pilot: Any, predicate: Any, turns: int = 200) -> None:
    """Let the app run until `predicate()` holds (a bounded number of turns, no fixed wait)."""
    for _ in range(turns):
        if predicate():
            return
        await pilot.pause()
    raise AssertionError("the app never got there")


async def test_approval_subject_shows_hidden_characters(town_dir: Path, store: Store) -> None:
    hostile = "echo hi\x1b]52;c;ZXZpbA==\x07 \u202e[bold]x[/bold]"
    link = FakeLink([approval(4, subject=hostile)])
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        text = str(app.screen.query_one("#approval-subject").render())
        assert "\x1b" not in text and "\x07" not in text
        assert "␛]52;c;ZXZpbA==␇" in text
        assert "⟨U+202E⟩" in text
        assert "[bold]x[/bold]" in text


async def test_live_events_reach_every_pane(town_dir: Path, store: Store) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test() as pilot:
        await app.compose_all()  # a pane is composed when first shown
        link.push(state_event("mayor", "working"))
        await pilot.pause(0.1)
        for tab_id, _ in TAB_TITLES:
            assert Change("state", "mayor") in pane(app, tab_id).changes
        assert app.services.live.agents["mayor"].state.value == "working"


async def test_screen_events_reach_only_the_agents_pane_and_link_loss_is_said_once(
    town_dir: Path, store: Store
) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link)
    async with app.run_test() as pilot:
        await app.compose_all()  # a pane is composed when first shown
        heard = {tab_id: len(pane(app, tab_id).changes) for tab_id, _ in TAB_TITLES}
        link.push(ScreenEvent(agent="mayor", rows={}, cursor=(0, 0), size=(80, 24)))
        link.push(LinkEvent(up=False, error="connection refused"))
        link.push(LinkEvent(up=False, error="connection refused"))
        await pilot.pause(0.1)
        for tab_id, _ in TAB_TITLES:
            kinds = [c.kind for c in pane(app, tab_id).changes[heard[tab_id] :]]
            # Only the Agents pane hears of screens: its grabbed tile paints on them.
            assert kinds.count("screen") == (tab_id == "agents") and kinds.count("link") == 2
        assert app.services.live.agents["mayor"].screen.version == 1  # applied all the same
        said = [n.message for n in app._notifications if "daemon" in n.message]
        assert said == ["daemon: connection refused"]


async def test_daemon_refusal_is_one_line(town_dir: Path, store: Store) -> None:
    from tundra_tui.domain.errors import TundraError
    from tundra_tui.ui.messages import DaemonRequest

    link = FakeLink()
    link.answers[Spawn] = TundraError("no agent 'x' in tundra.toml\nsecond line")
    app = make_app(town_dir, store, link)
    async with app.run_test() as pilot:
        app.post_message(DaemonRequest(Spawn(name="x")))
        await pilot.pause(0.1)
        messages = [n.message for n in app._notifications]
        assert "spawn: no agent 'x' in tundra.toml" in messages


async def test_a_broken_config_on_refresh_is_one_line_and_keeps_the_last_good_one(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        (town_dir / "tundra.toml").write_text("[general\nname = 'x'\n")
        await pilot.press("r")
        await pilot.pause()
        assert app.is_running
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and errors[0].startswith("config: ") and "\n" not in errors[0]
        assert app.services.config.get("ui.theme") == "textual-dark"


async def test_help_lists_each_binding_once_under_where_it_works(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.compose_all()  # as help does: a pane is composed when first shown
        rows = app.binding_rows()
        globals_ = {row.id for row in rows if row.group == "global"}
        assert "rec-poke" not in globals_ and "quit" in globals_
        assert [row.group for row in rows if row.id == "rec-poke"] == [
            title for _, title in TAB_TITLES
        ]
        assert {"confirm-yes", "bead-form-save", "config-edit-save"} <= {row.id for row in rows}


async def test_slash_types_into_a_text_field_and_a_modal(town_dir: Path, store: Store) -> None:
    from textual.screen import ModalScreen
    from textual.widgets import Input

    class Form(ModalScreen[None]):
        def compose(self) -> ComposeResult:
            yield Input(id="field")

    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        await app.push_screen(Form())
        await pilot.pause()
        await pilot.press("a", "slash", "b")
        await pilot.pause()
        assert app.screen.query_one("#field", Input).value == "a/b"
        app.pop_screen()
        await pilot.pause()
        await pilot.press("slash", "u", "slash", "v")
        await pilot.pause()
        assert app.query_one(SearchBar).value == "u/v"


async def test_notifications_never_read_markup(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        app.notify("agent evil[/] and [@click=app.quit]x[/]")
        pane(app, "dashboard").notify("[bold]not bold[/bold] [/]")
        await pilot.pause(0.2)
        assert app.is_running
        messages = [n.message for n in app._notifications]
        assert "agent evil[/] and [@click=app.quit]x[/]" in messages
        assert all(not n.markup for n in app._notifications)


async def test_a_failing_reload_says_so_once_until_it_recovers(
    town_dir: Path, store: Store
) -> None:
    from tundra_tui.domain.errors import TundraError

    app = make_app(town_dir, store)
    async with app.run_test() as pilot:
        await pilot.pause()
        dash = pane(app, "dashboard")
        failing = True

        async def reload() -> None:
            if failing:
                raise TundraError("database is locked")

        dash.reload = reload  # type: ignore[method-assign]
        for _ in range(3):
            await pilot.press("r")
            await pilot.pause()
        said = [n.message for n in app._notifications if "locked" in n.message]
        assert said == ["database is locked"]
        failing = False
        await pilot.press("r")
        await pilot.pause()
        failing = True
        await pilot.press("r")
        await pilot.pause()
        said = [n.message for n in app._notifications if "locked" in n.message]
        assert said == ["database is locked", "database is locked"]


async def test_key_hints_follow_the_focus(town_dir: Path, store: Store) -> None:
    from tundra_tui.ui.widgets.key_hints import KeyHints

    app = make_app(town_dir, store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        hints = app.query_one(KeyHints)
        line = str(hints.render())
        assert "Poke the pane" in line and "Quit" in line and "Show Beads" not in line
        await pilot.press("slash")
        await pilot.pause()
        assert "Poke the pane" not in str(hints.render())  # the search line has the focus


@pytest.mark.parametrize(
    "theme", ["textual-dark", "nord", "gruvbox", "tokyo-night", "textual-light", "ansi-dark"]
)
async def test_every_theme_t_reaches_draws(town_dir: Path, store: Store, theme: str) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
