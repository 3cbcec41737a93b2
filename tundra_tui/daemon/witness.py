"""The witness: per-agent health, judged by `orchestra.witness` and acted on here.

It never polls. Each agent is judged when something about it changes (its state, an
approval, its dispatch in the store) and at the one moment the judgement said is
worth another look, with a timer per agent. What it does, each an event with its
reason:

- an agent idle with a delivered bead and no report gets a reminder, as mail from
  `witness` (the mailroom types it at the agent's next idle moment, like any mail);
  after `witness.max_nudges` reminders the bead is escalated, and the mayor and the
  operator are told;
- an agent working with no output for `witness.stall_seconds` is marked stalled;
- an approval waiting longer than `witness.approval_wait_seconds` goes to the
  operator's attention list with one bell, and runs `notify.command` once;
- an agent that dies, or is stopped or restarted by the operator (or by `at down`),
  holding a dispatch gives the bead back to backlog (branch and notes kept) and wakes
  the dispatcher, which hands it out again. Only a stop the dispatcher makes on purpose
  (retiring a polecat, a failed hand-over) is left alone: it gave the bead back itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tundra_tui.config import LayeredConfig
from tundra_tui.daemon.book import ApprovalBook, BookEvent
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import AttentionEvent, ChangedEvent, Event, TroubleEvent
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.beads import Action
from tundra_tui.domain.clock import parse_iso
from tundra_tui.domain.dispatch import Dispatch, DispatchState
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.orchestra import notices, notify
from tundra_tui.orchestra.witness import (
    STALLED_KEY,
    Act,
    AgentFacts,
    Limits,
    WitnessAction,
    judge,
    reminder,
)
from tundra_tui.session.agent import AgentSession
from tundra_tui.session.events import (
    ApprovalRequested,
    ApprovalResolved,
    Exited,
    HostEvent,
    ScreenChanged,
    StateChanged,
)
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store

ACTOR = "witness"
_STORE_KINDS = ("dispatch.", "bead.", "witness.nudged")
"""Stored events after which the open dispatches are read again."""


def monotonic_of(stamp: str, *, now_mono: float, now_wall: float) -> float | None:
    """A store timestamp on the monotonic clock the policy works in (None if empty)."""
    if not stamp:
        return None
    try:
        return now_mono - (now_wall - parse_iso(stamp).timestamp())
    except ValueError:
        return None


class Witness:
    """Watches every agent's health and acts on the policy's verdicts."""

    def __init__(
        self,
        store: Store,
        host: SessionHost,
        book: ApprovalBook,
        publish: Callable[[Event], None],
        log: DaemonLog,
        own: Callable[[Awaitable[Any]], None],
        wake_dispatch: Callable[[str], None],
        *,
        config: Callable[[], LayeredConfig] | None = None,
        offer_mail: Callable[[str], None] | None = None,
        on_purpose: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.book = book
        self.publish = publish
        self.log = log
        self._own = own
        self.wake_dispatch = wake_dispatch
        self._config = config
        """The team's configuration now (for the mayors an escalation is mailed to)."""
        self._offer_mail = offer_mail
        """The mailroom's `offer`: a reminder is typed at once if the agent sits idle."""
        self._on_purpose = on_purpose
        """The dispatcher's `retiring`: it stops this agent itself (and settled its bead)."""
        self.limits = Limits()
        self.notify_command = ""
        self._dispatches: dict[str, Dispatch] = {}
        """Each agent's open dispatch, as last read from the store."""
        self._done: defaultdict[str, set[str]] = defaultdict(set)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._nudged_at: dict[int, float] = {}
        """When the last reminder for a dispatch (by id) was sent, monotonic."""
        self._approval_since: dict[int, float] = {}
        self._refreshing: asyncio.Task[None] | None = None
        self._again = False

    def configure(self, config: LayeredConfig) -> None:
        self.limits = Limits(
            idle_nudge=float(config.get("witness.idle_nudge_seconds")),
            max_nudges=int(config.get("witness.max_nudges")),
            stall=float(config.get("witness.stall_seconds")),
            approval_wait=float(config.get("witness.approval_wait_seconds")),
        )
        self.notify_command = str(config.get("notify.command"))

    async def start(self) -> None:
        """Read the open dispatches once, before the first judgement."""
        await self._refresh()

    # ---- what wakes it ---------------------------------------------------------------------

    def on_host(self, event: HostEvent) -> None:
        if isinstance(event, StateChanged):
            self.check(event.agent)
        elif isinstance(event, ScreenChanged):
            if STALLED_KEY in self._done.get(event.agent, ()):
                self.check(event.agent)  # a stalled agent printed: lift the mark
        elif isinstance(event, Exited):
            # Read now, not in the task: a restart starts the agent again (no longer
            # STOPPED) and the dispatcher forgets a retiring polecat once it is stopped.
            session = self._session(event.agent)
            stopped = session is not None and session.state is AgentState.STOPPED
            on_purpose = self._on_purpose is not None and self._on_purpose(event.agent)
            self._own(self._exited(event, stopped=stopped, on_purpose=on_purpose))

    def on_book(self, event: BookEvent) -> None:
        approval = event.approval
        if isinstance(event, ApprovalRequested):
            self._approval_since.setdefault(approval.id, time.monotonic())
        elif isinstance(event, ApprovalResolved):
            self._approval_since.pop(approval.id, None)
        self.check(approval.agent)

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """Stored events (the tail): a dispatch, bead or report changed: read them again."""
        if any(e.kind.startswith(_STORE_KINDS) for e in events):
            self.refresh()

    def refresh(self) -> None:
        """Read the open dispatches again soon (coalesced), then judge every agent."""
        if self._refreshing is not None and not self._refreshing.done():
            self._again = True
            return
        self._refreshing = asyncio.ensure_future(self._refresh())
        self._own(self._refreshing)

    async def _refresh(self) -> None:
        while True:
            self._again = False
            rows = await self.store.dispatches.open()
            previous = set(self._dispatches)
            self._dispatches = {d.agent: d for d in rows}
            for agent in previous | set(self._dispatches):
                self.check(agent)
            if not self._again:
                return

    # ---- judging ---------------------------------------------------------------------------

    def _session(self, agent: str) -> AgentSession | None:
        try:
            return self.host.session(agent)
        except NotFound:
            return None

    def facts(self, agent: str, session: AgentSession) -> AgentFacts:
        """What the policy needs, on the monotonic clock."""
        now_mono, now_wall = time.monotonic(), time.time()

        def mono(stamp: str) -> float | None:
            return monotonic_of(stamp, now_mono=now_mono, now_wall=now_wall)

        dispatch = self._dispatches.get(agent)
        delivered = dispatch is not None and dispatch.state is DispatchState.DELIVERED
        waiting = self.book.pending(agent)
        approval = waiting[0] if waiting else None
        approval_since = None
        if approval is not None:
            approval_since = self._approval_since.get(approval.id)
            if approval_since is None:
                approval_since = mono(approval.created_at) or now_mono
                self._approval_since[approval.id] = approval_since
        return AgentFacts(
            name=agent,
            role="",
            state=session.state,
            state_since=session.state_since,
            last_output=session.last_output,
            bead=dispatch.bead_id if dispatch is not None and delivered else None,
            delivered_at=mono(dispatch.delivered_at) if dispatch is not None else None,
            reported_at=mono(dispatch.reported_at) if dispatch is not None else None,
            nudges=dispatch.nudges if dispatch is not None else 0,
            approval_id=approval.id if approval is not None else None,
            approval_since=approval_since,
            nudged_at=self._nudged_at.get(dispatch.id) if dispatch is not None else None,
        )

    def check(self, agent: str) -> None:
        """Judge `agent` now: act on what is due, and look again when the policy says."""
        timer = self._timers.pop(agent, None)
        if timer is not None:
            timer.cancel()
        session = self._session(agent)
        if session is None or session.pid is None:
            self._done.pop(agent, None)
            return
        now = time.monotonic()
        done = self._done[agent]
        actions, next_check = judge(self.facts(agent, session), self.limits, now, frozenset(done))
        for action in actions:
            if action.act is Act.UNSTALLED:
                done.discard(action.key)
            else:
                done.add(action.key)
            self._own(self._act(agent, action))
        if next_check is not None:
            delay = max(next_check - now, 0.0) + 0.01
            loop = asyncio.get_running_loop()
            self._timers[agent] = loop.call_later(delay, self.check, agent)

    # ---- acting ----------------------------------------------------------------------------

    async def _act(self, agent: str, action: WitnessAction) -> None:
        self.log.info(f"witness.{action.act.value}", agent=agent, reason=action.reason)
        if action.act is Act.NUDGE:
            await self._nudge(agent, action)
        elif action.act is Act.ESCALATE:
            await self._escalate(agent, action)
        elif action.act is Act.STALLED:
            await self._record("witness.stalled", agent, action)
            self.publish(TroubleEvent(agent=agent, kind="stalled", matched=action.reason))
        elif action.act is Act.UNSTALLED:
            session = self._session(agent)
            self.publish(TroubleEvent(agent=agent, kind=session.trouble if session else ""))
        elif action.act is Act.APPROVAL_WAIT:
            await self._approval_wait(agent, action)

    async def _record(self, kind: str, agent: str, action: WitnessAction, **data: Any) -> None:
        payload: dict[str, Any] = {"reason": action.reason, **data}
        if action.approval is not None:
            payload["approval"] = action.approval
        await self.store.events.record(
            kind, actor=ACTOR, agent=agent, bead_id=action.bead, data=payload
        )

    async def _nudge(self, agent: str, action: WitnessAction) -> None:
        dispatch = self._dispatches.get(agent)
        if dispatch is None or action.bead is None or dispatch.bead_id != action.bead:
            return
        self._nudged_at[dispatch.id] = time.monotonic()
        await self.store.mail.send(
            ACTOR, agent, reminder(action.bead), actor=ACTOR, subject=f"#{action.bead} reminder"
        )
        await self.store.dispatches.nudged(dispatch.id, actor=ACTOR, reason=action.reason)
        self.publish(ChangedEvent(what="mail"))
        if self._offer_mail is not None:
            self._offer_mail(agent)
        self.refresh()

    async def _escalate(self, agent: str, action: WitnessAction) -> None:
        if action.bead is None:
            return
        try:
            bead = await self.store.beads.apply(
                action.bead, Action.ESCALATE, actor=ACTOR, reason=action.reason
            )
        except TundraError as error:  # the bead moved meanwhile (a late report): fine
            self.log.info("witness.escalate_skipped", agent=agent, error=str(error))
            return
        await self._record("witness.escalated", agent, action)
        if self._config is not None:
            await notices.tell_mayor_and_operator(
                self.store,
                self._config(),
                sender=ACTOR,
                bead=bead,
                kind="escalate",
                text=action.reason,
            )
        self.publish(
            AttentionEvent(agent=agent, kind="escalated", reason=action.reason, bead=action.bead)
        )
        self.publish(ChangedEvent(what="beads"))
        self.publish(ChangedEvent(what="mail"))
        self.refresh()

    async def _approval_wait(self, agent: str, action: WitnessAction) -> None:
        await self._record("witness.approval_wait", agent, action)
        self.publish(
            AttentionEvent(
                agent=agent,
                kind="approval_wait",
                reason=action.reason,
                bead=action.bead,
                approval=action.approval,
                bell=True,
            )
        )
        if self.notify_command:
            failed = await notify.run(
                self.notify_command, f"auto-tundra: {agent} waits", action.reason
            )
            if failed is not None:
                await self._record("witness.notify_failed", agent, action, error=failed)

    async def _exited(self, event: Exited, *, stopped: bool, on_purpose: bool) -> None:
        """An agent that died, or that the operator stopped or restarted, holding a dispatch
        gives its bead back: otherwise the bead stays hooked to an agent that is not working
        on it and a polecat dispatch with no live agent counts as starting for ever."""
        agent = event.agent
        self._done.pop(agent, None)
        timer = self._timers.pop(agent, None)
        if timer is not None:
            timer.cancel()
        session = self._session(agent)
        if session is None or on_purpose:
            return  # the dispatcher stops it on purpose and settles its bead itself
        dispatch = await self.store.dispatches.open_for_agent(agent)
        if dispatch is None:
            return
        if stopped:
            reason = "stopped by the operator"  # `at agent stop|restart`, `at down`
            kind = "witness.agent_stopped"
        else:
            status = session.exit_status
            reason = f"{agent} died ({status.describe() if status else 'exited'})"
            kind = "witness.agent_died"
        returned = await self.store.dispatches.give_back(dispatch.id, reason=reason, actor=ACTOR)
        if returned is None:
            return  # closed meanwhile (a report, or the hand-over gave it back itself)
        await self.store.events.record(
            kind,
            actor=ACTOR,
            agent=agent,
            bead_id=dispatch.bead_id,
            data={"reason": reason, "dispatch": dispatch.id},
        )
        self.log.info(kind, agent=agent, bead=dispatch.bead_id, reason=reason)
        self.publish(ChangedEvent(what="beads"))
        self.publish(ChangedEvent(what="dispatch"))
        self.refresh()
        self.wake_dispatch(
            f"{agent} {'stopped' if stopped else 'died'} holding #{dispatch.bead_id}"
        )
