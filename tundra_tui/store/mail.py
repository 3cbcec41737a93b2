"""Mail in SQLite, with read receipts."""

from __future__ import annotations

import sqlite3

from tundra_tui.domain.errors import NotFound
from tundra_tui.domain.mail import Mail, validate_body, validate_subject
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


def _mail_from_row(row: sqlite3.Row) -> Mail:
    return Mail(
        id=row["id"],
        sender=row["sender"],
        recipient=row["recipient"],
        subject=row["subject"],
        body=row["body"],
        urgent=bool(row["urgent"]),
        created_at=row["created_at"],
        read_at=row["read_at"],
    )


class MailRepo:
    """Sending, listing and reading messages. Reading sets the receipt once."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(
        self,
        sender: str,
        recipient: str,
        body: str,
        *,
        actor: str,
        subject: str = "",
        urgent: bool = False,
    ) -> Mail:
        """Store a message for `recipient` (checked by the caller against the roster)."""
        validate_body(body)
        validate_subject(subject)
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "INSERT INTO mail (sender, recipient, subject, body, urgent, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (sender, recipient, subject, body, int(urgent), now),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="mail.sent",
                agent=recipient,
                data={"id": row[0], "from": sender, "to": recipient, "urgent": urgent},
            )
        return await self.get(int(row[0]))

    async def get(self, mail_id: int) -> Mail:
        """One message, or NotFound."""
        row = await self.db.fetchone("SELECT * FROM mail WHERE id = ?", (mail_id,))
        if row is None:
            raise NotFound(f"no message {mail_id}")
        return _mail_from_row(row)

    async def find(
        self,
        *,
        recipient: str | None = None,
        sender: str | None = None,
        unread_only: bool = False,
        limit: int = 200,
    ) -> list[Mail]:
        """Messages, newest first."""
        clauses: list[str] = []
        params: list[object] = []
        if recipient is not None:
            clauses.append("recipient = ?")
            params.append(recipient)
        if sender is not None:
            clauses.append("sender = ?")
            params.append(sender)
        if unread_only:
            clauses.append("read_at = ''")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.db.fetchall(
            f"SELECT * FROM mail {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [_mail_from_row(row) for row in rows]

    async def unread_count(self, recipient: str | None = None) -> int:
        """Unread messages, for one recipient or everyone."""
        if recipient is None:
            row = await self.db.fetchone("SELECT count(*) FROM mail WHERE read_at = ''")
        else:
            row = await self.db.fetchone(
                "SELECT count(*) FROM mail WHERE read_at = '' AND recipient = ?", (recipient,)
            )
        return int(row[0]) if row is not None else 0

    async def read(self, mail_id: int, *, actor: str) -> Mail:
        """Return a message and set its read receipt if this is the first read."""
        now = self.db.now()
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "UPDATE mail SET read_at = ? WHERE id = ? AND read_at = ''", (now, mail_id)
            )
            if cursor.rowcount:
                async with conn.execute(
                    "SELECT recipient FROM mail WHERE id = ?", (mail_id,)
                ) as cur:
                    row = await cur.fetchone()
                assert row is not None
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="mail.read",
                    agent=row[0],
                    data={"id": mail_id},
                )
        return await self.get(mail_id)
