"""Token and cost samples, and KPI snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store.db import Database

_DIMENSIONS = {"agent": "agent", "model": "model", "runtime": "runtime", "day": "substr(at, 1, 10)"}


@dataclass(frozen=True, slots=True)
class CostRow:
    """One group of a cost rollup."""

    key: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    samples: int


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
            before = conn.total_changes
            await conn.executemany(
                "INSERT OR IGNORE INTO metrics (at, agent, runtime, model, bead_id, input_tokens, "
                "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, source_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    async def rollup(self, by: str, *, since: str = "", until: str = "") -> list[CostRow]:
        """Tokens and cost grouped by agent, model, runtime or day, costliest first."""
        if by not in _DIMENSIONS:
            raise ValueError(f"cannot group costs by {by!r}")
        expr = _DIMENSIONS[by]
        order = "key" if by == "day" else "cost DESC, key"
        rows = await self.db.fetchall(
            f"SELECT {expr} AS key, sum(input_tokens), sum(output_tokens), sum(cost_usd) AS cost, "
            "count(*) FROM metrics WHERE at >= ? AND (? = '' OR at < ?) "
            f"GROUP BY key ORDER BY {order}",
            (since, until, until),
        )
        return [CostRow(str(r[0]), int(r[1]), int(r[2]), float(r[3]), int(r[4])) for r in rows]

    async def total_cost(self, *, since: str = "", until: str = "") -> float:
        """Dollars spent in a time window."""
        row = await self.db.fetchone(
            "SELECT coalesce(sum(cost_usd), 0) FROM metrics WHERE at >= ? AND (? = '' OR at < ?)",
            (since, until, until),
        )
        return float(row[0]) if row is not None else 0.0

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
