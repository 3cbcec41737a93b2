"""The contract: a real daemon's snapshot and events, fed into the TUI's live model.

The control room's tests mostly use a scripted link; this one proves the daemon
and the live model agree about every event the operator's screen depends on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import daemon_town

from tundra_tui.daemon.client import DaemonClient, start_daemon
from tundra_tui.daemon.protocol import Approve, Down, Event, SendText, Spawn, Stop
from tundra_tui.domain.agents import AgentState
from tundra_tui.town import find_town
from tundra_tui.ui.agent_rows import agent_rows
from tundra_tui.ui.live import LiveModel


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town() as root:
        yield root


def _text(model: LiveModel, name: str) -> str:
    screen = model.agent(name).screen
    return "\n".join("".join(run.text for run in line) for line in screen.lines)


class Follower:
    """A live model kept up to date from one subscribed connection."""

    def __init__(self, client: DaemonClient, show: list[str]) -> None:
        self.model = LiveModel()
        self.kinds: list[str] = []
        self._task = asyncio.ensure_future(self._follow(client, show))

    async def _follow(self, client: DaemonClient, show: list[str]) -> None:
        event: Event
        async for event in client.subscribe(show=show):
            self.kinds.append(self.model.apply(event).kind)

    async def until(self, predicate: object, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():  # type: ignore[operator]
            if self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached; events so far: {self.kinds[-20:]}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self._task.cancel()


async def test_the_live_model_follows_a_real_daemon(town: Path) -> None:
    found = find_town(town)
    await start_daemon(found)
    client = await DaemonClient.connect(found)
    follower = Follower(client, show=["d1"])
    try:
        await follower.until(lambda: "snapshot" in follower.kinds)
        await client.call(Spawn(name="d1"))
        model = follower.model
        await follower.until(lambda: model.agent("d1").state is AgentState.IDLE)
        await follower.until(lambda: "demo❯" in _text(model, "d1"))

        await client.call(SendText(name="d1", text="RUN: touch yes.txt"))
        await follower.until(lambda: model.approvals)
        pending = next(iter(model.approvals.values()))
        assert pending.agent == "d1" and "yes.txt" in pending.subject
        assert model.agent("d1").state is AgentState.AWAITING_APPROVAL

        # A second client, arriving late, learns the same from its snapshot alone.
        late_client = await DaemonClient.connect(found)
        late = Follower(late_client, show=["d1"])
        try:
            await late.until(lambda: pending.id in late.model.approvals)
            assert late.model.agent("d1").state is AgentState.AWAITING_APPROVAL
            await late.until(lambda: "yes.txt" in _text(late.model, "d1"))
        finally:
            late.close()
            await late_client.close()

        await client.call(Approve(id=pending.id, seen=pending.subject))
        await follower.until(lambda: not model.approvals)
        await follower.until(lambda: (town / "yes.txt").exists())
        await follower.until(lambda: model.agent("d1").state is AgentState.IDLE)

        await client.call(Stop(name="d1"))
        await follower.until(lambda: model.agent("d1").state is AgentState.STOPPED)
        await follower.until(lambda: model.agent("d1").exit != "")
        # The operator's stop reads as theirs, not as a crash (`exit 129`).
        row = next(row for row in agent_rows([], model, {}) if row.name == "d1")
        assert (row.note, row.trouble) == ("stopped by you", ""), model.agent("d1").evidence
        assert {"snapshot", "state", "screen", "approval", "approval_resolved", "exited"} <= set(
            follower.kinds
        )
    finally:
        follower.close()
        await client.close()


async def test_the_operators_at_down_reads_as_their_stop(town: Path) -> None:
    found = find_town(town)
    await start_daemon(found)
    client = await DaemonClient.connect(found)
    follower = Follower(client, show=[])
    try:
        await follower.until(lambda: "snapshot" in follower.kinds)
        await client.call(Spawn(name="d1"))
        model = follower.model
        await follower.until(lambda: model.agent("d1").state is AgentState.IDLE)
        await client.call(Down())
        await follower.until(lambda: model.agent("d1").state is AgentState.STOPPED)
        assert model.agent("d1").evidence.get("by") == "operator", model.agent("d1").evidence
    finally:
        follower.close()
        await client.close()
