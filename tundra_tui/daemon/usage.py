"""The daemon's usage part: agents' usage logs into the store, and periodic KPI snapshots.

It runs in the daemon so costs are recorded whether or not a control room is open. The
logs' directories are watched with watchfiles (a directory that cannot be made yet is
polled, with a growing pause); each batch of changes is read by a `UsageFollower`, which
moves past lines only once the store has them, so a locked or full database loses nothing:
the failure is one log line and the same lines are read again after a pause. Every batch
that added samples is announced as `ChangedEvent("usage")`, every snapshot taken as
`ChangedEvent("metrics")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from tundra_tui.config import LayeredConfig, global_config_path, load_config
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ChangedEvent, Event
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.clock import Clock, iso, system_clock
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.metrics import KpiSnapshot
from tundra_tui.store import Store
from tundra_tui.town import Town
from tundra_tui.usage.follower import LOG_SUFFIX, UsageFollower, ingest, usage_dir

DEBOUNCE_MS = 1000
"""Lines written in a steady stream are collected for at most this long before a read; a
lone line is read as soon as its write settles."""
READ_INTERVAL = 1.0
"""Seconds at least between two reads, so between two `usage` notices: watchfiles yields
whenever writes pause for 50 ms, which a steady stream of lines does several times a
second (measured: about 4 notices a second)."""
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before reading again after the store refused a batch; the last repeats."""
POLL_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Seconds between looks at a usage directory that does not exist yet; the last repeats."""
RECHECK_MS = 5000
"""After this long without a change the logs are read anyway, and the directories checked
(a deleted one is polled until it is back)."""
SNAPSHOT_KEY = "daemon.kpi_snapshot_interval_seconds"
SNAPSHOT_RETRY = 30.0
"""Seconds before trying a snapshot again after the store refused one (at most the interval)."""
DEFAULT_SNAPSHOT_SECONDS = 300.0

_ACTIVE = (BeadStatus.HOOKED, BeadStatus.SLUNG, BeadStatus.REVIEW)


async def take_kpi(store: Store, moment: datetime) -> KpiSnapshot:
    """The town's KPIs at `moment` from what the store holds (today is the UTC day)."""
    counts = await store.beads.counts()
    states = [agent.state for agent in await store.agents.all()]
    convoys = await store.convoys.all()
    moment = moment.astimezone(UTC)
    midnight = iso(moment.replace(hour=0, minute=0, second=0, microsecond=0))
    until = iso(moment)
    days = await store.metrics.rollup("day", since=midnight, until=until)
    return KpiSnapshot(
        at=until,
        beads_active=sum(counts[s] for s in _ACTIVE),
        beads_done=counts[BeadStatus.DONE],
        beads_failed=counts[BeadStatus.FAILED],
        agents_active=states.count(AgentState.WORKING),
        agents_idle=states.count(AgentState.IDLE),
        agents_awaiting=states.count(AgentState.AWAITING_APPROVAL),
        convoys_active=sum(1 for c in convoys if c.status is ConvoyStatus.ACTIVE),
        cost_today_usd=round(await store.metrics.total_cost(since=midnight, until=until), 6),
        tokens_today=sum(row.input_tokens + row.output_tokens for row in days),
    )


