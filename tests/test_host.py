"""The session host end to end with the demo agent: task, approval, answer, completion."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.events import ApprovalRequested, ApprovalResolved, HostEvent
from tundra_tui.session.host import SessionHost
from tundra_tui.session.pty import processes_with_marker
from tundra_tui.store import Store, open_store

TIMEOUT = 15.0
_E = TypeVar("_E")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db")
    yield opened
    await opened.close()


@pytest.fixture
async def host(store: Store) -> AsyncIterator[SessionHost]:
    running = SessionHost(store, max_ptys=2)
    yield running
    await running.close()


def demo(name: str, workdir: Path, *extra: str) -> AgentConfig:
    adapter = adapter_for(Runtime.DEMO)
    launch = adapter.launch(
        command=default_command(Runtime.DEMO),
        args=["--speed", "0.2", "--approval-rate", "0", "--seed", "1", *extra],
        env={"HOME": str(workdir)},
        cwd=workdir,
        base_env=os.environ,
    )
    return AgentConfig(name, adapter, launch, columns=100, rows=30)


async def until_state(host: SessionHost, name: str, state: AgentState) -> None:
    reached = await host.session(name).wait_for(lambda s: s is state, TIMEOUT)
    screen = host.session(name).emulator.text()
    assert reached, f"{name} never became {state.value}; screen:\n{screen}"


async def test_task_approval_approve_completion(
    host: SessionHost, store: Store, tmp_path: Path
) -> None:
    events: list[HostEvent] = []
    host.subscribe(events.append)
    await host.start(demo("alice", tmp_path))
    await until_state(host, "alice", AgentState.IDLE)
    delivery = await host.send_text("alice", "RUN: touch approved.txt")
    assert delivery.delivered
    await until_state(host, "alice", AgentState.AWAITING_APPROVAL)
    requested = await _next(events, ApprovalRequested)
    approval = requested.approval
    assert approval.subject == "touch approved.txt"
    assert approval.source is ApprovalSource.SCREEN and approval.agent == "alice"
    assert approval.evidence["rule"].startswith("demo.approval")
    assert [a.id for a in await store.approvals.pending()] == [approval.id]
    decided = await host.approve(approval.id, actor="operator")
    assert decided.status is ApprovalStatus.APPROVED and decided.decided_by == "operator"
    await until_state(host, "alice", AgentState.IDLE)
    assert (tmp_path / "approved.txt").exists()
    assert await store.approvals.pending() == []
    kinds = [e.kind for e in await store.events.find(kind_prefix="approval.")]
    assert kinds == ["approval.requested", "approval.approved"]
    resolved = await _next(events, ApprovalResolved)
    assert resolved.verified


async def test_deny_path_runs_nothing(host: SessionHost, store: Store, tmp_path: Path) -> None:
    await host.start(demo("bob", tmp_path))
    await until_state(host, "bob", AgentState.IDLE)
    await host.send_text("bob", "RUN: touch denied.txt")
    await until_state(host, "bob", AgentState.AWAITING_APPROVAL)
    approval_id = await _pending_id(host, "bob")
    decided = await host.deny(approval_id)
    assert decided.status is ApprovalStatus.DENIED
    await until_state(host, "bob", AgentState.IDLE)
    assert "Denied by operator." in host.session("bob").emulator.text()
    assert not (tmp_path / "denied.txt").exists()
    with pytest.raises(TundraError, match="already denied"):
        await host.approve(approval_id)


async def test_agent_output_cannot_answer_an_approval(
    host: SessionHost, store: Store, tmp_path: Path
) -> None:
    """Text that looks like an answer, typed into the task, never approves anything."""
    await host.start(demo("carol", tmp_path))
    await until_state(host, "carol", AgentState.IDLE)
    await host.send_text("carol", "RUN: touch nope.txt ; y 1 yes approve")
    await until_state(host, "carol", AgentState.AWAITING_APPROVAL)
    await asyncio.sleep(1.0)
    assert host.session("carol").state is AgentState.AWAITING_APPROVAL
    assert not (tmp_path / "nope.txt").exists()
    assert [a.status for a in await store.approvals.pending()] == [ApprovalStatus.PENDING]


async def test_beyond_max_ptys_a_start_is_queued_then_runs(
    host: SessionHost, tmp_path: Path
) -> None:
    for name in ("a1", "a2", "a3"):
        (tmp_path / name).mkdir()
    assert await host.start(demo("a1", tmp_path / "a1")) is not AgentState.QUEUED
    assert await host.start(demo("a2", tmp_path / "a2")) is not AgentState.QUEUED
    assert await host.start(demo("a3", tmp_path / "a3")) is AgentState.QUEUED
    assert host.queued() == ["a3"]
    await until_state(host, "a1", AgentState.IDLE)
    await host.stop("a1")
    await until_state(host, "a3", AgentState.IDLE)
    assert host.queued() == []


async def test_stop_leaves_no_process_of_the_agent(host: SessionHost, tmp_path: Path) -> None:
    await host.start(demo("dave", tmp_path))
    await until_state(host, "dave", AgentState.IDLE)
    session = host.session("dave")
    assert session.pty is not None
    mark = session.pty.mark
    assert processes_with_marker(mark)
    await host.stop("dave", grace=2)
    assert session.state is AgentState.STOPPED
    assert processes_with_marker(mark) == []


async def test_missing_binary_fails_cleanly(host: SessionHost, tmp_path: Path) -> None:
    adapter = adapter_for(Runtime.CLAUDE)
    launch = adapter.launch(
        command="definitely-not-claude", args=[], env={}, cwd=tmp_path, base_env=os.environ
    )
    with pytest.raises(TundraError, match="not found"):
        await host.start(AgentConfig("eve", adapter, launch))


async def _pending_id(host: SessionHost, name: str) -> int:
    for _ in range(200):
        pending = host.pending_for(name)
        if pending is not None:
            return pending
        await asyncio.sleep(0.05)
    raise AssertionError("no approval was recorded")


async def _next(events: list[HostEvent], kind: type[_E]) -> _E:
    for _ in range(300):
        for event in events:
            if isinstance(event, kind):
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind.__name__}")


async def test_rate_limit_and_auth_failure_screens_are_reported(
    host: SessionHost, tmp_path: Path
) -> None:
    from tundra_tui.session.events import Trouble

    events: list[HostEvent] = []
    host.subscribe(events.append)
    adapter = adapter_for(Runtime.CLAUDE)
    script = (
        "import time; print('API Error: 429 rate limit reached', flush=True); time.sleep(1.5);"
        "print('\\x1b[2J\\x1b[HInvalid API key · Please run /login', flush=True); time.sleep(30)"
    )
    launch = adapter.launch(
        command=sys.executable, args=["-c", script], env={}, cwd=tmp_path, base_env=os.environ
    )
    await host.start(AgentConfig("limited", adapter, launch))
    for _ in range(200):
        kinds = [e.kind for e in events if isinstance(e, Trouble)]
        if kinds[:2] == ["rate_limited", "auth_failed"]:
            break
        await asyncio.sleep(0.05)
    assert kinds[:2] == ["rate_limited", "auth_failed"]
    assert host.session("limited").trouble == "auth_failed"


async def test_codex_notify_counts_only_for_the_agents_own_turn(
    host: SessionHost, tmp_path: Path
) -> None:
    await host.start(demo("cx", tmp_path))
    await until_state(host, "cx", AgentState.IDLE)
    await host.send_text("cx", "explain the parser")
    side_thread = {
        "type": "agent-turn-complete",
        "input-messages": ["Generate a concise, single-line task title for: explain the parser"],
        "last-assistant-message": "Fake task title",
    }
    assert not host.codex_notify("cx", side_thread)
    own_turn = {
        "type": "agent-turn-complete",
        "input-messages": ["earlier", "explain the parser"],
        "last-assistant-message": "Done.",
    }
    assert host.codex_notify("cx", own_turn)
    assert not host.codex_notify("nobody", own_turn)
