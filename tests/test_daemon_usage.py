"""The daemon's usage watcher on a real store and real log files: logs are recorded with no
control room open, a locked store loses nothing, and KPI snapshots are taken."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ChangedEvent, Event
from tundra_tui.daemon.usage import READ_INTERVAL, UsageWatcher, take_kpi
from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Action
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town
from tundra_tui.usage.follower import usage_dir

DEADLINE = 20.0
"""Seconds any wait below may take before the test fails (a loaded machine is slow)."""


def answer(message_id: str, *, input_tokens: int = 100, output_tokens: int = 20) -> str:
    """One assistant line as Claude Code (and the demo agent) writes it."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    message = {"id": message_id, "model": "claude-sonnet-4-5", "role": "assistant", "usage": usage}
    record = {"type": "assistant", "timestamp": "2026-11-20T10:00:00.000Z", "message": message}
    return json.dumps(record, separators=(",", ":")) + "\n"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds; fail naming `what` after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def samples(store: Store) -> int:
    return sum(row.samples for row in await store.metrics.rollup("agent"))


def log_events(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line).get("event", "") for line in path.read_text().splitlines()]


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, busy_timeout_ms=20)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[DaemonLog]:
    daemon_log = DaemonLog(tmp_path / "daemon.log")
    yield daemon_log
    daemon_log.close()


@asynccontextmanager
async def running(watcher: UsageWatcher) -> AsyncIterator[asyncio.Event]:
    """The watcher's `run`, stopped (and awaited) on leaving."""
    stopped = asyncio.Event()
    task = asyncio.create_task(watcher.run(stopped))
    try:
        yield stopped
    finally:
        stopped.set()
        async with asyncio.timeout(DEADLINE):
            await task


@contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Another process's writer holding the database (as a long transaction would)."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_logs_are_recorded_and_announced_with_no_control_room(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    logs = usage_dir(town)
    logs.mkdir(parents=True)
    append(logs / "crew-1.jsonl", answer("msg_1"))  # written while no daemon ran
    published: list[Event] = []
    watcher = UsageWatcher(town, store, published.append, log)
    async with running(watcher):

        async def first() -> bool:
            return await samples(store) == 1

        await until(first, "the log written before the start")
        append(logs / "crew-1.jsonl", answer("msg_2") + answer("msg_2"))  # one answer, twice
        append(logs / "mayor.jsonl", answer("msg_3", input_tokens=7))

        async def all_three() -> bool:
            return await samples(store) == 3

        await until(all_three, "the lines written while watching")
    rows = {row.key: row for row in await store.metrics.rollup("runtime")}
    assert set(rows) == {"aider", "claude"}  # crew-1 runs aider in the sample team
    assert rows["claude"].input_tokens == 7
    usage = [e for e in published if isinstance(e, ChangedEvent) and e.what == "usage"]
    assert 2 <= len(usage) <= 3  # one per batch that added samples, never per line
    assert "task.failed" not in log_events(log.path)


