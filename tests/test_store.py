"""The SQLite store: migrations, file safety, every repository, locking, and ready-work parity."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
from tundra_tui.domain.beads import (
    KANBAN_COLUMNS,
    TRANSITIONS,
    Action,
    Bead,
    BeadStatus,
    Lane,
    ready_work,
)
from tundra_tui.domain.clock import iso
from tundra_tui.domain.convoys import ConvoyStatus
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.domain.events import Event
from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store import (
    FutureSchema,
    RosterEntry,
    Store,
    StoreError,
    StoreLocked,
    open_store,
)
from tundra_tui.store.schema import SCHEMA_VERSION

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
OP = "operator"


class StepClock:
    """A clock that moves forward by `step` every time it is read."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current

    def peek(self) -> str:
        """The timestamp the next read will return."""
        return iso(self.now)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "town.db"


@pytest.fixture
async def store(db_path: Path, clock: StepClock) -> AsyncIterator[Store]:
    opened = await open_store(db_path, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


ROSTER = [
    RosterEntry("alice", Role.POLECAT, Runtime.DEMO),
    RosterEntry("bob", Role.POLECAT, Runtime.CLAUDE, model="sonnet"),
    RosterEntry("carol", Role.CREW, Runtime.CODEX),
]


async def with_roster(store: Store) -> None:
    await store.agents.sync_roster(ROSTER, actor=OP)


async def all_events(store: Store, kind_prefix: str | None = None) -> list[Event]:
    return await store.events.find(limit=100_000, kind_prefix=kind_prefix)


async def events_since(store: Store, after_id: int) -> list[Event]:
    return await store.events.find(after_id=after_id, limit=100_000)


# Paths from backlog to every status, through the store.
PATHS: dict[BeadStatus, tuple[Action, ...]] = {
    BeadStatus.BACKLOG: (),
    BeadStatus.HOOKED: (Action.HOOK,),
    BeadStatus.SLUNG: (Action.HOOK, Action.SLING),
    BeadStatus.REVIEW: (Action.HOOK, Action.SLING, Action.SUBMIT),
    BeadStatus.DONE: (Action.HOOK, Action.SLING, Action.DONE),
    BeadStatus.FAILED: (Action.HOOK, Action.FAIL),
    BeadStatus.ESCALATED: (Action.ESCALATE,),
}


async def drive(store: Store, bead_id: int, status: BeadStatus, agent: str = "alice") -> Bead:
    """Move a backlog bead to `status` along PATHS."""
    bead = await store.beads.get(bead_id)
    for action in PATHS[status]:
        bead = await store.beads.apply(bead_id, action, actor=OP, agent=agent)
    assert bead.status is status
    return bead


def sqlite_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


# ---- opening and migrating ---------------------------------------------------------------------


async def test_fresh_database_is_migrated(store: Store, db_path: Path) -> None:
    rows = await store.db.fetchall("SELECT version, description, applied_at FROM schema_version")
    assert [row[0] for row in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert all(row[1] for row in rows)
    assert rows[0][2] == iso(T0)
    assert [row[2] for row in rows] == sorted(row[2] for row in rows)
    assert all(row[2].startswith("2025-03-01T12:") for row in rows)
    assert await store.db.schema_version() == SCHEMA_VERSION
    tables = {
        row[0]
        for row in await store.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert {"beads", "agents", "convoys", "mail", "events", "metrics", "approvals"} <= tables
    assert await store.db.integrity_check() == "ok"


async def test_reopening_is_a_no_op(db_path: Path) -> None:
    query = "SELECT version, description, applied_at FROM schema_version ORDER BY version"
    first = await open_store(db_path, clock=StepClock())
    await first.beads.add("kept", actor=OP)
    applied = [tuple(row) for row in await first.db.fetchall(query)]
    await first.close()
    later = StepClock(start=T0 + timedelta(days=30))
    async with await open_store(db_path, clock=later) as second:
        assert [tuple(row) for row in await second.db.fetchall(query)] == applied
        assert [b.title for b in await second.beads.find()] == ["kept"]
        assert later.now == T0 + timedelta(days=30)  # nothing stamped, nothing written


async def test_open_store_is_an_async_context_manager_and_close_is_idempotent(
    db_path: Path,
) -> None:
    async with await open_store(db_path) as opened:
        assert await opened.beads.find() == []
    await opened.close()


async def test_future_schema_is_refused_untouched(db_path: Path) -> None:
    first = await open_store(db_path)
    await first.close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_version VALUES (999, 'from the future', 'x')")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(FutureSchema) as info:
        await open_store(db_path)
    message = str(info.value)
    assert "999" in message
    assert str(db_path) in message
    assert "\n" not in message
    assert isinstance(info.value, StoreError)
    assert db_path.read_bytes() == before


async def test_future_schema_in_rollback_journal_is_not_switched_to_wal(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, d TEXT, a TEXT)")
    conn.execute("INSERT INTO schema_version VALUES (999, 'x', 'y')")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(FutureSchema):
        await open_store(db_path)
    assert db_path.read_bytes() == before
    assert sqlite_rows(db_path, "PRAGMA journal_mode") == [("delete",)]


async def test_foreign_sqlite_database_is_refused_untouched(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="not an auto-tundra database") as info:
        await open_store(db_path)
    assert not isinstance(info.value, FutureSchema)
    assert db_path.read_bytes() == before
    assert sqlite_rows(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'") == [
        ("customers",)
    ]


async def test_non_sqlite_file_is_refused(db_path: Path) -> None:
    junk = b"this is a text file, not a database\n" * 200
    db_path.write_bytes(junk)
    with pytest.raises(StoreError) as info:
        await open_store(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert "\n" not in message
    assert db_path.read_bytes() == junk


async def test_empty_existing_file_is_a_new_database(db_path: Path) -> None:
    db_path.write_bytes(b"")
    async with await open_store(db_path) as opened:
        assert await opened.db.schema_version() == SCHEMA_VERSION


async def test_missing_database_without_create(db_path: Path) -> None:
    with pytest.raises(StoreError, match="at init"):
        await open_store(db_path, create=False)
    assert not db_path.exists()


async def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory does not exist"):
        await open_store(tmp_path / "nope" / "town.db")


async def test_bad_synchronous_setting_is_refused(db_path: Path) -> None:
    with pytest.raises(StoreError, match="synchronous"):
        await open_store(db_path, synchronous="off")


async def test_bad_synchronous_setting_writes_nothing(db_path: Path) -> None:
    with pytest.raises(StoreError):
        await open_store(db_path, synchronous="off")
    assert not db_path.exists()


@pytest.mark.usefixtures("umask_022")
async def test_database_wal_and_shm_are_private(db_path: Path) -> None:
    async with await open_store(db_path) as opened:
        await opened.beads.add("make a wal", actor=OP)
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{db_path}{suffix}")
            assert path.exists(), suffix
            assert oct(path.stat().st_mode & 0o777) == oct(0o600), suffix


@pytest.mark.usefixtures("umask_022")
async def test_dangling_symlink_is_not_created_world_readable(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    link = tmp_path / "town.db"
    link.symlink_to(target)
    try:
        opened = await open_store(link)
    except StoreError:
        return  # refusing the symlink is also acceptable
    await opened.close()
    assert target.stat().st_mode & 0o777 == 0o600


async def test_connection_pragmas(db_path: Path) -> None:
    async with await open_store(db_path, busy_timeout_ms=1234) as opened:
        rows = {}
        for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"):
            row = await opened.db.fetchone(f"PRAGMA {pragma}")
            assert row is not None
            rows[pragma] = row[0]
    assert rows == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 1234,
    }


async def test_synchronous_full(db_path: Path) -> None:
    async with await open_store(db_path, synchronous="full") as opened:
        row = await opened.db.fetchone("PRAGMA synchronous")
        assert row is not None
        assert row[0] == 2


# ---- beads: create, read, edit -----------------------------------------------------------------


async def test_add_with_labels_and_blockers(store: Store, clock: StepClock) -> None:
    first = await store.beads.add("first", actor=OP)
    stamp = clock.peek()
    bead = await store.beads.add(
        "  second  ",
        actor="mayor",
        description="details",
        lane=Lane.CRITICAL,
        priority=0,
        labels=["ui", " db ", "ui"],
        blocked_by=[first.id, first.id],
    )
    assert bead.title == "second"
    assert bead.status is BeadStatus.BACKLOG
    assert bead.lane is Lane.CRITICAL
    assert bead.priority == 0
    assert bead.description == "details"
    assert bead.labels == ("db", "ui")
    assert bead.blocked_by == (first.id,)
    assert bead.created_at == bead.updated_at == stamp
    assert (bead.assignee, bead.hooked_at, bead.slung_at, bead.done_at) == ("", "", "", "")
    assert await store.beads.get(bead.id) == bead
    assert [b.id for b in await store.beads.dependents_of(first.id)] == [bead.id]
    assert [b.id for b in await store.beads.blockers_of(bead.id)] == [first.id]
    created = await all_events(store, "bead.created")
    assert [(e.bead_id, e.actor) for e in created] == [(first.id, OP), (bead.id, "mayor")]
    assert created[1].data == {"title": "second", "lane": "critical", "priority": 0}


async def test_add_with_unknown_blocker_writes_nothing(store: Store) -> None:
    with pytest.raises(NotFound, match="#42"):
        await store.beads.add("orphan", actor=OP, blocked_by=[42])
    assert await store.beads.find() == []
    assert await all_events(store) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"title": "   "},
        {"title": "x" * 501},
        {"title": "ok", "priority": 5},
        {"title": "ok", "priority": -1},
        {"title": "ok", "labels": ["two words"]},
        {"title": "ok", "description": "d" * (64 * 1024 + 1)},
    ],
)
async def test_add_refuses_bad_input_and_writes_nothing(
    store: Store, kwargs: dict[str, object]
) -> None:
    with pytest.raises(TundraError):
        await store.beads.add(actor=OP, **kwargs)  # type: ignore[arg-type]
    assert await store.beads.counts() == dict.fromkeys(BeadStatus, 0)
    assert await all_events(store) == []


async def test_title_with_nul_is_stored_or_refused_cleanly(store: Store) -> None:
    try:
        bead = await store.beads.add("\x00hidden", actor=OP)
    except TundraError:
        assert await store.beads.find() == []
        return
    assert (await store.beads.get(bead.id)).title == "\x00hidden"


async def test_get_unknown_bead(store: Store) -> None:
    with pytest.raises(NotFound, match="no bead #99"):
        await store.beads.get(99)


async def test_find_filters(store: Store) -> None:
    await with_roster(store)
    a = await store.beads.add("Fix LOGIN page", actor=OP, labels=["ui"], lane=Lane.CRITICAL)
    b = await store.beads.add("Write docs", actor=OP, description="about login", labels=["docs"])
    c = await store.beads.add("Tune db", actor=OP, labels=["ui", "db"], lane=Lane.EXPERIMENTAL)
    await drive(store, b.id, BeadStatus.HOOKED, agent="bob")
    await drive(store, c.id, BeadStatus.HOOKED, agent="alice")

    async def ids(**filters: object) -> list[int]:
        return [bead.id for bead in await store.beads.find(**filters)]  # type: ignore[arg-type]

    assert await ids() == [a.id, b.id, c.id]
    assert await ids(status=BeadStatus.BACKLOG) == [a.id]
    assert await ids(status=BeadStatus.HOOKED) == [b.id, c.id]
    assert await ids(status=BeadStatus.DONE) == []
    assert await ids(assignee="bob") == [b.id]
    assert await ids(assignee="") == [a.id]
    assert await ids(lane=Lane.CRITICAL) == [a.id]
    assert await ids(lane=Lane.STANDARD) == [b.id]
    assert await ids(label="ui") == [a.id, c.id]
    assert await ids(label="db") == [c.id]
    assert await ids(label="nope") == []
    assert await ids(search="login") == [a.id, b.id]
    assert await ids(search="LoGiN") == [a.id, b.id]
    assert await ids(search="%") == []
    assert await ids(label="ui", status=BeadStatus.HOOKED) == [c.id]
    assert await ids(label="ui", search="login", lane=Lane.CRITICAL) == [a.id]
    assert await ids(limit=2) == [a.id, b.id]


async def test_search_matches_non_ascii_title_typed_exactly(store: Store) -> None:
    bead = await store.beads.add("École migration", actor=OP)
    assert [b.id for b in await store.beads.find(search="École")] == [bead.id]


async def test_edit_records_before_and_after(store: Store, clock: StepClock) -> None:
    bead = await store.beads.add("old title", actor=OP, labels=["a", "b"], priority=3)
    stamp = clock.peek()
    edited = await store.beads.edit(
        bead.id,
        actor="mayor",
        title=" new title ",
        lane=Lane.CRITICAL,
        priority=1,
        branch="feat/x",
        add_labels=["c"],
        remove_labels=["a", "zzz"],
    )
    assert edited.title == "new title"
    assert edited.lane is Lane.CRITICAL
    assert edited.priority == 1
    assert edited.branch == "feat/x"
    assert edited.labels == ("b", "c")
    assert edited.updated_at == stamp
    assert edited.created_at == bead.created_at
    (event,) = await all_events(store, "bead.edited")
    assert event.actor == "mayor"
    assert event.bead_id == bead.id
    assert event.data["before"] == {
        "title": "old title",
        "lane": "standard",
        "priority": 3,
        "branch": "",
    }
    assert event.data["after"] == {
        "title": "new title",
        "lane": "critical",
        "priority": 1,
        "branch": "feat/x",
    }
    assert event.data["labels_added"] == ["c"]
    assert event.data["labels_removed"] == ["a", "zzz"]


async def test_edit_without_changes_logs_nothing(store: Store) -> None:
    bead = await store.beads.add("same", actor=OP)
    last = await store.events.last_id()
    assert await store.beads.edit(bead.id, actor=OP) == bead
    assert await store.events.last_id() == last


async def test_edit_refuses_bad_values_and_unknown_bead(store: Store) -> None:
    bead = await store.beads.add("x", actor=OP)
    with pytest.raises(TundraError):
        await store.beads.edit(bead.id, actor=OP, priority=9)
    with pytest.raises(TundraError):
        await store.beads.edit(bead.id, actor=OP, title="")
    with pytest.raises(NotFound):
        await store.beads.edit(404, actor=OP, title="y")
    assert await store.beads.get(bead.id) == bead


# ---- dependencies ------------------------------------------------------------------------------


async def test_block_and_unblock(store: Store) -> None:
    one = await store.beads.add("one", actor=OP)
    two = await store.beads.add("two", actor=OP)
    blocked = await store.beads.block(two.id, one.id, actor="mayor")
    assert blocked.blocked_by == (one.id,)
    assert blocked.updated_at > two.updated_at
    again = await store.beads.block(two.id, one.id, actor=OP)
    assert again.blocked_by == (one.id,)
    assert len(await all_events(store, "bead.blocked")) == 1
    (event,) = await all_events(store, "bead.blocked")
    assert (event.bead_id, event.actor, event.data) == (two.id, "mayor", {"blocker": one.id})
    unblocked = await store.beads.unblock(two.id, one.id, actor=OP)
    assert unblocked.blocked_by == ()
    assert len(await all_events(store, "bead.unblocked")) == 1
    with pytest.raises(NotFound, match=f"#{one.id} does not block #{two.id}"):
        await store.beads.unblock(two.id, one.id, actor=OP)
    with pytest.raises(NotFound, match="#77"):
        await store.beads.unblock(two.id, 77, actor=OP)


async def test_block_refuses_self(store: Store) -> None:
    bead = await store.beads.add("me", actor=OP)
    with pytest.raises(TundraError, match=f"#{bead.id} cannot block itself"):
        await store.beads.block(bead.id, bead.id, actor=OP)


async def test_block_refuses_unknown_beads(store: Store) -> None:
    bead = await store.beads.add("me", actor=OP)
    with pytest.raises(NotFound, match="#50"):
        await store.beads.block(bead.id, 50, actor=OP)
    with pytest.raises(NotFound, match="#51"):
        await store.beads.block(51, bead.id, actor=OP)


async def test_block_refuses_direct_and_transitive_cycles(store: Store) -> None:
    b1, b2, b3, b4 = [await store.beads.add(f"b{i}", actor=OP) for i in range(1, 5)]
    await store.beads.block(b2.id, b1.id, actor=OP)  # 1 blocks 2
    await store.beads.block(b3.id, b2.id, actor=OP)  # 2 blocks 3
    last = await store.events.last_id()
    with pytest.raises(TundraError) as direct:
        await store.beads.block(b1.id, b2.id, actor=OP)
    assert str(direct.value) == (
        f"#{b2.id} cannot block #{b1.id}: #{b1.id} already blocks #{b2.id} (that would be a cycle)"
    )
    with pytest.raises(TundraError, match="cycle"):
        await store.beads.block(b1.id, b3.id, actor=OP)
    assert await store.events.last_id() == last
    assert (await store.beads.get(b1.id)).blocked_by == ()
    # A diamond is not a cycle.
    await store.beads.block(b4.id, b2.id, actor=OP)
    await store.beads.block(b4.id, b3.id, actor=OP)
    assert (await store.beads.get(b4.id)).blocked_by == (b2.id, b3.id)
    with pytest.raises(TundraError, match="cycle"):
        await store.beads.block(b1.id, b4.id, actor=OP)


# ---- transitions -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(BeadStatus), ids=str)
async def test_every_action_from_every_status_through_apply(
    store: Store, status: BeadStatus
) -> None:
    """Legal moves land where TRANSITIONS says with one bead.* event; illegal ones write nothing."""
    await with_roster(store)
    for action in Action:
        bead = await store.beads.add(f"{status.value} {action.value}", actor=OP)
        before = await drive(store, bead.id, status)
        last = await store.events.last_id()
        target = TRANSITIONS.get((status, action))
        if target is None:
            with pytest.raises(IllegalTransition, match=status.value):
                await store.beads.apply(bead.id, action, actor=OP, agent="bob")
            assert await store.beads.get(bead.id) == before, action
            assert await store.events.last_id() == last, action
            continue
        moved = await store.beads.apply(
            bead.id, action, actor="tester", agent="bob", reason="because"
        )
        assert moved.status is target, action
        bead_events = [e for e in await events_since(store, last) if e.kind.startswith("bead.")]
        assert len(bead_events) == 1, action
        (event,) = bead_events
        assert event.kind == f"bead.{action.value}"
        assert event.actor == "tester"
        assert event.bead_id == bead.id
        assert (event.data["from"], event.data["to"]) == (status.value, target.value)
        assert event.data["reason"] == "because"
        assert event.agent == moved.assignee


async def test_apply_unknown_bead(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.beads.apply(9, Action.ESCALATE, actor=OP)


async def test_hook_needs_a_known_agent(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("x", actor=OP)
    with pytest.raises(IllegalTransition, match="needs an agent"):
        await store.beads.apply(bead.id, Action.HOOK, actor=OP)
    with pytest.raises(NotFound, match="mallory"):
        await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="mallory")
    assert (await store.beads.get(bead.id)).status is BeadStatus.BACKLOG
    assert await all_events(store, "bead.hook") == []


@pytest.mark.parametrize("start", [BeadStatus.BACKLOG, BeadStatus.ESCALATED])
async def test_hook_needs_an_unblocked_bead(store: Store, start: BeadStatus) -> None:
    await with_roster(store)
    blocker = await store.beads.add("blocker", actor=OP)
    bead = await store.beads.add("blocked", actor=OP, blocked_by=[blocker.id])
    await drive(store, bead.id, start)
    await drive(store, blocker.id, BeadStatus.REVIEW, agent="bob")
    with pytest.raises(IllegalTransition, match=rf"blocked by #{blocker.id} \(review\)"):
        await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="alice")
    await store.beads.apply(blocker.id, Action.DONE, actor=OP)
    hooked = await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="alice")
    assert (hooked.status, hooked.assignee) == (BeadStatus.HOOKED, "alice")


