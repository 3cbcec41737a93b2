"""The operator's always-allow rules in SQLite: added, listed and revoked, each an event.

A revoked rule keeps its row (who revoked it, when) for the audit trail; it is never
listed as live nor applied again.
"""

from __future__ import annotations

import sqlite3

from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.firewall import AllowRule
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


def _rule_from_row(row: sqlite3.Row) -> AllowRule:
    return AllowRule(
        id=row["id"],
        agent=row["agent"],
        tool=row["tool"],
        subject=row["subject"],
        digest=row["digest"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


class RuleRepo:
    """Always-allow rules: one live rule per agent and exact command."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, *, agent: str, tool: str, subject: str, digest: str, actor: str, approval: int
    ) -> AllowRule:
        """A live rule for exactly these words (the one already live if there is one)."""
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT id FROM approval_rules WHERE agent = ? AND digest = ? AND revoked_at = ''",
                (agent, digest),
            ) as cursor:
                live = await cursor.fetchone()
            if live is not None:
                rule_id = int(live[0])
            else:
                async with conn.execute(
                    "INSERT INTO approval_rules (agent, tool, subject, digest, created_at, "
                    "created_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (agent, tool, subject, digest, now, actor),
                ) as cursor:
                    row = await cursor.fetchone()
                assert row is not None
                rule_id = int(row[0])
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="rule.added",
                    agent=agent,
                    data={"rule": rule_id, "tool": tool, "subject": subject, "from": approval},
                )
        return await self.get(rule_id)

    async def get(self, rule_id: int) -> AllowRule:
        """One live rule, or NotFound."""
        row = await self.db.fetchone(
            "SELECT * FROM approval_rules WHERE id = ? AND revoked_at = ''", (rule_id,)
        )
        if row is None:
            raise NotFound(f"no rule {rule_id} (see `at rules`)")
        return _rule_from_row(row)

    async def live(self) -> list[AllowRule]:
        """Every rule not revoked, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM approval_rules WHERE revoked_at = '' ORDER BY id"
        )
        return [_rule_from_row(row) for row in rows]

    async def revoke(self, rule_id: int, *, actor: str) -> AllowRule:
        """Revoke a live rule; it no longer applies. Revoking twice is refused."""
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT * FROM approval_rules WHERE id = ?", (rule_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise NotFound(f"no rule {rule_id} (see `at rules`)")
            if row["revoked_at"]:
                raise TundraError(f"rule {rule_id} was already revoked")
            await conn.execute(
                "UPDATE approval_rules SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                (now, actor, rule_id),
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="rule.revoked",
                agent=row["agent"],
                data={"rule": rule_id, "tool": row["tool"], "subject": row["subject"]},
            )
        return _rule_from_row(row)
