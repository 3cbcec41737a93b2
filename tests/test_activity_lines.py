"""One readable line for each event issue 11's dispatch, witness and mailroom write."""

from __future__ import annotations

from typing import Any

from tundra_tui.domain.activity import byline, summarize
from tundra_tui.domain.events import Event


def event(kind: str, data: Any = None, **kw: Any) -> Event:
    return Event(id=1, at="t", actor=kw.pop("actor", "daemon"), kind=kind, data=data or {}, **kw)


def test_each_step_of_a_dispatch_reads_as_a_sentence() -> None:
    on = {"bead_id": 5, "agent": "polecat-2"}
    lines = {
        "dispatch.claimed": ({"kind": "polecat"}, "dispatched #5 to polecat-2"),
        "polecat.started": ({"runtime": "demo"}, "started polecat-2 for #5"),
        "polecat.reused": ({}, "reused polecat-2 for #5"),
        "bead.sling": ({"assignee": "polecat-2"}, "slung #5 to polecat-2"),
        "dispatch.delivered": (
            {"attempts": 2, "latency_s": 1.26},
            "polecat-2 took the work for #5 1.3s after it was ready (2 attempts)",
        ),
        "dispatch.failed": (
            {"reason": "not ready"},
            "hand-over of #5 to polecat-2 failed: not ready",
        ),
        "dispatch.returned": (
            {"reason": "daemon restarted"},
            "#5 back to backlog from polecat-2: daemon restarted",
        ),
        "bead.return": ({"reason": "daemon restarted"}, "returned #5 to backlog: daemon restarted"),
        "polecat.retired": ({"reason": "idle 60s"}, "retired polecat-2: idle 60s"),
        "bead.note": ({"excerpt": "half done"}, "note on #5: “half done”"),
    }
    for kind, (data, line) in lines.items():
        assert summarize(event(kind, data, **on)) == line, kind
    assert (
        summarize(event("dispatch.claimed", {"kind": "sling"}, **on)) == "handing #5 to polecat-2"
    )
    for latency, said in ((42.4, "42s"), (700, "12 min"), (18_000, "5 h"), (234_286.9, "3 days")):
        took = summarize(event("dispatch.delivered", {"attempts": 1, "latency_s": latency}, **on))
        assert took == f"polecat-2 took the work for #5 {said} after it was ready"


def test_town_and_dispatch_switches_say_why() -> None:
    paused = event("dispatch.paused", {"reason": "lunch"}, actor="operator")
    assert summarize(paused) == "dispatch paused: lunch"
    assert byline(paused, summarize(paused)) == "operator"
    assert summarize(event("dispatch.resumed")) == "dispatch resumed"
    assert summarize(event("town.up", actor="operator")) == "town up"
    assert summarize(event("town.down")) == "town down"


def test_the_witness_and_the_mailroom() -> None:
    on = {"bead_id": 5, "agent": "crew-1", "actor": "witness"}
    nudged = event("witness.nudged", {"nudges": 1, "reason": "idle"}, **on)
    assert summarize(nudged) == "reminded crew-1 of #5 (reminder 1)"
    assert byline(nudged, summarize(nudged)) == "witness"
    escalated = event("witness.escalated", {"reason": "no report after 2 reminders"}, **on)
    assert summarize(escalated) == "escalated #5 held by crew-1: no report after 2 reminders"
    stalled = event("witness.stalled", {"reason": "no screen change for 600s"}, **on)
    assert summarize(stalled) == "crew-1 stalled: no screen change for 600s"
    waits = event("witness.approval_wait", {"approval": 9, "reason": "300s"}, **on)
    assert summarize(waits) == "crew-1's approval #9 waits too long: 300s"
    died = event("witness.agent_died", {"reason": "crew-1 died (signal 9)"}, **on)
    assert summarize(died) == "crew-1 died holding #5; the bead goes back to backlog"
    stopped = event("witness.agent_stopped", {"reason": "stopped by the operator"}, **on)
    assert summarize(stopped) == "crew-1 was stopped holding #5; the bead goes back to backlog"
    failed = event("witness.notify_failed", {"error": "no such file"}, **on)
    assert summarize(failed) == "notify command failed: no such file"
    mail = {"agent": "crew-1"}
    assert summarize(event("mail.delivered", {"ids": [1, 2, 3]}, **mail)) == (
        "delivered 3 messages to crew-1"
    )
    hooked = event("mail.delivered", {"ids": [4], "via": "stop_hook"}, **mail)
    assert summarize(hooked) == "delivered 1 message to crew-1 at its Stop hook"
    assert summarize(event("mail.undelivered", {"ids": [4], "reason": "busy"}, **mail)) == (
        "1 message to crew-1 not delivered: busy"
    )


def test_hostile_or_broken_data_stays_one_visible_line() -> None:
    note = event("bead.note", {"excerpt": "[red]x\x1b[2J\nnext"}, bead_id=1)
    assert summarize(note) == "note on #1: “[red]x␛[2J␤next”"
    assert summarize(event("dispatch.delivered", {"latency_s": "soon"}, bead_id=1)) == (
        "? took the work for #1"
    )
    assert summarize(event("witness.nudged", ["not", "a", "dict"])) == "witness.nudged"


def test_a_start_reads_as_a_start_and_other_changes_as_arrows() -> None:
    """`stopped → unknown` (the state before the screen is first read) read like a fault."""

    def line(before: str, after: str) -> str:
        return summarize(event("agent.state", {"from": before, "to": after}, agent="mayor"))

    assert line("stopped", "unknown") == "mayor started"
    assert line("failed", "idle") == "mayor started, idle"
    assert line("idle", "working") == "mayor idle → working"
    assert line("working", "stopped") == "mayor working → stopped"
    assert line("unknown", "idle") == "mayor unknown → idle"
