"""The town takes work by itself: polecats come and go, never more than allowed.

Issue 11's six-bead test (blockers, a convoy started later, at most two polecats) now runs
inside the refinery's end-to-end test (test_refinery_e2e.py), which takes the same town on
to merged: one daemon run for both (CI time). `recording` is shared with it: a subscribed
client records every live state change, so the polecat count is checked at every moment,
not sampled.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from at_cli import at, git_town

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import ExitedEvent, Snapshot, StateEvent
from tundra_tui.town import Town

DEADLINE = 240.0
GONE = frozenset({"stopped", "exited", "failed", "lost"})


@dataclass
class Recorder:
    """Every polecat's live state from the daemon's event stream, and the most ever live."""

    live: set[str] = field(default_factory=set)
    most: int = 0
    seen: set[str] = field(default_factory=set)
    events: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def apply(self, event: object) -> None:
        self.events += 1
        if isinstance(event, Snapshot):
            self.live &= set(event.agents)
        elif isinstance(event, StateEvent) and event.agent.startswith("polecat-"):
            self.seen.add(event.agent)
            if event.state in GONE:
                self.live.discard(event.agent)
            else:
                self.live.add(event.agent)
        elif isinstance(event, ExitedEvent):
            self.live.discard(event.agent)
        self.most = max(self.most, len(self.live))


@contextmanager
def recording(town: Path) -> Iterator[Recorder]:
    """A thread subscribed to every agent of the town's daemon (started here) until the end."""
    at(town, "daemon", "start")
    recorder = Recorder()
    subscribed = threading.Event()

    async def follow() -> None:
        client = await DaemonClient.connect(Town(town))
        try:
            async for event in client.subscribe(None):
                subscribed.set()
                recorder.apply(event)
        finally:
            await client.close()

    async def until_stopped() -> None:
        task = asyncio.create_task(follow())
        stopped = asyncio.get_running_loop().run_in_executor(None, recorder.stop.wait)
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    def run() -> None:
        try:
            asyncio.run(until_stopped())
        except BaseException as error:  # reported by the test, not lost in a thread
            recorder.error = error
        finally:
            subscribed.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert subscribed.wait(30), "no snapshot from the daemon"
    try:
        yield recorder
    finally:
        recorder.stop.set()
        thread.join(10)


def add(town: Path, title: str, *blockers: int) -> int:
    argv = ["bead", "add", title, "--json"]
    for blocker in blockers:
        argv += ["--blocked-by", str(blocker)]
    made: dict[str, Any] = json.loads(at(town, *argv).stdout)
    return int(made["id"])


def beads(town: Path) -> dict[int, dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(at(town, "bead", "list", "--json").stdout)
    return {b["id"]: b for b in listed}


def test_never_more_polecats_than_allowed_while_they_come_and_go() -> None:
    """Eight beads released at once to at most two polecats that retire as soon as they idle:
    retiring, reusing and starting polecats never puts a third one to work."""
    orchestra = {"max_polecats": 2, "polecat_retire_seconds": 0}
    demo = {"args": ["--speed", "0", "--approval-rate", "0"]}
    with git_town(orchestra=orchestra, runtimes={"demo": demo}) as town:
        ids = [add(town, f"bead {n}") for n in range(1, 9)]
        at(town, "convoy", "create", "all")
        at(town, "convoy", "add", "all", *map(str, ids))
        with recording(town) as recorder:
            at(town, "up", timeout=60)
            at(town, "convoy", "start", "all")
            deadline = time.monotonic() + DEADLINE
            while [b["status"] for b in beads(town).values()].count("review") < len(ids):
                assert recorder.error is None, recorder.error
                assert time.monotonic() < deadline, beads(town)
                time.sleep(0.2)
        assert recorder.seen and recorder.most <= 2, (recorder.most, recorder.seen)
