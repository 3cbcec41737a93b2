"""Test doubles for the control room: a scripted daemon link and a one-pane app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from textual.app import App, ComposeResult

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


class FakeLink:
    """A daemon that records requests and replays scripted events.

    `answers` maps an op to a result or to a callable taking the args; an exception
    instance is raised. `push()` queues an event for `events()`.
    """

    def __init__(self, events: list[dict[str, Any]] | None = None) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, Any] = {}
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for event in events or []:
            self._queue.put_nowait(event)

    def push(self, event: dict[str, Any]) -> None:
        self._queue.put_nowait(event)

    async def request(self, op: str, **args: Any) -> Any:
        self.requests.append((op, args))
        answer = self.answers.get(op, {})
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer(args)
        return answer

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        yield {"event": "link", "up": True, "error": ""}
        while True:
            yield await self._queue.get()

    async def close(self) -> None:
        return None

    def ops(self, op: str) -> list[dict[str, Any]]:
        """The args of every request of one kind, in order."""
        return [args for name, args in self.requests if name == op]


def refusing(message: str) -> TundraError:
    """An answer that makes the fake daemon refuse with `message`."""
    return TundraError(message)


def make_services(town: Town, store: Store, link: FakeLink | None = None) -> Services:
    """Services on a fixed clock with a fake daemon."""
    return Services(
        town=town, store=store, link=link or FakeLink(), live=LiveModel(), clock=fixed_clock
    )


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
        await self.query_one(Pane).reload()

    @property
    def pane(self) -> Pane:
        return self.query_one(Pane)

    def on_daemon_request(self, message: Any) -> None:
        self.posted.append(message)

    def on_data_changed(self, message: Any) -> None:
        self.posted.append(message)


def _row(*runs: tuple[str, str, bool]) -> list[list[Any]]:
    return [[text, fg, "default", bold, False, False, False] for text, fg, bold in runs]


def screen_event(
    agent: str, lines: list[list[list[Any]]], size: tuple[int, int] = (80, 24)
) -> dict[str, Any]:
    """A full-screen `screen` event, as the daemon sends to a new subscriber."""
    return {
        "event": "screen",
        "agent": agent,
        "rows": {str(y): runs for y, runs in enumerate(lines)},
        "cursor": [6, len(lines) - 1],
        "size": list(size),
        "full": True,
    }


def demo_screens(model: str) -> dict[str, list[list[list[Any]]]]:
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


def demo_events(agents: tuple[tuple[str, str, str], ...] = DEMO_AGENTS) -> list[dict[str, Any]]:
    """States, screens and one pending approval, as a daemon would stream them."""
    events: list[dict[str, Any]] = []
    for name, state, model in agents:
        events.append({"event": "state", "agent": name, "state": state, "evidence": {}})
        events.append(screen_event(name, demo_screens(model)[state]))
        if state == "awaiting_approval":
            events.append(
                {
                    "event": "approval",
                    "id": 41,
                    "agent": name,
                    "status": "pending",
                    "subject": "rm -rf build/",
                    "tool": "Bash",
                    "source": "screen",
                }
            )
    return events
