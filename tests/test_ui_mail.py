"""The Mail view against a real daemon and a demo agent: a message composed in the view waits
as pending while its agent is stopped, shows delivered once the agent's first turn boundary
took it, and the agent's answer appears in the thread, unread until opened; a hostile subject
shows literally; agent-to-agent mail is listed read-only, and mail from off the roster
cannot be answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from at_cli import agent_state, at, daemon_town, until, wait_for
from live_room import control_room
from textual.widgets import Input, Select, Static, TextArea

from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.modals.mail import MailCompose, MailView
from tundra_tui.ui.widgets.nav_table import NavTable

DEADLINE = 60.0
HOSTILE = "[bold red]boom[/] [@click=app.quit]x[/]"


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    """d1 and d2 (demo agents, stopped) and a daemon."""
    with daemon_town() as root:
        at(root, "agent", "add", "d2", "--runtime", "demo")
        at(root, "daemon", "start")
        yield root


@pytest.fixture
async def app(town: Path) -> AsyncIterator[TundraApp]:
    async with control_room(town) as app:
        yield app


def shown(view: MailView) -> str:
    return str(view.query_one("#mail-thread", Static).render())


def title(view: MailView) -> str:
    return str(view.query_one("#mail-title", Static).render())


async def test_compose_pending_delivered_reply_and_read(town: Path, app: TundraApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await pilot.press("M")
        await until(lambda: isinstance(app.screen, MailView), what="the Mail view")
        view = app.screen
        assert isinstance(view, MailView)
        await until(lambda: "0 unread" in title(view), what="the first load")
        await pilot.press("c")
        await until(lambda: isinstance(app.screen, MailCompose), what="the compose form")
        compose = app.screen
        to = compose.query_one("#mail-compose-to", Select)
        assert to.value == "mayor", "the mayor is offered first"
        to.value = "d1"
        compose.query_one("#mail-compose-subject", Input).value = HOSTILE
        compose.query_one("#mail-compose-body", TextArea).text = "status please"
        await pilot.press("ctrl+s")
        await until(lambda: app.screen is view, what="back in the view")
        # d1 is not running: the message waits for its first turn boundary.
        await until(lambda: "⧗ pending" in shown(view), DEADLINE, what="pending")
        assert HOSTILE in shown(view), "the subject is shown literally"
        assert app.is_running, "markup in a subject ran no action"

        await asyncio.to_thread(at, town, "agent", "start", "d1")
        await until(lambda: "✓ delivered" in shown(view), DEADLINE, what="delivered")
        await until(lambda: "1 unread" in title(view), DEADLINE, what="the agent's answer")
        assert "re: " + HOSTILE in shown(view), "the answer's subject, literally"
        assert "● unread" in shown(view)
        await pilot.press("enter")
        await until(lambda: "0 unread" in title(view), what="read")
        assert "✓ read by you" in shown(view)
        await pilot.press("r")  # a reply to the answer: to d1, its subject not re: re:
        await until(lambda: isinstance(app.screen, MailCompose), what="the reply form")
        reply = app.screen
        assert reply.query_one("#mail-compose-to", Select).value == "d1"
        assert reply.query_one("#mail-compose-subject", Input).value == "re: " + HOSTILE
        await pilot.press("escape")
        await until(lambda: app.screen is view, what="the reply form closed")
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, MailView), what="closed")
    await asyncio.to_thread(wait_for, lambda: agent_state(town, "d1") == "idle", DEADLINE)


async def test_agents_mail_and_notices_are_read_only(town: Path, app: TundraApp) -> None:
    await asyncio.to_thread(
        at, town, "mail", "send", "d2", "--from", "d1", "--subject", "hi", "-m", "psst"
    )
    await app.services.store.mail.send("daemon", "operator", "fyi", actor="daemon")
    async with app.run_test(size=(120, 40)) as pilot:
        listed = {(row.group, row.id) for row in app.binding_rows()}
        assert ("global", "mail") in listed, "help and the palette list M"
        assert ("mail", "mail-compose") in listed
        await pilot.press("M")
        await until(lambda: isinstance(app.screen, MailView), what="the Mail view")
        view = app.screen
        assert isinstance(view, MailView)
        await until(lambda: any(not t.mine for t in view.threads), what="the agents' thread")
        table = view.query_one(NavTable)
        table.move_to(next(t.key for t in view.threads if not t.mine))
        await until(lambda: "read-only" in shown(view), what="its messages")
        assert "psst" in shown(view)
        await pilot.press("r")
        await pilot.pause()
        assert app.screen is view, "no reply form on an agent-to-agent thread"
        # A notice from a sender off the roster (the daemon): no reply form, to anyone.
        table.move_to("daemon")
        await until(lambda: "fyi" in shown(view), what="the notice")
        await pilot.press("r")
        await pilot.pause()
        assert app.screen is view, "no reply to a sender off the roster"
