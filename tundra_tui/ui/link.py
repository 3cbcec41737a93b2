"""The TUI's line to the daemon: typed requests, and one long-lived event stream.

`Link` is the seam the app depends on; `DaemonLink` is the real one (it starts the
daemon like tmux does), and tests hand the app a scripted one instead. A daemon that
dies is started again; one the operator stopped with `at daemon stop` is left stopped
until the operator starts it (the link then reports `stopped` and waits).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from tundra_tui.daemon import client as daemon_client
from tundra_tui.daemon.client import (
    STOPPED_MESSAGE,
    DaemonClient,
    DaemonStopped,
    DaemonUnavailable,
    clear_stopped,
    connect_or_start,
    stopped_by_operator,
)
from tundra_tui.daemon.protocol import Event, LinkEvent, Request
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town

REQUEST_TIMEOUT_S = 60.0
"""A daemon that accepts but never answers must not leave a request waiting forever (a
graceful stop of an agent takes a few seconds; a spawn waits for a worktree)."""

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts to reach a daemon that went away; the last repeats."""


class Link(Protocol):
    """What the control room needs from the daemon."""

    async def call(self, request: Request) -> Any:
        """One request; its typed reply, or TundraError with the daemon's one-line reason."""
        ...

    def send(self, request: Request) -> None:
        """One request with no reply wanted (keys); TundraError when not connected."""
        ...

    async def show(self, names: list[str], glance: Sequence[str] = ()) -> None:
        """The agents whose screens are on show now (`glance`: those of them shown only at a
        glance): only they send screen events. Remembered, and said again after a reconnect."""
        ...

    def events(self) -> AsyncIterator[Event]:
        """Every event (states, screens, approvals), reconnecting as needed.

        A `LinkEvent` reports the connection; `stopped` means the operator stopped the
        daemon, and it stays stopped until `start_daemon`.
        """
        ...

    async def start_daemon(self) -> int:
        """Start the daemon on the operator's word (its pid), and reconnect at once."""
        ...

    async def close(self) -> None:
        """Hang up; the daemon and its agents carry on."""
        ...


class DaemonLink:
    """One multiplexed connection to the town's daemon: requests, and events once `events()`
    subscribes it. Requests do not wait for each other, nor for the event stream."""

    def __init__(self, town: Town, *, start: bool = True) -> None:
        self.town = town
        self.start = start
        self._client: DaemonClient | None = None
        self._lock = asyncio.Lock()
        """Held while connecting, so concurrent callers share one new connection."""
        self._show_lock = asyncio.Lock()
        """Keeps Subscribe and Show in order: the daemon must end with the latest list."""
        self._shown: list[str] = []
        self._glanced: list[str] = []
        self._fresh = True
        """Not connected yet: `at tui` was just launched, which is a start on purpose."""
        self._wake = asyncio.Event()
        """Set to cut a reconnect pause short (the operator started the daemon)."""

    async def _connect(self) -> DaemonClient:
        if not self.start:
            return await DaemonClient.connect(self.town)
        if self._fresh:
            clear_stopped(self.town)
        elif stopped_by_operator(self.town):
            try:
                return await DaemonClient.connect(self.town)
            except DaemonUnavailable:
                raise DaemonStopped(STOPPED_MESSAGE) from None
        client = await connect_or_start(self.town)
        self._fresh = False
        return client

    async def _connection(self) -> DaemonClient:
        """The live connection, or a new one if there is none."""
        async with self._lock:
            if self._client is not None and self._client.closed:
                await self._drop(self._client)
            if self._client is None:
                self._client = await self._connect()
            return self._client

    async def call(self, request: Request) -> Any:
        for attempt in range(2):
            client: DaemonClient | None = None
            try:
                client = await self._connection()
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    return await client.call(request)
            except DaemonStopped:
                raise  # its message says why and what to do; nothing to retry
            except TimeoutError:
                # Hung, or just slow: other requests on the connection are not held up.
                raise TundraError("the daemon is not answering (timed out)") from None
            except (DaemonUnavailable, OSError) as error:
                # Gone or restarted: reconnect once, then give up in one line.
                await self._drop(client)
                if attempt:
                    reason = str(error) or type(error).__name__
                    raise TundraError(f"the daemon is not answering ({reason})") from None
        raise TundraError("the daemon is not answering")

    def send(self, request: Request) -> None:
        client = self._client
        if client is None or client.closed:
            raise TundraError("the daemon is not connected")
        client.send(request)

    async def show(self, names: list[str], glance: Sequence[str] = ()) -> None:
        self._shown = list(names)
        self._glanced = list(glance)
        async with self._show_lock:
            client = self._client
            if client is None or not client.subscribed:
                return  # said when the stream (re)subscribes
            if (client.shown, client.glanced) == (self._shown, self._glanced):
                return
            with contextlib.suppress(DaemonUnavailable, OSError):
                await client.show(self._shown, self._glanced)

    async def _drop(self, client: DaemonClient | None) -> None:
        if client is None:
            return
        if self._client is client:
            self._client = None
        with contextlib.suppress(Exception):
            await client.close()

    async def events(self) -> AsyncIterator[Event]:
        failures = 0
        said: LinkEvent | None = None
        while True:
            client: DaemonClient | None = None
            try:
                client = await self._connection()
                async with self._show_lock:  # a `show` meanwhile follows, with the latest
                    await client.start_events(show=self._shown, glance=self._glanced)
                failures = 0
                said = None
                self._wake.clear()  # a start asked for before this is done; the next pause is not
                yield LinkEvent(up=True)
                async for event in client.events():
                    yield event
            except (TundraError, OSError) as error:
                # Reconnecting resyncs everything. The marker is looked for as soon as the
                # stream drops: `at daemon stop` leaves it before asking, so the first word
                # is why, not "connection closed".
                stopped = self.start and stopped_by_operator(self.town)
                reason = STOPPED_MESSAGE if stopped else str(error) or type(error).__name__
                down = LinkEvent(up=False, error=reason, stopped=stopped)
                # Each attempt that fails the same way is not news, nor is one that finds no
                # daemon yet in other words (a dying daemon may accept, then reset).
                still = (
                    said is not None
                    and said.stopped == stopped
                    and isinstance(error, DaemonUnavailable)
                )
                if down != said and not still:
                    said = down
                    yield down
            finally:
                # Also when the reader goes away: nobody would read this connection's events.
                await self._drop(client)
            await self._pause(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def start_daemon(self) -> int:
        pid = await daemon_client.start_daemon(self.town)
        self._wake.set()
        return pid

    async def close(self) -> None:
        await self._drop(self._client)
