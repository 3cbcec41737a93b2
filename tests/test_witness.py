"""The witness: the notify runner, and the daemon acting on idle, stalled, waiting and dead
agents."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tundra_tui.daemon.protocol import ApprovalInfo, ApprovalResolvedEvent, AttentionEvent
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
