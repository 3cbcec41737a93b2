"""Convoys in SQLite: creation, membership, start and pause, progress."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable

import aiosqlite

from tundra_tui.domain.beads import BeadStatus, Grade, format_bead_id
from tundra_tui.domain.convoys import (
    Convoy,
    ConvoyStatus,
    convoy_progress,
    convoy_transition,
    validate_convoy_name,
)
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


async def settle_convoy(
    conn: aiosqlite.Connection, convoy_id: int, *, actor: str, now: str
) -> None:
    """Complete an active convoy whose beads are all done; reopen one that no longer is.

    Runs inside the caller's write transaction after anything that changes a
    member bead's status or the convoy's own status.
    """
    async with conn.execute("SELECT status FROM convoys WHERE id = ?", (convoy_id,)) as cur:
        convoy = await cur.fetchone()
    if convoy is None:
        return
    async with conn.execute(
        "SELECT status, grade FROM beads WHERE convoy_id = ?", (convoy_id,)
    ) as cur:
        progress = convoy_progress((BeadStatus(r[0]), Grade(r[1])) for r in await cur.fetchall())
    status = ConvoyStatus(convoy[0])
    if status is ConvoyStatus.ACTIVE and progress.is_complete:
        await conn.execute(
            "UPDATE convoys SET status = 'completed', completed_at = ? WHERE id = ?",
            (now, convoy_id),
        )
        await append_event(
            conn,
            at=now,
            actor=actor,
            kind="convoy.completed",
            convoy_id=convoy_id,
            data={"beads": progress.total},
        )
    elif status is ConvoyStatus.COMPLETED and not progress.is_complete:
        await conn.execute(
            "UPDATE convoys SET status = 'active', completed_at = '' WHERE id = ?", (convoy_id,)
        )
        await append_event(
            conn,
            at=now,
            actor=actor,
            kind="convoy.reopened",
            convoy_id=convoy_id,
            data={"done": progress.done, "beads": progress.total},
        )


class ConvoyRepo:
    """Convoys are addressed by name on the command line, or by numeric id."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _resolve(self, ref: str | int) -> sqlite3.Row:
        text = str(ref).removeprefix("#")
        row = await self.db.fetchone("SELECT * FROM convoys WHERE name = ?", (text,))
        if row is None and text.isdigit():
            row = await self.db.fetchone("SELECT * FROM convoys WHERE id = ?", (int(text),))
        if row is None:
            raise NotFound(f"no convoy {ref!r} (see `at convoy list`)")
        return row

    async def _build(self, rows: list[sqlite3.Row]) -> list[Convoy]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        marks = ",".join("?" * len(ids))
        members: dict[int, list[tuple[int, BeadStatus, Grade]]] = defaultdict(list)
        for convoy_id, bead_id, status, grade in await self.db.fetchall(
            f"SELECT convoy_id, id, status, grade FROM beads WHERE convoy_id IN ({marks}) "
            "ORDER BY id",
            tuple(ids),
        ):
            members[convoy_id].append((bead_id, BeadStatus(status), Grade(grade)))
        return [
            Convoy(
                id=row["id"],
                name=row["name"],
                status=ConvoyStatus(row["status"]),
                description=row["description"],
                created_at=row["created_at"],
                started_at=row["started_at"],
                completed_at=row["completed_at"],
                progress=convoy_progress((s, g) for _, s, g in members[row["id"]]),
                bead_ids=tuple(bead_id for bead_id, _, _ in members[row["id"]]),
            )
            for row in rows
        ]

    async def get(self, ref: str | int) -> Convoy:
        """One convoy by name or id, with its progress."""
        return (await self._build([await self._resolve(ref)]))[0]

    async def all(self) -> list[Convoy]:
        """Every convoy, oldest first."""
        return await self._build(await self.db.fetchall("SELECT * FROM convoys ORDER BY id"))

    async def create(self, name: str, *, actor: str, description: str = "") -> Convoy:
        """A new pending convoy; names are unique."""
        validate_convoy_name(name)
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute("SELECT 1 FROM convoys WHERE name = ?", (name,)) as cursor:
                if await cursor.fetchone() is not None:
                    raise TundraError(f"convoy {name!r} already exists")
            async with conn.execute(
                "INSERT INTO convoys (name, description, created_at) VALUES (?, ?, ?) RETURNING id",
                (name, description, now),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="convoy.created",
                convoy_id=row[0],
                data={"name": name},
            )
        return await self.get(name)

    async def add(self, ref: str | int, bead_ids: Iterable[int], *, actor: str) -> Convoy:
        """Put beads into a convoy. A bead belongs to at most one convoy."""
        convoy = await self._resolve(ref)
        ids = sorted(set(bead_ids))
        if not ids:
            raise TundraError("name at least one bead to add")
        if ConvoyStatus(convoy["status"]) is ConvoyStatus.COMPLETED:
            raise IllegalTransition(f"convoy {convoy['name']!r} is completed; reopen a bead first")
        now = self.db.now()
        async with self.db.write() as conn:
            marks = ",".join("?" * len(ids))
            async with conn.execute(
                f"SELECT id, convoy_id FROM beads WHERE id IN ({marks})", ids
            ) as cursor:
                found = {row[0]: row[1] for row in await cursor.fetchall()}
            missing = [format_bead_id(i) for i in ids if i not in found]
            if missing:
                raise NotFound(f"no bead {', '.join(missing)}")
            elsewhere = [format_bead_id(i) for i in ids if found[i] not in (None, convoy["id"])]
            if elsewhere:
                raise TundraError(f"{', '.join(elsewhere)} already in another convoy")
            new = [i for i in ids if found[i] is None]
            await conn.executemany(
                "UPDATE beads SET convoy_id = ?, updated_at = ? WHERE id = ?",
                [(convoy["id"], now, i) for i in new],
            )
            for bead_id in new:
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="convoy.bead_added",
                    bead_id=bead_id,
                    convoy_id=convoy["id"],
                    data={"convoy": convoy["name"]},
                )
        return await self.get(convoy["id"])

    async def _move(self, ref: str | int, verb: str, *, actor: str) -> Convoy:
        convoy = await self._resolve(ref)
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT status FROM convoys WHERE id = ?", (convoy["id"],)
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            status = ConvoyStatus(row[0])
            target = convoy_transition(status, verb)
            started = ", started_at = :now" if verb == "start" and not convoy["started_at"] else ""
            await conn.execute(
                f"UPDATE convoys SET status = :target{started} WHERE id = :id",
                {"target": target.value, "now": now, "id": convoy["id"]},
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind=f"convoy.{verb}",
                convoy_id=convoy["id"],
                data={"from": status.value, "to": target.value},
            )
            await settle_convoy(conn, convoy["id"], actor=actor, now=now)
        return await self.get(convoy["id"])

    async def start(self, ref: str | int, *, actor: str) -> Convoy:
        """Release a convoy's beads into ready work."""
        convoy = await self.get(ref)
        if not convoy.bead_ids:
            raise IllegalTransition(f"convoy {convoy.name!r} has no beads; `at convoy add` first")
        return await self._move(ref, "start", actor=actor)

    async def pause(self, ref: str | int, *, actor: str) -> Convoy:
        """Hold a convoy's remaining backlog beads out of ready work."""
        return await self._move(ref, "pause", actor=actor)
