"""The daemon's usage part: every agent's own usage logs into the store, and KPI snapshots.

It runs in the daemon so costs are recorded whether or not a control room is open. What
it follows is a set of sources (`usage_sources`, each with its cursor in the store):
the demo agents' `.tundra/usage/<agent>.jsonl`, the logs `at` asks a CLI for under the
agent's own directory (Aider's analytics log), and the files each launch wrote in its
runtime's home (`usage.sources`: matched to a run by session id, cwd and time window, so
the operator's other sessions are never read). Launches are recorded as `agent_runs`
when the host first sees an agent's process, with the log roots its environment names.

The watched directories are followed with watchfiles (recursive), and read anyway every
`RECHECK_MS`; discovery looks for new files on a new run and every `DISCOVER_SECONDS`
while runs are open. Each source is read by `usage.ingest.ingest_source` (attributed,
priced, recorded with its cursor in one transaction), so a locked or full database loses
nothing: the failure is one log line and the same bytes are read again after a pause.
Every batch that added samples is announced as `ChangedEvent("usage", ids=<beads>)` and
refreshes the budget brake; every snapshot taken as `ChangedEvent("metrics")`.

At start and whenever the prices change (the table's version or `[costs.prices]`), rows
priced with another price book are priced again in batches; the hourly rollup follows
through the store's triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import watchfiles

from tundra_tui.config import LayeredConfig, account_of, global_config_path, load_config
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ChangedEvent, Event
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.clock import Clock, iso, system_clock
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.domain.metrics import KpiSnapshot
from tundra_tui.session.events import Exited, HostEvent, StateChanged
from tundra_tui.store import Store
from tundra_tui.town import Town
from tundra_tui.usage.ingest import DEFAULT_GRACE_SECONDS, Spans, ingest_source

LOG_SUFFIX = ".jsonl"
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
REPRICE_BATCH = 20_000
DISCOVER_SECONDS = 30.0
"""How often the runs' homes are searched for new log files while runs are open."""
RECENT_RUN_SECONDS = 120.0
"""Runs that ended this long ago are still searched (a log is its run's up to 60 s after)."""
RUN_START_SLACK = 5.0
"""Seconds before its run's start a call in a run's log may be dated and still be the
run's (the CLI's clock and ours are the same clock; this covers rounding)."""
SNAPSHOT_KEY = "daemon.kpi_snapshot_interval_seconds"
SNAPSHOT_RETRY = 30.0
"""Seconds before trying a snapshot again after the store refused one (at most the interval)."""
DEFAULT_SNAPSHOT_SECONDS = 300.0
BURN_HOURS = 3
"""The burn rate is the spend of the last this-many hours, per hour."""
_WATCHED = (LOG_SUFFIX, ".db", ".db-wal")

_ACTIVE = (BeadStatus.HOOKED, BeadStatus.SLUNG, BeadStatus.REVIEW)


def usage_dir(town: Town) -> Path:
    """Where the demo agents write `<agent>.jsonl`."""
    return town.state_dir / "usage"


def agents_root(town: Town) -> Path:
    """`.tundra/agents`: each agent's own directory; `<agent>/usage/` holds the logs `at`
    asked its CLI for (Aider's analytics log)."""
    return town.state_dir / "agents"


