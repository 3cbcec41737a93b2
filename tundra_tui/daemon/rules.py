"""The operator's always-allow rules, and the daemon answering a request one of them covers.

A rule is made only from a pending request the operator saw (its agent, tool and exact
words), never from a pattern, and never for a command the deny-list names. When a request
opens (or its hook's exact words arrive), a live rule for the same agent and the same words
approves it through the approval book like any answer, with the rule as the actor
(`rule 3`), so the audit trail and the activity say what answered it. The deny-list is
checked again at that moment: it always wins over a rule.
"""

from __future__ import annotations

import asyncio
import time

from tundra_tui.daemon.book import ApprovalBook, BookEvent
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.protocol import Request, RuleAdd, RuleInfo, RuleList, RuleRevoke, Rules
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.domain.approvals import Approval, ApprovalStatus
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.firewall import AllowRule, denied_shape, words_digest
from tundra_tui.domain.redact import redact
from tundra_tui.session.events import ApprovalRequested
from tundra_tui.store import Store

RETRY_FOR = 10.0
"""How long a rule keeps trying to answer a request the book is busy with (a screen
request waiting for its hook's words)."""
RETRY_STEP = 0.05
_OPERATOR_ONLY = "approval rules are set by the operator, not from an agent's terminal"


def rule_actor(rule_id: int) -> str:
    """Who approved a request a rule answered, as the audit trail records it."""
    return f"rule {rule_id}"


class RuleOps:
    """Handlers for `rules`, `rule_add` and `rule_revoke`, and the rules' own answers."""

    def __init__(self, store: Store, book: ApprovalBook, gate: Gate) -> None:
        self.store = store
        self.book = book
        self.gate = gate
        self._answering: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        book.subscribe(self._on_book)

    def handlers(self) -> dict[type[Request], Handler]:
        return {Rules: self.rules, RuleAdd: self.add, RuleRevoke: self.revoke}

    async def _live(self) -> dict[tuple[str, str], AllowRule]:
        """Live rules by (agent, digest of the words), read from the store each time: a
        rule revoked by any client no longer applies to the very next request."""
        return {(rule.agent, rule.digest): rule for rule in await self.store.rules.live()}

    # ---- the operator ------------------------------------------------------------------------

    async def rules(self, request: Rules, caller: Caller) -> RuleList:
        self.gate.operator_only(caller, "rules", _OPERATOR_ONLY)
        live = sorted((await self._live()).values(), key=lambda rule: rule.id)
        return RuleList(rules=[RuleInfo.of(rule) for rule in live])

    async def add(self, request: RuleAdd, caller: Caller) -> RuleInfo:
        """A rule from the pending request the operator saw; that request is approved too."""
        self.gate.operator_only(caller, "rule_add", _OPERATOR_ONLY)
        approval = self._pending(request.id)
        if request.seen is not None and request.seen != approval.subject:
            raise TundraError(
                f"approval {approval.id} now asks something else than what you saw; "
                "no rule was added — read it again"
            )
        shape = denied_shape(approval.subject)
        if shape:
            raise TundraError(f"never always-allowed: the command {shape}; answer it by hand")
        rule = await self.store.rules.add(
            agent=approval.agent,
            tool=approval.tool,
            subject=redact(approval.subject),
            digest=words_digest(approval.tool, approval.subject),
            actor=request.actor,
            approval=approval.id,
        )
        try:
            await self.book.approve(approval.id, actor=request.actor, seen=approval.subject)
        except TundraError as error:
            raise TundraError(
                f"rule {rule.id} added, but approval {approval.id} was not answered: {error}"
            ) from None
        return RuleInfo.of(rule)

    async def revoke(self, request: RuleRevoke, caller: Caller) -> RuleInfo:
        self.gate.operator_only(caller, "rule_revoke", _OPERATOR_ONLY)
        rule = await self.store.rules.revoke(request.id, actor=request.actor)
        return RuleInfo.of(rule)

    def _pending(self, approval_id: int) -> Approval:
        for approval in self.book.pending():
            if approval.id == approval_id:
                return approval
        closed = self.book.get(approval_id)
        if closed is not None:
            raise TundraError(f"approval {approval_id} was already {closed.status.value}")
        raise TundraError(f"no approval {approval_id} is waiting (see `at approvals`)")

    # ---- the rules' answers ------------------------------------------------------------------

    def _on_book(self, event: BookEvent) -> None:
        """A request opened, or took its hook's words: a rule may cover it."""
        if not isinstance(event, ApprovalRequested):
            return
        approval_id = event.approval.id
        if approval_id in self._answering or denied_shape(event.approval.subject):
            return
        self._answering.add(approval_id)
        task = asyncio.get_running_loop().create_task(self._apply(approval_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, approval_id: int) -> None:
        """Approve the request while it waits with words a live rule covers; the words are
        read again before every try (a hook's words replace the screen's)."""
        try:
            deadline = time.monotonic() + RETRY_FOR
            while time.monotonic() < deadline:
                approval = next((a for a in self.book.pending() if a.id == approval_id), None)
                if approval is None or approval.status is not ApprovalStatus.PENDING:
                    return
                if denied_shape(approval.subject):
                    return  # the deny-list always wins
                try:
                    rules = await self._live()
                except TundraError:
                    return  # the store cannot be read: the operator answers
                rule = rules.get((approval.agent, words_digest(approval.tool, approval.subject)))
                if rule is None:
                    return
                try:
                    await self.book.approve(
                        approval_id, actor=rule_actor(rule.id), seen=approval.subject
                    )
                    return
                except TundraError as error:
                    now = next((a for a in self.book.pending() if a.id == approval_id), None)
                    if now is None:
                        return
                    if now.subject == approval.subject and "being answered" not in str(error):
                        return  # keys may have been sent: never again blindly
                    await asyncio.sleep(RETRY_STEP)  # busy, or its words changed: look again
        finally:
            self._answering.discard(approval_id)
