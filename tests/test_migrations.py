"""Upgrading a database that already holds work, and the invariants migrations add."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

import pytest

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, BeadStatus, Grade, Lane, allowed_actions
from tundra_tui.domain.errors import TundraError
from tundra_tui.store import RosterEntry, open_store
from tundra_tui.store import db as db_module
from tundra_tui.store.schema import MIGRATIONS, SCHEMA_VERSION


def _real_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM beads GROUP BY status").fetchall())
    finally:
        conn.close()


async def test_a_v1_database_with_work_is_upgraded_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "town.db"
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:1])
        patch.setattr(db_module, "SCHEMA_VERSION", 1)
        store = await open_store(path)
        async with store.db.write() as conn:  # as a v1 build wrote its agents
            await conn.execute(
                "INSERT INTO agents (name, role, runtime, created_at, updated_at) "
                "VALUES ('a', 'crew', 'demo', '', '')"
            )
        # Beads as a v1 build wrote them, in its own SQL: today's code knows later columns.
        async with store.db.write() as conn:
            for n in range(12):
                await conn.execute(
                    "INSERT INTO beads (title, lane, created_at, updated_at) VALUES (?, ?, '', '')",
                    (f"bead {n}", Lane.CRITICAL.value),
                )
            for bead_id in (1, 2, 3):
                await conn.execute(
                    "UPDATE beads SET status = 'done', assignee = 'a', done_at = ? WHERE id = ?",
                    (f"2026-01-01T00:00:0{bead_id}Z", bead_id),
                )
        assert await store.db.schema_version() == 1
        await store.close()

    store = await open_store(path)
    try:
        assert await store.db.schema_version() == SCHEMA_VERSION
        counts = await store.beads.counts()
        assert counts[BeadStatus.DONE] == 3 and counts[BeadStatus.BACKLOG] == 9
        board = {column.status: column for column in await store.beads.kanban(per_column=2)}
        assert [b.id for b in board[BeadStatus.DONE].beads] == [3, 2]
        assert board[BeadStatus.DONE].count == 3
        assert len(await store.beads.find()) == 12, "no bead lost in the upgrade"
        assert [a.name for a in await store.agents.all()] == ["a"], "its agents still listed"
    finally:
        await store.close()


async def test_trigger_kept_counts_always_equal_a_real_count(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    store = await open_store(path)
    rng = random.Random(7)
    try:
        await store.agents.sync_roster([RosterEntry("a", Role.CREW, Runtime.DEMO)], actor="t")
        for n in range(40):
            await store.beads.add(f"b{n}", actor="t")
        for _ in range(300):
            bead = rng.randint(1, 40)
            current = (await store.beads.get(bead)).status
            action = rng.choice(allowed_actions(current))
            with contextlib.suppress(TundraError):  # refused moves must leave counts right too
                await store.beads.apply(bead, action, actor="t", agent="a")
            counts = {s.value: n for s, n in (await store.beads.counts()).items() if n}
            assert counts == _real_counts(path)
    finally:
        await store.close()


async def test_a_v3_town_with_work_and_mail_is_upgraded_to_v4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "town.db"
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:3])
        patch.setattr(db_module, "SCHEMA_VERSION", 3)
        store = await open_store(path)
        await store.agents.sync_roster([RosterEntry("a", Role.POLECAT, Runtime.DEMO)], actor="t")
        async with store.db.write() as conn:  # a slung bead and mail as a v3 build wrote them
            await conn.execute(
                "INSERT INTO beads (title, status, assignee, created_at, updated_at) "
                "VALUES ('slung before the upgrade', 'slung', 'a', '', '')"
            )
            await conn.execute(
                "INSERT INTO mail (sender, recipient, body, created_at, read_at) "
                "VALUES ('operator', 'a', 'old and read', '', 'then'), "
                "('operator', 'a', 'old and unread', '', '')"
            )
        assert await store.db.schema_version() == 3
        await store.close()

    store = await open_store(path)
    try:
        assert await store.db.schema_version() == SCHEMA_VERSION >= 4
        kept = await store.beads.get(1)
        assert kept.status is BeadStatus.SLUNG and kept.assignee == "a"
        assert await store.dispatches.open() == []
        flags = await store.flags.get()
        assert not flags.up and not flags.paused
        unread = await store.mail.undelivered("a", 10)
        assert [m.body for m in unread] == ["old and unread"]
        assert all(m.delivered_at == "" for m in await store.mail.find(recipient="a"))
        assert await store.agents.wanted() == []
        # A bead slung before v4 has no dispatch; moving it on works as before.
        await store.beads.apply(1, Action.SUBMIT, actor="a")
        assert (await store.beads.get(1)).status is BeadStatus.REVIEW
    finally:
        await store.close()


async def test_a_v4_town_is_upgraded_to_v5_and_review_beads_are_graded_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "town.db"
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:4])
        patch.setattr(db_module, "SCHEMA_VERSION", 4)
        store = await open_store(path)
        async with store.db.write() as conn:  # beads as a v4 build wrote them
            await conn.execute(
                "INSERT INTO beads (title, status, assignee, branch, created_at, updated_at) "
                "VALUES ('in review', 'review', 'a', 'polecat/a/1', 't0', 't1'), "
                "('done by hand', 'done', 'a', '', 't0', 't2'), "
                "('open', 'backlog', '', '', 't0', 't0')"
            )
        await store.close()

    store = await open_store(path)
    try:
        assert await store.db.schema_version() == SCHEMA_VERSION >= 5
        review, done, backlog = [await store.beads.get(i) for i in (1, 2, 3)]
        assert (review.grade, review.submitted_at, review.branch) == (
            Grade.SUBMITTED,
            "t1",
            "polecat/a/1",
        )
        assert done.grade is Grade.NONE and done.merged_commit == ""
        assert backlog.grade is Grade.NONE and backlog.title == "open"
        assert [q.bead.id for q in await store.merges.queue()] == [1]
        flags = await store.flags.get()
        assert not flags.refinery_paused
    finally:
        await store.close()
