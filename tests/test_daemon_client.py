"""The daemon client's framing against a tiny scripted server on a real Unix socket.

The server here speaks protocol frames only (it is not our daemon): it records what the
client wrote and answers as each test scripts, including out of order, with errors, with
another protocol version, with an oversized line, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable
from tundra_tui.daemon.protocol import (
    MAX_LINE,
    VERSION,
    AgentList,
    AgentRow,
    Agents,
    Done,
    Frame,
    LinkEvent,
    Ping,
    Pong,
    ProtocolError,
    Resize,
    SendKeys,
    Sent,
    Show,
    StateEvent,
    Stop,
    Stopped,
    Subscribe,
    Subscribed,
    decode,
    encode_event,
    error_frame,
    reply_frame,
)
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town
from tundra_tui.ui.link import DaemonLink


class ScriptedDaemon:
    """One accepted connection: the frames the client sent, and a writer to answer with."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Frame] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._connected.set()
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                await self.received.put(decode(line))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def next(self) -> Frame:
        async with asyncio.timeout(10):
            return await self.received.get()

    async def write(self, data: bytes) -> None:
        async with asyncio.timeout(10):
            await self._connected.wait()
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def hang_up(self) -> None:
        assert self.writer is not None
        self.writer.close()


class ScriptedServer:
    """A Unix socket whose every accepted connection is handed to the test to script."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[ScriptedDaemon] = asyncio.Queue()
        self.accepted: list[ScriptedDaemon] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = ScriptedDaemon()
        self.accepted.append(connection)
        await self.connections.put(connection)
        await connection.handle(reader, writer)

    async def next(self) -> ScriptedDaemon:
        async with asyncio.timeout(10):
            return await self.connections.get()


@contextlib.asynccontextmanager
async def scripted_town() -> AsyncIterator[tuple[ScriptedServer, Town]]:
    """A town directory (short path: sun_path is small) with a scripted server on its socket."""
    town = Town(Path(tempfile.mkdtemp(prefix="at-client-", dir="/tmp")))
    town.state_dir.mkdir()
    scripted = ScriptedServer()
    server = await asyncio.start_unix_server(scripted.handle, path=str(town.socket_path))
    try:
        yield scripted, town
    finally:
        server.close()
        for connection in scripted.accepted:
            await connection.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
        shutil.rmtree(town.root, ignore_errors=True)


@pytest.fixture
async def daemon() -> AsyncIterator[tuple[ScriptedDaemon, DaemonClient]]:
    """A scripted server and a client connected to it."""
    async with scripted_town() as (server, town):
        client = await DaemonClient.connect(town)
        try:
            yield await server.next(), client
        finally:
            await client.close()


PONG = Pong(pid=42, version="test")


async def test_replies_find_their_callers_in_any_order(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    slow = asyncio.ensure_future(client.call(Stop(name="a")))
    fast = asyncio.ensure_future(client.call(Ping()))
    first, second = await server.next(), await server.next()
    assert first.v == VERSION and first.req == Stop(name="a") and first.id is not None
    assert second.req == Ping() and second.id is not None and second.id != first.id
    await server.write(reply_frame(second.id, PONG))
    assert await fast == PONG
    assert not slow.done(), "the stop's answer has not come yet"
    await server.write(reply_frame(first.id, Stopped(exit="exit 0")))
    assert await slow == Stopped(exit="exit 0")


async def test_an_error_frame_raises_its_line_and_the_connection_goes_on(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    refused = asyncio.ensure_future(client.call(Stop(name="ghost")))
    frame = await server.next()
    await server.write(error_frame(frame.id, "no agent 'ghost' in tundra.toml"))
    with pytest.raises(TundraError, match="no agent 'ghost'"):
        await refused
    answered = asyncio.ensure_future(client.call(Ping()))
    await server.write(reply_frame((await server.next()).id, PONG))
    assert (await answered).pid == 42 and not client.closed


async def test_a_reply_of_the_wrong_type_is_a_protocol_error(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    call = asyncio.ensure_future(client.call(Ping()))
    await server.write(reply_frame((await server.next()).id, Done()))
    with pytest.raises(ProtocolError, match="answered Ping with Done"):
        await call


async def test_a_hang_up_fails_every_waiter_and_every_later_call(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    calls = [asyncio.ensure_future(client.call(Stop(name=n))) for n in ("a", "b")]
    await server.next()
    await server.next()
    await server.hang_up()
    for call in calls:
        with pytest.raises(DaemonUnavailable, match="closed the connection"):
            await call
    assert client.closed
    with pytest.raises(DaemonUnavailable):
        await client.call(Ping())
    with pytest.raises(DaemonUnavailable):
        client.send(SendKeys(name="a", data=b"x"))


async def test_a_line_said_before_hanging_up_is_the_reason_given(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    call = asyncio.ensure_future(client.call(Ping()))
    await server.next()
    await server.write(error_frame(None, "too many clients"))
    await server.hang_up()
    with pytest.raises(DaemonUnavailable, match="too many clients"):
        await call


async def test_another_protocol_version_is_refused_with_what_to_do(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    call = asyncio.ensure_future(client.call(Ping()))
    request = await server.next()
    newer = {"v": VERSION + 1, "id": request.id, "ok": {"kind": "pong", "pid": 1}}
    await server.write(json.dumps(newer).encode() + b"\n")
    with pytest.raises(ProtocolError, match=f"version {VERSION + 1} is not supported"):
        await call
    assert client.closed


async def test_a_line_over_the_limit_ends_the_connection_in_one_line(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    call = asyncio.ensure_future(client.call(Ping()))
    await server.next()
    await server.write(b'{"v": 2, "error": "' + b"x" * (MAX_LINE + 10) + b'"}\n')
    with pytest.raises(ProtocolError, match="exceeds"):
        await call
    assert client.closed


async def test_a_cancelled_callers_late_reply_goes_to_nobody(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    """A replaced UI worker cancels its request; its answer must not reach the next caller."""
    server, client = daemon
    first = asyncio.ensure_future(client.call(Agents()))
    stale = await server.next()
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    second = asyncio.ensure_future(client.call(Agents()))
    fresh = await server.next()
    row = AgentRow(name="fresh", state="idle", glyph="○", runtime="demo")
    await server.write(reply_frame(stale.id, AgentList(agents=[])))
    await server.write(reply_frame(fresh.id, AgentList(agents=[row])))
    assert (await second).agents == [row]


async def test_events_flow_while_calls_and_keys_go_on_the_same_connection(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    server, client = daemon
    events = client.subscribe(["a"], show=["a"])
    first = asyncio.ensure_future(events.__anext__())
    subscribe = await server.next()
    assert subscribe.req == Subscribe(agents=["a"], show=["a"])
    state = StateEvent(agent="a", state="working", glyph="●")
    await server.write(encode_event(state))  # before the answer: kept for the subscriber
    await server.write(reply_frame(subscribe.id, Subscribed()))
    assert await first == state and client.subscribed and client.shown == ["a"]

    client.send(SendKeys(name="a", data=b"l"))
    client.send(SendKeys(name="a", data=b"s\r"))
    resize = asyncio.ensure_future(client.call(Resize(name="a", columns=100, rows=30)))
    keys = [await server.next(), await server.next()]
    assert [k.req for k in keys] == [SendKeys(name="a", data=b"l"), SendKeys(name="a", data=b"s\r")]
    assert all(k.id is None for k in keys), "keys without an id get no reply"
    resized = await server.next()
    later = StateEvent(agent="a", state="idle", glyph="○")
    await server.write(encode_event(later))
    await server.write(reply_frame(resized.id, Done()))
    assert await resize == Done()
    assert await events.__anext__() == later

    show = asyncio.ensure_future(client.show(["a", "b"]))
    asked = await server.next()
    assert asked.req == Show(agents=["a", "b"])
    await server.write(reply_frame(asked.id, Done()))
    await show
    assert client.shown == ["a", "b"]

    await server.hang_up()
    with pytest.raises(DaemonUnavailable):
        await events.__anext__()


async def test_events_nobody_reads_never_hold_up_replies(
    daemon: tuple[ScriptedDaemon, DaemonClient],
) -> None:
    """A subscriber that stopped reading is forgotten: replies still get through."""
    server, client = daemon
    events = client.subscribe()
    first = asyncio.ensure_future(events.__anext__())
    await server.write(reply_frame((await server.next()).id, Subscribed()))
    await server.write(encode_event(StateEvent(agent="a", state="idle", glyph="○")))
    await first
    await events.aclose()
    for n in range(5000):
        await server.write(encode_event(StateEvent(agent="a", state=str(n), glyph="○")))
    call = asyncio.ensure_future(client.call(SendKeys(name="a", data=b"x")))
    await server.write(reply_frame((await server.next()).id, Sent(sent=1)))
    async with asyncio.timeout(10):
        assert await call == Sent(sent=1)


async def test_the_link_says_what_it_shows_and_says_it_again_after_a_reconnect() -> None:
    async with scripted_town() as (server, town):
        link = DaemonLink(town, start=False)
        await link.show(["a"])  # not connected yet: remembered for the subscription
        stream = link.events()
        try:
            first = asyncio.ensure_future(stream.__anext__())
            one = await server.next()
            subscribe = await one.next()
            assert subscribe.req == Subscribe(show=["a"])
            await one.write(reply_frame(subscribe.id, Subscribed()))
            assert await first == LinkEvent(up=True)

            shown = asyncio.ensure_future(link.show(["a", "b"]))
            show = await one.next()
            assert show.req == Show(agents=["a", "b"])
            await one.write(reply_frame(show.id, Done()))
            await shown
            ping = asyncio.ensure_future(link.call(Ping()))
            await one.write(reply_frame((await one.next()).id, PONG))
            assert await ping == PONG, "requests share the subscribed connection"
            link.send(SendKeys(name="a", data=b"k"))
            assert (await one.next()).req == SendKeys(name="a", data=b"k")

            await one.hang_up()
            down = await stream.__anext__()
            assert isinstance(down, LinkEvent) and not down.up and not down.stopped
            again = asyncio.ensure_future(stream.__anext__())
            two = await server.next()
            resubscribe = await two.next()
            assert resubscribe.req == Subscribe(show=["a", "b"])
            await two.write(reply_frame(resubscribe.id, Subscribed()))
            assert await again == LinkEvent(up=True)
        finally:
            await stream.aclose()
            await link.close()