async def take_kpi(
    store: Store, moment: datetime, window_seconds: float = DEFAULT_SNAPSHOT_SECONDS
) -> KpiSnapshot:
    """The town's KPIs at `moment` from what the store holds (today is the UTC day; the
    window is the snapshot interval before `moment`)."""
    counts = await store.beads.counts()
    states = [agent.state for agent in await store.agents.all()]
    convoys = await store.convoys.all()
    moment = moment.astimezone(UTC)
    midnight = iso(moment.replace(hour=0, minute=0, second=0, microsecond=0))
    until = iso(moment)
    window_start = iso(moment - timedelta(seconds=window_seconds))
    burn_start = iso(moment - timedelta(hours=BURN_HOURS))
    days = await store.metrics.rollup("day", since=midnight, until=until)
    today = await store.metrics.cost(since=midnight, until=until)
    burn = await store.metrics.cost(since=burn_start, until=until)
    done = await store.db.fetchone(
        "SELECT count(*) FROM beads WHERE done_at != '' AND done_at >= ? AND done_at < ?",
        (window_start, until),
    )
    failed = await store.db.fetchone(
        "SELECT count(*) FROM events WHERE kind = 'bead.fail' AND at >= ? AND at < ?",
        (window_start, until),
    )
    by_state: dict[str, int] = {}
    for state in states:
        by_state[state.value] = by_state.get(state.value, 0) + 1
    return KpiSnapshot(
        at=until,
        beads_active=sum(counts[s] for s in _ACTIVE),
        beads_done=counts[BeadStatus.DONE],
        beads_failed=counts[BeadStatus.FAILED],
        agents_active=states.count(AgentState.WORKING),
        agents_idle=states.count(AgentState.IDLE),
        agents_awaiting=states.count(AgentState.AWAITING_APPROVAL),
        convoys_active=sum(1 for c in convoys if c.status is ConvoyStatus.ACTIVE),
        cost_today_usd=round(today.usd, 6),
        tokens_today=sum(row.input_tokens + row.output_tokens for row in days),
        window_seconds=int(window_seconds),
        done_window=int(done[0]) if done is not None else 0,
        failed_window=int(failed[0]) if failed is not None else 0,
        agents_by_state=by_state,
        burn_usd_hour=round(burn.usd / BURN_HOURS, 6),
        unpriced_tokens_today=today.unpriced_tokens,
        burn_unpriced_tokens=burn.unpriced_tokens,
    )


