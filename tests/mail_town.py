"""Shared by the witness and mail tests: a git town with stand-in agents, a subscribed
recorder of the daemon's live events, and reading or seeding the store from the test.

The stand-ins are `helpers/lazy_agent.py` (takes input, never reports) and
`helpers/stop_hook_agent.py` (hands its Stop hook's `block` text to itself); each logs
every line it was given to `<town>/<name>.log`, so a test counts exactly what was typed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from at_cli import at

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import Event
from tundra_tui.domain.dispatch import DispatchKind
from tundra_tui.store import open_store
from tundra_tui.town import Town

HELPERS = Path(__file__).parent / "helpers"


def stand_in(town: Path, name: str, helper: str, role: str = "polecat") -> dict[str, Any]:
    """An agents.<name> table running a helper script that logs to <town>/<name>.log."""
    script = HELPERS / f"{helper}.py"
    return {
        "role": role,
        "runtime": "demo",
        "command": f"{sys.executable} {script} {town / f'{name}.log'}",
    }


def add_agents(town: Path, **agents: dict[str, Any]) -> None:
    """Add agents.<name> tables to the town's tundra.toml (before its daemon starts)."""
    import tomlkit

    path = town / "tundra.toml"
    document = tomlkit.parse(path.read_text())
    table = document.setdefault("agents", tomlkit.table())
    for name, spec in agents.items():
        table[name] = spec
    path.write_text(tomlkit.dumps(document))


def typed(town: Path, name: str) -> list[Any]:
    """Every input the stand-in took so far, in order."""
    log = town / f"{name}.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def state(town: Path, name: str) -> str:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return str(next(r for r in rows if r["name"] == name)["state"])


def rows(town: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def events(town: Path, *kinds: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(id, kind, agent, data) of the stored events of these kinds, in id order."""
    marks = ",".join("?" * len(kinds))
    found = rows(
        town, f"SELECT id, kind, agent, data FROM events WHERE kind IN ({marks}) ORDER BY id", kinds
    )
    return [(i, k, a, json.loads(d or "{}")) for i, k, a, d in found]


def add_bead(town: Path, title: str) -> int:
    made: dict[str, Any] = json.loads(at(town, "bead", "add", title, "--json").stdout)
    return int(made["id"])


def seed_dispatch(town: Path, bead: int, agent: str, *, branch: str = "") -> int:
    """A dispatch of `bead` to `agent`, claimed, slung and delivered through the store (as a
    hand-over would leave it) while the daemon runs; its id."""

    async def seed() -> int:
        store = await open_store(town / ".tundra" / "town.db")
        try:
            dispatch = await store.dispatches.claim(
                bead, agent, kind=DispatchKind.SLING, actor="test", manual=True
            )
            assert dispatch is not None, "the seeded claim lost"
            await store.dispatches.slung(dispatch.id, branch=branch, worktree="", actor="test")
            await store.dispatches.delivered(
                dispatch.id, attempts=1, evidence="seeded by the test", actor="test"
            )
            return dispatch.id
        finally:
            await store.close()

    return asyncio.run(seed())


@dataclass
class Recorder:
    """Every live event a subscribed client received, in order."""

    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def of(self, kind: type[Any]) -> list[Any]:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]


@contextmanager
def recording(town: Path) -> Iterator[Recorder]:
    """A thread subscribed to every agent of the town's daemon (started here)."""
    at(town, "daemon", "start")
    recorder = Recorder()
    subscribed = threading.Event()

    async def follow() -> None:
        client = await DaemonClient.connect(Town(town))
        try:
            async for event in client.subscribe(None):
                subscribed.set()
                with recorder.lock:
                    recorder.events.append(event)
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
