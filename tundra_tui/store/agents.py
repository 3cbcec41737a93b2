"""Agents in SQLite: the roster mirrored from tundra.toml, plus each agent's recorded state."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tundra_tui.domain.agents import Agent, AgentState, Role, Runtime
from tundra_tui.domain.beads import format_bead_id
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.redact import redact
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """What tundra.toml says about an agent: the part the store mirrors."""

    name: str
    role: Role
    runtime: Runtime
    model: str = ""


@dataclass(slots=True)
class Listing:
    """`AgentRepo.listing()`: state and pid by agent, and held bead ids by assignee."""

    states: dict[str, tuple[AgentState, int | None]] = field(default_factory=dict)
    held: dict[str, list[int]] = field(default_factory=dict)


_ROSTER_SQL = (
    "SELECT name, role, runtime, model, state, removed_at, EXISTS ("
    "SELECT 1 FROM beads WHERE assignee = agents.name AND status IN ('hooked', 'slung', 'review')"
    ") AS holds FROM agents"
)
_LISTED = "removed_at = ''"
"""Rows of agents still in tundra.toml: the only ones lists and counts show."""


@dataclass(frozen=True, slots=True)
class _RosterChanges:
    """What syncing the table to tundra.toml does."""

    inserts: list[RosterEntry]
    updates: list[RosterEntry]
    """Changed in tundra.toml, or added back after a removal (those are in `restores`)."""
    restores: set[str]
    drops: list[str]
    """Removed and referenced by nothing: the row goes."""
    hides: list[str]
    """Removed but still running or holding work: the row stays, out of every list."""

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.drops or self.hides)


def _roster_changes(wanted: dict[str, RosterEntry], rows: list[sqlite3.Row]) -> _RosterChanges:
    """What syncing would change; false when the table already matches."""
    current = {row["name"]: row for row in rows}
    inserts = [entry for name, entry in wanted.items() if name not in current]
    updates = [
        entry
        for name, entry in wanted.items()
        if name in current
        and (
            current[name]["role"],
            current[name]["runtime"],
            current[name]["model"],
            current[name]["removed_at"],
        )
        != (entry.role.value, entry.runtime.value, entry.model, "")
    ]
    restores = {entry.name for entry in updates if current[entry.name]["removed_at"]}
    drops: list[str] = []
    hides: list[str] = []
    for name, row in current.items():
        if name in wanted:
            continue
        if not (row["holds"] or AgentState(row["state"]).is_live):
            drops.append(name)
        elif not row["removed_at"]:
            hides.append(name)
    return _RosterChanges(inserts, updates, restores, drops, hides)


def _agent_from_row(row: sqlite3.Row) -> Agent:
    return Agent(
        name=row["name"],
        role=Role(row["role"]),
        runtime=Runtime(row["runtime"]),
        state=AgentState(row["state"]),
        model=row["model"],
        pid=row["pid"],
        worktree=row["worktree"],
        branch=row["branch"],
        exit_status=row["exit_status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class AgentRepo:
    """The store's view of agents. The roster's source of truth is tundra.toml."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[Agent]:
        """Every agent in tundra.toml, by name (removed ones are gone, whatever they hold)."""
        rows = await self.db.fetchall(f"SELECT * FROM agents WHERE {_LISTED} ORDER BY name")
        return [_agent_from_row(row) for row in rows]

    async def live(self) -> list[Agent]:
        """Agents recorded as running, removed from tundra.toml or not: what a daemon that
        died may have left behind."""
        states = ", ".join(f"'{state.value}'" for state in AgentState if state.is_live)
        rows = await self.db.fetchall(f"SELECT * FROM agents WHERE state IN ({states})")
        return [_agent_from_row(row) for row in rows]

    async def get(self, name: str) -> Agent:
        """One agent in tundra.toml, or NotFound."""
        row = await self.db.fetchone(f"SELECT * FROM agents WHERE name = ? AND {_LISTED}", (name,))
        if row is None:
            raise NotFound(f"no agent {name!r} (see `at agent list`)")
        return _agent_from_row(row)

    async def sync_roster(self, roster: Iterable[RosterEntry], *, actor: str) -> None:
        """Make the table match the configured roster without losing a live agent's record.

        New agents are inserted, changed ones updated. An agent no longer configured
        leaves every list at once; its row is deleted, or kept out of sight while it
        still runs or holds work (the daemon records its state, its beads name it)
        and deleted by a later sync once nothing refers to it.
        """
        wanted = {entry.name: entry for entry in roster}
        # A cheap read first, so the common case (nothing changed) takes no write lock.
        if not _roster_changes(wanted, await self.db.fetchall(_ROSTER_SQL)):
            return
        now = self.db.now()
        async with self.db.write() as conn:
            changes = _roster_changes(wanted, list(await conn.execute_fetchall(_ROSTER_SQL)))
            for entry in changes.inserts:
                await conn.execute(
                    "INSERT INTO agents (name, role, runtime, model, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (entry.name, entry.role.value, entry.runtime.value, entry.model, now, now),
                )
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="agent.added",
                    agent=entry.name,
                    data={"role": entry.role.value, "runtime": entry.runtime.value},
                )
            for entry in changes.updates:
                await conn.execute(
                    "UPDATE agents SET role = ?, runtime = ?, model = ?, removed_at = '', "
                    "updated_at = ? WHERE name = ?",
                    (entry.role.value, entry.runtime.value, entry.model, now, entry.name),
                )
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="agent.added" if entry.name in changes.restores else "agent.changed",
                    agent=entry.name,
                    data={"role": entry.role.value, "runtime": entry.runtime.value},
                )
            for name in changes.drops:
                async with conn.execute(
                    "DELETE FROM agents WHERE name = ? RETURNING removed_at", (name,)
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None and not row[0]:  # a hidden one was already said removed
                    await append_event(conn, at=now, actor=actor, kind="agent.removed", agent=name)
            for name in changes.hides:
                await conn.execute(
                    "UPDATE agents SET removed_at = ?, updated_at = ? WHERE name = ?",
                    (now, now, name),
                )
                await append_event(conn, at=now, actor=actor, kind="agent.removed", agent=name)

    async def held_beads(self, name: str) -> list[int]:
        """Ids of unfinished beads assigned to `name`."""
        rows = await self.db.fetchall(
            "SELECT id FROM beads WHERE assignee = ? AND status IN ('hooked', 'slung', 'review') "
            "ORDER BY id",
            (name,),
        )
        return [int(row[0]) for row in rows]

    async def listing(self) -> Listing:
        """What `at agent list` shows of agents beyond tundra.toml, in one query for the
        whole team: each listed agent's state and pid (not its whole row, which carries its
        last screen), and the unfinished beads every agent holds (`held_beads` of each)."""
        rows = await self.db.fetchall(
            f"SELECT name, state, pid, NULL FROM agents WHERE {_LISTED} "
            "UNION ALL SELECT assignee, NULL, NULL, id FROM beads WHERE assignee != '' "
            "AND status IN ('hooked', 'slung', 'review') ORDER BY 4"
        )
        listing = Listing()
        for name, state, pid, bead in rows:
            if bead is None:
                listing.states[str(name)] = (AgentState(state), pid)
            else:
                listing.held.setdefault(str(name), []).append(int(bead))
        return listing

    async def ensure_removable(self, name: str) -> None:
        """Refuse to drop an agent that is running or still holds work."""
        row = await self.db.fetchone("SELECT state FROM agents WHERE name = ?", (name,))
        if row is not None and AgentState(row[0]).is_live:
            raise TundraError(f"agent {name!r} is running; stop it first")
        held = await self.held_beads(name)
        if held:
            refs = ", ".join(format_bead_id(i) for i in held)
            raise TundraError(
                f"agent {name!r} still holds {refs}; finish, unhook or reassign them first"
            )

    async def set_state(
        self,
        name: str,
        state: AgentState,
        *,
        actor: str,
        pid: int | None = None,
        exit_status: int | None = None,
        evidence: dict[str, Any] | None = None,
        last_screen: str | None = None,
    ) -> Agent:
        """Record a state change with its evidence; unchanged states are not re-logged.

        The screen and the evidence read from it pass through `redact` first: a token an
        agent printed must never reach the database.
        """
        now = self.db.now()
        evidence = _redacted(evidence or {})
        if last_screen is not None:
            last_screen = redact(last_screen)
        async with self.db.write() as conn:
            async with conn.execute("SELECT state FROM agents WHERE name = ?", (name,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise NotFound(f"no agent {name!r} (see `at agent list`)")
            await conn.execute(
                "UPDATE agents SET state = ?, pid = ?, exit_status = ?, evidence = ?, "
                "last_screen = coalesce(?, last_screen), updated_at = ? WHERE name = ?",
                (
                    state.value,
                    pid,
                    exit_status,
                    json.dumps(evidence, sort_keys=True),
                    last_screen,
                    now,
                    name,
                ),
            )
            if row[0] != state.value:
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="agent.state",
                    agent=name,
                    data={"from": row[0], "to": state.value, "evidence": evidence},
                )
        row = await self.db.fetchone("SELECT * FROM agents WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no agent {name!r} (see `at agent list`)")
        return _agent_from_row(row)

    async def set_wanted(self, name: str, wanted: bool) -> bool:
        """Mark an agent to be brought back by `at up` (started by hand) or not (stopped by
        the operator); False if no such agent."""
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "UPDATE agents SET wanted = ? WHERE name = ?", (int(wanted), name)
            )
            return bool(cursor.rowcount)

    async def wanted(self) -> list[str]:
        """Agents `at up` brings back, by name (removed ones are left out)."""
        rows = await self.db.fetchall(
            f"SELECT name FROM agents WHERE wanted = 1 AND {_LISTED} ORDER BY name"
        )
        return [str(row[0]) for row in rows]

    async def last_screen(self, name: str) -> str:
        """The last screen recorded for an agent (shown for failed and lost agents)."""
        row = await self.db.fetchone("SELECT last_screen FROM agents WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no agent {name!r} (see `at agent list`)")
        return str(row[0])


def _redacted(value: Any) -> Any:
    """`value` (evidence: JSON-like, read from the screen) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value
