"""The daemon's writes to the store, in order, kept and retried until they land.

A daemon that cannot write now (another process holds the database past the
busy timeout, the disk is full) must not lose what happened: an approval
request, a decision, a state change. Every daemon write is queued here and
made by one worker in submission order, so a decision never lands before its
request. A write that fails for a reason that may pass is kept at the head of
the queue and retried with a growing delay; the backlog and its reason are
public so the daemon can show them as pending. A write that can never succeed
(a bug, an illegal transition) is logged and dropped, never retried forever.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tundra_tui.store.db import StoreError, StoreLocked

BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Seconds between retries of a write that failed for a passing reason."""


@dataclass(frozen=True, slots=True)
class Write:
    """One queued write: what it is (for logs), and how to make it."""

    what: str
    make: Callable[[], Awaitable[Any]]
    queued_at: float


_PASSING = ("disk is full", "cannot write", "disk I/O error", "unable to open")
"""What a StoreError says when its cause may pass (see store.db._translate)."""


def retryable(error: BaseException) -> bool:
    """A write may succeed later when the database was locked, the disk full or the file
    unwritable for a while; any other error (a bug, a refused constraint) never will."""
    if isinstance(error, StoreLocked):
        return True
    return isinstance(error, StoreError) and any(cause in str(error) for cause in _PASSING)


class StoreWriter:
    """An ordered queue of store writes with one worker; see the module docstring."""

    def __init__(
        self,
        *,
        on_change: Callable[[int, str], None] | None = None,
        on_dropped: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self._queue: deque[Write] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._on_change = on_change
        self._on_dropped = on_dropped
        self.error = ""
        """Why the head of the queue has not landed yet; empty while writes flow."""

    @property
    def pending(self) -> int:
        """Writes queued and not yet made."""
        return len(self._queue)

    def start(self) -> asyncio.Task[None]:
        """Start the worker on the running loop; returns it, for its owner to watch."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return self._worker

    def submit(self, what: str, make: Callable[[], Awaitable[Any]]) -> None:
        """Queue a write; it is made after every write submitted before it."""
        self._queue.append(Write(what, make, time.monotonic()))
        self._idle.clear()
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued write has landed; False if some are still pending."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 5.0) -> int:
        """Give queued writes `timeout` seconds to land, then stop; returns how many did not."""
        await self.drain(timeout)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        return len(self._queue)

    def _set_error(self, error: str) -> None:
        if error != self.error:
            self.error = error
            if self._on_change is not None:
                self._on_change(len(self._queue), error)

    async def _run(self) -> None:
        attempt = 0
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            write = self._queue[0]
            try:
                await write.make()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if retryable(error):
                    self._set_error(f"{write.what}: {error}")
                    await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                    attempt += 1
                    continue
                self._queue.popleft()
                if self._on_dropped is not None:
                    self._on_dropped(write.what, error)
            else:
                self._queue.popleft()
            attempt = 0
            if self.error:
                self._set_error("")
