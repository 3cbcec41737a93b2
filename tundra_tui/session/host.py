"""The session host: every agent's PTY, screen and state behind one interface.

It runs in-process today; the daemon will run the same object and relay its
events over a socket, so nothing that uses it needs to change. Approvals are
rows in the store: the host creates one when an agent starts waiting, delivers
the operator's answer with the adapter's keys, and checks the agent moved on
before recording the decision. Nothing an agent prints can answer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.approvals import Approval, ApprovalSource, ApprovalStatus
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.session.agent import AgentConfig, AgentSession
from tundra_tui.session.detect import from_codex_notify, from_hook_event
from tundra_tui.session.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalResolved,
    Exited,
    HostEvent,
    StateChanged,
)
from tundra_tui.session.pty import ExitStatus, adopted_agent_processes, become_subreaper, reap
from tundra_tui.session.requests import extract_request
from tundra_tui.session.tracker import only_activity
from tundra_tui.store import Store

VERIFY_TIMEOUT = 5.0
DELIVERY_TIMEOUT = 3.0
ECHO_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending input went: whether the agent visibly took it, and after how many tries."""

    delivered: bool
    attempts: int
    evidence: str


def _row_holding(session: AgentSession, probe: str) -> int | None:
    """The lowest screen row showing the typed text: the agent's input line."""
    emulator = session.emulator
    for y in range(emulator.rows - 1, -1, -1):
        if probe and probe in emulator.line_text(y):
            return y
    return None


