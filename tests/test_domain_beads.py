"""The bead state machine and the pure rules around it: parsing, validation, ready work, cycles."""

from __future__ import annotations

import graphlib
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tundra_tui.domain.beads import (
    GRADE_AFTER,
    KANBAN_COLUMNS,
    MAX_DESCRIPTION,
    MAX_LABEL,
    MAX_TITLE,
    PRIORITY_MAX,
    PRIORITY_MIN,
    TRANSITIONS,
    Action,
    Bead,
    BeadStatus,
    Grade,
    Lane,
    allowed_actions,
    format_bead_id,
    kanban_move,
    parse_bead_id,
    parse_lane,
    parse_status,
    ready_sort_key,
    ready_work,
    transition,
    validate_description,
    validate_label,
    validate_priority,
    validate_title,
    would_create_cycle,
)
from tundra_tui.domain.errors import IllegalTransition, TundraError

# The state machine as DESIGN.md describes it, written out independently of TRANSITIONS.
EXPECTED_EDGES: dict[tuple[str, str], str] = {
    ("backlog", "hook"): "hooked",
    ("escalated", "hook"): "hooked",
    ("hooked", "unhook"): "backlog",
    ("hooked", "sling"): "slung",
    ("slung", "submit"): "review",
    ("slung", "done"): "done",
    ("review", "done"): "done",
    ("review", "rework"): "slung",
    ("hooked", "fail"): "failed",
    ("slung", "fail"): "failed",
    ("review", "fail"): "failed",
    ("backlog", "escalate"): "escalated",
    ("hooked", "escalate"): "escalated",
    ("slung", "escalate"): "escalated",
    ("review", "escalate"): "escalated",
    ("done", "reopen"): "backlog",
    ("failed", "reopen"): "backlog",
    ("escalated", "reopen"): "backlog",
    ("slung", "return"): "backlog",
    ("hooked", "return"): "backlog",
    ("review", "return"): "backlog",
    ("escalated", "retry"): "review",
}

LEGAL = [(src, action, dst) for (src, action), dst in TRANSITIONS.items()]
ILLEGAL = [
    (status, action)
    for status, action in itertools.product(BeadStatus, Action)
    if (status, action) not in TRANSITIONS
]


def _edge_id(value: object) -> str:
    return str(value)


# ---- the state machine ------------------------------------------------------------------------


def test_transition_table_matches_the_design() -> None:
    actual = {(src.value, action.value): dst.value for (src, action), dst in TRANSITIONS.items()}
    assert actual == EXPECTED_EDGES


def test_legal_and_illegal_partition_the_full_product() -> None:
    assert len(LEGAL) == 22
    assert len(ILLEGAL) == len(BeadStatus) * len(Action) - len(LEGAL)
    assert {(s, a) for s, a, _ in LEGAL}.isdisjoint(ILLEGAL)


@pytest.mark.parametrize(("status", "action", "target"), LEGAL, ids=_edge_id)
def test_every_legal_transition(status: BeadStatus, action: Action, target: BeadStatus) -> None:
    assert transition(status, action) is target
    assert action in allowed_actions(status)


@pytest.mark.parametrize(("status", "action"), ILLEGAL, ids=_edge_id)
def test_every_illegal_transition_is_refused_with_reason(
    status: BeadStatus, action: Action
) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(status, action)
    message = str(info.value)
    legal = ", ".join(a.value for a in allowed_actions(status))
    assert action.value in action.phrase
    assert f"cannot {action.phrase} a bead that is {status.value}" in message
    assert f"{status.value}: {legal})" in message
    assert "\n" not in message
    assert action not in allowed_actions(status)


def test_action_phrases_read_as_verbs() -> None:
    assert Action.DONE.phrase == "mark done"
    assert Action.HOOK.phrase == "hook"
    assert all(action.value in action.phrase for action in Action)


