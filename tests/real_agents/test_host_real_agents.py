"""Real agent CLIs through OUR product: SessionHost in a PTY, our detector, a real store.

Opt-in: ``TUNDRA_REAL_AGENTS=1 .venv/bin/python -m pytest -m real_agents tests/real_agents``.

Per CLI: our detector publishes idle; ``host.send_text`` delivers ``RUN: touch
approved.txt``; the detector publishes awaiting_approval; the host records an
approval row read off the screen; ``host.approve`` / ``host.deny`` answer it
with the adapter's keys; the file exists or not; the detector publishes idle
again. Claude Code also runs with our hooks, through the town's daemon and the
``at`` CLI (``daemon_town.DaemonTown``): hook state events reach the daemon, the
request comes from the hook with the exact command, and the answer goes back
through the hook's reply.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agent_specs import SPECS, claude_setup, codex_setup, opencode_setup
from daemon_town import DaemonTown
from host_driver import HostDriver
from real_agent_harness import AGENTS_DIR, Sandbox, wait_until

from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.approvals import Approval, ApprovalSource, ApprovalStatus
from tundra_tui.session.detect import Detected, from_codex_notify

pytestmark = pytest.mark.real_agents

IDLE, WORKING, AWAITING = AgentState.IDLE, AgentState.WORKING, AgentState.AWAITING_APPROVAL
COMMAND = "touch approved.txt"
HostFactory = Callable[..., HostDriver]


def _not_awaiting(state: AgentState) -> bool:
    return state is not AWAITING


def _check_subject(runtime: str, approval: Approval) -> None:
    """Last check of a screen-approval test: the subject read off the screen is the command."""
    assert approval.subject == COMMAND, (
        f"{runtime}: screen-read subject is {approval.subject!r}, tool {approval.tool!r}, "
        f"expected {COMMAND!r} (evidence {approval.evidence})"
    )


# --------------------------------------------------------------------------- screen approvals


def _start(runtime: str, box: Sandbox, make_host_driver: HostFactory) -> HostDriver:
    spec = SPECS[runtime]
    drv = make_host_driver(spec.runtime, box)
    argv, env = spec.setup(box)
    drv.start(argv, env, box.work)
    drv.timed("idle", drv.wait_state(IDLE, spec.start_timeout, f"{runtime} idle at start"))
    return drv


def _ask(drv: HostDriver, runtime: str) -> Approval:
    delivery = drv.submit(f"RUN: {COMMAND}")
    assert delivery.delivered, (delivery, drv.describe())
    drv.timed("awaiting", drv.wait_state(AWAITING, 30, f"{runtime} awaiting approval"))
    approval = drv.pending_approval(10)
    assert approval.source is ApprovalSource.SCREEN, approval
    assert approval.status is ApprovalStatus.PENDING
    assert (approval.agent, approval.runtime) == (drv.name, runtime)
    assert approval.cwd == str(Path(drv.session.config.launch.cwd))
    assert approval.evidence.get("source") == "screen", approval.evidence
    return approval


def _after_answer(drv: HostDriver, runtime: str, answer: ApprovalStatus) -> None:
    drv.timed(
        "idle again",
        drv.wait_state(IDLE, 40, f"{runtime} idle after {answer.value}"),
    )
    assert drv.pending() == [], "a pending approval lingers"
    answered = [e for e in drv.events("approval.") if e.kind == f"approval.{answer.value}"]
    assert len(answered) == 1, [e.kind for e in drv.events("approval.")]


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_host_approve(
    runtime: str, make_sandbox: Callable[[str], Sandbox], make_host_driver: HostFactory
) -> None:
    spec = SPECS[runtime]
    box = make_sandbox(runtime)
    drv = _start(runtime, box, make_host_driver)

    # A plain turn first: our detector must see it working, then idle again.
    delivery = drv.submit("SLOW hello")
    assert delivery.delivered, (delivery, drv.describe())
    drv.timed("working", drv.wait_state(WORKING, 20, f"{runtime} working"))
    answered = "Hello from the fake model! You said: SLOW hello"
    drv.timed(
        "idle after turn",
        drv.wait_state(IDLE, 40, f"{runtime} idle after answer", screen=lambda s: answered in s),
    )

    approval = _ask(drv, runtime)
    started = time.monotonic()
    decided = drv.approve(approval.id)
    drv.timed("approve", time.monotonic() - started)
    assert decided.status is ApprovalStatus.APPROVED
    assert wait_until((box.work / "approved.txt").exists, 20), drv.describe()
    _after_answer(drv, runtime, ApprovalStatus.APPROVED)
    assert wait_until(lambda: spec.usage_tokens(box) > 0, 15), f"no token counts in {runtime} log"
    _check_subject(runtime, approval)


@pytest.mark.parametrize("runtime", sorted(SPECS))
def test_host_deny(
    runtime: str, make_sandbox: Callable[[str], Sandbox], make_host_driver: HostFactory
) -> None:
    box = make_sandbox(runtime)
    drv = _start(runtime, box, make_host_driver)

    approval = _ask(drv, runtime)
    started = time.monotonic()
    decided = drv.deny(approval.id)
    drv.timed("deny", time.monotonic() - started)
    assert decided.status is ApprovalStatus.DENIED
    _after_answer(drv, runtime, ApprovalStatus.DENIED)
    time.sleep(1.0)  # give a wrongly-run command time to show up
    assert not (box.work / "approved.txt").exists(), drv.describe()
    kinds = [r["reply"]["kind"] for r in box.requests() if r.get("reply")]  # type: ignore[index]
    assert "done" not in kinds, f"{runtime} sent a tool result after the deny: {kinds}"
    _check_subject(runtime, approval)


# --------------------------------------------------------------------------- Claude Code hooks

HOOKED = "claude-1"
ANSWER_S = 3.0
"""How long `at approve|deny` may take for a hook request (under the host's 5 s verify)."""


@pytest.mark.parametrize("answer", [ApprovalStatus.APPROVED, ApprovalStatus.DENIED])
def test_claude_hooks(
    answer: ApprovalStatus,
    make_sandbox: Callable[[str], Sandbox],
    make_daemon_town: Callable[..., DaemonTown],
) -> None:
    """Claude Code run by the town's daemon, its hooks reporting over the daemon's socket.

    The town is the sandbox's work dir (the daemon starts agents in the town root),
    which ``claude_setup`` seeds as trusted in the temp HOME, so the hooks run.
    """
    box = make_sandbox("claude")
    argv, env = claude_setup(box)
    town = make_daemon_town(box.work, HOOKED, Runtime.CLAUDE, argv, env)

    started = time.monotonic()
    town.at("agent", "start", HOOKED)
    town.timed("agent start", time.monotonic() - started)
    # The daemon built the launch itself: our --settings file, our env over the agent's table.
    pid = town.agent()["pid"]
    assert pid, town.describe()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    settings = town.town.state_dir / "agents" / HOOKED / "claude-settings.json"
    assert b"--settings" in cmdline and str(settings).encode() in cmdline, cmdline
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{pid}/environ").read_text(errors="replace").split("\0")
        if "=" in item
    )
    assert environ["TUNDRA_TOWN"] == str(town.town.root)
    assert environ["TUNDRA_AGENT"] == HOOKED
    assert (environ["HOME"], environ["ANTHROPIC_BASE_URL"]) == (str(box.home), box.base_url)

    # (a) state events from the hooks reach the daemon and its store.
    town.timed("idle", town.wait_state("idle", 60, "claude idle at start"))
    town.wait(lambda: "SessionStart" in town.hook_events(), 15, "a SessionStart hook event")

    asked = time.monotonic()
    assert town.json("send", HOOKED, f"RUN: {COMMAND}")["delivered"], town.describe()
    # (b) the request comes from the PermissionRequest hook, with the exact command.
    town.wait(
        lambda: any(a["source"] == "hook" for a in town.pending()), 30, "a hook approval request"
    )
    town.timed("hook request", time.monotonic() - asked)
    time.sleep(0.5)  # let a screen-read duplicate appear, if the daemon were to make one
    waiting = town.pending()
    assert len(waiting) == 1, waiting
    request = waiting[0]
    assert (request["source"], request["subject"], request["tool"]) == ("hook", COMMAND, "Bash")
    assert (request["agent"], request["runtime"]) == (HOOKED, "claude"), request
    assert request["evidence"]["rule"] == "claude.hook.permission_request", request
    assert request["cwd"] == str(box.work), request
    town.wait_state("awaiting_approval", 10, "claude awaiting approval (hook)")

    # (c) the answer goes back through the hook's reply, not as keys.
    started = time.monotonic()
    verb = "approve" if answer is ApprovalStatus.APPROVED else "deny"
    said = town.at(verb, str(request["id"]))
    took = town.timed(answer.value, time.monotonic() - started)
    assert said.strip() == f"approval {request['id']}: {answer.value}", said
    shown = "Allowed" if answer is ApprovalStatus.APPROVED else "Denied"
    town.timed(
        "idle again",
        town.wait(
            lambda: f"{shown} by PermissionRequest hook" in town.peek() and town.state() == "idle",
            40,
            f"claude idle after {answer.value} through the hook",
        ),
    )
    approved = answer is ApprovalStatus.APPROVED
    made = box.work / "approved.txt"
    assert wait_until(made.exists, 3 if approved else 1.5) is approved, town.describe()
    town.wait(lambda: "Stop" in town.hook_events(), 15, "a Stop hook event")
    events = town.hook_events()
    assert {"SessionStart", "UserPromptSubmit", "Stop"} <= set(events), events
    assert ("PostToolUse" in events) is approved, events

    # (d) one prompt, one request: the screen's row, if it came first, was upgraded in
    # place by the hook's; nothing was expired behind the operator's back.
    town.wait(lambda: town.pending() == [], 5, "no request left waiting")
    rows = town.events("approval.")
    kinds = [e["kind"] for e in rows]
    told = "\n".join(f"{e['kind']} {e['at']} {e['data']}" for e in rows)
    assert kinds.count("approval.requested") == 1, told
    assert kinds.count(f"approval.{answer.value}") == 1, kinds
    assert "approval.expired" not in kinds, kinds
    assert {e["data"]["id"] for e in rows} == {request["id"]}, rows

    # (e) last: the hook got its answer at once. `at approve|deny` returns once the agent
    # has left the approval state, which it does as soon as its hook process is answered.
    assert took < ANSWER_S, (
        f"`at {verb}` took {took:.1f} s (the agent stayed awaiting approval until the "
        f"host's verify timeout): the hook's answer was held back"
    )


