"""How fast the store answers the board's questions on a big town (run on demand).

    .venv/bin/python benchmarks/bench_store.py [--beads 100000 --deps 120000 --runs 300]

The kanban, the ready list and a claim each get a 20 ms p99 budget: the TUI refreshes
the board from the database, and a claim sits on every agent's dispatch path. This
builds a town far bigger than any real one (research perf-baseline.md §5 used the same
shape), times the store's own methods with `time.perf_counter`, and prints p50/p99.
When a p99 misses the budget it prints the EXPLAIN QUERY PLAN and a per-statement
timing of that operation, to show which query is slow. `--try-index` adds an index to
the benchmark's database (never to the schema) and times everything again, to check a
proposed fix before anyone changes a migration.

The schema comes from `open_store` (the real migrations). The rows are bulk-inserted
through `store.db.conn` with `executemany` in one transaction, because building 100k
beads through `BeadRepo.add` (one transaction and one re-read each) would take minutes
and would measure nothing we care about here. The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import aiosqlite

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import KANBAN_COLUMNS, BeadStatus, Lane
from tundra_tui.domain.clock import iso
from tundra_tui.store import RosterEntry, Store, open_store

# The store's own SQL fragments, so the plans and timings below are of the real queries.
from tundra_tui.store.beads import _QUEUE_ORDER, _READY_WHERE

TARGET_MS = 20.0
AGENTS = tuple(f"polecat-{n:02d}" for n in range(1, 21))
STATUS_MIX = (
    (BeadStatus.DONE, 0.60),
    (BeadStatus.BACKLOG, 0.20),
    (BeadStatus.HOOKED, 0.05),
    (BeadStatus.SLUNG, 0.05),
    (BeadStatus.REVIEW, 0.05),
    (BeadStatus.FAILED, 0.025),
    (BeadStatus.ESCALATED, 0.025),
)
LANE_MIX = ((Lane.CRITICAL, 0.10), (Lane.STANDARD, 0.70), (Lane.EXPERIMENTAL, 0.20))
PRIORITY_MIX = ((0, 0.05), (1, 0.15), (2, 0.50), (3, 0.20), (4, 0.10))
BLOCKER_MIX = ((0, 0.30), (1, 0.35), (2, 0.20), (3, 0.15))
"""Blockers per bead: 1.2 on average, so 100k beads carry about 120k dependencies."""
LABELS = ("ui", "store", "daemon", "cli", "docs", "tests", "perf", "security", "flaky", "infra")
CONVOYS = 100
CONVOY_SHARE = 0.05
START = datetime(2025, 1, 1, tzinfo=UTC)

T = TypeVar("T")


# ---- building the town --------------------------------------------------------------------


def _mix(rng: random.Random, mix: Sequence[tuple[T, float]], n: int) -> list[T]:
    """Exactly the given shares of `n` (up to rounding), in random order."""
    values = [value for value, share in mix for _ in range(round(share * n))]
    values = (values + [mix[0][0]] * n)[:n]
    rng.shuffle(values)
    return values


def _blocker_counts(rng: random.Random, beads: int, deps: int) -> list[int]:
    """0-3 blockers per bead among earlier beads, nudged until they sum to exactly `deps`."""
    values = [k for k, _ in BLOCKER_MIX]
    weights = [share for _, share in BLOCKER_MIX]
    counts = [min(k, i) for i, k in enumerate(rng.choices(values, weights, k=beads))]
    room = sum(min(3, i) for i in range(beads))
    if deps > room:
        raise SystemExit(f"--deps {deps} is more than {beads} beads can hold ({room})")
    total = sum(counts)
    while total != deps:
        i = rng.randrange(1, beads)
        step = 1 if total < deps else -1
        if 0 <= counts[i] + step <= min(3, i):
            counts[i] += step
            total += step
    return counts


@dataclass(frozen=True, slots=True)
class Town:
    """Rows ready for executemany, in the column order of the INSERTs below."""

    convoys: Sequence[tuple[int, str, str]]
    beads: Sequence[tuple[object, ...]]
    deps: Sequence[tuple[int, int]]
    labels: Sequence[tuple[int, str]]
    events: Sequence[tuple[object, ...]]


def generate(beads: int, deps: int, seed: int) -> Town:
    """A realistic mix: mostly done work, a big backlog, some in flight, a few failures."""
    rng = random.Random(seed)
    convoys = [
        (c, f"convoy-{c}", rng.choice(("active", "active", "active", "pending", "completed")))
        for c in range(1, CONVOYS + 1)
    ]
    statuses = _mix(rng, STATUS_MIX, beads)
    lanes = _mix(rng, LANE_MIX, beads)
    priorities = _mix(rng, PRIORITY_MIX, beads)
    bead_rows: list[tuple[object, ...]] = []
    event_rows: list[tuple[object, ...]] = []
    label_rows: list[tuple[int, str]] = []
    for i in range(beads):
        bead_id = i + 1
        status = statuses[i]
        created = START + timedelta(seconds=30 * i)
        hooked = slung = done = ""
        assignee = ""
        if status is not BeadStatus.BACKLOG:
            assignee = rng.choice(AGENTS)
            hooked = iso(created + timedelta(minutes=rng.uniform(1, 600)))
        if status in (BeadStatus.SLUNG, BeadStatus.REVIEW, BeadStatus.DONE, BeadStatus.FAILED):
            slung = iso(created + timedelta(minutes=rng.uniform(600, 700)))
        if status is BeadStatus.DONE:
            # Work finishes out of creation order, so the Done column's order is its own.
            done = iso(created + timedelta(minutes=rng.uniform(700, 5000)))
        updated = max(iso(created), hooked, slung, done)
        convoy = rng.randint(1, CONVOYS) if rng.random() < CONVOY_SHARE else None
        title = f"Bead {bead_id}: {rng.choice(LABELS)} work item {rng.getrandbits(32):08x}"
        description = "Steps to reproduce and acceptance criteria. " * rng.randint(1, 4)
        bead_rows.append(
            (
                bead_id,
                title,
                description,
                status.value,
                lanes[i].value,
                priorities[i],
                assignee,
                convoy,
                iso(created),
                updated,
                hooked,
                slung,
                done,
            )
        )
        data = json.dumps({"title": title, "lane": lanes[i].value, "priority": priorities[i]})
        event_rows.append((iso(created), "bench", "bead.created", bead_id, "", data))
        if status is not BeadStatus.BACKLOG:
            event_rows.append((updated, assignee, f"bead.{status.value}", bead_id, assignee, "{}"))
        if rng.random() < 0.3:
            for label in sorted(set(rng.sample(LABELS, rng.randint(1, 2)))):
                label_rows.append((bead_id, label))
    dep_rows = [
        (i + 1, blocker)
        for i, k in enumerate(_blocker_counts(rng, beads, deps))
        for blocker in rng.sample(range(1, i + 1), k)
    ]
    return Town(convoys, bead_rows, dep_rows, label_rows, event_rows)


async def load(store: Store, town: Town) -> None:
    """Bulk-insert through the store's connection, in one BEGIN IMMEDIATE transaction."""
    now = store.db.now()
    async with store.db.write() as conn:
        await conn.executemany(
            "INSERT INTO convoys (id, name, status, created_at, started_at) VALUES (?, ?, ?, ?, ?)",
            [
                (c, name, status, now, now if status != "pending" else "")
                for c, name, status in town.convoys
            ],
        )
        await conn.executemany(
            "INSERT INTO beads (id, title, description, status, lane, priority, assignee, "
            "convoy_id, created_at, updated_at, hooked_at, slung_at, done_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            town.beads,
        )
        await conn.executemany(
            "INSERT INTO bead_deps (bead_id, blocker_id) VALUES (?, ?)", town.deps
        )
        await conn.executemany(
            "INSERT INTO bead_labels (bead_id, label) VALUES (?, ?)", town.labels
        )
        await conn.executemany(
            "INSERT INTO events (at, actor, kind, bead_id, agent, data) VALUES (?, ?, ?, ?, ?, ?)",
            town.events,
        )
    # A long-running town has been checkpointed; measure that, not a 100 MB WAL.
    await store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# ---- measuring --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """One operation's latency distribution, in milliseconds."""

    name: str
    p50: float
    p99: float
    worst: float

    @property
    def meets_target(self) -> bool:
        return self.p99 <= TARGET_MS


