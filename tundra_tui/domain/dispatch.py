"""Dispatch: a bead handed to an agent by the daemon (or the operator's `at sling`).

One row per hand-over, open from the claim until the bead leaves the agent's hook.
The store allows at most one open dispatch per bead and per agent, which is what
makes "never sling twice" and "one bead per agent" hold across crashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tundra_tui.domain.beads import BeadStatus

BRANCH_PREFIX = "polecat"


class DispatchKind(StrEnum):
    """Who took the bead: a polecat dispatch made, a crew agent whose lanes fit, or
    the operator's `at sling`."""

    POLECAT = "polecat"
    CREW = "crew"
    SLING = "sling"


class DispatchState(StrEnum):
    """How far the hand-over got: the bead hooked (claimed), slung, its prompt taken
    (delivered), or the dispatch finished (closed, with an outcome)."""

    CLAIMED = "claimed"
    SLUNG = "slung"
    DELIVERED = "delivered"
    CLOSED = "closed"


class WaitReason(StrEnum):
    """Why a backlog bead is not being dispatched (`at dispatch status`)."""

    BLOCKED = "blocked"
    CONVOY = "convoy not started"
    CAPACITY = "no capacity"
    BUDGET = "budget"
    """A day, month or convoy budget is spent (detail: `costs.reason_text`, how to raise it)."""
    RATE_LIMITED = "rate limited"
    """Every agent that could take it is on an account paused by a rate-limit screen."""
    PAUSED = "paused"
    DOWN = "town is down"
    RETRY = "retrying"
    """Its last hand-over just failed; held back for a short while (detail: why, and when)."""


OUTCOME_FOR: Mapping[BeadStatus, str] = {
    BeadStatus.REVIEW: "submitted",
    BeadStatus.FAILED: "failed",
    BeadStatus.ESCALATED: "escalated",
    BeadStatus.DONE: "done",
    BeadStatus.BACKLOG: "returned",
}
"""The outcome a dispatch closes with when its bead moves to that status (an unhook
closes it as "unhooked" instead: the operator took the bead back)."""

OUTCOMES = frozenset({*OUTCOME_FOR.values(), "unhooked"})


def polecat_branch(agent: str, bead_id: int) -> str:
    """The branch an agent works a bead on (as `Worktrees.create` names it)."""
    return f"{BRANCH_PREFIX}/{agent}/{bead_id}"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One hand-over as stored. Times are ISO-8601 UTC strings, empty until they happen.
    `ready_at` is when the bead became ready (the dispatch-latency figure starts there);
    `reported_at` is the agent's last note or report, which resets the witness's clock."""

    id: int
    bead_id: int
    agent: str
    kind: DispatchKind
    state: DispatchState = DispatchState.CLAIMED
    outcome: str = ""
    reason: str = ""
    branch: str = ""
    worktree: str = ""
    ready_at: str = ""
    claimed_at: str = ""
    slung_at: str = ""
    delivered_at: str = ""
    closed_at: str = ""
    attempts: int = 0
    nudges: int = 0
    reported_at: str = ""

    @property
    def is_open(self) -> bool:
        """Open until closed: the bead is the agent's to work (or being handed over)."""
        return self.state is not DispatchState.CLOSED
