"""Merge attempts in SQLite: the refinery's queue, its attempts, gate results and target checks.

Every write is one `BEGIN IMMEDIATE` transaction with its events, awaited (never through
the batching writer), so a crash leaves either the whole step or none of it, and the
daemon's recovery reads the truth back from here. Bead moves go through
`BeadRepo._apply`, so dispatches, convoys and `bead.*` events follow as for any move.
"""

from __future__ import annotations

from collections.abc import Sequence

from tundra_tui.domain.beads import Bead
from tundra_tui.domain.refinery import (
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
)
from tundra_tui.store.beads import BeadRepo
from tundra_tui.store.db import Database

REFINERY = "refinery"
"""The sender of rework mail and the author of rework notes."""


class MergeRepo:
    """All reads and writes of merge attempts; bead moves go through `beads._apply`."""

    def __init__(self, db: Database, beads: BeadRepo) -> None:
        self.db = db
        self.beads = beads

    # ---- reading -------------------------------------------------------------------------

    async def queue(self, limit: int = 100) -> list[QueuedBead]:
        """Review beads with a branch and no open attempt, by lane, priority, submitted_at."""
        raise NotImplementedError

    async def get(self, attempt_id: int) -> MergeAttempt:
        """One attempt with its gates, or NotFound."""
        raise NotImplementedError

    async def open(self) -> list[MergeAttempt]:
        """Attempts not closed (running or merging), oldest first: what recovery resolves."""
        raise NotImplementedError

    async def for_bead(self, bead_id: int) -> list[MergeAttempt]:
        """Every attempt on a bead, oldest first, with gates."""
        raise NotImplementedError

    async def recent(self, limit: int = 10) -> list[MergeAttempt]:
        """Closed attempts, newest first, with gates."""
        raise NotImplementedError

    async def counted(self, bead_id: int) -> int:
        """How many of the bead's attempts count toward `refinery.max_attempts`."""
        raise NotImplementedError

    async def uncleaned(self) -> list[MergeAttempt]:
        """Attempts whose worktree and branch still need tidying: merged ones, and the last
        attempt of a bead now escalated, with `cleaned_at` empty."""
        raise NotImplementedError

    async def target_check(self, commit: str) -> TargetCheck | None:
        """What is known of target commit `commit`: green, red, or None (never checked)."""
        raise NotImplementedError

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
        is computed here. None if the bead is not in review or already has an open attempt."""
        raise NotImplementedError

    async def gate_started(self, attempt_id: int, idx: int, command: str, *, log_path: str) -> None:
        """Record that gate `idx` runs (ok NULL until it finishes, or forever if cut)."""
        raise NotImplementedError

    async def gate_finished(self, attempt_id: int, result: GateResult, *, actor: str) -> None:
        """Record a gate's verdict (event `refinery.gate`)."""
        raise NotImplementedError

    async def verified(self, attempt_id: int, *, result_commit: str, actor: str) -> bool:
        """The gates passed on `result_commit`: the attempt moves to merging and the bead's
        grade to verified (event `refinery.verified`). If the bead left review meanwhile the
        attempt closes as withdrawn and this returns False."""
        raise NotImplementedError

    async def merged(self, attempt_id: int, *, actor: str) -> Bead:
        """The target now holds the result: close the attempt merged, record the merged
        commit and grade, move review -> done (event `refinery.merged`, or
        `refinery.merged_late` when the operator had moved the bead). Idempotent."""
        raise NotImplementedError

    async def close(
        self, attempt_id: int, outcome: Outcome, *, reason: str, actor: str
    ) -> MergeAttempt:
        """Close an attempt as target_moved, withdrawn, interrupted or error (never counted);
        running gates are cut; a verified grade returns to submitted (`refinery.closed`)."""
        raise NotImplementedError

    async def reject(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        reason: str,
        conflicts: Sequence[str] = (),
        then: Rework | ToBacklog | Escalate,
        actor: str,
    ) -> Rejected:
        """Close a counted attempt (conflict or gate_failed) and, in the same transaction,
        send the bead back to its agent by mail, to backlog with a note, or escalate it
        (event `refinery.rejected`). A rework that cannot be delivered (the agent holds an
        open dispatch, or the bead moved) falls back to backlog with the body as the note."""
        raise NotImplementedError

    async def cleaned(self, attempt_id: int, *, actor: str, data: dict[str, object]) -> None:
        """Mark an attempt's worktree and branch tidied (event `refinery.cleaned`)."""
        raise NotImplementedError

    async def record_target(
        self, commit: str, *, green: bool, detail: str, actor: str
    ) -> TargetCheck:
        """Remember whether target commit `commit` is green; `refinery.target_red` or
        `.target_green` only when the verdict differs from the last one recorded."""
        raise NotImplementedError

    async def forget_target(self, commit: str) -> None:
        """Drop what is known of `commit` so it is checked again (`at refinery retry`)."""
        raise NotImplementedError

    async def retry(self, bead_id: int, *, actor: str) -> Bead:
        """Zero the bead's counted attempts (history stays); an escalated bead whose last
        attempt counted returns to review; a review bead only wakes the refinery. Anything
        else is refused saying why (event `refinery.retry`)."""
        raise NotImplementedError
