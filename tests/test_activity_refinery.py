"""One readable line for each event the refinery writes (issue 12)."""

from __future__ import annotations

from typing import Any

from tundra_tui.domain.activity import summarize
from tundra_tui.domain.events import Event


def event(kind: str, data: Any = None, **kw: Any) -> Event:
    return Event(id=1, at="t", actor=kw.pop("actor", "refinery"), kind=kind, data=data or {}, **kw)


SHA = "3f2a1bc9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f"


def test_each_step_of_a_merge_reads_as_a_sentence() -> None:
    on = {"bead_id": 12, "agent": "polecat-1"}
    gate = {"idx": 0, "command": "python -m pytest -q", "seconds": 3.21}
    lines = {
        "refinery.started": ({"n": 1}, "merging #12"),
        "refinery.gate": (gate | {"ok": True, "exit": 0}, "#12 gate 1 ✓ 3.2s: python -m pytest -q"),
        "refinery.verified": ({"result_commit": SHA}, "verified #12: gates green on 3f2a1bc"),
        "refinery.merged": (
            {"result": SHA, "target": "refs/heads/main"},
            "merged #12 into main as 3f2a1bc",
        ),
        "refinery.merged_late": (
            {"reason": "already done"},
            "#12 landed after it was moved by hand: already done",
        ),
        "refinery.closed": (
            {"outcome": "target_moved", "reason": "main moved"},
            "merge of #12 stopped (the target moved): main moved",
        ),
        "refinery.rejected": (
            {"outcome": "conflict", "conflicts": ["CHANGELOG.md"], "path": "mail"},
            "#12 rejected: conflict in CHANGELOG.md → rework by mail",
        ),
        "refinery.escalated": (
            {"reason": "3 attempts"},
            "escalated #12 after its merge attempts: 3 attempts",
        ),
        "refinery.retry": ({}, "retry the merge of #12"),
        "refinery.cleaned": ({}, "tidied #12's worktree and branch"),
        "refinery.cleanup_left": (
            {"reason": "dirty: a.txt"},
            "left #12's worktree in place: dirty: a.txt",
        ),
        "refinery.error": ({"reason": "git failed"}, "refinery error on #12: git failed"),
        "bead.retry": ({"from": "escalated", "to": "review"}, "retry the merge of #12"),
        "bead.done": ({"merged_commit": SHA}, "done #12: merged as 3f2a1bc"),
        "bead.rework": ({"reason": "gate"}, "sent #12 back for rework: gate"),
    }
    for kind, (data, line) in lines.items():
        assert summarize(event(kind, data, **on)) == line, kind
    assert summarize(event("refinery.started", {"n": 2}, **on)) == "merging #12 (attempt 2)"
    red = {"idx": 1, "command": "make test", "ok": False, "exit": 2, "seconds": 42.0}
    assert summarize(event("refinery.gate", red, **on)) == "#12 gate 2 ✗ exit 2 42s: make test"
    late = {"idx": 0, "command": "sleep 99", "ok": False, "timed_out": True, "seconds": 900}
    assert (
        summarize(event("refinery.gate", late, **on)) == "#12 gate 1 ✗ timed out 15 min: sleep 99"
    )
    many = {"outcome": "conflict", "conflicts": list("abcde"), "path": "escalated"}
    assert summarize(event("refinery.rejected", many, **on)) == (
        "#12 rejected: conflict in a, b, c +2 → escalated"
    )


def test_the_queue_switches_and_the_target() -> None:
    assert summarize(event("refinery.paused", {"reason": "release"}, actor="operator")) == (
        "refinery paused: release"
    )
    assert summarize(event("refinery.resumed")) == "refinery resumed"
    red = {"target": "refs/heads/main", "commit": SHA}
    assert summarize(event("refinery.target_red", red)) == "main at 3f2a1bc red: its gates fail"
    assert summarize(event("refinery.target_green", red)) == "main at 3f2a1bc green again"
    assert summarize(event("refinery.error", {"reason": "disk full"})) == (
        "refinery error: disk full"
    )


def test_untrusted_values_stay_on_one_visible_line() -> None:
    nasty = {"outcome": "conflict", "conflicts": ["a\x1b[2Jb\nc"], "path": "mail"}
    line = summarize(event("refinery.rejected", nasty, bead_id=3))
    assert "\x1b" not in line and "\n" not in line
    gate = {"idx": 0, "command": "echo \x07hi\nthere", "ok": True, "seconds": 1}
    line = summarize(event("refinery.gate", gate, bead_id=3))
    assert "\x07" not in line and "\n" not in line
