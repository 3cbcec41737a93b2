"""Merge attempts in SQLite: the refinery's queue, its attempts, gate results and target checks.

Every write is one `BEGIN IMMEDIATE` transaction with its events, awaited (never through
the batching writer), so a crash leaves either the whole step or none of it, and the
daemon's recovery reads the truth back from here. Bead moves go through
`BeadRepo._apply`, so dispatches, convoys and `bead.*` events follow as for any move.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

import aiosqlite

from tundra_tui.domain.beads import Action, Bead, BeadStatus, format_bead_id
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.domain.refinery import (
    COUNTED,
    AttemptState,
    Escalate,
    GateResult,
    MergeAttempt,
    Outcome,
    QueuedBead,
    Rejected,
    Rework,
    Strategy,
    TargetCheck,
    ToBacklog,
    archive_ref,
)
from tundra_tui.store.beads import _COLUMNS, BeadRepo
from tundra_tui.store.db import Database
from tundra_tui.store.dispatch_rows import open_delivered
from tundra_tui.store.events import append_event

REFINERY = "refinery"
"""The sender of rework mail and the author of rework notes."""

_ATTEMPT_COLUMNS = (
    "id, bead_id, n, agent, branch, branch_tip, archive_ref, commits, strategy, target, "
    "target_before, result_commit, state, outcome, reason, conflicts, counted, started_at, "
    "finished_at, cleaned_at"
)
_GATE_COLUMNS = (
    "attempt_id, idx, command, ok, exit_code, timed_out, seconds, tail, log_path, "
    "started_at, finished_at"
)
_QUEUE = (
    f"SELECT {_COLUMNS} FROM beads b "
    "WHERE b.status = 'review' AND b.branch != '' AND NOT EXISTS ("
    "SELECT 1 FROM merge_attempts m WHERE m.bead_id = b.id AND m.state != 'closed') "
    "ORDER BY b.lane_rank, b.priority, b.submitted_at, b.id LIMIT ?"
)
_CLOSING = frozenset({Outcome.TARGET_MOVED, Outcome.WITHDRAWN, Outcome.INTERRUPTED, Outcome.ERROR})


def _gate_from_row(row: Sequence[Any]) -> GateResult:
    _, idx, command, ok, exit_code, timed_out, seconds, tail, log_path, started, finished = row
    return GateResult(
        idx=idx,
        command=command,
        ok=None if ok is None else bool(ok),
        exit_code=exit_code,
        timed_out=bool(timed_out),
        seconds=float(seconds),
        tail=tail,
        log_path=log_path,
        started_at=started,
        finished_at=finished,
    )


def _attempt_from_row(row: Sequence[Any], gates: Sequence[GateResult]) -> MergeAttempt:
    (
        attempt_id, bead_id, n, agent, branch, branch_tip, ref, commits, strategy, target,
        target_before, result_commit, state, outcome, reason, conflicts, counted, started_at,
        finished_at, cleaned_at,
    ) = row  # fmt: skip
    return MergeAttempt(
        id=attempt_id,
        bead_id=bead_id,
        n=n,
        agent=agent,
        branch=branch,
        branch_tip=branch_tip,
        archive_ref=ref,
        commits=tuple((str(sha), str(subject)) for sha, subject in json.loads(commits)),
        strategy=Strategy(strategy),
        target=target,
        target_before=target_before,
        result_commit=result_commit,
        state=AttemptState(state),
        outcome=Outcome(outcome),
        reason=reason,
        conflicts=tuple(str(path) for path in json.loads(conflicts)),
        counted=bool(counted),
        started_at=started_at,
        finished_at=finished_at,
        cleaned_at=cleaned_at,
        gates=tuple(gates),
    )


async def _attempts(
    conn: aiosqlite.Connection, where: str, params: Sequence[object] = ()
) -> list[MergeAttempt]:
    """Attempts matching `where` (which may end in ORDER BY / LIMIT), with their gates,
    in two round trips."""
    async with conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM merge_attempts WHERE {where}", tuple(params)
    ) as cursor:
        rows = list(await cursor.fetchall())
    if not rows:
        return []
    ids = [row[0] for row in rows]
    gates: dict[int, list[GateResult]] = defaultdict(list)
    async with conn.execute(
        f"SELECT {_GATE_COLUMNS} FROM gate_results "
        f"WHERE attempt_id IN ({','.join('?' * len(ids))}) ORDER BY attempt_id, idx",
        ids,
    ) as cursor:
        for gate in await cursor.fetchall():
            gates[gate[0]].append(_gate_from_row(gate))
    return [_attempt_from_row(row, gates[row[0]]) for row in rows]


async def _one(conn: aiosqlite.Connection, attempt_id: int) -> MergeAttempt:
    found = await _attempts(conn, "id = ?", (attempt_id,))
    if not found:
        raise NotFound(f"no merge attempt {attempt_id}")
    return found[0]


async def _bead_status(conn: aiosqlite.Connection, bead_id: int) -> sqlite3.Row:
    async with conn.execute(
        "SELECT status, assignee, branch, grade FROM beads WHERE id = ?", (bead_id,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"no bead {format_bead_id(bead_id)}")
    return row


class MergeRepo:
    """All reads and writes of merge attempts; bead moves go through `beads._apply`."""

    def __init__(self, db: Database, beads: BeadRepo) -> None:
        self.db = db
        self.beads = beads

    # ---- reading -------------------------------------------------------------------------

    async def queue(self, limit: int = 100) -> list[QueuedBead]:
        """Review beads with a branch and no open attempt, by lane, priority, submitted_at."""
        async with self.db.read() as conn:
            async with conn.execute(_QUEUE, (limit,)) as cursor:
                rows = list(await cursor.fetchall())
            beads = await self.beads._hydrate(conn, rows)
            if not beads:
                return []
            ids = [bead.id for bead in beads]
            async with conn.execute(
                "SELECT bead_id, count(*), sum(counted) FROM merge_attempts "
                f"WHERE bead_id IN ({','.join('?' * len(ids))}) GROUP BY bead_id",
                ids,
            ) as cursor:
                tried = {row[0]: (int(row[1]), int(row[2] or 0)) for row in await cursor.fetchall()}
        return [QueuedBead(bead, *tried.get(bead.id, (0, 0))) for bead in beads]

    async def get(self, attempt_id: int) -> MergeAttempt:
        """One attempt with its gates, or NotFound."""
        async with self.db.read() as conn:
            return await _one(conn, attempt_id)

    async def open(self) -> list[MergeAttempt]:
        """Attempts not closed (running or merging), oldest first: what recovery resolves."""
        async with self.db.read() as conn:
            return await _attempts(conn, "state != 'closed' ORDER BY id")

    async def for_bead(self, bead_id: int) -> list[MergeAttempt]:
        """Every attempt on a bead, oldest first, with gates."""
        async with self.db.read() as conn:
            return await _attempts(conn, "bead_id = ? ORDER BY n", (bead_id,))

    async def recent(self, limit: int = 10) -> list[MergeAttempt]:
        """Closed attempts, newest first, with gates."""
        async with self.db.read() as conn:
            return await _attempts(
                conn,
                "state = 'closed' ORDER BY finished_at DESC, id DESC LIMIT ?",
                (limit,),
            )

    async def counted(self, bead_id: int) -> int:
        """How many of the bead's attempts count toward `refinery.max_attempts`."""
        row = await self.db.fetchone(
            "SELECT count(*) FROM merge_attempts WHERE bead_id = ? AND counted = 1", (bead_id,)
        )
        return int(row[0]) if row is not None else 0

    async def uncleaned(self) -> list[MergeAttempt]:
        """Attempts whose worktree and branch still need tidying: merged ones, and the last
        attempt of a bead now escalated, with `cleaned_at` empty (closed attempts only)."""
        async with self.db.read() as conn:
            return await _attempts(
                conn,
                "state = 'closed' AND cleaned_at = '' AND (outcome = 'merged' OR ("
                "(SELECT status FROM beads b WHERE b.id = merge_attempts.bead_id) = 'escalated' "
                "AND n = (SELECT max(m.n) FROM merge_attempts m "
                "WHERE m.bead_id = merge_attempts.bead_id))) ORDER BY id",
            )

    async def ungated_ids(self) -> frozenset[int]:
        """Beads merged by an attempt that ran no gate (`refinery.gates = []`): their cards
        say so."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT m.bead_id FROM merge_attempts m WHERE m.outcome = 'merged' "
            "AND NOT EXISTS (SELECT 1 FROM gate_results g WHERE g.attempt_id = m.id)"
        )
        return frozenset(int(row[0]) for row in rows)

    async def target_check(self, commit: str) -> TargetCheck | None:
        """What is known of target commit `commit`: green, red, or None (never checked)."""
        row = await self.db.fetchone(
            "SELECT commit_sha, green, detail, checked_at FROM target_checks WHERE commit_sha = ?",
            (commit,),
        )
        if row is None:
            return None
        return TargetCheck(commit=row[0], green=bool(row[1]), detail=row[2], checked_at=row[3])

    # ---- writing -------------------------------------------------------------------------

    async def begin(
        self,
        bead_id: int,
        *,
        agent: str,
        branch: str,
        branch_tip: str,
        commits: Sequence[tuple[str, str]],
        strategy: Strategy,
        target: str,
        target_before: str,
        actor: str,
    ) -> MergeAttempt | None:
        """Open attempt n+1 on a review bead (event `refinery.started`); its `archive_ref`
        is computed here (empty when there is no tip to keep). None if the bead is not in
        review or already has an open attempt."""
        now = self.db.now()
        async with self.db.write() as conn:
            bead = await _bead_status(conn, bead_id)
            if bead["status"] != BeadStatus.REVIEW.value:
                return None
            async with conn.execute(
                "SELECT 1 FROM merge_attempts WHERE bead_id = ? AND state != 'closed'", (bead_id,)
            ) as cursor:
                if await cursor.fetchone() is not None:
                    return None
            async with conn.execute(
                "SELECT coalesce(max(n), 0) + 1 FROM merge_attempts WHERE bead_id = ?", (bead_id,)
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            n = int(row[0])
            ref = archive_ref(agent, bead_id, n) if branch_tip else ""
            async with conn.execute(
                "INSERT INTO merge_attempts (bead_id, n, agent, branch, branch_tip, archive_ref, "
                "commits, strategy, target, target_before, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    bead_id,
                    n,
                    agent,
                    branch,
                    branch_tip,
                    ref,
                    json.dumps([[sha, subject] for sha, subject in commits]),
                    strategy.value,
                    target,
                    target_before,
                    now,
                ),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            attempt_id = int(row[0])
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.started",
                bead_id=bead_id,
                agent=agent,
                data={
                    "attempt": attempt_id,
                    "n": n,
                    "branch": branch,
                    "tip": branch_tip,
                    "target": target,
                    "target_before": target_before,
                    "strategy": strategy.value,
                    "reason": f"attempt {n} on {target}",
                },
            )
            return await _one(conn, attempt_id)

    async def gate_started(self, attempt_id: int, idx: int, command: str, *, log_path: str) -> None:
        """Record that gate `idx` runs (ok NULL until it finishes, or forever if cut)."""
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT INTO gate_results (attempt_id, idx, command, log_path, started_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (attempt_id, idx) DO UPDATE SET "
                "command = excluded.command, log_path = excluded.log_path, ok = NULL, "
                "exit_code = NULL, timed_out = 0, seconds = 0, tail = '', "
                "started_at = excluded.started_at, finished_at = ''",
                (attempt_id, idx, command, log_path, self.db.now()),
            )

    async def gate_finished(self, attempt_id: int, result: GateResult, *, actor: str) -> None:
        """Record a gate's verdict (event `refinery.gate`)."""
        now = self.db.now()
        async with self.db.write() as conn:
            attempt = await _one(conn, attempt_id)
            await conn.execute(
                "INSERT INTO gate_results (attempt_id, idx, command, ok, exit_code, timed_out, "
                "seconds, tail, log_path, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (attempt_id, idx) DO UPDATE "
                "SET ok = excluded.ok, exit_code = excluded.exit_code, "
                "timed_out = excluded.timed_out, seconds = excluded.seconds, "
                "tail = excluded.tail, finished_at = excluded.finished_at, "
                "log_path = CASE WHEN excluded.log_path != '' THEN excluded.log_path "
                "ELSE gate_results.log_path END",
                (
                    attempt_id,
                    result.idx,
                    result.command,
                    None if result.ok is None else int(result.ok),
                    result.exit_code,
                    int(result.timed_out),
                    result.seconds,
                    result.tail,
                    result.log_path,
                    result.started_at or now,
                    result.finished_at or now,
                ),
            )
            verdict = "passed" if result.ok else ("timed out" if result.timed_out else "failed")
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.gate",
                bead_id=attempt.bead_id,
                agent=attempt.agent,
                data={
                    "attempt": attempt_id,
                    "idx": result.idx,
                    "command": result.command,
                    "ok": result.ok,
                    "exit": result.exit_code,
                    "seconds": round(result.seconds, 3),
                    "timed_out": result.timed_out,
                    "reason": f"gate {result.idx + 1} {verdict}",
                },
            )

    async def verified(self, attempt_id: int, *, result_commit: str, actor: str) -> bool:
        """The gates passed on `result_commit`: the attempt moves to merging and the bead's
        grade to verified (event `refinery.verified`). If the bead left review meanwhile the
        attempt closes as withdrawn and this returns False."""
        now = self.db.now()
        async with self.db.write() as conn:
            attempt = await _one(conn, attempt_id)
            if attempt.state is AttemptState.MERGING:
                return attempt.result_commit == result_commit
            if attempt.state is AttemptState.CLOSED:
                return False
            bead = await _bead_status(conn, attempt.bead_id)
            if bead["status"] != BeadStatus.REVIEW.value:
                await self._close(
                    conn,
                    attempt,
                    Outcome.WITHDRAWN,
                    reason=f"the bead left review ({bead['status']}) before the merge",
                    actor=actor,
                    now=now,
                )
                return False
            await conn.execute(
                "UPDATE merge_attempts SET state = 'merging', result_commit = ? WHERE id = ?",
                (result_commit, attempt_id),
            )
            await conn.execute(
                "UPDATE beads SET grade = 'verified', updated_at = ? WHERE id = ?",
                (now, attempt.bead_id),
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.verified",
                bead_id=attempt.bead_id,
                agent=attempt.agent,
                data={
                    "attempt": attempt_id,
                    "result": result_commit,
                    "gates": len(attempt.gates),
                    "reason": f"{len(attempt.gates)} gate(s) passed on {result_commit[:12]}",
                },
            )
        return True

    async def merged(self, attempt_id: int, *, actor: str) -> Bead:
        """The target now holds the result: close the attempt merged, record the merged
        commit and grade, move review -> done (event `refinery.merged`, or
        `refinery.merged_late` when the operator had moved the bead). Idempotent."""
        now = self.db.now()
        async with self.db.write() as conn:
            attempt = await _one(conn, attempt_id)
            if attempt.state is AttemptState.CLOSED:
                if attempt.outcome is Outcome.MERGED:
                    bead_id = attempt.bead_id
                else:
                    raise IllegalTransition(
                        f"merge attempt {attempt_id} already closed as {attempt.outcome.value}"
                    )
            else:
                bead_id = attempt.bead_id
                result = attempt.result_commit
                await conn.execute(
                    "UPDATE merge_attempts SET state = 'closed', outcome = 'merged', "
                    "finished_at = ? WHERE id = ?",
                    (now, attempt_id),
                )
                bead = await _bead_status(conn, bead_id)
                status = BeadStatus(bead["status"])
                data: dict[str, object] = {
                    "attempt": attempt_id,
                    "result": result,
                    "target": attempt.target,
                    "reason": f"merged into {attempt.target} as {result[:12]}",
                }
                if status is BeadStatus.REVIEW:
                    await self.beads._apply(
                        conn,
                        bead_id,
                        Action.DONE,
                        actor=actor,
                        reason=f"merged by the refinery as {result[:12]}",
                        data={"merged_commit": result, "attempt": attempt_id},
                    )
                    kind = "refinery.merged"
                else:
                    data["status"] = status.value
                    kind = "refinery.merged_late"
                grade = (
                    ", grade = 'merged'" if status in (BeadStatus.REVIEW, BeadStatus.DONE) else ""
                )
                await conn.execute(
                    f"UPDATE beads SET merged_commit = ?{grade}, updated_at = ? WHERE id = ?",
                    (result, now, bead_id),
                )
                if attempt.gates:
                    await conn.execute(
                        "INSERT INTO target_checks (commit_sha, green, attempt_id, checked_at) "
                        "VALUES (?, 1, ?, ?) ON CONFLICT (commit_sha) DO UPDATE SET green = 1, "
                        "attempt_id = excluded.attempt_id, detail = '', "
                        "checked_at = excluded.checked_at",
                        (result, attempt_id, now),
                    )
                await append_event(
                    conn, at=now, actor=actor, kind=kind, bead_id=bead_id, agent=attempt.agent,
                    data=data,
                )  # fmt: skip
        return await self.beads.get(bead_id)

    async def close(
        self, attempt_id: int, outcome: Outcome, *, reason: str, actor: str
    ) -> MergeAttempt:
        """Close an attempt as target_moved, withdrawn, interrupted or error (never counted);
        running gates are cut; a verified grade returns to submitted (`refinery.closed`).
        Closing a closed attempt changes nothing."""
        if outcome not in _CLOSING:
            raise ValueError(f"close() takes an uncounted outcome, not {outcome.value!r}")
        now = self.db.now()
        async with self.db.write() as conn:
            attempt = await _one(conn, attempt_id)
            if attempt.state is not AttemptState.CLOSED:
                await self._close(conn, attempt, outcome, reason=reason, actor=actor, now=now)
            return await _one(conn, attempt_id)

    async def _close(
        self,
        conn: aiosqlite.Connection,
        attempt: MergeAttempt,
        outcome: Outcome,
        *,
        reason: str,
        actor: str,
        now: str,
        counted: bool = False,
        conflicts: Sequence[str] = (),
    ) -> None:
        await conn.execute(
            "UPDATE merge_attempts SET state = 'closed', outcome = ?, reason = ?, counted = ?, "
            "conflicts = ?, finished_at = ? WHERE id = ?",
            (outcome.value, reason, int(counted), json.dumps(list(conflicts)), now, attempt.id),
        )
        await conn.execute(
            "UPDATE gate_results SET ok = 0, finished_at = ? WHERE attempt_id = ? AND ok IS NULL",
            (now, attempt.id),
        )
        await conn.execute(
            "UPDATE beads SET grade = 'submitted' WHERE id = ? AND grade = 'verified'",
            (attempt.bead_id,),
        )
        if not counted:
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.closed",
                bead_id=attempt.bead_id,
                agent=attempt.agent,
                data={"attempt": attempt.id, "outcome": outcome.value, "reason": reason},
            )

    async def reject(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        reason: str,
        conflicts: Sequence[str] = (),
        then: Rework | ToBacklog | Escalate,
        actor: str,
        max_attempts: int = 0,
    ) -> Rejected:
        """Close a counted attempt (conflict or gate_failed) and, in the same transaction,
        send the bead back to its agent by mail, to backlog with a note, or escalate it
        (event `refinery.rejected`). A rework that cannot be delivered (the agent holds an
        open dispatch, or no longer holds the bead) falls back to backlog with the body as
        the note. A bead that left review meanwhile is not moved: the attempt closes as
        withdrawn (not counted) and the path is "withdrawn". With `max_attempts`, a rework
        becomes an escalation when this attempt is the bead's `max_attempts`-th counted
        one, counted inside the transaction (an `at refinery retry` just before counts)."""
        if outcome not in COUNTED:
            raise ValueError(f"reject() takes a counted outcome, not {outcome.value!r}")
        now = self.db.now()
        mail_id: int | None = None
        path: Literal["mail", "backlog", "escalated", "withdrawn"]
        async with self.db.write() as conn:
            attempt = await _one(conn, attempt_id)
            if attempt.state is AttemptState.CLOSED:
                raise IllegalTransition(f"merge attempt {attempt_id} is already closed")
            bead_id = attempt.bead_id
            bead = await _bead_status(conn, bead_id)
            if bead["status"] != BeadStatus.REVIEW.value:
                why = f"the bead left review ({bead['status']}) before it was rejected: {reason}"
                await self._close(
                    conn, attempt, Outcome.WITHDRAWN, reason=why, actor=actor, now=now
                )
                path = "withdrawn"
            else:
                if max_attempts and not isinstance(then, Escalate):
                    async with conn.execute(
                        "SELECT count(*) FROM merge_attempts WHERE bead_id = ? AND counted = 1",
                        (bead_id,),
                    ) as cursor:
                        row = await cursor.fetchone()
                    before = int(row[0]) if row is not None else 0
                    if before + 1 >= max(1, max_attempts):
                        then = Escalate(f"{before + 1} attempt(s) failed; last: {reason}")
                await self._close(
                    conn,
                    attempt,
                    outcome,
                    reason=reason,
                    actor=actor,
                    now=now,
                    counted=True,
                    conflicts=conflicts,
                )
                if isinstance(then, Rework) and not await self._can_rework(
                    conn, then, bead_id, bead["assignee"]
                ):
                    then = ToBacklog(note=_rework_note(then))
                if isinstance(then, Rework):
                    mail_id = await self._rework(conn, bead_id, then, attempt, actor, now)
                    path = "mail"
                elif isinstance(then, ToBacklog):
                    await self.beads._apply(
                        conn, bead_id, Action.RETURN, actor=actor, reason=reason
                    )
                    await conn.execute(
                        "INSERT INTO bead_notes (bead_id, author, body, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (bead_id, REFINERY, then.note, now),
                    )
                    path = "backlog"
                else:
                    await self.beads._apply(
                        conn, bead_id, Action.ESCALATE, actor=actor, reason=then.reason
                    )
                    path = "escalated"
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.rejected",
                bead_id=bead_id,
                agent=attempt.agent,
                data={
                    "attempt": attempt_id,
                    "outcome": outcome.value,
                    "reason": reason,
                    "conflicts": list(conflicts),
                    "path": path,
                    **({"mail": mail_id} if mail_id is not None else {}),
                },
            )
        return Rejected(path=path, bead=await self.beads.get(bead_id), mail_id=mail_id)

    async def _can_rework(
        self, conn: aiosqlite.Connection, rework: Rework, bead_id: int, assignee: str
    ) -> bool:
        """Path A needs the bead still on the agent and the agent holding no open dispatch."""
        if not rework.agent or assignee != rework.agent:
            return False
        async with conn.execute(
            "SELECT 1 FROM dispatches WHERE state != 'closed' AND (agent = ? OR bead_id = ?)",
            (rework.agent, bead_id),
        ) as cursor:
            return await cursor.fetchone() is None

    async def _rework(
        self,
        conn: aiosqlite.Connection,
        bead_id: int,
        rework: Rework,
        attempt: MergeAttempt,
        actor: str,
        now: str,
    ) -> int:
        """REWORK review -> slung, a delivered dispatch, and the mail that is its prompt.

        The body is kept as a note too: if the agent restarts before it reads the mail,
        the dispatch goes back to backlog and the next holder learns why from the notes.
        """
        await self.beads._apply(conn, bead_id, Action.REWORK, actor=actor, reason=rework.subject)
        await conn.execute(
            "INSERT INTO bead_notes (bead_id, author, body, created_at) VALUES (?, ?, ?, ?)",
            (bead_id, REFINERY, _rework_note(rework), now),
        )
        await open_delivered(
            conn,
            bead_id,
            rework.agent,
            kind=rework.kind,
            branch=attempt.branch,
            worktree=rework.worktree,
            now=now,
        )
        async with conn.execute(
            "INSERT INTO mail (sender, recipient, subject, body, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (REFINERY, rework.agent, rework.subject, rework.body, now),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        mail_id = int(row[0])
        await append_event(
            conn,
            at=now,
            actor=actor,
            kind="mail.sent",
            agent=rework.agent,
            data={"id": mail_id, "from": REFINERY, "to": rework.agent, "urgent": False},
        )
        return mail_id

    async def cleaned(self, attempt_id: int, *, actor: str, data: dict[str, object]) -> None:
        """Mark an attempt's worktree and branch tidied (event `refinery.cleaned`)."""
        now = self.db.now()
        async with self.db.write() as conn:
            attempt = await _one(conn, attempt_id)
            if attempt.cleaned_at:
                return
            await conn.execute(
                "UPDATE merge_attempts SET cleaned_at = ? WHERE id = ?", (now, attempt_id)
            )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.cleaned",
                bead_id=attempt.bead_id,
                agent=attempt.agent,
                data={"reason": "worktree and branch tidied", **data, "attempt": attempt_id},
            )

    async def record_target(
        self, commit: str, *, green: bool, detail: str, actor: str
    ) -> TargetCheck:
        """Remember whether target commit `commit` is green; `refinery.target_red` or
        `.target_green` only when the verdict differs from the last one recorded."""
        now = self.db.now()
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT green FROM target_checks ORDER BY checked_at DESC LIMIT 1"
            ) as cursor:
                last = await cursor.fetchone()
            await conn.execute(
                "INSERT INTO target_checks (commit_sha, green, attempt_id, detail, checked_at) "
                "VALUES (?, ?, NULL, ?, ?) ON CONFLICT (commit_sha) DO UPDATE SET "
                "green = excluded.green, detail = excluded.detail, "
                "checked_at = excluded.checked_at",
                (commit, int(green), detail, now),
            )
            if last is None or bool(last[0]) != green:
                verdict = "green" if green else "red"
                await append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind=f"refinery.target_{verdict}",
                    data={
                        "commit": commit,
                        "detail": detail,
                        "reason": f"the target at {commit[:12]} is {verdict}",
                    },
                )
        return TargetCheck(commit=commit, green=green, detail=detail, checked_at=now)

    async def forget_target(self, commit: str) -> None:
        """Drop what is known of `commit` so it is checked again (`at refinery retry`)."""
        async with self.db.write() as conn:
            await conn.execute("DELETE FROM target_checks WHERE commit_sha = ?", (commit,))

    async def forget_targets(self) -> None:
        """Drop every target verdict: they were made with a gate list that changed."""
        async with self.db.write() as conn:
            await conn.execute("DELETE FROM target_checks")

    async def retry(self, bead_id: int, *, actor: str) -> Bead:
        """Zero the bead's counted attempts (history stays); an escalated bead whose last
        attempt counted returns to review; a review bead only wakes the refinery. Anything
        else is refused saying why (event `refinery.retry`)."""
        now = self.db.now()
        ref = format_bead_id(bead_id)
        async with self.db.write() as conn:
            bead = await _bead_status(conn, bead_id)
            status = BeadStatus(bead["status"])
            async with conn.execute(
                "SELECT counted, state FROM merge_attempts WHERE bead_id = ? "
                "ORDER BY n DESC LIMIT 1",
                (bead_id,),
            ) as cursor:
                last = await cursor.fetchone()
            if status is BeadStatus.ESCALATED:
                if last is None or not last[0]:
                    raise TundraError(
                        f"{ref} was not escalated by the refinery; "
                        f"`at bead reopen {bead_id}` puts it back in backlog"
                    )
            elif status is not BeadStatus.REVIEW:
                raise TundraError(
                    f"{ref} is {status.value}: only a bead in review or escalated by the "
                    "refinery can be retried"
                )
            elif not bead["branch"]:
                raise TundraError(f"{ref} has no branch, so the refinery cannot merge it")
            async with conn.execute(
                "UPDATE merge_attempts SET counted = 0 WHERE bead_id = ? AND counted = 1",
                (bead_id,),
            ) as cursor:
                cleared = cursor.rowcount
            if status is BeadStatus.ESCALATED:
                await self.beads._apply(
                    conn, bead_id, Action.RETRY, actor=actor, reason="retry the merge"
                )
            await append_event(
                conn,
                at=now,
                actor=actor,
                kind="refinery.retry",
                bead_id=bead_id,
                data={
                    "cleared": cleared,
                    "from": status.value,
                    "reason": f"{cleared} counted attempt(s) cleared",
                },
            )
        return await self.beads.get(bead_id)


def _rework_note(rework: Rework) -> str:
    """The note that says why: the body, under the rework subject (its first line)."""
    if rework.body.startswith(rework.subject):
        return rework.body
    return f"{rework.subject}\n{rework.body}"
