"""Nobody waits in line: concurrent requests, ordered input, screens only where shown.

A real daemon (started by the real `at`) with shell agents; a client on its socket.
Assertions are about order and counts, never about wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from at_cli import at, daemon_town, until

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import (
    Agents,
    Frame,
    History,
    Screen,
    ScreenEvent,
    SendKeys,
    Show,
    Snapshot,
    Spawn,
    StateEvent,
    Status,
    Stop,
    Subscribe,
    decode,
    request_frame,
)
from tundra_tui.town import find_town

FLOOD = """\
import sys
while True:
    for i in range(200):
        sys.stdout.write(f"\\x1b[32mline {i} ok\\x1b[0m " + "x" * 60 + "\\n")
    sys.stdout.flush()
"""
STUBBORN = "trap '' TERM HUP; echo STUBBORN; while true; do sleep 0.05; done"

CONFIG = f"""
[runtimes.custom]
command = "/bin/sh"
idle_pattern = 'READY>\\s*\\Z'

[agents.echo]
role = "crew"
runtime = "custom"
command = "/bin/cat"

[agents.flood]
role = "crew"
runtime = "custom"
command = {json.dumps(sys.executable)}
args = ["flood.py"]

[agents.stubborn]
role = "crew"
runtime = "custom"
command = "/bin/sh"
args = ["-c", {json.dumps(STUBBORN)}]

