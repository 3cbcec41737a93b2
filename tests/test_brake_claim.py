"""The brake is judged afresh right before a claim: spend an agent logged with its submit,
not yet read by the usage watcher's own pace, still holds the next bead.

A real daemon (in this process, so its usage watcher can be made to lag: it reads once at
start, then not for an hour), a git town, at most one demo polecat at speed 0 (started for
the first bead: nothing is spent before it) and three beads. Any spend crosses the daily
budget, and all of it is logged while the first bead is worked on; the claim after its
submit must see it (old code gave the idle polecat bead 2 at once, one bead late per
agent)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from at_cli import git_town, until

from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.peers import Peer
from tundra_tui.daemon.protocol import Up
from tundra_tui.daemon.server import Daemon
from tundra_tui.daemon.transport import Caller
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.clock import iso
from tundra_tui.domain.dispatch import DispatchState
from tundra_tui.store import open_store
from tundra_tui.town import Town

DEADLINE = 60.0


async def test_no_bead_is_claimed_after_the_submit_whose_spend_crossed_the_budget() -> None:
    with git_town(
        orchestra={"max_polecats": 1},
        costs={"daily_budget_usd": 0.000001},
    ) as root:
        town = Town(root)
        store = await open_store(town.db_path)
        log = DaemonLog(town.state_dir / "logs" / "test-daemon.log")
        try:
            beads = [await store.beads.add(f"plain {n}", actor="op") for n in range(3)]
            daemon = Daemon(town, store, log=log)
            daemon.usage.read_interval = 3600.0  # the watcher reads at start, then lags
            serving = asyncio.create_task(daemon.serve())
            deadline = time.monotonic() + DEADLINE
            try:
                await until(listening(town), deadline - time.monotonic(), what="the socket")
                # As `at up` asks it (a child of this process is "inside" the daemon).
                await daemon._serve(Up(), Caller(Peer(None, None), inside=False))

                async def submitted() -> bool:
                    found = await store.dispatches.last_for_bead(beads[0].id)
                    return found is not None and found.state is DispatchState.CLOSED

                await until(submitted, deadline - time.monotonic(), what="bead 1 submitted")

                # The agent turns idle after its submit; a pass runs after that.
                async def idle() -> bool:
                    return daemon.host.session("polecat-1").state is AgentState.IDLE

                await until(
                    idle, deadline - time.monotonic(), what="the polecat idle after its submit"
                )
                # Two passes from here (passes run one at a time: the second starting means
                # the first, which saw the agent idle, is over).
                for _ in range(2):
                    passes = daemon.dispatcher.passes
                    daemon.dispatcher.wake("test: after the idle")

                    async def passed(passes: int = passes) -> bool:
                        return daemon.dispatcher.passes > passes

                    await until(
                        passed, deadline - time.monotonic(), what="a dispatch pass after the idle"
                    )
                rows = await store.db.fetchall("SELECT bead_id FROM dispatches ORDER BY id")
                claimed = [int(r[0]) for r in rows]
                assert claimed == [beads[0].id], f"claimed past the budget: {claimed}"
                assert daemon.brake.state().town_stop(iso_now()) is not None
            finally:
                daemon.stopped.set()
                async with asyncio.timeout(30):
                    await serving
                gc.unfreeze()  # serve() froze what start-up built: this process goes on
        finally:
            await store.close()
            log.close()
            import shutil

            shutil.copytree(town.state_dir, "/tmp/p-debug-state", dirs_exist_ok=True)


def iso_now() -> str:
    return iso(datetime.now(UTC))


def listening(town: Town) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return town.socket_path.exists()

    return check