async def test_a_steady_stream_of_lines_is_announced_at_most_once_a_second(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    logs = usage_dir(town)
    logs.mkdir(parents=True)
    published: list[Event] = []
    watcher = UsageWatcher(town, store, published.append, log)
    loop = asyncio.get_running_loop()
    async with running(watcher):
        began = loop.time()
        for n in range(30):  # an agent answering ten times a second, for three seconds
            append(logs / "mayor.jsonl", answer(f"msg_{n}"))
            await asyncio.sleep(0.1)  # the writer's pace, not a wait for the watcher

        async def all_of_them() -> bool:
            return await samples(store) == 30

        await until(all_of_them, "every line of the stream")
        took = loop.time() - began
    usage = [e for e in published if isinstance(e, ChangedEvent) and e.what == "usage"]
    assert 1 <= len(usage) <= took / READ_INTERVAL + 1, (len(usage), took)


async def test_a_locked_store_loses_nothing_and_says_so_once(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    logs = usage_dir(town)
    published: list[Event] = []
    watcher = UsageWatcher(town, store, published.append, log, retry_delays=(0.05,))
    async with running(watcher):

        async def watching() -> bool:
            return logs.is_dir() and bool(published)  # made its directory, took a snapshot

        await until(watching, "the watcher to start")
        with write_locked(town.db_path):
            append(logs / "polecat-1.jsonl", answer("msg_1"))

            async def refused() -> bool:
                return "usage.unrecorded" in log_events(log.path)

            await until(refused, "the refusal to be logged")
            append(logs / "polecat-1.jsonl", answer("msg_2"))

            async def retried() -> bool:
                return watcher.refused >= 3

            await until(retried, "more attempts")  # each refused, none logged again
            assert await samples(store) == 0
            published.clear()

        async def recorded() -> bool:
            return await samples(store) == 2

        await until(recorded, "the lines read again once the store took writes")
    events = log_events(log.path)
    assert events.count("usage.unrecorded") == 1
    assert "usage.recorded_again" in events
    assert ChangedEvent(what="usage") in published


async def test_a_missing_directory_is_polled_until_it_appears(
    town_dir: Path, store: Store, log: DaemonLog, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-yet"
    blocker.write_text("a file where the directory's parent should be")
    logs = blocker / "usage"
    published: list[Event] = []
    watcher = UsageWatcher(
        Town(town_dir), store, published.append, log, dirs=[logs], poll_delays=(0.05,)
    )
    async with running(watcher):

        async def said() -> bool:
            return "usage.no_directory" in log_events(log.path)

        await until(said, "the directory that could not be made to be logged")
        blocker.unlink()
        logs.mkdir(parents=True)
        append(logs / "mayor.jsonl", answer("msg_1"))

        async def recorded() -> bool:
            return await samples(store) == 1

        await until(recorded, "the log in the directory made later")
        append(logs / "mayor.jsonl", answer("msg_2"))

        async def watched() -> bool:
            return await samples(store) == 2

        await until(watched, "the next line, now watched")


async def test_snapshots_are_taken_at_start_and_every_interval(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    town.local_config_path.write_text("[daemon]\nkpi_snapshot_interval_seconds = 1\n")
    published: list[Event] = []
    watcher = UsageWatcher(town, store, published.append, log)
    async with running(watcher):

        async def two() -> bool:
            return len(await store.metrics.snapshots()) >= 2

        await until(two, "a second snapshot one interval after the first")
    assert watcher.snapshot_seconds == 1.0
    metrics = [e for e in published if e == ChangedEvent(what="metrics")]
    # Each announced; one stored as the watcher stopped may not have been.
    assert 2 <= len(metrics) <= len(await store.metrics.snapshots())


async def test_a_snapshot_counts_what_the_store_holds_today(store: Store) -> None:
    op = "operator"
    await store.agents.sync_roster(
        [
            RosterEntry("mayor", Role.MAYOR, Runtime.DEMO),
            RosterEntry("polecat-1", Role.POLECAT, Runtime.DEMO),
            RosterEntry("crew-1", Role.CREW, Runtime.DEMO),
        ],
        actor=op,
    )
    await store.agents.set_state("mayor", AgentState.WORKING, actor=op)
    await store.agents.set_state("polecat-1", AgentState.AWAITING_APPROVAL, actor=op)
    await store.agents.set_state("crew-1", AgentState.IDLE, actor=op)
    beads = store.beads
    hooked = await beads.add("hooked", actor=op)
    await beads.apply(hooked.id, Action.HOOK, actor=op, agent="mayor")
    done = await beads.sling((await beads.add("done", actor=op)).id, "crew-1", actor=op)
    await beads.apply(done.id, Action.SUBMIT, actor=op)
    await beads.apply(done.id, Action.DONE, actor=op)
    failed = await beads.sling((await beads.add("failed", actor=op)).id, "crew-1", actor=op)
    await beads.apply(failed.id, Action.FAIL, actor=op)
    await store.convoys.create("launch", actor=op)
    await store.convoys.add("launch", [hooked.id], actor=op)
    await store.convoys.start("launch", actor=op)
    await store.metrics.record(
        [
            UsageSample("2026-11-19T23:59:00.000000Z", "mayor", input_tokens=1000, cost_usd=5.0),
            UsageSample(
                "2026-11-20T09:00:00.000000Z",
                "mayor",
                input_tokens=30,
                output_tokens=5,
                cost_usd=0.25,
                source_key="a",
            ),
            UsageSample(
                "2026-11-20T13:00:00.000000Z",
                "crew-1",
                input_tokens=10,
                cost_usd=0.5,
                source_key="b",
            ),
            UsageSample(
                "2026-11-20T15:00:00.000000Z",
                "crew-1",
                input_tokens=99,
                cost_usd=9.0,
                source_key="c",  # after the moment: not counted yet
            ),
        ]
    )
    kpi = await take_kpi(store, datetime(2026, 11, 20, 14, 30, tzinfo=UTC))
    assert kpi.at == "2026-11-20T14:30:00.000000Z"
    assert (kpi.beads_active, kpi.beads_done, kpi.beads_failed) == (1, 1, 1)
    assert (kpi.agents_active, kpi.agents_idle, kpi.agents_awaiting) == (1, 1, 1)
    assert kpi.convoys_active == 1
    assert kpi.cost_today_usd == pytest.approx(0.75)
    assert kpi.tokens_today == 45
