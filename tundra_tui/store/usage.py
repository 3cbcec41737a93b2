"""The bookkeeping behind costs: followed logs and their cursors, agent launches (whose log
is whose), rate-limit pauses per account, the budget override and the price book's
fingerprint.

Pauses and the override are store writes with events, so `at cost …` works with no daemon
and the daemon hears them through the event tail. Source bookkeeping writes no events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tundra_tui.domain.costs import AccountPause
from tundra_tui.store.db import Database
from tundra_tui.store.events import append_event


@dataclass(frozen=True, slots=True)
class StoredCursor:
    """A source's cursor as stored (the shape of `usage.records.Cursor`)."""

    offset: int = 0
    device: int = 0
    inode: int = 0
    head: bytes = b""
    skipping: bool = False
    state: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UsageSource:
    """One followed log (or OpenCode db and session, path '<db>#<session>')."""

    id: int
    runtime: str
    agent: str
    path: str
    run_id: int | None
    cursor: Any
    """A `usage.records.Cursor` when one is handed to `sources`, else a `StoredCursor`."""
    bad_lines: int = 0
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class AgentRun:
    """One launch of an agent: what tells its logs apart from others'."""

    id: int
    agent: str
    runtime: str
    role: str
    account: str
    cwd: str
    pid: int | None
    roots: Mapping[str, str]
    """Where its runtime logs, from its env: {"claude": "/home/u/.claude", …}."""
    session_hint: str
    """Claude's --session-id, or Aider's analytics log path ('' otherwise)."""
    started_at: str
    ended_at: str = ""


_RUN_COLUMNS = (
    "id, agent, runtime, role, account, cwd, pid, roots, session_hint, started_at, ended_at"
)
_SOURCE_COLUMNS = (
    "id, runtime, agent, path, run_id, offset, device, inode, head, skipping, state, "
    "bad_lines, updated_at"
)
_PAUSE_COLUMNS = "account, runtime, agent, until, shown, reset_parsed, since"


def _run(r: Sequence[Any]) -> AgentRun:
    try:
        roots = json.loads(r[7] or "{}")
    except ValueError:
        roots = {}
    return AgentRun(
        id=int(r[0]),
        agent=str(r[1]),
        runtime=str(r[2]),
        role=str(r[3]),
        account=str(r[4]),
        cwd=str(r[5]),
        pid=None if r[6] is None else int(r[6]),
        roots={str(k): str(v) for k, v in roots.items()} if isinstance(roots, dict) else {},
        session_hint=str(r[8]),
        started_at=str(r[9]),
        ended_at=str(r[10]),
    )


def _pause(r: Sequence[Any]) -> AccountPause:
    return AccountPause(
        account=str(r[0]),
        runtime=str(r[1]),
        agent=str(r[2]),
        until=str(r[3]),
        shown=str(r[4]),
        reset_parsed=bool(r[5]),
        since=str(r[6]),
    )


