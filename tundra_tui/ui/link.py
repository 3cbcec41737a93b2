"""The TUI's line to the daemon: requests, and one long-lived event stream.

`Link` is the seam the app depends on; `DaemonLink` is the real one (it starts the
daemon like tmux does), and tests hand the app a scripted one instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable, connect_or_start
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

        A synthetic `{"event": "link", "up": bool, "error": str}` reports the connection.
        """
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

    async def _connect(self) -> DaemonClient:
        if self.start:
            return await connect_or_start(self.town)
        return await DaemonClient.connect(self.town)

    async def request(self, op: str, **args: Any) -> Any:
        async with self._lock:
            for attempt in range(2):
                try:
                    if self._client is None:
                        self._client = await self._connect()
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        return await self._client.request(op, **args)
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
        while True:
            try:
                self._stream = await self._connect()
                failures = 0
                yield {"event": "link", "up": True, "error": ""}
                async for event in self._stream.subscribe(screens=True):
                    yield event
            except (TundraError, OSError, ValueError) as error:
                # ValueError: a line over the reader's limit. Reconnecting resyncs everything.
                yield {"event": "link", "up": False, "error": str(error) or type(error).__name__}
            finally:
                if self._stream is not None:
                    with contextlib.suppress(Exception):
                        await self._stream.close()
                    self._stream = None
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def close(self) -> None:
        await self._drop()
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()
