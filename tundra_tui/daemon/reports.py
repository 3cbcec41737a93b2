"""Reports from inside agents: submit for review, fail with a reason, a note, and mail.

An agent says how its work went through the CLI it runs in its own terminal (`at
submit`, `at done --fail`, `at bead note`, `at mail send`); the CLI hands each to the
daemon, which names the agent by the caller's process ancestry (`Gate.agent_of`),
never by its environment, since any process can set `TUNDRA_ACTOR`. An agent reports
only on the bead on its own hook, sends mail only as itself, and can never mark work
done (review does that). The operator may report on any bead, with the same checks.

A submit needs a branch with work on it and nothing left uncommitted
(`orchestra.branches`), and a submit or a failure is mailed to the mayors and the
operator (`orchestra.notices`). The same steps serve the CLI when no daemon runs
(`submit`, `fail`, `note` below take the store directly).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tundra_tui.config import LayeredConfig, load_config
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.protocol import (
    BeadChanged,
    ChangedEvent,
    Event,
    MailRead,
    MailReceipts,
    MailSend,
    MailSent,
    Report,
    Request,
)
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.domain.beads import Action, Bead, BeadStatus, format_bead_id
from tundra_tui.domain.dispatch import polecat_branch
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.orchestra.branches import submit_problem
from tundra_tui.orchestra.notices import tell_mayor_and_operator
from tundra_tui.store import Store
from tundra_tui.town import Town

_HELD = (BeadStatus.HOOKED, BeadStatus.SLUNG)
"""What "on your hook" means for a submit or a failure."""
_NOTED = (*_HELD, BeadStatus.REVIEW)
"""An agent may still add notes to work it submitted."""


class ReportOps:
    """The `Report`, `MailSend` and `MailRead` handlers: who is asking, on what, then the
    same steps as the CLI's, and one `ChangedEvent` per thing changed."""

    def __init__(
        self, town: Town, store: Store, gate: Gate, publish: Callable[[Event], None]
    ) -> None:
        self.town = town
        self.store = store
        self.gate = gate
        self.publish = publish
        self._lock = asyncio.Lock()
        """One report at a time: each checks the bead, then moves it."""

    def handlers(self) -> dict[type[Request], Handler]:
        return {Report: self.report, MailSend: self.mail_send, MailRead: self.mail_read}

    async def report(self, req: Report, caller: Caller) -> BeadChanged:
        agent = self._reporter(caller, "report")
        async with self._lock:
            bead = await self._bead(req.bead, agent)
            if agent is not None:
                await self._check_own(bead, agent, req.kind)
            author = agent or OPERATOR
            if req.kind == "note":
                await note(self.store, bead.id, author, req.text)
                self._changed("beads", bead.id)
                return _reply(bead)
            config = await asyncio.to_thread(load_config, self.town)
            if req.kind == "submit":
                bead = await submit(
                    self.store,
                    self.town,
                    config,
                    bead,
                    author,
                    req.text,
                    recheck=self._rechecker(agent),
                )
            else:
                if agent is not None and not req.text.strip():
                    raise TundraError("say why it failed: at done N --fail --reason WHY")
                bead = await fail(self.store, config, bead, author, req.text)
            self._changed("beads", bead.id)
            self._changed("mail")
        return _reply(bead)

    async def mail_send(self, req: MailSend, caller: Caller) -> MailSent:
        agent = self._reporter(caller, "mail")
        if agent is not None and req.sender not in ("", agent):
            raise TundraError(f"refused: you are {agent}; an agent sends mail only as itself")
        sender = agent or req.sender or OPERATOR
        config = await asyncio.to_thread(load_config, self.town)
        require_party(config, req.to, "to address mail to")
        require_party(config, sender, "to send mail as")
        message = await self.store.mail.send(
            sender, req.to, req.body, actor=sender, subject=req.subject, urgent=req.urgent
        )
        self._changed("mail", message.id)
        return MailSent(id=message.id, to=req.to)

    async def mail_read(self, req: MailRead, caller: Caller) -> MailReceipts:
        reader = self._reporter(caller, "mail") or OPERATOR
        messages = [await self.store.mail.get(mail_id) for mail_id in dict.fromkeys(req.ids)]
        for message in messages:  # all checked before any receipt is set
            if message.recipient != reader:
                raise TundraError(
                    f"message {message.id} is to {message.recipient}, not {reader}: only "
                    "its recipient sets its read receipt"
                )
        read = []
        for message in messages:
            if not message.is_read:
                await self.store.mail.read(message.id, actor=reader)
                read.append(message.id)
        if read:
            self._changed("mail", *read)
        return MailReceipts(read=read)

    # ---- who, and on what ----------------------------------------------------------------------

    def _reporter(self, caller: Caller, op: str) -> str | None:
        """The agent the caller runs inside, or None for the operator. A caller inside an
        agent that cannot be named (an orphan, a broken ancestry) is refused."""
        if not self.gate.inside(caller):
            return None
        agent = self.gate.agent_of(caller)
        if agent is None:
            self.gate.operator_only(
                caller, op, "refused: cannot tell which agent this report comes from"
            )
        return agent

    async def _bead(self, given: int | None, agent: str | None) -> Bead:
        """The bead named, or the agent's own: its open dispatch's, else its only held one."""
        if given is not None:
            return await self.store.beads.get(given)
        if agent is None:
            raise TundraError("name the bead to report on (only an agent has a bead of its own)")
        dispatch = await self.store.dispatches.open_for_agent(agent)
        if dispatch is not None:
            return await self.store.beads.get(dispatch.bead_id)
        held = [b for b in await self.store.beads.find(assignee=agent) if b.status in _HELD]
        if len(held) == 1:
            return held[0]
        if not held:
            raise TundraError(f"{agent} holds no bead: name the bead to report on")
        refs = ", ".join(b.ref for b in held)
        raise TundraError(f"{agent} holds several beads ({refs}): name the one to report on")

    async def _check_own(self, bead: Bead, agent: str, kind: str) -> None:
        """Refuse a report on a bead that is not on this agent's hook (read afresh)."""
        bead = await self.store.beads.get(bead.id)
        allowed = _NOTED if kind == "note" else _HELD
        if bead.assignee != agent:
            holder = f"it is held by {bead.assignee}" if bead.assignee else "nobody holds it"
            raise TundraError(f"refused: {bead.ref} is not on your hook ({holder})")
        if bead.status not in allowed:
            raise TundraError(
                f"refused: {bead.ref} is {bead.status.value}; you can "
                f"{'note' if kind == 'note' else kind} only work on your hook"
            )

    def _rechecker(self, agent: str | None) -> Callable[[Bead], Awaitable[None]] | None:
        """The ownership check to repeat right before a submit moves the bead."""
        if agent is None:
            return None
        owner = agent

        async def recheck(bead: Bead) -> None:
            await self._check_own(bead, owner, "submit")

        return recheck

    def _changed(self, what: str, *ids: int) -> None:
        self.publish(ChangedEvent(what=what, ids=list(ids)))


