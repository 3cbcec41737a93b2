"""Dispatches in SQLite: each hand-over of a bead to an agent, one transaction per step.

The steps a hand-over takes (claim → slung → delivered, or given back) are each one
`BEGIN IMMEDIATE` with its events, awaited directly (never through the daemon's
fire-and-forget writer). A crash between two steps leaves an open row that
`recover` gives back at the next start; the partial unique indexes (one open
dispatch per bead, one per agent) make a second sling impossible whatever happens.
"""

from __future__ import annotations

import contextlib

import aiosqlite

from tundra_tui.domain.beads import Action, BeadStatus, format_bead_id
from tundra_tui.domain.clock import parse_iso
from tundra_tui.domain.dispatch import Dispatch, DispatchKind
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.store.beads import _READY_WHERE, BeadRepo
from tundra_tui.store.db import Database
from tundra_tui.store.dispatch_rows import (
    DISPATCH_COLUMNS,
    close_open_dispatch,
    dispatch_from_row,
    open_dispatch_for_bead,
)
from tundra_tui.store.events import append_event

_READY_AT = """max(
    b.created_at,
    coalesce((SELECT max(x.done_at) FROM bead_deps d JOIN beads x ON x.id = d.blocker_id
              WHERE d.bead_id = b.id), ''),
    coalesce((SELECT c.started_at FROM convoys c WHERE c.id = b.convoy_id), ''),
    coalesce((SELECT max(p.closed_at) FROM dispatches p WHERE p.bead_id = b.id), ''))"""
"""When bead `b` became ready work: created, its last blocker done, its convoy started, or
its last dispatch given back, whichever came last (the dispatch-latency figure's start)."""


