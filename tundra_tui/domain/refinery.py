"""The refinery's vocabulary: merge attempts, gate results, target checks and the plans
for a rejected bead.

Pure data shared by the store (which records attempts), the daemon's refinery (which
makes them), the CLI and the UI (which show them). A merge attempt is one try at
landing a submitted branch on the target: rebase or merge a copy, run the gates, then
move the target with a compare-and-swap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tundra_tui.domain.beads import Bead
from tundra_tui.domain.dispatch import DispatchKind

CHECKOUT_BASE = "refs/tundra/checkout-base"
"""`<CHECKOUT_BASE>/<branch>` keeps the target commit the operator's checkout still matches
(its index and files) when the refinery moved the branch under it."""

ARCHIVE_PREFIX = "refs/tundra/archive"
GATE_TAIL_CHARS = 4000
"""How much of a gate's output the store keeps (the full log is a file)."""
MAIL_TAIL_CHARS = 800
"""How much of a red gate's output a rework mail quotes."""


class Strategy(StrEnum):
    """How a branch is put on the target: rebased onto it (linear) or merged with --no-ff."""

    REBASE = "rebase"
    MERGE = "merge"


class AttemptState(StrEnum):
    """Running: integrating and gating. Merging: verified, the target is being moved.
    Closed: an outcome is recorded."""

    RUNNING = "running"
    MERGING = "merging"
    CLOSED = "closed"


class Outcome(StrEnum):
    """How an attempt ended. NONE while it is open."""

    NONE = ""
    MERGED = "merged"
    CONFLICT = "conflict"
    GATE_FAILED = "gate_failed"
    TARGET_MOVED = "target_moved"
    WITHDRAWN = "withdrawn"
    INTERRUPTED = "interrupted"
    ERROR = "error"


COUNTED = frozenset({Outcome.CONFLICT, Outcome.GATE_FAILED})
"""Outcomes that are the work's fault and count toward `refinery.max_attempts`; our own
errors, a moved target, a withdrawal or a crash never do."""


class RefineryState(StrEnum):
    """What the refinery is doing, as the status line says it."""

    IDLE = "idle"
    MERGING = "merging"
    PAUSED = "paused"
    DOWN = "town is down"
    DISABLED = "disabled"
    NEEDS_GATES = "needs gates"
    NO_TARGET = "no target branch"
    TARGET_RED = "target red"
    ERROR = "error"
    OFFLINE = "daemon not running"


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate command run on an attempt's result. `ok` None: still running, or cut by
    a crash. `tail` is raw output (clients sanitize it when they show it)."""

    idx: int
    command: str
    ok: bool | None = None
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    tail: str = ""
    log_path: str = ""
    started_at: str = ""
    finished_at: str = ""


@dataclass(frozen=True, slots=True)
class MergeAttempt:
    """One try at landing bead `bead_id`'s branch (its `n`th). `commits` are (sha, subject)
    of target_before..branch_tip; `result_commit` is set once the gates passed."""

    id: int
    bead_id: int
    n: int
    branch: str
    branch_tip: str
    archive_ref: str
    strategy: Strategy
    target: str
    target_before: str
    started_at: str
    agent: str = ""
    commits: tuple[tuple[str, str], ...] = ()
    result_commit: str = ""
    state: AttemptState = AttemptState.RUNNING
    outcome: Outcome = Outcome.NONE
    reason: str = ""
    conflicts: tuple[str, ...] = ()
    counted: bool = False
    finished_at: str = ""
    cleaned_at: str = ""
    gates: tuple[GateResult, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.state is not AttemptState.CLOSED


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """Whether a target commit passed the gates; `detail` is the failing gate as JSON."""

    commit: str
    green: bool
    detail: str = ""
    checked_at: str = ""


@dataclass(frozen=True, slots=True)
class QueuedBead:
    """A bead waiting in the merge queue, with how many attempts it had (and how many count)."""

    bead: Bead
    attempts: int = 0
    counted: int = 0


@dataclass(frozen=True, slots=True)
class Rework:
    """Path A: the agent is live in the bead's worktree, so the bead goes back to it
    (review -> slung) with a delivered dispatch and this mail as its prompt."""

    agent: str
    kind: DispatchKind
    worktree: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class ToBacklog:
    """Path B: the agent is gone or busy; the bead returns to backlog with `note`."""

    note: str


@dataclass(frozen=True, slots=True)
class Escalate:
    """Too many counted attempts: the bead is escalated to the operator."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """What `MergeRepo.reject` did: which path it took, the bead after it, the mail sent.
    "withdrawn": the bead had left review meanwhile, so nothing was moved or counted."""

    path: Literal["mail", "backlog", "escalated", "withdrawn"]
    bead: Bead
    mail_id: int | None = None


def archive_ref(agent: str, bead_id: int, n: int) -> str:
    """Where attempt `n` keeps the submitted tip: `refs/tundra/archive/<agent>/<bead>/<n>`.
    A sibling of `Worktrees`' timestamped archive names, never a prefix of one."""
    return f"{ARCHIVE_PREFIX}/{agent or 'unknown'}/{bead_id}/{n}"


def ungated(attempt: MergeAttempt) -> bool:
    """Merged with no gate run (`refinery.gates = []`): the card and `bead show` say so."""
    return attempt.outcome is Outcome.MERGED and not attempt.gates
