"""Following the events table, so the daemon hears what other processes wrote.

The CLI writes the store directly (`at done`, `at bead add`, `at convoy start`,
`at mail send`, `at dispatch pause`), and dispatch, the witness and the mailroom must
react at once, not at the next patrol. The tail watches `.tundra/town.db*` with
watchfiles (not recursively: worktrees are large) and, on each change, reads the
events after the last one it handed out. A slow re-read every
`daemon.patrol_interval_seconds` is only the safety net for a missed notification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import watchfiles

from tundra_tui.config import load_config
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event
from tundra_tui.store import Store
from tundra_tui.town import Town

BATCH = 500
"""Events read per query; a burst larger than this is handed out in several batches."""
DEFAULT_SAFETY_SECONDS = 60.0

Listener = Callable[[Sequence[Event]], None]


class StoreTail:
    """Hands every new stored event, in id order, to each subscriber, once."""

    def __init__(
        self,
        town: Town,
        store: Store,
        log: DaemonLog,
        *,
        debounce_ms: int = 30,
        safety_seconds: float | None = None,
    ) -> None:
        self.town = town
        self.store = store
        self.log = log
        self.debounce_ms = debounce_ms
        self.safety_seconds = safety_seconds
        """None: `daemon.patrol_interval_seconds` from the configuration at start."""
        self.last_id: int | None = None
        """The newest event handed out (None until `run` starts: history is not replayed)."""
        self._listeners: list[Listener] = []
        self._wake = asyncio.Event()

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with each batch of new events (synchronously: keep it short)."""
        self._listeners.append(listener)

    def poke(self) -> None:
        """Read now (after a write the caller knows of), without waiting for the watcher."""
        self._wake.set()

    async def run(self, stopped: asyncio.Event) -> None:
        """Follow the table until `stopped`."""
        if self.last_id is None:
            self.last_id = await self.store.events.last_id()
        safety = self.safety_seconds or self._configured_safety()
        watcher = asyncio.create_task(self._watch(stopped), name="tail.watch")
        halt = asyncio.create_task(stopped.wait(), name="tail.stopped")
        try:
            while not stopped.is_set():
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait({woken, halt}, timeout=safety, return_when="FIRST_COMPLETED")
                woken.cancel()
                self._wake.clear()
                if stopped.is_set():
                    break
                await self.read()
        finally:
            for task in (watcher, halt):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def read(self) -> int:
        """Hand out every event after the last one handed out; how many there were."""
        if self.last_id is None:
            self.last_id = await self.store.events.last_id()
            return 0
        count = 0
        while True:
            try:
                events = await self.store.events.find(after_id=self.last_id, limit=BATCH)
            except TundraError as error:
                self.log.warning("tail.unreadable", error=error)
                return count
            if not events:
                return count
            self.last_id = events[-1].id
            count += len(events)
            for listener in list(self._listeners):
                try:
                    listener(events)
                except Exception as error:  # one bad listener must not deafen the others
                    self.log.exception("tail.listener_failed", error=error)
            if len(events) < BATCH:
                return count

    async def _watch(self, stopped: asyncio.Event) -> None:
        def database(_change: watchfiles.Change, path: str) -> bool:
            return Path(path).name.startswith(self.town.db_path.name)

        try:
            async for _changes in watchfiles.awatch(
                self.town.state_dir,
                watch_filter=database,
                recursive=False,
                stop_event=stopped,
                debounce=max(self.debounce_ms * 3, 100),
                step=self.debounce_ms,
            ):
                self._wake.set()
        except (OSError, RuntimeError) as error:
            # No watcher (inotify limits, say): the safety re-read still hears everything.
            self.log.warning("tail.watch_failed", error=error)

    def _configured_safety(self) -> float:
        try:
            value = load_config(self.town).get("daemon.patrol_interval_seconds")
        except TundraError:
            return DEFAULT_SAFETY_SECONDS
        return float(value or DEFAULT_SAFETY_SECONDS)
