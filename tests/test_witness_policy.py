"""The witness's pure judgement: exact times in, actions and the next check out."""

from __future__ import annotations

import pytest

from tundra_tui.domain.agents import AgentState
from tundra_tui.orchestra.witness import (
    STALLED_KEY,
    Act,
    AgentFacts,
    Limits,
    approval_key,
    escalate_key,
    judge,
    nudge_key,
    reminder,
)

LIMITS = Limits(idle_nudge=10, max_nudges=2, stall=30, approval_wait=60)
IDLE, WORKING, AWAITING = AgentState.IDLE, AgentState.WORKING, AgentState.AWAITING_APPROVAL


def facts(**changes: object) -> AgentFacts:
    base: dict[str, object] = {
        "name": "p1",
        "role": "polecat",
        "state": IDLE,
        "state_since": 100.0,
        "last_output": 100.0,
        "bead": 7,
        "delivered_at": 90.0,
        "reported_at": None,
        "nudges": 0,
    }
    return AgentFacts(**(base | changes))  # type: ignore[arg-type]


def acts(f: AgentFacts, now: float, done: frozenset[str] = frozenset()) -> list[Act]:
    return [a.act for a in judge(f, LIMITS, now, done)[0]]


# ---- idle with no report ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "now", "expected", "next_check"),
    [
        # The clock runs from the latest of: idle since, delivered, reported, last nudge.
        ({}, 109.9, [], 110.0),
        ({}, 110.0, [Act.NUDGE], None),
        ({"reported_at": 105.0}, 110.0, [], 115.0),
        ({"delivered_at": 104.0}, 110.0, [], 114.0),
        ({"nudged_at": 108.0, "nudges": 1}, 117.0, [], 118.0),
        ({"nudged_at": 108.0, "nudges": 1}, 118.0, [Act.NUDGE], None),
        # Reminders ran out: one more idle period, then the bead is escalated.
        ({"nudged_at": 108.0, "nudges": 2}, 117.9, [], 118.0),
        ({"nudged_at": 108.0, "nudges": 2}, 118.0, [Act.ESCALATE], None),
        # Not idle, no bead, or the prompt not delivered yet: nothing to remind.
        ({"state": WORKING}, 500.0, [Act.STALLED], None),
        ({"bead": None}, 500.0, [], None),
        ({"delivered_at": None}, 500.0, [], None),
        ({"state": AgentState.STOPPED}, 500.0, [], None),
    ],
)
def test_idle_rule(
    changes: dict[str, object], now: float, expected: list[Act], next_check: float | None
) -> None:
    actions, check = judge(facts(**changes), LIMITS, now, frozenset())
    assert [a.act for a in actions] == expected
    assert check == next_check


def test_nudge_and_escalation_are_taken_once_each() -> None:
    first = facts()
    (nudge,), _ = judge(first, LIMITS, 110.0, frozenset())
    assert nudge.key == nudge_key(7, 0) and nudge.bead == 7
    assert "reminder 1 of 2" in nudge.reason
    # Judged again before the store counted it: the key holds it back.
    assert acts(first, 111.0, frozenset({nudge.key})) == []
    # Counted: a second reminder has its own key.
    second = facts(nudges=1, nudged_at=110.0)
    (again,), _ = judge(second, LIMITS, 120.0, frozenset({nudge.key}))
    assert again.key == nudge_key(7, 1)
    last = facts(nudges=2, nudged_at=120.0)
    (escalate,), _ = judge(last, LIMITS, 130.0, frozenset())
    assert escalate.act is Act.ESCALATE and escalate.key == escalate_key(7)
    assert "after 2 reminders" in escalate.reason
    assert acts(last, 131.0, frozenset({escalate.key})) == []


def test_no_reminders_allowed_escalates_after_the_first_idle_period() -> None:
    limits = Limits(idle_nudge=10, max_nudges=0, stall=30, approval_wait=60)
    (action,), _ = judge(facts(), limits, 110.0, frozenset())
    assert action.act is Act.ESCALATE


# ---- stalled ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "now", "done", "expected", "next_check"),
    [
        ({"state": WORKING, "last_output": 120.0}, 149.0, set(), [], 150.0),
        ({"state": WORKING, "last_output": 120.0}, 150.0, set(), [Act.STALLED], None),
        # Already marked: nothing new while it stays silent.
        ({"state": WORKING, "last_output": 120.0}, 200.0, {STALLED_KEY}, [], None),
        # It printed again, or stopped working: the mark is lifted.
        ({"state": WORKING, "last_output": 199.0}, 200.0, {STALLED_KEY}, [Act.UNSTALLED], None),
        ({"state": IDLE, "bead": None}, 200.0, {STALLED_KEY}, [Act.UNSTALLED], None),
        # The silence counts from when it began working, not from older output.
        ({"state": WORKING, "state_since": 140.0, "last_output": 50.0}, 160.0, set(), [], 170.0),
    ],
)
def test_stall_rule(
    changes: dict[str, object],
    now: float,
    done: set[str],
    expected: list[Act],
    next_check: float | None,
) -> None:
    actions, check = judge(facts(**changes), LIMITS, now, frozenset(done))
    assert [a.act for a in actions] == expected
    assert check == next_check


# ---- approval wait ----------------------------------------------------------------------------


def test_approval_waiting_too_long_is_raised_once_per_request() -> None:
    waiting = facts(state=AWAITING, approval_id=4, approval_since=100.0)
    assert judge(waiting, LIMITS, 159.0, frozenset()) == ([], 160.0)
    (action,), check = judge(waiting, LIMITS, 160.0, frozenset())
    assert action.act is Act.APPROVAL_WAIT and action.approval == 4 and action.bead == 7
    assert check is None
    assert acts(waiting, 500.0, frozenset({approval_key(4)})) == []
    # A new request is a new wait.
    later = facts(state=AWAITING, approval_id=5, approval_since=400.0)
    assert acts(later, 460.0, frozenset({approval_key(4)})) == [Act.APPROVAL_WAIT]


def test_the_next_check_is_the_earliest_deadline() -> None:
    # Working (stall due at 130) with an approval pending (due at 160).
    both = facts(state=WORKING, last_output=100.0, approval_id=1, approval_since=100.0)
    assert judge(both, LIMITS, 101.0, frozenset()) == ([], 130.0)


def test_reminder_names_the_bead_and_both_reports() -> None:
    text = reminder(12)
    assert "#12 is still yours" in text
    assert "at submit 12" in text and "at done 12 --fail --reason" in text
