"""Always-allow rules from the inbox against a real daemon and a real asker agent: `A`
names the exact command, makes the rule and approves the request; the same command then
answers itself while another waits; `R` lists the rules and `x` revokes one; `A` on a
deny-listed command is refused with its reason and makes no rule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from at_cli import agent_state, asker_config, at, daemon_town, pending_approvals, until, wait_for
from live_room import control_room

from tundra_tui.daemon.protocol import SendText
from tundra_tui.domain.agents import AgentState
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.modals.inbox import InboxModal
from tundra_tui.ui.modals.rules import RulesModal
from tundra_tui.ui.widgets.nav_table import NavTable

DEADLINE = 30.0


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(asker_config("a1"))
        at(root, "agent", "start", "a1")
        wait_for(lambda: agent_state(root, "a1") == "idle")
        yield root


@pytest.fixture
async def app(town: Path) -> AsyncIterator[TundraApp]:
    """The real control room on the town, no popup; afterwards nothing waits, no rule lives."""
    async with control_room(town, approval_popup=False) as app:
        try:
            yield app
        finally:
            for waiting in await asyncio.to_thread(pending_approvals, town):
                await asyncio.to_thread(at, town, "deny", str(waiting["id"]), check=False)
            for rule in json.loads((await asyncio.to_thread(at, town, "rules", "--json")).stdout):
                await asyncio.to_thread(at, town, "rules", "revoke", str(rule["id"]))
            await asyncio.to_thread(wait_for, lambda: agent_state(town, "a1") == "idle")


def a1_idle(app: TundraApp) -> bool:
    agent = app.services.live.agents.get("a1")
    return agent is not None and agent.state is AgentState.IDLE


async def send(app: TundraApp, text: str) -> None:
    """Type a task into a1, as the operator (the app's own link to the daemon)."""
    await app.services.link.call(SendText(name="a1", text=text))


async def ask(app: TundraApp, town: Path, command: str) -> int:
    """a1 asks to run `command`; the id of its request once the app lists it."""
    await send(app, f"ask {command}")
    found: list[int] = []

    def listed() -> bool:
        found[:] = [a.id for a in app.services.live.approvals.values()]
        return bool(found)

    await until(listed, DEADLINE, what="the request")
    return found[0]


def ran(town: Path, name: str) -> int:
    path = town / name
    return len(path.read_text().splitlines()) if path.exists() else 0


async def open_inbox(app: TundraApp, pilot: object) -> InboxModal:
    await pilot.press("I")  # type: ignore[attr-defined]
    await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
    inbox = app.screen
    assert isinstance(inbox, InboxModal)
    inbox.arm_seconds = 0  # rows that come later answer at once (the arming is tested elsewhere)
    await until(lambda: inbox.query_one(NavTable).row_count == 1, what="the row")
    return inbox


async def test_A_always_allows_exactly_that_command_and_R_revokes_it(
    town: Path, app: TundraApp
) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await ask(app, town, "echo x >> allowed.log")
        inbox = await open_inbox(app, pilot)
        await pilot.press("A")
        await until(lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert "a1" in confirm.question
        assert "".join(confirm.items) == "Allow command? echo x >> allowed.log [y/n]"
        await pilot.press("y")
        await until(lambda: ran(town, "allowed.log") == 1, DEADLINE, what="the approval")
        await until(lambda: not app.services.live.approvals, DEADLINE, what="the row to leave")
        await until(lambda: a1_idle(app), DEADLINE, what="a1 idle")

        # The same words again: the daemon's rule answers; other words wait in the inbox.
        await send(app, "ask echo x >> allowed.log")
        await until(lambda: ran(town, "allowed.log") == 2, DEADLINE, what="the rule's answer")
        await until(lambda: a1_idle(app), DEADLINE, what="a1 idle")
        other = await ask(app, town, "echo x >> other.log")
        await until(lambda: inbox.query_one(NavTable).row_count == 1, what="the other row")
        assert inbox.current is not None and inbox.current.id == other
        await pilot.press("n")
        await until(lambda: not app.services.live.approvals, DEADLINE, what="the denial")
        await until(lambda: a1_idle(app), DEADLINE, what="a1 idle")

        await pilot.press("R")
        await until(lambda: isinstance(app.screen, RulesModal), what="the rules")
        rules = app.screen
        assert isinstance(rules, RulesModal)
        await until(lambda: rules.loaded, what="the rules to load")
        (rule,) = rules.rules.values()
        assert (rule.agent, rule.subject) == ("a1", "Allow command? echo x >> allowed.log [y/n]")
        await pilot.press("x")
        await until(lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("y")
        await until(lambda: not rules.rules, DEADLINE, what="the revocation")
        assert json.loads((await asyncio.to_thread(at, town, "rules", "--json")).stdout) == []
        await pilot.press("escape")
        await until(lambda: app.screen is inbox, what="back to the inbox")

        again = await ask(app, town, "echo x >> allowed.log")  # revoked: it waits
        await until(lambda: inbox.query_one(NavTable).row_count == 1, what="the row")
        assert inbox.current is not None and inbox.current.id == again
        await pilot.press("n")
        await until(lambda: not app.services.live.approvals, DEADLINE, what="the denial")
    assert ran(town, "allowed.log") == 2 and ran(town, "other.log") == 0


async def test_A_on_a_deny_listed_command_is_refused_with_its_reason(
    town: Path, app: TundraApp
) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await ask(app, town, "echo ~/.ssh/id_rsa >> leaked.log")  # harmless, were it run
        inbox = await open_inbox(app, pilot)
        detail = str(inbox.query_one("#inbox-detail").render())
        assert "deny-list: reads or sends SSH keys" in detail
        await pilot.press("A")
        await pilot.pause()
        assert app.screen is inbox, "no confirmation: nothing to confirm"
        notes = [str(n.message) for n in app._notifications]
        assert any("never always-allowed" in note for note in notes)
        await pilot.press("n")
        await until(lambda: not app.services.live.approvals, DEADLINE, what="the denial")
    assert json.loads(at(town, "rules", "--json").stdout) == []
    assert ran(town, "leaked.log") == 0
