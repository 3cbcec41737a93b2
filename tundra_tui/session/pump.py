"""Emulation off the PTY read path: one pump per host feeds every agent's screen in turns.

Reading a PTY only appends to the agent's ring (`AgentSession._on_data`). The
pump then feeds each emulator from its ring offset, a step at a time, under a
time budget per turn; between turns it yields to the event loop, so a key or
a socket message waits at most one turn behind emulation however much the
agents print. Steps go round-robin, so two floods progress alike, and each
agent's step size is steered to last about `STEP_TIME` (it grows large for line
output the emulator skims and stays small for full-screen redraws that pyte
draws cell by cell).

Which agents are emulated when:
- shown ones (some client displays the screen) as soon as bytes arrive, and
  while they stream at most every `SHOWN_INTERVAL` (unless no more than
  `SHOWN_AT_ONCE` waits): a frame's worth in one step skims far better than
  read by read, and clients get ~30 frames a second anyway;
- glanced ones (shown, but only as a tile behind the one being typed into) like
  hidden ones, but at least every `GLANCE_INTERVAL`, and outside the hidden share:
  a batch a quarter second long skims far better than frame-sized ones, and the
  tile repaints that often anyway;
- hidden ones lazily: once output has paused for `HIDDEN_PAUSE` (a prompt
  drawn before the agent waits is on screen within that, plus a step), at
  least every `HIDDEN_INTERVAL` while they stream (detection keeps seeing a
  screen that moves), and when half their ring waits (so a burst is not lost
  while the pump has time for it); all of them together in at most
  `HIDDEN_SHARE` of the loop's time, except for one whose output paused (it
  may be waiting at a prompt). When a hidden agent's batch is done, its
  detection reads the screen. Activity detection does not wait for this: it
  counts bytes arriving.
Once an agent is due, everything it had printed by then is fed before it waits
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

TURN_BUDGET = 0.0
"""Seconds of emulation per turn before the event loop runs again: 0 is one step a turn, so
a key waits behind at most one step (~`STEP_TIME`) rather than a turn of several."""
STEP_TIME = 0.003
"""What one step of a watched agent should take: each agent's step size in bytes is steered
towards it (or `HIDDEN_STEP_TIME`). A watched agent's rows are drawn and sent after each step,
so shorter steps cost CPU (2 ms: the daemon went from 26% to 35% of a core under four
300 kB/s floods) for little gain in echo."""
HIDDEN_STEP_TIME = 0.001
"""What one step of an agent nobody watches should take. Its rows are not drawn until read
(`Skimmer.settle`), so a step costs about its bytes alone and short steps cost little more
CPU than long ones; a key then waits behind a millisecond of hidden emulation at most."""
MIN_STEP = 1024
MAX_STEP = 256 * 1024
FIRST_STEP = 4096
SHOWN_INTERVAL = 0.02
"""A shown agent that streams is fed at most this often (clients get ~30 frames a second)."""
SHOWN_AT_ONCE = 1024
"""A shown agent with no more than this pending is fed at once, however recently it was
fed last (the echo of a key or two)."""
HIDDEN_PAUSE = 0.1
"""Output quiet this long counts as a pause: a hidden agent is fed, its screen read."""
HIDDEN_INTERVAL = 1.0
GLANCE_INTERVAL = 0.25
"""A glanced agent (see the module) that streams is fed at least this often: its tile
repaints four times a second."""
"""A hidden agent that streams is fed (and its screen read) at least this often."""
HIDDEN_SHARE = 0.25
"""Of the loop's time, at most this goes to emulating agents nobody shows: a hidden flood
faster than that loses output (counted) rather than taking the loop from keys."""
HIDDEN_BURST = 0.02
"""Seconds of hidden emulation that may be saved up for a burst (a batch after a pause)."""
KEY_HOLD = 0.02
"""After a key is written to an agent, steps of agents nobody watches wait up to this long for
its echo to be fed: the loop is idle while the agent echoes, and a hidden step started then is
what the echo waited behind (a whole `STEP_TIME`, in about one key in five under floods)."""
HIDDEN_DEFER = 0.01
"""A hidden agent's step waits up to this long while other callbacks are ready to run: a
key's echo crosses the loop in five to seven hops (socket, request, PTY write, PTY read,
emulation, frame, socket), and a 3 ms step between each two made its tail 15-25 ms."""


class Emulated(Protocol):
    """What the pump needs of a session (`AgentSession` is one)."""

    @property
    def shown(self) -> bool: ...

    @property
    def glance(self) -> bool: ...

    @property
    def pending(self) -> int: ...

    @property
    def arrived(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def capacity(self) -> int: ...

    last_output: float
    emulated_at: float

    def emulate(self, limit: int | None = None, *, announce: bool = True) -> int: ...

    def batch_done(self) -> None: ...


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
        self._steps: dict[Emulated, int] = {}
        """Each agent's step size in bytes, steered towards `STEP_TIME` a step."""
        self._urgent: set[Emulated] = set()
        """Hidden agents detection has waited on too long: fed whatever the hidden share."""
        self._next = 0
        self._credit = HIDDEN_BURST
        """Seconds hidden agents may still be emulated for (see `HIDDEN_SHARE`)."""
        self._credit_at = time.perf_counter()
        self._deferred_since: float | None = None
        """When hidden steps began to wait for the loop's other callbacks (see `HIDDEN_DEFER`)."""
        self._keyed: tuple[Emulated, float] | None = None
        """The agent last written to, and when (monotonic): see `KEY_HOLD`."""
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
        self._steps.pop(session, None)
        self._urgent.discard(session)

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
        wake it: any for a shown agent; for a hidden or glanced one the first after it caught up,
        and those that fill half its ring.
        """
        pending, half = session.pending, session.capacity // 2
        if _watched(session) or pending == size or pending >= half > pending - size:
            self._wake.set()

    def hurry(self, session: Emulated) -> None:
        """Detection has not seen `session`'s screen for too long: feed it from the next
        turn, outside the hidden share, but still in budgeted steps (never on the
        caller's time: catching up a flood at once stalled the loop for 35-130 ms)."""
        if session in self._sessions:
            self._urgent.add(session)
            self._wake.set()

    def keyed(self, session: Emulated) -> None:
        """Keys were just written to `session`: if someone watches it, hold hidden steps for
        its echo (`KEY_HOLD`)."""
        if _watched(session):
            self._keyed = session, time.monotonic()

    def changed(self) -> None:
        """Something other than output changed when an agent is due (it became shown)."""
        self._wake.set()

    # ---- the loop ----------------------------------------------------------------------------

    def _due_at(self, session: Emulated) -> float:
        if session in self._urgent or session.pending * 2 >= session.capacity:
            return 0.0  # before its ring overwrites what was not emulated yet
        if session.shown and not session.glance:
            if session.pending <= SHOWN_AT_ONCE:
                return 0.0
            return session.emulated_at + SHOWN_INTERVAL
        interval = GLANCE_INTERVAL if session.shown else HIDDEN_INTERVAL
        return min(session.last_output + HIDDEN_PAUSE, session.emulated_at + interval)

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
            now = time.monotonic()
            soonest = self._admit(now)
            held = self._held_until(now) if self._targets else None
            if held is not None:
                soonest = held if soonest is None else min(soonest, held)
            elif self._targets:
                if self._defer(loop):
                    await asyncio.sleep(0)
                    continue
                if self._turn():
                    await asyncio.sleep(0)  # keys and sockets go first
                    continue
                # Only hidden agents are due and their share is spent: wait for more.
                credit_at = time.monotonic() - self._credit / HIDDEN_SHARE
                soonest = credit_at if soonest is None else min(soonest, credit_at)
            self._wake.clear()
            if soonest is not None:
                delay = max(0.0, soonest - time.monotonic())
                self._timer = loop.call_at(loop.time() + delay, self._wake.set)
            await self._wake.wait()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _held_until(self, now: float) -> float | None:
        """When hidden steps may go on, if they are held for a key's echo (see `KEY_HOLD`);
        None when they are not: no key lately, its agent fed since, or a watched or urgent
        agent due (those go at once)."""
        if self._keyed is None:
            return None
        session, at = self._keyed
        if (
            now - at >= KEY_HOLD
            or session.emulated_at > at
            or self._urgent
            or any(_watched(s) for s in self._targets)
        ):
            self._keyed = None
            return None
        return at + KEY_HOLD

    def _defer(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether to let the loop's ready callbacks run before a step of hidden agents only.

        Bounded by `HIDDEN_DEFER`, so floods whose reads keep the loop busy still get
        emulated. Reads the loop's private ready queue (CPython's selector loops have one;
        a loop without it never defers).
        """
        ready = getattr(loop, "_ready", None)
        if not ready or self._urgent or any(_watched(s) for s in self._targets):
            self._deferred_since = None
            return False
        now = time.perf_counter()
        if self._deferred_since is None:
            self._deferred_since = now
        if now - self._deferred_since < HIDDEN_DEFER:
            return True
        self._deferred_since = None
        return False

    def _turn(self) -> bool:
        """Feed due agents a step each, round-robin, until the budget is spent; hidden
        ones only while they have credit. False if nothing could be fed."""
        self.turns += 1
        started = time.perf_counter()
        self._credit = min(HIDDEN_BURST, self._credit + (started - self._credit_at) * HIDDEN_SHARE)
        self._credit_at = started
        targets = list(self._targets)
        start = self._next % len(targets)
        rotated = targets[start:] + targets[:start]
        # Shown agents first: what someone watches (a key's echo) never waits behind a
        # hidden flood's step; among each kind, round-robin.
        order = [s for s in rotated if _watched(s)] + [s for s in rotated if not _watched(s)]
        fed = False
        for session in order:
            # An agent whose output paused may be waiting at a prompt: its batch goes on.
            paused = time.monotonic() - session.last_output >= HIDDEN_PAUSE
            urgent = session in self._urgent
            if not session.shown and self._credit <= 0 and not paused and not urgent:
                continue
            self._next = targets.index(session) + 1
            took = self._step(session)
            fed = True
            if not session.shown:
                self._credit -= took
            if time.perf_counter() - started >= self.budget:
                break
        return fed

    def _step(self, session: Emulated) -> float:
        """Feed `session` one step; return the seconds it took."""
        limit = self._steps.get(session, FIRST_STEP)
        target = self._targets[session]
        # A hidden or glanced agent's screen is announced once its batch is done.
        announce = _watched(session) or target - session.offset <= limit
        began = time.perf_counter()
        try:
            fed = session.emulate(limit, announce=announce)
        except Exception as error:  # one agent's failure must not stop every screen
            self.errors += 1
            self.last_error = f"{type(error).__name__}: {error}"[:200]
            fed = 0
        took = time.perf_counter() - began
        self.fed += fed
        if fed == limit:
            # Steer the size, not a rate: a step has a fixed cost (drawing the rows left
            # on screen) that a bytes-per-second estimate would keep steps too small for.
            goal = STEP_TIME if _watched(session) else HIDDEN_STEP_TIME
            scale = min(max(goal / max(took, 1e-6), 0.5), 2.0)
            self._steps[session] = int(min(max(limit * scale, MIN_STEP), MAX_STEP))
        if not fed or session.offset >= target:
            del self._targets[session]
            self._urgent.discard(session)
            if not _watched(session):
                session.batch_done()
        return took


def _watched(session: Emulated) -> bool:
    """Shown more than at a glance: emulated as output arrives, announced every step."""
    return session.shown and not session.glance