class UsageRepo:
    """Sources, runs, pauses and the override; see the module docstring."""

    def __init__(self, db: Database, cursor_type: Any = None) -> None:
        self.db = db
        self.cursor_type = cursor_type

    # ---- sources -----------------------------------------------------------------------------

    def _source(self, r: Sequence[Any]) -> UsageSource:
        try:
            state = json.loads(r[10] or "{}")
        except ValueError:
            state = {}
        kind = self.cursor_type or _records_cursor()
        cursor = kind(
            offset=int(r[5]),
            device=int(r[6]),
            inode=int(r[7]),
            head=bytes(r[8] or b""),
            skipping=bool(r[9]),
            state={str(k): str(v) for k, v in state.items()} if isinstance(state, dict) else {},
        )
        return UsageSource(
            id=int(r[0]),
            runtime=str(r[1]),
            agent=str(r[2]),
            path=str(r[3]),
            run_id=None if r[4] is None else int(r[4]),
            cursor=cursor,
            bad_lines=int(r[11]),
            updated_at=str(r[12]),
        )

    async def sources(self, *, runtime: str = "", agent: str = "") -> list[UsageSource]:
        """Every followed log (optionally one runtime's or one agent's), oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_SOURCE_COLUMNS} FROM usage_sources WHERE (? = '' OR runtime = ?) "
            "AND (? = '' OR agent = ?) ORDER BY id",
            (runtime, runtime, agent, agent),
        )
        return [self._source(r) for r in rows]

    async def source(self, source_id: int) -> UsageSource | None:
        """One followed log by id, or None."""
        row = await self.db.fetchone(
            f"SELECT {_SOURCE_COLUMNS} FROM usage_sources WHERE id = ?", (source_id,)
        )
        return self._source(row) if row is not None else None

    async def add_source(
        self, *, runtime: str, agent: str, path: str, run_id: int | None = None
    ) -> UsageSource:
        """Follow a log from its start; a path already followed is returned as it is (its
        cursor and agent kept), so discovery can run again safely."""
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO usage_sources (runtime, agent, path, run_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (runtime, agent, path, run_id, self.db.now()),
            )
        row = await self.db.fetchone(
            f"SELECT {_SOURCE_COLUMNS} FROM usage_sources WHERE path = ?", (path,)
        )
        assert row is not None
        return self._source(row)

    # ---- runs --------------------------------------------------------------------------------

    async def run_started(
        self,
        *,
        agent: str,
        runtime: str,
        role: str,
        account: str,
        cwd: str,
        pid: int | None,
        roots: Mapping[str, str] | None = None,
        session_hint: str = "",
        started_at: str = "",
    ) -> AgentRun:
        """Record a launch of `agent`."""
        at = started_at or self.db.now()
        roots_text = json.dumps(dict(roots or {}), sort_keys=True)
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "INSERT INTO agent_runs (agent, runtime, role, account, cwd, pid, roots, "
                "session_hint, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (agent, runtime, role, account, cwd, pid, roots_text, session_hint, at),
            )
            run_id = int(cursor.lastrowid or 0)
        return AgentRun(
            run_id, agent, runtime, role, account, cwd, pid, dict(roots or {}), session_hint, at
        )

    async def run_ended(self, run_id: int, *, at: str = "") -> bool:
        """Mark a launch ended; False if it already was (or does not exist)."""
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "UPDATE agent_runs SET ended_at = ? WHERE id = ? AND ended_at = ''",
                (at or self.db.now(), run_id),
            )
            return cursor.rowcount > 0

    async def end_open_runs(self, *, at: str = "") -> int:
        """End every run still open (a daemon that died left them); returns how many."""
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "UPDATE agent_runs SET ended_at = ? WHERE ended_at = ''", (at or self.db.now(),)
            )
            return max(0, cursor.rowcount)

    async def open_runs(self) -> list[AgentRun]:
        """Launches not yet ended, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM agent_runs WHERE ended_at = '' ORDER BY started_at, id"
        )
        return [_run(r) for r in rows]

    async def runs_between(self, since: str = "", until: str = "") -> list[AgentRun]:
        """Launches whose life overlaps [since, until] ('' = unbounded), oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM agent_runs WHERE (? = '' OR started_at <= ?) "
            "AND (ended_at = '' OR ? = '' OR ended_at >= ?) ORDER BY started_at, id",
            (until, until, since, since),
        )
        return [_run(r) for r in rows]

    async def runs_by_id(self, ids: Iterable[int]) -> dict[int, AgentRun]:
        """The launches with these ids (those that exist)."""
        wanted = sorted(set(ids))
        found: dict[int, AgentRun] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = await self.db.fetchall(
                f"SELECT {_RUN_COLUMNS} FROM agent_runs WHERE id IN "
                f"({','.join('?' for _ in chunk)})",
                tuple(chunk),
            )
            found.update((run.id, run) for run in map(_run, rows))
        return found

    async def runs_of(self, agent: str) -> list[AgentRun]:
        """One agent's launches, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM agent_runs WHERE agent = ? ORDER BY started_at, id",
            (agent,),
        )
        return [_run(r) for r in rows]

    # ---- rate-limit pauses -------------------------------------------------------------------

    async def pause_account(
        self,
        pause: AccountPause | None = None,
        *,
        account: str = "",
        runtime: str = "",
        agent: str = "",
        until: str = "",
        shown: str = "",
        reset_parsed: bool = False,
        since: str = "",
        actor: str = "daemon",
    ) -> AccountPause:
        """Pause dispatch to an account until `until` (event `account.paused`). A live pause
        is only ever extended, never shortened. Takes an AccountPause or its fields."""
        now = self.db.now()
        if pause is None:
            pause = AccountPause(account, runtime, agent, until, shown, reset_parsed, since or now)
        if not pause.account or not pause.until:
            raise ValueError("a pause needs an account and an until time")
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT until, cleared_at FROM account_pauses WHERE account = ?", (pause.account,)
            ) as cur:
                row = await cur.fetchone()
            if row is not None and not row[1] and str(row[0]) > pause.until and str(row[0]) > now:
                pause = AccountPause(
                    pause.account,
                    pause.runtime,
                    pause.agent,
                    str(row[0]),
                    pause.shown,
                    pause.reset_parsed,
                    pause.since,
                )
            await conn.execute(
                f"INSERT INTO account_pauses ({_PAUSE_COLUMNS}, cleared_at, cleared_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, '', '') ON CONFLICT (account) DO UPDATE SET "
                "runtime = excluded.runtime, agent = excluded.agent, until = excluded.until, "
                "shown = excluded.shown, reset_parsed = excluded.reset_parsed, "
                "since = excluded.since, cleared_at = '', cleared_by = ''",
                (
                    pause.account,
                    pause.runtime,
                    pause.agent,
                    pause.until,
                    pause.shown,
                    int(pause.reset_parsed),
                    pause.since or now,
                ),
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="account.paused",
                agent=pause.agent,
                data={
                    "account": pause.account,
                    "until": pause.until,
                    "agent": pause.agent,
                    "shown": pause.shown[-500:],
                    "parsed": pause.reset_parsed,
                },
            )
        return pause

    async def clear_pause(self, account: str, *, actor: str, kind: str = "account.cleared") -> bool:
        """End an account's pause now: by the operator (`account.cleared`), or by the daemon
        at its time (`kind="account.resumed"`). False if it was not paused."""
        now = self.db.now()
        async with self.db.write() as conn:
            cursor = await conn.execute(
                "UPDATE account_pauses SET cleared_at = ?, cleared_by = ? "
                "WHERE account = ? AND cleared_at = ''",
                (now, actor, account),
            )
            if cursor.rowcount <= 0:
                return False
            await append_event(conn, at=now, actor=actor, kind=kind, data={"account": account})
        return True

    async def live_pauses(self, now: str) -> list[AccountPause]:
        """Pauses not cleared whose time has not come, soonest end first."""
        rows = await self.db.fetchall(
            f"SELECT {_PAUSE_COLUMNS} FROM account_pauses WHERE cleared_at = '' AND until > ? "
            "ORDER BY until, account",
            (now,),
        )
        return [_pause(r) for r in rows]

    async def expired_pauses(self, now: str) -> list[AccountPause]:
        """Pauses whose time has come but that nobody has ended yet (the daemon ends them
        with `clear_pause(kind="account.resumed")`)."""
        rows = await self.db.fetchall(
            f"SELECT {_PAUSE_COLUMNS} FROM account_pauses WHERE cleared_at = '' AND until <= ? "
            "ORDER BY until, account",
            (now,),
        )
        return [_pause(r) for r in rows]

    # ---- the budget override and the price book ----------------------------------------------

    async def set_override(self, until: str, reason: str = "", *, actor: str) -> None:
        """Let dispatch take new beads over a spent budget until `until` ('' ends it now).
        Events `costs.override {until, reason}` / `costs.override_cleared`."""
        now = self.db.now()
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT INTO town_flags (key, value, reason, updated_at) "
                "VALUES ('budget_override_until', ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, reason = excluded.reason, "
                "updated_at = excluded.updated_at",
                (until, reason if until else "", now),
            )
            if until:
                data = {"until": until, "reason": reason}
                await append_event(conn, at=now, actor=actor, kind="costs.override", data=data)
            else:
                await append_event(conn, at=now, actor=actor, kind="costs.override_cleared")

    async def override(self) -> tuple[str, str]:
        """(until, reason) of the operator's override; ('', '') when none was set. A past
        `until` is returned as it is: callers compare it with now."""
        row = await self.db.fetchone(
            "SELECT value, reason FROM town_flags WHERE key = 'budget_override_until'"
        )
        return (str(row[0]), str(row[1])) if row is not None else ("", "")

    async def price_book(self) -> str:
        """The fingerprint of the prices the stored costs were computed with ('' = none yet)."""
        row = await self.db.fetchone("SELECT value FROM town_flags WHERE key = 'price_book'")
        return str(row[0]) if row is not None else ""

    async def set_price_book(self, fingerprint: str) -> None:
        """Record that every stored cost is priced with `fingerprint`."""
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT INTO town_flags (key, value, updated_at) VALUES ('price_book', ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (fingerprint, self.db.now()),
            )


def _records_cursor() -> Any:
    """`usage.records.Cursor`, imported late: the store does not depend on the readers, but
    hands their cursor type back when it is there."""
    try:
        from tundra_tui.usage.records import Cursor
    except ImportError:  # pragma: no cover - the readers ship with the store
        return StoredCursor
    return Cursor
