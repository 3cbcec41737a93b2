"""The daemon's usage watcher on a real store and real log files: logs are recorded with no
control room open, attributed to the bead on the agent's hook, priced at ingest (unpriced
models flagged, never $0), re-priced when the prices change; a restart re-reads nothing,
the operator's own sessions are never read, a locked store loses nothing, and KPI
snapshots are taken."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ChangedEvent, Event
from tundra_tui.daemon.usage import READ_INTERVAL, UsageWatcher, take_kpi, usage_dir
from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Action
from tundra_tui.domain.clock import iso
from tundra_tui.domain.costs import Verdict
from tundra_tui.domain.dispatch import DispatchKind
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town

DEADLINE = 20.0
"""Seconds any wait below may take before the test fails (a loaded machine is slow)."""


def answer(
    message_id: str,
    *,
    input_tokens: int = 100,
    output_tokens: int = 20,
    model: str = "demo-sonnet",
    at: str = "2026-11-20T10:00:00.000Z",
    cwd: str = "/work/proj",
    session: str = "s-1",
) -> str:
    """One assistant line as Claude Code (and the demo agent) writes it."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    message = {"id": message_id, "model": model, "role": "assistant", "usage": usage}
    record = {
        "type": "assistant",
        "timestamp": at,
        "requestId": f"req-{message_id}",
        "sessionId": session,
        "cwd": cwd,
        "message": message,
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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


def raw(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, busy_timeout_ms=20)
    try:
        yield opened
    finally:
        await opened.close()


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
    rows = {row.key: row for row in await store.metrics.rollup("agent")}
    assert rows["mayor"].input_tokens == 7
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
        for n in range(20):  # an agent answering ten times a second, for two seconds
            append(logs / "mayor.jsonl", answer(f"msg_{n}"))
            await asyncio.sleep(0.1)  # the writer's pace, not a wait for the watcher

        async def all_of_them() -> bool:
            return await samples(store) == 20

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
    assert any(isinstance(e, ChangedEvent) and e.what == "usage" for e in published)


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


async def test_a_claude_log_of_our_launch_is_read_and_the_operators_never(
    town_dir: Path, store: Store, log: DaemonLog, tmp_path: Path
) -> None:
    """A run recorded with its session id and home: its file is followed; another session's
    file in the same `projects/` is the operator's and is never opened as a source. A new
    watcher (a restarted daemon) reads nothing again: cursors are in the store."""
    town = Town(town_dir)
    home = tmp_path / "home" / ".claude"
    ours = "11111111-2222-4333-8444-555555555555"
    now = datetime.now(UTC)
    at = iso(now)
    await store.usage.run_started(
        agent="crew-1",
        runtime="claude",
        role="crew",
        account="claude",
        cwd=str(town_dir),
        pid=4242,
        roots={"claude": str(home)},
        session_hint=ours,
        started_at=iso(now - timedelta(seconds=30)),
    )
    project = home / "projects" / "-town"
    line = answer("msg_c1", model="fake-model", at=at, cwd=str(town_dir), session=ours)
    # A session resumed or continued carries the earlier calls in, at their own dates: they
    # are not this run's spend.
    earlier = iso(now - timedelta(days=1))
    copied = answer("msg_old", model="fake-model", at=earlier, cwd=str(town_dir), session=ours)
    append(project / f"{ours}.jsonl", copied + line + line)  # a content block repeats
    operator = home / "projects" / "-home-op-proj" / "99999999-0000-4000-8000-000000000000.jsonl"
    append(operator, answer("msg_op", at=at, cwd="/home/op/proj", session="op"))
    usage_dir(town).mkdir(parents=True)
    append(usage_dir(town) / "polecat-1.jsonl", answer("msg_d1", at=at))
    published: list[Event] = []
    watcher = UsageWatcher(town, store, published.append, log)
    assert await watcher.ingest()
    sources = {s.path for s in await store.usage.sources()}
    assert str(project / f"{ours}.jsonl") in sources
    assert str(operator) not in sources
    rows = {r.key: r for r in await store.metrics.rollup("agent")}
    assert (rows["crew-1"].samples, rows["polecat-1"].samples) == (1, 1)
    # An unknown model: its tokens counted, its cost unknown, and totals say so.
    assert raw(town.db_path, "SELECT priced, cost_usd FROM metrics WHERE agent = 'crew-1'") == [
        (0, 0.0)
    ]
    today = await store.metrics.cost(since=iso(now - timedelta(hours=1)), until="")
    assert today.unpriced_samples == 1 and today.unpriced_tokens == 120
    assert not today.complete and "unpriced" in today.text()
    # A run that has ended already (a short one): its log, written at its end, is still its.
    short = "22222222-3333-4444-8555-666666666666"
    ended = await store.usage.run_started(
        agent="crew-2",
        runtime="claude",
        role="crew",
        account="claude",
        cwd=str(town_dir),
        pid=4343,
        roots={"claude": str(home)},
        session_hint=short,
        started_at=iso(now - timedelta(seconds=20)),
    )
    await store.usage.run_ended(ended.id, at=iso(now))
    append(project / f"{short}.jsonl", answer("msg_s1", at=at, cwd=str(town_dir), session=short))
    watcher._discover_at = 0.0  # the next look, not 30 s later
    assert await watcher.ingest()
    assert {r.key for r in await store.metrics.rollup("agent")} == {"crew-1", "crew-2", "polecat-1"}
    # A restarted daemon's watcher reads nothing again.
    again = UsageWatcher(town, store, published.append, log)
    assert await again.ingest()
    assert await samples(store) == 3
    # The price arrives in [costs.prices]: every row of that model is priced again, and
    # the hourly rollup follows.
    town.local_config_path.write_text('[costs.prices."fake-model"]\ninput = 3.0\noutput = 15.0\n')
    assert await again.ingest()
    assert raw(
        town.db_path, "SELECT priced, round(cost_usd, 9) FROM metrics WHERE agent = 'crew-1'"
    ) == [(1, round((100 * 3 + 20 * 15) / 1e6, 9))]
    hourly = raw(town.db_path, "SELECT sum(cost_usd), sum(unpriced_samples) FROM usage_hourly")
    metrics = raw(town.db_path, "SELECT sum(cost_usd), sum(1 - priced) FROM metrics")
    assert hourly[0][0] == pytest.approx(metrics[0][0]) and hourly[0][1] == metrics[0][1] == 0


async def test_spend_goes_to_the_bead_on_the_agents_hook_at_that_moment(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    """A holds the bead, gives it back, B takes it: A's spend is waste, B's in progress,
    a turn ending after the hand-over still A's (grace), later spend of A no bead's."""
    op = "operator"
    town = Town(town_dir)
    await store.agents.sync_roster(
        [RosterEntry("a", Role.CREW, Runtime.DEMO), RosterEntry("b", Role.CREW, Runtime.DEMO)],
        actor=op,
    )
    await store.flags.set_up(True, actor=op)
    bead = await store.beads.add("hand-over", actor=op)
    first = await store.dispatches.claim(bead.id, "a", kind=DispatchKind.CREW, actor=op)
    assert first is not None
    await store.dispatches.give_back(first.id, reason="returned", actor=op)
    second = await store.dispatches.claim(bead.id, "b", kind=DispatchKind.CREW, actor=op)
    assert second is not None
    a_span = await store.dispatches.get(first.id)
    t0 = datetime.fromisoformat(a_span.claimed_at.replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(a_span.closed_at.replace("Z", "+00:00"))
    t2 = datetime.fromisoformat(second.claimed_at.replace("Z", "+00:00"))
    logs = usage_dir(town)
    append(logs / "a.jsonl", answer("a1", at=iso(t0 + timedelta(milliseconds=1))))
    append(logs / "a.jsonl", answer("a2", at=iso(t1 + timedelta(seconds=30))))
    append(logs / "a.jsonl", answer("a3", at=iso(t1 + timedelta(seconds=300))))
    append(logs / "b.jsonl", answer("b1", at=iso(t2 + timedelta(seconds=1))))
    watcher = UsageWatcher(town, store, [].append, log)
    assert await watcher.ingest()
    attempts = await store.metrics.bead_attempts(bead.id)
    assert [(x.agent, x.verdict, x.cost.usd > 0) for x in attempts] == [
        ("a", Verdict.WASTE, True),
        ("b", Verdict.OPEN, True),
    ]
    assert [(x.input, x.output) for x in attempts] == [(200, 40), (100, 20)]
    _, spare = await store.metrics.no_bead(since="", until="")
    assert spare == 1
    # Neither is in tundra.toml (a retired polecat is not): the role is the store's.
    assert raw(town.db_path, "SELECT DISTINCT role FROM metrics") == [("crew",)]


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
                "2026-11-20T14:00:00.000000Z",
                "crew-1",
                model="mystery",
                input_tokens=7,
                priced=False,
                source_key="u",
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
    assert kpi.tokens_today == 52
    assert kpi.unpriced_tokens_today == 7
    assert kpi.burn_unpriced_tokens == 7  # 14:00 is in the last three hours
    assert kpi.burn_usd_hour == pytest.approx(0.5 / 3, abs=1e-6)  # 11:30-14:30
    assert kpi.agents_by_state == {"working": 1, "awaiting_approval": 1, "idle": 1}
    assert (kpi.window_seconds, kpi.done_window, kpi.failed_window) == (300, 0, 0)
    recent = await take_kpi(store, datetime.now(UTC) + timedelta(seconds=1), 3600)
    assert (recent.window_seconds, recent.done_window, recent.failed_window) == (3600, 1, 1)


class NotingTable:
    """The kept price table's part (genai-prices, a slow first lookup), as the price book
    calls it: knows no model, and notes the thread each lookup ran on."""

    version = "test"
    error = ""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def lookup(self, runtime: str, provider: str, model: str, day: str) -> None:
        self.threads.append(threading.get_ident())


async def test_a_model_not_yet_priced_is_looked_up_off_the_event_loop(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    append(usage_dir(town) / "crew-1.jsonl", answer("msg_1", model="claude-new-9"))
    table = NotingTable()
    watcher = UsageWatcher(town, store, [].append, log, table=table)
    assert await watcher.ingest()
    assert await samples(store) == 1
    assert table.threads, "the table was never asked"
    assert threading.get_ident() not in table.threads  # the loop's thread


async def test_a_claude_session_cleared_by_the_operator_is_still_the_agents(
    town_dir: Path, store: Store, log: DaemonLog, tmp_path: Path
) -> None:
    """`/clear` typed into a Claude agent starts a new session file in the same project dir:
    its own SessionStart hook (source "clear") names it, and it is followed too. A session
    no hook of the agent named stays unread (the operator's, in the same cwd)."""
    town = Town(town_dir)
    home = tmp_path / "home" / ".claude"
    ours = "11111111-2222-4333-8444-555555555555"
    cleared = "33333333-4444-4555-8666-777777777777"
    operators = "99999999-0000-4000-8000-000000000000"
    now = datetime.now(UTC)
    at = iso(now)
    await store.usage.run_started(
        agent="crew-1",
        runtime="claude",
        role="crew",
        account="claude",
        cwd=str(town_dir),
        pid=4242,
        roots={"claude": str(home)},
        session_hint=ours,
        started_at=iso(now - timedelta(seconds=30)),
    )
    project = home / "projects" / "-town"
    cwd = str(town_dir)
    append(project / f"{ours}.jsonl", answer("m1", at=at, cwd=cwd, session=ours))
    append(project / f"{cleared}.jsonl", answer("m2", at=at, cwd=cwd, session=cleared))
    append(project / f"{operators}.jsonl", answer("m3", at=at, cwd=cwd, session=operators))
    # The agent's hooks, as the daemon records them (`at hook-event SessionStart`).
    for session, source in ((ours, "startup"), (cleared, "clear")):
        data = {"event": "SessionStart", "session_id": session, "source": source}
        await store.events.record("agent.hook", actor="crew-1", agent="crew-1", data=data)
    watcher = UsageWatcher(town, store, [].append, log)
    watcher.on_events(await store.events.find(limit=10))  # as the store's tail hands them
    assert await watcher.ingest()
    sources = {s.path for s in await store.usage.sources()}
    assert str(project / f"{cleared}.jsonl") in sources
    assert str(project / f"{operators}.jsonl") not in sources
    rows = {r.key: r.samples for r in await store.metrics.rollup("agent")}
    assert rows == {"crew-1": 2}
