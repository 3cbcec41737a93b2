"""The refinery's pure rules: when to escalate, which rework path, and the mail's bounds."""

from __future__ import annotations

import pytest

from tundra_tui.domain.handover import parse_rework
from tundra_tui.domain.refinery import GateResult, Outcome
from tundra_tui.orchestra.merge_queue import (
    MAX_BODY_CHARS,
    decide,
    rework_body,
    rework_kind,
    rework_path,
)


def test_decide_counts_this_attempt() -> None:
    assert decide(Outcome.CONFLICT, 0, 3) == "rework"
    assert decide(Outcome.GATE_FAILED, 1, 3) == "rework"
    assert decide(Outcome.GATE_FAILED, 2, 3) == "escalate"
    assert decide(Outcome.CONFLICT, 0, 1) == "escalate"
    with pytest.raises(ValueError):
        decide(Outcome.TARGET_MOVED, 0, 3)


def test_rework_path_mails_only_a_live_free_agent_in_its_worktree() -> None:
    assert rework_path(True, True, True) == "mail"
    for live, free, there in [(False, True, True), (True, False, True), (True, True, False)]:
        assert rework_path(live, free, there) == "backlog"


def test_conflict_body_names_paths_and_the_way_out() -> None:
    body = rework_body(
        "conflict", bead_id=7, branch="polecat/a/7", target="refs/heads/main", conflicts=["x.md"]
    )
    assert parse_rework(body) == (7, "conflict")
    assert "polecat/a/7 conflicts with main in: x.md" in body
    assert "git rebase main" in body and "at submit 7" in body
    many = rework_body("conflict", bead_id=7, branch="b", target="main", conflicts=["p"] * 500)
    assert len(many) <= MAX_BODY_CHARS and "and 480 more" in many


def test_gate_body_keeps_the_end_of_the_output_visible_and_bounded() -> None:
    tail = "x" * 5000 + "\x1b[31mboom\x07\nlast line"
    gate = GateResult(idx=0, command="pytest -q", ok=False, exit_code=1, seconds=2.5, tail=tail)
    body = rework_body("gate", bead_id=9, branch="polecat/a/9", target="main", gate=gate)
    assert parse_rework(body) == (9, "gate")
    assert len(body) <= MAX_BODY_CHARS
    assert "`pytest -q` exited 1 after 2.5 s" in body
    assert body.endswith("boom␇␤last line")
    assert "\x1b" not in body and "\x07" not in body
    assert rework_kind(Outcome.GATE_FAILED) == "gate"
    timed = GateResult(idx=0, command="t", ok=False, timed_out=True, seconds=900)
    assert "timed out after 900 s" in rework_body(
        "gate", bead_id=1, branch="b", target="main", gate=timed
    )
