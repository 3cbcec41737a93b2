"""The writes the control room and the CLI used to make around the daemon, now daemon ops:
`convoy_create`/`convoy_add`, `dispatch_control` and `agent_add`. Each is made by one
client (or by `at`, which goes through the daemon when one runs) and heard by another as
one `ChangedEvent`, on a real daemon and store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from at_cli import at, daemon_town, until

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.peers import Peer
from tundra_tui.daemon.protocol import (
    AgentAdd,
    AgentAdded,
    ChangedEvent,
    ConvoyAdd,
    ConvoyChanged,
    ConvoyCreate,
    DispatchControl,
    DispatchSwitched,
)
from tundra_tui.daemon.server import Daemon
from tundra_tui.daemon.transport import Caller
from tundra_tui.domain.errors import TundraError
from tundra_tui.store import open_store
from tundra_tui.town import Town, find_town

pytestmark = pytest.mark.xdist_group("daemon_writes")
"""One daemon for the module: its tests run on one worker."""


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        at(root, "daemon", "start")
        yield root


@dataclass
class Clients:
    """A client that writes and another that only listens."""

    town: Town
    writer: DaemonClient
    heard: list[ChangedEvent] = field(default_factory=list)

    async def hears(self, event: ChangedEvent) -> None:
        await until(lambda: event in self.heard, what=f"{event} heard")

    def at(self, *argv: str) -> str:
        return at(self.town.root, *argv).stdout


@pytest.fixture
async def clients(root: Path) -> AsyncIterator[Clients]:
    town = find_town(root)
    writer = await DaemonClient.connect(town)
    watcher = await DaemonClient.connect(town)
    pair = Clients(town, writer)

    async def listen() -> None:
        async for event in watcher.subscribe():
            if isinstance(event, ChangedEvent):
                pair.heard.append(event)

    listening = asyncio.ensure_future(listen())
    try:
        await until(lambda: watcher.subscribed, what="the watcher subscribed")
        yield pair
    finally:
        listening.cancel()
        await writer.close()
        await watcher.close()


async def _beads(town: Town, *titles: str) -> list[int]:
    async with await open_store(town.db_path) as store:
        return [(await store.beads.add(title, actor="operator")).id for title in titles]


async def test_convoys_are_created_and_filled_through_the_daemon(clients: Clients) -> None:
    first, second, bead = await _beads(clients.town, "one", "two", "three")
    made = await clients.writer.call(ConvoyCreate(name="c1", beads=[first], actor="alice"))
    assert isinstance(made, ConvoyChanged)
    assert (made.name, made.status, made.warning) == ("c1", "pending", "")
    await clients.hears(ChangedEvent(what="convoys", ids=[made.id]))

    # A bead already in a convoy: the new convoy is made, empty, and the reply says why.
    empty = await clients.writer.call(ConvoyCreate(name="c2", beads=[first, second]))
    assert "c2" in empty.warning and "another convoy" in empty.warning
    await clients.hears(ChangedEvent(what="convoys", ids=[empty.id]))
    with pytest.raises(TundraError, match="already exists"):
        await clients.writer.call(ConvoyCreate(name="c1"))

    added = await clients.writer.call(ConvoyAdd(convoy="c2", beads=[second]))
    assert added.id == empty.id

    # `at convoy create/add` go through the running daemon: the watcher hears them too.
    out = await asyncio.to_thread(clients.at, "convoy", "create", "c3", "--json")
    third = ChangedEvent(what="convoys", ids=[json.loads(out)["id"]])
    await clients.hears(third)
    await asyncio.to_thread(clients.at, "convoy", "add", "c3", f"#{bead}")
    await until(lambda: clients.heard.count(third) == 2, what="the CLI's add heard")

    async with await open_store(clients.town.db_path) as store:
        convoys = {c.name: c for c in await store.convoys.all()}
        assert convoys["c1"].bead_ids == (first,)
        assert convoys["c2"].bead_ids == (second,)
        assert convoys["c3"].bead_ids == (bead,)
        created = await store.events.find(kind_prefix="convoy.created")
        assert [e.actor for e in created] == ["alice", "operator", "operator"]


async def test_dispatch_is_paused_and_resumed_through_the_daemon(clients: Clients) -> None:
    async def flags() -> tuple[bool, str]:
        async with await open_store(clients.town.db_path) as store:
            got = await store.flags.get()
        return got.paused, got.pause_reason

    paused = await clients.writer.call(DispatchControl(verb="pause", reason="lunch"))
    assert paused == DispatchSwitched(paused=True, reason="lunch", changed=True)
    assert await flags() == (True, "lunch")  # stored before the answer: nothing is claimed
    await clients.hears(ChangedEvent(what="dispatch"))
    again = await clients.writer.call(DispatchControl(verb="pause", reason="still lunch"))
    assert not again.changed

    # `at dispatch resume` goes through the daemon: the watcher hears it.
    before = clients.heard.count(ChangedEvent(what="dispatch"))
    assert await asyncio.to_thread(clients.at, "dispatch", "resume") == "dispatch resumed\n"
    await until(lambda: clients.heard.count(ChangedEvent(what="dispatch")) > before)
    assert await flags() == (False, "")


async def test_agents_are_added_through_the_daemon(clients: Clients) -> None:
    added = await clients.writer.call(AgentAdd(name="scout", runtime="demo", role="polecat"))
    assert added == AgentAdded(
        name="scout", role="polecat", runtime="demo", path=str(clients.town.config_path)
    )
    assert "[agents.scout]" in clients.town.config_path.read_text()
    await clients.hears(ChangedEvent(what="config"))
    async with await open_store(clients.town.db_path) as store:  # in the roster at once
        assert (await store.agents.get("scout")).role.value == "polecat"
    for name, why in (("scout", "already exists"), ("operator", "reserved"), ("a b", "name")):
        with pytest.raises(TundraError, match=why):
            await clients.writer.call(AgentAdd(name=name, runtime="demo"))
    with pytest.raises(TundraError, match="runtime"):
        await clients.writer.call(AgentAdd(name="nobody", runtime="cobol"))
    assert "nobody" not in clients.town.config_path.read_text()

    # `at agent add` goes through the daemon: the watcher hears it, and --json reads the store.
    before = clients.heard.count(ChangedEvent(what="config"))
    out = await asyncio.to_thread(
        clients.at, "agent", "add", "crew-2", "--runtime", "demo", "--json"
    )
    assert json.loads(out)["name"] == "crew-2"
    await until(lambda: clients.heard.count(ChangedEvent(what="config")) > before)


async def test_an_agent_can_neither_pause_dispatch_nor_add_an_agent(root: Path) -> None:
    """The daemon's own check (by process ancestry; here a caller marked inside an agent):
    refused in one line, nothing written."""
    town = find_town(root)
    config = town.config_path.read_text()
    async with await open_store(town.db_path) as store:
        daemon = Daemon(town, store, log=DaemonLog(town.state_dir / "logs" / "inside.log"))
        inside = Caller(Peer(None, None), inside=True)
        with pytest.raises(TundraError, match="agents do not pause or resume dispatch"):
            await daemon._serve(DispatchControl(verb="pause"), inside)
        with pytest.raises(TundraError, match="agents do not change the configuration"):
            await daemon._serve(AgentAdd(name="mole", runtime="demo"), inside)
        assert not (await store.flags.get()).paused
    assert town.config_path.read_text() == config