class DispatchRepo:
    """Claiming, slinging, delivering and giving back beads, and reading dispatches."""

    def __init__(self, db: Database, beads: BeadRepo) -> None:
        self.db = db
        self.beads = beads

    # ---- reading -------------------------------------------------------------------------

    async def _rows(self, where: str, params: tuple[object, ...] = ()) -> list[Dispatch]:
        rows = await self.db.fetchall(
            f"SELECT {DISPATCH_COLUMNS} FROM dispatches WHERE {where} ORDER BY id", params
        )
        return [dispatch_from_row(row) for row in rows]

    async def get(self, dispatch_id: int) -> Dispatch:
        found = await self._rows("id = ?", (dispatch_id,))
        if not found:
            raise NotFound(f"no dispatch {dispatch_id}")
        return found[0]

    async def open(self) -> list[Dispatch]:
        """Every open dispatch, oldest first."""
        return await self._rows("state != 'closed'")

    async def open_for_agent(self, agent: str) -> Dispatch | None:
        found = await self._rows("agent = ? AND state != 'closed'", (agent,))
        return found[0] if found else None

    async def open_for_bead(self, bead_id: int) -> Dispatch | None:
        found = await self._rows("bead_id = ? AND state != 'closed'", (bead_id,))
        return found[0] if found else None

    async def history(self, bead_id: int) -> list[Dispatch]:
        """Every dispatch of the bead, oldest first."""
        return await self._rows("bead_id = ?", (bead_id,))

    async def last_for_bead(self, bead_id: int) -> Dispatch | None:
        found = await self.history(bead_id)
        return found[-1] if found else None

    # ---- the hand-over's steps -----------------------------------------------------------

    async def claim(
        self,
        bead_id: int,
        agent: str,
        *,
        kind: DispatchKind,
        actor: str,
        manual: bool = False,
    ) -> Dispatch | None:
        """Hook the bead to `agent` and open its dispatch, in one transaction.

        Dispatch's own claims (`manual` False) take only ready work, and only while the
        town is up and dispatch not paused (read in the same transaction, so a pause is
        final once it returns); they return None when the bead is not ready any more, a
        switch refuses, or the agent already holds an open dispatch. A manual claim (`at
        sling`) takes a backlog or escalated bead whose blockers are done, or one already
        hooked to that agent, and raises saying why when it cannot.
        """
        now = self.db.now()
        async with self.db.write() as conn:
            await self.beads._require_agent(conn, agent)
            if not manual and not await _dispatch_allowed(conn):
                return None
            held = await _open_for_agent(conn, agent)
            if held is not None:
                if not manual:
                    return None
                raise TundraError(
                    f"{agent} is already working on {format_bead_id(held.bead_id)}; "
                    "it takes one bead at a time"
                )
            if manual:
                dispatch = await self._claim_by_hand(conn, bead_id, agent, kind, actor, now)
                dispatch_id = dispatch.id
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="dispatch.claimed",
                    bead_id=bead_id,
                    agent=agent,
                    data={"dispatch": dispatch_id, "kind": kind.value, "manual": True},
                )
                return await self._get_in(conn, dispatch_id)
            async with conn.execute(
                "UPDATE beads SET status = 'hooked', assignee = ?, hooked_at = ?, updated_at = ? "
                f"WHERE id = (SELECT b.id FROM beads b WHERE b.id = ? AND {_READY_WHERE}) "
                "AND status = 'backlog' RETURNING id, convoy_id",
                (agent, now, now, bead_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            ready_at = await _ready_at(conn, bead_id)
            dispatch_id = await _insert(conn, bead_id, agent, kind, ready_at or now, now)
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="bead.hook",
                bead_id=bead_id,
                agent=agent,
                data={
                    "from": "backlog",
                    "to": "hooked",
                    "assignee": agent,
                    "claim": True,
                    "dispatch": dispatch_id,
                },
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="dispatch.claimed",
                bead_id=bead_id,
                agent=agent,
                data={"dispatch": dispatch_id, "kind": kind.value, "ready_at": ready_at},
            )
            return await self._get_in(conn, dispatch_id)

    async def _claim_by_hand(
        self,
        conn: aiosqlite.Connection,
        bead_id: int,
        agent: str,
        kind: DispatchKind,
        actor: str,
        now: str,
    ) -> Dispatch:
        row = await self.beads._current(conn, bead_id)
        status = BeadStatus(row["status"])
        ready_at = await _ready_at(conn, bead_id) or now
        # Refused before the index would: the message says who has it.
        if await open_dispatch_for_bead(conn, bead_id) is not None:
            holder = row["assignee"] or "an agent"
            raise TundraError(f"{format_bead_id(bead_id)} is already being handed to {holder}")
        if status is BeadStatus.HOOKED and row["assignee"] == agent:
            return await self._get_in(
                conn, await _insert(conn, bead_id, agent, kind, ready_at, now)
            )
        if status not in (BeadStatus.BACKLOG, BeadStatus.ESCALATED):
            holder = f" (held by {row['assignee']})" if row["assignee"] else ""
            raise IllegalTransition(
                f"{format_bead_id(bead_id)} is {status.value}{holder}: only a backlog or "
                "escalated bead, or one hooked to that agent, can be slung"
            )
        dispatch_id = await _insert(conn, bead_id, agent, kind, ready_at, now)
        await self.beads._apply(
            conn,
            bead_id,
            Action.HOOK,
            actor=actor,
            agent=agent,
            data={"claim": True, "dispatch": dispatch_id},
        )
        return await self._get_in(conn, dispatch_id)

    async def slung(self, dispatch_id: int, *, branch: str, worktree: str, actor: str) -> Dispatch:
        """The bead goes hooked → slung on `branch` just before its prompt is typed; raises
        IllegalTransition if the bead left the agent meanwhile (or the dispatch closed)."""
        now = self.db.now()
        async with self.db.write() as conn:
            dispatch = await self._get_in(conn, dispatch_id)
            row = await self.beads._current(conn, dispatch.bead_id)
            ref = format_bead_id(dispatch.bead_id)
            if not dispatch.is_open or row["assignee"] != dispatch.agent:
                raise IllegalTransition(f"{ref} is no longer {dispatch.agent}'s to work on")
            if BeadStatus(row["status"]) is BeadStatus.HOOKED:
                await self.beads._apply(
                    conn,
                    dispatch.bead_id,
                    Action.SLING,
                    actor=actor,
                    agent=dispatch.agent,
                    data={"dispatch": dispatch_id, "branch": branch},
                )
            elif BeadStatus(row["status"]) is not BeadStatus.SLUNG:
                raise IllegalTransition(f"{ref} is {row['status']}, not hooked to {dispatch.agent}")
            if branch:
                await conn.execute("UPDATE beads SET branch = ? WHERE id = ?", (branch, row["id"]))
            await conn.execute(
                "UPDATE dispatches SET state = 'slung', branch = ?, worktree = ?, slung_at = ? "
                "WHERE id = ? AND state = 'claimed'",
                (branch, worktree, now, dispatch_id),
            )
            return await self._get_in(conn, dispatch_id)

    async def delivered(
        self, dispatch_id: int, *, attempts: int, evidence: str, actor: str
    ) -> Dispatch:
        """The work prompt was taken: event `dispatch.delivered` with the latency since the
        bead became ready. The times are kept even if the agent already reported (closed)."""
        now = self.db.now()
        async with self.db.write() as conn:
            dispatch = await self._get_in(conn, dispatch_id)
            await conn.execute(
                "UPDATE dispatches SET delivered_at = ?, attempts = ?, "
                "state = CASE state WHEN 'closed' THEN 'closed' ELSE 'delivered' END "
                "WHERE id = ? AND delivered_at = ''",
                (now, attempts, dispatch_id),
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="dispatch.delivered",
                bead_id=dispatch.bead_id,
                agent=dispatch.agent,
                data={
                    "dispatch": dispatch_id,
                    "attempts": attempts,
                    "evidence": evidence[:200],
                    "latency_s": _seconds_between(dispatch.ready_at, now),
                },
            )
            return await self._get_in(conn, dispatch_id)

    async def give_back(self, dispatch_id: int, *, reason: str, actor: str) -> Dispatch | None:
        """Return the bead to backlog (its branch and notes kept) and close the dispatch as
        `returned`; None if it was closed already (the agent reported first)."""
        async with self.db.write() as conn:
            return await self._give_back(conn, dispatch_id, reason=reason, actor=actor)

    async def _give_back(
        self, conn: aiosqlite.Connection, dispatch_id: int, *, reason: str, actor: str
    ) -> Dispatch | None:
        now = self.db.now()
        dispatch = await self._get_in(conn, dispatch_id)
        if not dispatch.is_open:
            return None
        closed = await close_open_dispatch(
            conn, dispatch.bead_id, outcome="returned", reason=reason, now=now
        )
        row = await self.beads._current(conn, dispatch.bead_id)
        status = BeadStatus(row["status"])
        if status in (BeadStatus.HOOKED, BeadStatus.SLUNG) and row["assignee"] == dispatch.agent:
            await self.beads._apply(
                conn,
                dispatch.bead_id,
                Action.RETURN,
                actor=actor,
                reason=reason,
                data={"dispatch": dispatch_id, "from_agent": dispatch.agent},
            )
        await append_event(
            conn,
            at=now,
            actor=actor,
            kind="dispatch.returned",
            bead_id=dispatch.bead_id,
            agent=dispatch.agent,
            data={"dispatch": dispatch_id, "reason": reason, "state": dispatch.state.value},
        )
        return closed

    async def recover(self, *, reason: str, actor: str) -> list[Dispatch]:
        """Give back every open dispatch (at daemon start: agents died with the last one),
        in one transaction."""
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT id FROM dispatches WHERE state != 'closed' ORDER BY id"
            ) as cursor:
                ids = [int(row[0]) for row in await cursor.fetchall()]
            returned = []
            for dispatch_id in ids:
                closed = await self._give_back(conn, dispatch_id, reason=reason, actor=actor)
                if closed is not None:
                    returned.append(closed)
            return returned

    async def nudged(self, dispatch_id: int, *, actor: str, reason: str) -> Dispatch:
        """Count one reminder to the agent (event `witness.nudged`)."""
        now = self.db.now()
        async with self.db.write() as conn:
            await conn.execute(
                "UPDATE dispatches SET nudges = nudges + 1 WHERE id = ?", (dispatch_id,)
            )
            dispatch = await self._get_in(conn, dispatch_id)
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="witness.nudged",
                bead_id=dispatch.bead_id,
                agent=dispatch.agent,
                data={"dispatch": dispatch_id, "nudges": dispatch.nudges, "reason": reason},
            )
            return dispatch

    async def _get_in(self, conn: aiosqlite.Connection, dispatch_id: int) -> Dispatch:
        async with conn.execute(
            f"SELECT {DISPATCH_COLUMNS} FROM dispatches WHERE id = ?", (dispatch_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no dispatch {dispatch_id}")
        return dispatch_from_row(row)


async def _dispatch_allowed(conn: aiosqlite.Connection) -> bool:
    async with conn.execute(
        "SELECT count(*) FROM town_flags WHERE (key = 'up' AND value = '1') "
        "OR (key = 'dispatch_paused' AND value = '0')"
    ) as cursor:
        row = await cursor.fetchone()
    return row is not None and int(row[0]) == 2


async def _open_for_agent(conn: aiosqlite.Connection, agent: str) -> Dispatch | None:
    async with conn.execute(
        f"SELECT {DISPATCH_COLUMNS} FROM dispatches WHERE agent = ? AND state != 'closed'",
        (agent,),
    ) as cursor:
        row = await cursor.fetchone()
    return dispatch_from_row(row) if row is not None else None


async def _ready_at(conn: aiosqlite.Connection, bead_id: int) -> str:
    async with conn.execute(f"SELECT {_READY_AT} FROM beads b WHERE b.id = ?", (bead_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no bead {format_bead_id(bead_id)}")
    return str(row[0] or "")


async def _insert(
    conn: aiosqlite.Connection,
    bead_id: int,
    agent: str,
    kind: DispatchKind,
    ready_at: str,
    now: str,
) -> int:
    async with conn.execute(
        "INSERT INTO dispatches (bead_id, agent, kind, ready_at, claimed_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (bead_id, agent, kind.value, ready_at, now),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _seconds_between(start: str, end: str) -> float | None:
    with contextlib.suppress(ValueError):
        return round((parse_iso(end) - parse_iso(start)).total_seconds(), 3)
    return None