# --------------------------------------------------------------------------- Codex hooks

CODEX_HOOKED = "codex-1"
CODEX_MATRIX = AGENTS_DIR / "matrix"
"""Older releases (scripts/install-matrix.sh codex): each is run approving once."""


@pytest.mark.parametrize(
    ("answer", "release"),
    [
        (ApprovalStatus.APPROVED, None),
        (ApprovalStatus.DENIED, None),
        (ApprovalStatus.APPROVED, "0.135.0"),
        (ApprovalStatus.APPROVED, "0.150.1"),
        (ApprovalStatus.APPROVED, "0.160.1"),
    ],
    ids=["approved", "denied", "0.135.0", "0.150.1", "0.160.1"],
)
def test_codex_hooks(
    answer: ApprovalStatus,
    release: str | None,
    make_sandbox: Callable[[str], Sandbox],
    make_daemon_town: Callable[..., DaemonTown],
) -> None:
    """Codex CLI run by the town's daemon, its hooks (0.135.0 on) reporting over the socket.

    The daemon asks `codex --version`, adds the hooks as `-c` overrides with their trust
    pinned there (no review dialog, the user's config.toml untouched), and the
    PermissionRequest hook holds one request with the exact command; the answer goes
    back through the hook's reply. `at detect --explain` names the deciding hook.
    """
    box = make_sandbox("codex")
    argv, env = codex_setup(box)
    if release is not None:
        older = CODEX_MATRIX / f"codex-{release}" / "node_modules" / ".bin" / "codex"
        if not older.exists():
            pytest.skip(f"codex {release} not installed: run scripts/install-matrix.sh codex")
        argv = [str(older), *argv[1:]]
    config = box.home / ".codex" / "config.toml"
    before = config.read_text()
    town = make_daemon_town(box.work, CODEX_HOOKED, Runtime.CODEX, argv, env)

    started = time.monotonic()
    town.at("agent", "start", CODEX_HOOKED)
    town.timed("agent start", time.monotonic() - started)
    pid = town.agent()["pid"]
    assert pid, town.describe()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert any(arg.startswith(b"hooks.PermissionRequest=") for arg in cmdline), cmdline
    assert any(arg.startswith(b"hooks.state=") for arg in cmdline), cmdline

    # Idle from the screen: Codex starts its session, and fires SessionStart, with the
    # first prompt.
    town.timed("idle", town.wait_state("idle", 60, "codex idle at start"))
    assert "Hooks need review" not in town.peek()

    asked = time.monotonic()
    assert town.json("send", CODEX_HOOKED, f"RUN: {COMMAND}")["delivered"], town.describe()
    town.wait(
        lambda: any(a["source"] == "hook" for a in town.pending()), 30, "a hook approval request"
    )
    town.timed("hook request", time.monotonic() - asked)
    time.sleep(0.5)  # let a screen-read duplicate appear, if the daemon were to make one
    waiting = town.pending()
    assert len(waiting) == 1, waiting
    request = waiting[0]
    assert (request["source"], request["subject"], request["tool"]) == ("hook", COMMAND, "Bash")
    assert (request["agent"], request["runtime"]) == (CODEX_HOOKED, "codex"), request
    assert request["evidence"]["rule"] == "codex.hook.permission_request", request
    town.wait_state("awaiting_approval", 10, "codex awaiting approval (hook)")
    told = town.json("detect", "--explain", CODEX_HOOKED)
    assert (told["source"], told["rule"]) == ("hook", "codex.hook.permission_request"), told
    assert told["channel"] == "Codex hooks", told
    approved = answer is ApprovalStatus.APPROVED
    if approved:
        # Mail that arrives mid-turn waits (an approval is pending) and is handed over by
        # the Stop hook's reply, which Codex takes as its next turn: nothing is typed.
        town.at("mail", "send", CODEX_HOOKED, "-m", "MAILBODY from the mayor")

    started = time.monotonic()
    verb = "approve" if answer is ApprovalStatus.APPROVED else "deny"
    said = town.at(verb, str(request["id"]))
    took = town.timed(answer.value, time.monotonic() - started)
    assert said.strip() == f"approval {request['id']}: {answer.value}", said
    shown = "Ran touch approved.txt" if approved else "Blocked by hook"
    town.timed(
        "idle again",
        town.wait(
            lambda: shown in town.peek() and town.state() == "idle",
            40,
            f"codex idle after {answer.value} through the hook",
        ),
    )
    made = box.work / "approved.txt"
    assert wait_until(made.exists, 3 if approved else 1.5) is approved, town.describe()
    town.wait(lambda: "Stop" in town.hook_events(), 15, "a Stop hook event")
    events = town.hook_events()
    assert {"SessionStart", "UserPromptSubmit", "Stop"} <= set(events), events
    assert ("PostToolUse" in events) is approved, events
    town.wait(lambda: town.pending() == [], 5, "no request left waiting")
    if approved:
        town.wait(
            lambda: any(e["data"].get("via") == "stop_hook" for e in town.events("mail.delivered")),
            30,
            "the mail handed over by the Stop hook",
        )
        town.wait(lambda: "MAILBODY" in town.peek(), 30, "codex answering the mail")
        assert not [e for e in town.events("mail.delivered") if e["data"].get("via") == "typed"]
    kinds = [e["kind"] for e in town.events("approval.")]
    assert kinds.count("approval.requested") == 1, kinds
    assert kinds.count(f"approval.{answer.value}") == 1, kinds
    # Codex writes its own TUI notes there; no hook and no hook trust of ours.
    assert "[hooks" not in config.read_text() and "[hooks" not in before
    assert took < ANSWER_S, f"`at {verb}` took {took:.1f} s: the hook's answer was held back"


