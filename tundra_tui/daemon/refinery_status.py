"""The refinery's status as one reply, read from the store (and the daemon's live step).

Imports only the store, the domain and the protocol, so `at refinery status` builds the
same `RefineryStatus` with no daemon running (state OFFLINE, or what flags and config
say: paused, disabled, needs gates), and the daemon's refinery adds its live step.
"""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.config import LayeredConfig
from tundra_tui.daemon.protocol import AttemptRow, GateRow, QueueRow, RefineryStatus
from tundra_tui.domain.errors import NotFound
from tundra_tui.domain.refinery import MergeAttempt, QueuedBead, RefineryState
from tundra_tui.store import Store

NEEDS_GATES_DETAIL = (
    "set refinery.gates to the commands that must pass before a merge "
    "(at config set refinery.gates '[\"python -m pytest -q\"]'), or [] for none"
)


@dataclass(frozen=True, slots=True)
class LiveStep:
    """What the running refinery is doing now: its state and detail, the step of the
    current attempt (e.g. "gate 1/2 `pytest -q`") and since when, and which attempt."""

    state: RefineryState
    detail: str = ""
    step: str = ""
    step_since: str = ""
    attempt_id: int | None = None


async def read_status(
    store: Store,
    config: LayeredConfig,
    *,
    live: LiveStep | None = None,
    recent: int = 10,
    target: str | None = None,
) -> RefineryStatus:
    """The refinery's status. `live` None means no daemon: the state is what the flags and
    config say (disabled, paused, needs gates), else OFFLINE. `target` is the resolved
    target branch name (default: `orchestra.target_branch`)."""
    flags = await store.flags.get()
    raw_gates = config.get("refinery.gates")
    gates = None if raw_gates is None else [str(command) for command in raw_gates]
    if live is not None:
        state, detail = live.state, live.detail
    elif not config.get("refinery.enabled"):
        state, detail = RefineryState.DISABLED, "refinery.enabled is false"
    elif flags.refinery_paused:
        state, detail = RefineryState.PAUSED, flags.refinery_pause_reason
    elif gates is None:
        state, detail = RefineryState.NEEDS_GATES, NEEDS_GATES_DETAIL
    else:
        state, detail = RefineryState.OFFLINE, "start the town with `at up`"
    opened = await store.merges.open()
    current = None
    if live is not None and live.attempt_id is not None:
        current = next((a for a in opened if a.id == live.attempt_id), None)
    elif opened:
        current = opened[0]
    queued = await store.merges.queue()
    done = await store.merges.recent(recent) if recent > 0 else []
    titles = await _titles(store, [a.bead_id for a in (*done, *([current] if current else []))])
    name = target if target is not None else str(config.get("orchestra.target_branch") or "")
    return RefineryStatus(
        state=state.value,
        detail=detail,
        paused=flags.refinery_paused,
        pause_reason=flags.refinery_pause_reason,
        target=name,
        gates=gates,
        strategy=str(config.get("refinery.strategy") or "rebase"),
        max_attempts=int(config.get("refinery.max_attempts") or 3),
        step=live.step if live is not None else "",
        step_since=live.step_since if live is not None else "",
        current=attempt_row(current, titles.get(current.bead_id, "")) if current else None,
        queue=[queue_row(q) for q in queued],
        recent=[attempt_row(a, titles.get(a.bead_id, "")) for a in done],
    )


async def _titles(store: Store, bead_ids: list[int]) -> dict[int, str]:
    titles: dict[int, str] = {}
    for bead_id in dict.fromkeys(bead_ids):
        try:
            titles[bead_id] = (await store.beads.get(bead_id)).title
        except NotFound:
            titles[bead_id] = ""
    return titles


def attempt_row(attempt: MergeAttempt, title: str) -> AttemptRow:
    """An attempt as the wire carries it (raw text: clients sanitize)."""
    return AttemptRow(
        id=attempt.id,
        bead=attempt.bead_id,
        title=title,
        n=attempt.n,
        agent=attempt.agent,
        branch=attempt.branch,
        strategy=attempt.strategy.value,
        target=attempt.target,
        target_before=attempt.target_before,
        result_commit=attempt.result_commit,
        state=attempt.state.value,
        outcome=attempt.outcome.value,
        reason=attempt.reason,
        conflicts=list(attempt.conflicts),
        commits=[[sha, subject] for sha, subject in attempt.commits],
        gates=[
            GateRow(
                command=gate.command,
                ok=gate.ok,
                exit_code=gate.exit_code,
                timed_out=gate.timed_out,
                seconds=gate.seconds,
                tail=gate.tail,
            )
            for gate in attempt.gates
        ],
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
    )


def queue_row(queued: QueuedBead) -> QueueRow:
    bead = queued.bead
    return QueueRow(
        bead=bead.id,
        title=bead.title,
        lane=bead.lane.value,
        priority=bead.priority,
        agent=bead.assignee,
        branch=bead.branch,
        submitted_at=bead.submitted_at,
        attempts=queued.attempts,
    )
