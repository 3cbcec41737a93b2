"""Token and cost samples, and KPI snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import aiosqlite

from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.costs import AttemptCost, Cost, verdicts
from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store.db import Database
from tundra_tui.store.hours import WEEKDAY_HOUR, HourCell

_DIMENSIONS = {
    "agent": "u.agent",
    "model": "u.model",
    "runtime": "u.runtime",
    "role": "u.role",
    "day": "u.day",
    "bead": "CASE WHEN u.bead_id = 0 THEN '' ELSE CAST(u.bead_id AS TEXT) END",
    "convoy": "coalesce(c.name, '')",
}
_LABELS = {"bead": "coalesce(max(b.title), '')"}
"""A readable name beside the key, where the key alone is an id."""
_BEAD_JOINS = "LEFT JOIN beads b ON b.id = u.bead_id LEFT JOIN convoys c ON c.id = b.convoy_id"

_SUMS = (
    "sum(u.samples), sum(u.input_tokens), sum(u.output_tokens), sum(u.cache_read_tokens), "
    "sum(u.cache_write_tokens), sum(u.cost_usd), sum(u.unpriced_samples), sum(u.unpriced_tokens), "
    "sum(u.logged_cost_usd), sum(u.logged_samples)"
)
"""The ten totals every rollup reads, in `_totals` order."""

_HOURLY = (
    "SELECT agent, role, runtime, model, bead_id, dispatch_id, substr(hour, 1, 10) AS day, "
    "samples, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, "
    "unpriced_samples, unpriced_tokens, logged_cost_usd, logged_samples FROM usage_hourly"
)
_RAW = (
    "SELECT agent, role, runtime, model, coalesce(bead_id, 0) AS bead_id, "
    "coalesce(dispatch_id, 0) AS dispatch_id, substr(at, 1, 10) AS day, 1 AS samples, "
    "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, "
    "1 - priced AS unpriced_samples, CASE WHEN priced THEN 0 ELSE input_tokens + output_tokens "
    "+ cache_read_tokens + cache_write_tokens END AS unpriced_tokens, "
    "coalesce(logged_cost_usd, 0) AS logged_cost_usd, "
    "logged_cost_usd IS NOT NULL AS logged_samples FROM metrics"
)


def _hour(at: str, *, up: bool) -> str | None:
    """The 'YYYY-MM-DDTHH' key of the hour boundary at or after (`up`) or at or before
    `at`; None when `at` is not a time we can read (the window is then read raw)."""
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    floor = moment.replace(minute=0, second=0, microsecond=0)
    if up and floor != moment:
        floor += timedelta(hours=1)
    return floor.strftime("%Y-%m-%dT%H")


def _window(since: str, until: str) -> tuple[str, list[Any]]:
    """A `u` table covering [since, until) ('' = unbounded): whole hours from the rollup the
    triggers keep, the partial hours at either edge from the raw samples. Equal to summing
    the raw samples, at the cost of at most two hours' rows."""
    lo = _hour(since, up=True) if since else ""
    hi = _hour(until, up=False) if until else ""
    parts: list[str] = []
    params: list[Any] = []
    if lo is None or hi is None or (lo and hi and lo >= hi):
        parts.append(f"{_RAW} WHERE at >= ? AND (? = '' OR at < ?)")
        params += [since, until, until]
    else:
        where = []
        if lo:
            where.append("hour >= ?")
            params.append(lo)
        if hi:
            where.append("hour < ?")
            params.append(hi)
        parts.append(_HOURLY + (" WHERE " + " AND ".join(where) if where else ""))
        if since:
            parts.append(f"{_RAW} WHERE at >= ? AND at < ?")
            params += [since, lo]
        if until:
            parts.append(f"{_RAW} WHERE at >= ? AND at < ?")
            params += [max(hi, since), until]
    return f"({' UNION ALL '.join(parts)}) AS u", params


@dataclass(frozen=True, slots=True)
class CostRow:
    """One group of a cost rollup."""

    key: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    samples: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    label: str = ""
    """A readable name for the key (a bead's title), empty where the key says it all."""
    unpriced_samples: int = 0
    unpriced_tokens: int = 0
    """Tokens of samples no price is known for: their cost is unknown, not 0."""
    logged_cost_usd: float | None = None
    """The CLIs' own per-call figures summed, where any logged one (None: none did)."""

    @property
    def cache_tokens(self) -> int:
        """Prompt-cache reads and writes, kept apart from fresh input tokens."""
        return self.cache_read_tokens + self.cache_write_tokens

    @property
    def cost(self) -> Cost:
        """The row's dollars with its unpriced part flagged."""
        return Cost(self.cost_usd, self.unpriced_samples, self.unpriced_tokens)


