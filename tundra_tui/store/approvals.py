"""Approvals in SQLite: a pending request is a row until the operator answers it."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tundra_tui.domain.approvals import Approval, ApprovalSource, ApprovalStatus, decide
from tundra_tui.domain.errors import NotFound
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


def _approval_from_row(row: sqlite3.Row) -> Approval:
    return Approval(
        id=row["id"],
        agent=row["agent"],
        runtime=row["runtime"],
        tool=row["tool"],
        subject=row["subject"],
        cwd=row["cwd"],
        source=ApprovalSource(row["source"]),
        evidence=json.loads(row["evidence"]),
        status=ApprovalStatus(row["status"]),
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
    )


class ApprovalRepo:
    """Requests and decisions; each decision is also an event."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def request(
        self,
        *,
        agent: str,
        runtime: str,
        subject: str,
        source: ApprovalSource,
        actor: str,
        tool: str = "",
        cwd: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> Approval:
        """Record a pending request exactly as the agent made it."""
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "INSERT INTO approvals (agent, runtime, tool, subject, cwd, source, evidence, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    agent,
                    runtime,
                    tool,
                    subject,
                    cwd,
                    source.value,
                    json.dumps(evidence or {}, sort_keys=True),
                    now,
                ),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="approval.requested",
                agent=agent,
                data={"id": row[0], "tool": tool, "subject": subject, "source": source.value},
            )
        return await self.get(int(row[0]))

    async def next_id(self) -> int:
        """The id the next request will get: ids are never reused, even after a delete."""
        row = await self.db.fetchone(
            "SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM approvals UNION ALL "
            "SELECT seq FROM sqlite_sequence WHERE name = 'approvals')"
        )
        return int(row[0] or 0) + 1 if row is not None else 1

    async def record(self, approval: Approval, *, actor: str) -> None:
        """Write a request the daemon's approval book already holds, under its own id.

        The book gives ids itself so that a request is shown the moment it is seen,
        even while the database is locked; writing the same request twice is harmless.
        """
        async with self.db.write() as conn:
            async with conn.execute(
                "INSERT OR IGNORE INTO approvals (id, agent, runtime, tool, subject, cwd, source, "
                "evidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    approval.id,
                    approval.agent,
                    approval.runtime,
                    approval.tool,
                    approval.subject,
                    approval.cwd,
                    approval.source.value,
                    json.dumps(approval.evidence, sort_keys=True),
                    approval.created_at or self.db.now(),
                ),
            ) as cursor:
                inserted = await cursor.fetchone()
            if inserted is not None:
                await append_event(
                    conn,
                    at=approval.created_at or self.db.now(),
                    actor=actor,
                    kind="approval.requested",
                    agent=approval.agent,
                    data={
                        "id": approval.id,
                        "tool": approval.tool,
                        "subject": approval.subject,
                        "source": approval.source.value,
                    },
                )

    async def upgrade(self, approval: Approval, *, actor: str) -> None:
        """The agent's hook reported the request the screen showed: keep its exact words.

        One prompt stays one request: the row keeps its id and only its subject,
        tool, source and evidence change.
        """
        async with self.db.write() as conn:
            await conn.execute(
                "UPDATE approvals SET subject = ?, tool = ?, source = ?, evidence = ?, cwd = ? "
                "WHERE id = ? AND status = 'pending'",
                (
                    approval.subject,
                    approval.tool,
                    approval.source.value,
                    json.dumps(approval.evidence, sort_keys=True),
                    approval.cwd,
                    approval.id,
                ),
            )
            await append_event(
                conn,
                at=self.db.now(),
                actor=actor,
                kind="approval.upgraded",
                agent=approval.agent,
                data={"id": approval.id, "tool": approval.tool, "subject": approval.subject},
            )

    async def get(self, approval_id: int) -> Approval:
        """One request, or NotFound."""
        row = await self.db.fetchone("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            raise NotFound(f"no approval {approval_id}")
        return _approval_from_row(row)

    async def pending(self, agent: str | None = None) -> list[Approval]:
        """Requests still waiting, oldest first."""
        if agent is None:
            rows = await self.db.fetchall(
                "SELECT * FROM approvals WHERE status = 'pending' ORDER BY id"
            )
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM approvals WHERE status = 'pending' AND agent = ? ORDER BY id",
                (agent,),
            )
        return [_approval_from_row(row) for row in rows]

    async def decide(
        self,
        approval_id: int,
        answer: ApprovalStatus,
        *,
        actor: str,
        reason: str = "",
        at: str = "",
    ) -> Approval:
        """Answer a pending request once; a second answer is refused."""
        now = at or self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT status, agent FROM approvals WHERE id = ?", (approval_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise NotFound(f"no approval {approval_id}")
            target = decide(ApprovalStatus(row[0]), answer)
            await conn.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ? "
                "WHERE id = ? AND status = 'pending'",
                (target.value, now, actor, approval_id),
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind=f"approval.{target.value}",
                agent=row[1],
                data={"id": approval_id, **({"reason": reason} if reason else {})},
            )
        return await self.get(approval_id)
