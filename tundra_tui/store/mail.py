"""Mail in SQLite, with read receipts, and its delivery into agents between turns.

A delivery reserves the messages it types (`delivery_id`) before typing, and sets the
receipt only once the agent took them. If the daemon dies in between, the next start
decides from the agent's own events whether the batch was taken (`recover_deliveries`),
so a batch is never delivered twice unless the agent did not take it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import aiosqlite

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
        delivered_at=row["delivered_at"],
    )


_TAKEN_HOOKS = ("UserPromptSubmit", "PreToolUse", "PostToolUse")
_TAKEN_STATES = ("working", "awaiting_approval")
_EVIDENCE = f"""
    SELECT kind, json_extract(data, '$.to'), json_extract(data, '$.event') FROM events
    WHERE agent = ? AND id > ? AND (
        (kind = 'agent.state' AND json_extract(data, '$.to') IN {_TAKEN_STATES})
        OR (kind = 'agent.hook' AND (
            json_extract(data, '$.event') IN {_TAKEN_HOOKS}
            OR (json_extract(data, '$.event') = 'Stop'
                AND json_extract(data, '$.stop_hook_active'))))
    ) ORDER BY id LIMIT 1"""
"""The first sign, after a delivery began, that the agent took input: it went to work (or
asked an approval), or a hook said it had a prompt, used a tool, or stopped again after
a Stop hook handed it the mail."""


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

    # ---- delivery between turns -------------------------------------------------------

    async def undelivered(self, recipient: str, limit: int) -> list[Mail]:
        """Unread mail to `recipient` no delivery holds, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM mail WHERE recipient = ? AND read_at = '' AND delivered_at = '' "
            "AND delivery_id IS NULL ORDER BY id LIMIT ?",
            (recipient, limit),
        )
        return [_mail_from_row(row) for row in rows]

    async def begin_delivery(self, recipient: str, ids: Sequence[int], *, via: str) -> int | None:
        """Reserve these messages for one delivery (all or none); its id, or None if any is
        read, delivered or reserved already. Noted with the newest event id, from which
        `recover_deliveries` looks for evidence."""
        wanted = sorted(set(ids))
        if not wanted:
            return None
        now = self.db.now()
        marks = ",".join("?" * len(wanted))
        async with self.db.write() as conn:
            async with conn.execute(
                f"SELECT count(*) FROM mail WHERE id IN ({marks}) AND recipient = ? "
                "AND read_at = '' AND delivered_at = '' AND delivery_id IS NULL",
                (*wanted, recipient),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None or int(row[0]) != len(wanted):
                return None
            async with conn.execute(
                "INSERT INTO deliveries (agent, via, started_at, after_event) "
                "VALUES (?, ?, ?, (SELECT coalesce(max(id), 0) FROM events)) RETURNING id",
                (recipient, via, now),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            delivery = int(row[0])
            await conn.execute(
                f"UPDATE mail SET delivery_id = ? WHERE id IN ({marks})", (delivery, *wanted)
            )
        return delivery

    async def delivery_taken(self, did: int, *, actor: str, evidence: str) -> list[Mail]:
        """The agent took the batch: receipts set (`read_at`, `delivered_at`), event
        `mail.delivered`. Returns the messages, or [] if the delivery was settled before."""
        async with self.db.write() as conn:
            return await _settle_taken(conn, did, actor=actor, evidence=evidence, now=self.db.now())

    async def delivery_not_taken(self, did: int, *, reason: str, actor: str = "daemon") -> None:
        """The agent did not take the batch: its messages are free for the next idle turn
        (event `mail.undelivered` with the reason)."""
        async with self.db.write() as conn:
            await _release(conn, did, reason=reason, actor=actor, now=self.db.now())

    async def recover_deliveries(self, *, actor: str) -> tuple[list[int], list[int]]:
        """Settle every delivery a dead daemon left open: taken where the agent's events
        after it began show it took input, released otherwise. Returns (taken, released)
        delivery ids."""
        taken: list[int] = []
        released: list[int] = []
        async with self.db.write() as conn:
            now = self.db.now()
            async with conn.execute(
                "SELECT id, agent, after_event FROM deliveries WHERE outcome = '' ORDER BY id"
            ) as cursor:
                pending = list(await cursor.fetchall())
            for did, agent, after in pending:
                async with conn.execute(_EVIDENCE, (agent, after)) as cursor:
                    sign = await cursor.fetchone()
                if sign is not None:
                    kind, to, event = sign
                    evidence = f"after restart: {kind} {to or event}"
                    await _settle_taken(conn, did, actor=actor, evidence=evidence, now=now)
                    taken.append(did)
                else:
                    reason = "daemon restarted; no sign the agent took it"
                    await _release(conn, did, reason=reason, actor=actor, now=now)
                    released.append(did)
        return taken, released


async def _delivery(conn: aiosqlite.Connection, did: int) -> tuple[str, str, list[int]] | None:
    """(agent, via, message ids) of an unsettled delivery, or None if settled or unknown."""
    async with conn.execute(
        "SELECT agent, via FROM deliveries WHERE id = ? AND outcome = ''", (did,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    async with conn.execute("SELECT id FROM mail WHERE delivery_id = ? ORDER BY id", (did,)) as cur:
        ids = [int(r[0]) for r in await cur.fetchall()]
    return str(row[0]), str(row[1]), ids


async def _settle_taken(
    conn: aiosqlite.Connection, did: int, *, actor: str, evidence: str, now: str
) -> list[Mail]:
    found = await _delivery(conn, did)
    if found is None:
        return []
    agent, via, ids = found
    await conn.execute(
        "UPDATE deliveries SET outcome = 'taken', taken_at = ? WHERE id = ?", (now, did)
    )
    await conn.execute(
        "UPDATE mail SET delivered_at = ?, "
        "read_at = CASE read_at WHEN '' THEN ? ELSE read_at END WHERE delivery_id = ?",
        (now, now, did),
    )
    await append_event(
        conn,
        at=now,
        actor=actor,
        kind="mail.delivered",
        agent=agent,
        data={"ids": ids, "via": via, "delivery": did, "evidence": evidence[:200]},
    )
    async with conn.execute("SELECT * FROM mail WHERE delivery_id = ? ORDER BY id", (did,)) as cur:
        return [_mail_from_row(row) for row in await cur.fetchall()]


async def _release(
    conn: aiosqlite.Connection, did: int, *, reason: str, actor: str, now: str
) -> None:
    found = await _delivery(conn, did)
    if found is None:
        return
    agent, via, ids = found
    await conn.execute(
        "UPDATE deliveries SET outcome = 'released', taken_at = '' WHERE id = ?", (did,)
    )
    await conn.execute(
        "UPDATE mail SET delivery_id = NULL WHERE delivery_id = ? AND delivered_at = ''", (did,)
    )
    await append_event(
        conn,
        at=now,
        actor=actor,
        kind="mail.undelivered",
        agent=agent,
        data={"ids": ids, "via": via, "delivery": did, "reason": reason[:200]},
    )
