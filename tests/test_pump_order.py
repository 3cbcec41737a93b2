"""The pump's order and its hurry path, against plain stand-ins for sessions.

`Emulated` is the pump's whole view of a session, so a small class with a byte count
is enough to see whom the pump feeds, in which order, and when.
"""

from __future__ import annotations

import asyncio
import time

from tests.at_cli import until
from tundra_tui.session.pump import HIDDEN_INTERVAL, EmulationPump


class Stand:
    """A session with `pending` bytes waiting; records when it was fed."""

    def __init__(self, name: str, log: list[str], *, shown: bool, pending: int) -> None:
        self.name = name
        self.shown = shown
        self.glance = False
        self._log = log
        self._arrived = pending
        self._offset = 0
        self.capacity = 1 << 20
        # Far in the future: never due by a pause or an interval unless hurried.
        self.last_output = time.monotonic() + 1000.0
        self.emulated_at = time.monotonic() + 1000.0
        self.batches = 0

    @property
    def pending(self) -> int:
        return self._arrived - self._offset

    @property
    def arrived(self) -> int:
        return self._arrived

    @property
    def offset(self) -> int:
        return self._offset

    def emulate(self, limit: int | None = None, *, announce: bool = True) -> int:
        fed = min(self.pending, limit if limit is not None else self.pending)
        self._offset += fed
        self._log.append(self.name)
        return fed

    def batch_done(self) -> None:
        self.batches += 1


async def test_a_shown_agent_is_fed_before_hidden_ones_that_were_due_first() -> None:
    log: list[str] = []
    pump = EmulationPump()
    hidden = [Stand(f"hidden{n}", log, shown=False, pending=64 * 1024) for n in range(3)]
    shown = Stand("shown", log, shown=True, pending=10)
    try:
        for stand in hidden:
            stand.last_output = time.monotonic() - 1.0  # paused: due now, exempt from share
            pump.add(stand)
        pump.add(shown)
        await until(lambda: not shown.pending and all(not s.pending for s in hidden))
        assert log[0] == "shown", log[:8]
    finally:
        await pump.close()


async def test_a_hurried_hidden_agent_is_fed_though_not_due() -> None:
    log: list[str] = []
    pump = EmulationPump()
    stand = Stand("hidden", log, shown=False, pending=32 * 1024)
    try:
        pump.add(stand)
        # Not due for a long while (no pause, no interval); the pump waits.
        await asyncio.sleep(0)
        assert stand.pending and not log
        pump.hurry(stand)
        await until(lambda: stand.batches == 1, timeout=HIDDEN_INTERVAL)
        assert not stand.pending
    finally:
        await pump.close()


async def test_a_chain_of_loop_hops_runs_before_a_hidden_step() -> None:
    """A key's echo crosses the loop in several hops: none waits behind a hidden step."""
    log: list[str] = []
    pump = EmulationPump()
    hidden = Stand("hidden", log, shown=False, pending=64 * 1024)
    hidden.last_output = time.monotonic() - 1.0  # paused: due now
    chain_done = asyncio.Event()

    def hop(left: int) -> None:
        log.append(f"hop{left}")
        if left:
            asyncio.get_running_loop().call_soon(hop, left - 1)
        else:
            chain_done.set()

    try:
        pump.add(hidden)
        asyncio.get_running_loop().call_soon(hop, 6)
        await chain_done.wait()
        await until(lambda: not hidden.pending)
        first_step = log.index("hidden")
        assert log[:first_step] == [f"hop{n}" for n in range(6, -1, -1)], log[:10]
    finally:
        await pump.close()


async def test_hidden_steps_wait_for_a_busy_loop_only_so_long() -> None:
    """A loop kept busy for good (a flood's reads) still gets its hidden agents fed."""
    log: list[str] = []
    pump = EmulationPump()
    hidden = Stand("hidden", log, shown=False, pending=4096)
    hidden.last_output = time.monotonic() - 1.0
    busy = True

    def spin() -> None:
        if busy:
            asyncio.get_running_loop().call_soon(spin)

    try:
        asyncio.get_running_loop().call_soon(spin)
        pump.add(hidden)
        await until(lambda: not hidden.pending, timeout=2.0)
    finally:
        busy = False
        await pump.close()