async def test_lifecycle_timestamps_and_assignee(store: Store, clock: StepClock) -> None:
    await with_roster(store)
    bead = await store.beads.add("life", actor=OP)
    t_hook = clock.peek()
    hooked = await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="alice")
    assert (hooked.assignee, hooked.hooked_at, hooked.updated_at) == ("alice", t_hook, t_hook)
    unhooked = await store.beads.apply(bead.id, Action.UNHOOK, actor=OP)
    assert (unhooked.status, unhooked.assignee, unhooked.hooked_at) == (BeadStatus.BACKLOG, "", "")
    await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="bob")
    t_sling = clock.peek()
    slung = await store.beads.apply(bead.id, Action.SLING, actor=OP, agent="ignored")
    assert (slung.assignee, slung.slung_at) == ("bob", t_sling)
    await store.beads.apply(bead.id, Action.SUBMIT, actor=OP)
    t_rework = clock.peek()
    reworked = await store.beads.apply(bead.id, Action.REWORK, actor=OP)
    assert reworked.slung_at == t_rework
    await store.beads.apply(bead.id, Action.SUBMIT, actor=OP)
    t_done = clock.peek()
    done = await store.beads.apply(bead.id, Action.DONE, actor=OP)
    assert (done.status, done.done_at, done.assignee) == (BeadStatus.DONE, t_done, "bob")
    reopened = await store.beads.apply(bead.id, Action.REOPEN, actor=OP, reason="regressed")
    assert reopened.status is BeadStatus.BACKLOG
    assert (reopened.assignee, reopened.hooked_at, reopened.slung_at, reopened.done_at) == (
        "",
        "",
        "",
        "",
    )
    (event,) = await all_events(store, "bead.reopen")
    assert event.data == {"from": "done", "to": "backlog", "reason": "regressed"}


