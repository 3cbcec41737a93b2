"""The town takes work by itself, end to end (issue 11's test).

A git town with six beads: a chain a <- b <- c, a free bead d, and e, f in a convoy k that
starts later. `max_polecats = 2`, demo polecats at speed 0 asking approval for half their
submits. The test plays the operator only through the CLI: it approves whatever waits, marks
a and b done once each reaches review (merging is the next issue), and starts k once d is in
review. After `at up` the daemon alone does the rest. A subscribed client records every live
state change, so the polecat count is checked at every moment, not sampled.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from at_cli import at, git, git_town

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import ExitedEvent, Snapshot, StateEvent
from tundra_tui.town import Town

DEADLINE = 240.0
GONE = frozenset({"stopped", "exited", "failed", "lost"})
DEMO = ["--speed", "0", "--approval-rate", "0.5", "--seed", "1"]


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


def rows(town: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def test_the_town_takes_six_beads_to_review_by_itself() -> None:
    orchestra = {"max_polecats": 2, "polecat_retire_seconds": 1}
    with git_town(orchestra=orchestra, runtimes={"demo": {"args": DEMO}}) as town:
        a = add(town, "a: the first link")
        b = add(town, "b: waits for a", a)
        c = add(town, "c: waits for b", b)
        d = add(town, "d: free")
        e = add(town, "e: in convoy k")
        f = add(town, "f: in convoy k")
        at(town, "convoy", "create", "k")
        at(town, "convoy", "add", "k", str(e), str(f))
        with recording(town) as recorder:
            at(town, "up", timeout=60)
            closed: set[int] = set()
            started = False
            deadline = time.monotonic() + DEADLINE
            while True:
                for waiting in json.loads(at(town, "approvals", "--json").stdout):
                    at(town, "approve", str(waiting["id"]), check=False)  # may be gone by now
                now = beads(town)
                for link in (a, b):
                    if now[link]["status"] == "review" and link not in closed:
                        at(town, "done", str(link))
                        closed.add(link)
                if now[d]["status"] == "review" and not started:
                    at(town, "convoy", "start", "k")
                    started = True
                want = {a: "done", b: "done", c: "review", d: "review", e: "review", f: "review"}
                if all(now[n]["status"] == s for n, s in want.items()):
                    break
                assert recorder.error is None, recorder.error
                assert time.monotonic() < deadline, {n: now[n]["status"] for n in want}
                time.sleep(0.2)  # the operator's pace; every wait above has a deadline

        # Every bead reached review with exactly one commit on its own branch.
        submits = rows(town, "SELECT bead_id FROM events WHERE kind = 'bead.submit'")
        assert sorted(n for (n,) in submits) == [a, b, c, d, e, f]
        for number in (a, b, c, d, e, f):
            branch = now[number]["branch"]
            assert branch.startswith("polecat/") and branch.endswith(f"/{number}"), branch
            assert git(town, "log", "--format=%s", f"main..{branch}").splitlines() == [
                f"bead #{number}: {now[number]['title']}"
            ]
            assert git(town, "show", "--name-only", "--format=", branch).split() == [
                f"beads/{number}.md"
            ]

        # No bead was dispatched before its blockers were done or its convoy started.
        hooks = rows(town, "SELECT bead_id, id FROM events WHERE kind = 'bead.hook'")
        dones = dict(rows(town, "SELECT bead_id, id FROM events WHERE kind = 'bead.done'"))
        [(start,)] = rows(town, "SELECT id FROM events WHERE kind LIKE 'convoy.start%'")
        for bead, hooked in hooks:
            if bead == b:
                assert hooked > dones[a]
            if bead == c:
                assert hooked > dones[b]
            if bead in (e, f):
                assert hooked > start

        # Never more than two polecats at once; no bead dispatched twice.
        assert recorder.seen and recorder.most <= 2, (recorder.most, recorder.seen)
        kept = rows(
            town,
            "SELECT bead_id, count(*) FROM dispatches WHERE outcome != 'returned' "
            "GROUP BY bead_id ORDER BY bead_id",
        )
        assert kept == [(n, 1) for n in (a, b, c, d, e, f)]
        assert rows(town, "SELECT count(*) FROM dispatches WHERE state != 'closed'") == [(0,)]


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