def test_illegal_transition_is_a_tundra_error() -> None:
    with pytest.raises(TundraError):
        transition(BeadStatus.DONE, Action.SLING)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (BeadStatus.BACKLOG, [Action.HOOK, Action.ESCALATE]),
        (
            BeadStatus.HOOKED,
            [Action.UNHOOK, Action.SLING, Action.FAIL, Action.ESCALATE, Action.RETURN],
        ),
        (
            BeadStatus.SLUNG,
            [Action.SUBMIT, Action.DONE, Action.FAIL, Action.ESCALATE, Action.RETURN],
        ),
        (
            BeadStatus.REVIEW,
            [Action.DONE, Action.REWORK, Action.FAIL, Action.ESCALATE, Action.RETURN],
        ),
        (BeadStatus.DONE, [Action.REOPEN]),
        (BeadStatus.FAILED, [Action.REOPEN]),
        (BeadStatus.ESCALATED, [Action.HOOK, Action.REOPEN, Action.RETRY]),
    ],
    ids=_edge_id,
)
def test_allowed_actions(status: BeadStatus, expected: list[Action]) -> None:
    assert allowed_actions(status) == expected


def test_every_status_can_move_and_every_status_is_reachable_from_backlog() -> None:
    assert all(allowed_actions(status) for status in BeadStatus)
    reached = {BeadStatus.BACKLOG}
    frontier = [BeadStatus.BACKLOG]
    while frontier:
        status = frontier.pop()
        for action in allowed_actions(status):
            target = transition(status, action)
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(BeadStatus)


def test_status_properties() -> None:
    assert [s for s in BeadStatus if s.is_finished] == [BeadStatus.DONE]
    assert {s for s in BeadStatus if not s.is_open} == {BeadStatus.DONE, BeadStatus.FAILED}


def test_lane_rank_and_glyph() -> None:
    assert sorted(Lane, key=lambda lane: lane.rank) == [
        Lane.CRITICAL,
        Lane.STANDARD,
        Lane.EXPERIMENTAL,
    ]
    glyphs = [lane.glyph for lane in Lane]
    assert all(len(glyph) == 1 for glyph in glyphs)
    assert len(set(glyphs)) == len(glyphs)


def test_format_bead_id_and_ref() -> None:
    assert format_bead_id(42) == "#42"
    assert Bead(id=7, title="x").ref == "#7"


# ---- kanban moves ------------------------------------------------------------------------------

KANBAN_CASES: list[tuple[BeadStatus, int, Action | None, str]] = [
    (BeadStatus.BACKLOG, +1, Action.HOOK, ""),
    (BeadStatus.BACKLOG, -1, None, "backlog is the first column"),
    (BeadStatus.HOOKED, +1, Action.SLING, ""),
    (BeadStatus.HOOKED, -1, Action.UNHOOK, ""),
    (BeadStatus.SLUNG, +1, Action.SUBMIT, ""),
    (BeadStatus.SLUNG, -1, None, "cannot go from slung to hooked"),
    (BeadStatus.REVIEW, +1, Action.DONE, ""),
    (BeadStatus.REVIEW, -1, Action.REWORK, ""),
    (BeadStatus.DONE, +1, None, "done is the last column"),
    (BeadStatus.DONE, -1, None, "cannot go from done to review"),
    (BeadStatus.FAILED, -1, Action.REOPEN, ""),
    (BeadStatus.FAILED, +1, None, "can only be reopened"),
    (BeadStatus.ESCALATED, -1, Action.REOPEN, ""),
    (BeadStatus.ESCALATED, +1, None, "can only be reopened"),
]


@pytest.mark.parametrize(("status", "step", "action", "error"), KANBAN_CASES, ids=_edge_id)
def test_kanban_move(status: BeadStatus, step: int, action: Action | None, error: str) -> None:
    if action is None:
        with pytest.raises(IllegalTransition, match=error):
            kanban_move(status, step)
        return
    assert kanban_move(status, step) is action
    target = transition(status, action)
    if status in KANBAN_COLUMNS:
        assert target is KANBAN_COLUMNS[KANBAN_COLUMNS.index(status) + step]
    else:
        assert target is BeadStatus.BACKLOG


def test_kanban_cases_cover_every_status_both_ways() -> None:
    assert {(s, step) for s, step, _, _ in KANBAN_CASES} == set(
        itertools.product(BeadStatus, (-1, +1))
    )


# ---- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(BeadStatus), ids=_edge_id)
def test_parse_status_accepts_every_status(status: BeadStatus) -> None:
    assert parse_status(status.value) is status


@pytest.mark.parametrize("value", ["", "open", "in-progress", "done!", " backlog"])
def test_parse_status_refuses_and_lists_valid(value: str) -> None:
    with pytest.raises(TundraError) as info:
        parse_status(value)
    message = str(info.value)
    assert repr(value) in message
    assert all(status.value in message for status in BeadStatus)


