"""The town's switches: whether it is up, and whether dispatch or the refinery is paused.

Kept in the database, not the daemon's memory, so `at dispatch pause` works with no
daemon running and a claim reads them inside its own transaction: once pause
returns, nothing more is claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


@dataclass(frozen=True, slots=True)
class TownFlags:
    """`up`: `at up` started the town (and `at down` not since). `paused`: dispatch
    takes no bead, for `pause_reason`. `refinery_paused`: the merge queue starts no
    attempt, for `refinery_pause_reason`."""

    up: bool = False
    paused: bool = False
    pause_reason: str = ""
    refinery_paused: bool = False
    refinery_pause_reason: str = ""


class FlagRepo:
    """Reading and setting the town's switches; each change is an event."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self) -> TownFlags:
        rows = await self.db.fetchall("SELECT key, value, reason FROM town_flags")
        flags = {row[0]: (row[1], row[2]) for row in rows}
        up = flags.get("up", ("0", ""))
        paused = flags.get("dispatch_paused", ("0", ""))
        refinery = flags.get("refinery_paused", ("0", ""))
        return TownFlags(
            up=up[0] == "1",
            paused=paused[0] == "1",
            pause_reason=paused[1],
            refinery_paused=refinery[0] == "1",
            refinery_pause_reason=refinery[1],
        )

    async def set_up(self, up: bool, *, actor: str, reason: str = "") -> bool:
        """Mark the town up or down; True if that changed it (event `town.up`/`town.down`)."""
        return await self._set("up", up, actor=actor, reason=reason, kinds=("town.up", "town.down"))

    async def set_paused(self, paused: bool, *, actor: str, reason: str = "") -> bool:
        """Pause or resume dispatch; True if that changed it (`dispatch.paused`/`.resumed`).
        Pausing again only updates the reason."""
        return await self._set(
            "dispatch_paused",
            paused,
            actor=actor,
            reason=reason,
            kinds=("dispatch.paused", "dispatch.resumed"),
        )

    async def set_refinery_paused(self, paused: bool, *, actor: str, reason: str = "") -> bool:
        """Pause or resume the merge queue; True if that changed it (`refinery.paused`/
        `.resumed`). An attempt already running completes."""
        return await self._set(
            "refinery_paused",
            paused,
            actor=actor,
            reason=reason,
            kinds=("refinery.paused", "refinery.resumed"),
        )

    async def operator_seen(self) -> str:
        """When the operator last used a control room on this town ('' = never): where its
        "while you were away" recap starts."""
        row = await self.db.fetchone("SELECT value FROM town_flags WHERE key = 'operator_seen'")
        return str(row[0]) if row is not None else ""

    async def set_operator_seen(self, at: str) -> None:
        """Note the operator at `at`; it never moves back (two control rooms on one town).
        No event: presence is not a change of the town, and it is noted every minute."""
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT INTO town_flags (key, value, updated_at) VALUES ('operator_seen', ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value), "
                "updated_at = excluded.updated_at",
                (at, self.db.now()),
            )

    async def _set(
        self, key: str, on: bool, *, actor: str, reason: str, kinds: tuple[str, str]
    ) -> bool:
        now = self.db.now()
        value = "1" if on else "0"
        async with self.db.write() as conn:
            async with conn.execute("SELECT value FROM town_flags WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
            changed = row is None or row[0] != value
            await conn.execute(
                "INSERT INTO town_flags (key, value, reason, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "reason = excluded.reason, updated_at = excluded.updated_at",
                (key, value, reason if on else "", now),
            )
            if changed:
                data = {"reason": reason} if reason else {}
                kind = kinds[0] if on else kinds[1]
                await append_event(conn, at=now, actor=actor, kind=kind, data=data)
        return changed
