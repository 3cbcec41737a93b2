"""The session host: every agent's PTY, screen and state behind one interface.

The daemon runs it and relays its events over its socket. Approvals are not
its business: the daemon's approval book listens to its state and screen
events, and is the only part that records requests or sends answer keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.session.agent import AgentConfig, AgentSession
from tundra_tui.session.detect import from_codex_notify
from tundra_tui.session.emulator import Emulator
from tundra_tui.session.events import (
    Exited,
    HostEvent,
)
from tundra_tui.session.hooks import hook_detection
from tundra_tui.session.launch import relaunch
from tundra_tui.session.pty import ExitStatus, adopted_agent_processes, become_subreaper, reap
from tundra_tui.session.pump import EmulationPump
from tundra_tui.session.tracker import only_activity
from tundra_tui.store import Store

DELIVERY_TIMEOUT = 3.0
ECHO_TIMEOUT = 2.0
PROBE_CHARS = 40
"""The end of the typed text looked for on screen: the agent's input line."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending input went: whether the agent visibly took it, and after how many tries."""

    delivered: bool
    attempts: int
    evidence: str


_BOX = frozenset(chr(c) for c in range(0x2500, 0x2580))
"""Box drawing: input boxes frame their text, and a frame row may split a wrapped line."""


def _squeezed(text: str) -> str:
    """Text without whitespace or box drawing, so a probe matches across a wrap (the
    emulator strips a row's trailing spaces, and a box may frame each row)."""
    return "".join(c for c in text if not c.isspace() and c not in _BOX)


def _holds(emulator: Emulator, y: int, probe: str) -> bool:
    """Row `y`, or rows `y` and `y + 1` read as one, show `probe` (already squeezed)."""
    row = _squeezed(emulator.line_text(y))
    if probe in row:
        return True
    return y + 1 < emulator.rows and probe in row + _squeezed(emulator.line_text(y + 1))


def _row_holding(session: AgentSession, probe: str) -> int | None:
    """The lowest screen row where the typed text (its probe) shows: the agent's input
    line. The probe may wrap onto the next row; the row returned is where it starts."""
    emulator = session.emulator
    if not probe:
        return None
    for y in range(emulator.rows - 1, -1, -1):
        if _holds(emulator, y, probe):
            return y
    return None


def _line_number(emulator: Emulator, y: int) -> int:
    """Row `y` counted from the first line the terminal ever showed: rows scroll, this
    number stays with the line."""
    return emulator.scrollback_dropped + emulator.scrollback_size + y


def one_line_input(text: str) -> str:
    """What `send_text` types for `text`: its lines joined with one space, every control
    character (C0, DEL, C1: escape sequences, interrupts, bells) dropped."""
    lines = (line.translate(_CONTROLS).strip() for line in text.splitlines())
    return " ".join(line for line in lines if line)


_CONTROLS = {c: None for c in (*range(0x20), *range(0x7F, 0xA0))} | {0x09: " "}


class InputLock:
    """One writer of text at a time per agent (prompts, mail, nudges), re-entrant for the
    task holding it, so a caller can check, type (`send_text` takes it too) and record a
    receipt with no other input in between."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    def locked(self) -> bool:
        return self._lock.locked()

    async def __aenter__(self) -> InputLock:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            self._depth += 1
            return self
        await self._lock.acquire()
        self._owner, self._depth = task, 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


@dataclass(frozen=True, slots=True)
class _Before:
    """What the agent showed just before an Enter, to tell afterwards if it was taken."""

    turns: int
    cursor: int
    typed: int | None
    """Line number (see `_line_number`) of the typed text's first row, if it showed."""