@pytest.mark.parametrize("lane", list(Lane), ids=_edge_id)
def test_parse_lane_accepts_every_lane(lane: Lane) -> None:
    assert parse_lane(lane.value) is lane


@pytest.mark.parametrize("value", ["", "urgent", "crit", "standard "])
def test_parse_lane_refuses_and_lists_valid(value: str) -> None:
    with pytest.raises(TundraError) as info:
        parse_lane(value)
    assert all(lane.value in str(info.value) for lane in Lane)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42), ("#42", 42), ("bd-42", 42), (" 42 ", 42), (" #7\n", 7), ("1", 1), ("007", 7)],
)
def test_parse_bead_id_accepts(text: str, expected: int) -> None:
    assert parse_bead_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "#",
        "bd-",
        "0",
        "#0",
        "-1",
        "#-1",
        "bd--1",
        "4 2",
        "x42",
        "42x",
        "bd42",
        "1.5",
        "+4",
    ],
)
def test_parse_bead_id_refuses(text: str) -> None:
    with pytest.raises(TundraError, match="invalid bead id"):
        parse_bead_id(text)


@pytest.mark.parametrize("text", ["²", "#³"])
def test_parse_bead_id_refuses_non_decimal_digits(text: str) -> None:
    with pytest.raises(TundraError):
        parse_bead_id(text)


# ---- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("title", ["", " ", "\t\n ", "\u3000"])
def test_validate_title_refuses_blank(title: str) -> None:
    with pytest.raises(TundraError, match="non-empty title"):
        validate_title(title)


def test_validate_title_length_bound() -> None:
    assert validate_title("a" * MAX_TITLE) == "a" * MAX_TITLE
    with pytest.raises(TundraError, match=rf"exceeds {MAX_TITLE} characters \({MAX_TITLE + 1}\)"):
        validate_title("a" * (MAX_TITLE + 1))


def test_validate_title_strips_before_measuring() -> None:
    assert validate_title("  fix the login  \n") == "fix the login"
    assert validate_title("   " + "é" * MAX_TITLE + "   ") == "é" * MAX_TITLE


def test_validate_title_refuses_embedded_newline() -> None:
    with pytest.raises(TundraError):
        validate_title("first line\nsecond line")


def test_validate_description_bound() -> None:
    assert validate_description("") == ""
    assert validate_description("x" * MAX_DESCRIPTION) == "x" * MAX_DESCRIPTION
    with pytest.raises(TundraError, match="description exceeds"):
        validate_description("x" * (MAX_DESCRIPTION + 1))


@pytest.mark.parametrize("priority", range(PRIORITY_MIN, PRIORITY_MAX + 1))
def test_validate_priority_accepts_range(priority: int) -> None:
    assert validate_priority(priority) == priority


@pytest.mark.parametrize("priority", [PRIORITY_MIN - 1, PRIORITY_MAX + 1, -100, 100])
def test_validate_priority_refuses_out_of_range(priority: int) -> None:
    with pytest.raises(TundraError) as info:
        validate_priority(priority)
    assert f"between {PRIORITY_MIN}" in str(info.value)
    assert f"got {priority}" in str(info.value)


@pytest.mark.parametrize(
    ("label", "expected"),
    [("ui", "ui"), ("  ui  ", "ui"), ("needs-review", "needs-review"), ("x" * MAX_LABEL, None)],
)
def test_validate_label_accepts(label: str, expected: str | None) -> None:
    assert validate_label(label) == (expected if expected is not None else label)


@pytest.mark.parametrize("label", ["", "   ", "two words", "tab\there", "x" * (MAX_LABEL + 1)])
def test_validate_label_refuses(label: str) -> None:
    with pytest.raises(TundraError, match="invalid label"):
        validate_label(label)


# ---- ready work --------------------------------------------------------------------------------


def _bead(
    bead_id: int,
    *,
    status: BeadStatus = BeadStatus.BACKLOG,
    lane: Lane = Lane.STANDARD,
    priority: int = 2,
    created_at: str = "2025-01-01T00:00:00.000000Z",
    blocked_by: tuple[int, ...] = (),
    convoy_id: int | None = None,
) -> Bead:
    return Bead(
        id=bead_id,
        title=f"bead {bead_id}",
        status=status,
        lane=lane,
        priority=priority,
        created_at=created_at,
        blocked_by=blocked_by,
        convoy_id=convoy_id,
    )