class UsageWatcher:
    """Follows the town's usage logs into the store and takes KPI snapshots, until stopped."""

    def __init__(
        self,
        town: Town,
        store: Store,
        publish: Callable[[Event], None],
        log: DaemonLog,
        *,
        dirs: list[Path] | None = None,
        clock: Clock = system_clock,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        poll_delays: tuple[float, ...] = POLL_DELAYS,
        read_interval: float = READ_INTERVAL,
    ) -> None:
        """`dirs` defaults to the town's usage directory; the rest is for tests."""
        self.town = town
        self.store = store
        self.publish = publish
        self.log = log
        self.dirs = dirs if dirs is not None else [usage_dir(town)]
        self.clock = clock
        self.retry_delays = retry_delays
        self.poll_delays = poll_delays
        self.read_interval = read_interval
        self.follower = UsageFollower(self.dirs)
        self.snapshot_seconds = DEFAULT_SNAPSHOT_SECONDS
        self._dirty = asyncio.Event()
        """Set when the logs may hold something new (a change seen, a poll due, stopping)."""
        self._config_stamp: tuple[tuple[int, int] | None, ...] | None = None
        self._said = ""
        """The store failure last logged: a busy town retries every batch, logged once."""
        self.refused = 0
        """Reads in a row whose samples the store refused (0 while it takes them)."""

    async def run(self, stopped: asyncio.Event) -> None:
        """Ingest what the logs hold now, then follow them and take snapshots until stopped."""
        await asyncio.to_thread(self._prepare)
        tasks = [
            asyncio.create_task(self._watch(stopped), name="usage.watch"),
            asyncio.create_task(self._follow(stopped), name="usage.follow"),
            asyncio.create_task(self._snapshots(stopped), name="usage.snapshots"),
        ]
        for task in tasks:
            self.log.watch(task, what=task.get_name())
        try:
            await stopped.wait()
        finally:
            self._dirty.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _prepare(self) -> None:
        """Make the usage directories (0700, like the rest of the town's state) and read the
        configuration; neither failing stops the watcher."""
        for directory in self.dirs:
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                self.log.warning("usage.no_directory", error=error, path=str(directory))
        self._read_config()

    # ---- the configuration ---------------------------------------------------------------------

    def _read_config(self) -> None:
        """Each agent's runtime (labels its samples) and the snapshot interval, re-read when a
        layer file changed; a broken file keeps the last good values."""
        stamp = tuple(_stamp(path) for path in self._config_paths())
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            config: LayeredConfig = load_config(self.town)
        except TundraError as error:
            self.log.warning("usage.config_unreadable", error=error)
            return
        self.follower.runtimes = {
            name: spec.runtime.value for name, spec in config.agents().items()
        }
        self.snapshot_seconds = float(config.get(SNAPSHOT_KEY))

    def _config_paths(self) -> list[Path]:
        return [global_config_path(), self.town.config_path, self.town.local_config_path]

    # ---- following the logs --------------------------------------------------------------------

    async def _watch(self, stopped: asyncio.Event) -> None:
        """Mark the logs dirty on every batch of `*.jsonl` changes; poll while a directory is
        missing (with a growing pause), and mark them dirty once a watch starts."""
        polls = 0
        while not stopped.is_set():
            if all(d.is_dir() for d in self.dirs):
                polls = 0
                self._dirty.set()  # whatever was written before the watch began
                await self._watch_dirs(stopped)
                continue
            self._dirty.set()
            delay = self.poll_delays[min(polls, len(self.poll_delays) - 1)]
            polls += 1
            await _wait(stopped, delay)

    async def _watch_dirs(self, stopped: asyncio.Event) -> None:
        """Until stopped, or until one of the directories goes away."""

        def logs(_change: watchfiles.Change, path: str) -> bool:
            return path.endswith(LOG_SUFFIX)

        try:
            async for _changes in watchfiles.awatch(
                *self.dirs,
                watch_filter=logs,
                debounce=DEBOUNCE_MS,
                recursive=False,
                stop_event=stopped,
                rust_timeout=RECHECK_MS,
                yield_on_timeout=True,
            ):
                # A quiet spell reads too: a line written while the watch was being set up
                # is never seen as a change, and a look at unchanged logs costs a few stats.
                self._dirty.set()
                if not all(d.is_dir() for d in self.dirs):
                    return
        except (OSError, RuntimeError) as error:
            # The directory went away under the watch, or inotify ran out of watches.
            self.log.warning("usage.watch_failed", error=error)
            await _wait(stopped, self.poll_delays[-1])

    async def _follow(self, stopped: asyncio.Event) -> None:
        """Ingest whenever the logs are dirty; after a refusal, again after a growing pause."""
        failures = 0
        loop = asyncio.get_running_loop()
        read_at: float | None = None
        while not stopped.is_set():
            if failures:
                delay = self.retry_delays[min(failures - 1, len(self.retry_delays) - 1)]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._dirty.wait()
            else:
                await self._dirty.wait()
            if read_at is not None and loop.time() - read_at < self.read_interval:
                await _wait(stopped, self.read_interval - (loop.time() - read_at))
            self._dirty.clear()
            if stopped.is_set():
                return
            read_at = loop.time()
            failures = 0 if await self.ingest() else failures + 1

    async def ingest(self) -> bool:
        """Record what the logs hold that the store does not; False if the store refused
        (nothing was skipped: the same lines are read again next time)."""
        await asyncio.to_thread(self._read_config)
        try:
            added = await ingest(self.store, self.follower)
        except TundraError as error:
            self.refused += 1
            reason = str(error)
            if reason != self._said:
                self._said = reason
                self.log.warning("usage.unrecorded", error=error)
            return False
        self.refused = 0
        if self._said:
            self._said = ""
            self.log.info("usage.recorded_again")
        if added:
            self.publish(ChangedEvent(what="usage"))
        return True

    # ---- KPI snapshots -------------------------------------------------------------------------

    async def _snapshots(self, stopped: asyncio.Event) -> None:
        """One at start, then one every `daemon.kpi_snapshot_interval_seconds`."""
        while not stopped.is_set():
            taken = await self.snapshot()
            wait = self.snapshot_seconds if taken else min(SNAPSHOT_RETRY, self.snapshot_seconds)
            await _wait(stopped, wait)

    async def snapshot(self) -> bool:
        """Take and store one snapshot; False (logged) if the store refused it."""
        try:
            await self.store.metrics.snapshot(await take_kpi(self.store, self.clock()))
        except TundraError as error:
            self.log.warning("usage.snapshot_failed", error=error)
            return False
        self.publish(ChangedEvent(what="metrics"))
        return True


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


async def _wait(stopped: asyncio.Event, seconds: float) -> None:
    """Pause `seconds`, or less if stopped meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopped.wait()
