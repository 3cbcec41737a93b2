"""The approval inbox against a real daemon and real agents: a request never takes keys meant
for a form or a grabbed agent; `Y` answers exactly the requests its confirmation listed; the
inbox shows hidden characters as symbols; a request answered elsewhere leaves the inbox.

One town for the module: two asker agents (`ask CMD` prompts on screen) and a hooked agent
(asks through the hook, with the exact command). Each test leaves nothing pending.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from at_cli import (
    agent_state,
    asker_config,
    at,
    daemon_town,
    pending_approvals,
    until,
    wait_for,
)
from live_room import control_room
from textual.widgets import Input

from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.modals.approval import ApprovalModal
from tundra_tui.ui.modals.bead_form import BeadForm
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.modals.inbox import InboxModal
from tundra_tui.ui.widgets.nav_table import NavTable
from tundra_tui.ui.widgets.terminal_view import TerminalView

HOOKED = Path(__file__).parent / "helpers" / "hooked_agent.py"
ASKERS = ("a1", "a2")
DEADLINE = 30.0


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(asker_config("a1"))
            config.write('\n[agents.a2]\nrole = "crew"\nruntime = "custom"\n')
            config.write(
                '\n[agents.hk]\nrole = "crew"\nruntime = "demo"\n'
                f"command = {json.dumps(f'{sys.executable} {HOOKED}')}\n"
            )
        for name in (*ASKERS, "hk"):
            at(root, "agent", "start", name)
        wait_for(lambda: all(agent_state(root, n) == "idle" for n in (*ASKERS, "hk")))
        yield root


@pytest.fixture
async def app(town: Path) -> AsyncIterator[TundraApp]:
    """The real control room on the town; afterwards every request still waiting is denied."""
    async with control_room(town) as app:
        try:
            yield app
        finally:
            for waiting in await asyncio.to_thread(pending_approvals, town):
                await asyncio.to_thread(at, town, "deny", str(waiting["id"]), check=False)
            await asyncio.to_thread(
                wait_for, lambda: all(agent_state(town, n) == "idle" for n in (*ASKERS, "hk"))
            )


async def ask(town: Path, agent: str, task: str) -> None:
    await asyncio.to_thread(at, town, "send", agent, task)


def waiting_for(app: TundraApp, agent: str, source: str = "") -> int | None:
    """The id of the request `agent` has waiting (in the words `source` read), if any."""
    for approval in app.services.live.approvals.values():
        if approval.agent == agent and source in ("", approval.source):
            return approval.id
    return None


async def test_a_request_arriving_while_a_form_is_typed_does_not_take_the_keys(
    town: Path, app: TundraApp
) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        app.typing_pause = 0  # the open form alone must hold the popup back
        app.arm_seconds = 0
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await pilot.press("3")
        await until(lambda: app.active_pane.is_mounted, what="the Beads tab")
        await pilot.press("n")
        await until(lambda: isinstance(app.screen, BeadForm), what="the form")
        form = app.screen
        await pilot.press(*"fix ")
        await ask(town, "a1", "ask touch form.txt")
        await until(lambda: waiting_for(app, "a1") is not None, DEADLINE, what="the request")
        await pilot.pause()
        await pilot.pause()  # where the popup would have been pushed
        await pilot.press(*"yes now")
        assert app.screen is form, "the form keeps the screen"
        assert form.query_one("#bead-form-title", Input).value == "fix yes now"
        assert waiting_for(app, "a1") is not None, "no key answered the request"
        await pilot.press("escape")  # the form closes: now the request may pop up
        await until(lambda: isinstance(app.screen, ApprovalModal), what="the popup")
        await pilot.press("n")
        await until(lambda: waiting_for(app, "a1") is None, DEADLINE, what="the answer")
    assert not (town / "form.txt").exists()


async def test_keys_typed_into_a_grabbed_agent_reach_it_while_a_request_arrives(
    town: Path, app: TundraApp
) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        app.typing_pause = 0  # the grabbed tile alone must hold the popup back
        app.arm_seconds = 0
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await pilot.press("2")
        await until(lambda: app.active_pane.is_mounted, what="the Agents tab")
        await until(lambda: app.active_pane.selected is not None, what="an agent row")  # type: ignore[attr-defined]
        await pilot.press("f")
        await until(lambda: isinstance(app.focused, TerminalView), what="the grab")
        view = app.focused
        assert isinstance(view, TerminalView)
        grabbed = view.agent
        asker = next(name for name in ASKERS if name != grabbed)
        await ask(town, asker, "ask touch grabbed.txt")
        await until(lambda: waiting_for(app, asker) is not None, DEADLINE, what="the request")
        await pilot.pause()
        await pilot.pause()  # where the popup would have been pushed
        await pilot.press(*"hello")
        assert app.focused is view and not isinstance(app.screen, ApprovalModal)

        def echoed() -> bool:
            return "hello" in at(town, "peek", grabbed).stdout

        await asyncio.to_thread(wait_for, echoed)
        assert waiting_for(app, asker) is not None, "no key answered the request"
        await pilot.press("enter")  # the agent takes the line (a no-op task): idle again
        await pilot.press("ctrl+right_square_bracket")  # released: now it may pop up
        await until(lambda: isinstance(app.screen, ApprovalModal), what="the popup")
        await pilot.press("n")
        await until(lambda: waiting_for(app, asker) is None, DEADLINE, what="the answer")
    assert not (town / "grabbed.txt").exists()


def rows(inbox: InboxModal) -> dict[str, list[str]]:
    """The inbox's rows as shown, by agent."""
    table = inbox.query_one(NavTable)
    shown = {}
    for index in range(table.row_count):
        cells = [str(cell) for cell in table.get_row_at(index)]
        shown[cells[1]] = cells
    return shown


