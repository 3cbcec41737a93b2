"""Dispatch rows read and closed inside another repository's transaction.

`BeadRepo._apply` closes a bead's open dispatch whenever the bead leaves the agent
(submitted, failed, escalated, done, unhooked), so every path that moves a bead (the
CLI, the TUI, an agent's report) closes it in the same transaction. This module is
what both `store.beads` and `store.dispatches` import, so neither imports the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from tundra_tui.domain.dispatch import Dispatch, DispatchKind, DispatchState

DISPATCH_COLUMNS = (
    "id, bead_id, agent, kind, state, outcome, reason, branch, worktree, ready_at, "
    "claimed_at, slung_at, delivered_at, closed_at, attempts, nudges, reported_at"
)
"""What every dispatch read selects, in `dispatch_from_row`'s order."""


def dispatch_from_row(row: Sequence[Any] | sqlite3.Row) -> Dispatch:
    (
        dispatch_id, bead_id, agent, kind, state, outcome, reason, branch, worktree, ready_at,
        claimed_at, slung_at, delivered_at, closed_at, attempts, nudges, reported_at,
    ) = tuple(row)  # fmt: skip
    return Dispatch(
        id=dispatch_id,
        bead_id=bead_id,
        agent=agent,
        kind=DispatchKind(kind),
        state=DispatchState(state),
        outcome=outcome,
        reason=reason,
        branch=branch,
        worktree=worktree,
        ready_at=ready_at,
        claimed_at=claimed_at,
        slung_at=slung_at,
        delivered_at=delivered_at,
        closed_at=closed_at,
        attempts=attempts,
        nudges=nudges,
        reported_at=reported_at,
    )


async def open_dispatch_for_bead(conn: aiosqlite.Connection, bead_id: int) -> Dispatch | None:
    """The bead's open dispatch (at most one: the partial unique index), in `conn`."""
    async with conn.execute(
        f"SELECT {DISPATCH_COLUMNS} FROM dispatches WHERE bead_id = ? AND state != 'closed'",
        (bead_id,),
    ) as cursor:
        row = await cursor.fetchone()
    return dispatch_from_row(row) if row is not None else None


async def close_open_dispatch(
    conn: aiosqlite.Connection, bead_id: int, *, outcome: str, reason: str, now: str
) -> Dispatch | None:
    """Close the bead's open dispatch, if any, with `outcome`; return it as closed."""
    async with conn.execute(
        "UPDATE dispatches SET state = 'closed', outcome = ?, reason = ?, closed_at = ? "
        f"WHERE bead_id = ? AND state != 'closed' RETURNING {DISPATCH_COLUMNS}",
        (outcome, reason, now, bead_id),
    ) as cursor:
        row = await cursor.fetchone()
    return dispatch_from_row(row) if row is not None else None


async def open_delivered(
    conn: aiosqlite.Connection,
    bead_id: int,
    agent: str,
    *,
    kind: DispatchKind,
    branch: str,
    worktree: str,
    now: str,
) -> int:
    """Open a dispatch already `delivered` (its prompt is a mail, e.g. a rework from the
    refinery), so the mailroom, which waits for delivered dispatches, types it at once.
    The partial unique indexes refuse a second open dispatch for the bead or the agent."""
    async with conn.execute(
        "INSERT INTO dispatches (bead_id, agent, kind, state, branch, worktree, ready_at, "
        "claimed_at, slung_at, delivered_at) VALUES (?, ?, ?, 'delivered', ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (bead_id, agent, kind.value, branch, worktree, now, now, now, now),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
