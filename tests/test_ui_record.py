"""The flight recorder in the Agents tab: `d`, the state it really is, the `record` op."""

from __future__ import annotations

from pathlib import Path

from at_cli import until
from test_ui_agents import fake_link, focused, keys_sent, make_app, select, store
from textual.widgets import Static

from tundra_tui.daemon.protocol import Record, Recorded, StateEvent
from tundra_tui.store import Store
from tundra_tui.ui.modals.record import RecordModal
from tundra_tui.ui.widgets.terminal_view import TerminalView

__all__ = ["store"]  # the fixture, shared with the Agents tab's tests

PATH = "/town/.tundra/recordings/mayor-20261120T143000Z-idle.json"


async def test_d_asks_the_right_state_and_records_it_through_the_daemon(
    town_dir: Path, store: Store
) -> None:
    app = make_app(town_dir, store)
    evidence = {
        "source": "screen",
        "rule": "demo.working.spinner",
        "matched": "[bold]x[/]",
        "versions": "demo [red]1[/]",
    }
    app.services.live.apply(StateEvent(agent="mayor", state="working", glyph="", evidence=evidence))
    link = fake_link(app)
    link.answers[Record] = lambda request: Recorded(
        path=PATH, state="working", rule="demo.working.spinner", label=request.label or ""
    )
    async with app.run_test(size=(100, 30)) as pilot:
        select(app, "mayor")
        await pilot.press("d")
        modal = app.screen
        assert isinstance(modal, RecordModal)
        shown = " ".join(str(w.render()) for w in modal.query(Static))
        assert "working by demo.working.spinner (screen)" in shown
        assert "Decided by: the screen, for demo [red]1[/]" in shown  # never markup
        assert "Matched: [bold]x[/]" in shown  # the agent's text, never markup
        await pilot.press("escape")
        assert not isinstance(app.screen, RecordModal) and not link.ops(Record)

        await pilot.press("d", "i")
        await until(lambda: any(PATH in toast for toast in app.toasts), what="the path told")
        assert link.ops(Record) == [Record(name="mayor", label="idle")]


async def test_d_goes_to_the_agent_while_its_tile_is_grabbed(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    async with app.run_test(size=(80, 24)) as pilot:
        select(app, "mayor")
        await pilot.press("f", "d")
        await pilot.pause()
        assert isinstance(focused(app), TerminalView)
        assert not isinstance(app.screen, RecordModal)
        assert keys_sent(app, "mayor") == b"d" and not fake_link(app).ops(Record)


async def test_the_dialog_names_the_hook_that_decided(town_dir: Path, store: Store) -> None:
    app = make_app(town_dir, store)
    evidence = {
        "source": "hook",
        "rule": "codex.hook.permission_request",
        "matched": "PermissionRequest Bash: touch approved.txt",
        "versions": "codex 0.169.0 hooks",
    }
    app.services.live.apply(
        StateEvent(agent="mayor", state="awaiting_approval", glyph="", evidence=evidence)
    )
    async with app.run_test(size=(100, 30)) as pilot:
        select(app, "mayor")
        await pilot.press("d")
        modal = app.screen
        assert isinstance(modal, RecordModal)
        channel = str(modal.query_one("#record-channel", Static).render())
        assert channel == "Decided by: the agent's hook, for codex 0.169.0 hooks"
