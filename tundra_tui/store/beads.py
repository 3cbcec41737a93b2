"""Beads in SQLite: creation, transitions, dependencies, ready work and the atomic claim."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from tundra_tui.domain.beads import (
    ACTIONS_CLEARING_ASSIGNEE,
    ACTIONS_NEEDING_ASSIGNEE,
    GRADE_AFTER,
    KANBAN_COLUMNS,
    PRIORITY_DEFAULT,
    Action,
    Bead,
    BeadStatus,
    Grade,
    Lane,
    format_bead_id,
    transition,
    validate_description,
    validate_label,
    validate_priority,
    validate_title,
)
from tundra_tui.domain.dispatch import OUTCOME_FOR
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.store.convoys import settle_convoy
from tundra_tui.store.db import Database
from tundra_tui.store.dispatch_rows import close_open_dispatch
from tundra_tui.store.events import append_event

_UNBLOCKED = """NOT EXISTS (
    SELECT 1 FROM bead_deps d JOIN beads x ON x.id = d.blocker_id
    WHERE d.bead_id = b.id AND x.status != 'done')"""
_CONVOY_STARTED = """(b.convoy_id IS NULL OR EXISTS (
    SELECT 1 FROM convoys c WHERE c.id = b.convoy_id AND c.status = 'active'))"""
_READY_WHERE = f"b.status = 'backlog' AND {_UNBLOCKED} AND {_CONVOY_STARTED}"
_QUEUE_ORDER = "b.lane_rank, b.priority, b.created_at, b.id"

_STAMP_FOR = {
    BeadStatus.HOOKED: "hooked_at",
    BeadStatus.SLUNG: "slung_at",
    BeadStatus.DONE: "done_at",
    BeadStatus.REVIEW: "submitted_at",
}


@dataclass(frozen=True, slots=True)
class KanbanColumn:
    """One column of the board: how many beads it holds and the first few, in queue order."""

    status: BeadStatus
    count: int
    beads: tuple[Bead, ...]


_COLUMNS = (
    "b.id, b.title, b.status, b.lane, b.priority, b.description, b.assignee, b.convoy_id, "
    "b.branch, b.created_at, b.updated_at, b.hooked_at, b.slung_at, b.done_at, "
    "b.grade, b.merged_commit, b.submitted_at"
)
"""What every bead read selects, in `_bead_from_row`'s order (positional is much faster)."""
_STATUS = {status.value: status for status in BeadStatus}
_LANE = {lane.value: lane for lane in Lane}
_GRADE = {grade.value: grade for grade in Grade}


def _bead_from_row(
    row: Sequence[Any], labels: Sequence[str] = (), blocked_by: Sequence[int] = ()
) -> Bead:
    (
        bead_id, title, status, lane, priority, description, assignee, convoy_id,
        branch, created_at, updated_at, hooked_at, slung_at, done_at,
        grade, merged_commit, submitted_at,
    ) = row  # fmt: skip
    return Bead(
        id=bead_id,
        title=title,
        status=_STATUS[status],
        lane=_LANE[lane],
        priority=priority,
        description=description,
        assignee=assignee,
        convoy_id=convoy_id,
        branch=branch,
        created_at=created_at,
        updated_at=updated_at,
        hooked_at=hooked_at,
        slung_at=slung_at,
        done_at=done_at,
        grade=_GRADE[grade],
        merged_commit=merged_commit,
        submitted_at=submitted_at,
        labels=tuple(labels),
        blocked_by=tuple(blocked_by),
    )