def _totals(key: str, label: str, r: Sequence[Any], at: int) -> CostRow:
    """A CostRow from the ten `_SUMS` columns starting at `at`."""
    return CostRow(
        key=key,
        input_tokens=int(r[at + 1] or 0),
        output_tokens=int(r[at + 2] or 0),
        cost_usd=float(r[at + 5] or 0.0),
        samples=int(r[at] or 0),
        cache_read_tokens=int(r[at + 3] or 0),
        cache_write_tokens=int(r[at + 4] or 0),
        label=label,
        unpriced_samples=int(r[at + 6] or 0),
        unpriced_tokens=int(r[at + 7] or 0),
        logged_cost_usd=float(r[at + 8] or 0.0) if int(r[at + 9] or 0) else None,
    )


@dataclass(frozen=True, slots=True)
class RepriceRow:
    """What pricing a stored sample again needs."""

    id: int
    at: str
    runtime: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    cost_usd: float
    priced: bool
    price_source: str
    provider: str = ""


class SessionCost(NamedTuple):
    """A CLI's own figure for a session beside ours (a tuple, so it unpacks too)."""

    runtime: str
    session: str
    agent: str
    cli_cost_usd: float
    our_cost_usd: float


class CursorLike(Protocol):
    """Where a reader stopped (`usage.records.Cursor`); the store keeps it with the samples."""

    @property
    def offset(self) -> int: ...
    @property
    def device(self) -> int: ...
    @property
    def inode(self) -> int: ...
    @property
    def head(self) -> bytes: ...
    @property
    def skipping(self) -> bool: ...
    @property
    def state(self) -> Any: ...


class LoggedLike(Protocol):
    """A CLI's cumulative session cost (`usage.records.LoggedCost`)."""

    @property
    def runtime(self) -> str: ...
    @property
    def session(self) -> str: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def unknown_model(self) -> bool: ...
    @property
    def at(self) -> str: ...


_SAMPLE_COLUMNS = (
    "at, agent, model, runtime, bead_id, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_tokens, cost_usd, source_key, role, session, dispatch_id, "
    "cache_write_1h_tokens, priced, price_source, logged_cost_usd, source_id, provider"
)


def _sample(r: Sequence[Any]) -> UsageSample:
    """A sample from the `_SAMPLE_COLUMNS`, by name: new fields never shift the others."""
    return UsageSample(
        at=str(r[0]),
        agent=str(r[1]),
        model=str(r[2]),
        runtime=str(r[3]),
        bead_id=r[4],
        input_tokens=int(r[5]),
        output_tokens=int(r[6]),
        cache_read_tokens=int(r[7]),
        cache_write_tokens=int(r[8]),
        cost_usd=float(r[9]),
        source_key=str(r[10] or ""),
        role=str(r[11]),
        session=str(r[12]),
        dispatch_id=r[13],
        cache_write_1h_tokens=int(r[14]),
        priced=bool(r[15]),
        price_source=str(r[16]),
        logged_cost_usd=None if r[17] is None else float(r[17]),
        source_id=r[18],
        provider=str(r[19]),
    )


