"""The TUI's line to the daemon: requests, and one long-lived event stream.

`Link` is the seam the app depends on; `DaemonLink` is the real one (it starts the
daemon like tmux does), and tests hand the app a scripted one instead. A daemon that
dies is started again; one the operator stopped with `at daemon stop` is left stopped
until the operator starts it (the link then reports `stopped` and waits).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
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
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town

REQUEST_TIMEOUT_S = 60.0
"""A daemon that accepts but never answers must not hold every later request hostage (a
graceful stop of an agent takes a few seconds; a spawn waits for a worktree)."""

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts to reach a daemon that went away; the last repeats."""


class Link(Protocol):
    """What the control room needs from the daemon."""

    async def request(self, op: str, **args: Any) -> Any:
        """One operation; raises TundraError with the daemon's one-line reason."""
        ...

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event (states, screens, approvals), reconnecting as needed.

        A synthetic `{"event": "link", "up": bool, "error": str, "stopped": bool}` reports
        the connection; `stopped` means the operator stopped the daemon, and it stays
        stopped until `start_daemon`.
        """
        ...

    async def start_daemon(self) -> int:
        """Start the daemon on the operator's word (its pid), and reconnect at once."""
        ...

    async def close(self) -> None:
        """Hang up; the daemon and its agents carry on."""
        ...


class DaemonLink:
    """Two connections to the town's daemon: one for requests, one subscribed to events."""

    def __init__(self, town: Town, *, start: bool = True) -> None:
        self.town = town
        self.start = start
        self._client: DaemonClient | None = None
        self._lock = asyncio.Lock()
        self._stream: DaemonClient | None = None
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

    async def request(self, op: str, **args: Any) -> Any:
        async with self._lock:
            for attempt in range(2):
                try:
                    if self._client is None:
                        self._client = await self._connect()
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        return await self._client.request(op, **args)
                except DaemonStopped:
                    raise  # its message says why and what to do; nothing to retry
                except (DaemonUnavailable, OSError, ValueError, TimeoutError) as error:
                    # Gone, restarted or hung: reconnect once, then give up in one line.
                    await self._drop()
                    if attempt or isinstance(error, TimeoutError):
                        reason = str(error) or "timed out"
                        raise TundraError(f"the daemon is not answering ({reason})") from None
            raise TundraError("the daemon is not answering")

    async def _drop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        failures = 0
        said: dict[str, Any] = {}
        while True:
            try:
                self._stream = await self._connect()
                failures = 0
                said = {}
                yield {"event": "link", "up": True, "error": "", "stopped": False}
                async for event in self._stream.subscribe(screens=True):
                    yield event
            except (TundraError, OSError, ValueError) as error:
                # ValueError: a line over the reader's limit. Reconnecting resyncs everything.
                # The marker is looked for as soon as the stream drops: `at daemon stop` leaves
                # it before asking, so the first word is why, not "connection closed".
                stopped = self.start and stopped_by_operator(self.town)
                down = {
                    "event": "link",
                    "up": False,
                    "error": STOPPED_MESSAGE if stopped else str(error) or type(error).__name__,
                    "stopped": stopped,
                }
                if down != said:  # each attempt that fails the same way is not news
                    said = down
                    yield down
            finally:
                if self._stream is not None:
                    with contextlib.suppress(Exception):
                        await self._stream.close()
                    self._stream = None
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
        await self._drop()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()
