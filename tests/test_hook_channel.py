"""The structured approval channel: `at hook-event` holds a request until the operator answers.

The stand-in agent shows its prompt on screen and asks through the hook at the
same time, as Claude Code does: the host must keep exactly one request (the
hook's, with the exact command) and its answer must reach the agent through
the hook's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
from tundra_tui.session.adapters import adapter_for
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town, init_town

HELPER = Path(__file__).parent / "helpers" / "hooked_agent.py"
TIMEOUT = 20.0


@pytest.fixture
async def town(tmp_path: Path) -> Town:
    made, _ = init_town(tmp_path / "town")
    return made


@pytest.fixture
async def store(town: Town) -> AsyncIterator[Store]:
    opened = await open_store(town.db_path)
    yield opened
    await opened.close()


@pytest.fixture
async def host(store: Store) -> AsyncIterator[SessionHost]:
    running = SessionHost(store)
    watcher = asyncio.get_running_loop().create_task(running.watch_hooks(0.05))
    yield running
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    await running.close()


def hooked(town: Town, name: str = "mayor") -> AgentConfig:
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(
        command=f"{sys.executable} {HELPER}",
        args=[],
        env={"TUNDRA_TOWN": str(town.root), "TUNDRA_AGENT": name},
        cwd=town.root,
        base_env=os.environ,
    )
    return AgentConfig(name, adapter, launch, columns=100, rows=30)


async def _hook_request(store: Store) -> int:
    for _ in range(400):
        for approval in await store.approvals.pending():
            if approval.source is ApprovalSource.HOOK:
                return approval.id
        await asyncio.sleep(0.05)
    raise AssertionError("the hook never recorded a request")


async def _adopted(host: SessionHost, name: str, approval_id: int) -> None:
    for _ in range(200):
        if host.pending_for(name) == approval_id:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the host never adopted the hook's request")


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
async def test_hook_request_is_the_one_answered(
    host: SessionHost, store: Store, town: Town, approve: bool
) -> None:
    await host.start(hooked(town))
    session = host.session("mayor")
    assert await session.wait_for(lambda s: s is AgentState.IDLE, TIMEOUT)
    await host.send_text("mayor", "RUN: touch hooked.txt")
    approval_id = await _hook_request(store)
    await _adopted(host, "mayor", approval_id)
    request = await store.approvals.get(approval_id)
    assert (request.tool, request.subject) == ("Bash", "touch hooked.txt")
    assert request.evidence["rule"] == "claude.hook.permission_request"
    if approve:
        decided = await host.approve(approval_id)
    else:
        decided = await host.deny(approval_id)
    assert decided.status is (ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED)
    assert await session.wait_for(lambda s: s is AgentState.IDLE, TIMEOUT)
    assert (town.root / "hooked.txt").exists() is approve
    assert await store.approvals.pending() == [], "the screen-read duplicate must not linger"
    kinds = [e.kind for e in await store.events.find(kind_prefix="approval.", limit=50)]
    answered = "approval.approved" if approve else "approval.denied"
    assert kinds.count(answered) == 1
    assert kinds.count("approval.requested") >= 1
    states = {e.data.get("event") for e in await store.events.find(kind_prefix="agent.hook")}
    assert {"SessionStart", "UserPromptSubmit", "Stop"} <= states


def _hook_event(
    town: Path | None, payload: object, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TUNDRA_TOWN",)}
    if town is not None:
        env["TUNDRA_TOWN"] = str(town)
    env["TUNDRA_AGENT"] = "mayor"
    return subprocess.run(
        [sys.executable, "-m", "tundra_tui", "hook-event", "PermissionRequest", *extra],
        input=payload if isinstance(payload, str) else json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=town or Path.cwd(),
        env=env,
        check=False,
    )


def _behaviour(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0
    return str(json.loads(done.stdout)["hookSpecificOutput"]["decision"]["behavior"])


def test_no_town_means_deny(tmp_path: Path) -> None:
    done = _hook_event(None, {"tool_name": "Bash", "tool_input": {"command": "ls"}})
    assert _behaviour(done) == "deny"


def test_malformed_payload_means_deny(town: Town) -> None:
    assert _behaviour(_hook_event(town.root, "{not json")) == "deny"


async def test_no_answer_in_time_means_deny_and_expires(town: Town, store: Store) -> None:
    done = await asyncio.to_thread(
        _hook_event,
        town.root,
        {"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}},
        "--timeout",
        "0.5",
    )
    assert _behaviour(done) == "deny"
    (request,) = [a for a in await _all_approvals(store)]
    assert request.status is ApprovalStatus.EXPIRED and request.subject == "rm -rf /"


async def _all_approvals(store: Store) -> list[object]:
    ids = [int(e.data["id"]) for e in await store.events.find(kind_prefix="approval.requested")]
    return [await store.approvals.get(i) for i in ids]
