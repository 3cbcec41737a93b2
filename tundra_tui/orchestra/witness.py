"""The witness's judgement of one agent's health (pure policy).

The daemon's witness gathers an agent's facts (its state, its open dispatch, its
pending approval) and asks `judge` what to do now and when to look again. Times
are monotonic seconds, passed in, never read, so the tables in the tests are
exact. Each action carries a `key`: the daemon keeps the keys of actions it took
(`done`), so a condition is acted on once, however often the agent is judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tundra_tui.domain.agents import AgentState


class Act(StrEnum):
    """What the witness does about an agent."""

    NUDGE = "nudge"
    """Remind an idle agent that a bead is still on its hook (mail, typed at idle)."""
    ESCALATE = "escalate"
    """Reminders ran out: the bead goes to the mayor and the operator."""
    STALLED = "stalled"
    """Working with no output for too long."""
    UNSTALLED = "unstalled"
    """A stalled agent printed again (or stopped working): the mark is lifted."""
    APPROVAL_WAIT = "approval_wait"
    """An approval has waited too long for the operator: ring, notify, once."""


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """What the witness knows of one agent now (monotonic times; None: never)."""

    name: str
    role: str
    state: AgentState
    state_since: float
    last_output: float
    bead: int | None = None
    """The bead of the agent's open dispatch, once its prompt was delivered."""
    delivered_at: float | None = None
    reported_at: float | None = None
    """The agent's last note or report on that bead."""
    nudges: int = 0
    """Reminders already sent for that dispatch."""
    approval_id: int | None = None
    approval_since: float | None = None
    nudged_at: float | None = None
    """When the last reminder was sent (it restarts the idle clock)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The witness.* settings, in seconds (counts for `max_nudges`)."""

    idle_nudge: float = 300.0
    max_nudges: int = 2
    stall: float = 600.0
    approval_wait: float = 300.0


@dataclass(frozen=True, slots=True)
class WitnessAction:
    """One thing to do, with the reason the event will carry."""

    act: Act
    key: str
    reason: str
    bead: int | None = None
    approval: int | None = None


STALLED_KEY = "stalled"


def nudge_key(bead: int, nudges: int) -> str:
    return f"nudge:{bead}:{nudges}"


def escalate_key(bead: int) -> str:
    return f"escalate:{bead}"


def approval_key(approval: int) -> str:
    return f"approval:{approval}"


def idle_clock(facts: AgentFacts) -> float | None:
    """When the agent's current idle stretch with an unreported bead began, or None when
    the rule does not apply (not idle, no delivered bead)."""
    if facts.state is not AgentState.IDLE or facts.bead is None or facts.delivered_at is None:
        return None
    marks = [facts.state_since, facts.delivered_at, facts.reported_at, facts.nudged_at]
    return max(m for m in marks if m is not None)


def _idle(
    facts: AgentFacts, limits: Limits, now: float, done: frozenset[str]
) -> tuple[WitnessAction | None, float | None]:
    since = idle_clock(facts)
    if since is None or facts.bead is None:
        return None, None
    due = since + limits.idle_nudge
    if now < due:
        return None, due
    idle_for = now - since
    bead = facts.bead
    if facts.nudges < limits.max_nudges:
        key = nudge_key(bead, facts.nudges)
        if key in done:
            return None, None
        reason = (
            f"idle {idle_for:.0f}s with #{bead} and no report "
            f"(reminder {facts.nudges + 1} of {limits.max_nudges})"
        )
        return WitnessAction(Act.NUDGE, key, reason, bead=bead), None
    key = escalate_key(bead)
    if key in done:
        return None, None
    reason = (
        f"idle {idle_for:.0f}s with #{bead} and no report after "
        f"{facts.nudges} reminder{'s' if facts.nudges != 1 else ''}"
    )
    return WitnessAction(Act.ESCALATE, key, reason, bead=bead), None


def _stall(
    facts: AgentFacts, limits: Limits, now: float, done: frozenset[str]
) -> tuple[WitnessAction | None, float | None]:
    working = facts.state is AgentState.WORKING
    quiet_since = max(facts.last_output, facts.state_since)
    stalled = working and now - quiet_since >= limits.stall
    marked = STALLED_KEY in done
    if stalled and not marked:
        reason = f"working with no output for {now - quiet_since:.0f}s"
        return WitnessAction(Act.STALLED, STALLED_KEY, reason, bead=facts.bead), None
    if marked and not stalled:
        reason = "printed again" if working else f"now {facts.state.value}"
        return WitnessAction(Act.UNSTALLED, STALLED_KEY, reason, bead=facts.bead), None
    if working and not stalled:
        return None, quiet_since + limits.stall
    return None, None


def _approval(
    facts: AgentFacts, limits: Limits, now: float, done: frozenset[str]
) -> tuple[WitnessAction | None, float | None]:
    if facts.approval_id is None or facts.approval_since is None:
        return None, None
    key = approval_key(facts.approval_id)
    if key in done:
        return None, None
    due = facts.approval_since + limits.approval_wait
    if now < due:
        return None, due
    reason = f"approval #{facts.approval_id} waiting {now - facts.approval_since:.0f}s"
    action = WitnessAction(
        Act.APPROVAL_WAIT, key, reason, bead=facts.bead, approval=facts.approval_id
    )
    return action, None


def judge(
    facts: AgentFacts, limits: Limits, now: float, done: frozenset[str]
) -> tuple[list[WitnessAction], float | None]:
    """What to do about `facts` at `now`, and the earliest moment (monotonic) worth judging
    again if nothing else happens first (None: only an event can change the verdict).

    `done` holds the keys of actions already taken for this agent: a nudge is keyed by
    its bead and count, an escalation by its bead, an approval wait by its request, and a
    stall by the one mark that `UNSTALLED` lifts.
    """
    actions: list[WitnessAction] = []
    checks: list[float] = []
    for rule in (_idle, _stall, _approval):
        action, check = rule(facts, limits, now, done)
        if action is not None:
            actions.append(action)
        if check is not None:
            checks.append(check)
    return actions, (min(checks) if checks else None)


def reminder(bead: int) -> str:
    """The reminder's text: the bead, and the two ways to report on it."""
    return (
        f"#{bead} is still yours: `at submit {bead} -m SUMMARY` when it is done, "
        f"or `at done {bead} --fail --reason WHY`"
    )