[daemon]
subscriber_queue = 16
"""


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        (root / "flood.py").write_text(FLOOD)
        with (root / "tundra.toml").open("a") as config:
            config.write(CONFIG)
        at(root, "daemon", "start")
        yield root


async def _start(town: Path, *names: str) -> None:
    """Start agents through the socket and wait until each has a process."""
    client = await _client(town)
    try:
        for name in names:
            await client.call(Spawn(name=name))

        async def running() -> bool:
            rows = (await client.call(Agents())).agents
            return all(any(r.name == n and r.pid for r in rows) for n in names)

        await until(running)
    finally:
        await client.close()


async def _client(town: Path) -> DaemonClient:
    return await DaemonClient.connect(find_town(town))


async def _screen_text(client: DaemonClient, name: str) -> str:
    reply = await client.call(Screen(name=name))
    return "\n".join(reply.lines)


async def test_keys_are_answered_while_a_slow_stop_runs(town: Path) -> None:
    await _start(town, "echo", "stubborn")
    client = await _client(town)
    try:
        stop = asyncio.ensure_future(client.call(Stop(name="stubborn", grace=2.0)))
        await asyncio.sleep(0)  # the stop is written first
        finished: list[str] = []
        stop.add_done_callback(lambda _f: finished.append("stop"))
        await client.call(SendKeys(name="echo", data=b"hello\r"))
        finished.append("keys")
        await client.call(Agents())
        finished.append("agents")
        assert finished[:2] == ["keys", "agents"], "a key waited behind a stop"
        await stop
        assert finished[-1] == "stop"
    finally:
        await client.close()


async def test_keys_keep_their_order_across_clients_and_concurrent_requests(town: Path) -> None:
    await _start(town, "echo", "stubborn")
    first, second = await _client(town), await _client(town)
    try:
        stop = asyncio.ensure_future(second.call(Stop(name="stubborn", grace=2.0)))
        words = [f"w{i:03d}" for i in range(150)]
        for index, word in enumerate(words):
            request = SendKeys(name="echo", data=f"{word} ".encode())
            if index % 10 == 9:
                await first.call(request)  # some with replies, most without
            else:
                first.send(request)
        first.send(SendKeys(name="echo", data=b"\r"))
        expected = "".join(words)

        async def typed_in_order() -> bool:
            # Rows wrap and lose trailing blanks: compare without whitespace.
            text = "".join((await _screen_text(first, "echo")).split())
            return expected in text

        await until(typed_in_order)
        await stop
    finally:
        await first.close()
        await second.close()


async def _frames(reader: asyncio.StreamReader) -> AsyncIterator[Frame]:
    while line := await reader.readline():
        yield decode(line)


async def test_screens_go_only_to_clients_that_show_the_agent(town: Path) -> None:
    await _start(town, "echo")
    client = await _client(town)
    try:
        events = client.subscribe(show=[])
        seen: list[object] = []

        async def collect() -> None:
            async for event in events:
                seen.append(event)

        reader = asyncio.ensure_future(collect())
        await until(lambda: any(isinstance(e, StateEvent) for e in seen))
        await client.call(SendKeys(name="echo", data=b"unseen\r"))
        await client.call(Agents())  # a round trip: anything queued before it has arrived
        assert not any(isinstance(e, ScreenEvent) for e in seen)
        await client.call(Show(agents=["echo"]))
        await until(lambda: any(isinstance(e, ScreenEvent) and e.full for e in seen))
        # The whole screen comes as drawn so far; what was typed while hidden follows as
        # soon as the agent, now shown, is emulated.
        await until(
            lambda: any(
                isinstance(e, ScreenEvent)
                and any("unseen" in "".join(run[0] for run in row) for row in e.rows.values())
                for e in seen
            )
        )
        await client.call(SendKeys(name="echo", data=b"seen\r"))
        await until(
            lambda: any(
                isinstance(e, ScreenEvent)
                and not e.full
                and any("seen" in "".join(run[0] for run in row) for row in e.rows.values())
                for e in seen
            )
        )
        rows = (await client.call(Agents())).agents
        assert next(r for r in rows if r.name == "echo").shown is True
        reader.cancel()
    finally:
        await client.close()


async def test_a_flood_reaches_a_client_at_a_bounded_frame_rate(town: Path) -> None:
    await _start(town, "flood")
    client = await _client(town)
    try:
        frames: list[float] = []

        async def collect() -> None:
            async for event in client.subscribe(show=["flood"]):
                if isinstance(event, ScreenEvent):
                    frames.append(asyncio.get_running_loop().time())

        reader = asyncio.ensure_future(collect())
        await until(lambda: len(frames) > 40)
        span = frames[-1] - frames[10]
        rate = (len(frames) - 11) / span
        reader.cancel()
        assert rate <= 36, f"{rate:.0f} screen messages a second for one agent"
    finally:
        await client.close()


async def test_a_slow_client_is_resynced_with_a_fresh_snapshot(town: Path) -> None:
    await _start(town, "flood")
    path = find_town(town).socket_path
    # A plain socket that nobody reads: asyncio's reader would keep draining it.
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(str(path))
    raw.sendall(request_frame(Subscribe(show=["flood"]), 1))
    # Read nothing until the daemon's queue for us (16 lines) has overflowed.
    observer = await _client(town)
    try:

        async def overflowed() -> bool:
            return (await observer.call(Status())).resyncs > 0

        await until(overflowed)
    finally:
        await observer.close()
    reader, writer = await asyncio.open_unix_connection(sock=raw, limit=64 * 1024 * 1024)
    try:
        resynced = False
        full_after = False
        async for frame in _frames(reader):
            event = frame.ev
            if isinstance(event, Snapshot) and event.resync:
                resynced = True
            elif resynced and isinstance(event, ScreenEvent) and event.full:
                full_after = True
                break
        assert resynced and full_after
    finally:
        writer.close()


async def test_history_pages_back_through_scrollback(town: Path) -> None:
    await _start(town, "echo")
    client = await _client(town)
    try:
        for index in range(120):
            client.send(SendKeys(name="echo", data=f"history line {index}\r".encode()))

        async def scrolled() -> bool:
            return (await client.call(History(name="echo", start=-5, count=5))).total >= 100

        await until(scrolled)
        newest = await client.call(History(name="echo", start=-5, count=5))
        assert len(newest.lines) == 5 and newest.start == newest.total - 5
        oldest = await client.call(History(name="echo", start=0, count=3))
        texts = ["".join(run[0] for run in line) for line in oldest.lines]
        assert texts[0].startswith("history line 0")
    finally:
        await client.close()
