"""The session host end to end with the demo agent: start, queue, stop, failures.

Approvals are the daemon's approval book's: tests/test_approval_book.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.adapters import adapter_for, default_command
from tundra_tui.session.agent import AgentConfig
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


async def test_every_background_task_is_handed_to_the_watcher(store: Store, tmp_path: Path) -> None:
    """No task dies unobserved: the daemon logs whatever the host and its sessions start."""
    seen: list[str] = []
    host = SessionHost(store, watch=lambda task, what: seen.append(what))
    try:
        await host.start(demo("wanda", tmp_path))
        await until_state(host, "wanda", AgentState.IDLE)
        assert "wanda: detection tick" in seen
    finally:
        await host.close()