class BeadRepo:
    """All reads and writes of beads. Every write appends its event in the same transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- reading -------------------------------------------------------------------------

    async def _hydrate(self, conn: aiosqlite.Connection, rows: Sequence[sqlite3.Row]) -> list[Bead]:
        """Attach labels and blockers to bead rows with one round trip."""
        if not rows:
            return []
        ids = [row[0] for row in rows]
        marks = ",".join("?" * len(ids))
        labels: dict[int, list[str]] = defaultdict(list)
        blockers: dict[int, list[int]] = defaultdict(list)
        for kind, bead_id, value in await conn.execute_fetchall(
            f"SELECT 0, bead_id, label FROM bead_labels WHERE bead_id IN ({marks}) "
            f"UNION ALL SELECT 1, bead_id, blocker_id FROM bead_deps WHERE bead_id IN ({marks}) "
            "ORDER BY 1, 2, 3",
            ids + ids,
        ):
            if kind == 0:
                labels[bead_id].append(value)
            else:
                blockers[bead_id].append(value)
        return [_bead_from_row(row, labels[row[0]], blockers[row[0]]) for row in rows]

    async def _select(self, sql: str, params: Iterable[object] = ()) -> list[Bead]:
        async with self.db.read() as conn:
            async with conn.execute(sql, tuple(params)) as cursor:
                rows = list(await cursor.fetchall())
            return await self._hydrate(conn, rows)

    async def get(self, bead_id: int) -> Bead:
        """One bead, or NotFound."""
        beads = await self._select(f"SELECT {_COLUMNS} FROM beads b WHERE id = ?", (bead_id,))
        if not beads:
            raise NotFound(f"no bead {format_bead_id(bead_id)}")
        return beads[0]

    async def find(
        self,
        *,
        status: BeadStatus | None = None,
        assignee: str | None = None,
        lane: Lane | None = None,
        convoy_id: int | None = None,
        label: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Bead]:
        """Beads matching every given filter, in queue order."""
        clauses: list[str] = []
        params: list[object] = []
        if status is not None:
            clauses.append("b.status = ?")
            params.append(status.value)
        if assignee is not None:
            clauses.append("b.assignee = ?")
            params.append(assignee)
        if lane is not None:
            clauses.append("b.lane = ?")
            params.append(lane.value)
        if convoy_id is not None:
            clauses.append("b.convoy_id = ?")
            params.append(convoy_id)
        if label is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM bead_labels l WHERE l.bead_id = b.id AND l.label = ?)"
            )
            params.append(label)
        if search:
            clauses.append(
                "(instr(casefold(b.title), ?) > 0 OR instr(casefold(b.description), ?) > 0)"
            )
            params.extend([search.casefold(), search.casefold()])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_COLUMNS} FROM beads b {where} ORDER BY {_QUEUE_ORDER}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return await self._select(sql, params)

    async def ready(self, limit: int = 50) -> list[Bead]:
        """Ready work: backlog beads nothing unfinished blocks, by lane, priority and age."""
        return await self._select(
            f"SELECT {_COLUMNS} FROM beads b WHERE {_READY_WHERE} ORDER BY {_QUEUE_ORDER} LIMIT ?",
            (limit,),
        )

    async def counts(self) -> dict[BeadStatus, int]:
        """How many beads are in each status (every status present, zero if empty)."""
        rows = await self.db.fetchall("SELECT status, n FROM bead_counts")
        counts = dict.fromkeys(BeadStatus, 0)
        counts.update({BeadStatus(status): n for status, n in rows})
        return counts

    async def kanban(self, per_column: int = 50) -> list[KanbanColumn]:
        """The board: per column its count and first `per_column` beads; failed, escalated last.

        Done shows the most recently finished first; the other columns are in queue
        order. One snapshot, three round trips, whatever the size of the town.
        """
        statuses = (*KANBAN_COLUMNS, BeadStatus.FAILED, BeadStatus.ESCALATED)
        parts = []
        params: list[object] = []
        for status in statuses:
            order = "done_at DESC, id DESC" if status is BeadStatus.DONE else _QUEUE_ORDER
            parts.append(
                f"SELECT * FROM (SELECT {_COLUMNS} FROM beads b WHERE b.status = ? "
                f"ORDER BY {order} LIMIT ?)"
            )
            params.extend([status.value, per_column])
        async with self.db.read() as conn:
            counts = {
                BeadStatus(status): n
                for status, n in await conn.execute_fetchall("SELECT status, n FROM bead_counts")
            }
            rows = list(await conn.execute_fetchall(" UNION ALL ".join(parts), params))
            beads = await self._hydrate(conn, rows)
        by_status: dict[BeadStatus, list[Bead]] = defaultdict(list)
        for bead in beads:
            by_status[bead.status].append(bead)
        return [
            KanbanColumn(status, counts.get(status, 0), tuple(by_status[status]))
            for status in statuses
        ]

    async def finished_since(self, since: str) -> list[tuple[str, float]]:
        """When each bead finished since `since` and its cycle time in hours (created to done).

        Read through the done index; throughput and cycle-time charts are built from it.
        """
        rows = await self.db.fetchall(
            "SELECT done_at, (julianday(done_at) - julianday(created_at)) * 24 FROM beads "
            "WHERE status = 'done' AND done_at >= ? ORDER BY done_at",
            (since,),
        )
        return [(str(r[0]), max(0.0, float(r[1] or 0.0))) for r in rows]

    async def blockers_of(self, bead_id: int) -> list[Bead]:
        """The beads that block `bead_id`, finished or not."""
        return await self._select(
            f"SELECT {_COLUMNS} FROM bead_deps d JOIN beads b ON b.id = d.blocker_id "
            f"WHERE d.bead_id = ? ORDER BY {_QUEUE_ORDER}",
            (bead_id,),
        )

    async def dependents_of(self, bead_id: int) -> list[Bead]:
        """The beads that `bead_id` blocks."""
        return await self._select(
            f"SELECT {_COLUMNS} FROM bead_deps d JOIN beads b ON b.id = d.bead_id "
            f"WHERE d.blocker_id = ? ORDER BY {_QUEUE_ORDER}",
            (bead_id,),
        )

    async def blocked_ids(self) -> set[int]:
        """Ids of the beads that wait on at least one unfinished blocker (cards mark them)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT d.bead_id FROM bead_deps d JOIN beads x ON x.id = d.blocker_id "
            "WHERE x.status != 'done'"
        )
        return {int(row[0]) for row in rows}

    # ---- writing -------------------------------------------------------------------------

    async def add(
        self,
        title: str,
        *,
        actor: str,
        description: str = "",
        lane: Lane = Lane.STANDARD,
        priority: int = PRIORITY_DEFAULT,
        labels: Iterable[str] = (),
        blocked_by: Iterable[int] = (),
    ) -> Bead:
        """Create a backlog bead, with its labels and blockers, in one transaction."""
        title = validate_title(title)
        description = validate_description(description)
        validate_priority(priority)
        clean_labels = sorted({validate_label(label) for label in labels})
        blockers = sorted(set(blocked_by))
        now = self.db.now()
        async with self.db.write() as conn:
            await self._require_exist(conn, blockers)
            async with conn.execute(
                "INSERT INTO beads (title, description, lane, priority, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (title, description, lane.value, priority, now, now),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            bead_id = int(row[0])
            await conn.executemany(
                "INSERT INTO bead_labels (bead_id, label) VALUES (?, ?)",
                [(bead_id, label) for label in clean_labels],
            )
            await conn.executemany(
                "INSERT INTO bead_deps (bead_id, blocker_id) VALUES (?, ?)",
                [(bead_id, blocker) for blocker in blockers],
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="bead.created",
                bead_id=bead_id,
                data={"title": title, "lane": lane.value, "priority": priority},
            )
        return await self.get(bead_id)

    async def _require_exist(self, conn: aiosqlite.Connection, ids: Sequence[int]) -> None:
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        async with conn.execute(f"SELECT id FROM beads WHERE id IN ({marks})", ids) as cursor:
            found = {row[0] for row in await cursor.fetchall()}
        missing = [format_bead_id(i) for i in ids if i not in found]
        if missing:
            raise NotFound(f"no bead {', '.join(missing)}")

    async def _current(self, conn: aiosqlite.Connection, bead_id: int) -> sqlite3.Row:
        async with conn.execute("SELECT * FROM beads WHERE id = ?", (bead_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no bead {format_bead_id(bead_id)}")
        return row

    async def edit(
        self,
        bead_id: int,
        *,
        actor: str,
        title: str | None = None,
        description: str | None = None,
        lane: Lane | None = None,
        priority: int | None = None,
        branch: str | None = None,
        add_labels: Iterable[str] = (),
        remove_labels: Iterable[str] = (),
    ) -> Bead:
        """Change a bead's fields (not its status); records what changed from what."""
        changes: dict[str, object] = {}
        if title is not None:
            changes["title"] = validate_title(title)
        if description is not None:
            changes["description"] = validate_description(description)
        if lane is not None:
            changes["lane"] = lane.value
        if priority is not None:
            changes["priority"] = validate_priority(priority)
        if branch is not None:
            changes["branch"] = branch
        adding = sorted({validate_label(label) for label in add_labels})
        removing = sorted({label.strip() for label in remove_labels})
        now = self.db.now()
        async with self.db.write() as conn:
            row = await self._current(conn, bead_id)
            before = {key: row[key] for key in changes}
            if changes:
                assignments = ", ".join(f"{key} = ?" for key in changes)
                await conn.execute(
                    f"UPDATE beads SET {assignments}, updated_at = ? WHERE id = ?",
                    (*changes.values(), now, bead_id),
                )
            await conn.executemany(
                "INSERT OR IGNORE INTO bead_labels (bead_id, label) VALUES (?, ?)",
                [(bead_id, label) for label in adding],
            )
            await conn.executemany(
                "DELETE FROM bead_labels WHERE bead_id = ? AND label = ?",
                [(bead_id, label) for label in removing],
            )
            if changes or adding or removing:
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="bead.edited",
                    bead_id=bead_id,
                    data={
                        "before": before,
                        "after": changes,
                        "labels_added": adding,
                        "labels_removed": removing,
                    },
                )
        return await self.get(bead_id)

    async def block(self, bead_id: int, blocker_id: int, *, actor: str) -> Bead:
        """Make `blocker_id` block `bead_id`, refusing anything that would close a cycle."""
        if bead_id == blocker_id:
            raise TundraError(f"{format_bead_id(bead_id)} cannot block itself")
        async with self.db.write() as conn:
            await self._require_exist(conn, [bead_id, blocker_id])
            # Does bead_id already (transitively) block blocker_id?
            async with conn.execute(
                "WITH RECURSIVE up(id) AS (SELECT ? UNION "
                "SELECT d.blocker_id FROM bead_deps d JOIN up ON d.bead_id = up.id) "
                "SELECT 1 FROM up WHERE id = ? LIMIT 1",
                (blocker_id, bead_id),
            ) as cursor:
                if await cursor.fetchone() is not None:
                    raise TundraError(
                        f"{format_bead_id(blocker_id)} cannot block {format_bead_id(bead_id)}: "
                        f"{format_bead_id(bead_id)} already blocks {format_bead_id(blocker_id)} "
                        "(that would be a cycle)"
                    )
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO bead_deps (bead_id, blocker_id) VALUES (?, ?)",
                (bead_id, blocker_id),
            )
            if cursor.rowcount:
                await self._touched(conn, bead_id, "bead.blocked", actor, {"blocker": blocker_id})
        return await self.get(bead_id)

    async def unblock(self, bead_id: int, blocker_id: int, *, actor: str) -> Bead:
        """Remove a dependency; removing one that does not exist is an error."""
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "DELETE FROM bead_deps WHERE bead_id = ? AND blocker_id = ?",
                (bead_id, blocker_id),
            )
            if not cursor.rowcount:
                await self._require_exist(conn, [bead_id, blocker_id])
                raise NotFound(
                    f"{format_bead_id(blocker_id)} does not block {format_bead_id(bead_id)}"
                )
            await self._touched(conn, bead_id, "bead.unblocked", actor, {"blocker": blocker_id})
        return await self.get(bead_id)

    async def _touched(
        self,
        conn: aiosqlite.Connection,
        bead_id: int,
        kind: str,
        actor: str,
        data: dict[str, object],
    ) -> None:
        """Stamp a bead as changed and log why, inside the caller's transaction."""
        now = self.db.now()
        await conn.execute("UPDATE beads SET updated_at = ? WHERE id = ?", (now, bead_id))
        await append_event(conn, at=now, actor=actor, kind=kind, bead_id=bead_id, data=data)

    async def apply(
        self,
        bead_id: int,
        action: Action,
        *,
        actor: str,
        agent: str | None = None,
        reason: str = "",
    ) -> Bead:
        """Move a bead along one legal edge of the state machine, or raise saying why not."""
        async with self.db.write() as conn:
            await self._apply(conn, bead_id, action, actor=actor, agent=agent, reason=reason)
        return await self.get(bead_id)

    async def sling(self, bead_id: int, agent: str, *, actor: str) -> Bead:
        """Hand a bead to `agent` and start the work, hooking it first if it is still open."""
        async with self.db.write() as conn:
            row = await self._current(conn, bead_id)
            status = BeadStatus(row["status"])
            if status in (BeadStatus.BACKLOG, BeadStatus.ESCALATED):
                await self._apply(conn, bead_id, Action.HOOK, actor=actor, agent=agent)
            elif status is BeadStatus.HOOKED and row["assignee"] != agent:
                raise IllegalTransition(
                    f"{format_bead_id(bead_id)} is hooked to {row['assignee']}, not {agent}; "
                    f"run `at sling {bead_id} {row['assignee']}` or unhook it first"
                )
            await self._apply(conn, bead_id, Action.SLING, actor=actor, agent=agent)
        return await self.get(bead_id)

    async def _apply(
        self,
        conn: aiosqlite.Connection,
        bead_id: int,
        action: Action,
        *,
        actor: str,
        agent: str | None = None,
        reason: str = "",
        data: dict[str, object] | None = None,
    ) -> None:
        """One legal edge in the caller's transaction, with its event (`data` added to it).
        A bead leaving its agent (any target but hooked or slung) closes its open dispatch
        here, so every path that moves a bead closes it."""
        row = await self._current(conn, bead_id)
        status = BeadStatus(row["status"])
        target = transition(status, action)
        assignee: str = row["assignee"]
        if action in ACTIONS_NEEDING_ASSIGNEE:
            if not agent:
                raise IllegalTransition(f"{action.value} needs an agent to hold the bead")
            await self._require_agent(conn, agent)
            await self._require_unblocked(conn, bead_id)
            assignee = agent
        elif action in ACTIONS_CLEARING_ASSIGNEE:
            assignee = ""
        now = self.db.now()
        stamp = _STAMP_FOR.get(target)
        extra = f", {stamp} = :now" if stamp else ""
        if target is BeadStatus.BACKLOG:
            extra += ", hooked_at = '', slung_at = '', done_at = ''"
        grade = GRADE_AFTER.get(action)
        if grade is not None:
            extra += f", grade = '{grade.value}'"
            if grade is Grade.NONE:
                extra += ", merged_commit = ''"
        cursor = await conn.execute(
            f"UPDATE beads SET status = :target, assignee = :assignee, updated_at = :now{extra} "
            "WHERE id = :id AND status = :status",
            {
                "target": target.value,
                "assignee": assignee,
                "now": now,
                "id": bead_id,
                "status": status.value,
            },
        )
        if cursor.rowcount != 1:
            raise IllegalTransition(f"{format_bead_id(bead_id)} changed while it was being moved")
        event: dict[str, object] = {**(data or {}), "from": status.value, "to": target.value}
        if assignee:
            event["assignee"] = assignee
        if reason:
            event["reason"] = reason
        if target not in (BeadStatus.HOOKED, BeadStatus.SLUNG):
            outcome = "unhooked" if action is Action.UNHOOK else OUTCOME_FOR.get(target, "")
            closed = await close_open_dispatch(
                conn, bead_id, outcome=outcome, reason=reason, now=now
            )
            if closed is not None:
                event["dispatch"] = closed.id
        await append_event(
            conn,
            at=now,
            actor=actor,
            kind=f"bead.{action.value}",
            bead_id=bead_id,
            agent=assignee,
            data=event,
        )
        if row["convoy_id"] is not None:
            await settle_convoy(conn, int(row["convoy_id"]), actor=actor, now=now)

    async def _require_agent(self, conn: aiosqlite.Connection, agent: str) -> None:
        # A removed agent (kept only for the history of its work) takes no new work.
        async with conn.execute(
            "SELECT 1 FROM agents WHERE name = ? AND removed_at = ''", (agent,)
        ) as cursor:
            if await cursor.fetchone() is None:
                raise NotFound(f"no agent {agent!r} (see `at agent list`)")

    async def _require_unblocked(self, conn: aiosqlite.Connection, bead_id: int) -> None:
        async with conn.execute(
            "SELECT x.id, x.status FROM bead_deps d JOIN beads x ON x.id = d.blocker_id "
            "WHERE d.bead_id = ? AND x.status != 'done' ORDER BY x.id",
            (bead_id,),
        ) as cursor:
            open_blockers = list(await cursor.fetchall())
        if open_blockers:
            names = ", ".join(f"{format_bead_id(r[0])} ({r[1]})" for r in open_blockers)
            raise IllegalTransition(f"{format_bead_id(bead_id)} is blocked by {names}")

    async def claim(self, bead_id: int, agent: str, *, actor: str) -> Bead:
        """Hook one specific bead to `agent` in a single atomic statement.

        The `WHERE` re-checks status and blockers inside the UPDATE, so of two
        racing claimers exactly one gets a row back.
        """
        now = self.db.now()
        async with self.db.write() as conn:
            await self._require_agent(conn, agent)
            async with conn.execute(
                "UPDATE beads SET status = 'hooked', assignee = ?, hooked_at = ?, updated_at = ? "
                f"WHERE id = (SELECT b.id FROM beads b WHERE b.id = ? AND {_READY_WHERE}) "
                "AND status = 'backlog' RETURNING id",
                (agent, now, now, bead_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                current = await self._current(conn, bead_id)
                status = BeadStatus(current["status"])
                if status is not BeadStatus.BACKLOG:
                    holder = f" by {current['assignee']}" if current["assignee"] else ""
                    raise IllegalTransition(
                        f"{format_bead_id(bead_id)} is already {status.value}{holder}"
                    )
                await self._require_unblocked(conn, bead_id)
                raise IllegalTransition(
                    f"{format_bead_id(bead_id)} belongs to a convoy that has not been started"
                )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="bead.hook",
                bead_id=bead_id,
                agent=agent,
                data={"from": "backlog", "to": "hooked", "assignee": agent, "claim": True},
            )
        return await self.get(bead_id)

    async def claim_next(self, agent: str, *, actor: str) -> Bead | None:
        """Hook the first ready bead to `agent` atomically; None when nothing is ready."""
        now = self.db.now()
        async with self.db.write() as conn:
            await self._require_agent(conn, agent)
            async with conn.execute(
                "UPDATE beads SET status = 'hooked', assignee = ?, hooked_at = ?, updated_at = ? "
                "WHERE id = (SELECT b.id FROM beads b WHERE "
                f"{_READY_WHERE} ORDER BY {_QUEUE_ORDER} LIMIT 1) AND status = 'backlog' "
                "RETURNING id",
                (agent, now, now),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            bead_id = int(row[0])
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="bead.hook",
                bead_id=bead_id,
                agent=agent,
                data={"from": "backlog", "to": "hooked", "assignee": agent, "claim": True},
            )
        return await self.get(bead_id)
