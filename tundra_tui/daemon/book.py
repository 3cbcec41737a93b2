"""The approval book: the one owner of every approval request, its answer and its keys.

Only the operator approves, and exactly what was shown:

- One prompt is one request. When an agent's hook reports the prompt the screen
  already showed, the request is upgraded in place (same id, the hook's exact
  words); every change is one event, so every client and `at approvals` agree.
- The book gives request ids itself and writes through the daemon's ordered
  writer, so a request is shown at once and kept even while the database is
  locked or the disk is full.
- Right before the answer keys are sent, the prompt is read again; if it no longer
  asks what was shown, nothing is sent and it becomes a new request. Keys are
  sent once, never again blindly; a prompt that shows after them is a new request.
- Input from inside an agent's process tree never types into an agent while a
  request is pending, and raw keys from an agent are always refused.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.approvals import Approval, ApprovalSource, ApprovalStatus
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.redact import redact
from tundra_tui.session.agent import AgentSession
from tundra_tui.session.detect import Detection
from tundra_tui.session.events import (
    ApprovalRequested,
    ApprovalResolved,
    Exited,
    HostEvent,
    ScreenChanged,
    StateChanged,
)
from tundra_tui.session.hooks import PermissionAsk, hook_detection
from tundra_tui.session.host import SessionHost
from tundra_tui.session.requests import extract_request
from tundra_tui.store import Store

from .writer import StoreWriter

VERIFY_TIMEOUT = 5.0
"""How long the prompt may take to leave after the answer keys."""
HOOK_GRACE = 1.5
"""A runtime with hooks reports its prompt this long after drawing it, at most (real
Claude Code: 4 ms to 1.2 s): a screen request younger than this waits for the hook."""
REREAD_DELAY = 0.1
"""A screen request is read again this long after its rows change (coalesced)."""
TYPED_WINDOW = 5.0
"""Keys the operator typed into an agent this recently may have answered its prompt."""
REOPEN_DELAY = 1.0
"""After a hook's request closes unanswered (the hook died or timed out), a prompt still on
screen this much later is asked anew."""
ANSWERED_REOPEN_DELAY = 5.0
"""The same after an answer went back through the hook: the agent acts on it and clears its
prompt. On a loaded machine real Claude Code redrew the prompt first, and that redraw was
listed as a new request that expired a quarter second later (see `_clearing`). Still
showing this much later, the answer evidently never reached the agent."""
REMEMBERED = 512
"""Closed requests remembered for error messages (`already approved`, `replaced by`)."""
_HOOKED_RUNTIMES = frozenset({Runtime.CLAUDE})

BookEvent = ApprovalRequested | ApprovalResolved


def read_prompt(session: AgentSession) -> tuple[str, str] | None:
    """(tool, subject) of the approval prompt on the agent's screen now, or None if none shows.

    The runtime's block is read where it is known; otherwise the whole text the
    approval rule matched is the subject (custom runtimes), never a shortened one:
    what is compared before the keys must be everything the operator approves.
    """
    whole = session.prompt_now()
    if whole is None:
        return None
    runtime = session.adapter.runtime.value
    tool, subject = extract_request(runtime, session.screen_lines())
    if not subject:
        # A command wider than the screen pushes its block's first rows above the rows
        # detection reads (Codex's and Claude's at 80x24): the block is read off the whole
        # screen, up from the same last closing line, rather than listed as the menu line.
        emulator = session.emulator
        tool, subject = extract_request(runtime, emulator.bottom(emulator.rows))
    return (tool, subject) if subject else ("", whole)


def clean(text: str) -> str:
    """Text fit to store: a lone surrogate (JSON lets a payload carry one) becomes U+FFFD,
    so the request can always be written and its audit trail is never lost."""
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")
_NOISE = re.compile(r"[\s│┃╹╻|╭╮╰╯─]+")


def same_prompt(hooked: str, shown: str) -> bool:
    """True if a hook's words and a screen request's are about the same prompt (spacing
    and box frames aside, and a screen may show only the start of a long command): only
    then does the hook's request take the screen's over."""
    hook, screen = _NOISE.sub("", hooked), _NOISE.sub("", shown)
    return bool(hook and screen) and (hook[:60] in screen or screen[:60] in hook)


@dataclass(eq=False)
class _Open:
    """A request still waiting, with what the book must remember about it."""

    approval: Approval
    shown: str
    """The subject as shown to the operator: what an answer applies to."""
    answering: bool = False
    sending: bool = False
    """The answer keys are being sent: a hook can no longer take the request over."""
    hook: asyncio.Future[Approval] | None = None
    typed: bytearray = field(default_factory=bytearray)
    typed_at: float = 0.0
    opened_at: float = field(default_factory=time.monotonic)


class ApprovalBook:
    """Every approval request of the daemon's agents; see the module docstring."""

    def __init__(
        self,
        host: SessionHost,
        store: Store,
        writer: StoreWriter,
        *,
        actor: str = "daemon",
    ) -> None:
        self.host = host
        self.store = store
        self.writer = writer
        self.actor = actor
        self._open: dict[str, _Open] = {}
        self._by_id: dict[int, _Open] = {}
        self._closed: OrderedDict[int, Approval] = OrderedDict()
        self._replaced: OrderedDict[int, int] = OrderedDict()
        self._next_id = 1
        self._listeners: list[Callable[[BookEvent], None]] = []
        self._rereads: dict[str, asyncio.TimerHandle] = {}
        self._clearing: dict[str, tuple[str, float]] = {}
        """Per agent, the prompt last answered through its hook and when (monotonic): the
        agent is clearing it, and the screen still showing it then is not a new request."""
        host.subscribe(self._on_host_event)

    async def load(self) -> None:
        """Continue the store's ids; requests left pending by a daemon that died are dead."""
        self._next_id = await self.store.approvals.next_id()
        for stale in await self.store.approvals.pending():
            self.writer.submit(f"approval {stale.id} expired", self._expire_stale(stale.id))

    def _expire_stale(self, approval_id: int) -> Callable[[], Awaitable[Approval]]:
        return lambda: self.store.approvals.decide(
            approval_id,
            ApprovalStatus.EXPIRED,
            actor=self.actor,
            reason="its daemon ended before it was answered",
        )

    # ---- reading -----------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[BookEvent], None]) -> None:
        """Call `listener` for every request opened, upgraded, decided or closed."""
        self._listeners.append(listener)

    def pending(self, agent: str | None = None) -> list[Approval]:
        """Requests still waiting, oldest first: what every client shows."""
        entries = sorted(self._by_id.values(), key=lambda entry: entry.approval.id)
        return [e.approval for e in entries if agent is None or e.approval.agent == agent]

    def pending_for(self, agent: str) -> int | None:
        """The id of the request an agent is waiting on, if any."""
        entry = self._open.get(agent)
        return entry.approval.id if entry is not None else None

    def get(self, approval_id: int) -> Approval | None:
        """A request the book holds or has recently closed."""
        entry = self._by_id.get(approval_id)
        return entry.approval if entry is not None else self._closed.get(approval_id)

    # ---- opening and closing -----------------------------------------------------------------

    def _emit(self, event: BookEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _open_request(
        self,
        session: AgentSession,
        *,
        tool: str,
        subject: str,
        source: ApprovalSource,
        evidence: dict[str, Any],
        cwd: str = "",
    ) -> _Open:
        subject, tool, cwd = clean(subject), clean(tool), clean(cwd)
        approval = Approval(
            id=self._next_id,
            agent=session.name,
            runtime=session.adapter.runtime.value,
            subject=subject,
            source=source,
            tool=tool,
            cwd=cwd or str(session.config.launch.cwd),
            evidence=evidence,
            created_at=self.store.db.now(),
        )
        self._next_id += 1
        entry = _Open(approval, shown=subject)
        self._open[session.name] = entry
        self._by_id[approval.id] = entry
        stored = replace(approval, subject=redact(subject))
        self.writer.submit(
            f"approval {approval.id} requested",
            lambda: self.store.approvals.record(stored, actor=session.name),
        )
        self._emit(ApprovalRequested(approval))
        return entry

    def _open_from_screen(
        self, session: AgentSession, evidence: dict[str, Any], *, reopen: bool = False
    ) -> _Open | None:
        """A request for the prompt the screen shows now; none when no prompt shows (the
        published state lags the screen, and an empty request would only flash by), nor
        while the agent is clearing a prompt answered through its hook (see `_clearing`)
        unless `reopen`: that prompt still showing `ANSWERED_REOPEN_DELAY` later."""
        seen = read_prompt(session)
        if seen is None or not seen[1]:
            return None
        tool, subject = seen
        clearing = self._clearing.get(session.name)
        if clearing is not None and not reopen:
            answered, at = clearing
            if time.monotonic() - at >= ANSWERED_REOPEN_DELAY:
                del self._clearing[session.name]
            elif same_prompt(answered, subject):
                # Real Claude Code redraws a fraction of a second after its hook's answer:
                # a request opened meanwhile was a phantom that expired at once.
                return None
        return self._open_request(
            session,
            tool=tool,
            subject=subject,
            source=ApprovalSource.SCREEN,
            evidence=dict(evidence),
        )

    def _close(self, entry: _Open, status: ApprovalStatus, *, actor: str, reason: str) -> Approval:
        """Record an answer or expiry once: one event, one queued write, the hook told."""
        approval = entry.approval
        if self._by_id.get(approval.id) is not entry:
            return self._closed.get(approval.id, approval)  # already closed: never twice
        decided = replace(approval, status=status, decided_at=self.store.db.now(), decided_by=actor)
        self._by_id.pop(approval.id, None)
        if self._open.get(approval.agent) is entry:
            del self._open[approval.agent]
            handle = self._rereads.pop(approval.agent, None)
            if handle is not None:
                handle.cancel()
        self._remember(self._closed, approval.id, decided)
        self.writer.submit(
            f"approval {approval.id} {status.value}",
            lambda: self.store.approvals.decide(
                approval.id, status, actor=actor, reason=reason, at=decided.decided_at
            ),
        )
        if entry.hook is not None and not entry.hook.done():
            entry.hook.set_result(decided)
            # A prompt still showing once its hook is closed is asked anew.
            delay = REOPEN_DELAY
            if status is not ApprovalStatus.EXPIRED:
                delay = ANSWERED_REOPEN_DELAY
                self._clearing[approval.agent] = (entry.shown, time.monotonic())
            asyncio.get_running_loop().call_later(delay, self._reopen, approval.agent)
        self._emit(ApprovalResolved(decided, verified=status is not ApprovalStatus.EXPIRED))
        return decided

    @staticmethod
    def _remember(table: OrderedDict[int, Any], key: int, value: Any) -> None:
        table[key] = value
        while len(table) > REMEMBERED:
            table.popitem(last=False)

    def _supersede(self, entry: _Open, session: AgentSession, reason: str) -> _Open | None:
        """The prompt changed under a request: close it and open one for what shows now."""
        self._close(entry, ApprovalStatus.EXPIRED, actor=self.actor, reason=reason)
        fresh = self._open_from_screen(session, dict(entry.approval.evidence))
        if fresh is not None:
            self._remember(self._replaced, entry.approval.id, fresh.approval.id)
        return fresh

    def _reopen(self, agent: str) -> None:
        """After a hook's request closed: a prompt still on screen is a request again, so an
        agent is never left at `!` with nothing listed (its hook died, or was stale)."""
        session = self._session(agent)
        if session is None or agent in self._open:
            return
        if session.state is AgentState.AWAITING_APPROVAL:
            self._open_from_screen(
                session,
                {"source": "screen", "rule": "prompt still showing after its hook"},
                reopen=True,
            )

    # ---- what the agents do ------------------------------------------------------------------

    def _on_host_event(self, event: HostEvent) -> None:
        if isinstance(event, StateChanged):
            self._on_state(event)
        elif isinstance(event, ScreenChanged):
            # The PTY read path: only an agent showing a prompt costs more than a lookup.
            entry = self._open.get(event.agent)
            if entry is None:
                session = self._session(event.agent)
                if session is not None and session.state is AgentState.AWAITING_APPROVAL:
                    self._schedule_reread(event.agent)
            elif entry.approval.source is ApprovalSource.SCREEN:
                self._schedule_reread(event.agent)
        elif isinstance(event, Exited):
            entry = self._open.get(event.agent)
            if entry is not None and not entry.answering:  # an answer in flight records itself
                self._close(
                    entry, ApprovalStatus.EXPIRED, actor=self.actor, reason="the agent exited"
                )

    def _on_state(self, event: StateChanged) -> None:
        entry = self._open.get(event.agent)
        if event.state is AgentState.AWAITING_APPROVAL:
            if entry is None and event.evidence.get("source") != "hook":
                session = self._session(event.agent)
                if session is not None:
                    self._open_from_screen(session, event.evidence)
            return
        if entry is not None and not entry.answering:
            if self._hook_holds(entry):
                return
            self._left_unanswered(entry)

    def _hook_holds(self, entry: _Open) -> bool:
        """Codex draws no prompt while its PermissionRequest hook waits (its screen says a
        hook runs, and 0.150.1's can read idle): the request lasts as long as the hook does,
        and the agent is shown awaiting approval again."""
        session = self._session(entry.approval.agent)
        if (
            session is None
            or session.adapter.runtime is not Runtime.CODEX
            or entry.hook is None
            or entry.hook.done()
        ):
            return False
        detection = hook_detection(
            Runtime.CODEX,
            "PermissionRequest",
            {"tool_name": entry.approval.tool, "tool_input": entry.approval.subject},
        )
        if detection is not None:
            # Not from inside this state event: the session is publishing it right now.
            asyncio.get_running_loop().call_soon(self._hold, entry, session, detection)
        return True

    def _hold(self, entry: _Open, session: AgentSession, detection: Detection) -> None:
        if self._by_id.get(entry.approval.id) is entry and session.exit_status is None:
            session.observe_structured(detection)

    def _left_unanswered(self, entry: _Open) -> None:
        """The prompt went away with no answer from the book: the operator may have typed
        it in the agent's own terminal (`at session attach`); otherwise it expired."""
        session = self._session(entry.approval.agent)
        status, reason = ApprovalStatus.EXPIRED, "the prompt went away unanswered"
        typed = bytes(entry.typed)
        if session is not None and typed and time.monotonic() - entry.typed_at < TYPED_WINDOW:
            adapter = session.adapter
            if adapter.approve_keys and typed.endswith(adapter.approve_keys):
                status, reason = ApprovalStatus.APPROVED, "answered in the agent's terminal"
            elif adapter.deny_keys and typed.endswith(adapter.deny_keys):
                status, reason = ApprovalStatus.DENIED, "answered in the agent's terminal"
        actor = "operator" if status is not ApprovalStatus.EXPIRED else self.actor
        self._close(entry, status, actor=actor, reason=reason)

    def _schedule_reread(self, agent: str) -> None:
        if agent not in self._rereads:
            loop = asyncio.get_running_loop()
            self._rereads[agent] = loop.call_later(REREAD_DELAY, self._reread, agent)

    def _reread(self, agent: str) -> None:
        """A screen request whose prompt now asks something else is replaced, at once; a
        prompt that finished drawing after the state said `awaiting` is listed now."""
        self._rereads.pop(agent, None)
        entry = self._open.get(agent)
        session = self._session(agent)
        if session is None:
            return
        if entry is None:
            if session.state is AgentState.AWAITING_APPROVAL:
                self._open_from_screen(session, {"source": "screen", "rule": "prompt drawn"})
            return
        if entry.answering:
            return
        if entry.approval.source is not ApprovalSource.SCREEN:
            return
        seen = read_prompt(session)
        if seen is not None and seen[1] and seen[1] != entry.shown:
            self._supersede(entry, session, "the prompt changed before it was answered")

    def _session(self, agent: str) -> AgentSession | None:
        try:
            session = self.host.session(agent)
        except NotFound:
            return None
        return session if session.exit_status is None else None

    # ---- hooks -------------------------------------------------------------------------------

    async def hook_request(
        self, agent: str, ask: PermissionAsk, evidence: dict[str, Any], timeout: float
    ) -> Approval:
        """A PermissionRequest from the agent's hook: wait for the operator's answer.

        The screen may have shown the same prompt first: that request is upgraded in
        place with the hook's exact words. No answer in time, or the hook hanging
        up, expires the request: nothing is approved without a human.
        """
        session = self._session(agent)
        if session is None:
            raise TundraError(f"agent {agent!r} is not running here")
        future: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()
        entry = self._open.get(agent)
        if entry is not None and entry.sending and entry.hook is None:
            # The keys for this very prompt are on their way: the hook hears that answer.
            entry.hook = future
            return await self._wait_hook(entry, future, timeout)
        if (
            entry is not None
            and entry.approval.source is ApprovalSource.SCREEN
            and entry.hook is None
            and same_prompt(ask.subject, entry.shown)
        ):
            entry.approval = replace(
                entry.approval,
                subject=clean(ask.subject),
                tool=clean(ask.tool),
                cwd=clean(ask.cwd) or entry.approval.cwd,
                source=ApprovalSource.HOOK,
                evidence=evidence,
            )
            entry.shown = entry.approval.subject
            stored = replace(entry.approval, subject=redact(entry.approval.subject))
            self.writer.submit(
                f"approval {stored.id} upgraded",
                lambda: self.store.approvals.upgrade(stored, actor=agent),
            )
            self._emit(ApprovalRequested(entry.approval))
        else:
            if entry is not None and not entry.answering:
                # Another prompt than the one listed (or a second hook): never relabel a
                # request; the screen's is asked again once the hook's is closed.
                self._close(
                    entry,
                    ApprovalStatus.EXPIRED,
                    actor=self.actor,
                    reason="the agent's hook asked about another prompt",
                )
            elif entry is not None:
                raise TundraError(f"{agent} is being answered; its hook asked about another prompt")
            entry = self._open_request(
                session,
                tool=ask.tool,
                subject=ask.subject,
                source=ApprovalSource.HOOK,
                evidence=evidence,
                cwd=ask.cwd,
            )
        entry.hook = future
        detection = hook_detection(
            session.adapter.runtime,
            "PermissionRequest",
            {"tool_name": ask.tool, "tool_input": ask.subject},
        )
        if detection is not None:
            session.observe_structured(detection)
        return await self._wait_hook(entry, future, timeout)

    async def _wait_hook(
        self, entry: _Open, future: asyncio.Future[Approval], timeout: float
    ) -> Approval:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except (TimeoutError, asyncio.CancelledError) as error:
            if self._by_id.get(entry.approval.id) is entry and not entry.answering:
                reason = (
                    "no answer in time" if isinstance(error, TimeoutError) else "the hook hung up"
                )
                self._close(entry, ApprovalStatus.EXPIRED, actor=self.actor, reason=reason)
            if isinstance(error, asyncio.CancelledError):
                raise
            raise TundraError("no answer from the operator in time") from None

    # ---- the operator ------------------------------------------------------------------------

    async def approve(self, approval_id: int, *, actor: str, seen: str | None = None) -> Approval:
        """Approve exactly the request shown, once; see `_answer`."""
        return await self._answer(approval_id, ApprovalStatus.APPROVED, actor, seen)

    async def deny(self, approval_id: int, *, actor: str, seen: str | None = None) -> Approval:
        """Deny exactly the request shown, once; see `_answer`."""
        return await self._answer(approval_id, ApprovalStatus.DENIED, actor, seen)

    def _gone(self, approval_id: int) -> TundraError:
        replaced = self._replaced.get(approval_id)
        if replaced is not None:
            now = self.get(replaced)
            asks = f" it now asks {now.subject!r}" if now is not None else ""
            return TundraError(
                f"approval {approval_id} was replaced by {replaced}: the agent's prompt "
                f"changed;{asks} — nothing was sent"
            )
        closed = self._closed.get(approval_id)
        if closed is not None:
            return TundraError(f"approval {approval_id} was already {closed.status.value}")
        return NotFound(f"no approval {approval_id} is waiting (see `at approvals`)")

    @staticmethod
    def _unseen(entry: _Open, seen: str | None) -> TundraError | None:
        """The request no longer says what the operator answered (its hook's exact words
        arrived since): the answer must not apply to words nobody read."""
        if seen is None or seen == entry.shown:
            return None
        return TundraError(
            f"approval {entry.approval.id} now asks {entry.shown!r}, not what you answered; "
            "nothing was sent — read it again and answer again"
        )

    async def _answer(
        self, approval_id: int, answer: ApprovalStatus, actor: str, seen: str | None
    ) -> Approval:
        entry = self._by_id.get(approval_id)
        if entry is None:
            raise self._gone(approval_id)
        if entry.answering:
            raise TundraError(f"approval {approval_id} is being answered already")
        if (changed := self._unseen(entry, seen)) is not None:
            raise changed
        session = self._session(entry.approval.agent)
        if session is None:
            self._close(entry, ApprovalStatus.EXPIRED, actor=self.actor, reason="agent gone")
            raise TundraError(f"agent {entry.approval.agent!r} is no longer running")
        entry.answering = True
        try:
            await self._wait_for_hook(entry, session)
            if self._by_id.get(approval_id) is not entry:
                raise self._gone(approval_id)
            if (changed := self._unseen(entry, seen)) is not None:
                raise changed
            if entry.approval.source is ApprovalSource.HOOK:
                # The waiting hook carries the decision; no keys are ever sent on top.
                return self._close(entry, answer, actor=actor, reason="answered through its hook")
            return await self._answer_with_keys(entry, session, answer, actor)
        finally:
            entry.answering = False
            entry.sending = False
            if self._by_id.get(approval_id) is entry and session.state is not (
                AgentState.AWAITING_APPROVAL
            ):
                self._left_unanswered(entry)

    async def _wait_for_hook(self, entry: _Open, session: AgentSession) -> None:
        """A screen request of a runtime with hooks is likely upgraded within moments."""
        if session.adapter.runtime not in _HOOKED_RUNTIMES:
            return
        deadline = entry.opened_at + HOOK_GRACE
        while entry.approval.source is ApprovalSource.SCREEN and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _answer_with_keys(
        self, entry: _Open, session: AgentSession, answer: ApprovalStatus, actor: str
    ) -> Approval:
        # Keys sent within a moment of a prompt appearing are dropped (Claude Code drops
        # them for ~0.1 s); wait from when it appeared rather than for silence.
        shown_for = time.monotonic() - session.state_since
        await asyncio.sleep(max(0.0, session.adapter.timing.settle - shown_for))
        seen = read_prompt(session)
        if session.state is not AgentState.AWAITING_APPROVAL or seen is None:
            self._close(
                entry,
                ApprovalStatus.EXPIRED,
                actor=self.actor,
                reason="the prompt went away before the answer",
            )
            raise TundraError(
                f"{entry.approval.agent}'s prompt went away before the answer; nothing was sent"
            )
        if seen[1] != entry.shown:
            fresh = self._supersede(entry, session, "the prompt changed before the answer")
            now = (
                f": it now asks {fresh.approval.subject!r} (approval {fresh.approval.id})"
                if fresh is not None
                else ""
            )
            raise TundraError(
                f"{entry.approval.agent}'s prompt changed since it was shown{now}; nothing was sent"
            )
        keys = (
            session.adapter.approve_keys
            if answer is ApprovalStatus.APPROVED
            else session.adapter.deny_keys
        )
        entry.sending = True
        session.write(keys)
        if not await self._prompt_left(session, entry.shown):
            raise TundraError(
                f"sent the {answer.value} keys to {entry.approval.agent} once, but its prompt "
                "is still there; the request stays pending (answer again to send them again)"
            )
        decided = self._close(entry, answer, actor=actor, reason="answered with the runtime's keys")
        # Whatever prompt shows now is a new request, never answered by this decision.
        if session.name not in self._open:
            self._open_from_screen(session, {"source": "screen", "rule": "next prompt"})
        return decided

    async def _prompt_left(self, session: AgentSession, shown: str) -> bool:
        """True once the prompt answered is gone: another state, no prompt, or another one."""
        deadline = time.monotonic() + VERIFY_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if session.exit_status is not None:
                return True
            if session.state is not AgentState.AWAITING_APPROVAL:
                return True
            seen = read_prompt(session)
            if seen is None or seen[1] != shown:
                return True
        return False

    # ---- input from others -------------------------------------------------------------------

    def operator_typed(self, agent: str, data: bytes) -> None:
        """Keys the operator typed into an agent: they may answer its prompt themselves."""
        entry = self._open.get(agent)
        if entry is not None and not entry.answering:
            entry.typed += data
            del entry.typed[:-64]
            entry.typed_at = time.monotonic()

    def check_input(self, target: str, *, from_agent: bool, raw: bool) -> None:
        """Refuse input from inside an agent that could answer a prompt.

        Raw keys from an agent can do anything an operator can (Esc, arrows, `y`),
        so they are always refused; text is refused while any request is pending
        and into an agent that shows a prompt.
        """
        if not from_agent:
            return
        if raw:
            raise TundraError(
                "keys from inside an agent are refused; agents talk to each other with `at mail`"
            )
        if self._by_id:
            raise TundraError(
                "an approval is pending: nothing from inside an agent may type into an agent "
                "until the operator has answered it"
            )
        session = self._session(target)
        if session is not None and session.state is AgentState.AWAITING_APPROVAL:
            raise TundraError(f"{target} is showing an approval prompt; only the operator answers")