def _percentile(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: p99 of 300 runs is the 297th fastest, a real observation."""
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


async def measure(
    name: str, operation: Callable[[], Awaitable[object]], runs: int, warmup: int
) -> Result:
    """Time `runs` awaited calls after `warmup` untimed ones (a warm page cache, as in use)."""
    for _ in range(warmup):
        await operation()
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        await operation()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return Result(name, _percentile(samples, 50), _percentile(samples, 99), samples[-1])


def _operations(store: Store) -> dict[str, Callable[[], Awaitable[object]]]:
    agents = iter(AGENTS * 10_000)

    async def claim() -> object:
        return await store.beads.claim_next(next(agents), actor="bench")

    return {
        "kanban(per_column=50)": lambda: store.beads.kanban(per_column=50),
        "counts()": store.beads.counts,
        "ready(limit=50)": lambda: store.beads.ready(limit=50),
        "claim_next(agent)": claim,
    }


def _statements() -> dict[str, list[tuple[str, str, tuple[object, ...]]]]:
    """The SQL each operation runs (label, sql, params), for plans and per-statement times."""
    column_sql = f"SELECT * FROM beads b WHERE b.status = ? ORDER BY {_QUEUE_ORDER} LIMIT 50"
    done_sql = (
        "SELECT * FROM beads b WHERE b.status = ? ORDER BY b.done_at DESC, b.id DESC LIMIT 50"
    )
    counts_sql = "SELECT status, n FROM bead_counts"
    kanban: list[tuple[str, str, tuple[object, ...]]] = [("counts", counts_sql, ())]
    for status in (*KANBAN_COLUMNS, BeadStatus.FAILED, BeadStatus.ESCALATED):
        sql = done_sql if status is BeadStatus.DONE else column_sql
        kanban.append((f"column {status.value}", sql, (status.value,)))
    ready_sql = f"SELECT * FROM beads b WHERE {_READY_WHERE} ORDER BY {_QUEUE_ORDER} LIMIT 50"
    claim_pick = f"SELECT b.id FROM beads b WHERE {_READY_WHERE} ORDER BY {_QUEUE_ORDER} LIMIT 1"
    return {
        "kanban(per_column=50)": kanban,
        "counts()": [("counts", counts_sql, ())],
        "ready(limit=50)": [("ready", ready_sql, ())],
        "claim_next(agent)": [("pick the head of the queue", claim_pick, ())],
    }


async def _sql_p50(
    conn: aiosqlite.Connection, sql: str, params: tuple[object, ...], n: int
) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await conn.execute_fetchall(sql, params)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return _percentile(samples, 50)


async def explain(conn: aiosqlite.Connection, result: Result, runs: int) -> None:
    """Print the plan and median time of each statement behind an operation.

    Whatever the statements' sum leaves of the operation's p50 went to aiosqlite round
    trips (one per execute, fetch and cursor close) and to building Bead objects.
    """
    print(f"\n{result.name}: query plans and per-statement p50 (one round trip each)")
    total = 0.0
    for label, sql, params in _statements()[result.name]:
        plan = [row[3] for row in await conn.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}", params)]
        p50 = await _sql_p50(conn, sql, params, max(5, runs // 10))
        total += p50
        print(f"  {label:<28} p50 {p50:7.2f} ms   plan: {' | '.join(plan)}")
    print(
        f"  {'sum of statements':<28} p50 {total:7.2f} ms   of the operation's {result.p50:.2f} ms"
    )


def print_table(title: str, results: Sequence[Result]) -> None:
    print(f"\n{title}")
    print(f"  {'operation':<24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  p99 <= {TARGET_MS:g} ms")
    for r in results:
        verdict = "yes" if r.meets_target else "NO"
        print(f"  {r.name:<24} {r.p50:8.2f} {r.p99:8.2f} {r.worst:8.2f}  {verdict}")


async def run_all(store: Store, runs: int, warmup: int) -> list[Result]:
    return [
        await measure(name, operation, runs, warmup)
        for name, operation in _operations(store).items()
    ]


# ---- main ---------------------------------------------------------------------------------


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return f"{total / 2**20:.1f} MiB"


async def bench(args: argparse.Namespace, db: Path) -> None:
    started = time.perf_counter()
    town = generate(args.beads, args.deps, args.seed)
    store = await open_store(db)
    try:
        roster = [RosterEntry(name, Role.POLECAT, Runtime.DEMO) for name in AGENTS]
        await store.agents.sync_roster(roster, actor="bench")
        await load(store, town)
        if args.analyze:
            await store.db.conn.execute("ANALYZE")
        built = time.perf_counter() - started
        ready = await store.db.fetchone(f"SELECT count(*) FROM beads b WHERE {_READY_WHERE}")
        counts = await store.beads.counts()

        print(f"machine   {platform.machine()}, {os.cpu_count()} cores, {platform.system()}")
        print(f"python    {platform.python_version()}, aiosqlite {aiosqlite.__version__}")
        print(f"sqlite    {sqlite3.sqlite_version}, WAL, synchronous=NORMAL")
        print(f"database  {db} ({_size(db)}), built in {built:.1f} s")
        print(
            f"town      {len(town.beads)} beads, {len(town.deps)} deps, {len(town.labels)} "
            f"labels, {len(town.events)} events; {ready[0] if ready else 0} ready; "
            + ", ".join(f"{s.value} {n}" for s, n in counts.items())
        )
        hop = await _sql_p50(store.db.conn, "SELECT 1", (), 200)
        print(f"timing    {args.runs} runs after {args.warmup} warm-ups, perf_counter")
        print(f"          one aiosqlite round trip (SELECT 1) takes {hop:.2f} ms p50 here")
        print(
            f"stats     {'ANALYZE run' if args.analyze else 'no ANALYZE (the store never runs it)'}"
        )

        # The generated town (a million small Python objects) is the benchmark's, not the
        # store's: drop it and freeze what is left, so full GC passes over it do not show
        # up as store latency. A control room never holds 100k beads in memory.
        del town
        gc.collect()
        gc.freeze()
        results = await run_all(store, args.runs, args.warmup)
        print_table("store methods, as the TUI and the mayor call them", results)
        for result in results:
            if not result.meets_target:
                await explain(store.db.conn, result, args.runs)

        if args.try_index:
            for ddl in args.try_index:
                await store.db.conn.execute(ddl)
            results = await run_all(store, args.runs, args.warmup)
            print_table(f"the same, after {'; '.join(args.try_index)}", results)
            for result in results:
                await explain(store.db.conn, result, args.runs)
    finally:
        await store.close()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beads", type=int, default=100_000)
    parser.add_argument("--deps", type=int, default=120_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, help="keep the database here (must not exist)")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after loading")
    parser.add_argument(
        "--try-index",
        action="append",
        metavar="DDL",
        help="a CREATE INDEX to add to the benchmark database before timing again",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.db is not None:
        if args.db.exists():
            raise SystemExit(f"{args.db} exists; the benchmark builds a fresh database")
        asyncio.run(bench(args, args.db))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        asyncio.run(bench(args, Path(tmp) / "town.db"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
