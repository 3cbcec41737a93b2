"""The append-only audit log. Other repositories append inside their own transactions."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import aiosqlite

from tundra_tui.domain.events import Event
from tundra_tui.store.db import Database
from tundra_tui.store.hours import WEEKDAY_HOUR, HourCell


async def append_event(
    conn: aiosqlite.Connection,
    *,
    at: str,
    actor: str,
    kind: str,
    bead_id: int | None = None,
    agent: str = "",
    convoy_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Record one state change in the caller's open write transaction."""
    await conn.execute(
        "INSERT INTO events (at, actor, kind, bead_id, agent, convoy_id, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, actor, kind, bead_id, agent, convoy_id, json.dumps(data or {}, sort_keys=True)),
    )


def event_from_row(row: sqlite3.Row) -> Event:
    """Build an Event from an `events` row."""
    return Event(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        kind=row["kind"],
        bead_id=row["bead_id"],
        agent=row["agent"],
        convoy_id=row["convoy_id"],
        data=json.loads(row["data"]),
    )


class EventRepo:
    """Reading the audit log, newest last."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def find(
        self,
        *,
        after_id: int = 0,
        limit: int = 100,
        bead_id: int | None = None,
        agent: str | None = None,
        kind_prefix: str | None = None,
    ) -> list[Event]:
        """Events with id above `after_id`; with no `after_id`, the most recent `limit`."""
        clauses = ["id > ?"]
        params: list[object] = [after_id]
        if bead_id is not None:
            clauses.append("bead_id = ?")
            params.append(bead_id)
        if agent is not None:
            clauses.append("agent = ?")
            params.append(agent)
        if kind_prefix:
            clauses.append("kind LIKE ? ESCAPE '\\'")
            escaped = kind_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(escaped + "%")
        where = " AND ".join(clauses)
        if after_id:
            sql = f"SELECT * FROM events WHERE {where} ORDER BY id LIMIT ?"
        else:
            sql = (
                f"SELECT * FROM (SELECT * FROM events WHERE {where} ORDER BY id DESC LIMIT ?) "
                "ORDER BY id"
            )
        params.append(limit)
        return [event_from_row(row) for row in await self.db.fetchall(sql, tuple(params))]

    async def record(
        self,
        kind: str,
        *,
        actor: str,
        agent: str = "",
        bead_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append an event that belongs to no other table's change (e.g. an agent's hook)."""
        async with self.db.write() as conn:
            await append_event(
                conn,
                at=self.db.now(),
                actor=actor,
                kind=kind,
                agent=agent,
                bead_id=bead_id,
                data=data,
            )

    async def last_id(self) -> int:
        """The id of the newest event, 0 if there is none."""
        row = await self.db.fetchone("SELECT coalesce(max(id), 0) FROM events")
        return int(row[0]) if row is not None else 0

    async def by_hour(self, *, since: str) -> list[HourCell]:
        """Events per weekday and hour (UTC) since `since`, aggregated in SQL."""
        rows = await self.db.fetchall(
            f"SELECT {WEEKDAY_HOUR}, count(*) FROM events WHERE at >= ? "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            (since,),
        )
        return [HourCell(int(r[0]), int(r[1]), int(r[2]), 0.0) for r in rows]
