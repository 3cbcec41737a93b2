"""The approval operations: what is waiting, the operator's answers, and agents' hooks.

The approval book owns every request; these handlers check who asks and hand over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.protocol import (
    ApprovalInfo,
    ApprovalList,
    Approvals,
    Approve,
    Deny,
    Hook,
    HookReply,
    Request,
)
from tundra_tui.daemon.rules import RuleOps
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.session.hooks import (
    CODEX_NOTIFY,
    PERMISSION_EVENT,
    PERMISSION_TIMEOUT_S,
    permission_ask,
    permission_rule,
    state_payload,
)
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store

if TYPE_CHECKING:
    from tundra_tui.daemon.mailroom import Mailroom

STOP_EVENT = "Stop"
_NOT_FROM_AGENTS = "approvals are answered by the operator, not from an agent's terminal"


class AskOps:
    """Handlers for approvals and for the hook channel agents report through."""

    def __init__(
        self,
        host: SessionHost,
        store: Store,
        writer: StoreWriter,
        book: ApprovalBook,
        gate: Gate,
        *,
        mailroom: Mailroom | None = None,
    ) -> None:
        self.host = host
        self.store = store
        self.writer = writer
        self.book = book
        self.gate = gate
        self.mailroom = mailroom
        """Hears every hook (a Stop hook's mail was taken) and hands mail to a Stop hook."""
        self.rules = RuleOps(store, book, gate)
        """The operator's always-allow rules, which answer the requests they cover."""

    def handlers(self) -> dict[type[Request], Handler]:
        handlers: dict[type[Request], Handler] = {
            Approvals: self.approvals,
            Approve: self.approve,
            Deny: self.deny,
            Hook: self.hook,
        }
        return handlers | self.rules.handlers()

    async def approvals(self, request: Approvals, caller: Caller) -> ApprovalList:
        """What is waiting for the operator, from the book itself: every client agrees."""
        return ApprovalList(approvals=[ApprovalInfo.of(a) for a in self.book.pending()])

    async def approve(self, request: Approve, caller: Caller) -> ApprovalInfo:
        self.gate.operator_only(caller, "approve", _NOT_FROM_AGENTS)
        approval = await self.book.approve(request.id, actor=request.actor, seen=request.seen)
        return ApprovalInfo.of(approval)

    async def deny(self, request: Deny, caller: Caller) -> ApprovalInfo:
        self.gate.operator_only(caller, "deny", _NOT_FROM_AGENTS)
        approval = await self.book.deny(request.id, actor=request.actor, seen=request.seen)
        return ApprovalInfo.of(approval)

    async def hook(self, request: Hook, caller: Caller) -> HookReply:
        """An agent's hook reporting: state events return at once; a PermissionRequest
        waits here for the operator's answer (or the timeout, which denies)."""
        agent, event, payload = request.name, request.event, request.payload
        self.gate.hook_caller(caller, agent, request.secret, event)
        if event == CODEX_NOTIFY:
            used = self.host.codex_notify(agent, payload)
            data = {"type": str(payload.get("type", ""))[:100], "used": used}
            self.writer.submit(
                f"{agent} notify",
                lambda: self.store.events.record(
                    "agent.notify", actor=agent, agent=agent, data=data
                ),
            )
            return HookReply(used=used)
        if event != PERMISSION_EVENT:
            kept = state_payload(event, payload)
            first_stop = event == STOP_EVENT and not payload.get("stop_hook_active")
            if event == STOP_EVENT:
                # Evidence for mail recovery: a Stop after a Stop hook's mail means it was taken.
                kept["stop_hook_active"] = not first_stop
            self.writer.submit(
                f"{agent} hook",
                lambda: self.store.events.record("agent.hook", actor=agent, agent=agent, data=kept),
            )
            block = None
            if self.mailroom is not None:
                self.mailroom.heard(agent, event, payload)
                if first_stop:
                    block = await self.mailroom.for_stop_hook(agent)
            if block is None:
                # Handed mail, the agent goes on working: it is not stopping.
                self.host.hook_state(agent, event, payload)
            return HookReply(block=block)
        ask = permission_ask(payload)
        evidence = {
            "source": "hook",
            "rule": permission_rule(self.host.session(agent).adapter.runtime),
            "matched": f"{ask.tool}: {ask.subject[:200]}",
        }
        timeout = request.timeout if request.timeout is not None else PERMISSION_TIMEOUT_S - 60
        decided = await self.book.hook_request(agent, ask, evidence, timeout)
        return HookReply(allow=decided.status.value == "approved", status=decided.status.value)
