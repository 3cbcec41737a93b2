"""Notes on beads: what an agent (or the operator) learnt, kept across hand-overs."""

from __future__ import annotations

import sqlite3

from tundra_tui.domain.beads import BeadNote, format_bead_id
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event

MAX_NOTE = 16 * 1024
"""A note is a few lines; a bead's description holds the long text."""
EXCERPT = 200
"""Characters of a note kept in its event, so `at events` reads without a second query."""


def _note_from_row(row: sqlite3.Row) -> BeadNote:
    return BeadNote(
        id=row["id"],
        bead_id=row["bead_id"],
        author=row["author"],
        body=row["body"],
        created_at=row["created_at"],
    )


def validate_note(body: str) -> str:
    """Notes are non-empty and bounded; surrounding blank lines are dropped."""
    cleaned = body.strip()
    if not cleaned:
        raise TundraError("a note needs a non-empty text (-m TEXT)")
    if len(cleaned) > MAX_NOTE:
        raise TundraError(f"a note exceeds {MAX_NOTE} characters ({len(cleaned)})")
    return cleaned


class NoteRepo:
    """Adding and listing a bead's notes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, bead_id: int, author: str, body: str, *, actor: str) -> BeadNote:
        """Keep a note on the bead (event `bead.note`); it also counts as the agent's last
        report on its open dispatch, which resets the witness's idle clock."""
        body = validate_note(body)
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute("SELECT 1 FROM beads WHERE id = ?", (bead_id,)) as cursor:
                if await cursor.fetchone() is None:
                    raise NotFound(f"no bead {format_bead_id(bead_id)}")
            async with conn.execute(
                "INSERT INTO bead_notes (bead_id, author, body, created_at) VALUES (?, ?, ?, ?) "
                "RETURNING id",
                (bead_id, author, body, now),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            note_id = int(row[0])
            await conn.execute(
                "UPDATE dispatches SET reported_at = ? WHERE bead_id = ? AND state != 'closed'",
                (now, bead_id),
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="bead.note",
                bead_id=bead_id,
                agent=author,
                data={"note": note_id, "author": author, "excerpt": body[:EXCERPT]},
            )
        return BeadNote(id=note_id, bead_id=bead_id, author=author, body=body, created_at=now)

    async def for_bead(self, bead_id: int) -> list[BeadNote]:
        """The bead's notes, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM bead_notes WHERE bead_id = ? ORDER BY id", (bead_id,)
        )
        return [_note_from_row(row) for row in rows]
