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
    """F9: an expired hook request is closed everywhere: the store, `at approvals`, and
    what a client subscribing afterwards is sent."""
    at(town, "agent", "start", "hk")
    wait_for(lambda: state(town, "hk") == "idle")
    at(town, "send", "hk", "WAIT 0.5 RUN: touch late.txt")
    wait_for(lambda: "denied" in at(town, "peek", "hk").stdout)

    def kinds() -> list[str]:
        # One prompt, one request: the screen's row upgraded in place by the hook's, if
        # the screen saw the prompt first.
        events = json.loads(at(town, "events", "--kind", "approval.", "--json").stdout)
        return [e["kind"] for e in events if e["kind"] != "approval.upgraded"]

    wait_for(lambda: kinds() == ["approval.requested", "approval.expired"])
    assert pending(town) == []
    assert not (town / "late.txt").exists()
    assert _first_events(town) == [], "a new client was sent an expired request"


def _first_events(town: Path) -> list[dict[str, object]]:
    """The approvals a client that subscribes now is sent with its snapshot."""
    probe = (
        "import asyncio, json, sys\n"
        "import msgspec\n"
        "from tundra_tui.daemon.client import DaemonClient\n"
        "from tundra_tui.daemon.protocol import ApprovalEvent\n"
        "from tundra_tui.town import Town\n"
        "async def main():\n"
        "    client = await DaemonClient.connect(Town(__import__('pathlib').Path(sys.argv[1])))\n"
        "    seen = []\n"
        "    async def read():\n"
        "        async for event in client.subscribe():\n"
        "            if isinstance(event, ApprovalEvent):\n"
        "                seen.append(msgspec.structs.asdict(event.approval))\n"
        "    try:\n"
        "        await asyncio.wait_for(read(), 2.0)\n"
        "    except TimeoutError:\n"
        "        pass\n"
        "    print(json.dumps(seen))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(town)], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


def test_a_forged_hook_request_from_outside_the_agent_is_refused(town: Path) -> None:
    """Any local process could post a PermissionRequest under an agent's name: only the
    agent's own tree, with the secret it was started with, may."""
    at(town, "agent", "start", "hk")
    wait_for(lambda: state(town, "hk") == "idle")
    assert _permission(town, ASK) == "deny"
    assert pending(town) == []
    events = json.loads(at(town, "events", "--kind", "daemon.hook_refused", "--json").stdout)
    assert events and events[-1]["data"]["agent"] == "hk"


def test_codex_notify_reaches_the_daemon_as_an_argument(town: Path) -> None:
    at(town, "agent", "start", "hk")
    wait_for(lambda: state(town, "hk") == "idle")
    at(town, "send", "hk", "NOTIFY summarise the repo")

    def used() -> list[bool]:
        events = json.loads(at(town, "events", "--kind", "agent.notify", "--json").stdout)
        return [e["data"]["used"] for e in events]

    wait_for(lambda: used() == [False, True])