# ---- sling -------------------------------------------------------------------------------------


async def test_sling_from_backlog_hooks_then_slings(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("go", actor=OP)
    last = await store.events.last_id()
    slung = await store.beads.sling(bead.id, "alice", actor="mayor")
    assert (slung.status, slung.assignee) == (BeadStatus.SLUNG, "alice")
    assert slung.hooked_at and slung.slung_at
    new = await events_since(store, last)
    assert [(e.kind, e.actor, e.agent) for e in new] == [
        ("bead.hook", "mayor", "alice"),
        ("bead.sling", "mayor", "alice"),
    ]


async def test_sling_from_escalated(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("go", actor=OP)
    await drive(store, bead.id, BeadStatus.ESCALATED)
    slung = await store.beads.sling(bead.id, "carol", actor=OP)
    assert (slung.status, slung.assignee) == (BeadStatus.SLUNG, "carol")


async def test_sling_hooked_to_the_same_agent(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("go", actor=OP)
    await drive(store, bead.id, BeadStatus.HOOKED, agent="alice")
    last = await store.events.last_id()
    slung = await store.beads.sling(bead.id, "alice", actor=OP)
    assert slung.status is BeadStatus.SLUNG
    assert [e.kind for e in await events_since(store, last)] == ["bead.sling"]


async def test_sling_hooked_to_another_agent_is_refused(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("go", actor=OP)
    hooked = await drive(store, bead.id, BeadStatus.HOOKED, agent="alice")
    last = await store.events.last_id()
    with pytest.raises(IllegalTransition) as info:
        await store.beads.sling(bead.id, "bob", actor=OP)
    message = str(info.value)
    assert "hooked to alice, not bob" in message
    assert "\n" not in message
    assert await store.beads.get(bead.id) == hooked
    assert await store.events.last_id() == last


@pytest.mark.parametrize(
    "status", [BeadStatus.SLUNG, BeadStatus.REVIEW, BeadStatus.DONE, BeadStatus.FAILED]
)
async def test_sling_refused_past_hooked(store: Store, status: BeadStatus) -> None:
    await with_roster(store)
    bead = await store.beads.add("go", actor=OP)
    before = await drive(store, bead.id, status)
    with pytest.raises(IllegalTransition):
        await store.beads.sling(bead.id, "alice", actor=OP)
    assert await store.beads.get(bead.id) == before


async def test_sling_to_unknown_agent_rolls_back(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("go", actor=OP)
    last = await store.events.last_id()
    with pytest.raises(NotFound):
        await store.beads.sling(bead.id, "mallory", actor=OP)
    assert await store.beads.get(bead.id) == bead
    assert await store.events.last_id() == last


# ---- claims ------------------------------------------------------------------------------------


async def test_claim_next_order_lane_priority_age(store: Store) -> None:
    await with_roster(store)
    e0 = await store.beads.add("exp p0", actor=OP, lane=Lane.EXPERIMENTAL, priority=0)
    s4 = await store.beads.add("std p4", actor=OP, priority=4)
    s1_old = await store.beads.add("std p1 old", actor=OP, priority=1)
    c4 = await store.beads.add("crit p4", actor=OP, lane=Lane.CRITICAL, priority=4)
    s1_new = await store.beads.add("std p1 new", actor=OP, priority=1)
    c2 = await store.beads.add("crit p2", actor=OP, lane=Lane.CRITICAL, priority=2)
    order = []
    while (bead := await store.beads.claim_next("alice", actor="mayor")) is not None:
        assert (bead.status, bead.assignee) == (BeadStatus.HOOKED, "alice")
        order.append(bead.id)
    assert order == [c2.id, c4.id, s1_old.id, s1_new.id, s4.id, e0.id]
    claims = await all_events(store, "bead.hook")
    assert [e.bead_id for e in claims] == order
    assert all(e.actor == "mayor" and e.data["claim"] is True for e in claims)


async def test_claim_next_breaks_ties_by_id(db_path: Path) -> None:
    frozen = StepClock(step=timedelta(0))
    async with await open_store(db_path, clock=frozen) as fixed:
        await with_roster(fixed)
        ids = [(await fixed.beads.add(f"b{i}", actor=OP)).id for i in range(4)]
        claimed = [await fixed.beads.claim_next("bob", actor=OP) for _ in ids]
        assert [b.id for b in claimed if b is not None] == ids


async def test_claim_next_skips_blocked_and_unstarted_convoys(store: Store) -> None:
    await with_roster(store)
    blocker = await store.beads.add("blocker", actor=OP, lane=Lane.EXPERIMENTAL)
    await store.beads.add("blocked", actor=OP, lane=Lane.CRITICAL, blocked_by=[blocker.id])
    in_convoy = await store.beads.add("convoy", actor=OP, lane=Lane.CRITICAL)
    await store.convoys.create("wave", actor=OP)
    await store.convoys.add("wave", [in_convoy.id], actor=OP)
    first = await store.beads.claim_next("alice", actor=OP)
    assert first is not None
    assert first.id == blocker.id
    assert await store.beads.claim_next("alice", actor=OP) is None


async def test_only_a_done_blocker_releases_ready_work(store: Store) -> None:
    await with_roster(store)
    dependents: dict[BeadStatus, int] = {}
    for status in BeadStatus:
        blocker = await store.beads.add(f"blocker {status.value}", actor=OP)
        dependent = await store.beads.add(
            f"after {status.value}", actor=OP, lane=Lane.CRITICAL, blocked_by=[blocker.id]
        )
        await drive(store, blocker.id, status)
        dependents[status] = dependent.id
    ready_ids = {bead.id for bead in await store.beads.ready()}
    assert {s for s, bead_id in dependents.items() if bead_id in ready_ids} == {BeadStatus.DONE}
    claimed = await store.beads.claim_next("carol", actor=OP)
    assert claimed is not None
    assert claimed.id == dependents[BeadStatus.DONE]
    for status in (BeadStatus.FAILED, BeadStatus.ESCALATED, BeadStatus.REVIEW):
        with pytest.raises(IllegalTransition, match=f"blocked by #[0-9]+ \\({status.value}\\)"):
            await store.beads.claim(dependents[status], "carol", actor=OP)


async def test_claim_next_takes_started_convoy_but_not_paused(store: Store) -> None:
    await with_roster(store)
    one = await store.beads.add("one", actor=OP)
    two = await store.beads.add("two", actor=OP)
    await store.convoys.create("wave", actor=OP)
    await store.convoys.add("wave", [one.id, two.id], actor=OP)
    await store.convoys.start("wave", actor=OP)
    first = await store.beads.claim_next("alice", actor=OP)
    assert first is not None
    assert first.id == one.id
    await store.convoys.pause("wave", actor=OP)
    assert await store.beads.claim_next("alice", actor=OP) is None
    await store.convoys.start("wave", actor=OP)
    second = await store.beads.claim_next("alice", actor=OP)
    assert second is not None
    assert second.id == two.id


async def test_claim_next_on_empty_and_unknown_agent(store: Store) -> None:
    await with_roster(store)
    assert await store.beads.claim_next("alice", actor=OP) is None
    await store.beads.add("x", actor=OP)
    with pytest.raises(NotFound):
        await store.beads.claim_next("mallory", actor=OP)
    assert await all_events(store, "bead.hook") == []


async def test_claim_specific_bead(store: Store, clock: StepClock) -> None:
    await with_roster(store)
    bead = await store.beads.add("mine", actor=OP)
    stamp = clock.peek()
    claimed = await store.beads.claim(bead.id, "carol", actor="carol")
    assert (claimed.status, claimed.assignee, claimed.hooked_at) == (
        BeadStatus.HOOKED,
        "carol",
        stamp,
    )
    (event,) = await all_events(store, "bead.hook")
    assert (event.actor, event.agent, event.data["claim"]) == ("carol", "carol", True)
    with pytest.raises(IllegalTransition, match="already hooked by carol"):
        await store.beads.claim(bead.id, "alice", actor=OP)
    assert (await store.beads.get(bead.id)).assignee == "carol"


async def test_claim_refusals(store: Store) -> None:
    await with_roster(store)
    blocker = await store.beads.add("blocker", actor=OP)
    blocked = await store.beads.add("blocked", actor=OP, blocked_by=[blocker.id])
    held = await store.beads.add("held", actor=OP)
    await store.convoys.create("later", actor=OP)
    await store.convoys.add("later", [held.id], actor=OP)
    with pytest.raises(IllegalTransition, match=rf"blocked by #{blocker.id} \(backlog\)"):
        await store.beads.claim(blocked.id, "alice", actor=OP)
    with pytest.raises(IllegalTransition, match="convoy that has not been started"):
        await store.beads.claim(held.id, "alice", actor=OP)
    with pytest.raises(NotFound):
        await store.beads.claim(999, "alice", actor=OP)
    with pytest.raises(NotFound):
        await store.beads.claim(blocker.id, "mallory", actor=OP)
    assert await all_events(store, "bead.hook") == []
    assert (await store.beads.counts())[BeadStatus.BACKLOG] == 3


# ---- kanban and counts -------------------------------------------------------------------------


async def test_counts_and_kanban(store: Store) -> None:
    await with_roster(store)
    layout = [
        BeadStatus.BACKLOG,
        BeadStatus.BACKLOG,
        BeadStatus.HOOKED,
        BeadStatus.SLUNG,
        BeadStatus.REVIEW,
        BeadStatus.DONE,
        BeadStatus.DONE,
        BeadStatus.DONE,
        BeadStatus.FAILED,
        BeadStatus.ESCALATED,
    ]
    ids: dict[BeadStatus, list[int]] = {}
    for i, status in enumerate(layout):
        bead = await store.beads.add(f"b{i}", actor=OP)
        await drive(store, bead.id, status)
        ids.setdefault(status, []).append(bead.id)
    counts = await store.beads.counts()
    assert set(counts) == set(BeadStatus)
    assert counts == {s: layout.count(s) for s in BeadStatus}
    board = await store.beads.kanban(per_column=2)
    assert [col.status for col in board] == [
        *KANBAN_COLUMNS,
        BeadStatus.FAILED,
        BeadStatus.ESCALATED,
    ]
    for column in board:
        assert column.count == layout.count(column.status)
        assert len(column.beads) == min(2, column.count)
        assert all(b.status is column.status for b in column.beads)
    done = next(col for col in board if col.status is BeadStatus.DONE)
    assert [b.id for b in done.beads] == list(reversed(ids[BeadStatus.DONE]))[:2]
    backlog = board[0]
    assert [b.id for b in backlog.beads] == ids[BeadStatus.BACKLOG]


async def test_counts_on_empty_store(store: Store) -> None:
    assert await store.beads.counts() == dict.fromkeys(BeadStatus, 0)
    board = await store.beads.kanban()
    assert all(col.count == 0 and col.beads == () for col in board)


# ---- convoys -----------------------------------------------------------------------------------


async def test_convoy_create_and_duplicate(store: Store) -> None:
    convoy = await store.convoys.create("wave-1", actor="mayor", description="first")
    assert (convoy.name, convoy.status, convoy.description) == (
        "wave-1",
        ConvoyStatus.PENDING,
        "first",
    )
    assert convoy.bead_ids == ()
    assert convoy.progress.total == 0
    with pytest.raises(TundraError, match="already exists"):
        await store.convoys.create("wave-1", actor=OP)
    with pytest.raises(TundraError, match="invalid convoy name"):
        await store.convoys.create("../x", actor=OP)
    assert [c.name for c in await store.convoys.all()] == ["wave-1"]
    (event,) = await all_events(store, "convoy.")
    assert (event.kind, event.actor, event.convoy_id) == ("convoy.created", "mayor", convoy.id)
    assert await store.convoys.get(convoy.id) == convoy
    assert await store.convoys.get(f"#{convoy.id}") == convoy
    with pytest.raises(NotFound):
        await store.convoys.get("nope")


async def test_convoy_membership(store: Store) -> None:
    one, two, three = [await store.beads.add(f"b{i}", actor=OP) for i in range(3)]
    await store.convoys.create("a", actor=OP)
    await store.convoys.create("b", actor=OP)
    convoy = await store.convoys.add("a", [two.id, one.id, one.id], actor=OP)
    assert convoy.bead_ids == (one.id, two.id)
    assert convoy.progress.total == 2
    assert (await store.beads.get(one.id)).convoy_id == convoy.id
    added = await all_events(store, "convoy.bead_added")
    assert [e.bead_id for e in added] == [one.id, two.id]
    await store.convoys.add("a", [one.id], actor=OP)  # already a member: no event
    assert len(await all_events(store, "convoy.bead_added")) == 2
    last = await store.events.last_id()
    with pytest.raises(TundraError, match=f"#{one.id} already in another convoy"):
        await store.convoys.add("b", [three.id, one.id], actor=OP)
    assert (await store.beads.get(three.id)).convoy_id is None
    assert await store.events.last_id() == last
    with pytest.raises(NotFound, match="#404"):
        await store.convoys.add("b", [404], actor=OP)
    with pytest.raises(TundraError, match="at least one bead"):
        await store.convoys.add("b", [], actor=OP)
    assert (await store.beads.find(convoy_id=convoy.id)) == [
        await store.beads.get(one.id),
        await store.beads.get(two.id),
    ]


async def test_convoy_start_and_pause(store: Store) -> None:
    await store.convoys.create("empty", actor=OP)
    with pytest.raises(IllegalTransition, match="has no beads"):
        await store.convoys.start("empty", actor=OP)
    assert (await store.convoys.get("empty")).status is ConvoyStatus.PENDING
    bead = await store.beads.add("b", actor=OP)
    await store.convoys.create("wave", actor=OP)
    await store.convoys.add("wave", [bead.id], actor=OP)
    with pytest.raises(IllegalTransition, match="cannot pause a convoy that is pending"):
        await store.convoys.pause("wave", actor=OP)
    started = await store.convoys.start("wave", actor="mayor")
    assert started.status is ConvoyStatus.ACTIVE
    assert started.started_at
    with pytest.raises(IllegalTransition, match="cannot start a convoy that is active"):
        await store.convoys.start("wave", actor=OP)
    paused = await store.convoys.pause("wave", actor=OP)
    assert paused.status is ConvoyStatus.PAUSED
    restarted = await store.convoys.start("wave", actor=OP)
    assert restarted.status is ConvoyStatus.ACTIVE
    assert restarted.started_at == started.started_at
    moves = await all_events(store, "convoy.")
    assert [(e.kind, e.data.get("to")) for e in moves if e.convoy_id == started.id] == [
        ("convoy.created", None),
        ("convoy.bead_added", None),
        ("convoy.start", "active"),
        ("convoy.pause", "paused"),
        ("convoy.start", "active"),
    ]


async def test_convoy_completes_and_reopens(store: Store) -> None:
    await with_roster(store)
    one = await store.beads.add("one", actor=OP)
    two = await store.beads.add("two", actor=OP)
    await store.convoys.create("wave", actor=OP)
    await store.convoys.add("wave", [one.id, two.id], actor=OP)
    await store.convoys.start("wave", actor=OP)
    await drive(store, one.id, BeadStatus.DONE)
    half = await store.convoys.get("wave")
    assert (half.status, half.progress.percent) == (ConvoyStatus.ACTIVE, 50)
    await drive(store, two.id, BeadStatus.REVIEW, agent="bob")
    last = await store.events.last_id()
    await store.beads.apply(two.id, Action.DONE, actor="refinery")
    completed = await store.convoys.get("wave")
    assert completed.status is ConvoyStatus.COMPLETED
    assert completed.completed_at
    assert completed.progress.is_complete
    new = await events_since(store, last)
    assert [(e.kind, e.actor) for e in new] == [
        ("bead.done", "refinery"),
        ("convoy.completed", "refinery"),
    ]
    with pytest.raises(IllegalTransition, match="completed"):
        await store.convoys.add("wave", [(await store.beads.add("late", actor=OP)).id], actor=OP)
    last = await store.events.last_id()
    await store.beads.apply(one.id, Action.REOPEN, actor=OP)
    reopened = await store.convoys.get("wave")
    assert (reopened.status, reopened.completed_at) == (ConvoyStatus.ACTIVE, "")
    assert [e.kind for e in await events_since(store, last)] == ["bead.reopen", "convoy.reopened"]


async def test_convoy_with_a_failed_bead_does_not_complete(store: Store) -> None:
    await with_roster(store)
    one = await store.beads.add("one", actor=OP)
    two = await store.beads.add("two", actor=OP)
    await store.convoys.create("wave", actor=OP)
    await store.convoys.add("wave", [one.id, two.id], actor=OP)
    await store.convoys.start("wave", actor=OP)
    await drive(store, one.id, BeadStatus.DONE)
    await drive(store, two.id, BeadStatus.FAILED)
    convoy = await store.convoys.get("wave")
    assert convoy.status is ConvoyStatus.ACTIVE
    assert (convoy.progress.done, convoy.progress.failed) == (1, 1)


async def test_convoy_started_with_all_beads_done_is_completed(store: Store) -> None:
    await with_roster(store)
    bead = await store.beads.add("early", actor=OP)
    await store.convoys.create("late", actor=OP)
    await store.convoys.add("late", [bead.id], actor=OP)
    await drive(store, bead.id, BeadStatus.DONE)
    started = await store.convoys.start("late", actor=OP)
    assert started.status is ConvoyStatus.COMPLETED


# ---- mail --------------------------------------------------------------------------------------


async def test_mail_send_list_and_unread(store: Store) -> None:
    m1 = await store.mail.send("operator", "alice", "hello", actor=OP, subject="hi")
    m2 = await store.mail.send("bob", "alice", "ping", actor="bob", urgent=True)
    m3 = await store.mail.send("alice", "bob", "pong", actor="alice")
    assert (m1.sender, m1.recipient, m1.body, m1.subject, m1.urgent) == (
        "operator",
        "alice",
        "hello",
        "hi",
        False,
    )
    assert m2.urgent
    assert not m1.is_read
    assert [m.id for m in await store.mail.find()] == [m3.id, m2.id, m1.id]
    assert [m.id for m in await store.mail.find(recipient="alice")] == [m2.id, m1.id]
    assert [m.id for m in await store.mail.find(sender="alice")] == [m3.id]
    assert [m.id for m in await store.mail.find(limit=1)] == [m3.id]
    assert await store.mail.unread_count() == 3
    assert await store.mail.unread_count("alice") == 2
    assert await store.mail.unread_count("nobody") == 0
    sent = await all_events(store, "mail.sent")
    assert [(e.actor, e.agent, e.data["id"]) for e in sent] == [
        (OP, "alice", m1.id),
        ("bob", "alice", m2.id),
        ("alice", "bob", m3.id),
    ]


async def test_mail_read_sets_receipt_once(store: Store, clock: StepClock) -> None:
    mail = await store.mail.send("operator", "alice", "hello", actor=OP)
    stamp = clock.peek()
    read = await store.mail.read(mail.id, actor="alice")
    assert read.read_at == stamp
    assert read.is_read
    again = await store.mail.read(mail.id, actor="alice")
    assert again.read_at == stamp
    events = await all_events(store, "mail.read")
    assert [(e.actor, e.agent, e.data) for e in events] == [("alice", "alice", {"id": mail.id})]
    assert await store.mail.unread_count("alice") == 0
    assert await store.mail.find(recipient="alice", unread_only=True) == []
    with pytest.raises(NotFound):
        await store.mail.read(404, actor=OP)
    with pytest.raises(NotFound):
        await store.mail.get(404)


@pytest.mark.parametrize(
    ("body", "subject"),
    [("", ""), ("   ", ""), ("x" * (1024 * 1024 + 1), ""), ("ok", "two\nlines"), ("ok", "s" * 201)],
)
async def test_mail_validation_writes_nothing(store: Store, body: str, subject: str) -> None:
    with pytest.raises(TundraError):
        await store.mail.send("a", "b", body, actor=OP, subject=subject)
    assert await store.mail.find() == []
    assert await all_events(store) == []


# ---- events ------------------------------------------------------------------------------------


async def test_events_are_append_only(store: Store) -> None:
    await store.beads.add("x", actor=OP)
    before = await all_events(store)
    assert len(before) == 1
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.db.conn.execute("UPDATE events SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await store.db.conn.execute("DELETE FROM events")
    assert await all_events(store) == before


async def test_event_queries(store: Store) -> None:
    await store.convoys.create("c1", actor=OP)
    bead = await store.beads.add("x", actor=OP)
    await store.convoys.add("c1", [bead.id], actor=OP)
    await store.mail.send("a", "zed", "hi", actor=OP)
    everything = await all_events(store)
    assert [e.kind for e in everything] == [
        "convoy.created",
        "bead.created",
        "convoy.bead_added",
        "mail.sent",
    ]
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert await store.events.last_id() == everything[-1].id
    assert [e.kind for e in await store.events.find(limit=2)] == ["convoy.bead_added", "mail.sent"]
    after = await store.events.find(after_id=everything[0].id, limit=2)
    assert [e.id for e in after] == [everything[1].id, everything[2].id]
    assert [e.kind for e in await store.events.find(bead_id=bead.id)] == [
        "bead.created",
        "convoy.bead_added",
    ]
    assert [e.kind for e in await store.events.find(agent="zed")] == ["mail.sent"]
    # `_` in a prefix is literal, not a LIKE wildcard.
    assert [e.kind for e in await store.events.find(kind_prefix="convoy.bead_")] == [
        "convoy.bead_added"
    ]
    assert await store.events.find(kind_prefix="convoy_") == []
    assert all(e.at.endswith("Z") for e in everything)


async def test_last_id_on_empty_log(store: Store) -> None:
    assert await store.events.last_id() == 0


# ---- agents ------------------------------------------------------------------------------------


async def test_sync_roster_inserts_updates_and_removes(store: Store) -> None:
    await with_roster(store)
    assert [a.name for a in await store.agents.all()] == ["alice", "bob", "carol"]
    bob = await store.agents.get("bob")
    assert (bob.role, bob.runtime, bob.model, bob.state) == (
        Role.POLECAT,
        Runtime.CLAUDE,
        "sonnet",
        AgentState.STOPPED,
    )
    assert [e.agent for e in await all_events(store, "agent.added")] == ["alice", "bob", "carol"]
    last = await store.events.last_id()
    await with_roster(store)  # unchanged: nothing written
    assert await store.events.last_id() == last
    changed = [
        RosterEntry("alice", Role.MAYOR, Runtime.DEMO),
        RosterEntry("bob", Role.POLECAT, Runtime.CLAUDE, model="opus"),
        RosterEntry("dave", Role.WITNESS, Runtime.GEMINI),
    ]
    await store.agents.sync_roster(changed, actor="config")
    assert [a.name for a in await store.agents.all()] == ["alice", "bob", "dave"]
    assert (await store.agents.get("alice")).role is Role.MAYOR
    assert (await store.agents.get("bob")).model == "opus"
    new = await events_since(store, last)
    assert sorted((e.kind, e.agent) for e in new) == [
        ("agent.added", "dave"),
        ("agent.changed", "alice"),
        ("agent.changed", "bob"),
        ("agent.removed", "carol"),
    ]
    assert all(e.actor == "config" for e in new)


async def test_sync_roster_keeps_live_and_busy_agents_out_of_sight(
    store: Store, db_path: Path
) -> None:
    await with_roster(store)
    await store.agents.set_state("alice", AgentState.WORKING, actor=OP, pid=123)
    bead = await store.beads.add("work", actor=OP)
    await drive(store, bead.id, BeadStatus.SLUNG, agent="bob")
    await store.agents.sync_roster([], actor=OP)
    assert await store.agents.all() == []
    with pytest.raises(NotFound):
        await store.agents.get("alice")
    assert sqlite_rows(db_path, "SELECT name FROM agents ORDER BY name") == [("alice",), ("bob",)]
    await store.agents.set_state("alice", AgentState.EXITED, actor=OP, exit_status=0)
    await store.beads.apply(bead.id, Action.DONE, actor=OP)
    await store.agents.sync_roster([], actor=OP)
    assert sqlite_rows(db_path, "SELECT name FROM agents") == []


async def test_set_state_logs_only_changes(store: Store) -> None:
    await with_roster(store)
    working = await store.agents.set_state(
        "alice",
        AgentState.WORKING,
        actor="detector",
        pid=42,
        evidence={"spinner": True},
        last_screen="$ make",
    )
    assert (working.state, working.pid) == (AgentState.WORKING, 42)
    await store.agents.set_state("alice", AgentState.WORKING, actor="detector", pid=42)
    assert await store.agents.last_screen("alice") == "$ make"
    await store.agents.set_state("alice", AgentState.FAILED, actor="supervisor", exit_status=1)
    failed = await store.agents.get("alice")
    assert (failed.state, failed.exit_status, failed.pid) == (AgentState.FAILED, 1, None)
    logged = await all_events(store, "agent.state")
    assert [(e.actor, e.data["from"], e.data["to"]) for e in logged] == [
        ("detector", "stopped", "working"),
        ("supervisor", "working", "failed"),
    ]
    assert logged[0].data["evidence"] == {"spinner": True}
    with pytest.raises(NotFound):
        await store.agents.set_state("mallory", AgentState.IDLE, actor=OP)
    with pytest.raises(NotFound):
        await store.agents.get("mallory")
    with pytest.raises(NotFound):
        await store.agents.last_screen("mallory")


async def test_ensure_removable(store: Store) -> None:
    await with_roster(store)
    await store.agents.ensure_removable("alice")
    await store.agents.ensure_removable("nobody")
    for state in (AgentState.IDLE, AgentState.AWAITING_APPROVAL, AgentState.UNKNOWN):
        await store.agents.set_state("alice", state, actor=OP)
        with pytest.raises(TundraError, match="'alice' is running"):
            await store.agents.ensure_removable("alice")
    await store.agents.set_state("alice", AgentState.STOPPED, actor=OP)
    one = await store.beads.add("one", actor=OP)
    two = await store.beads.add("two", actor=OP)
    await drive(store, one.id, BeadStatus.HOOKED, agent="alice")
    await drive(store, two.id, BeadStatus.REVIEW, agent="alice")
    assert await store.agents.held_beads("alice") == [one.id, two.id]
    with pytest.raises(TundraError, match=f"still holds #{one.id}, #{two.id}"):
        await store.agents.ensure_removable("alice")
    await store.beads.apply(one.id, Action.UNHOOK, actor=OP)
    await store.beads.apply(two.id, Action.DONE, actor=OP)
    await store.agents.ensure_removable("alice")


# ---- approvals ---------------------------------------------------------------------------------


async def test_approvals_request_pending_decide_once(store: Store, clock: StepClock) -> None:
    first = await store.approvals.request(
        agent="alice",
        runtime="claude",
        subject="rm -rf build",
        source=ApprovalSource.HOOK,
        actor="alice",
        tool="Bash",
        cwd="/w",
        evidence={"hook": "PreToolUse"},
    )
    second = await store.approvals.request(
        agent="bob", runtime="codex", subject="edit x.py", source=ApprovalSource.SCREEN, actor="b"
    )
    assert first.status is ApprovalStatus.PENDING
    assert (first.tool, first.cwd, first.evidence) == ("Bash", "/w", {"hook": "PreToolUse"})
    assert [a.id for a in await store.approvals.pending()] == [first.id, second.id]
    assert [a.id for a in await store.approvals.pending("bob")] == [second.id]
    stamp = clock.peek()
    decided = await store.approvals.decide(first.id, ApprovalStatus.APPROVED, actor=OP)
    assert (decided.status, decided.decided_at, decided.decided_by) == (
        ApprovalStatus.APPROVED,
        stamp,
        OP,
    )
    assert [a.id for a in await store.approvals.pending()] == [second.id]
    last = await store.events.last_id()
    with pytest.raises(IllegalTransition, match="already approved"):
        await store.approvals.decide(first.id, ApprovalStatus.DENIED, actor=OP)
    with pytest.raises(IllegalTransition):
        await store.approvals.decide(second.id, ApprovalStatus.PENDING, actor=OP)
    with pytest.raises(NotFound):
        await store.approvals.decide(404, ApprovalStatus.DENIED, actor=OP)
    assert await store.events.last_id() == last
    assert (await store.approvals.get(first.id)).status is ApprovalStatus.APPROVED
    kinds = [(e.kind, e.agent) for e in await all_events(store, "approval.")]
    assert kinds == [
        ("approval.requested", "alice"),
        ("approval.requested", "bob"),
        ("approval.approved", "alice"),
    ]


# ---- metrics -----------------------------------------------------------------------------------


def _sample(
    at: str, agent: str, model: str, cost: float, key: str = "", tokens: int = 10
) -> UsageSample:
    return UsageSample(
        at=at,
        agent=agent,
        model=model,
        runtime="claude",
        input_tokens=tokens,
        output_tokens=tokens * 2,
        cost_usd=cost,
        source_key=key,
    )


DAY1 = "2025-03-01T10:00:00.000000Z"
DAY1_LATE = "2025-03-01T23:59:59.999999Z"
DAY2 = "2025-03-02T08:00:00.000000Z"


async def test_metrics_record_is_idempotent_by_source_key(store: Store) -> None:
    batch = [
        _sample(DAY1, "alice", "opus", 1.0, "log:1"),
        _sample(DAY1, "bob", "opus", 2.0, "log:2"),
    ]
    assert await store.metrics.record(batch) == 2
    assert await store.metrics.record(batch) == 0
    assert await store.metrics.record([_sample(DAY1, "alice", "opus", 1.0)]) == 1
    assert await store.metrics.record([_sample(DAY1, "alice", "opus", 1.0)]) == 1
    assert await store.metrics.record([]) == 0
    assert await store.metrics.total_cost() == pytest.approx(5.0)


async def test_metrics_rollups_and_windows(store: Store) -> None:
    await store.metrics.record(
        [
            _sample(DAY1, "alice", "opus", 3.0, "k1", tokens=1),
            _sample(DAY1_LATE, "bob", "sonnet", 0.5, "k2", tokens=2),
            _sample(DAY2, "bob", "opus", 4.0, "k3", tokens=3),
            _sample(DAY2, "alice", "sonnet", 0.25, "k4", tokens=4),
        ]
    )
    by_agent = await store.metrics.rollup("agent")
    assert [(r.key, r.cost_usd, r.samples) for r in by_agent] == [
        ("bob", pytest.approx(4.5), 2),
        ("alice", pytest.approx(3.25), 2),
    ]
    assert (by_agent[0].input_tokens, by_agent[0].output_tokens) == (5, 10)
    by_model = await store.metrics.rollup("model")
    assert [(r.key, r.cost_usd) for r in by_model] == [
        ("opus", pytest.approx(7.0)),
        ("sonnet", pytest.approx(0.75)),
    ]
    by_day = await store.metrics.rollup("day")
    assert [(r.key, r.cost_usd) for r in by_day] == [
        ("2025-03-01", pytest.approx(3.5)),
        ("2025-03-02", pytest.approx(4.25)),
    ]
    (runtime,) = await store.metrics.rollup("runtime")
    assert (runtime.key, runtime.samples) == ("claude", 4)
    day2 = await store.metrics.rollup("agent", since="2025-03-02")
    assert [(r.key, r.cost_usd) for r in day2] == [("bob", 4.0), ("alice", 0.25)]
    assert await store.metrics.total_cost() == pytest.approx(7.75)
    assert await store.metrics.total_cost(since="2025-03-02") == pytest.approx(4.25)
    assert await store.metrics.total_cost(until="2025-03-02") == pytest.approx(3.5)
    assert await store.metrics.total_cost(since=DAY1, until=DAY1_LATE) == pytest.approx(3.0)
    assert await store.metrics.total_cost(since="2026") == 0.0
    with pytest.raises(ValueError, match="cannot group"):
        await store.metrics.rollup("bead; DROP TABLE metrics")


async def test_kpi_snapshots(store: Store) -> None:
    late = KpiSnapshot(at=DAY2, beads_active=3, agents_idle=2, cost_today_usd=1.5, tokens_today=9)
    early = KpiSnapshot(at=DAY1, beads_done=7, convoys_active=1)
    await store.metrics.snapshot(late)
    await store.metrics.snapshot(early)
    assert await store.metrics.snapshots() == [early, late]
    assert await store.metrics.snapshots(since="2025-03-02") == [late]
    assert await store.metrics.snapshots(limit=1) == [early]


# ---- locking and concurrency -------------------------------------------------------------------


async def test_locked_database_fails_fast_and_writes_nothing(db_path: Path) -> None:
    async with await open_store(db_path, busy_timeout_ms=200) as locked:
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(StoreLocked) as info:
                await locked.beads.add("blocked write", actor=OP)
            elapsed = time.monotonic() - started
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert 0.15 <= elapsed <= 2.0
        message = str(info.value)
        assert "locked" in message
        assert "\n" not in message
        assert str(db_path) in message
        assert await locked.beads.find() == []
        assert await all_events(locked) == []
        # The connection is usable again once the lock is gone.
        assert (await locked.beads.add("later", actor=OP)).title == "later"


async def test_concurrent_writes_on_one_store(store: Store) -> None:
    beads = await asyncio.gather(*(store.beads.add(f"t{i}", actor=OP) for i in range(5)))
    assert sorted(b.title for b in beads) == [f"t{i}" for i in range(5)]


# ---- ready work: the store's SQL against the domain's definition -------------------------------


class CoarseClock:
    """Advances only every third read, so several beads share a created_at."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return T0 + timedelta(seconds=self.reads // 3)


async def _random_town(store: Store, rng: random.Random) -> None:
    await with_roster(store)
    convoys = []
    for name in ("red", "green", "blue"):
        convoys.append(await store.convoys.create(name, actor=OP))
    ids: list[int] = []
    for i in range(24):
        blockers = rng.sample(ids, k=min(len(ids), rng.choice([0, 0, 1, 2])))
        bead = await store.beads.add(
            f"bead {i}",
            actor=OP,
            lane=rng.choice(list(Lane)),
            priority=rng.randint(0, 4),
            blocked_by=blockers,
        )
        ids.append(bead.id)
    for bead_id in ids:
        if rng.random() < 0.4:
            await store.convoys.add(rng.choice(convoys).name, [bead_id], actor=OP)
    for convoy in convoys:
        plan = rng.choice(["pending", "active", "paused"])
        if plan != "pending" and (await store.convoys.get(convoy.name)).bead_ids:
            await store.convoys.start(convoy.name, actor=OP)
            if plan == "paused":
                await store.convoys.pause(convoy.name, actor=OP)
    targets = [BeadStatus.BACKLOG] * 4 + [BeadStatus.DONE] * 3 + list(BeadStatus)
    for bead_id in ids:
        target = rng.choice(targets)
        agent = rng.choice(ROSTER).name
        with contextlib.suppress(IllegalTransition):  # blocked: it stays where it got to
            await drive(store, bead_id, target, agent=agent)


@pytest.mark.parametrize("seed", range(4))
async def test_ready_sql_matches_domain_ready_work(db_path: Path, seed: int) -> None:
    async with await open_store(db_path, clock=CoarseClock()) as town:
        await _random_town(town, random.Random(seed))
        beads = await town.beads.find()
        active = frozenset(
            c.id for c in await town.convoys.all() if c.status is ConvoyStatus.ACTIVE
        )
        expected = ready_work(beads, active_convoys=active)
        backlog = [b for b in beads if b.status is BeadStatus.BACKLOG]
        assert expected, "the generated town should have ready work"
        assert len(expected) < len(backlog), "and backlog that is not ready"
        for limit in (1, 3, 10, 1000):
            assert await town.beads.ready(limit=limit) == expected[:limit]
        # claim_next always takes the head of the domain's queue.
        for _ in range(3):
            head = ready_work(await town.beads.find(), active_convoys=active)
            claimed = await town.beads.claim_next("carol", actor=OP)
            assert (claimed.id if claimed else None) == (head[0].id if head else None)


@pytest.mark.parametrize("yields", range(4))
async def test_a_cancelled_read_or_write_leaves_the_connection_usable(
    store: Store, yields: int
) -> None:
    """Textual cancels an exclusive worker wherever it waits, even while BEGIN is queued."""
    for start in (store.beads.find, lambda: store.beads.add("x", actor=OP)):
        task = asyncio.ensure_future(start())
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.beads.add("after", actor=OP)
        assert (await store.beads.counts())[BeadStatus.BACKLOG] >= 1
