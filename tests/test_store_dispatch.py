"""Dispatches, notes, town flags and mail deliveries in the store (schema v4).

Each hand-over step is one transaction: these tests drive the repositories directly on a
real database, and race two real processes for one bead.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.test_claim_race import _start_claimer, _together
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, BeadStatus
from tundra_tui.domain.dispatch import DispatchKind, DispatchState
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.store import RosterEntry, Store, open_store

OP = "operator"
AGENTS = ("p1", "p2", "crew")
POLECAT = DispatchKind.POLECAT


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db")
    roster = [RosterEntry(name, Role.POLECAT, Runtime.DEMO) for name in AGENTS]
    await opened.agents.sync_roster(roster, actor="test")
    try:
        yield opened
    finally:
        await opened.close()


async def up(store: Store) -> None:
    await store.flags.set_up(True, actor=OP)


async def kinds_since(store: Store, after: int) -> list[str]:
    return [e.kind for e in await store.events.find(after_id=after, limit=1000)]


# ---- claim ----------------------------------------------------------------------------------


async def test_claim_hooks_the_bead_and_opens_one_dispatch(store: Store) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    last = await store.events.last_id()
    dispatch = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="daemon")
    assert dispatch is not None and dispatch.is_open
    assert dispatch.state is DispatchState.CLAIMED and dispatch.agent == "p1"
    assert dispatch.ready_at == bead.created_at
    held = await store.beads.get(bead.id)
    assert held.status is BeadStatus.HOOKED and held.assignee == "p1"
    events = await store.events.find(after_id=last)
    assert [e.kind for e in events] == ["bead.hook", "dispatch.claimed"]
    assert events[0].data["claim"] is True and events[0].data["dispatch"] == dispatch.id
    assert await store.dispatches.open_for_agent("p1") == dispatch
    assert await store.dispatches.open_for_bead(bead.id) == dispatch


async def test_claim_refuses_blocked_convoy_pending_down_paused_and_busy(store: Store) -> None:
    blocker = await store.beads.add("blocker", actor=OP)
    blocked = await store.beads.add("blocked", actor=OP, blocked_by=[blocker.id])
    convoy = await store.convoys.create("later", actor=OP)
    in_convoy = await store.beads.add("in convoy", actor=OP)
    await store.convoys.add(convoy.id, [in_convoy.id], actor=OP)
    free = await store.beads.add("free", actor=OP)
    other = await store.beads.add("other", actor=OP)

    claim = store.dispatches.claim
    assert await claim(free.id, "p1", kind=POLECAT, actor="d") is None, "town is down"
    await up(store)
    await store.flags.set_paused(True, actor=OP, reason="lunch")
    assert await claim(free.id, "p1", kind=POLECAT, actor="d") is None, "paused"
    assert (await store.flags.get()).pause_reason == "lunch"
    await store.flags.set_paused(False, actor=OP)
    assert await claim(blocked.id, "p1", kind=POLECAT, actor="d") is None, "blocked"
    assert await claim(in_convoy.id, "p1", kind=POLECAT, actor="d") is None, "convoy pending"
    assert await claim(free.id, "p1", kind=POLECAT, actor="d") is not None
    assert await claim(other.id, "p1", kind=POLECAT, actor="d") is None, "p1 is busy"
    assert await claim(free.id, "p2", kind=POLECAT, actor="d") is None, "taken"
    for bead in (blocked, in_convoy, other):
        assert (await store.beads.get(bead.id)).status is BeadStatus.BACKLOG
    assert len(await store.dispatches.open()) == 1
    with pytest.raises(NotFound):
        await claim(other.id, "ghost", kind=POLECAT, actor="d")


async def test_ready_at_is_when_the_last_blocker_was_done(store: Store) -> None:
    await up(store)
    blocker = await store.beads.add("blocker", actor=OP)
    bead = await store.beads.add("after", actor=OP, blocked_by=[blocker.id])
    await store.beads.sling(blocker.id, "crew", actor=OP)
    done = await store.beads.apply(blocker.id, Action.DONE, actor=OP)
    dispatch = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d")
    assert dispatch is not None and dispatch.ready_at == done.done_at


async def test_pause_and_up_are_events_only_when_they_change(store: Store) -> None:
    last = await store.events.last_id()
    assert await store.flags.set_up(True, actor=OP)
    assert not await store.flags.set_up(True, actor=OP)
    assert await store.flags.set_paused(True, actor=OP, reason="why")
    assert not await store.flags.set_paused(True, actor=OP, reason="still")
    assert await store.flags.set_paused(False, actor=OP)
    assert await store.flags.set_up(False, actor=OP)
    assert await kinds_since(store, last) == [
        "town.up",
        "dispatch.paused",
        "dispatch.resumed",
        "town.down",
    ]
    flags = await store.flags.get()
    assert not flags.up and not flags.paused and flags.pause_reason == ""


async def test_manual_claim_takes_escalated_or_own_hooked_and_says_why_not(store: Store) -> None:
    # Town down and paused: `at sling` is the operator's and ignores both.
    await store.flags.set_paused(True, actor=OP)
    blocker = await store.beads.add("blocker", actor=OP)
    blocked = await store.beads.add("blocked", actor=OP, blocked_by=[blocker.id])
    with pytest.raises(IllegalTransition, match="blocked by"):
        await store.dispatches.claim(
            blocked.id, "p1", kind=DispatchKind.SLING, actor=OP, manual=True
        )
    escalated = await store.beads.add("escalated", actor=OP)
    await store.beads.apply(escalated.id, Action.ESCALATE, actor=OP)
    one = await store.dispatches.claim(
        escalated.id, "p1", kind=DispatchKind.SLING, actor=OP, manual=True
    )
    assert one is not None and (await store.beads.get(escalated.id)).assignee == "p1"
    hooked = await store.beads.add("hooked", actor=OP)
    await store.beads.apply(hooked.id, Action.HOOK, actor=OP, agent="p2")
    two = await store.dispatches.claim(
        hooked.id, "p2", kind=DispatchKind.SLING, actor=OP, manual=True
    )
    assert two is not None and two.bead_id == hooked.id
    with pytest.raises(TundraError, match="already working on"):
        await store.dispatches.claim(
            blocker.id, "p1", kind=DispatchKind.SLING, actor=OP, manual=True
        )
    with pytest.raises(TundraError, match="already being handed to p1"):
        await store.dispatches.claim(
            escalated.id, "crew", kind=DispatchKind.SLING, actor=OP, manual=True
        )
    await store.beads.sling(blocker.id, "crew", actor=OP)
    await store.beads.apply(blocker.id, Action.SUBMIT, actor=OP)
    with pytest.raises(IllegalTransition, match="review"):
        await store.dispatches.claim(
            blocker.id, "crew", kind=DispatchKind.SLING, actor=OP, manual=True
        )


# ---- slung, delivered, closed ---------------------------------------------------------------


async def test_slung_then_delivered_then_closed_by_the_report(store: Store) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    claimed = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d")
    assert claimed is not None
    slung = await store.dispatches.slung(
        claimed.id, branch="polecat/p1/1", worktree="/w", actor="d"
    )
    assert slung.state is DispatchState.SLUNG and slung.branch == "polecat/p1/1"
    moved = await store.beads.get(bead.id)
    assert moved.status is BeadStatus.SLUNG and moved.branch == "polecat/p1/1"
    last = await store.events.last_id()
    delivered = await store.dispatches.delivered(claimed.id, attempts=1, evidence="turn", actor="d")
    assert delivered.state is DispatchState.DELIVERED and delivered.attempts == 1
    (event,) = await store.events.find(after_id=last)
    assert event.kind == "dispatch.delivered" and event.data["latency_s"] >= 0
    await store.beads.apply(bead.id, Action.SUBMIT, actor="p1")
    closed = await store.dispatches.last_for_bead(bead.id)
    assert closed is not None and closed.state is DispatchState.CLOSED
    assert closed.outcome == "submitted" and closed.closed_at
    assert await store.dispatches.open() == []


async def test_slung_refuses_a_bead_that_moved(store: Store) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    claimed = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d")
    assert claimed is not None
    await store.beads.apply(bead.id, Action.UNHOOK, actor=OP)
    with pytest.raises(IllegalTransition, match="no longer p1's"):
        await store.dispatches.slung(claimed.id, branch="b", worktree="w", actor="d")
    assert (await store.dispatches.get(claimed.id)).outcome == "unhooked"


@pytest.mark.parametrize(
    ("moves", "outcome"),
    [
        ([Action.SUBMIT], "submitted"),
        ([Action.FAIL], "failed"),
        ([Action.ESCALATE], "escalated"),
        ([Action.DONE], "done"),
        ([Action.RETURN], "returned"),
    ],
)
async def test_apply_closes_the_dispatch_with_its_outcome(
    store: Store, moves: list[Action], outcome: str
) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    claimed = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d")
    assert claimed is not None
    await store.dispatches.slung(claimed.id, branch="b", worktree="w", actor="d")
    last = await store.events.last_id()
    for action in moves:
        await store.beads.apply(bead.id, action, actor=OP, reason="because")
    closed = await store.dispatches.get(claimed.id)
    assert closed.state is DispatchState.CLOSED and closed.outcome == outcome
    (event,) = await store.events.find(after_id=last)
    assert event.data["dispatch"] == claimed.id
    # The agent is free for the next bead.
    nxt = await store.beads.add("next", actor=OP)
    assert await store.dispatches.claim(nxt.id, "p1", kind=POLECAT, actor="d") is not None


async def test_unhook_closes_as_unhooked_and_hook_keeps_it_open(store: Store) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    claimed = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d")
    assert claimed is not None
    await store.beads.apply(bead.id, Action.UNHOOK, actor=OP)
    assert (await store.dispatches.get(claimed.id)).outcome == "unhooked"


# ---- give back, recover, notes --------------------------------------------------------------


async def test_give_back_keeps_branch_and_notes_and_the_bead_is_ready_again(store: Store) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    claimed = await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d")
    assert claimed is not None
    await store.dispatches.slung(claimed.id, branch="polecat/p1/1", worktree="/w", actor="d")
    note = await store.notes.add(bead.id, "p1", "  half done: see foo.py\n", actor="p1")
    assert note.body == "half done: see foo.py"
    reported = await store.dispatches.get(claimed.id)
    assert reported.reported_at == note.created_at
    last = await store.events.last_id()
    returned = await store.dispatches.give_back(claimed.id, reason="agent died", actor="witness")
    assert returned is not None and returned.outcome == "returned"
    assert returned.reason == "agent died"
    assert await kinds_since(store, last) == ["bead.return", "dispatch.returned"]
    back = await store.beads.get(bead.id)
    assert back.status is BeadStatus.BACKLOG and back.assignee == ""
    assert back.branch == "polecat/p1/1"
    assert [n.body for n in await store.notes.for_bead(bead.id)] == ["half done: see foo.py"]
    assert [b.id for b in await store.beads.ready()] == [bead.id]
    assert await store.dispatches.give_back(claimed.id, reason="again", actor="w") is None
    again = await store.dispatches.claim(bead.id, "p2", kind=POLECAT, actor="d")
    assert again is not None and again.ready_at == returned.closed_at
    assert [d.id for d in await store.dispatches.history(bead.id)] == [claimed.id, again.id]


async def test_recover_returns_every_open_dispatch_in_any_state(store: Store) -> None:
    await up(store)
    ids = []
    for agent, steps in (("p1", 0), ("p2", 1), ("crew", 2)):
        bead = await store.beads.add(f"work for {agent}", actor=OP)
        claimed = await store.dispatches.claim(bead.id, agent, kind=POLECAT, actor="d")
        assert claimed is not None
        if steps >= 1:
            await store.dispatches.slung(claimed.id, branch=f"b/{agent}", worktree="w", actor="d")
        if steps >= 2:
            await store.dispatches.delivered(claimed.id, attempts=1, evidence="", actor="d")
        await store.notes.add(bead.id, agent, f"note by {agent}", actor=agent)
        ids.append(bead.id)
    returned = await store.dispatches.recover(reason="daemon restarted", actor="daemon")
    assert sorted(d.bead_id for d in returned) == ids
    assert await store.dispatches.open() == []
    for bead_id, agent in zip(ids, ("p1", "p2", "crew"), strict=True):
        bead = await store.beads.get(bead_id)
        assert bead.status is BeadStatus.BACKLOG
        assert bead.branch == ("" if agent == "p1" else f"b/{agent}")
        assert len(await store.notes.for_bead(bead_id)) == 1
    events = await store.events.find(kind_prefix="dispatch.returned")
    assert {e.data["reason"] for e in events} == {"daemon restarted"}


async def test_notes_refuse_empty_text_and_unknown_beads(store: Store) -> None:
    bead = await store.beads.add("work", actor=OP)
    with pytest.raises(TundraError, match="non-empty"):
        await store.notes.add(bead.id, OP, "  ", actor=OP)
    with pytest.raises(NotFound):
        await store.notes.add(999, OP, "x", actor=OP)
    await store.notes.add(bead.id, OP, "one", actor=OP)
    (event,) = await store.events.find(kind_prefix="bead.note")
    assert event.data["excerpt"] == "one" and event.bead_id == bead.id


async def test_the_index_refuses_a_second_open_dispatch_whatever_writes_it(
    store: Store,
) -> None:
    await up(store)
    bead = await store.beads.add("work", actor=OP)
    assert await store.dispatches.claim(bead.id, "p1", kind=POLECAT, actor="d") is not None
    conn = sqlite3.connect(store.db.path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO dispatches (bead_id, agent, kind, ready_at, claimed_at) "
                "VALUES (?, 'p2', 'polecat', '', '')",
                (bead.id,),
            )
    finally:
        conn.close()


async def test_two_processes_claim_one_bead_and_exactly_one_wins(
    store: Store, tmp_path: Path
) -> None:
    await up(store)
    claimers = [
        await _start_claimer(store.db.path, agent, tmp_path / f"{agent}.err")
        for agent in ("p1", "p2")
    ]
    try:
        await _together(claimers, {"op": "ping"})
        wins: dict[str, int] = {}
        for round_no in range(30):
            bead = await store.beads.add(f"contested {round_no}", actor=OP)
            replies = await _together(claimers, {"op": "dispatch", "id": bead.id})
            won = [c.agent for c, r in zip(claimers, replies, strict=True) if r["won"]]
            assert len(won) == 1, replies
            wins[won[0]] = wins.get(won[0], 0) + 1
            history = await store.dispatches.history(bead.id)
            assert [d.agent for d in history] == won
            await store.beads.apply(bead.id, Action.RETURN, actor=OP)  # frees the winner
            await store.beads.apply(bead.id, Action.ESCALATE, actor=OP)  # out of the queue
    finally:
        for claimer in claimers:
            assert claimer.proc.stdin is not None
            claimer.proc.stdin.close()
        for claimer in claimers:
            await claimer.proc.wait()
    assert await store.db.integrity_check() == "ok"
    assert len(wins) == 2, f"one claimer won every round: no race was run ({wins})"


# ---- mail deliveries ------------------------------------------------------------------------


async def _seed_mail(store: Store, n: int, to: str = "p1") -> list[int]:
    return [(await store.mail.send(OP, to, f"m{i}", actor=OP)).id for i in range(n)]


async def test_a_delivery_reserves_then_receipts_its_batch(store: Store) -> None:
    ids = await _seed_mail(store, 3)
    batch = await store.mail.undelivered("p1", 2)
    assert [m.id for m in batch] == ids[:2]
    did = await store.mail.begin_delivery("p1", [m.id for m in batch], via="typed")
    assert did is not None
    assert [m.id for m in await store.mail.undelivered("p1", 10)] == ids[2:]
    assert await store.mail.begin_delivery("p1", ids, via="typed") is None, "all or none"
    taken = await store.mail.delivery_taken(did, actor="daemon", evidence="turn started")
    assert [m.id for m in taken] == ids[:2]
    assert all(m.read_at and m.delivered_at for m in taken)
    assert await store.mail.delivery_taken(did, actor="daemon", evidence="again") == []
    (event,) = await store.events.find(kind_prefix="mail.delivered")
    assert event.data["ids"] == ids[:2] and event.data["via"] == "typed"
    assert event.agent == "p1"


async def test_a_batch_not_taken_is_free_again(store: Store) -> None:
    ids = await _seed_mail(store, 2)
    did = await store.mail.begin_delivery("p1", ids, via="typed")
    assert did is not None
    await store.mail.delivery_not_taken(did, reason="prompt not taken")
    assert [m.id for m in await store.mail.undelivered("p1", 10)] == ids
    (event,) = await store.events.find(kind_prefix="mail.undelivered")
    assert event.data["reason"] == "prompt not taken"
    assert await store.mail.begin_delivery("p2", ids, via="typed") is None, "not p2's mail"


def _add_event(db: Path, kind: str, agent: str, data: dict[str, object]) -> None:
    """An event as the daemon's writer would append it (a separate connection)."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(
                "INSERT INTO events (at, actor, kind, agent, data) VALUES ('', ?, ?, ?, ?)",
                (agent, kind, agent, json.dumps(data)),
            )
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("kind", "data", "taken"),
    [
        ("agent.state", {"from": "idle", "to": "working"}, True),
        ("agent.state", {"from": "idle", "to": "awaiting_approval"}, True),
        ("agent.hook", {"event": "UserPromptSubmit"}, True),
        ("agent.hook", {"event": "PostToolUse"}, True),
        ("agent.hook", {"event": "Stop", "stop_hook_active": True}, True),
        ("agent.hook", {"event": "Stop", "stop_hook_active": False}, False),
        ("agent.state", {"from": "working", "to": "idle"}, False),
        (None, {}, False),
    ],
)
async def test_recover_deliveries_decides_from_the_agents_events(
    store: Store, kind: str | None, data: dict[str, object], taken: bool
) -> None:
    ids = await _seed_mail(store, 2)
    did = await store.mail.begin_delivery("p1", ids, via="typed")
    assert did is not None
    # Another agent working proves nothing about p1.
    _add_event(store.db.path, "agent.state", "p2", {"from": "idle", "to": "working"})
    if kind is not None:
        _add_event(store.db.path, kind, "p1", data)
    got_taken, released = await store.mail.recover_deliveries(actor="daemon")
    assert (got_taken, released) == (([did], []) if taken else ([], [did]))
    mails = [await store.mail.get(i) for i in ids]
    assert all(bool(m.delivered_at) is taken for m in mails)
    left = [m.id for m in await store.mail.undelivered("p1", 10)]
    assert left == ([] if taken else ids)
    assert await store.mail.recover_deliveries(actor="daemon") == ([], [])


async def test_evidence_from_before_the_delivery_does_not_count(store: Store) -> None:
    ids = await _seed_mail(store, 1)
    _add_event(store.db.path, "agent.state", "p1", {"from": "idle", "to": "working"})
    did = await store.mail.begin_delivery("p1", ids, via="stop_hook")
    assert did is not None
    assert await store.mail.recover_deliveries(actor="daemon") == ([], [did])


async def test_wanted_agents(store: Store) -> None:
    assert await store.agents.wanted() == []
    assert await store.agents.set_wanted("p2", True)
    assert await store.agents.set_wanted("p1", True)
    assert await store.agents.set_wanted("p1", False)
    assert not await store.agents.set_wanted("ghost", True)
    assert await store.agents.wanted() == ["p2"]