class SessionHost:
    """Starts, stops and talks to agents; publishes their screens and states."""

    def __init__(
        self,
        store: Store,
        *,
        max_ptys: int = 20,
        actor: str = "operator",
        watch: Callable[[asyncio.Task[Any], str], object] | None = None,
    ) -> None:
        self.store = store
        self.max_ptys = max_ptys
        self.actor = actor
        self.watch = watch
        """Told of every background task the host and its sessions start, so one that dies
        is reported with its reason (the daemon logs it) rather than lost."""
        self._sessions: dict[str, AgentSession] = {}
        self._shown: set[str] = set()
        """Agents some client shows, running or not yet (see `set_shown`)."""
        self._glanced: set[str] = set()
        """Of those, the ones no client shows more than at a glance."""
        self._closing = False
        self._queue: deque[AgentConfig] = deque()
        self._listeners: list[Callable[[HostEvent], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._input_locks: dict[str, InputLock] = {}
        self.pump = EmulationPump(watch=watch)
        """Feeds every agent's emulator from its ring, off the PTY read path."""
        become_subreaper()

    # ---- listening ---------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[HostEvent], None]) -> Callable[[], None]:
        """Call `listener` for every event; returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, event: HostEvent) -> None:
        if isinstance(event, Exited):
            self._spawn(self._start_queued())
        for listener in list(self._listeners):
            listener(event)

    def _spawn(self, coroutine: object) -> None:
        assert asyncio.iscoroutine(coroutine)
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.watch is not None:
            self.watch(task, getattr(coroutine, "__qualname__", "host task"))

    # ---- lifecycle ---------------------------------------------------------------------------

    def session(self, name: str) -> AgentSession:
        """The live (or last) session of an agent."""
        try:
            return self._sessions[name]
        except KeyError:
            raise NotFound(f"agent {name!r} is not running") from None

    def sessions(self) -> list[AgentSession]:
        """Every session this host has, live or ended."""
        return list(self._sessions.values())

    def forget(self, name: str) -> bool:
        """Drop a session that no longer runs (its agent left the team); False if it runs."""
        session = self._sessions.get(name)
        if session is None or session.pid is not None or name in self.queued():
            return False
        session.cancel_tasks()
        self.pump.remove(session)
        del self._sessions[name]
        return True

    def set_shown(self, name: str, shown: bool, *, glance: bool = False) -> None:
        """Some client shows this agent's screen now (or none does any more); `glance`: no
        client shows it more than at a glance. A shown agent is emulated as its output
        arrives, a glanced one a few times a second, a hidden one lazily (`session.pump`)."""
        glance = shown and glance
        if shown:
            self._shown.add(name)
        else:
            self._shown.discard(name)
        if glance:
            self._glanced.add(name)
        else:
            self._glanced.discard(name)
        session = self._sessions.get(name)
        if session is not None and (session.shown, session.glance) != (shown, glance):
            session.shown, session.glance = shown, glance
            self.pump.changed()

    def queued(self) -> list[str]:
        """Agents waiting for a free PTY slot, in start order."""
        return [config.name for config in self._queue]

    def live_count(self) -> int:
        """Agents whose process is running."""
        return sum(1 for s in self._sessions.values() if s.pid is not None)

    async def start(self, config: AgentConfig) -> AgentState:
        """Start an agent, or queue it when every PTY slot is taken (never an error)."""
        if self._closing:
            # A spawn that was waiting (on a worktree, say) when the daemon began to stop
            # must not leave an agent running past it.
            raise TundraError("the daemon is stopping")
        current = self._sessions.get(config.name)
        if current is not None and current.exit_status is None and current.pty is not None:
            raise TundraError(f"agent {config.name!r} is already running")
        if any(queued.name == config.name for queued in self._queue):
            return AgentState.QUEUED
        session = AgentSession(config, self._emit, watch=self.watch, pump=self.pump)
        if current is not None:
            self.pump.remove(current)
        # Shown by a client before it started, or restarted while on someone's screen.
        session.shown = config.name in self._shown
        session.glance = config.name in self._glanced
        self._sessions[config.name] = session
        self.pump.add(session)
        if self.live_count() >= self.max_ptys:
            self._queue.append(config)
            session.set_state(
                AgentState.QUEUED,
                {"source": "process", "rule": "max_ptys", "matched": str(self.max_ptys)},
            )
            return AgentState.QUEUED
        try:
            session.start()
        except TundraError as error:
            session.set_state(
                AgentState.FAILED, {"source": "process", "rule": "spawn", "matched": str(error)}
            )
            raise
        return session.state

    async def _start_queued(self) -> None:
        while self._queue and self.live_count() < self.max_ptys:
            config = self._queue.popleft()
            session = self._sessions.get(config.name)
            if session is not None and session.pty is None:
                try:
                    session.start()
                except TundraError as error:
                    session.set_state(
                        AgentState.FAILED,
                        {"source": "process", "rule": "spawn", "matched": str(error)},
                    )

    async def stop(self, name: str, grace: float = 3.0, *, by: str = "") -> ExitStatus | None:
        """Stop an agent and its whole process tree; a queued agent just leaves the queue.
        `by`: who asked (see `AgentSession.stop`)."""
        for config in list(self._queue):
            if config.name == name:
                self._queue.remove(config)
                self._sessions[name].set_state(
                    AgentState.STOPPED, {"source": "process", "rule": "dequeued"}
                )
                return None
        return await self.session(name).stop(grace, by=by)

    async def restart(self, name: str) -> AgentState:
        """Stop and start again with the same configuration (a queued agent keeps its place)."""
        if name in self.queued():
            return AgentState.QUEUED
        config = self.session(name).config
        await self.stop(name)
        return await self.start(relaunch(config))

    def interrupt(self, name: str) -> None:
        """Interrupt the agent's current turn with its runtime's keys (Esc, or Ctrl-C)."""
        session = self.session(name)
        session.write(session.adapter.interrupt_keys)

    async def close(self) -> None:
        """Stop every agent, expire what they were asking, and end the host's own work."""
        self._closing = True
        self._queue.clear()
        names = [s.name for s in self._sessions.values() if s.pid is not None]
        await asyncio.gather(*(self.stop(name) for name in names), return_exceptions=True)
        for session in self._sessions.values():
            session.cancel_tasks()
        await self.pump.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    # ---- input -------------------------------------------------------------------------------

    def send_keys(self, name: str, data: bytes) -> None:
        """Raw keys to an agent, as typed."""
        self.session(name).write(data)

    def resize(self, name: str, columns: int, rows: int) -> None:
        """Resize an agent's terminal."""
        self.session(name).resize(columns, rows)

    def input_lock(self, name: str) -> InputLock:
        """The lock every text sent to `name` is typed under (see `InputLock`)."""
        lock = self._input_locks.get(name)
        if lock is None:
            lock = self._input_locks[name] = InputLock()
        return lock

    async def send_text(
        self,
        name: str,
        text: str,
        *,
        retries: int = 2,
        gate: Callable[[], None] | None = None,
    ) -> Delivery:
        """Deliver a prompt the way a person types it, and check the agent took it.

        Literal text (several lines are joined into one, control characters dropped),
        a pause that grows with its length, a separate Enter; then the agent must
        show it took the text (`_took_input`). If it does not, Enter is sent again
        (the text was typed but not submitted). One text at a time per agent: the
        agent's input lock is held throughout.
        """
        text = one_line_input(text)
        if not text:
            raise TundraError("nothing to type: the text is empty once control characters go")
        async with self.input_lock(name):
            return await self._type(self.session(name), text, retries, gate)

    async def _type(
        self, session: AgentSession, text: str, retries: int, gate: Callable[[], None] | None
    ) -> Delivery:
        timing = session.adapter.timing
        session.last_input = text
        await session.settle(timing.settle, limit=3.0)
        if gate is not None:
            gate()  # checked again right before each write: a prompt may have appeared
        session.write(text.encode())
        await asyncio.sleep(timing.pause_for(text))
        probe = _squeezed(text[-PROBE_CHARS:])
        await self._echoed(session, probe)
        attempt = 0
        for attempt in range(1, retries + 2):
            typed_row = _row_holding(session, probe)
            if gate is not None:
                gate()
            emulator = session.emulator
            before = _Before(
                turns=session.turns,
                cursor=_line_number(emulator, emulator.cursor[1]),
                typed=None if typed_row is None else _line_number(emulator, typed_row),
            )
            session.write(session.adapter.submit_key)
            evidence = await self._took_input(session, typed_row, probe, before)
            if evidence:
                return Delivery(True, attempt, evidence)
            if session.state is AgentState.AWAITING_APPROVAL:
                # Another Enter here could accept a default-yes question: stop.
                break
        return Delivery(False, attempt, "the text stayed in the input line")

    async def _echoed(self, session: AgentSession, probe: str) -> None:
        """Wait (briefly) until the typed text shows: some TUIs render input late."""
        deadline = asyncio.get_running_loop().time() + ECHO_TIMEOUT
        while probe and _row_holding(session, probe) is None:
            if asyncio.get_running_loop().time() >= deadline:
                return
            await asyncio.sleep(0.05)

    async def _took_input(
        self, session: AgentSession, typed_row: int | None, probe: str, before: _Before
    ) -> str:
        """Why the agent took the text, or "" if it did not show it in time. Any of:

        - it started a turn: a rule or hook (not mere screen activity) published working
          or an approval, now or since the Enter (`session.turns`: a turn at speed 0 can
          start and end between two looks);
        - the cursor went on at least two lines below both where it was and the typed
          text (the agent printed its turn; one line could be an Enter taken as a newline);
        - the typed text left the row it was on.
        """
        deadline = asyncio.get_running_loop().time() + DELIVERY_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            rule = session.detection.evidence.rule if session.detection.evidence else ""
            started = session.state in (AgentState.WORKING, AgentState.AWAITING_APPROVAL)
            if session.turns > before.turns or (started and not only_activity(rule)):
                return "the agent started a turn"
            if not probe:
                return "the input was sent (nothing to look for)"
            emulator = session.emulator
            below = max(before.cursor, before.typed if before.typed is not None else -1)
            if _line_number(emulator, emulator.cursor[1]) >= below + 2:
                return "the agent printed below the typed text"
            if typed_row is not None and not _holds(emulator, typed_row, probe):
                return "the input line cleared"
        return ""

    # ---- structured reports -----------------------------------------------------------------

    def hook_state(self, agent: str, event: str, payload: dict[str, object]) -> None:
        """A state report from an agent's own hook (Claude Code, Codex): it outranks the screen."""
        session = self._sessions.get(agent)
        if session is None or session.exit_status is not None:
            return
        detection = hook_detection(session.adapter.runtime, event, payload)
        if detection is not None:
            session.observe_structured(detection)

    def codex_notify(self, agent: str, payload: dict[str, object]) -> bool:
        """Take a Codex `notify` report as state evidence; True if it was used.

        Codex also notifies for side threads (it titles a thread with a separate
        query, whose completion arrives mid-turn). Only a turn whose last input
        is the text we delivered is the agent's own turn.
        """
        session = self._sessions.get(agent)
        if session is None or session.exit_status is not None:
            return False
        inputs = payload.get("input-messages")
        if not isinstance(inputs, list) or not inputs:
            return False
        if str(inputs[-1]).strip() != session.last_input:
            return False
        detection = from_codex_notify(payload)
        if detection is None:
            return False
        session.observe_structured(detection)
        return True

    async def reap_orphans(self, interval: float = 10.0) -> None:
        """Collect agents' orphans that exited after their agent did, until cancelled."""
        known: set[int] = set()
        while True:
            live, zombies = await asyncio.to_thread(adopted_agent_processes)
            reap(zombies & known)
            known = (known - zombies) | live
            await asyncio.sleep(interval)
