"""Test doubles for the control room: a scripted daemon link and a one-pane app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from textual.app import App, ComposeResult

from tundra_tui.daemon.board import BoardOps
from tundra_tui.daemon.protocol import (
    AgentList,
    ApprovalEvent,
    ApprovalInfo,
    ApprovalList,
    Approve,
    ChangedEvent,
    Delivered,
    Deny,
    Event,
    HistoryReply,
    LinkEvent,
    Pong,
    RefineryStatus,
    Reply,
    Request,
    Restarted,
    ScreenEvent,
    ScreenText,
    SendKeys,
    Sent,
    Spawn,
    Spawned,
    StateEvent,
    Stopping,
)
from tundra_tui.daemon.protocol import Run as WireRun
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import TundraError
from tundra_tui.resources import stylesheets
from tundra_tui.store import Store
from tundra_tui.town import Town
from tundra_tui.ui.live import LiveModel
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services

FIXED_NOW = datetime(2026, 11, 20, 14, 30, 0, tzinfo=UTC)
"""The clock every UI test and snapshot sees."""


def fixed_clock() -> datetime:
    return FIXED_NOW


R = TypeVar("R", bound=Request)
Answer = Reply | Exception | Callable[[Any], Reply]


class FakeLink:
    """A daemon that records requests and replays scripted events, all typed.

    `answers` maps a request type to its reply, to a callable taking the request, or to
    an exception (raised; a refusal for `send` too). Unscripted requests get a plain reply
    of their answer type. `push()` queues an event for `events()`.
    """

    def __init__(self, events: list[Event] | None = None) -> None:
        self.requests: list[Request] = []
        """Every request, called or sent, in order."""
        self.calls: list[Request] = []
        self.sends: list[Request] = []
        self.shows: list[list[str]] = []
        self.glances: list[list[str]] = []
        self.answers: dict[type[Request], Answer] = {}
        self.board: BoardOps | None = None
        """Board requests (beads, convoys, config) unscripted in `answers` go to a real
        BoardOps on the test's store; what it publishes is pushed and told to `listeners`."""
        self.listeners: list[Callable[[Event], None]] = []
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        for event in events or []:
            self._queue.put_nowait(event)

    def push(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def publish(self, event: Event) -> None:
        """What the daemon publishes: queued for `events()` and told to listeners at once."""
        self.push(event)
        for listener in self.listeners:
            listener(event)

    async def call(self, request: Request) -> Any:
        self.requests.append(request)
        self.calls.append(request)
        answer = self.answers.get(type(request))
        if answer is None and self.board is not None:
            handler = self.board.handlers().get(type(request))
            if handler is not None:
                return await handler(request)
        if answer is None:
            return plain_reply(request)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer(request)
        assert isinstance(answer, type(request).answer), f"{answer!r} answers no {request!r}"
        return answer

    def send(self, request: Request) -> None:
        self.requests.append(request)
        self.sends.append(request)
        answer = self.answers.get(type(request))
        if isinstance(answer, Exception):
            raise answer

    async def show(self, names: list[str], glance: Sequence[str] = ()) -> None:
        self.shows.append(list(names))
        self.glances.append(list(glance))

    async def events(self) -> AsyncIterator[Event]:
        yield LinkEvent(up=True)
        while True:
            yield await self._queue.get()

    async def start_daemon(self) -> int:
        return 0

    async def close(self) -> None:
        return None

    def ops(self, kind: type[R]) -> list[R]:
        """Every request of one type, called or sent, in order."""
        return [r for r in self.requests if isinstance(r, kind)]


def plain_reply(request: Request) -> Reply:
    """What an unscripted fake daemon answers: success, with nothing in particular to say."""
    answer = type(request).answer
    if isinstance(request, Spawn):
        return Spawned(name=request.name, state="starting", cwd="")
    if isinstance(request, Approve | Deny):
        status = "approved" if isinstance(request, Approve) else "denied"
        return ApprovalInfo(id=request.id, agent="", runtime="", status=status,
                            subject=request.seen or "", tool="", cwd="", source="hook")  # fmt: skip
    if isinstance(request, SendKeys):
        return Sent(sent=len(request.data))
    plain: dict[type[Reply], Reply] = {
        Pong: Pong(pid=0, version="test"),
        AgentList: AgentList(agents=[]),
        ApprovalList: ApprovalList(approvals=[]),
        Restarted: Restarted(state="starting"),
        Delivered: Delivered(delivered=True),
        ScreenText: ScreenText(lines=[], cursor=(0, 0), title="", state="unknown"),
        HistoryReply: HistoryReply(total=0, start=0, lines=[]),
        Stopping: Stopping(stopping=0),
        RefineryStatus: RefineryStatus(state="idle"),
    }
    return plain.get(answer) or answer()


def refusing(message: str) -> TundraError:
    """An answer that makes the fake daemon refuse with `message`."""
    return TundraError(message)


def make_services(town: Town, store: Store, link: FakeLink | None = None) -> Services:
    """Services on a fixed clock with a fake daemon (its board ops real, on `store`)."""
    link = link or FakeLink()
    link.board = link.board or BoardOps(town, store, link.publish)
    return Services(town=town, store=store, link=link, live=LiveModel(), clock=fixed_clock)


class PaneHarness(App[None]):
    """Hosts one pane, as the real app would, for Pilot tests of that pane alone."""

    CSS_PATH = stylesheets()

    def __init__(self, make: Callable[[Services], Pane], services: Services) -> None:
        super().__init__()
        self.services = services
        self._make = make
        self.posted: list[Any] = []

    def compose(self) -> ComposeResult:
        yield self._make(self.services)

    async def on_mount(self) -> None:
        if isinstance(self.services.link, FakeLink):
            self.services.link.listeners.append(self._changed)
        await self.query_one(Pane).reload()

    def _changed(self, event: Event) -> None:
        """As the app does: a ChangedEvent reloads the pane if it shows that data."""
        if isinstance(event, ChangedEvent) and event.what in self.pane.SHOWS:
            self.posted.append(event)
            self.run_worker(self.pane.reload(), group="changed", exit_on_error=False)

    @property
    def pane(self) -> Pane:
        return self.query_one(Pane)

    def on_daemon_request(self, message: Any) -> None:
        self.posted.append(message)

    def on_remember_choice(self, message: Any) -> None:
        self.posted.append(message)

    def on_data_changed(self, message: Any) -> None:
        self.posted.append(message)


def _row(*runs: tuple[str, str, bool]) -> list[WireRun]:
    return [(text, fg, "default", bold, False, False, False) for text, fg, bold in runs]


def screen_event(
    agent: str, lines: list[list[WireRun]], size: tuple[int, int] = (80, 24)
) -> ScreenEvent:
    """A full-screen `screen` event, as the daemon sends to a new subscriber."""
    return ScreenEvent(
        agent=agent,
        rows=dict(enumerate(lines)),
        cursor=(6, len(lines) - 1),
        size=size,
        full=True,
    )


def state_event(agent: str, state: str) -> StateEvent:
    """A `state` event with the glyph the daemon would send for it."""
    return StateEvent(agent=agent, state=state, glyph=AgentState(state).glyph)


def pending(
    approval_id: int, agent: str, subject: str, tool: str = "Bash", source: str = "screen"
) -> ApprovalEvent:
    """A request waiting for the operator, as the daemon announces it."""
    return ApprovalEvent(
        approval=ApprovalInfo(
            id=approval_id,
            agent=agent,
            runtime="demo",
            status="pending",
            subject=subject,
            tool=tool,
            cwd="",
            source=source,
        )
    )


def demo_screens(model: str) -> dict[str, list[list[WireRun]]]:
    """What a demo agent shows when idle, working and asking for approval (fixed text)."""
    banner = _row((f"demo agent 0.1 · model {model} · no network", "brightblack", False))
    return {
        "idle": [
            banner,
            [],
            _row(("demo❯ ", "cyan", True), ("summarise the open beads", "default", False)),
            _row(("● ", "green", True), ("Three beads are waiting for review.", "default", False)),
            [],
            _row(
                (
                    "[demo] idle · 4 turns · 5120 tokens · $0.0213 · `exit` to quit",
                    "brightblack",
                    False,
                )
            ),
            _row(("demo❯ ", "cyan", True)),
        ],
        "working": [
            banner,
            [],
            _row(("demo❯ ", "cyan", True), ("fix the flaky kanban test", "default", False)),
            _row(("● ", "green", True), ("Reading tests/test_kanban.py", "default", False)),
            _row(
                ("⠹ ", "magenta", True),
                ("Thinking… 12s ", "default", False),
                ("(esc to interrupt)", "brightblack", False),
            ),
        ],
        "awaiting_approval": [
            banner,
            [],
            _row(("demo❯ ", "cyan", True), ("RUN: rm -rf build/", "default", False)),
            _row(("● ", "green", True), ("I will run rm -rf build/.", "default", False)),
            _row(("Allow this command?", "brown", True)),
            _row(("  rm -rf build/", "default", False)),
            _row(("❯ 1. Yes", "cyan", True)),
            _row(("  2. No", "default", False)),
            _row(("1/y approve · 2/n/Esc deny", "brightblack", False)),
        ],
    }


DEMO_AGENTS: tuple[tuple[str, str, str], ...] = (
    ("mayor", "working", "demo-opus"),
    ("polecat-1", "awaiting_approval", "demo-sonnet"),
    ("witness", "idle", "demo-haiku"),
    ("crew-1", "working", "demo-sonnet"),
)
"""Fixed live states for the demo town's agents in snapshots and Pilot tests."""


def demo_events(agents: tuple[tuple[str, str, str], ...] = DEMO_AGENTS) -> list[Event]:
    """States, screens and one pending approval, as a daemon would stream them."""
    events: list[Event] = []
    for name, state, model in agents:
        events.append(state_event(name, state))
        events.append(screen_event(name, demo_screens(model)[state]))
        if state == "awaiting_approval":
            events.append(pending(41, name, "rm -rf build/"))
    return events
