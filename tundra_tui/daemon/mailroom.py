"""Mail between turns: an agent's unread mail is handed to it when it turns idle.

One batch per idle turn, typed as one line with a header (`domain.handover.mail_text`),
never into a working agent and never over an approval prompt. Each batch is a
delivery row reserved before the first key is typed and closed after the agent took
it (or released when it did not), so a crash in between is settled at the next start
by the evidence rule (`MailRepo.recover_deliveries`): mail is delivered twice only
when the agent never took it.

For an agent whose hooks speak (Claude Code), mail can instead ride on the `Stop`
hook as the agent finishes a turn: the hook's reply hands the text over and the agent
goes on with it, with nothing typed. That delivery is taken when the agent is next
heard (any hook, or working), and released when it is not within `STOP_HOOK_WAIT`.

An operator's `at nudge` is mail too, but typed now, interrupting a working agent: it
is stored, reserved and receipted here, so the idle delivery can never type it again.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from tundra_tui.config import LayeredConfig
from tundra_tui.daemon import faults
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.handover import target_only
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ChangedEvent, Delivered, Event, Nudge, Request
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.dispatch import DispatchState
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.domain.handover import MailLine, mail_text
from tundra_tui.domain.mail import OPERATOR, Mail, validate_body
from tundra_tui.session.agent import AgentSession
from tundra_tui.session.events import HostEvent, StateChanged
from tundra_tui.session.host import SessionHost
from tundra_tui.session.tracker import only_activity
from tundra_tui.store import Store

ACTOR = "daemon"
STOP_HOOK_WAIT = 30.0
"""Seconds after a `Stop` hook handed mail over within which the agent must be heard
again (a hook, or working) for the delivery to count as taken."""
NUDGE_IDLE_WAIT = 10.0
"""Seconds a nudge waits for an interrupted agent to turn idle."""
STOP_EVENT = "Stop"
QUIET_RETRY = 5.0
"""Seconds an agent must sit idle and silent, in the idle turn that already had a batch,
before mail may be typed again in that turn. A turn too short for its screen to be read
as working, or a batch it did not take, would otherwise leave mail waiting for a turn
that never comes."""


def mail_lines(mails: Sequence[Mail]) -> list[MailLine]:
    return [MailLine(m.id, m.sender, m.subject, m.body) for m in mails]


class Mailroom:
    """Delivers each agent's mail between its turns, with receipts and crash recovery."""

    def __init__(
        self,
        store: Store,
        host: SessionHost,
        book: ApprovalBook,
        publish: Callable[[Event], None],
        log: DaemonLog,
        own: Callable[[Awaitable[Any]], None],
        *,
        gate: Gate | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.book = book
        self.publish = publish
        self.log = log
        self._own = own
        self.gate = gate
        self.max_batch = 20
        self.stop_hook = True
        self.limit = 4000
        """Characters of one typed batch (bodies are cut to fit; `at mail` has them whole)."""
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        """One delivery decision at a time per agent (typed, Stop hook or nudge)."""
        self._batched: dict[str, float] = {}
        """The idle turn (its `state_since`) that already had a batch, per agent."""
        self._hooked: dict[str, int] = {}
        self._batched_at: dict[str, float] = {}
        """When that batch was typed (monotonic), per agent."""
        self._rechecks: dict[str, asyncio.TimerHandle] = {}
        """A later look at an idle agent whose turn already had a batch (`QUIET_RETRY`)."""
        """Deliveries handed over by a `Stop` hook and not yet seen taken, per agent."""

    def configure(self, config: LayeredConfig) -> None:
        self.max_batch = int(config.get("mail.max_batch"))
        self.stop_hook = bool(config.get("mail.stop_hook"))
        self.limit = int(config.get("orchestra.prompt_max_chars"))

    def handlers(self) -> dict[type[Request], Handler]:
        return {Nudge: self.nudge}

    async def recover(self) -> None:
        """Settle deliveries a dead daemon left open: taken where the store holds evidence
        the agent took them, else released for the next idle turn."""
        taken, released = await self.store.mail.recover_deliveries(actor=ACTOR)
        if taken or released:
            self.log.info("mail.recovered", taken=taken, released=released)

    # ---- what wakes it ---------------------------------------------------------------------

    def on_host(self, event: HostEvent) -> None:
        if not isinstance(event, StateChanged):
            return
        agent = event.agent
        started = event.state in (AgentState.WORKING, AgentState.AWAITING_APPROVAL)
        if (
            agent in self._hooked
            and started
            and not only_activity(str(event.evidence.get("rule", "")))
        ):
            self._own(self._hook_taken(agent, f"{event.state.value} after the Stop hook"))
        if event.state is AgentState.IDLE:
            self.offer(agent)

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """Stored events (the tail): mail sent to an idle agent is offered at once."""
        for event in events:
            if event.kind == "mail.sent" and event.agent:
                self.offer(event.agent)

    def offer(self, agent: str) -> None:
        """Deliver `agent`'s mail if it sits idle now (a cheap check; the rest is a task)."""
        session = self._session(agent)
        if session is None or session.state is not AgentState.IDLE:
            return
        if agent in self._hooked:
            return
        if self._batched.get(agent) == session.state_since:
            self._recheck_later(agent, QUIET_RETRY)
            return
        self._own(self.deliver(agent))

    def _recheck_later(self, agent: str, delay: float) -> None:
        if agent not in self._rechecks:
            loop = asyncio.get_running_loop()
            self._rechecks[agent] = loop.call_later(delay, self._recheck, agent)

    def _recheck(self, agent: str) -> None:
        """Offer again to an agent still idle in the turn that had a batch, once it has been
        silent `QUIET_RETRY` seconds: it sits at its prompt, so typing cannot interrupt it."""
        self._rechecks.pop(agent, None)
        session = self._session(agent)
        if session is None or session.state is not AgentState.IDLE:
            return  # its next idle turn offers
        if self._batched.get(agent) == session.state_since:
            since = max(session.last_output, self._batched_at.get(agent, 0.0))
            quiet = time.monotonic() - since
            if quiet < QUIET_RETRY:
                self._recheck_later(agent, QUIET_RETRY - quiet)
                return
            del self._batched[agent]
        self.offer(agent)

    def _session(self, agent: str) -> AgentSession | None:
        try:
            session = self.host.session(agent)
        except NotFound:
            return None
        return session if session.pid is not None else None

    # ---- typed delivery --------------------------------------------------------------------

    def _target_only(self, agent: str) -> Callable[[], None]:
        """Daemon-made input waits for the target alone (re-checked before each write)."""
        return target_only(self.host, self.book, agent)

    async def _ready(self, agent: str) -> tuple[AgentSession, list[Mail]] | None:
        """The session and the batch to hand over now, or None when this is no moment for
        mail: a prompt waits, the work prompt has not gone in yet, or there is none."""
        session = self._session(agent)
        if session is None or self.book.pending_for(agent) is not None:
            return None
        if session.state is AgentState.AWAITING_APPROVAL or agent in self._hooked:
            return None
        dispatch = await self.store.dispatches.open_for_agent(agent)
        if dispatch is not None and dispatch.state is not DispatchState.DELIVERED:
            return None  # the work prompt goes first; mail waits for the next idle turn
        mails = await self.store.mail.undelivered(agent, self.max_batch)
        return (session, mails) if mails else None

    async def deliver(self, agent: str) -> bool:
        """Type one batch of `agent`'s mail if it is idle and had none this idle turn;
        True when the agent took it."""
        async with self._locks[agent]:
            session = self._session(agent)
            if session is None or session.state is not AgentState.IDLE:
                return False
            turn = session.state_since
            if self._batched.get(agent) == turn:
                return False
            ready = await self._ready(agent)
            if ready is None:
                return False
            session, mails = ready
            # No other input (a work prompt, a nudge) between this check and the receipt.
            async with self.host.input_lock(agent):
                if session.state is not AgentState.IDLE or session.state_since != turn:
                    return False  # it moved meanwhile: its next idle turn offers again
                ids = [m.id for m in mails]
                did = await self.store.mail.begin_delivery(agent, ids, via="typed")
                if did is None:
                    return False
                self._batched[agent] = turn
                self._batched_at[agent] = time.monotonic()
                text = mail_text(mail_lines(mails), limit=self.limit)
                try:
                    gate = self._target_only(agent)
                    delivery = await self.host.send_text(agent, text, gate=gate)
                    taken, evidence = delivery.delivered, delivery.evidence
                except TundraError as error:
                    taken, evidence = False, str(error)
                faults.hit("mail.typed")
                if taken:
                    await self.store.mail.delivery_taken(did, actor=ACTOR, evidence=evidence)
                else:
                    # Not taken: free for a later idle turn.
                    await self.store.mail.delivery_not_taken(did, reason=evidence)
            self.log.info(
                "mail.typed", agent=agent, messages=len(mails), taken=taken, evidence=evidence
            )
            self.publish(ChangedEvent(what="mail"))
            self._recheck_later(agent, QUIET_RETRY)  # in case its turn goes unseen
            return taken

    # ---- the Stop hook ---------------------------------------------------------------------

    def heard(self, agent: str, event: str, payload: Mapping[str, object]) -> None:
        """A hook spoke for `agent`: mail a `Stop` hook handed over has been taken, unless
        this is that same kind of first `Stop` (the agent has not gone on yet)."""
        if agent not in self._hooked:
            return
        if event == STOP_EVENT and not payload.get("stop_hook_active"):
            return
        self._own(self._hook_taken(agent, f"{event} hook after the Stop hook"))

    async def for_stop_hook(self, agent: str) -> str | None:
        """The mail to hand over in a `Stop` hook's reply (the agent goes on with it), or
        None: the agent stops as usual."""
        if not self.stop_hook:
            return None
        async with self._locks[agent]:
            ready = await self._ready(agent)
            if ready is None:
                return None
            _, mails = ready
            did = await self.store.mail.begin_delivery(
                agent, [m.id for m in mails], via="stop_hook"
            )
            if did is None:
                return None
            self._hooked[agent] = did
        loop = asyncio.get_running_loop()
        loop.call_later(STOP_HOOK_WAIT, lambda: self._own(self._hook_expired(agent, did)))
        self.log.info("mail.stop_hook", agent=agent, messages=len(mails), delivery=did)
        return mail_text(mail_lines(mails), limit=self.limit)

    async def _hook_taken(self, agent: str, evidence: str) -> None:
        did = self._hooked.pop(agent, None)
        if did is None:
            return
        await self.store.mail.delivery_taken(did, actor=ACTOR, evidence=evidence)
        self.publish(ChangedEvent(what="mail"))

    async def _hook_expired(self, agent: str, did: int) -> None:
        if self._hooked.get(agent) != did:
            return
        del self._hooked[agent]
        reason = f"not heard from within {STOP_HOOK_WAIT:g}s of the Stop hook"
        await self.store.mail.delivery_not_taken(did, reason=reason)
        self.publish(ChangedEvent(what="mail"))
        self.offer(agent)

    # ---- nudges ----------------------------------------------------------------------------

    async def nudge(self, request: Nudge, caller: Caller) -> Delivered:
        """Type a short message now: interrupt a working agent, never type over a prompt.

        The message is stored as urgent mail and reserved in one step under the agent's
        delivery lock, typed, then receipted or released: the idle delivery can never
        type it a second time.
        """
        name = request.name
        validate_body(request.text)
        from_agent = self.gate.agent_of(caller) if self.gate is not None else None
        check = self.gate.input(caller, name, raw=False) if self.gate is not None else None
        session = self._session(name)
        if session is None:
            raise NotFound(f"agent {name!r} is not running")
        gate = self._target_only(name)

        def both() -> None:
            gate()
            if check is not None:
                check()

        async with self._locks[name], self.host.input_lock(name):
            mail = await self.store.mail.send(
                from_agent or OPERATOR,
                name,
                request.text,
                actor=from_agent or OPERATOR,
                subject="nudge",
                urgent=True,
            )
            did = await self.store.mail.begin_delivery(name, [mail.id], via="typed")
            if did is None:  # cannot happen: nobody else saw it under this lock
                return Delivered(delivered=False, evidence="kept as mail")
            delivered, attempts, evidence = await self._type_now(session, request.text, both)
            if delivered:
                await self.store.mail.delivery_taken(did, actor=ACTOR, evidence=evidence)
            else:
                await self.store.mail.delivery_not_taken(did, reason=evidence)
        self.publish(ChangedEvent(what="mail"))
        return Delivered(delivered=delivered, attempts=attempts, evidence=evidence)

    async def _type_now(
        self, session: AgentSession, text: str, gate: Callable[[], None]
    ) -> tuple[bool, int, str]:
        name = session.name
        if session.state is AgentState.AWAITING_APPROVAL or self.book.pending_for(name):
            return False, 0, "it is waiting for an approval"
        if session.state is AgentState.WORKING:
            self.host.interrupt(name)
            await session.wait_for(lambda state: state is AgentState.IDLE, NUDGE_IDLE_WAIT)
        if session.state is not AgentState.IDLE:
            return False, 0, f"it is {session.state.value}"
        try:
            delivery = await self.host.send_text(name, text, gate=gate)
        except TundraError as error:
            return False, 0, str(error)
        return delivery.delivered, delivery.attempts, delivery.evidence
