"""Token and cost samples, and KPI snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store.db import Database

_DIMENSIONS = {
    "agent": "m.agent",
    "model": "m.model",
    "runtime": "m.runtime",
    "day": "substr(m.at, 1, 10)",
    "bead": "coalesce(m.bead_id, '')",
    "convoy": "coalesce(c.name, '')",
}
_LABELS = {"bead": "coalesce(max(b.title), '')"}
"""A readable name beside the key, where the key alone is an id."""
_BEAD_JOINS = "LEFT JOIN beads b ON b.id = m.bead_id LEFT JOIN convoys c ON c.id = b.convoy_id"
WEEKDAY_HOUR = "(CAST(strftime('%w', at) AS INTEGER) + 6) % 7, CAST(strftime('%H', at) AS INTEGER)"
"""Monday-first weekday (0-6) and hour (0-23) of a stored UTC timestamp."""


@dataclass(frozen=True, slots=True)
class CostRow:
    """One group of a cost rollup."""

    key: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    samples: int
    cache_tokens: int = 0
    """Prompt-cache reads and writes, kept apart from fresh input tokens."""
    label: str = ""
    """A readable name for the key (a bead's title), empty where the key says it all."""


@dataclass(frozen=True, slots=True)
class HourCell:
    """How much happened in one hour of one weekday (UTC), summed over a window."""

    weekday: int
    """0 = Monday ... 6 = Sunday."""
    hour: int
    count: int
    cost_usd: float


def _sample(r: Sequence[Any]) -> UsageSample:
    """A sample from its 19 selected columns, by name: new fields never shift the others."""
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
    )


class MetricsRepo:
    """Usage samples are idempotent by `source_key`, so re-reading a log never double-counts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, samples: Iterable[UsageSample]) -> int:
        """Insert samples in one transaction; returns how many were new."""
        rows = [
            (
                s.at,
                s.agent,
                s.runtime,
                s.model,
                s.bead_id,
                s.input_tokens,
                s.output_tokens,
                s.cache_read_tokens,
                s.cache_write_tokens,
                s.cost_usd,
                s.source_key or None,
            )
            for s in samples
        ]
        async with self.db.write() as conn:
            # rowcount (sqlite3_changes) leaves out the hourly rollup's trigger writes.
            cursor = await conn.executemany(
                "INSERT OR IGNORE INTO metrics (at, agent, runtime, model, bead_id, input_tokens, "
                "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, source_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return max(0, cursor.rowcount)

    async def rollup(
        self, by: str, *, since: str = "", until: str = "", limit: int | None = None
    ) -> list[CostRow]:
        """Tokens and cost grouped by agent, model, runtime, bead, convoy or day.

        Days come in date order, other groups costliest first; `limit` keeps the first
        groups only, so a rollup by bead stays cheap with many thousands of beads.
        Samples with no bead (or whose bead is in no convoy) group under the key "".
        """
        if by not in _DIMENSIONS:
            raise ValueError(f"cannot group costs by {by!r}")
        expr = _DIMENSIONS[by]
        label = _LABELS.get(by, "''")
        joins = _BEAD_JOINS if by in ("bead", "convoy") else ""
        order = "key" if by == "day" else "cost DESC, key"
        rows = await self.db.fetchall(
            f"SELECT {expr} AS key, sum(m.input_tokens), sum(m.output_tokens), "
            "sum(m.cost_usd) AS cost, count(*), "
            f"sum(m.cache_read_tokens + m.cache_write_tokens), {label} "
            f"FROM metrics m {joins} WHERE m.at >= ? AND (? = '' OR m.at < ?) "
            f"GROUP BY key ORDER BY {order} LIMIT ?",
            (since, until, until, -1 if limit is None else limit),
        )
        return [
            CostRow(str(r[0]), int(r[1]), int(r[2]), float(r[3]), int(r[4]), int(r[5]), str(r[6]))
            for r in rows
        ]

    async def total_cost(self, *, since: str = "", until: str = "") -> float:
        """Dollars spent in a time window."""
        row = await self.db.fetchone(
            "SELECT coalesce(sum(cost_usd), 0) FROM metrics WHERE at >= ? AND (? = '' OR at < ?)",
            (since, until, until),
        )
        return float(row[0]) if row is not None else 0.0

    async def latest_by_agent(self) -> dict[str, UsageSample]:
        """Each agent's newest sample (its latest call's prompt size estimates context use)."""
        rows = await self.db.fetchall(
            "SELECT m.at, m.agent, m.model, m.runtime, m.bead_id, m.input_tokens, "
            "m.output_tokens, m.cache_read_tokens, m.cache_write_tokens, m.cost_usd, "
            "m.source_key, m.role, m.session, m.dispatch_id, m.cache_write_1h_tokens, m.priced, "
            "m.price_source, m.logged_cost_usd, m.source_id "
            "FROM metrics m JOIN (SELECT agent, max(at) AS at FROM metrics WHERE agent != '' "
            "GROUP BY agent) newest ON newest.agent = m.agent AND newest.at = m.at ORDER BY m.id"
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
                "INSERT INTO kpi_snapshots (at, beads_active, beads_done, beads_failed, "
                "agents_active, agents_idle, agents_awaiting, convoys_active, cost_today_usd, "
                "tokens_today) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    async def snapshots(self, *, since: str = "", limit: int = 1000) -> list[KpiSnapshot]:
        """KPI snapshots in time order."""
        rows = await self.db.fetchall(
            "SELECT at, beads_active, beads_done, beads_failed, agents_active, agents_idle, "
            "agents_awaiting, convoys_active, cost_today_usd, tokens_today FROM kpi_snapshots "
            "WHERE at >= ? ORDER BY at LIMIT ?",
            (since, limit),
        )
        return [KpiSnapshot(*tuple(row)) for row in rows]
