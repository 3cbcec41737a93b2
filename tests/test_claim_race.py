"""Two claimers never get the same bead (DESIGN.md: claims are one atomic UPDATE).

Claimers race in separate processes against one database, as agents' `at` commands
do, and in one process over two connections for fast feedback. Each round's claims
are checked three ways: what the claimers were told, the beads table and the append-only
events log.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, Bead, Lane
from tundra_tui.domain.errors import IllegalTransition
from tundra_tui.store import RosterEntry, Store, open_store

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "helpers" / "claim_worker.py"
ROUNDS, BEADS_PER_ROUND = 20, 60
IN_PROCESS_ROUNDS = 8
"""Fewer rounds in process: it is the quick check; the cross-process test is the thorough one."""
SPECIFIC_ROUNDS = 100
AGENTS = ("a1", "a2")
SEEDER = "seeder"
START_LEAD = 0.02
"""Seconds between sending a command and both claimers starting it together."""
REPLY_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Round:
    """The beads one round offers: those claim_next must hand out and those it must not."""

    ready: frozenset[int]
    blocked: frozenset[int]


async def _open(db: Path) -> Store:
    store = await open_store(db, busy_timeout_ms=5000)
    roster = [RosterEntry(name, Role.POLECAT, Runtime.DEMO) for name in (*AGENTS, SEEDER)]
    await store.agents.sync_roster(roster, actor="test")
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await _open(tmp_path / "town.db")
    yield store
    await store.close()


async def seed_round(store: Store, round_no: int, n: int = BEADS_PER_ROUND) -> Round:
    """Add `n` beads: most ready, some blocked only by a done bead (ready), some blocked."""
    finished = await store.beads.add(f"r{round_no} finished blocker", actor="test")
    await store.beads.sling(finished.id, SEEDER, actor="test")
    await store.beads.apply(finished.id, Action.DONE, actor="test")
    ready: set[int] = set()
    blocked: set[int] = set()
    previous = finished.id
    for i in range(n):
        # Every sixth bead waits only on the done one; the next waits on that bead,
        # which will be hooked and never done, so it must stay in the backlog.
        is_blocked = i % 6 == 1
        blockers = {0: [finished.id], 1: [previous]}.get(i % 6, [])
        bead = await store.beads.add(
            f"r{round_no} bead {i}",
            actor="test",
            lane=tuple(Lane)[i % 3],
            priority=(i * 7) % 5,
            blocked_by=blockers,
        )
        (blocked if is_blocked else ready).add(bead.id)
        previous = bead.id
    offered = {bead.id for bead in await store.beads.ready(limit=10 * n)}
    assert offered == ready, f"round {round_no}: ready() disagrees with the seeded beads"
    return Round(frozenset(ready), frozenset(blocked))


async def check_round(
    store: Store, round_no: int, offered: Round, claims: Mapping[str, list[int]]
) -> None:
    """Every ready bead claimed exactly once, in queue order, and nothing blocked touched."""
    every = [bead_id for ids in claims.values() for bead_id in ids]
    twice = [bead_id for bead_id, n in Counter(every).items() if n > 1]
    assert not twice, f"round {round_no}: claimed twice: {twice}"
    assert set(every) == offered.ready, (
        f"round {round_no}: unclaimed {sorted(offered.ready - set(every))}, "
        f"wrongly claimed {sorted(set(every) - offered.ready)}"
    )
    owner = {bead_id: agent for agent, ids in claims.items() for bead_id in ids}
    await _check_hooks(store, round_no, owner, offered.blocked)
    for agent, ids in claims.items():
        keys = await _queue_keys(store, ids)
        # Each claim takes the head of a shrinking queue, so one claimer's wins ascend.
        assert [keys[i] for i in ids] == sorted(keys[i] for i in ids), (
            f"round {round_no}: {agent} claimed out of queue order: {ids}"
        )


async def _check_hooks(
    store: Store, round_no: int, owner: Mapping[int, str], untouched: Iterable[int]
) -> None:
    """The beads table and the events log agree with what each claimer was told."""
    ids = [*owner, *untouched]
    marks = ",".join("?" * len(ids))
    rows = await store.db.fetchall(
        f"SELECT id, status, assignee FROM beads WHERE id IN ({marks})", tuple(ids)
    )
    state = {row["id"]: (row["status"], row["assignee"]) for row in rows}
    for bead_id, agent in owner.items():
        assert state[bead_id] == ("hooked", agent), f"round {round_no}: bead {bead_id}"
    for bead_id in untouched:
        assert state[bead_id] == ("backlog", ""), f"round {round_no}: bead {bead_id}"
    hooks = await store.db.fetchall(
        f"SELECT bead_id, agent FROM events WHERE kind = 'bead.hook' AND bead_id IN ({marks})",
        tuple(ids),
    )
    per_bead = Counter(row["bead_id"] for row in hooks)
    assert all(per_bead[bead_id] == 1 for bead_id in owner), (
        f"round {round_no}: bead.hook events per bead: "
        f"{ {b: per_bead[b] for b in owner if per_bead[b] != 1} }"
    )
    assert {row["bead_id"]: row["agent"] for row in hooks} == dict(owner)


async def _queue_keys(store: Store, ids: list[int]) -> dict[int, tuple[int, int, str, int]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await store.db.fetchall(
        f"SELECT id, lane_rank, priority, created_at FROM beads WHERE id IN ({marks})",
        tuple(ids),
    )
    return {row[0]: (row[1], row[2], row[3], row[0]) for row in rows}


# ---- in one process: two connections, one event loop -------------------------------------


async def _drain(store: Store, agent: str) -> list[int]:
    claimed: list[int] = []
    while (bead := await store.beads.claim_next(agent, actor=agent)) is not None:
        claimed.append(bead.id)
    return claimed


async def test_claim_next_race_in_process(tmp_path: Path) -> None:
    db = tmp_path / "town.db"
    first, second = await _open(db), await open_store(db, busy_timeout_ms=5000)
    try:
        for round_no in range(IN_PROCESS_ROUNDS):
            offered = await seed_round(first, round_no)
            got = await asyncio.gather(_drain(first, AGENTS[0]), _drain(second, AGENTS[1]))
            await check_round(first, round_no, offered, dict(zip(AGENTS, got, strict=True)))
        assert await first.db.integrity_check() == "ok"
    finally:
        await first.close()
        await second.close()


async def test_claim_of_one_bead_race_in_process(tmp_path: Path) -> None:
    db = tmp_path / "town.db"
    first, second = await _open(db), await open_store(db, busy_timeout_ms=5000)
    stores = {AGENTS[0]: first, AGENTS[1]: second}
    winners: dict[int, str] = {}
    try:
        for round_no in range(SPECIFIC_ROUNDS):
            bead = await first.beads.add(f"contested {round_no}", actor="test")
            results = await asyncio.gather(
                *(s.beads.claim(bead.id, agent, actor=agent) for agent, s in stores.items()),
                return_exceptions=True,
            )
            won = [a for a, r in zip(stores, results, strict=True) if isinstance(r, Bead)]
            assert len(won) == 1, f"round {round_no}: {results}"
            loser = next(r for r in results if not isinstance(r, Bead))
            assert isinstance(loser, IllegalTransition), repr(loser)
            assert won[0] in str(loser), loser
            winners[bead.id] = won[0]
        await _check_hooks(first, SPECIFIC_ROUNDS, winners, ())
    finally:
        await first.close()
        await second.close()


# ---- across processes ----------------------------------------------------------------------


@dataclass
class Claimer:
    """One claim_worker.py process, spoken to one JSON line at a time."""

    agent: str
    proc: asyncio.subprocess.Process
    stderr: Path

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), REPLY_TIMEOUT)
        if not line:
            await self.proc.wait()
            pytest.fail(f"{self.agent} exited ({self.proc.returncode}):\n{self.stderr.read_text()}")
        reply: dict[str, Any] = json.loads(line)
        if "crash" in reply:
            pytest.fail(f"{self.agent} crashed:\n{reply['crash']}")
        return reply


async def _start_claimer(db: Path, agent: str, stderr: Path) -> Claimer:
    # The worker imports the checkout under test, whatever the venv was installed from.
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            str(db),
            agent,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )
    return Claimer(agent, proc, stderr)


async def _together(claimers: list[Claimer], command: dict[str, Any]) -> list[dict[str, Any]]:
    """Send `command` to every claimer with one shared start instant."""
    start = time.monotonic() + START_LEAD
    return list(await asyncio.gather(*(c.ask({**command, "start": start}) for c in claimers)))


@pytest.fixture
async def claimers(store: Store, tmp_path: Path) -> AsyncIterator[list[Claimer]]:
    started = [
        await _start_claimer(store.db.path, agent, tmp_path / f"{agent}.err") for agent in AGENTS
    ]
    try:
        # Wait until both have opened the store, so the first round starts level too.
        await _together(started, {"op": "ping"})
        yield started
    finally:
        for claimer in started:
            if claimer.proc.stdin is not None:
                claimer.proc.stdin.close()
        for claimer in started:
            try:
                await asyncio.wait_for(claimer.proc.wait(), 10)
            except TimeoutError:
                claimer.proc.kill()
                await claimer.proc.wait()


@pytest.mark.slow
async def test_claim_next_race_across_processes(store: Store, claimers: list[Claimer]) -> None:
    wins = Counter[str]()
    for round_no in range(ROUNDS):
        offered = await seed_round(store, round_no)
        replies = await _together(claimers, {"op": "drain"})
        claims = {c.agent: list(r["claimed"]) for c, r in zip(claimers, replies, strict=True)}
        await check_round(store, round_no, offered, claims)
        wins.update({agent: len(ids) for agent, ids in claims.items()})
    assert await store.db.integrity_check() == "ok"
    # Not a fairness requirement: a claimer that never won would mean no race was run.
    assert all(wins[agent] > 0 for agent in AGENTS), wins


@pytest.mark.slow
async def test_claim_of_one_bead_race_across_processes(
    store: Store, claimers: list[Claimer]
) -> None:
    winners: dict[int, str] = {}
    for round_no in range(SPECIFIC_ROUNDS):
        bead = await store.beads.add(f"contested {round_no}", actor="test")
        replies = await _together(claimers, {"op": "claim", "id": bead.id})
        won = [c.agent for c, r in zip(claimers, replies, strict=True) if r["won"]]
        assert len(won) == 1, f"round {round_no}: winners {won}: {replies}"
        loser = next(r for r in replies if not r["won"])
        assert loser["error"] == "IllegalTransition", loser
        assert won[0] in loser["message"], loser
        winners[bead.id] = won[0]
    await _check_hooks(store, SPECIFIC_ROUNDS, winners, ())
    assert await store.db.integrity_check() == "ok"
    assert set(winners.values()) == set(AGENTS), "one claimer won every round: no race was run"
