"""MergeRepo on a real SQLite store: the queue, attempts, gates, rejection paths, retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, BeadStatus, Grade, Lane
from tundra_tui.domain.dispatch import DispatchKind, DispatchState
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.handover import parse_rework, rework_subject
from tundra_tui.domain.refinery import (
    AttemptState,
    Escalate,
    GateResult,
    MergeAttempt,
    Outcome,
    Rework,
    Strategy,
    ToBacklog,
)
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.store.dispatch_rows import open_delivered

R = "refinery"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db")
    await opened.agents.sync_roster(
        [RosterEntry(name, Role.POLECAT, Runtime.DEMO) for name in ("a", "b", "c")], actor="t"
    )
    try:
        yield opened
    finally:
        await opened.close()


async def in_review(
    store: Store,
    title: str,
    *,
    agent: str = "a",
    lane: Lane = Lane.STANDARD,
    priority: int = 2,
    branch: str | None = None,
) -> int:
    bead = await store.beads.add(title, actor="t", lane=lane, priority=priority)
    await store.beads.sling(bead.id, agent, actor="t")
    branch = f"polecat/{agent}/{bead.id}" if branch is None else branch
    await store.beads.edit(bead.id, actor="t", branch=branch)
    await store.beads.apply(bead.id, Action.SUBMIT, actor=agent)
    return bead.id


async def begin(store: Store, bead_id: int, tip: str = "t1") -> MergeAttempt:
    bead = await store.beads.get(bead_id)
    attempt = await store.merges.begin(
        bead_id,
        agent=bead.assignee,
        branch=bead.branch,
        branch_tip=tip,
        commits=[("c1", "first"), ("c2", "second")],
        strategy=Strategy.REBASE,
        target="refs/heads/main",
        target_before="m0",
        actor=R,
    )
    assert attempt is not None
    return attempt


async def kinds(store: Store, prefix: str = "refinery.") -> list[str]:
    return [e.kind for e in await store.events.find(limit=500, kind_prefix=prefix)]


async def test_the_queue_is_lane_priority_then_submission_order(store: Store) -> None:
    a = await in_review(store, "standard p2, first")
    b = await in_review(store, "critical p3", lane=Lane.CRITICAL, priority=3)
    c = await in_review(store, "standard p1", priority=1)
    d = await in_review(store, "standard p2, later")
    await in_review(store, "no branch", branch="")
    queued = await store.merges.queue()
    assert [q.bead.id for q in queued] == [b, c, a, d]
    assert all(q.bead.grade is Grade.SUBMITTED and q.bead.submitted_at for q in queued)
    await begin(store, b)
    assert [q.bead.id for q in await store.merges.queue(limit=2)] == [c, a], "open: not queued"


async def test_begin_numbers_attempts_and_refuses_a_second_open_one(store: Store) -> None:
    bead_id = await in_review(store, "x")
    first = await begin(store, bead_id)
    assert (first.n, first.state, first.archive_ref) == (
        1,
        AttemptState.RUNNING,
        f"refs/tundra/archive/a/{bead_id}/1",
    )
    assert first.commits == (("c1", "first"), ("c2", "second"))
    again = await store.merges.begin(
        bead_id,
        agent="a",
        branch="b",
        branch_tip="t",
        commits=[],
        strategy=Strategy.MERGE,
        target="refs/heads/main",
        target_before="m0",
        actor=R,
    )
    assert again is None
    await store.merges.close(first.id, Outcome.INTERRUPTED, reason="crash", actor=R)
    second = await begin(store, bead_id, tip="")
    assert (second.n, second.archive_ref) == (2, ""), "no tip, nothing to archive"
    backlog = await store.beads.add("not in review", actor="t")
    assert await begin_or_none(store, backlog.id) is None
    assert await store.merges.counted(bead_id) == 0, "a crash never counts"
    assert [a.id for a in await store.merges.open()] == [second.id]


async def begin_or_none(store: Store, bead_id: int) -> MergeAttempt | None:
    return await store.merges.begin(
        bead_id,
        agent="",
        branch="x",
        branch_tip="t",
        commits=[],
        strategy=Strategy.REBASE,
        target="refs/heads/main",
        target_before="m0",
        actor=R,
    )


async def test_gates_verify_and_a_close_cuts_running_gates(store: Store) -> None:
    bead_id = await in_review(store, "x")
    attempt = await begin(store, bead_id)
    await store.merges.gate_started(attempt.id, 0, "true", log_path="/l/0")
    await store.merges.gate_finished(
        attempt.id, GateResult(0, "true", ok=True, exit_code=0, seconds=0.5, tail="ok"), actor=R
    )
    await store.merges.gate_started(attempt.id, 1, "sleep 9", log_path="/l/1")
    assert await store.merges.verified(attempt.id, result_commit="r1", actor=R)
    assert (await store.beads.get(bead_id)).grade is Grade.VERIFIED
    closed = await store.merges.close(attempt.id, Outcome.ERROR, reason="cas failed", actor=R)
    assert (closed.state, closed.outcome, closed.counted) == (
        AttemptState.CLOSED,
        Outcome.ERROR,
        False,
    )
    assert [(g.ok, g.log_path, g.tail) for g in closed.gates] == [
        (True, "/l/0", "ok"),
        (False, "/l/1", ""),
    ], "a running gate is cut"
    assert (await store.beads.get(bead_id)).grade is Grade.SUBMITTED
    assert await kinds(store) == [
        "refinery.started",
        "refinery.gate",
        "refinery.verified",
        "refinery.closed",
    ]


async def test_verified_on_a_bead_moved_away_withdraws_the_attempt(store: Store) -> None:
    bead_id = await in_review(store, "x")
    attempt = await begin(store, bead_id)
    await store.beads.apply(bead_id, Action.DONE, actor="operator")
    assert not await store.merges.verified(attempt.id, result_commit="r", actor=R)
    got = await store.merges.get(attempt.id)
    assert (got.state, got.outcome, got.counted) == (AttemptState.CLOSED, Outcome.WITHDRAWN, False)
    assert [q.bead.id for q in await store.merges.queue()] == []


async def test_merged_lands_the_bead_completes_its_convoy_and_is_idempotent(store: Store) -> None:
    bead_id = await in_review(store, "x")
    convoy = await store.convoys.create("k", actor="t")
    await store.convoys.add("k", [bead_id], actor="t")
    await store.convoys.start("k", actor="t")
    attempt = await begin(store, bead_id)
    await store.merges.gate_started(attempt.id, 0, "true", log_path="")
    await store.merges.gate_finished(attempt.id, GateResult(0, "true", ok=True), actor=R)
    assert await store.merges.verified(attempt.id, result_commit="r1", actor=R)
    bead = await store.merges.merged(attempt.id, actor=R)
    assert (bead.status, bead.grade, bead.merged_commit) == (BeadStatus.DONE, Grade.MERGED, "r1")
    progress = (await store.convoys.get(convoy.id)).progress
    assert progress.is_complete and progress.merged == 1
    assert (await store.convoys.get(convoy.id)).status.value == "completed"
    check = await store.merges.target_check("r1")
    assert check is not None and check.green, "a gated merge is a known-green target"
    before = await kinds(store, "")
    again = await store.merges.merged(attempt.id, actor=R)
    assert again == bead and await kinds(store, "") == before, "idempotent"
    done = await store.events.find(kind_prefix="bead.done")
    assert done[0].data["merged_commit"] == "r1"
    assert [a.id for a in await store.merges.uncleaned()] == [attempt.id]
    await store.merges.cleaned(attempt.id, actor=R, data={"branch": "deleted"})
    assert await store.merges.uncleaned() == []
    assert await store.merges.ungated_ids() == frozenset()


async def test_an_ungated_merge_of_a_bead_done_by_hand_is_late(store: Store) -> None:
    bead_id = await in_review(store, "x")
    attempt = await begin(store, bead_id)
    assert await store.merges.verified(attempt.id, result_commit="r1", actor=R)
    await store.beads.apply(bead_id, Action.DONE, actor="operator")
    bead = await store.merges.merged(attempt.id, actor=R)
    assert (bead.status, bead.merged_commit, bead.grade) == (BeadStatus.DONE, "r1", Grade.MERGED)
    assert "refinery.merged_late" in await kinds(store)
    assert await store.merges.target_check("r1") is None, "no gate ran: nothing known"
    assert await store.merges.ungated_ids() == {bead_id}


async def test_reject_by_mail_opens_a_delivered_dispatch_and_the_mail(store: Store) -> None:
    bead_id = await in_review(store, "x")
    attempt = await begin(store, bead_id)
    subject = rework_subject(bead_id, "conflict")
    rejected = await store.merges.reject(
        attempt.id,
        Outcome.CONFLICT,
        reason="conflicts in a.txt",
        conflicts=["a.txt"],
        then=Rework("a", DispatchKind.POLECAT, "/w/a-1", subject, "rebase it"),
        actor=R,
    )
    assert rejected.path == "mail" and rejected.mail_id is not None
    bead = rejected.bead
    assert (bead.status, bead.assignee, bead.grade) == (BeadStatus.SLUNG, "a", Grade.NONE)
    dispatch = await store.dispatches.open_for_bead(bead_id)
    assert dispatch is not None
    assert (dispatch.agent, dispatch.state, dispatch.worktree, dispatch.branch) == (
        "a",
        DispatchState.DELIVERED,
        "/w/a-1",
        f"polecat/a/{bead_id}",
    )
    mail = await store.mail.get(rejected.mail_id)
    assert (mail.sender, mail.recipient, mail.subject) == ("refinery", "a", subject)
    assert parse_rework(mail.subject) == (bead_id, "conflict")
    (note,) = await store.notes.for_bead(bead_id)  # the reason outlives an unread mail
    assert note.author == "refinery" and note.body == f"{subject}\nrebase it"
    got = await store.merges.get(attempt.id)
    assert (got.outcome, got.counted, got.conflicts) == (Outcome.CONFLICT, True, ("a.txt",))
    assert await store.merges.counted(bead_id) == 1
    rejects = await store.events.find(kind_prefix="refinery.rejected")
    assert rejects[0].data["path"] == "mail" and rejects[0].data["conflicts"] == ["a.txt"]


async def test_reject_by_mail_falls_back_to_backlog_when_the_agent_is_busy(store: Store) -> None:
    bead_id = await in_review(store, "x")
    other = await store.beads.add("other", actor="t")
    async with store.db.write() as conn:
        await open_delivered(
            conn, other.id, "a", kind=DispatchKind.POLECAT, branch="", worktree="", now="t"
        )
    attempt = await begin(store, bead_id)
    subject = rework_subject(bead_id, "gate")
    rejected = await store.merges.reject(
        attempt.id,
        Outcome.GATE_FAILED,
        reason="gate red",
        then=Rework("a", DispatchKind.POLECAT, "/w", subject, "the gate failed"),
        actor=R,
    )
    assert rejected.path == "backlog" and rejected.mail_id is None
    assert (rejected.bead.status, rejected.bead.assignee) == (BeadStatus.BACKLOG, "")
    assert rejected.bead.branch == f"polecat/a/{bead_id}", "the branch stays"
    notes = await store.notes.for_bead(bead_id)
    assert notes[-1].author == "refinery" and parse_rework(notes[-1].body) == (bead_id, "gate")


async def test_reject_to_backlog_and_escalate_then_retry(store: Store) -> None:
    bead_id = await in_review(store, "x")
    first = await begin(store, bead_id)
    back = await store.merges.reject(
        first.id,
        Outcome.GATE_FAILED,
        reason="red",
        then=ToBacklog(f"{rework_subject(bead_id, 'gate')}\nfix it"),
        actor=R,
    )
    assert back.path == "backlog" and back.bead.status is BeadStatus.BACKLOG
    await store.beads.sling(bead_id, "b", actor="t")
    await store.beads.apply(bead_id, Action.SUBMIT, actor="b")
    second = await begin(store, bead_id)
    assert second.n == 2 and second.archive_ref == f"refs/tundra/archive/b/{bead_id}/2"
    up = await store.merges.reject(
        second.id, Outcome.CONFLICT, reason="again", then=Escalate("2 attempts failed"), actor=R
    )
    assert up.path == "escalated" and up.bead.status is BeadStatus.ESCALATED
    assert await store.merges.counted(bead_id) == 2
    assert [a.id for a in await store.merges.uncleaned()] == [second.id], "escalated: tidy"

    retried = await store.merges.retry(bead_id, actor="operator")
    assert (retried.status, retried.grade) == (BeadStatus.REVIEW, Grade.SUBMITTED)
    assert await store.merges.counted(bead_id) == 0
    assert len(await store.merges.for_bead(bead_id)) == 2, "history stays"
    assert [q.bead.id for q in await store.merges.queue()] == [bead_id]
    assert (await store.merges.retry(bead_id, actor="operator")).status is BeadStatus.REVIEW

    plain = await store.beads.add("plain", actor="t")
    with pytest.raises(TundraError, match="only a bead in review"):
        await store.merges.retry(plain.id, actor="operator")
    await store.beads.apply(plain.id, Action.ESCALATE, actor="operator")
    with pytest.raises(TundraError, match="not escalated by the refinery"):
        await store.merges.retry(plain.id, actor="operator")


async def test_reject_counts_inside_its_transaction(store: Store) -> None:
    """With max_attempts, reject itself decides rework or escalate from the count it reads
    in its own transaction: an `at refinery retry` read before it is not stale."""
    bead_id = await in_review(store, "x")
    note = ToBacklog(f"{rework_subject(bead_id, 'gate')}\nfix it")
    first = await begin(store, bead_id)
    back = await store.merges.reject(
        first.id, Outcome.GATE_FAILED, reason="red", then=note, actor=R, max_attempts=2
    )
    assert back.path == "backlog"
    await store.beads.sling(bead_id, "a", actor="t")
    await store.beads.apply(bead_id, Action.SUBMIT, actor="a")
    second = await begin(store, bead_id)
    await store.merges.retry(bead_id, actor="operator")  # zeroes the count meanwhile
    again = await store.merges.reject(
        second.id, Outcome.GATE_FAILED, reason="red", then=note, actor=R, max_attempts=2
    )
    assert again.path == "backlog" and await store.merges.counted(bead_id) == 1
    await store.beads.sling(bead_id, "a", actor="t")
    await store.beads.apply(bead_id, Action.SUBMIT, actor="a")
    third = await begin(store, bead_id)
    up = await store.merges.reject(
        third.id, Outcome.CONFLICT, reason="again", then=note, actor=R, max_attempts=2
    )
    assert up.path == "escalated" and up.bead.status is BeadStatus.ESCALATED


async def test_reject_of_a_bead_that_left_review_moves_nothing(store: Store) -> None:
    bead_id = await in_review(store, "x")
    attempt = await begin(store, bead_id)
    await store.beads.apply(bead_id, Action.FAIL, actor="operator")
    rejected = await store.merges.reject(
        attempt.id, Outcome.CONFLICT, reason="c", then=Escalate("no"), actor=R
    )
    assert rejected.path == "withdrawn" and rejected.bead.status is BeadStatus.FAILED
    assert await store.merges.counted(bead_id) == 0


async def test_target_verdicts_are_events_only_when_they_change(store: Store) -> None:
    assert await store.merges.target_check("m0") is None
    await store.merges.record_target("m0", green=True, detail="", actor=R)
    await store.merges.record_target("m1", green=True, detail="", actor=R)
    red = await store.merges.record_target("m2", green=False, detail='{"gate": 0}', actor=R)
    assert not red.green
    await store.merges.record_target("m3", green=False, detail="", actor=R)
    await store.merges.record_target("m4", green=True, detail="", actor=R)
    assert await kinds(store) == [
        "refinery.target_green",
        "refinery.target_red",
        "refinery.target_green",
    ]
    await store.merges.forget_target("m2")
    assert await store.merges.target_check("m2") is None


async def test_refinery_pause_is_a_flag_with_events(store: Store) -> None:
    assert await store.flags.set_refinery_paused(True, actor="operator", reason="release")
    flags = await store.flags.get()
    assert (flags.refinery_paused, flags.refinery_pause_reason, flags.paused) == (
        True,
        "release",
        False,
    )
    assert not await store.flags.set_refinery_paused(True, actor="operator", reason="still")
    assert await store.flags.set_refinery_paused(False, actor="operator")
    assert await kinds(store) == ["refinery.paused", "refinery.resumed"]
