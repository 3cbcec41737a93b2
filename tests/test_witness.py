"""The witness: the notify runner, and the daemon acting on idle, stalled, waiting and dead
agents."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from at_cli import at, git_town, wait_for
from mail_town import (
    add_agents,
    add_bead,
    events,
    recording,
    rows,
    seed_dispatch,
    stand_in,
    state,
    typed,
)

from tundra_tui.daemon.protocol import (
    ApprovalInfo,
    ApprovalResolvedEvent,
    AttentionEvent,
    TroubleEvent,
)
from tundra_tui.orchestra import notify
from tundra_tui.ui.live import LiveModel, notice_items

# ---- the notify runner ------------------------------------------------------------------------


def _recorder(
    tmp_path: Path, name: str = "notify", exit_code: int = 0, sleep: float = 0.0
) -> tuple[str, Path]:
    """A notify command that writes its argv to a file (and exits as asked)."""
    out = tmp_path / f"{name}.json"
    script = tmp_path / f"{name}.py"
    script.write_text(
        "import json, sys, time\n"
        f"time.sleep({sleep})\n"
        f"open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print('broken pipe dream', file=sys.stderr)\n"
        f"sys.exit({exit_code})\n"
    )
    return f"{sys.executable} {script} --urgency 'very high'", out


def test_notify_runs_the_command_with_title_and_body_as_arguments(tmp_path: Path) -> None:
    command, out = _recorder(tmp_path)
    body = "p1 waits: rm -rf / ; $(reboot)\x1b]0;pwn\x07\nsecond line"
    assert asyncio.run(notify.run(command, "auto-tundra", body)) is None
    argv = json.loads(out.read_text())
    # The command's own words (quoted ones kept whole), then TITLE and BODY: no shell.
    assert argv[:3] == ["--urgency", "very high", "auto-tundra"]
    assert argv[3].startswith("p1 waits: rm -rf / ; $(reboot)")
    assert "\x1b" not in argv[3] and "\x07" not in argv[3] and "\n" not in argv[3]
    assert not (tmp_path / "pwn").exists()


def test_notify_failures_are_reasons_not_exceptions(tmp_path: Path) -> None:
    command, _ = _recorder(tmp_path, "failing", exit_code=3)
    failed = asyncio.run(notify.run(command, "t", "b"))
    assert failed is not None and "exited 3" in failed and "broken pipe dream" in failed
    missing = asyncio.run(notify.run("/nonexistent/notifier --x", "t", "b"))
    assert missing is not None and missing.startswith("/nonexistent/notifier")
    unsplittable = asyncio.run(notify.run("notify-send 'open", "t", "b"))
    assert unsplittable is not None and "cannot be split" in unsplittable
    slow, out = _recorder(tmp_path, "slow", sleep=30)
    late = asyncio.run(notify.run(slow, "t", "b", timeout=0.5))
    assert late is not None and "did not finish" in late
    assert not out.exists()
    assert asyncio.run(notify.run("  ", "t", "b")) is None


# ---- the control room's side ------------------------------------------------------------------


def test_attention_rings_the_bell_once_per_agent_and_approval() -> None:
    live = LiveModel()
    wait = AttentionEvent(agent="p1", kind="approval_wait", reason="waiting", approval=4, bell=True)
    assert live.apply(wait).kind == "attention_bell"
    assert live.apply(wait).kind == "attention"  # the witness said it again: no second ring
    other = AttentionEvent(agent="p1", kind="approval_wait", reason="w", approval=5, bell=True)
    assert live.apply(other).kind == "attention_bell"
    hostile = "#3 escalated \x1b]0;pwn\x07 [b]bold[/b]"
    live.apply(AttentionEvent(agent="p2", kind="escalated", reason=hostile, bead=3))
    # The approvals themselves are listed while they wait: only the escalation is an item.
    (item,) = notice_items(live.notices)
    assert item.agent == "p2" and item.text.startswith("escalated: #3 escalated")
    assert "\x1b" not in item.text and "\x07" not in item.text
    resolved = ApprovalInfo(
        id=4,
        agent="p1",
        runtime="demo",
        status="approved",
        subject="ls",
        tool="",
        cwd="",
        source="hook",
    )
    live.apply(ApprovalResolvedEvent(approval=resolved))
    assert [n.approval for n in live.notices] == [5, None]


# ---- the witness in the daemon ----------------------------------------------------------------


def _pid(town: Path, name: str) -> int | None:
    listed = json.loads(at(town, "agent", "list", "--json").stdout)
    pid = next(r for r in listed if r["name"] == name).get("pid")
    return int(pid) if pid else None


def _start(town: Path, name: str) -> None:
    at(town, "agent", "start", name)
    wait_for(lambda: state(town, name) == "idle", 30)


def _bead(town: Path, bead: int) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(at(town, "bead", "show", str(bead), "--json").stdout)
    return dict(shown["bead"])


def test_an_idle_agent_is_reminded_then_its_bead_escalated() -> None:
    with git_town(witness={"idle_nudge_seconds": 1, "max_nudges": 1}) as town:
        add_agents(town, lz=stand_in(town, "lz", "lazy_agent"))
        with recording(town) as recorder:
            _start(town, "lz")
            bead = add_bead(town, "Write the report")
            seed_dispatch(town, bead, "lz")
            wait_for(lambda: _bead(town, bead)["status"] == "escalated", 60)
            attention = [e for e in recorder.of(AttentionEvent) if e.kind == "escalated"]
        # One reminder, typed into the agent at an idle moment, naming both reports.
        reminders = [line for line in typed(town, "lz") if "is still yours" in line]
        assert len(reminders) == 1
        assert f"at submit {bead}" in reminders[0] and f"at done {bead} --fail" in reminders[0]
        # In order: reminded, the reminder delivered, then (one idle period later) escalated.
        kinds = [
            k
            for _, k, _, data in events(
                town, "witness.nudged", "mail.delivered", "witness.escalated", "bead.escalate"
            )
            if k != "mail.delivered" or data.get("via") == "typed"
        ]
        assert kinds.index("witness.nudged") < kinds.index("mail.delivered")
        assert kinds.index("mail.delivered") < kinds.index("witness.escalated")
        assert kinds.count("witness.nudged") == 1 and kinds.count("witness.escalated") == 1
        (escalated,) = [d for _, k, _, d in events(town, "witness.escalated")]
        assert "no report after 1 reminder" in escalated["reason"]
        # The operator is told, and the control room was.
        wait_for(lambda: any("escalated" in s for (s,) in _operator_subjects(town)))
        assert [(e.agent, e.bead) for e in attention] == [("lz", bead)]
        ((outcome,),) = rows(town, "SELECT outcome FROM dispatches WHERE bead_id = ?", (bead,))
        assert outcome == "escalated"


def _operator_subjects(town: Path) -> list[tuple[Any, ...]]:
    return rows(town, "SELECT subject FROM mail WHERE recipient = 'operator' ORDER BY id")


def test_a_silent_working_agent_is_marked_stalled() -> None:
    with git_town(witness={"stall_seconds": 1}) as town:
        add_agents(town, lz=stand_in(town, "lz", "lazy_agent"))
        with recording(town) as recorder:
            _start(town, "lz")
            at(town, "send", "lz", "STALL")
            wait_for(lambda: [e for e in recorder.of(TroubleEvent) if e.kind == "stalled"], 30)
        ((_, _, agent, data),) = events(town, "witness.stalled")
        assert agent == "lz" and "no output" in data["reason"]


def test_an_approval_waiting_too_long_rings_once_and_notifies(tmp_path: Path) -> None:
    command, out = _recorder(tmp_path)
    with git_town(witness={"approval_wait_seconds": 1}, notify={"command": command}) as town:
        add_agents(town, hk=stand_in(town, "hk", "hooked_agent", role="crew"))
        with recording(town) as recorder:
            _start(town, "hk")
            at(town, "send", "hk", "RUN: ls")
            wait_for(out.exists, 30)
            ((request,),) = [json.loads(at(town, "approvals", "--json").stdout)]
            at(town, "approve", str(request["id"]))
            wait_for(lambda: recorder.of(ApprovalResolvedEvent), 30)
            rung = [e for e in recorder.of(AttentionEvent) if e.kind == "approval_wait"]
        assert [(e.agent, e.approval, e.bell) for e in rung] == [("hk", request["id"], True)]
        title, body = json.loads(out.read_text())[2:]
        assert title == "auto-tundra: hk waits" and f"approval #{request['id']}" in body
        ((_, _, _, data),) = events(town, "witness.approval_wait")
        assert data["approval"] == request["id"]
        assert events(town, "witness.notify_failed") == []


def test_a_dead_agent_gives_its_bead_back_with_branch_and_notes() -> None:
    with git_town() as town:
        add_agents(town, lz=stand_in(town, "lz", "lazy_agent"))
        at(town, "daemon", "start")
        _start(town, "lz")
        bead = add_bead(town, "Half done")
        seed_dispatch(town, bead, "lz", branch=f"polecat/lz/{bead}")
        at(town, "bead", "note", str(bead), "-m", "got half way")
        pid = _pid(town, "lz")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: _bead(town, bead)["status"] == "backlog", 30)
        shown = _bead(town, bead)
        assert shown["branch"] == f"polecat/lz/{bead}" and shown["assignee"] in ("", None)
        notes = rows(town, "SELECT body FROM bead_notes WHERE bead_id = ?", (bead,))
        assert notes == [("got half way",)]
        ((outcome, reason),) = rows(
            town, "SELECT outcome, reason FROM dispatches WHERE bead_id = ?", (bead,)
        )
        assert outcome == "returned" and "lz died (killed by SIGKILL)" in reason
        ((_, _, agent, data),) = events(town, "witness.agent_died")
        assert agent == "lz" and data["reason"] == reason


def test_a_dead_polecat_s_bead_is_dispatched_again_in_its_clean_worktree() -> None:
    """Dispatch starts the configured polecat (a stand-in that never reports) in a worktree;
    it is killed: the bead goes back, and dispatch hands it out again, in the same worktree."""
    with git_town(orchestra={"max_polecats": 1}) as town:
        lazy = stand_in(town, "polecat-1", "lazy_agent") | {"worktree": True}
        add_agents(town, **{"polecat-1": lazy})
        bead = add_bead(town, "Keep at it")
        at(town, "up")
        wait_for(
            lambda: _dispatches(town, bead) and _dispatches(town, bead)[0][1] == "delivered", 60
        )
        ((first_id, _, first_tree, _),) = _dispatches(town, bead)
        assert first_tree
        at(town, "bead", "note", str(bead), "-m", "started on it")
        pid = _pid(town, "polecat-1")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # Given back, then dispatched again: a second delivered dispatch, same worktree.
        wait_for(lambda: len(_dispatches(town, bead)) == 2, 60)
        wait_for(lambda: _dispatches(town, bead)[1][1] == "delivered", 60)
        (_, first_state, _, first_outcome), (_, _, second_tree, _) = _dispatches(town, bead)
        assert (first_state, first_outcome) == ("closed", "returned")
        assert second_tree == first_tree
        ((_, _, agent, data),) = events(town, "witness.agent_died")
        assert agent == "polecat-1" and data["dispatch"] == first_id
        # Dispatch started it again, not supervision (which would fight the give-back).
        assert events(town, "agent.crashed") == []
        # The new prompt carries the note the first run left.
        prompts = [line for line in typed(town, "polecat-1") if "[tundra work]" in str(line)]
        assert len(prompts) == 2 and "started on it" in prompts[1]
        notes = rows(town, "SELECT body FROM bead_notes WHERE bead_id = ?", (bead,))
        assert notes == [("started on it",)]


def _dispatches(town: Path, bead: int) -> list[tuple[Any, ...]]:
    """(id, state, worktree, outcome) of the bead's dispatches, oldest first."""
    return rows(
        town,
        "SELECT id, state, worktree, outcome FROM dispatches WHERE bead_id = ? ORDER BY id",
        (bead,),
    )


