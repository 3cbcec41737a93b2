"""An open `at tui` and `at daemon stop`: the stopped daemon stays stopped until the operator
starts it, and a crashed one is started again. Real daemons, the real link, Pilot."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from at_cli import at, daemon_town
from textual.widgets import Static
from ui_harness import fixed_clock

from tundra_tui.daemon.client import STOPPED_MESSAGE, daemon_pid, stopped_marker
from tundra_tui.daemon.protocol import Event, LinkEvent, Ping
from tundra_tui.domain.errors import TundraError
from tundra_tui.store import open_store
from tundra_tui.town import Town, find_town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.link import DaemonLink
from tundra_tui.ui.live import LiveModel
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.tabs import TAB_TITLES, Tab
from tundra_tui.ui.widgets.key_hints import KeyHints

DEADLINE = 30.0


async def until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll `predicate` while the loop runs, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def town() -> Any:
    with daemon_town(demo_agent=False) as root:
        yield find_town(root)


class LinkEvents:
    """The link's event stream read by its own task, so waiting for an event can time out
    without ending the stream."""

    def __init__(self, link: DaemonLink) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._pump(link.events()))

    async def _pump(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            await self.queue.put(event)

    async def next_link(self, timeout: float = DEADLINE) -> LinkEvent:
        """The next `link` event (the daemon's snapshot events are skipped)."""
        async with asyncio.timeout(timeout):
            while not isinstance(event := await self.queue.get(), LinkEvent):
                pass
        return event

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_the_link_leaves_a_stopped_daemon_stopped_and_restarts_a_crashed_one(
    town: Town,
) -> None:
    stopped = LinkEvent(up=False, error=STOPPED_MESSAGE, stopped=True)
    link = DaemonLink(town)
    events = LinkEvents(link)
    try:
        assert (await events.next_link()).up, "a freshly opened link starts the daemon"
        await asyncio.to_thread(at, town.root, "daemon", "stop")
        assert await events.next_link() == stopped, "the first word is why, said once"
        with pytest.raises(TundraError, match="stopped by `at daemon stop`"):
            await link.call(Ping())
        # Several reconnect attempts (0.2, 0.5, 1 s apart) pass: none starts a daemon, none is
        # news.
        with pytest.raises(TimeoutError):
            await events.next_link(timeout=3.0)
        assert daemon_pid(town) is None and stopped_marker(town).exists()

        pid = await link.start_daemon()
        # A reconnect attempt already under way when the marker went may still find no socket
        # (a loaded machine): that is said, not as stopped, and then the link is up.
        while not (after := await events.next_link()).up:
            assert not after.stopped, after
        assert after == LinkEvent(up=True, error="", stopped=False)
        assert daemon_pid(town) == pid and not stopped_marker(town).exists()
        assert (await link.call(Ping())).pid == pid

        os.kill(pid, signal.SIGKILL)  # a crash leaves no marker: started again, as before
        down = await events.next_link()
        assert down.up is False and down.stopped is False
        assert (await events.next_link()).up
        assert daemon_pid(town) not in (None, pid)
    finally:
        await events.close()
        await link.close()


class QuietPane(Pane):
    """A pane with nothing to load: the shell's daemon handling is what is tested."""

    def compose(self) -> Any:
        yield Static(f"pane {self.id}")

    async def reload(self) -> None:
        return None


class ToastApp(TundraApp):
    """Remembers every notification's text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.toasts: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:
        self.toasts.append(message)
        super().notify(message, **kwargs)


async def test_an_open_tui_offers_to_start_a_daemon_the_operator_stopped(town: Town) -> None:
    tabs = tuple(
        Tab(tab_id, title, lambda s, i: QuietPane(s, id=i)) for tab_id, title in TAB_TITLES
    )
    async with await open_store(town.db_path) as store:
        services = Services(
            town=town, store=store, link=DaemonLink(town), live=LiveModel(), clock=fixed_clock
        )
        app = ToastApp(services, tabs=tabs, watch_files=False, clock_interval=0)
        try:
            async with app.run_test(size=(140, 30)) as pilot:
                await until(lambda: services.live.connected)
                hints = app.query_one(KeyHints)
                assert "Start the daemon" not in str(hints.render())
                # Listed in help and the palette like every key, remappable by its id.
                assert any(row.id == "start-daemon" for row in app.binding_rows())
                palette = [str(c.title) for c in app.get_system_commands(app.screen)]
                assert "global: Start the daemon" in palette

                await asyncio.to_thread(at, town.root, "daemon", "stop")
                await until(lambda: app.daemon_stopped)
                await pilot.pause()
                said = [t for t in app.toasts if "daemon" in t]
                assert said == [f"{STOPPED_MESSAGE}: ctrl+s starts it again (or Start the daemon "
                                "in the palette)"]  # fmt: skip
                assert "^s Start the daemon" in str(hints.render())
                assert daemon_pid(town) is None

                await pilot.press("ctrl+s")
                await until(lambda: services.live.connected)
                assert not app.daemon_stopped and daemon_pid(town) is not None
                assert not stopped_marker(town).exists()
                await pilot.pause()
                assert "Start the daemon" not in str(hints.render())
        finally:
            await services.link.close()