class MetricsRepo:
    """Usage samples are idempotent by `source_key`, so re-reading a log never double-counts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, samples: Iterable[UsageSample]) -> int:
        """Insert samples in one transaction; returns how many were new."""
        async with self.db.write() as conn:
            return await _insert(conn, samples)

    async def record_batch(
        self,
        samples: Iterable[UsageSample],
        logged: Iterable[LoggedLike],
        *,
        source_id: int | None,
        cursor: CursorLike | None,
        bad_lines: int = 0,
        agent: str = "",
    ) -> int:
        """Samples, the CLI's session figures and the source's new cursor in one transaction:
        a crash leaves all or none, so a restart re-reads from the cursor the store holds and
        the keys count nothing twice. `agent` names the logged figures' agent (default: the
        source's). Returns how many samples were new."""
        samples = list(samples)
        logged = list(logged)
        now = self.db.now()
        async with self.db.write() as conn:
            added = await _insert(conn, samples)
            if logged:
                who = agent or (samples[0].agent if samples else "")
                if not who and source_id is not None:
                    async with conn.execute(
                        "SELECT agent FROM usage_sources WHERE id = ?", (source_id,)
                    ) as cur:
                        row = await cur.fetchone()
                    who = str(row[0]) if row is not None else ""
                await conn.executemany(
                    "INSERT INTO logged_costs (runtime, session, agent, cost_usd, unknown_model, "
                    "at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (runtime, session) DO UPDATE SET "
                    "cost_usd = excluded.cost_usd, unknown_model = excluded.unknown_model, "
                    "agent = excluded.agent, at = excluded.at WHERE excluded.at >= logged_costs.at",
                    [
                        (c.runtime, c.session, who, c.cost_usd, int(c.unknown_model), c.at)
                        for c in logged
                    ],
                )
            if source_id is not None and cursor is not None:
                await conn.execute(
                    "UPDATE usage_sources SET offset = ?, device = ?, inode = ?, head = ?, "
                    "skipping = ?, state = ?, bad_lines = bad_lines + ?, updated_at = ? "
                    "WHERE id = ?",
                    (
                        cursor.offset,
                        cursor.device,
                        cursor.inode,
                        bytes(cursor.head),
                        int(cursor.skipping),
                        json.dumps(dict(cursor.state), sort_keys=True),
                        bad_lines,
                        now,
                        source_id,
                    ),
                )
        return added

    async def rollup(
        self, by: str, *, since: str = "", until: str = "", limit: int | None = None
    ) -> list[CostRow]:
        """Tokens and cost grouped by agent, model, runtime, role, bead, convoy or day over
        [since, until) ('' = unbounded), from the hourly rollup plus the raw edge hours.

        Days come in date order, other groups costliest first; `limit` keeps the first
        groups only, so a rollup by bead stays cheap with many thousands of beads.
        Samples with no bead (or whose bead is in no convoy) group under the key "".
        """
        if by not in _DIMENSIONS:
            raise ValueError(f"cannot group costs by {by!r}")
        table, params = _window(since, until)
        expr = _DIMENSIONS[by]
        label = _LABELS.get(by, "''")
        joins = _BEAD_JOINS if by in ("bead", "convoy") else ""
        order = "key" if by == "day" else "7 DESC, key"
        rows = await self.db.fetchall(
            f"SELECT {expr} AS key, {_SUMS}, {label} FROM {table} {joins} "
            f"GROUP BY key ORDER BY {order} LIMIT ?",
            (*params, -1 if limit is None else limit),
        )
        return [_totals(str(r[0]), str(r[11]), r, 1) for r in rows]

    async def totals(self, *, since: str = "", until: str = "") -> CostRow:
        """Every sample in [since, until) summed into one row (key '')."""
        table, params = _window(since, until)
        row = await self.db.fetchone(f"SELECT {_SUMS} FROM {table}", tuple(params))
        return _totals("", "", row if row is not None else (0,) * 10, 0)

    async def cost(self, *, since: str = "", until: str = "", convoy_id: int | None = None) -> Cost:
        """Dollars spent in [since, until), with the unpriced part flagged; with `convoy_id`,
        only samples on that convoy's beads (its budget covers its whole life)."""
        table, params = _window(since, until)
        where = ""
        if convoy_id is not None:
            where = " WHERE u.bead_id IN (SELECT id FROM beads WHERE convoy_id = ?)"
            params.append(convoy_id)
        row = await self.db.fetchone(
            "SELECT coalesce(sum(u.cost_usd), 0), coalesce(sum(u.unpriced_samples), 0), "
            f"coalesce(sum(u.unpriced_tokens), 0) FROM {table}{where}",
            tuple(params),
        )
        if row is None:
            return Cost(0.0)
        return Cost(float(row[0]), int(row[1]), int(row[2]))

    async def price_sources(self, *, since: str = "", until: str = "") -> list[tuple[str, int]]:
        """Which tables priced the samples in [since, until), and how many each ('' = none:
        unpriced, or recorded before prices were named)."""
        rows = await self.db.fetchall(
            "SELECT price_source, count(*) FROM metrics WHERE at >= ? AND (? = '' OR at < ?) "
            "GROUP BY price_source ORDER BY 2 DESC, 1",
            (since, until, until),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def unpriced_models(
        self, *, since: str = "", until: str = ""
    ) -> list[tuple[str, str, int]]:
        """(runtime, model, tokens) of every model no price was found for in the window."""
        table, params = _window(since, until)
        rows = await self.db.fetchall(
            f"SELECT u.runtime, u.model, sum(u.unpriced_tokens) FROM {table} "
            "WHERE u.unpriced_samples > 0 GROUP BY u.runtime, u.model ORDER BY 3 DESC, 1, 2",
            tuple(params),
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def no_bead(self, *, since: str = "", until: str = "") -> tuple[Cost, int]:
        """Spend with no bead on the agent's hook, and its sample count (shown on its own,
        never spread over beads)."""
        table, params = _window(since, until)
        row = await self.db.fetchone(
            "SELECT coalesce(sum(u.cost_usd), 0), coalesce(sum(u.unpriced_samples), 0), "
            f"coalesce(sum(u.unpriced_tokens), 0), coalesce(sum(u.samples), 0) FROM {table} "
            "WHERE u.bead_id = 0",
            tuple(params),
        )
        if row is None:
            return Cost(0.0), 0
        return Cost(float(row[0]), int(row[1]), int(row[2])), int(row[3])

    async def logged(self, *, since: str = "", until: str = "") -> list[SessionCost]:
        """Each session's CLI figure beside ours: the cumulative figures CLIs write (Claude's
        cost-state) and the per-call ones summed (Aider, OpenCode), for sessions active in
        the window. Ours is every sample of that session."""
        rows = await self.db.fetchall(
            "SELECT l.runtime, l.session, l.agent, l.cost_usd, (SELECT coalesce(sum(m.cost_usd), "
            "0) FROM metrics m WHERE m.runtime = l.runtime AND m.session = l.session) "
            "FROM logged_costs l WHERE l.at >= ? AND (? = '' OR l.at < ?) "
            "UNION ALL "
            # By time: grouped by session, the planner scanned every row of a year (0.5 s on
            # 1.8M rows) where the window is a range of `metrics_by_time`.
            "SELECT runtime, session, max(agent), sum(logged_cost_usd), sum(cost_usd) "
            "FROM metrics INDEXED BY metrics_by_time "
            "WHERE logged_cost_usd IS NOT NULL AND at >= ? AND (? = '' OR at < ?) "
            "AND NOT EXISTS (SELECT 1 FROM logged_costs l WHERE l.runtime = metrics.runtime "
            "AND l.session = metrics.session) GROUP BY runtime, session ORDER BY 1, 2",
            (since, until, until, since, until, until),
        )
        return [
            SessionCost(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4])) for r in rows
        ]

    async def bead_costs(self, ids: Iterable[int]) -> dict[int, Cost]:
        """Each bead's whole spend (every attempt), in one query; beads with no samples are
        left out (the kanban shows no label for them)."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return {}
        found: dict[int, Cost] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            rows = await self.db.fetchall(
                "SELECT bead_id, sum(cost_usd), sum(unpriced_samples), sum(unpriced_tokens) "
                f"FROM usage_hourly WHERE bead_id IN ({marks}) GROUP BY bead_id",
                tuple(chunk),
            )
            for r in rows:
                found[int(r[0])] = Cost(float(r[1]), int(r[2]), int(r[3]))
        return found

    async def bead_attempts(self, bead_id: int) -> list[AttemptCost]:
        """A bead's attempts, oldest first: each dispatch, then spend on it with no dispatch
        (hooked by hand) as one more attempt, each with its tokens, cost and verdict."""
        bead = await self.db.fetchone("SELECT status FROM beads WHERE id = ?", (bead_id,))
        if bead is None:
            return []
        dispatches = await self.db.fetchall(
            "SELECT d.id, d.agent, coalesce(a.role, ''), d.claimed_at, d.closed_at, "
            "CASE WHEN d.state = 'closed' THEN coalesce(nullif(d.outcome, ''), 'closed') "
            "ELSE '' END FROM dispatches d LEFT JOIN agents a ON a.name = d.agent "
            "WHERE d.bead_id = ? ORDER BY d.id",
            (bead_id,),
        )
        spent = {
            int(r[0]): r
            for r in await self.db.fetchall(
                "SELECT dispatch_id, sum(input_tokens), sum(output_tokens), "
                "sum(cache_read_tokens), sum(cache_write_tokens), sum(cost_usd), "
                "sum(unpriced_samples), sum(unpriced_tokens), max(agent), max(role), "
                "min(hour), max(hour) FROM usage_hourly WHERE bead_id = ? GROUP BY dispatch_id",
                (bead_id,),
            )
        }
        plan: list[tuple[int | None, str, str, str, str, str, Sequence[Any] | None]] = []
        for d in dispatches:
            usage = spent.get(int(d[0]))
            role = str(d[2]) or (str(usage[9]) if usage is not None else "")
            plan.append((int(d[0]), str(d[1]), role, str(d[3]), str(d[4]), str(d[5]), usage))
        by_hand = spent.get(0)
        if by_hand is not None:
            plan.append(
                (None, str(by_hand[8]), str(by_hand[9]), str(by_hand[10]), "", "hooked", by_hand)
            )
        outcomes = [p[5] if p[0] is not None else "" for p in plan]
        if by_hand is not None and str(bead[0]) not in ("hooked", "slung"):
            outcomes[-1] = "closed"
        marks = verdicts(BeadStatus(str(bead[0])), outcomes)
        attempts: list[AttemptCost] = []
        for (dispatch_id, agent, role, start, end, outcome, found), verdict in zip(
            plan, marks, strict=True
        ):
            u: Sequence[Any] = found if found is not None else (0,) * 12
            attempts.append(
                AttemptCost(
                    dispatch_id=dispatch_id,
                    agent=agent,
                    role=role,
                    start=start,
                    end=end,
                    outcome=outcome,
                    input=int(u[1] or 0),
                    output=int(u[2] or 0),
                    cache_read=int(u[3] or 0),
                    cache_write=int(u[4] or 0),
                    cost=Cost(float(u[5] or 0.0), int(u[6] or 0), int(u[7] or 0)),
                    verdict=verdict,
                )
            )
        return attempts

    async def reprice_groups(self, after_id: int = 0, limit: int = 20_000) -> list[RepriceRow]:
        """The next `limit` samples after `after_id` (by id), for pricing again when the
        price table or the overrides changed. Callers price by (runtime, provider, model, day)."""
        rows = await self.db.fetchall(
            "SELECT id, at, runtime, model, input_tokens, output_tokens, cache_read_tokens, "
            "cache_write_tokens, cache_write_1h_tokens, cost_usd, priced, price_source, provider "
            "FROM metrics WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [
            RepriceRow(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
                int(r[7]),
                int(r[8]),
                float(r[9]),
                bool(r[10]),
                str(r[11]),
                str(r[12]),
            )
            for r in rows
        ]

    async def reprice(self, rows: Iterable[tuple[int, float, bool, str]]) -> int:
        """Set (id, cost_usd, priced, price_source) in one transaction; only rows that change
        are written (the hourly triggers move their totals). Returns how many changed."""
        values = [(round(cost, 9), int(priced), source, id_) for id_, cost, priced, source in rows]
        if not values:
            return 0
        async with self.db.write() as conn:
            cursor = await conn.executemany(
                "UPDATE metrics SET cost_usd = ?1, priced = ?2, price_source = ?3 WHERE id = ?4 "
                "AND (cost_usd != ?1 OR priced != ?2 OR price_source != ?3)",
                values,
            )
            return max(0, cursor.rowcount)

    async def total_cost(self, *, since: str = "", until: str = "") -> float:
        """Dollars spent in a time window (priced samples only; see `cost`)."""
        return (await self.cost(since=since, until=until)).usd

    async def latest_by_agent(self) -> dict[str, UsageSample]:
        """Each agent's newest sample (its latest call's prompt size estimates context use)."""
        columns = ", ".join(f"m.{c.strip()}" for c in _SAMPLE_COLUMNS.split(","))
        rows = await self.db.fetchall(
            f"SELECT {columns} FROM metrics m JOIN (SELECT agent, max(at) AS at FROM metrics "
            "WHERE agent != '' GROUP BY agent) newest ON newest.agent = m.agent "
            "AND newest.at = m.at ORDER BY m.id"
        )
        return {str(r[1]): _sample(r) for r in rows}

    async def first_at(self) -> str:
        """When the oldest sample was taken, "" if there is none (forecasts need the span)."""
        row = await self.db.fetchone("SELECT coalesce(min(at), '') FROM metrics")
        return str(row[0]) if row is not None else ""

    async def by_hour(self, *, since: str) -> list[HourCell]:
        """Samples and dollars per weekday and hour since `since`, aggregated in SQL."""
        rows = await self.db.fetchall(
            f"SELECT {WEEKDAY_HOUR}, count(*), sum(cost_usd) FROM metrics WHERE at >= ? "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            (since,),
        )
        return [HourCell(int(r[0]), int(r[1]), int(r[2]), float(r[3])) for r in rows]

    async def snapshot(self, kpi: KpiSnapshot) -> None:
        """Append one KPI snapshot."""
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO kpi_snapshots ({_KPI_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kpi.at,
                    kpi.beads_active,
                    kpi.beads_done,
                    kpi.beads_failed,
                    kpi.agents_active,
                    kpi.agents_idle,
                    kpi.agents_awaiting,
                    kpi.convoys_active,
                    kpi.cost_today_usd,
                    kpi.tokens_today,
                    kpi.window_seconds,
                    kpi.done_window,
                    kpi.failed_window,
                    json.dumps(dict(kpi.agents_by_state), sort_keys=True),
                    kpi.burn_usd_hour,
                    kpi.unpriced_tokens_today,
                    kpi.burn_unpriced_tokens,
                ),
            )

    async def snapshots(self, *, since: str = "", limit: int = 1000) -> list[KpiSnapshot]:
        """KPI snapshots in time order."""
        rows = await self.db.fetchall(
            f"SELECT {_KPI_COLUMNS} FROM kpi_snapshots WHERE at >= ? ORDER BY at LIMIT ?",
            (since, limit),
        )
        return [_kpi(row) for row in rows]

    async def latest_snapshot(self) -> KpiSnapshot | None:
        """The newest KPI snapshot, or None before the first."""
        row = await self.db.fetchone(
            f"SELECT {_KPI_COLUMNS} FROM kpi_snapshots ORDER BY at DESC, id DESC LIMIT 1"
        )
        return _kpi(row) if row is not None else None


_KPI_COLUMNS = (
    "at, beads_active, beads_done, beads_failed, agents_active, agents_idle, agents_awaiting, "
    "convoys_active, cost_today_usd, tokens_today, window_seconds, done_window, failed_window, "
    "agents_by_state, burn_usd_hour, unpriced_tokens_today, burn_unpriced_tokens"
)


def _kpi(row: Sequence[Any]) -> KpiSnapshot:
    try:
        states = json.loads(row[13] or "{}")
    except ValueError:
        states = {}
    return KpiSnapshot(
        at=str(row[0]),
        beads_active=int(row[1]),
        beads_done=int(row[2]),
        beads_failed=int(row[3]),
        agents_active=int(row[4]),
        agents_idle=int(row[5]),
        agents_awaiting=int(row[6]),
        convoys_active=int(row[7]),
        cost_today_usd=float(row[8]),
        tokens_today=int(row[9]),
        window_seconds=int(row[10]),
        done_window=int(row[11]),
        failed_window=int(row[12]),
        agents_by_state=(
            {str(k): int(v) for k, v in states.items()} if isinstance(states, dict) else {}
        ),
        burn_usd_hour=float(row[14]),
        unpriced_tokens_today=int(row[15]),
        burn_unpriced_tokens=int(row[16]),
    )


async def _insert(conn: aiosqlite.Connection, samples: Iterable[UsageSample]) -> int:
    """Insert by `source_key` (a key seen before only updates a grown call, `_GROWN`); counts
    new and grown rows by rowcount (sqlite3_changes leaves out the hourly rollup's trigger
    writes)."""
    rows = [
        (
            s.at,
            s.agent,
            s.model,
            s.runtime,
            s.bead_id,
            s.input_tokens,
            s.output_tokens,
            s.cache_read_tokens,
            s.cache_write_tokens,
            s.cost_usd,
            s.source_key or None,
            s.role,
            s.session,
            s.dispatch_id,
            s.cache_write_1h_tokens,
            int(s.priced),
            s.price_source,
            s.logged_cost_usd,
            s.source_id,
            s.provider,
        )
        for s in samples
    ]
    if not rows:
        return 0
    cursor = await conn.executemany(
        f"INSERT INTO metrics ({_SAMPLE_COLUMNS}) VALUES ({', '.join('?' * 20)}) {_GROWN}", rows
    )
    return max(0, cursor.rowcount)


_GROWN = """ON CONFLICT (source_key) DO UPDATE SET
    input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
    cache_read_tokens = excluded.cache_read_tokens,
    cache_write_tokens = excluded.cache_write_tokens,
    cache_write_1h_tokens = excluded.cache_write_1h_tokens, cost_usd = excluded.cost_usd,
    priced = excluded.priced, price_source = excluded.price_source,
    logged_cost_usd = coalesce(excluded.logged_cost_usd, metrics.logged_cost_usd)
WHERE excluded.output_tokens > metrics.output_tokens"""
"""A call seen again under its key is ignored, unless it has grown: Claude Code logs one answer
as several lines with the same ids, its output tokens counted up to the last line, and a
read may end between them. Where it was attributed stays as first recorded."""