# --------------------------------------------------------------------------- OpenCode plugin

OPENCODE_PLUGGED = "opencode-1"


@pytest.mark.parametrize("release", [None, "1.3.2", "1.14.41", "1.17.19"])
def test_opencode_plugin(
    release: str | None,
    make_sandbox: Callable[[str], Sandbox],
    make_daemon_town: Callable[..., DaemonTown],
) -> None:
    """OpenCode run by the town's daemon with our state plugin (1.3.2 on).

    The daemon asks `opencode --version` and names our plugin in `OPENCODE_CONFIG_CONTENT`
    (the user's opencode.json untouched); the plugin's reports reach the daemon over the
    socket (`session.status`, `permission.asked`, `permission.replied`); the request is
    read off the screen and answered with keys, as without the plugin.
    """
    box = make_sandbox("opencode")
    argv, env = opencode_setup(box)
    if release is not None:
        older = AGENTS_DIR / "matrix" / f"opencode-{release}" / "node_modules" / ".bin" / "opencode"
        if not older.exists():
            pytest.skip(f"opencode {release} not installed: run scripts/install-matrix.sh opencode")
        argv = [str(older), *argv[1:]]
    config = box.home / ".config" / "opencode" / "opencode.json"
    before = config.read_text()
    # A fresh HOME makes the first `opencode --version` set itself up (1.3.2: ~6 s on a
    # loaded machine), past the daemon's 5 s version check; a user's HOME is not fresh.
    subprocess.run([argv[0], "--version"], env=env, cwd=box.work, timeout=60, check=True)
    town = make_daemon_town(box.work, OPENCODE_PLUGGED, Runtime.OPENCODE, argv, env)

    town.at("agent", "start", OPENCODE_PLUGGED)
    pid = town.agent()["pid"]
    assert pid, town.describe()
    environ = Path(f"/proc/{pid}/environ").read_text(errors="replace")
    assert "opencode_plugin.js" in environ and "TUNDRA_OPENCODE_HOOK=" in environ
    town.timed("idle", town.wait_state("idle", 90, "opencode idle at start"))

    asked = time.monotonic()
    assert town.json("send", OPENCODE_PLUGGED, f"RUN: {COMMAND}")["delivered"], town.describe()
    town.wait(lambda: "permission.asked" in town.hook_events(), 60, "the plugin's permission.asked")
    town.timed("plugin asked", time.monotonic() - asked)
    # Read off the screen; one read while the box was still drawing (1.3.2: `# Shell
    # command`, no command yet) is replaced by the book once the command shows.
    town.wait(
        lambda: [(a["source"], a["subject"]) for a in town.pending()] == [("screen", COMMAND)],
        30,
        "the request read off the screen, with its command",
    )
    (request,) = town.pending()
    town.wait_state("awaiting_approval", 10, "opencode awaiting approval")
    told = town.json("detect", "--explain", OPENCODE_PLUGGED)
    assert told["channel"] == "OpenCode plugin (state only)", told
    assert told["rule"] in ("opencode.plugin.permission_asked", "opencode.approval.permission"), (
        told
    )

    town.at("approve", str(request["id"]))
    assert wait_until((box.work / "approved.txt").exists, 20), town.describe()
    town.wait(
        lambda: town.hook_events()[-1:] == ["session.status"] and town.state() == "idle",
        40,
        "the plugin's idle and the agent idle",
    )
    events = town.hook_events()
    assert events[0] == "session.status", events
    assert events.index("permission.asked") < events.index("permission.replied"), events
    assert town.pending() == []
    assert config.read_text() == before