async def test_Y_answers_exactly_the_listed_requests_and_the_inbox_shows_them_safely(
    town: Path, app: TundraApp
) -> None:
    app.approval_popup = False
    hostile = "touch 'x\u202ey [b]bold[/b].txt'"
    async with app.run_test(size=(160, 48)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await ask(town, "a1", "ask touch one.txt")
        await ask(town, "a2", "ask touch two.txt")
        await ask(town, "hk", f"RUN: {hostile}")
        await until(
            lambda: all(waiting_for(app, n) for n in ASKERS) and waiting_for(app, "hk", "hook"),
            DEADLINE,
            what="three requests",
        )
        await pilot.press("I")
        await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
        inbox = app.screen
        assert isinstance(inbox, InboxModal)
        await until(lambda: "hk" in rows(inbox), what="the rows")
        shown = rows(inbox)
        assert set(shown) == {"a1", "a2", "hk"}
        assert shown["hk"][3] == "hook" and shown["a1"][3] == "screen"
        assert shown["hk"][5] == "touch 'x⟨U+202E⟩y [b]bold[/b].txt'"
        assert all(cells[4] != "-" for cells in shown.values()), "each says how long it waited"

        # Walk the rows: space selects a1 and hk (and moves on), j passes a2.
        for approval in inbox._ordered():
            if approval.agent == "hk":  # highlighted: the detail shows the whole command
                detail = str(inbox.query_one("#inbox-detail").render())
                assert "\u202e" not in detail
                assert "Bash  #" in detail and "⟨U+202E⟩y [b]bold[/b]" in detail
            await pilot.press("space" if approval.agent in ("a1", "hk") else "j")
        assert {inbox.shown[i].agent for i in inbox.selected} == {"a1", "hk"}
        await pilot.press("Y")
        await until(lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        listed = sorted(item.split(" ", 1)[0] for item in confirm.items)
        assert listed == ["a1", "hk"]
        assert any("⟨U+202E⟩" in item for item in confirm.items)
        await pilot.press("y")
        await until(lambda: set(rows(inbox)) == {"a2"}, DEADLINE, what="two answered")
        assert app.screen is inbox
        assert [a["agent"] for a in await asyncio.to_thread(pending_approvals, town)] == ["a2"]
        await asyncio.to_thread(wait_for, (town / "one.txt").exists)

        # Answered elsewhere (the CLI): it leaves the open inbox.
        (left,) = await asyncio.to_thread(pending_approvals, town)
        await asyncio.to_thread(at, town, "deny", str(left["id"]))
        await until(lambda: not rows(inbox), DEADLINE, what="the row to leave")
        assert inbox.query_one("#inbox-empty").display
    assert not (town / "two.txt").exists()