def _ids(beads: list[Bead]) -> list[int]:
    return [bead.id for bead in beads]


def test_ready_work_orders_by_lane_then_priority_then_age_then_id() -> None:
    old, new = "2025-01-01T00:00:00.000000Z", "2025-06-01T00:00:00.000000Z"
    beads = [
        _bead(1, lane=Lane.EXPERIMENTAL, priority=0, created_at=old),
        _bead(2, lane=Lane.STANDARD, priority=4, created_at=old),
        _bead(3, lane=Lane.CRITICAL, priority=4, created_at=new),
        _bead(4, lane=Lane.STANDARD, priority=0, created_at=new),
        _bead(5, lane=Lane.STANDARD, priority=0, created_at=old),
        _bead(9, lane=Lane.CRITICAL, priority=1, created_at=new),
        _bead(8, lane=Lane.CRITICAL, priority=1, created_at=new),
    ]
    expected = [8, 9, 3, 5, 4, 2, 1]
    for seed in range(5):
        shuffled = beads[:]
        random.Random(seed).shuffle(shuffled)
        assert _ids(ready_work(shuffled)) == expected
    assert _ids(ready_work(beads, limit=3)) == expected[:3]
    assert ready_work(beads, limit=0) == []
    assert ready_sort_key(beads[0]) == (2, 0, old, 1)


@pytest.mark.parametrize("status", [s for s in BeadStatus if s is not BeadStatus.BACKLOG])
def test_ready_work_only_offers_backlog(status: BeadStatus) -> None:
    assert ready_work([_bead(1, status=status)]) == []


def test_done_blocker_unblocks() -> None:
    beads = [_bead(1, status=BeadStatus.DONE), _bead(2, blocked_by=(1,))]
    assert _ids(ready_work(beads)) == [2]


@pytest.mark.parametrize("status", [s for s in BeadStatus if s is not BeadStatus.DONE])
def test_unfinished_blocker_blocks(status: BeadStatus) -> None:
    beads = [_bead(1, status=status), _bead(2, blocked_by=(1,))]
    assert 2 not in _ids(ready_work(beads))


def test_every_blocker_must_be_done() -> None:
    beads = [
        _bead(1, status=BeadStatus.DONE),
        _bead(2, status=BeadStatus.REVIEW),
        _bead(3, blocked_by=(1, 2)),
    ]
    assert ready_work(beads) == []


def test_unknown_blocker_is_ignored() -> None:
    assert _ids(ready_work([_bead(2, blocked_by=(99,))])) == [2]


def test_convoy_gating() -> None:
    beads = [_bead(1, convoy_id=10), _bead(2, convoy_id=20), _bead(3)]
    assert _ids(ready_work(beads)) == [3]
    assert _ids(ready_work(beads, active_convoys=frozenset())) == [3]
    assert _ids(ready_work(beads, active_convoys=frozenset({10}))) == [1, 3]
    assert _ids(ready_work(beads, active_convoys=frozenset({10, 20}))) == [1, 2, 3]


_statuses = st.sampled_from(list(BeadStatus))


@st.composite
def _bead_sets(draw: st.DrawFn) -> list[Bead]:
    count = draw(st.integers(min_value=0, max_value=12))
    beads = []
    for bead_id in range(1, count + 1):
        beads.append(
            _bead(
                bead_id,
                status=draw(_statuses),
                lane=draw(st.sampled_from(list(Lane))),
                priority=draw(st.integers(PRIORITY_MIN, PRIORITY_MAX)),
                created_at=f"2025-01-0{draw(st.integers(1, 3))}T00:00:00.000000Z",
                blocked_by=tuple(draw(st.sets(st.integers(1, count + 2), max_size=3)) - {bead_id}),
                convoy_id=draw(st.none() | st.integers(1, 3)),
            )
        )
    return beads