def test_sandbox_paths_are_sanitised(make_sandbox: Callable[[str], Sandbox]) -> None:
    box = make_sandbox("claude")
    raw = f"  {box.work}  \n{box.home}/.claude\n\n"
    assert box.recorder.sanitise(raw) == "  <work>\n<home>/.claude\n"
    assert Path(box.work).is_dir()


# --------------------------------------------------------------------------- Codex notify


NOTIFY_LOGGER = Path(__file__).with_name("notify_logger.py")


def test_codex_notify_payload(
    make_sandbox: Callable[[str], Sandbox], make_host_driver: HostFactory
) -> None:
    """What Codex hands a ``notify`` program (not wired into the product yet).

    Codex 0.169.0 accepts ``-c notify=[...]`` and runs the program with ONE extra
    argv argument, the JSON payload; stdin is empty. Its thread-title side query
    is a turn of its own (another ``thread-id``) and notifies too.
    """
    spec = SPECS["codex"]
    box = make_sandbox("codex")
    drv = make_host_driver(spec.runtime, box)
    log = box.root / "notify.jsonl"
    argv, env = spec.setup(box)
    notify = [sys.executable, str(NOTIFY_LOGGER), str(log)]
    drv.start([*argv, "-c", "notify=" + json.dumps(notify)], env, box.work)
    drv.wait_state(IDLE, spec.start_timeout, "codex idle at start")
    assert drv.submit("hello there").delivered
    said = "Hello from the fake model! You said: hello there"

    def payloads() -> list[dict[str, Any]]:
        if not log.exists():
            return []
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert all(len(r["argv"]) == 1 and r["stdin"] == "" for r in records), records
        return [json.loads(r["argv"][0]) for r in records]

    assert wait_until(lambda: any(p.get("last-assistant-message") == said for p in payloads()), 20)
    (main,) = [p for p in payloads() if p.get("last-assistant-message") == said]
    assert main["type"] == "agent-turn-complete"
    assert main["input-messages"] == ["hello there"]
    assert main["cwd"] == str(box.work) and main["client"] == "codex-tui"
    assert {"thread-id", "turn-id"} <= set(main)
    detection = from_codex_notify(main)
    assert detection is not None and detection.state is Detected.IDLE