class UsageWatcher:
    """Follows the agents' usage logs into the store and takes KPI snapshots, until stopped."""

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
        brake: Any = None,
        host: Any = None,
        table: Any = None,
    ) -> None:
        """`dirs` are the directories of demo logs (`<agent>.jsonl`), by default the town's;
        `brake` (a `BrakePart`) is refreshed after each batch; `host` (the session host)
        tells a launch's environment; `table` is the price table (genai-prices, loaded
        lazily when None). The rest is for tests."""
        self.town = town
        self.store = store
        self.publish = publish
        self.log = log
        self.dirs = dirs if dirs is not None else [usage_dir(town)]
        self.clock = clock
        self.retry_delays = retry_delays
        self.poll_delays = poll_delays
        self.read_interval = read_interval
        self.brake = brake
        self.host = host
        self._table = table
        self.snapshot_seconds = DEFAULT_SNAPSHOT_SECONDS
        self.grace_seconds = DEFAULT_GRACE_SECONDS
        self.book: Any = None
        self._config: LayeredConfig | None = None
        self._roles: dict[str, str] = {}
        self._stored_roles: dict[str, str] = {}
        self._runtimes: dict[str, str] = {}
        self._dirty = asyncio.Event()
        """Set when the logs may hold something new (a change seen, a poll due, stopping)."""
        self._config_stamp: tuple[tuple[int, int] | None, ...] | None = None
        self._said = ""
        """The store failure last logged: a busy town retries every batch, logged once."""
        self.refused = 0
        """Reads in a row whose samples the store refused (0 while it takes them)."""
        self._seen: dict[int, tuple[int, int]] = {}
        """Each source's (size, mtime) when last read to its end: unchanged, not read."""
        self._pids: dict[str, int] = {}
        """Each agent's process whose launch is recorded (a new pid is a new run)."""
        self._runs: dict[str, int] = {}
        """Each agent's open run id."""
        self._discover_at = 0.0
        self._roots: set[Path] = set()
        self._roots_changed = asyncio.Event()
        self._sessions: dict[str, dict[str, str]] = {}
        """Per agent, the Claude sessions its own SessionStart hooks named, with when."""
        self._warned: set[int] = set()
        """Sources whose garbage lines were logged this run (once per source)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self.spans = Spans(store)
        """Attribution's reads: per step, only the spans its samples' times overlap
        (`spans.read` counts them)."""
        self._reading = asyncio.Lock()
        """One read of the logs at a time (the follow loop's, and the brake's flush)."""

    async def run(self, stopped: asyncio.Event) -> None:
        """Ingest what the logs hold now, then follow them and take snapshots until stopped."""
        await asyncio.to_thread(self._prepare)
        await self.reprice()
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

    def _read_config(self) -> bool:
        """Roles and runtimes (label samples), the price book, the grace and the snapshot
        interval, re-read when a layer file changed; a broken file keeps the last good
        values. True if it changed."""
        stamp = tuple(_stamp(path) for path in self._config_paths())
        if stamp == self._config_stamp and self.book is not None:
            return False
        self._config_stamp = stamp
        try:
            config: LayeredConfig = load_config(self.town)
        except TundraError as error:
            self.log.warning("usage.config_unreadable", error=error)
            if self.book is None:
                self.book = _empty_book()
            return False
        self._config = config
        specs = config.agents()
        self._runtimes = {name: spec.runtime.value for name, spec in specs.items()}
        self._roles = {name: spec.role.value for name, spec in specs.items()}
        self.snapshot_seconds = float(config.get(SNAPSHOT_KEY))
        grace = config.get("costs.attribution_grace_seconds")
        self.grace_seconds = float(grace) if grace is not None else DEFAULT_GRACE_SECONDS
        self.book = self._price_book(config)
        return True

    def _price_book(self, config: LayeredConfig) -> Any:
        from tundra_tui.usage.price_book import PriceBook

        if self._table is None:
            from tundra_tui.usage.price_table import GenaiTable

            self._table = GenaiTable()
            if self._table.error:
                self.log.warning("usage.price_table_unavailable", error=self._table.error)
        return PriceBook.from_config(config, self._table)

    def _config_paths(self) -> list[Path]:
        return [global_config_path(), self.town.config_path, self.town.local_config_path]

    def config_changed(self) -> None:
        """tundra.toml changed (the daemon's team watch): prices may have; look again."""
        self._spawn(self._after_config())

    async def _after_config(self) -> None:
        if await asyncio.to_thread(self._read_config):
            await self.reprice()
        self._dirty.set()

    # ---- prices --------------------------------------------------------------------------------

    async def reprice(self) -> int:
        """Price again every row priced with another price book (by fingerprint), in
        batches of `REPRICE_BATCH`; the hourly rollup follows by trigger. Returns the rows
        changed."""
        if self.book is None:
            await asyncio.to_thread(self._read_config)
        book = self.book
        try:
            fingerprint = await asyncio.to_thread(book.fingerprint)
            if await self.store.usage.price_book() == fingerprint:
                return 0
            began = time.monotonic()
            changed = 0
            after = 0
            while True:
                rows = await self.store.metrics.reprice_groups(after, REPRICE_BATCH)
                if not rows:
                    break
                updates = await asyncio.to_thread(_priced_again, book, rows)
                changed += await self.store.metrics.reprice(updates)
                after = rows[-1].id
            await self.store.usage.set_price_book(fingerprint)
        except TundraError as error:
            self.log.warning("usage.reprice_failed", error=error)
            return 0
        self.log.info("usage.repriced", rows=changed, seconds=round(time.monotonic() - began, 3))
        if changed:
            self.publish(ChangedEvent(what="usage"))
            await self._refresh_brake()
        return changed

    # ---- runs ----------------------------------------------------------------------------------

    def on_host(self, event: HostEvent) -> None:
        """A new process of an agent is a launch (a run); an exit ends it."""
        if isinstance(event, StateChanged) and self.host is not None:
            try:
                session = self.host.session(event.agent)
            except TundraError:
                return
            pid = session.pid
            if pid is not None and self._pids.get(event.agent) != pid:
                self._pids[event.agent] = pid
                self._spawn(self._run_started(event.agent, session, pid))
        elif isinstance(event, Exited):
            self._pids.pop(event.agent, None)
            run_id = self._runs.pop(event.agent, None)
            if run_id is not None:
                self._spawn(self._run_ended(run_id))

    async def _run_started(self, agent: str, session: Any, pid: int) -> None:
        from tundra_tui.usage.sources import log_roots, session_hint

        launch = session.config.launch
        config = self._config or load_config(self.town)
        spec = config.agents().get(agent)
        runtime = spec.runtime if spec is not None else Runtime(session.config.adapter.runtime)
        role = spec.role.value if spec is not None else self._roles.get(agent, "")
        roots = log_roots(runtime.value, dict(launch.env), str(launch.cwd))
        try:
            run = await self.store.usage.run_started(
                agent=agent,
                runtime=runtime.value,
                role=role,
                account=account_of(config, agent, runtime),
                cwd=str(launch.cwd),
                pid=pid,
                roots=roots,
                session_hint=session_hint(runtime.value, list(launch.argv)),
                started_at=iso(self.clock()),
            )
        except TundraError as error:
            self.log.warning("usage.run_unrecorded", agent=agent, error=error)
            return
        self._runs[agent] = run.id
        self._discover_at = 0.0
        self._dirty.set()

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """A Claude agent's own `SessionStart` hook (the store's tail hands it over): after
        `/clear` it names the new session, whose file the run's id no longer names."""
        from tundra_tui.usage.sources import session_id_like

        for event in events:
            if event.kind != "agent.hook" or event.data.get("event") != "SessionStart":
                continue
            session = event.data.get("session_id")
            if not isinstance(session, str) or not session_id_like(session):
                continue
            heard = self._sessions.setdefault(event.agent, {})
            if session not in heard:
                heard[session] = event.at
                self._discover_at = 0.0
                self._dirty.set()

    async def _run_ended(self, run_id: int) -> None:
        with contextlib.suppress(TundraError):
            await self.store.usage.run_ended(run_id, at=iso(self.clock()))
        self._discover_at = 0.0  # a log that appeared since the last look
        self._dirty.set()  # its last lines, then the window closes

    async def close_stale_runs(self) -> None:
        """At start: runs a dead daemon left open ended when it died (now, at the latest)."""
        try:
            await self.store.usage.end_open_runs(at=iso(self.clock()))
        except TundraError as error:
            self.log.warning("usage.runs_unclosed", error=error)

    # ---- following the logs --------------------------------------------------------------------

    def _watch_roots(self) -> list[Path]:
        roots = {*self.dirs, agents_root(self.town), *self._roots}
        return sorted(r for r in roots if r.is_dir())

    async def _watch(self, stopped: asyncio.Event) -> None:
        """Mark the logs dirty on every batch of changes (and every quiet `RECHECK_MS`); poll
        while no directory exists yet, and start again when the watched set changes."""
        polls = 0
        while not stopped.is_set():
            roots = await asyncio.to_thread(self._watch_roots)
            missing = not all(d.is_dir() for d in self.dirs)
            self._dirty.set()  # whatever was written before the watch began
            if roots and not missing:
                polls = 0
                await self._watch_dirs(stopped, roots)
                continue
            delay = self.poll_delays[min(polls, len(self.poll_delays) - 1)]
            polls += 1
            await _wait(stopped, delay)

    async def _watch_dirs(self, stopped: asyncio.Event, roots: list[Path]) -> None:
        """Until stopped, one of the demo directories goes away, or the roots change."""

        def logs(_change: watchfiles.Change, path: str) -> bool:
            return path.endswith(_WATCHED)

        self._roots_changed.clear()
        try:
            async for _changes in watchfiles.awatch(
                *roots,
                watch_filter=logs,
                debounce=DEBOUNCE_MS,
                recursive=True,
                stop_event=stopped,
                rust_timeout=RECHECK_MS,
                yield_on_timeout=True,
            ):
                # A quiet spell reads too: a line written while the watch was being set up
                # is never seen as a change, and a look at unchanged logs costs a few stats.
                self._dirty.set()
                if self._roots_changed.is_set() or not all(d.is_dir() for d in self.dirs):
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
        (nothing was skipped: the same bytes are read again next time). One at a time: the
        brake calls it too, right before a claim."""
        async with self._reading:
            return await self._ingest()

    async def _ingest(self) -> bool:
        if await asyncio.to_thread(self._read_config):
            await self.reprice()
        added = 0
        beads: set[int] = set()
        try:
            await self._discover()
            sources = await self.store.usage.sources()
            due = await asyncio.to_thread(self._changed, sources)
            if due:
                await self._known_roles({s.agent for s, _ in due})
                spans = self.spans
                spans.grace_seconds = self.grace_seconds
                starts = await self._run_starts(due)
                for source, before in due:
                    result = await ingest_source(
                        self.store,
                        source,
                        book=self.book,
                        spans=spans,
                        role_of=self._role_of,
                        not_before=starts.get(source.id, ""),
                    )
                    added += result.added
                    beads |= result.beads
                    if result.bad_lines and source.id not in self._warned:
                        self._warned.add(source.id)
                        self.log.warning(
                            "usage.bad_lines", path=source.path, lines=result.bad_lines
                        )
                    if result.eof:
                        self._seen[source.id] = before
        except TundraError as error:
            self.refused += 1
            reason = str(error)
            if reason != self._said:
                self._said = reason
                self.log.warning("usage.unrecorded", error=error)
            if added:
                self.publish(ChangedEvent(what="usage", ids=sorted(beads)))
            return False
        self.refused = 0
        if self._said:
            self._said = ""
            self.log.info("usage.recorded_again")
        if added:
            self.publish(ChangedEvent(what="usage", ids=sorted(beads)))
            await self._refresh_brake()
        return True

    def _role_of(self, agent: str) -> str:
        return self._roles.get(agent) or self._stored_roles.get(agent, "")

    async def _known_roles(self, agents: set[str]) -> None:
        """Agents no longer configured (a retired polecat) keep the role the store has."""
        missing = agents - set(self._roles) - set(self._stored_roles)
        if missing:
            for stored in await self.store.agents.all():
                self._stored_roles[stored.name] = stored.role.value
            for name in missing:
                self._stored_roles.setdefault(name, "")

    async def _run_starts(self, due: Sequence[tuple[Any, Any]]) -> dict[int, str]:
        """For each due log found in a run's home (the CLI's own directories, not the logs
        `at` keeps under the town), when its run started, less `RUN_START_SLACK`: what that
        log holds from before is another session's (one the run resumed or continued)."""
        local = [*self.dirs, agents_root(self.town)]
        wanted = {
            s.id: s.run_id
            for s, _ in due
            if s.run_id is not None
            and "#" not in s.path
            and not any(Path(s.path).is_relative_to(d) for d in local)
        }
        if not wanted:
            return {}
        runs = await self.store.usage.runs_by_id(wanted.values())
        starts: dict[int, str] = {}
        for source_id, run_id in wanted.items():
            run = runs.get(run_id)
            if run is not None and run.started_at:
                began = datetime.fromisoformat(run.started_at.replace("Z", "+00:00"))
                starts[source_id] = iso(began - timedelta(seconds=RUN_START_SLACK))
        return starts

    def _changed(self, sources: Iterable[Any]) -> list[tuple[Any, tuple[int, int]]]:
        """Sources whose file changed since last read to its end (a database: always), each
        with its size and mtime now, before the read: bytes written during the read change
        them again, so they are read next time."""
        out = []
        for source in sources:
            if "#" in source.path:
                out.append((source, (0, 0)))
                continue
            size = _size(source.path)
            if size == (0, 0):
                continue
            if self._seen.get(source.id) != size:
                out.append((source, size))
        return out

    async def _discover(self) -> None:
        """Add sources for new files: demo logs, agents' own logs, and the runs' homes."""
        known = {s.path for s in await self.store.usage.sources()}
        found = await asyncio.to_thread(self._local_logs)
        now = time.monotonic()
        runs: list[Any] = []
        if now >= self._discover_at:
            # Runs still open, and those that ended lately: a short run's log may appear
            # after the last look while it ran.
            recent = iso(self.clock() - timedelta(seconds=RECENT_RUN_SECONDS))
            runs = await self.store.usage.runs_between(recent, "")
            self._discover_at = now + DISCOVER_SECONDS
            if runs:
                found += await self._run_logs(runs)
        for runtime, agent, path, run_id in found:
            if path in known:
                continue
            known.add(path)
            await self.store.usage.add_source(
                runtime=runtime, agent=agent, path=path, run_id=run_id
            )

    def _local_logs(self) -> list[tuple[str, str, str, int | None]]:
        """`<dir>/<agent>.jsonl` (the demo's; the stem names the agent) and
        `.tundra/agents/<agent>/usage/aider-*.jsonl` (the analytics log `at` asked for)."""
        found: list[tuple[str, str, str, int | None]] = []
        for directory in self.dirs:
            for path in _files(directory, LOG_SUFFIX):
                agent = path.stem
                runtime = self._runtimes.get(agent, "claude")
                if runtime not in ("demo", "claude"):
                    runtime = "claude"
                found.append((runtime, agent, str(path), self._runs.get(agent)))
        root = agents_root(self.town)
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                for path in _files(Path(entry.path) / "usage", LOG_SUFFIX):
                    if path.name.startswith("aider-"):
                        found.append(("aider", entry.name, str(path), self._runs.get(entry.name)))
        return found

    async def _run_logs(self, runs: list[Any]) -> list[tuple[str, str, str, int | None]]:
        """Files in the runs' homes that belong to one of them (never the operator's)."""
        from tundra_tui.usage.sources import belongs, candidates, source_head

        since = iso(self.clock() - timedelta(days=2))
        window = await self.store.usage.runs_between(since, "")

        def look() -> tuple[list[tuple[str, str, str, int | None]], set[Path]]:
            out: list[tuple[str, str, str, int | None]] = []
            roots: set[Path] = set()
            for run in runs:
                for root in run.roots.values():
                    roots.add(Path(root))
                sessions = self._sessions_of(run)
                for path in candidates(run, run.roots, run.started_at, sessions):
                    head = source_head(run.runtime, path)
                    if belongs(run, window, path, head, sessions):
                        out.append((run.runtime, run.agent, str(path), run.id))
            return out, roots

        found, roots = await asyncio.to_thread(look)
        watched = {r for r in roots if r.is_dir()}
        if watched - self._roots:
            self._roots |= watched
            self._roots_changed.set()
        return found

    def _sessions_of(self, run: Any) -> list[str]:
        """The Claude sessions `run`'s agent's hooks reported while it ran (`/clear`)."""
        if run.runtime != "claude" or not run.session_hint:
            return []
        heard = self._sessions.get(run.agent, {})
        return [
            session
            for session, at in heard.items()
            if at >= run.started_at and (not run.ended_at or at <= run.ended_at)
        ]

    async def _refresh_brake(self) -> None:
        if self.brake is not None:
            await self.brake.refresh()

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
            kpi = await take_kpi(self.store, self.clock(), self.snapshot_seconds)
            await self.store.metrics.snapshot(kpi)
        except TundraError as error:
            self.log.warning("usage.snapshot_failed", error=error)
            return False
        self.publish(ChangedEvent(what="metrics"))
        return True

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.log.watch(task, what="usage")


def _priced_again(book: Any, rows: Iterable[Any]) -> list[tuple[int, float, bool, str]]:
    """(id, cost, priced, source) of each row under `book` (in a thread: a first lookup of
    a model may load the price table)."""
    out = []
    for row in rows:
        # The provider the sample was priced with at ingest, so the same price is found.
        price = book.price(row.runtime, row.provider, row.model, row.at)
        if price is None:
            out.append((row.id, 0.0, False, ""))
            continue
        cost = price.cost(
            input=row.input_tokens,
            output=row.output_tokens,
            cache_read=row.cache_read_tokens,
            cache_write=row.cache_write_tokens,
            cache_write_1h=row.cache_write_1h_tokens,
        )
        out.append((row.id, cost, True, price.source))
    return out


def _empty_book() -> Any:
    from tundra_tui.usage.price_book import PriceBook

    return PriceBook({}, None)


def _files(directory: Path, suffix: str) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            return sorted(Path(e.path) for e in entries if e.name.endswith(suffix) and e.is_file())
    except OSError:
        return []


def _size(path: str) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0)
    return (info.st_size, info.st_mtime_ns)


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
