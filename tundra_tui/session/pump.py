"""Emulation off the PTY read path: one pump per host feeds every agent's screen in turns.

Reading a PTY only appends to the agent's ring (`AgentSession._on_data`). The
pump then feeds each emulator from its ring offset, a step at a time, under a
time budget per turn; between turns it yields to the event loop, so a key or
a socket message waits at most one turn behind emulation however much the
agents print. Steps go round-robin, so two floods progress alike, and each
step is sized from that agent's recent emulation speed to last about
`STEP_TIME` (big for line output the emulator skims, small for full-screen
redraws that pyte draws cell by cell).

Which agents are emulated when:
- shown ones (some client displays the screen) as soon as bytes arrive; while
  more than `SHOWN_AT_ONCE` waits (a flood), at most every `SHOWN_INTERVAL`,
  since a frame's worth in one step skims better and clients get ~30 frames a
  second anyway;
- hidden ones lazily: once output has paused for `HIDDEN_PAUSE` (a prompt
  drawn before the agent waits is on screen within that, plus a step) and at
  least every `HIDDEN_INTERVAL` while they stream (detection keeps seeing a
  screen that moves). Activity detection does not wait for this: it counts
  bytes arriving.
Once an agent is due, everything it had printed by then is fed before it waits
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

TURN_BUDGET = 0.004
"""Seconds of emulation per turn before the event loop runs again."""
STEP_TIME = 0.003
"""What one step should take; its size in bytes follows the agent's emulation speed."""
MIN_STEP = 1024
MAX_STEP = 256 * 1024
FIRST_RATE = 1_000_000.0
"""Bytes per second assumed for an agent not yet measured."""
SHOWN_INTERVAL = 0.02
SHOWN_AT_ONCE = 16 * 1024
"""A shown agent with no more than this pending is fed at once (a key's echo, a redraw)."""
HIDDEN_PAUSE = 0.1
HIDDEN_INTERVAL = 1.0


class Emulated(Protocol):
    """What the pump needs of a session (`AgentSession` is one)."""

    @property
    def shown(self) -> bool: ...

    @property
    def pending(self) -> int: ...

    @property
    def arrived(self) -> int: ...

    @property
    def offset(self) -> int: ...

    last_output: float
    emulated_at: float

    def emulate(self, limit: int | None = None, *, announce: bool = True) -> int: ...


class EmulationPump:
    """Feeds the emulators of a host's agents in budgeted, fair turns (see the module)."""

    def __init__(
        self,
        *,
        budget: float = TURN_BUDGET,
        watch: Callable[[asyncio.Task[Any], str], object] | None = None,
    ) -> None:
        self.budget = budget
        self._watch = watch
        self._sessions: list[Emulated] = []
        self._targets: dict[Emulated, int] = {}
        """Agents being fed, with the ring offset to reach before they wait again."""
        self._rates: dict[Emulated, float] = {}
        self._next = 0
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.turns = 0
        """Turns run (a turn ends when its budget is spent or nothing is due)."""
        self.fed = 0
        """Bytes fed to emulators."""
        self.errors = 0
        """Steps that raised (the agent waits for its next turn)."""
        self.last_error = ""

    # ---- membership --------------------------------------------------------------------------

    def add(self, session: Emulated) -> None:
        """Start feeding `session` (starting the pump's task on first use)."""
        if session not in self._sessions:
            self._sessions.append(session)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
            if self._watch is not None:
                self._watch(self._task, "emulation pump")
        self._wake.set()

    def remove(self, session: Emulated) -> None:
        """Stop feeding `session`."""
        if session in self._sessions:
            self._sessions.remove(session)
        self._targets.pop(session, None)
        self._rates.pop(session, None)

    async def close(self) -> None:
        """Stop the pump's task."""
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- being told --------------------------------------------------------------------------

    def arrived(self, session: Emulated, size: int) -> None:
        """`size` bytes just reached `session`'s ring. Cheap: runs once per PTY read.

        Only bytes that may make an agent due sooner than the pump is waiting for
        wake it: any for a shown agent, the first after a caught-up one otherwise.
        """
        if session.shown or session.pending == size:
            self._wake.set()

    def changed(self) -> None:
        """Something other than output changed when an agent is due (it became shown)."""
        self._wake.set()

    # ---- the loop ----------------------------------------------------------------------------

    def _due_at(self, session: Emulated) -> float:
        if session.shown:
            if session.pending <= SHOWN_AT_ONCE:
                return 0.0
            return session.emulated_at + SHOWN_INTERVAL
        return min(session.last_output + HIDDEN_PAUSE, session.emulated_at + HIDDEN_INTERVAL)

    def _admit(self, now: float) -> float | None:
        """Add agents that are due to the ones being fed; when the next one is due."""
        soonest: float | None = None
        for session in self._sessions:
            if session in self._targets or not session.pending:
                continue
            due = self._due_at(session)
            if due <= now:
                self._targets[session] = session.arrived
            elif soonest is None or due < soonest:
                soonest = due
        return soonest

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            soonest = self._admit(time.monotonic())
            if not self._targets:
                self._wake.clear()
                if soonest is not None:
                    self._timer = loop.call_at(
                        loop.time() + max(0.0, soonest - time.monotonic()), self._wake.set
                    )
                await self._wake.wait()
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                continue
            self._turn()
            await asyncio.sleep(0)  # keys and sockets go first

    def _turn(self) -> None:
        """Feed due agents a step each, round-robin, until the budget is spent."""
        self.turns += 1
        started = time.perf_counter()
        order = list(self._targets)
        start = self._next % len(order)
        for index in range(len(order)):
            session = order[(start + index) % len(order)]
            self._step(session)
            self._next = start + index + 1
            if time.perf_counter() - started >= self.budget:
                break

    def _step(self, session: Emulated) -> None:
        rate = self._rates.get(session, FIRST_RATE)
        target = self._targets[session]
        limit = int(min(max(rate * STEP_TIME, MIN_STEP), MAX_STEP))
        began = time.perf_counter()
        # A hidden agent's screen is announced once its batch is done, not every step.
        announce = session.shown or target - session.offset <= limit
        try:
            fed = session.emulate(limit, announce=announce)
        except Exception as error:  # one agent's failure must not stop every screen
            self.errors += 1
            self.last_error = f"{type(error).__name__}: {error}"[:200]
            fed = 0
        took = time.perf_counter() - began
        self.fed += fed
        if fed >= MIN_STEP and took > 0:
            # Smoothed, so one odd step (a redraw in a log) does not swing the size.
            self._rates[session] = 0.5 * rate + 0.5 * (fed / took)
        if not fed or session.offset >= target:
            del self._targets[session]
