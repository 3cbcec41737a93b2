"""One live agent: its PTY, emulated screen, raw output ring and state tracker, tied together.

Output is read on the event loop into the ring and nothing more; the host's
`EmulationPump` feeds the emulator from there in budgeted turns (at once for an
agent some client shows, lazily for the others). Whatever reads the screen
(`emulator`, `screen_lines`, `prompt_now`) first catches up with everything
that arrived. State is re-detected at most every `DETECT_INTERVAL` seconds plus
on a slow tick, so a busy agent costs one detection per interval, not one per
chunk; bytes arriving are its activity, and a hidden agent's screen is read
when the pump has emulated a batch of it (once its output pauses, and every
second while it streams).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from tundra_tui.domain.agents import AgentState
from tundra_tui.session.adapters import Adapter, Dialog, Launch
from tundra_tui.session.detect import (
    Detected,
    Detection,
    detect_screen,
    detection_rows,
    matched_prompt,
    rules_for_custom,
)
from tundra_tui.session.emulator import Emulator
from tundra_tui.session.events import Exited, HostEvent, ScreenChanged, StateChanged, Trouble
from tundra_tui.session.pty import AgentPty, ExitStatus
from tundra_tui.session.pump import HIDDEN_INTERVAL, SHOWN_AT_ONCE, EmulationPump
from tundra_tui.session.ring import RawRing
from tundra_tui.session.tracker import StateTracker, only_activity

DETECT_INTERVAL = 0.05
TICK_INTERVAL = 0.2
BOTTOM_LINES = 20
RING_CAPACITY = 1024 * 1024
"""Raw output kept per agent. It has to hold what a hidden agent prints between two
emulation passes (about a second: even a 1 MB/s flood fits), and bounds fifty
streaming agents at 50 MiB (an idle agent's ring stays at 64 KiB). An emulator that
falls further behind resumes from the oldest byte held and counts the loss."""

_TURN_STATES = frozenset({AgentState.WORKING, AgentState.AWAITING_APPROVAL})

_PUBLISHED = {
    Detected.WORKING: AgentState.WORKING,
    Detected.IDLE: AgentState.IDLE,
    Detected.AWAITING_APPROVAL: AgentState.AWAITING_APPROVAL,
    Detected.UNKNOWN: AgentState.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What the host needs to start an agent."""

    name: str
    adapter: Adapter
    launch: Launch
    columns: int = 120
    rows: int = 40
    scrollback: int = 5000
    ring_capacity: int = RING_CAPACITY


class AgentSession:
    """A running agent and what we know about it. Created by the SessionHost."""

    def __init__(
        self,
        config: AgentConfig,
        emit: Callable[[HostEvent], None],
        *,
        watch: Callable[[asyncio.Task[Any], str], object] | None = None,
        pump: EmulationPump | None = None,
    ) -> None:
        self.config = config
        self._watch = watch
        self.name = config.name
        self.adapter = config.adapter
        self._emit = emit
        self.pty: AgentPty | None = None
        self._emulator = Emulator(
            config.columns, config.rows, scrollback=config.scrollback, reply=self.write
        )
        self.ring = RawRing(config.ring_capacity)
        self._pump = pump
        """Feeds the emulator; without one (a session used alone) each read is fed at once."""
        self._offset = 0
        """Ring offset the emulator has been fed up to."""
        self.lost_bytes = 0
        """Output overwritten in the ring before it was emulated (see `RING_CAPACITY`)."""
        self.emulated_at = 0.0
        """When the emulator was last fed (monotonic seconds)."""
        self.shown = False
        """Some client shows this agent's screen: emulate it as output arrives (`set_shown`)."""
        self.glance = False
        """Shown, but by no client more than at a glance: emulated a few times a second."""
        self._screen_read_at = 0.0
        """When detection last read the screen (monotonic). The pump has a hidden agent's
        read about every `HIDDEN_INTERVAL` however its output flows; after twice that,
        detection hurries the pump (never catching up itself: a flood's backlog took
        35-130 ms of the loop)."""
        self._dirty: set[int] = set()
        self._flush_handle: asyncio.Handle | None = None
        self._screen_detection: Detection | None = None
        """The last detection read from the screen (activity between reads reuses it)."""
        self._structured_since_screen = False
        """A hook reported since the screen was last read: read it caught up next time."""
        self._fresh_screen = False
        """The pump just finished a hidden batch: the screen as drawn is worth reading."""
        self.tracker = StateTracker(config.adapter.runtime.value)
        self.state = AgentState.QUEUED
        self.detection = Detection(Detected.UNKNOWN, None)
        self.exit_status: ExitStatus | None = None
        self.started_at = 0.0
        self.last_output = 0.0
        self.last_input = ""
        """The last prompt delivered with send_text, one line (matches Codex notify input)."""
        self.state_since = 0.0
        """When the published state last changed (monotonic seconds)."""
        self.turns = 0
        """Turns seen to start: entries into working or an approval by a rule or a hook
        (not screen activity). Input was taken if this grew, even when the turn was over
        before anyone looked at the state (a fast agent, a hook's start and stop)."""
        self._custom = (
            rules_for_custom(
                self.adapter.patterns.get("idle", ""),
                self.adapter.patterns.get("working", ""),
                self.adapter.patterns.get("approval", ""),
            )
            if self.adapter.patterns
            else None
        )
        self._detect_handle: asyncio.Handle | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._screen_changed = False
        self._stopping = False
        self._stopped_by = ""
        self._answered_dialogs: set[str] = set()
        self.trouble = ""
        """`rate_limited` or `auth_failed` while the screen shows it, else empty."""
        self._ready = False
        self._waiters: list[tuple[Callable[[AgentState], bool], asyncio.Future[bool]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the CLI and start reading it."""
        launch = self.config.launch
        self.pty = AgentPty.spawn(
            launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            columns=self.config.columns,
            rows=self.config.rows,
        )
        self.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self.pty.attach(loop, self._on_data, self._on_exit)
        self._tick_task = loop.create_task(self._tick())
        if self._watch is not None:
            self._watch(self._tick_task, f"{self.name}: detection tick")
        self._publish(AgentState.UNKNOWN, {"source": "process", "rule": "started"})

    @property
    def pid(self) -> int | None:
        """The CLI's process id while it runs."""
        return self.pty.pid if self.pty is not None and self.exit_status is None else None

    async def stop(self, grace: float = 3.0, *, by: str = "") -> ExitStatus | None:
        """Stop the CLI and everything it started; `by` says who asked (`operator`, an agent's
        name, or empty for the town itself), for the stopped state's evidence."""
        if self.pty is None or self.exit_status is not None:
            return self.exit_status
        self._stopping = True
        self._stopped_by = by
        return await self.pty.stop(grace)

    # ---- output ------------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        # The PTY read path: into the ring, note the arrival, nothing else.
        self.ring.write(data)
        self.last_output = time.monotonic()
        self._screen_changed = True
        if self._detect_handle is None:
            self._detect_handle = asyncio.get_running_loop().call_later(
                DETECT_INTERVAL, self._detect
            )
        if self._pump is not None:
            self._pump.arrived(self, len(data))
        else:
            self.catch_up()

    @property
    def emulator(self) -> Emulator:
        """The agent's screen, caught up with everything it printed (see `catch_up`)."""
        self.catch_up()
        return self._emulator

    @property
    def drawn(self) -> Emulator:
        """The screen as emulated so far, without catching up: always a state the terminal
        was in, behind by what `pending` counts. For renderers that follow `ScreenChanged`
        (which comes after every feed) and must not emulate on the caller's time."""
        return self._emulator

    @property
    def arrived(self) -> int:
        """Bytes of output ever read from the agent."""
        return self.ring.total

    @property
    def offset(self) -> int:
        """Bytes of output fed to the emulator (or lost before it could be)."""
        return self._offset

    @property
    def capacity(self) -> int:
        """Bytes of output the ring holds: more pending than this is lost."""
        return self.ring.capacity

    @property
    def pending(self) -> int:
        """Bytes of output read but not yet emulated."""
        return self.ring.total - self._offset

    def catch_up(self) -> None:
        """Emulate everything that has arrived, now."""
        if self.ring.total != self._offset:
            self.emulate()

    def emulate(self, limit: int | None = None, *, announce: bool = True) -> int:
        """Feed the emulator up to `limit` bytes of pending output; returns how many.

        Output overwritten before it was fed is skipped and counted in `lost_bytes`.
        With `announce`, rows changed so far are reported in one `ScreenChanged` soon
        after; without (the middle of a hidden agent's batch), they wait for the next.
        """
        start, data = self.ring.read_from(self._offset, limit)
        if start > self._offset:
            self.lost_bytes += start - self._offset
            self._emulator.skip()
        self._offset = start + len(data)
        self.emulated_at = time.monotonic()
        if data:
            self._emulator.feed(data)
            self._dirty |= self._emulator.take_dirty()
        if announce and self._dirty and self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._flush_dirty()
            else:
                self._flush_handle = loop.call_soon(self._flush_dirty)
        return len(data)

    def _flush_dirty(self) -> None:
        # Emitted from the loop, never from inside a screen read: a listener may read it.
        self._flush_handle = None
        rows, self._dirty = self._dirty, set()
        if rows:
            self._emit(ScreenChanged(self.name, frozenset(rows)))

    def _on_exit(self, status: ExitStatus) -> None:
        self.catch_up()  # the last screen is complete before anyone hears of the exit
        self.exit_status = status
        if self._tick_task is not None:
            self._tick_task.cancel()
        if self._detect_handle is not None:
            self._detect_handle.cancel()
            self._detect_handle = None
        evidence = {"source": "process", "rule": "exited", "matched": status.describe()}
        if self._stopping:
            # A stop asked for: how the process ended (SIGHUP) is our doing, not news.
            state = AgentState.STOPPED
            evidence = {"source": "process", "rule": "stopped", "matched": status.describe()}
            if self._stopped_by:
                evidence["by"] = self._stopped_by
        else:
            state = AgentState.EXITED if status.code == 0 else AgentState.FAILED
        self._publish(state, evidence)
        self._emit(Exited(self.name, status.code, status.signal))

    async def _tick(self) -> None:
        # Debounced transitions (idle after quiet) need time to pass, not output to arrive.
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            self._detect()

    # ---- detection ---------------------------------------------------------------------------

    def screen_lines(self) -> list[str]:
        """The bottom of the screen, where every runtime shows its state (`detection_rows`)."""
        return detection_rows(self.adapter.runtime.value, self.emulator.bottom, BOTTOM_LINES)

    def prompt_now(self) -> str | None:
        """The whole approval prompt an approval rule matches on the screen now, or None."""
        return matched_prompt(self.adapter.runtime.value, self.screen_lines(), custom=self._custom)

    def batch_done(self) -> None:
        """The pump fed this hidden agent everything that had arrived when it became due:
        detection reads that screen now (where a prompt drawn before a pause shows)."""
        self._fresh_screen = True
        if self._detect_handle is not None:
            self._detect_handle.cancel()
        self._detect_handle = asyncio.get_running_loop().call_soon(self._detect)

    def _reading(self, now: float) -> str:
        """How detection treats the screen now: `catch up` and read it, read it as `drawn`,
        or `skip` it (only the bytes arriving count, as activity).

        A shown agent's screen is read as drawn: the pump keeps it within a frame of its
        output, in budgeted steps. Catching up a streaming shown agent here instead ran
        unbudgeted emulation on the loop every 50 ms per tile (a fifth of the daemon's time
        with 20 tiles streaming), and the keys the operator typed waited behind it; only a
        key's echo or so (`SHOWN_AT_ONCE`) is caught up. A hidden one's is read as drawn
        once the pump finished a batch (when its output paused, and every second while it
        streams); it is caught up at once only when a hook spoke (a hook's word is checked
        against the screen as it is, never a stale one); when the pump has not had it read
        for two seconds, the pump is hurried.
        """
        if not self.pending or self._pump is None or self._structured_since_screen:
            return "catch up"
        if self.shown and not self.glance:
            return "catch up" if self.pending <= SHOWN_AT_ONCE else "drawn"
        if self._screen_detection is None:
            return "catch up"
        if now - self._screen_read_at >= 2 * HIDDEN_INTERVAL and not self._fresh_screen:
            self._pump.hurry(self)
        return "drawn" if self._fresh_screen else "skip"

    def _detect(self) -> None:
        self._detect_handle = None
        if self.exit_status is not None:
            return
        now = time.monotonic()
        reading = self._reading(now)
        if reading == "skip":
            assert self._screen_detection is not None
            self.tracker.observe_screen(self._screen_detection, now, self._screen_changed)
            self._screen_changed = False
            self._apply(self.tracker.current(now))
            return
        lines = (
            self.screen_lines()
            if reading == "catch up"
            else detection_rows(self.adapter.runtime.value, self._emulator.bottom, BOTTOM_LINES)
        )
        self._screen_read_at = now
        self._fresh_screen = False
        detection = detect_screen(self.adapter.runtime.value, lines, custom=self._custom)
        self._screen_detection = detection
        self._structured_since_screen = False
        self.tracker.observe_screen(detection, now, self._screen_changed)
        self._screen_changed = False
        screen = "\n".join(lines)
        self._answer_dialog(screen)
        self._check_trouble(screen)
        self._apply(self.tracker.current(now))
        if reading == "drawn" and self.shown and not self.glance and self._detect_handle is None:
            # Read behind the pump: look again once it caught up (a prompt drawn just
            # before the output paused must not wait for the next tick).
            self._detect_handle = asyncio.get_running_loop().call_later(
                DETECT_INTERVAL, self._detect
            )

    def _check_trouble(self, screen: str) -> None:
        trouble = self.adapter.trouble(screen) or ""
        if trouble != self.trouble:
            self.trouble = trouble
            self._emit(Trouble(self.name, trouble, screen.strip().splitlines()[-1][:200]))

    def observe_structured(self, detection: Detection) -> None:
        """A hook or notify program reported a state: it outranks the screen while fresh."""
        now = time.monotonic()
        self._structured_since_screen = True
        self.tracker.observe_structured(detection, now)
        self._apply(self.tracker.current(now))

    def _apply(self, detection: Detection) -> None:
        self.detection = detection
        state = _PUBLISHED[detection.state]
        evidence = detection.evidence.to_dict() if detection.evidence is not None else {}
        if state is not self.state:
            self._publish(state, evidence)

    def _publish(self, state: AgentState, evidence: Mapping[str, object]) -> None:
        rule = str(evidence.get("rule", ""))
        if state is not self.state:
            self.state_since = time.monotonic()
            if state in _TURN_STATES and self.state not in _TURN_STATES and not only_activity(rule):
                self.turns += 1
        self.state = state
        # Past start-up once a rule or hook (not mere screen activity) saw it ready.
        if state in (
            AgentState.IDLE,
            AgentState.WORKING,
            AgentState.AWAITING_APPROVAL,
        ) and not only_activity(rule):
            self._ready = True
        # Resolve waiters here, synchronously, so a state that is published and then
        # replaced before they run is still seen.
        for waiter in list(self._waiters):
            predicate, future = waiter
            if not future.done() and predicate(state):
                future.set_result(True)
                self._waiters.remove(waiter)
        self._emit(StateChanged(self.name, state, dict(evidence)))

    def set_state(self, state: AgentState, evidence: Mapping[str, object]) -> None:
        """Publish a state decided outside detection (queued, stopped by the host)."""
        self._publish(state, evidence)

    async def wait_for(self, predicate: Callable[[AgentState], bool], timeout: float) -> bool:
        """Wait until the published state satisfies `predicate`; False on timeout."""
        if predicate(self.state):
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _answer_dialog(self, screen: str) -> None:
        """Answer a start-up dialog once. Never after the agent first became ready, and never
        over an approval prompt: text an agent prints there must not trigger keys."""
        if self._ready or self.state is AgentState.AWAITING_APPROVAL or self.pty is None:
            return
        dialog: Dialog | None = self.adapter.dialog_on(screen)
        if dialog is None or dialog.id in self._answered_dialogs:
            return
        self._answered_dialogs.add(dialog.id)
        pty = self.pty

        async def answer() -> None:
            # Keys sent in the first half second after a dialog paints are dropped.
            await asyncio.sleep(self.adapter.timing.settle)
            for keys in dialog.keys:
                if self._ready or not dialog.pattern.search("\n".join(self.screen_lines())):
                    return  # it went away (or the agent is past start-up): send nothing more
                pty.write(keys)
                await asyncio.sleep(0.15)

        self._own(answer())

    def _own(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self._watch is not None:
            self._watch(task, f"{self.name}: {getattr(coroutine, '__qualname__', 'task')}")

    def cancel_tasks(self) -> None:
        """Cancel the session's own background work (the host calls this when closing)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tick_task is not None:
            self._tick_task.cancel()

    # ---- input -------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Raw bytes to the agent (keys, pasted text)."""
        if self.pty is not None and self.exit_status is None:
            self.pty.write(data)
            if self._pump is not None:
                self._pump.keyed(self)

    def resize(self, columns: int, rows: int) -> None:
        """Resize the emulator and the PTY together (the agent gets SIGWINCH)."""
        self.emulator.resize(columns, rows)  # output so far was drawn for the old size
        if self.pty is not None:
            self.pty.resize(columns, rows)
        self._emit(ScreenChanged(self.name, frozenset(range(rows))))

    async def settle(self, quiet: float, limit: float) -> None:
        """Wait until output has been quiet for `quiet` seconds, at most `limit` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_output >= quiet:
                return
            await asyncio.sleep(0.02)
