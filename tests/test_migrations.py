"""Upgrading a database that already holds work, and the invariants migrations add."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

import pytest

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import BeadStatus, Lane, allowed_actions
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
        for n in range(12):
            await store.beads.add(f"bead {n}", actor="t", lane=Lane.CRITICAL)
        # Done as a v1 build left it, in its own SQL: today's code knows later columns.
        async with store.db.write() as conn:
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
