"""The structured approval channel: `at hook-event` holds a request in the daemon until answered.

The stand-in agent shows its prompt on screen and asks through the hook at the
same time, as Claude Code does: the daemon must keep exactly one request (the
hook's, with the exact command) and the answer must reach the agent through the
hook's reply. Every failure path denies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, at, daemon_town, wait_for

HELPER = Path(__file__).parent / "helpers" / "hooked_agent.py"


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(
                '\n[agents.hk]\nrole = "crew"\nruntime = "demo"\n'
                f"command = {json.dumps(f'{sys.executable} {HELPER}')}\n"
            )
        yield root


def state(town: Path, name: str) -> str:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return str(next(r for r in rows if r["name"] == name)["state"])


def pending(town: Path) -> list[dict[str, object]]:
    return list(json.loads(at(town, "approvals", "--json").stdout))


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
def test_the_hooks_request_is_the_one_answered(town: Path, approve: bool) -> None:
    at(town, "agent", "start", "hk")
    wait_for(lambda: state(town, "hk") == "idle")
    at(town, "send", "hk", "RUN: touch hooked.txt")
    wait_for(lambda: any(a["source"] == "hook" for a in pending(town)))
    time.sleep(0.5)  # let a screen-read duplicate appear, if the daemon were to make one
    waiting = pending(town)
    assert len(waiting) == 1, waiting
    request = waiting[0]
    assert (request["tool"], request["subject"]) == ("Bash", "touch hooked.txt")
    assert request["evidence"]["rule"] == "claude.hook.permission_request"  # type: ignore[index]
    started = time.monotonic()
    at(town, "approve" if approve else "deny", str(request["id"]))
    # The hook replies as soon as the answer is recorded (no wait on the agent first).
    assert time.monotonic() - started < 3.0
    wait_for(
        lambda: (
            "ran it" in at(town, "peek", "hk").stdout or "denied" in at(town, "peek", "hk").stdout
        )
    )
    assert (town / "hooked.txt").exists() is approve
    assert pending(town) == []
    events = json.loads(at(town, "events", "--agent", "hk", "--json", "-n", "200").stdout)
    hooks = {e["data"].get("event") for e in events if e["kind"] == "agent.hook"}
    assert {"SessionStart", "UserPromptSubmit", "Stop"} <= hooks
    answered = "approval.approved" if approve else "approval.denied"
    assert [e["kind"] for e in events].count(answered) == 1


def _permission(town: Path | None, payload: object, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TUNDRA_TOWN"}
    if town is not None:
        env["TUNDRA_TOWN"] = str(town)
    env["TUNDRA_AGENT"] = "hk"
    done = subprocess.run(
        [*AT, "hook-event", "PermissionRequest", *extra],
        input=payload if isinstance(payload, str) else json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=town or Path("/"),
        env=env,
        check=False,
    )
    assert done.returncode == 0
    return str(json.loads(done.stdout)["hookSpecificOutput"]["decision"]["behavior"])


ASK = {"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}}


def test_no_town_means_deny() -> None:
    assert _permission(None, ASK) == "deny"


def test_no_daemon_means_deny_at_once(town: Path) -> None:
    started = time.monotonic()
    assert _permission(town, ASK) == "deny"
    assert time.monotonic() - started < 10
    assert at(town, "daemon", "status", check=False).returncode == 1, "no daemon was started"


def test_malformed_payload_means_deny(town: Path) -> None:
    at(town, "daemon", "start")
    assert _permission(town, "{not json") == "deny"


def test_no_answer_in_time_means_deny_and_the_request_expires(town: Path) -> None:
    at(town, "agent", "start", "hk")
    wait_for(lambda: state(town, "hk") == "idle")
    assert _permission(town, ASK, "--timeout", "0.5") == "deny"
    events = json.loads(at(town, "events", "--kind", "approval.", "--json").stdout)
    assert [e["kind"] for e in events] == ["approval.requested", "approval.expired"]


def test_codex_notify_reaches_the_daemon_as_an_argument(town: Path) -> None:
    at(town, "agent", "start", "hk")
    wait_for(lambda: state(town, "hk") == "idle")
    at(town, "send", "hk", "summarise the repo")
    env = {**os.environ, "TUNDRA_TOWN": str(town), "TUNDRA_AGENT": "hk"}
    for inputs, used in ((["Generate a title"], False), (["summarise the repo"], True)):
        payload = json.dumps({"type": "agent-turn-complete", "input-messages": inputs})
        done = subprocess.run(
            [*AT, "hook-event", "codex-notify", payload],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        events = json.loads(at(town, "events", "--kind", "agent.notify", "--json").stdout)
        assert events[-1]["data"]["used"] is used