def test_an_agent_stopped_by_the_operator_gives_its_bead_back() -> None:
    """`at agent stop` on an agent holding a delivered bead: the bead goes back to backlog
    (branch and notes kept), its dispatch closes, and the agent holds nothing."""
    with git_town() as town:
        add_agents(town, lz=stand_in(town, "lz", "lazy_agent"))
        at(town, "daemon", "start")
        _start(town, "lz")
        bead = add_bead(town, "Half done")
        seed_dispatch(town, bead, "lz", branch=f"polecat/lz/{bead}")
        at(town, "bead", "note", str(bead), "-m", "got half way")
        at(town, "agent", "stop", "lz")
        wait_for(lambda: _bead(town, bead)["status"] == "backlog", 30)
        shown = _bead(town, bead)
        assert shown["branch"] == f"polecat/lz/{bead}" and shown["assignee"] in ("", None)
        notes = rows(town, "SELECT body FROM bead_notes WHERE bead_id = ?", (bead,))
        assert notes == [("got half way",)]
        ((state_, outcome, reason),) = rows(
            town, "SELECT state, outcome, reason FROM dispatches WHERE bead_id = ?", (bead,)
        )
        assert (state_, outcome, reason) == ("closed", "returned", "stopped by the operator")
        ((_, _, agent, data),) = events(town, "witness.agent_stopped")
        assert agent == "lz" and data["reason"] == "stopped by the operator"
        assert events(town, "witness.agent_died") == []


def test_a_polecat_stopped_by_the_operator_has_its_bead_dispatched_again() -> None:
    """Dispatch hands a bead to the configured polecat; the operator stops it: the bead is
    given back and dispatched again (no open dispatch left to count as starting for ever)."""
    with git_town(orchestra={"max_polecats": 1}) as town:
        lazy = stand_in(town, "polecat-1", "lazy_agent") | {"worktree": True}
        add_agents(town, **{"polecat-1": lazy})
        bead = add_bead(town, "Keep at it")
        at(town, "up")
        wait_for(
            lambda: _dispatches(town, bead) and _dispatches(town, bead)[0][1] == "delivered", 60
        )
        at(town, "agent", "stop", "polecat-1")
        wait_for(lambda: len(_dispatches(town, bead)) == 2, 60)
        wait_for(lambda: _dispatches(town, bead)[1][1] == "delivered", 60)
        (_, first_state, _, first_outcome), _ = _dispatches(town, bead)
        assert (first_state, first_outcome) == ("closed", "returned")
        ((reason,),) = rows(
            town,
            "SELECT reason FROM dispatches WHERE bead_id = ? AND outcome = 'returned'",
            (bead,),
        )
        assert reason == "stopped by the operator"