# ---- the steps, shared with the CLI when no daemon runs -----------------------------------------


async def submit(
    store: Store,
    town: Town,
    config: LayeredConfig,
    bead: Bead,
    author: str,
    summary: str,
    *,
    recheck: Callable[[Bead], Awaitable[None]] | None = None,
) -> Bead:
    """Move `bead` to review once its branch has work and no uncommitted change; the
    mayors and the operator are told. `recheck` runs again right before the move (the git
    checks take a while, and the bead may have moved meanwhile)."""
    branch = bead.branch or await _dispatch_branch(store, bead) or _convention(bead)
    target = str(config.get("orchestra.target_branch") or "")
    problem = await asyncio.to_thread(submit_problem, town.root, branch, target)
    if problem is not None:
        raise TundraError(f"cannot submit {bead.ref}: {problem}")
    if recheck is not None:
        await recheck(bead)
    if bead.branch != branch:
        await store.beads.edit(bead.id, actor=author, branch=branch)
    moved = await store.beads.apply(bead.id, Action.SUBMIT, actor=author, reason=summary.strip())
    await tell_mayor_and_operator(
        store, config, sender=author, bead=moved, kind="submit", text=summary
    )
    return moved


async def fail(store: Store, config: LayeredConfig, bead: Bead, author: str, reason: str) -> Bead:
    """Close `bead` as failed with the reason given; the mayors and the operator are told."""
    moved = await store.beads.apply(bead.id, Action.FAIL, actor=author, reason=reason.strip())
    await tell_mayor_and_operator(
        store, config, sender=author, bead=moved, kind="fail", text=reason
    )
    return moved


async def note(store: Store, bead_id: int, author: str, text: str) -> None:
    """Keep a note on the bead (it survives hand-overs); an empty note is refused."""
    if not text.strip():
        raise TundraError("a note needs text: at bead note N -m TEXT")
    await store.notes.add(bead_id, author, text, actor=author)


def require_party(config: LayeredConfig, name: str, purpose: str) -> None:
    """Mail goes to and from agents on the roster, or the operator."""
    if name != OPERATOR and name not in config.agents():
        raise NotFound(f"no agent {name!r} in tundra.toml {purpose} (see `at agent list`)")


async def _dispatch_branch(store: Store, bead: Bead) -> str:
    dispatch = await store.dispatches.open_for_bead(bead.id)
    return dispatch.branch if dispatch is not None else ""


def _convention(bead: Bead) -> str:
    """The branch dispatch gives a bead's holder; "" when nobody holds it."""
    return polecat_branch(bead.assignee, bead.id) if bead.assignee else ""


def _reply(bead: Bead) -> BeadChanged:
    return BeadChanged(
        id=bead.id, ref=format_bead_id(bead.id), status=bead.status.value, assignee=bead.assignee
    )
