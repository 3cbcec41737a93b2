"""The daemon hears what other processes write: StoreTail and the crash points."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.at_cli import AT, daemon_town, until
from tundra_tui.daemon import faults
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.tail import StoreTail
from tundra_tui.domain.events import Event
from tundra_tui.store import open_store
from tundra_tui.town import Town


async def test_a_write_from_another_process_reaches_a_subscriber_without_the_patrol(
    tmp_path: Path,
) -> None:
    with daemon_town(demo_agent=False) as root:
        town = Town(root)
        store = await open_store(town.db_path)
        log = DaemonLog(tmp_path / "daemon.log")
        heard: list[Event] = []
        tail = StoreTail(town, store, log, safety_seconds=3600)
        tail.subscribe(lambda events: heard.extend(events))
        seen_twice: list[Sequence[Event]] = []
        tail.subscribe(lambda events: seen_twice.append(events))
        tail.subscribe(lambda events: 1 / 0)  # a failing listener deafens nobody
        stopped = asyncio.Event()
        task = asyncio.create_task(tail.run(stopped))
        try:
            await until(lambda: tail.last_id is not None)
            old = await store.beads.add("before the tail started", actor="t")
            await until(lambda: any(e.bead_id == old.id for e in heard), timeout=10)
            heard.clear()
            done = await asyncio.create_subprocess_exec(
                *AT, "--town", str(root), "bead", "add", "from the CLI"
            )
            assert await done.wait() == 0
            await until(
                lambda: any(
                    e.kind == "bead.created" and e.data["title"] == "from the CLI" for e in heard
                ),
                timeout=10,
            )
            assert len({e.id for e in heard}) == len(heard), "each event handed out once"
        finally:
            stopped.set()
            await asyncio.wait_for(task, 10)
            await store.close()
        assert "tail.listener_failed" in (tmp_path / "daemon.log").read_text()


async def test_poke_reads_at_once(tmp_path: Path) -> None:
    with daemon_town(demo_agent=False) as root:
        town = Town(root)
        store = await open_store(town.db_path)
        tail = StoreTail(town, store, DaemonLog(tmp_path / "d.log"), safety_seconds=3600)
        heard: list[Event] = []
        tail.subscribe(heard.extend)
        assert await tail.read() == 0  # primes: history is not replayed
        await store.mail.send("operator", "x", "hello", actor="operator")
        assert await tail.read() == 1 and heard[0].kind == "mail.sent"
        assert await tail.read() == 0
        await store.close()


def test_a_fault_point_kills_only_when_armed(tmp_path: Path) -> None:
    assert faults.ARMED == ""
    faults.hit("dispatch.slung")  # unarmed: nothing happens
    code = "from tundra_tui.daemon import faults; faults.hit('dispatch.claimed'); " + (
        "faults.hit('dispatch.slung'); print('survived')"
    )
    env = {**os.environ, "TUNDRA_FAULT": "dispatch.slung"}
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == -9 and "survived" not in ran.stdout
    dispatch = {"dispatch.claimed", "dispatch.slung", "dispatch.typed", "mail.typed"}
    steps = ("started", "integrated", "gate", "verified", "advanced", "merged", "rejected")
    assert dispatch | {f"refinery.{step}" for step in steps} == faults.POINTS