class SessionHost:
    """Starts, stops and talks to agents; publishes their screens, states and approvals."""

    def __init__(self, store: Store, *, max_ptys: int = 20, actor: str = "operator") -> None:
        self.store = store
        self.approvals = store.approvals
        self.max_ptys = max_ptys
        self.actor = actor
        self._sessions: dict[str, AgentSession] = {}
        self._queue: deque[AgentConfig] = deque()
        self._listeners: list[Callable[[HostEvent], None]] = []
        self._pending: dict[str, int] = {}
        self._answering: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        become_subreaper()

    # ---- listening ---------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[HostEvent], None]) -> Callable[[], None]:
        """Call `listener` for every event; returns the function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, event: HostEvent) -> None:
        if isinstance(event, StateChanged):
            self._on_state(event)
        elif isinstance(event, Exited):
            self._spawn(self._start_queued())
        for listener in list(self._listeners):
            listener(event)

    def _spawn(self, coroutine: object) -> None:
        assert asyncio.iscoroutine(coroutine)
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    def queued(self) -> list[str]:
        """Agents waiting for a free PTY slot, in start order."""
        return [config.name for config in self._queue]

    def live_count(self) -> int:
        """Agents whose process is running."""
        return sum(1 for s in self._sessions.values() if s.pid is not None)

    async def start(self, config: AgentConfig) -> AgentState:
        """Start an agent, or queue it when every PTY slot is taken (never an error)."""
        current = self._sessions.get(config.name)
        if current is not None and current.exit_status is None and current.pty is not None:
            raise TundraError(f"agent {config.name!r} is already running")
        if any(queued.name == config.name for queued in self._queue):
            return AgentState.QUEUED
        session = AgentSession(config, self._emit)
        self._sessions[config.name] = session
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

    async def stop(self, name: str, grace: float = 3.0) -> ExitStatus | None:
        """Stop an agent and its whole process tree; a queued agent just leaves the queue."""
        for config in list(self._queue):
            if config.name == name:
                self._queue.remove(config)
                self._sessions[name].set_state(
                    AgentState.STOPPED, {"source": "process", "rule": "dequeued"}
                )
                return None
        status = await self.session(name).stop(grace)
        await self._expire_pending(name)
        return status

    async def restart(self, name: str) -> AgentState:
        """Stop and start again with the same configuration (a queued agent keeps its place)."""
        if name in self.queued():
            return AgentState.QUEUED
        config = self.session(name).config
        await self.stop(name)
        return await self.start(config)

    def interrupt(self, name: str) -> None:
        """Interrupt the agent's current turn with its runtime's keys (Esc, or Ctrl-C)."""
        session = self.session(name)
        session.write(session.adapter.interrupt_keys)

    async def close(self) -> None:
        """Stop every agent, expire what they were asking, and end the host's own work."""
        self._queue.clear()
        names = [s.name for s in self._sessions.values() if s.pid is not None]
        await asyncio.gather(*(self.stop(name) for name in names), return_exceptions=True)
        for name in list(self._pending):
            with contextlib.suppress(TundraError):
                await self._expire_pending(name)
        for session in self._sessions.values():
            session.cancel_tasks()
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

    async def send_text(self, name: str, text: str, *, retries: int = 2) -> Delivery:
        """Deliver a prompt the way a person types it, and check the agent took it.

        Literal text (several lines are joined into one), a pause that grows with
        its length, a separate Enter; then
        the screen must change and the text must leave the input line. If it
        does not, Enter is sent again (the text was typed but not submitted).
        """
        session = self.session(name)
        if "\x1b" in text or "\x03" in text:
            raise TundraError("text may not contain escape or interrupt characters; send keys")
        # A newline would submit early in most agents' input boxes: send one line.
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
        timing = session.adapter.timing
        session.last_input = text
        await session.settle(timing.settle, limit=3.0)
        session.write(text.encode())
        await asyncio.sleep(timing.pause_for(text))
        probe = text.strip().splitlines()[-1][-40:] if text.strip() else ""
        await self._echoed(session, probe)
        for attempt in range(1, retries + 2):
            typed_row = _row_holding(session, probe)
            session.write(session.adapter.submit_key)
            if await self._took_input(session, typed_row, probe):
                return Delivery(True, attempt, "the input line cleared or the agent started")
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

    async def _took_input(self, session: AgentSession, typed_row: int | None, probe: str) -> bool:
        deadline = asyncio.get_running_loop().time() + DELIVERY_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            rule = session.detection.evidence.rule if session.detection.evidence else ""
            started = session.state in (AgentState.WORKING, AgentState.AWAITING_APPROVAL)
            if started and not only_activity(rule):
                return True
            if not probe:
                return True
            if typed_row is not None and probe not in session.emulator.line_text(typed_row):
                return True
        return False

    # ---- approvals ---------------------------------------------------------------------------

    def _on_state(self, event: StateChanged) -> None:
        waiting = self._pending.get(event.agent)
        if event.state is AgentState.AWAITING_APPROVAL and waiting is None:
            if event.evidence.get("source") == "hook":
                return  # the hook's own request is adopted by `hook_permission`
            self._pending[event.agent] = -1  # claimed while the row is written
            self._spawn(self._request_or_release(event))
        elif (
            event.state is not AgentState.AWAITING_APPROVAL
            and waiting not in (None, -1)
            and waiting not in self._answering
        ):
            # The prompt went away unanswered (the agent moved on or was stopped).
            self._spawn(self._expire_pending(event.agent))

    async def _request_or_release(self, event: StateChanged) -> None:
        try:
            await self._request(event)
        except BaseException:
            if self._pending.get(event.agent) == -1:
                del self._pending[event.agent]  # let the next prompt be recorded
            raise

    async def _request(self, event: StateChanged) -> None:
        session = self._sessions[event.agent]
        tool, subject = extract_request(session.adapter.runtime.value, session.screen_lines())
        from_hook = event.evidence.get("source") == "hook"
        source = ApprovalSource.HOOK if from_hook else ApprovalSource.SCREEN
        approval = await self.approvals.request(
            agent=event.agent,
            runtime=session.adapter.runtime.value,
            subject=subject or str(event.evidence.get("matched", "")),
            tool=tool,
            cwd=str(session.config.launch.cwd),
            source=source,
            evidence=event.evidence,
            actor=event.agent,
        )
        if self._pending.get(event.agent) not in (-1, None):
            # A hook's request was adopted while this row was written: it wins.
            await self.approvals.decide(approval.id, ApprovalStatus.EXPIRED, actor=self.actor)
            return
        self._pending[event.agent] = approval.id
        for listener in list(self._listeners):
            listener(ApprovalRequested(approval))
        if session.state is not AgentState.AWAITING_APPROVAL:
            await self._expire_pending(event.agent)  # it moved on while the row was written

    def hook_state(self, agent: str, event: str, payload: dict[str, object]) -> None:
        """A state report from an agent's own hook (Claude Code): it outranks the screen."""
        session = self._sessions.get(agent)
        detection = from_hook_event(event, payload)
        if session is not None and session.exit_status is None and detection is not None:
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

    async def hook_permission(self, approval_id: int) -> None:
        """A permission request an agent's hook recorded: the one to answer."""
        await self._adopt_hook_request(approval_id)

    async def _adopt_hook_request(self, approval_id: int) -> None:
        """A hook's request replaces any screen-read one: it carries the exact command."""
        approval = await self.approvals.get(approval_id)
        if approval.status is not ApprovalStatus.PENDING:
            return
        session = self._sessions.get(approval.agent)
        if session is None or session.exit_status is not None:
            raise TundraError(f"agent {approval.agent!r} is not running here")
        previous = self._pending.get(approval.agent)
        self._pending[approval.agent] = approval.id
        if previous not in (None, -1, approval.id):
            superseded = await self.approvals.get(previous)
            if superseded.status is ApprovalStatus.PENDING:
                await self.approvals.decide(previous, ApprovalStatus.EXPIRED, actor=self.actor)
        detection = from_hook_event(
            "PermissionRequest", {"tool_name": approval.tool, "tool_input": approval.subject}
        )
        if detection is not None:
            session.observe_structured(detection)
        for listener in list(self._listeners):
            listener(ApprovalRequested(approval))

    async def reap_orphans(self, interval: float = 10.0) -> None:
        """Collect agents' orphans that exited after their agent did, until cancelled."""
        known: set[int] = set()
        while True:
            live, zombies = await asyncio.to_thread(adopted_agent_processes)
            reap(zombies & known)
            known = (known - zombies) | live
            await asyncio.sleep(interval)

    async def _expire_pending(self, agent: str) -> None:
        approval_id = self._pending.pop(agent, None)
        if approval_id is None or approval_id == -1:
            return
        approval = await self.approvals.get(approval_id)
        if approval.status is ApprovalStatus.PENDING:
            approval = await self.approvals.decide(
                approval_id, ApprovalStatus.EXPIRED, actor=self.actor
            )
            for listener in list(self._listeners):
                listener(ApprovalResolved(approval, verified=True))

    def pending_for(self, agent: str) -> int | None:
        """The id of the request an agent is waiting on, if it is recorded yet."""
        approval_id = self._pending.get(agent)
        return approval_id if approval_id not in (None, -1) else None

    async def approve(self, approval_id: int, *, actor: str | None = None) -> Approval:
        """Send the adapter's approve keys, check the prompt went away, record the decision."""
        return await self._answer(approval_id, ApprovalStatus.APPROVED, actor or self.actor)

    async def deny(self, approval_id: int, *, actor: str | None = None) -> Approval:
        """Send the adapter's deny keys, check the prompt went away, record the decision."""
        return await self._answer(approval_id, ApprovalStatus.DENIED, actor or self.actor)

    async def _deliver_keys(
        self, session: AgentSession, keys: bytes, agent: str, answer: ApprovalStatus
    ) -> None:
        for _ in range(2):
            # Keys sent within a moment of a prompt appearing are dropped (Claude Code drops
            # them for ~0.1 s); a prompt that keeps redrawing never goes quiet, so wait from
            # when it appeared rather than for silence.
            shown_for = time.monotonic() - session.state_since
            await asyncio.sleep(max(0.0, session.adapter.timing.settle - shown_for))
            session.write(keys)
            if await session.wait_for(
                lambda state: state is not AgentState.AWAITING_APPROVAL, VERIFY_TIMEOUT
            ):
                return
        # The request stays pending: the agent is still asking.
        raise TundraError(
            f"sent the {answer.value} keys to {agent}, but its prompt is still there; "
            "the request stays pending"
        )

    async def _answer_hook(
        self, session: AgentSession, approval_id: int, answer: ApprovalStatus, actor: str
    ) -> tuple[Approval, bool]:
        """The waiting hook process carries the decision; no keys are ever sent on top.

        Verified means the agent left the approval state; a long tool run or the
        next request can keep it there, so an unverified answer is reported, not retried.
        """
        decided = await self.approvals.decide(approval_id, answer, actor=actor)
        for listener in list(self._listeners):
            listener(ApprovalDecided(decided))
        verified = await session.wait_for(
            lambda state: state is not AgentState.AWAITING_APPROVAL, VERIFY_TIMEOUT
        )
        return decided, verified

    async def _answer(self, approval_id: int, answer: ApprovalStatus, actor: str) -> Approval:
        approval = await self.approvals.get(approval_id)
        if approval.status is not ApprovalStatus.PENDING:
            raise TundraError(f"approval {approval_id} was already {approval.status.value}")
        session = self.session(approval.agent)
        if self._pending.get(approval.agent) != approval_id:
            raise TundraError(f"agent {approval.agent!r} is no longer waiting on {approval_id}")
        keys = (
            session.adapter.approve_keys
            if answer is ApprovalStatus.APPROVED
            else session.adapter.deny_keys
        )
        self._answering.add(approval_id)
        try:
            if approval.source is ApprovalSource.HOOK:
                decided, verified = await self._answer_hook(session, approval_id, answer, actor)
            else:
                await self._deliver_keys(session, keys, approval.agent, answer)
                decided, verified = (
                    await self.approvals.decide(approval_id, answer, actor=actor),
                    True,
                )
        finally:
            self._answering.discard(approval_id)
        if self._pending.get(approval.agent) == approval_id:
            del self._pending[approval.agent]
        for listener in list(self._listeners):
            listener(ApprovalResolved(decided, verified=verified))
        return decided
