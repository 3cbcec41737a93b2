"""The daemon's board operations on a real store and real layer files: each validates as the
store does, answers with a typed reply, and announces what it wrote with one ChangedEvent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from at_cli import daemon_town, until

from tundra_tui.config import load_config
from tundra_tui.daemon.board import BoardOps
from tundra_tui.daemon.client import DaemonClient, start_daemon
from tundra_tui.daemon.protocol import (
    REQUESTS,
    BeadApply,
    BeadChanged,
    BeadCreate,
    BeadMove,
    BeadUpdate,
    ChangedEvent,
    ConfigSet,
    ConfigUnset,
    ConfigWritten,
    ConvoyChanged,
    ConvoyMove,
    Event,
    ProtocolError,
    decode,
    request_frame,
)
from tundra_tui.daemon.usage import usage_dir
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, BeadStatus, Lane
from tundra_tui.domain.errors import IllegalTransition, NotFound, TundraError
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town, find_town

OP = "operator"


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path)
    await opened.agents.sync_roster(
        [
            RosterEntry("mayor", Role.MAYOR, Runtime.DEMO),
            RosterEntry("polecat-1", Role.POLECAT, Runtime.DEMO),
        ],
        actor=OP,
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def published() -> list[Event]:
    return []


@pytest.fixture
def board(town_dir: Path, store: Store, published: list[Event]) -> BoardOps:
    return BoardOps(Town(town_dir), store, published.append)


def test_every_board_request_has_a_handler_and_a_wire_name(board: BoardOps) -> None:
    handlers = board.handlers()
    for request in (BeadCreate, BeadUpdate, BeadApply, BeadMove, ConvoyMove, ConfigSet):
        assert request in handlers
        assert REQUESTS[request.__struct_config__.tag] is request  # type: ignore[misc]
    assert ConfigUnset in handlers


async def test_a_request_off_the_wire_is_handled(board: BoardOps, store: Store) -> None:
    bead = await store.beads.add("Sling me", actor=OP)
    await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="mayor")
    frame = decode(request_frame(BeadMove(id=bead.id, step=1), 7))
    assert frame.req is not None
    reply = await board.handlers()[type(frame.req)](frame.req)
    assert reply == BeadChanged(id=bead.id, ref=bead.ref, status="slung", assignee="mayor")


def test_a_bad_value_is_refused_on_the_wire() -> None:
    line = b'{"v": 2, "id": 1, "req": {"op": "bead_create", "title": "x", "lane": "urgent"}}'
    with pytest.raises(ProtocolError, match="lane"):
        decode(line)


# ---- beads ---------------------------------------------------------------------------------------


async def test_create_writes_the_bead_and_announces_it_once(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    reply = await board.bead_create(
        BeadCreate(title="Write the guide", lane=Lane.CRITICAL, priority=0, labels=["docs"])
    )
    bead = await store.beads.get(reply.id)
    assert (bead.title, bead.lane, bead.priority, bead.labels) == (
        "Write the guide",
        Lane.CRITICAL,
        0,
        ("docs",),
    )
    assert reply.status == "backlog" and not reply.warning
    assert published == [ChangedEvent(what="beads", ids=[reply.id])]
    events = await store.events.find(bead_id=reply.id)
    assert [e.actor for e in events] == [OP]


async def test_create_with_an_agent_hooks_it(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    reply = await board.bead_create(BeadCreate(title="Fix it", assignee="mayor", actor="alice"))
    assert (reply.status, reply.assignee) == ("hooked", "mayor")
    assert len(published) == 1
    kinds = [(e.kind, e.actor) for e in await store.events.find(bead_id=reply.id)]
    assert sorted(kinds) == [("bead.created", "alice"), ("bead.hook", "alice")]


async def test_create_whose_hook_is_refused_keeps_the_bead_and_says_why(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    reply = await board.bead_create(BeadCreate(title="Orphan", assignee="nobody"))
    assert reply.status == "backlog"
    assert reply.warning.startswith(f"created {reply.ref} in backlog but did not hook it: ")
    assert "nobody" in reply.warning
    assert (await store.beads.get(reply.id)).status is BeadStatus.BACKLOG
    assert published == [ChangedEvent(what="beads", ids=[reply.id])]


async def test_a_refused_create_writes_and_announces_nothing(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    with pytest.raises(TundraError, match="title"):
        await board.bead_create(BeadCreate(title="   "))
    with pytest.raises(TundraError, match="priority"):
        await board.bead_create(BeadCreate(title="ok", priority=9))
    with pytest.raises(NotFound):
        await board.bead_create(BeadCreate(title="ok", blocked_by=[999]))
    assert await store.beads.find() == []
    assert published == []


async def test_update_edits_fields_and_moves_to_the_agent_in_one_announcement(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    bead = await store.beads.add("Old title", actor=OP)
    reply = await board.bead_update(
        BeadUpdate(id=bead.id, title="New title", lane=Lane.EXPERIMENTAL, assignee="polecat-1")
    )
    after = await store.beads.get(bead.id)
    assert (after.title, after.lane, after.priority) == ("New title", Lane.EXPERIMENTAL, 2)
    assert (reply.status, reply.assignee) == ("hooked", "polecat-1")
    assert published == [ChangedEvent(what="beads", ids=[bead.id])]

    published.clear()
    reply = await board.bead_update(BeadUpdate(id=bead.id, assignee="mayor"))
    assert (reply.status, reply.assignee) == ("hooked", "mayor")  # unhooked, then hooked
    reply = await board.bead_update(BeadUpdate(id=bead.id, assignee=""))
    assert (reply.status, reply.assignee) == ("backlog", "")
    assert len(published) == 2


async def test_update_that_changes_nothing_announces_nothing(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    bead = await store.beads.add("Same", actor=OP)
    await board.bead_update(BeadUpdate(id=bead.id, title="Same"))
    assert published == []


async def test_update_refused_before_writing_writes_nothing(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    bead = await store.beads.sling((await store.beads.add("Slung", actor=OP)).id, "mayor", actor=OP)
    with pytest.raises(IllegalTransition, match="cannot change"):
        await board.bead_update(BeadUpdate(id=bead.id, title="Renamed", assignee="polecat-1"))
    assert (await store.beads.get(bead.id)).title == "Slung"
    assert published == []


async def test_update_refused_half_way_still_announces_what_it_wrote(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    bead = await store.beads.add("Before", actor=OP)
    with pytest.raises(NotFound, match="nobody"):
        await board.bead_update(BeadUpdate(id=bead.id, title="After", assignee="nobody"))
    assert (await store.beads.get(bead.id)).title == "After"
    assert published == [ChangedEvent(what="beads", ids=[bead.id])]


async def test_apply_moves_along_a_legal_edge_or_says_why_not(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    bead = await store.beads.add("Review me", actor=OP)
    await store.beads.sling(bead.id, "mayor", actor=OP)
    with pytest.raises(IllegalTransition):
        await board.bead_apply(BeadApply(id=bead.id, action=Action.REOPEN))
    assert published == []
    await board.bead_apply(BeadApply(id=bead.id, action=Action.SUBMIT))
    reply = await board.bead_apply(BeadApply(id=bead.id, action=Action.DONE, actor="bob"))
    assert reply.status == "done"
    assert published == [ChangedEvent(what="beads", ids=[bead.id])] * 2
    last = (await store.events.find(bead_id=bead.id))[-1]
    assert (last.kind, last.actor) == ("bead.done", "bob")
    with pytest.raises(NotFound):
        await board.bead_apply(BeadApply(id=999, action=Action.DONE))


async def test_move_takes_the_neighbouring_column_from_the_status_now(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    bead = await store.beads.add("Card", actor=OP)
    with pytest.raises(IllegalTransition, match="needs an agent to be hooked"):
        await board.bead_move(BeadMove(id=bead.id, step=1))
    with pytest.raises(IllegalTransition, match="first column"):
        await board.bead_move(BeadMove(id=bead.id, step=-1))
    assert published == []
    await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="mayor")
    assert (await board.bead_move(BeadMove(id=bead.id, step=1))).status == "slung"
    assert (await board.bead_move(BeadMove(id=bead.id, step=1))).status == "review"
    await store.beads.apply(bead.id, Action.FAIL, actor=OP)
    assert (await board.bead_move(BeadMove(id=bead.id, step=-1))).status == "backlog"
    assert len(published) == 3


# ---- convoys -------------------------------------------------------------------------------------


async def test_convoy_start_and_pause(
    board: BoardOps, store: Store, published: list[Event]
) -> None:
    convoy = await store.convoys.create("launch", actor=OP)
    with pytest.raises(IllegalTransition, match="no beads"):
        await board.convoy_move(ConvoyMove(convoy="launch", verb="start"))
    bead = await store.beads.add("Member", actor=OP)
    await store.convoys.add("launch", [bead.id], actor=OP)
    assert published == []
    started = await board.convoy_move(ConvoyMove(convoy="launch", verb="start"))
    assert started == ConvoyChanged(id=convoy.id, name="launch", status="active")
    paused = await board.convoy_move(ConvoyMove(convoy=str(convoy.id), verb="pause", actor="eve"))
    assert paused.status == "paused"
    assert published == [ChangedEvent(what="convoys", ids=[convoy.id])] * 2
    with pytest.raises(NotFound):
        await board.convoy_move(ConvoyMove(convoy="nope", verb="pause"))


# ---- configuration -------------------------------------------------------------------------------


async def test_config_set_and_unset_write_the_layer_file(
    board: BoardOps, town_dir: Path, published: list[Event]
) -> None:
    town = Town(town_dir)
    town.config_path.write_text("# keep me\n" + town.config_path.read_text())
    reply = await board.config_set(ConfigSet(key="general.max_agents", value="7", layer="project"))
    path = str(town.config_path)
    assert reply == ConfigWritten(key="general.max_agents", layer="project", path=path)
    assert load_config(town).get("general.max_agents") == 7
    assert "# keep me" in town.config_path.read_text()
    await board.config_set(ConfigSet(key="ui.theme", value="nord", layer="local"))
    assert load_config(town).get("ui.theme") == "nord"
    unset = await board.config_unset(ConfigUnset(key="ui.theme", layer="local"))
    assert unset.path == str(town.local_config_path)
    assert load_config(town).get("ui.theme") == "textual-dark"
    assert published == [ChangedEvent(what="config")] * 3


async def test_a_refused_config_value_writes_nothing(
    board: BoardOps, town_dir: Path, published: list[Event]
) -> None:
    town = Town(town_dir)
    before = town.config_path.read_text()
    with pytest.raises(TundraError, match="max_agents"):
        await board.config_set(ConfigSet(key="general.max_agents", value="0", layer="project"))
    with pytest.raises(TundraError, match="layer"):
        await board.config_set(ConfigSet(key="ui.theme", value="nord", layer="default"))
    with pytest.raises(TundraError):
        await board.config_unset(ConfigUnset(key="ui.theme", layer="project"))
    assert town.config_path.read_text() == before
    assert published == []


# ---- through a real daemon -----------------------------------------------------------------------


async def test_a_real_daemon_tells_every_client_of_a_change_and_records_usage() -> None:
    """One client writes through the daemon, another hears of it; a usage log is recorded
    with no control room open, and announced."""
    with daemon_town(demo_agent=False) as root:
        town = find_town(root)
        await start_daemon(town)
        writer = await DaemonClient.connect(town)
        watcher = await DaemonClient.connect(town)
        heard: list[ChangedEvent] = []

        async def listen() -> None:
            async for event in watcher.subscribe():
                if isinstance(event, ChangedEvent):
                    heard.append(event)

        listening = asyncio.ensure_future(listen())
        try:
            async with asyncio.timeout(30):
                while not watcher.subscribed:
                    await asyncio.sleep(0.02)
                reply = await writer.call(BeadCreate(title="Through the daemon", actor="alice"))
                assert isinstance(reply, BeadChanged) and reply.status == "backlog"
                while ChangedEvent(what="beads", ids=[reply.id]) not in heard:
                    await asyncio.sleep(0.02)
                with pytest.raises(TundraError, match="first column"):
                    await writer.call(BeadMove(id=reply.id, step=-1))

                line = (
                    '{"type":"assistant","timestamp":"2026-11-20T10:00:00.000Z","message":'
                    '{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":5,'
                    '"output_tokens":1}}}\n'
                )
                (usage_dir(town) / "mayor.jsonl").write_text(line)
                while ChangedEvent(what="usage") not in heard:
                    await asyncio.sleep(0.02)
            async with await open_store(town.db_path) as store:
                assert (await store.beads.get(reply.id)).title == "Through the daemon"
                assert [r.key for r in await store.metrics.rollup("agent")] == ["mayor"]
                # One taken at the start (its own task: it may finish after the usage).
                await until(store.metrics.snapshots, timeout=20, what="the first KPI snapshot")
            assert heard.count(ChangedEvent(what="beads", ids=[reply.id])) == 1
        finally:
            listening.cancel()
            await writer.close()
            await watcher.close()