@settings(max_examples=40, deadline=None)
@given(
    beads=_bead_sets(),
    active=st.frozensets(st.integers(1, 3)),
    limit=st.integers(0, 15),
)
def test_ready_work_properties(beads: list[Bead], active: frozenset[int], limit: int) -> None:
    by_id = {bead.id: bead for bead in beads}
    ready = ready_work(beads, active_convoys=active)
    assert ready == sorted(ready, key=ready_sort_key)
    assert ready_work(beads, active_convoys=active, limit=limit) == ready[:limit]
    expected = {
        bead.id
        for bead in beads
        if bead.status is BeadStatus.BACKLOG
        and (bead.convoy_id is None or bead.convoy_id in active)
        and all(b not in by_id or by_id[b].status is BeadStatus.DONE for b in bead.blocked_by)
    }
    assert set(_ids(ready)) == expected
    assert len(ready) == len(expected)


# ---- cycles ------------------------------------------------------------------------------------


def test_self_block_is_a_cycle() -> None:
    assert would_create_cycle({}, 1, 1)


def test_direct_cycle() -> None:
    edges = {1: [2]}  # 2 blocks 1
    assert would_create_cycle(edges, 2, 1)
    assert not would_create_cycle(edges, 1, 2)  # already there: no new loop
    assert not would_create_cycle(edges, 3, 1)


def test_transitive_cycle() -> None:
    edges = {1: [2], 2: [3]}  # 3 blocks 2 blocks 1
    assert would_create_cycle(edges, 3, 1)
    assert would_create_cycle(edges, 2, 1)
    assert not would_create_cycle(edges, 1, 3)


def test_diamond_without_cycle() -> None:
    edges: dict[int, tuple[int, ...]] = {1: (2, 3), 2: (4,), 3: (4,)}
    assert not would_create_cycle(edges, 1, 4)
    assert not would_create_cycle(edges, 5, 1)
    assert would_create_cycle(edges, 4, 1)
    assert would_create_cycle(edges, 4, 2)
    assert not would_create_cycle(edges, 2, 3)
    assert not would_create_cycle(edges, 3, 2)


def test_cycle_detection_terminates_on_an_existing_loop() -> None:
    edges = {1: [2], 2: [1]}
    assert not would_create_cycle(edges, 3, 1)
    assert would_create_cycle(edges, 1, 2)


def _reaches(edges: dict[int, set[int]], nodes: range) -> dict[int, set[int]]:
    """Brute-force transitive closure: reach[a] is every node a path from a arrives at."""
    reach = {n: set(edges.get(n, set())) for n in nodes}
    for k in nodes:
        for i in nodes:
            if k in reach[i]:
                reach[i] |= reach[k]
    return reach


_graphs = st.integers(min_value=1, max_value=7).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n * n),
    )
)


@settings(max_examples=80, deadline=None)
@given(graph=_graphs)
def test_would_create_cycle_matches_brute_force(graph: tuple[int, set[tuple[int, int]]]) -> None:
    n, pairs = graph
    edges: dict[int, set[int]] = {}
    for bead, blocker in pairs:
        edges.setdefault(bead, set()).add(blocker)
    reach = _reaches(edges, range(n))
    for bead, blocker in itertools.product(range(n), repeat=2):
        expected = bead == blocker or bead in reach[blocker]
        assert would_create_cycle(edges, bead, blocker) == expected, (bead, blocker)


@settings(max_examples=80, deadline=None)
@given(
    candidates=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=40),
)
def test_guarded_edges_keep_the_graph_acyclic(candidates: list[tuple[int, int]]) -> None:
    edges: dict[int, list[int]] = {}
    refused = 0
    for bead, blocker in candidates:
        if would_create_cycle(edges, bead, blocker):
            refused += 1
            continue
        edges.setdefault(bead, []).append(blocker)
    graphlib.TopologicalSorter(edges).prepare()  # raises CycleError on any loop
    assert sum(len(v) for v in edges.values()) + refused == len(candidates)


def test_grades_follow_the_moves_that_change_the_evidence() -> None:
    assert GRADE_AFTER[Action.SUBMIT] is Grade.SUBMITTED
    assert GRADE_AFTER[Action.RETRY] is Grade.SUBMITTED
    for action in (Action.HOOK, Action.UNHOOK, Action.REWORK, Action.RETURN, Action.REOPEN):
        assert GRADE_AFTER[action] is Grade.NONE
    for action in (Action.DONE, Action.ESCALATE, Action.FAIL, Action.SLING):
        assert action not in GRADE_AFTER, "these keep the grade"
    assert Grade.VERIFIED not in GRADE_AFTER.values() and Grade.MERGED not in GRADE_AFTER.values()
    assert Bead(1, "t").grade is Grade.NONE
