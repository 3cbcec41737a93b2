"""The inbox and the popup's manners, with a scripted daemon (FakeLink) and recording panes:
the popup waits for a pause in the keys, `Esc` on it lets the next one wait too, requests
seen in the inbox stay there, the Dashboard's Enter opens one at once, the title bar's count
opens the inbox, a row whose words change re-arms, and `I` shows only while something waits.

The real-daemon behaviours (a form, a grabbed agent, `Y`) are in test_ui_inbox.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from at_cli import until
from test_ui_app import approval, make_app, store  # noqa: F401  (store: a fixture)
from textual.widgets import Static
from ui_harness import FIXED_NOW, FakeLink, fixed_clock

from tundra_tui.daemon.protocol import ApprovalEvent, ApprovalInfo, Approve
from tundra_tui.domain.clock import iso
from tundra_tui.store import Store
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.messages import OpenApproval
from tundra_tui.ui.modals.approval import ApprovalModal
from tundra_tui.ui.modals.inbox import InboxModal
from tundra_tui.ui.widgets.key_hints import KeyHints
from tundra_tui.ui.widgets.nav_table import NavTable
from tundra_tui.ui.widgets.title_bar import TitleBar

FOREVER = 3600.0
"""A typing pause no test outlives: the popup is held back for as long as the test runs."""


async def turns(pilot: object, n: int = 5) -> None:
    """Let the app run a while, longer than a waiting popup takes to look again and show:
    for what must NOT happen (what must happen is awaited with `until`)."""
    for _ in range(n):
        await pilot.pause(0.12)  # type: ignore[attr-defined]


def popped(app: TundraApp, approval_id: int) -> bool:
    return isinstance(app.screen, ApprovalModal) and app.screen.approval.id == approval_id


async def test_the_popup_waits_for_a_pause_in_the_keys(town_dir: Path, store: Store) -> None:  # noqa: F811
    link = FakeLink()
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        app.typing_pause = FOREVER
        await pilot.press("x")  # the operator types (the recording pane's key)
        link.push(approval(5))
        await turns(pilot)
        assert not isinstance(app.screen, ApprovalModal), "it popped up over typing"
        assert 5 in app.services.live.approvals
        app.typing_pause = 0  # the pause has come
        await until(lambda: popped(app, 5), what="the popup")


async def test_later_on_the_popup_lets_the_next_one_wait_for_a_pause(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    link = FakeLink([approval(1, "a"), approval(2, "b")])
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: popped(app, 1), what="the first popup")
        app.typing_pause = FOREVER
        await pilot.press("escape")
        await turns(pilot)
        assert not isinstance(app.screen, ApprovalModal), "the next one popped at once"
        app.typing_pause = 0
        await until(lambda: popped(app, 2), what="the second popup")


async def test_requests_seen_in_the_inbox_wait_there(town_dir: Path, store: Store) -> None:  # noqa: F811
    link = FakeLink()
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        app.typing_pause = FOREVER
        await pilot.press("x")
        link.push(approval(3))
        await until(lambda: 3 in app.services.live.approvals, what="the request")
        await pilot.press("I")
        await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
        await pilot.press("escape")
        app.typing_pause = 0
        await turns(pilot)
        assert not isinstance(app.screen, ApprovalModal), "seen in the inbox, yet it popped"
        assert 3 in app.services.live.approvals
        link.push(approval(4, "other"))  # a new one is not seen: it may pop up
        await until(lambda: popped(app, 4), what="the new one's popup")


async def test_the_dashboards_enter_opens_a_request_at_once(town_dir: Path, store: Store) -> None:  # noqa: F811
    link = FakeLink()
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        app.typing_pause = FOREVER
        await pilot.press("x")
        link.push(approval(1, "a"))
        link.push(approval(2, "b"))
        await until(lambda: len(app.services.live.approvals) == 2, what="the requests")
        app.post_message(OpenApproval(2))  # asked for: before the one queued ahead of it
        await until(lambda: popped(app, 2), what="the one asked for")


async def test_the_title_bar_count_opens_the_inbox_and_I_shows_while_something_waits(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    link = FakeLink()
    app = make_app(town_dir, store, link, approval_popup=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        hints = app.query_one(KeyHints)
        assert "Approvals" not in str(hints.render())
        link.push(approval(6))
        await until(lambda: "I Approvals" in str(hints.render()), what="the key hint")
        bar = app.query_one(TitleBar)
        line = str(bar.render())
        column = line.index("1 waiting")
        await pilot.click(TitleBar, offset=(column - 2, 0))  # beside it: nothing
        await pilot.pause()
        assert not isinstance(app.screen, InboxModal)
        await pilot.click(TitleBar, offset=(column + 2, 0))
        await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
    ids = {row.id for row in app.binding_rows()}
    assert {"inbox", "inbox-approve", "inbox-deny", "inbox-select"} <= ids
    assert {"inbox-approve-selected", "inbox-deny-selected", "approval-inbox"} <= ids


async def test_a_row_whose_words_change_arms_again_and_waited_is_shown(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    asked = iso(FIXED_NOW - timedelta(minutes=4, seconds=7))
    first = ApprovalInfo(
        id=9,
        agent="p1",
        runtime="demo",
        status="pending",
        subject="# Shell command",
        tool="",
        cwd="",
        source="screen",
        created_at=asked,
    )
    link = FakeLink([ApprovalEvent(approval=first)])
    app: TundraApp = make_app(town_dir, store, link, approval_popup=False)
    app.services.clock = fixed_clock
    app.arm_seconds = FOREVER
    async with app.run_test(size=(120, 30)) as pilot:
        await until(lambda: 9 in app.services.live.approvals, what="the request")
        await pilot.press("I")
        await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
        inbox = app.screen
        assert isinstance(inbox, InboxModal)
        await until(lambda: inbox.query_one(NavTable).row_count == 1, what="the row")
        cells = [str(c) for c in inbox.query_one(NavTable).get_row_at(0)]
        assert cells[1:5] == ["p1", "-", "screen", "4m07s"]
        upgraded = ApprovalInfo(
            id=9,
            agent="p1",
            runtime="demo",
            status="pending",
            subject="rm -rf build",
            tool="Bash",
            cwd="",
            source="hook",
            created_at=asked,
        )
        link.push(ApprovalEvent(approval=upgraded))
        detail = inbox.query_one("#inbox-detail", Static)
        await until(lambda: "rm -rf build" in str(detail.render()), what="the new words")
        await pilot.press("y")  # the words changed a moment ago: not yet
        await turns(pilot, 2)
        assert not link.ops(Approve)
        inbox._changed_at[9] = time.monotonic() - FOREVER  # as if read for long enough
        await pilot.press("y")
        await until(lambda: link.ops(Approve), what="the answer")
    assert link.ops(Approve) == [Approve(id=9, actor="operator", seen="rm -rf build")]


async def test_I_on_the_popup_leaves_it_for_the_inbox(town_dir: Path, store: Store) -> None:  # noqa: F811
    link = FakeLink([approval(1, "a"), approval(2, "b")])
    app = make_app(town_dir, store, link, approval_popup=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: popped(app, 1), what="the popup")
        await pilot.press("I")
        await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
        await pilot.press("escape")
        app.typing_pause = 0
        await turns(pilot)
        assert len(app.screen_stack) == 1, "both wait in the inbox, no popup"
    assert not link.ops(Approve)


class HeldLink(FakeLink):
    """A daemon that takes its time answering: each call waits for `go`."""

    def __init__(self, events: list[ApprovalEvent]) -> None:
        super().__init__(list(events))
        self.go = asyncio.Event()

    async def call(self, request: Any) -> Any:
        await self.go.wait()
        return await super().call(request)


async def test_closing_the_inbox_does_not_cancel_an_answer_on_its_way(
    town_dir: Path,
    store: Store,  # noqa: F811
) -> None:
    link = HeldLink([approval(4)])
    app = make_app(town_dir, store, link, approval_popup=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: 4 in app.services.live.approvals, what="the request")
        await pilot.press("I")
        await until(lambda: isinstance(app.screen, InboxModal), what="the inbox")
        await until(lambda: app.screen.query_one(NavTable).row_count == 1, what="the row")
        await pilot.press("y", "escape")
        await until(lambda: len(app.screen_stack) == 1, what="the inbox to close")
        link.go.set()
        await until(lambda: link.ops(Approve), what="the answer")
    assert link.ops(Approve) == [Approve(id=4, actor="operator", seen="rm -rf build")]
