"""What the daemon says is happening now: agent states, screens and waiting approvals.

Plain Python fed by `Link.events()`, so it is tested without Textual. Panes read it;
the app applies each event once and tells the panes what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tundra_tui.daemon.protocol import (
    ApprovalEvent,
    ApprovalResolvedEvent,
    AttentionEvent,
    Event,
    ExitedEvent,
    LinkEvent,
    RemovedEvent,
    ScreenEvent,
    Snapshot,
    StateEvent,
    StoreEvent,
    TroubleEvent,
)
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.overview import AttentionItem
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.remote_screen import RemoteScreen

MAX_SUBJECT = 65536
"""Characters of an approval's subject kept; hooks cap theirs at 16 KiB, so this cuts nothing
real, and anything cut is said to be cut (an approval must never hide part of its command)."""


@dataclass
class AgentLive:
    """One agent as last reported by the daemon."""

    name: str
    state: AgentState = AgentState.UNKNOWN
    evidence: dict[str, Any] = field(default_factory=dict)
    trouble: str = ""
    exit: str = ""
    screen: RemoteScreen = field(default_factory=RemoteScreen)


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """A request waiting for the operator; `subject` is the exact command or file, unsanitized
    (the modal shows it through the sanitizer with every hidden character made visible)."""

    id: int
    agent: str
    subject: str
    tool: str
    source: str
    created_at: str = ""
    """When the agent asked (the stored form): the inbox shows how long it has waited."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A finding of the daemon's witness for the operator (an escalated bead, an approval
    waiting too long); `reason` is made visible already."""

    agent: str
    kind: str
    reason: str
    bead: int | None = None
    approval: int | None = None


MAX_NOTICES = 20
"""Witness findings kept (the newest): the events log has them all."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changed, for deciding what to redraw."""

    kind: str
    """state, screen, approval, approval_resolved, exited, trouble, link, store, removed,
    snapshot, resync (a snapshot after falling behind), attention, attention_bell (a finding
    that rings the bell: once per agent and approval), or ignored."""
    agent: str = ""
    approval: int | None = None


class LiveModel:
    """The daemon's view of the town, applied event by event."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentLive] = {}
        self.approvals: dict[int, PendingApproval] = {}
        self.connected = False
        self.link_error = ""
        self.store_error = ""
        """Why the daemon's writes are waiting on the database; empty while they flow."""
        self.store_pending = 0
        self.notices: list[Notice] = []
        """The witness's findings, oldest first (kept across reconnects: they happened)."""
        self._rung: set[tuple[str, int | None]] = set()

    def agent(self, name: str) -> AgentLive:
        """The live record of `name`, created on first mention."""
        if name not in self.agents:
            self.agents[name] = AgentLive(name)
        return self.agents[name]

    def pending_for(self, name: str) -> list[PendingApproval]:
        """Approvals waiting for one agent, oldest first."""
        return [a for a in self.approvals.values() if a.agent == name]

    def apply(self, event: Event) -> Change:
        """Apply one daemon event (typed, so already well-formed); others change nothing.

        Text that came from agents is kept raw where it is a key (names, subjects shown
        through the sanitizer later) and made visible here where it is only shown.
        """
        if isinstance(event, LinkEvent):
            self.connected = event.up
            self.link_error = visible(event.error, single_line=True, limit=200)
            if self.connected:
                # The daemon's snapshot follows: only what it repeats is still true.
                self.agents.clear()
                self.approvals.clear()
            return Change("link")
        if isinstance(event, StoreEvent):
            self.store_pending = max(event.pending, 0)
            self.store_error = visible(event.error, single_line=True, limit=300)
            return Change("store")
        if isinstance(event, Snapshot):
            # What follows lists everything still waiting (after falling behind, too), and
            # an agent it does not name was removed while this client was not listening.
            self.approvals.clear()
            for name in set(self.agents) - set(event.agents):
                del self.agents[name]
            return Change("resync" if event.resync else "snapshot")
        if isinstance(event, ApprovalEvent | ApprovalResolvedEvent):
            return self._approval(event)
        if isinstance(event, AttentionEvent):
            return self._attention(event)
        name = getattr(event, "agent", "")
        if not isinstance(name, str) or not name:
            return Change("ignored")
        if isinstance(event, StateEvent):
            try:
                state = AgentState(event.state)
            except ValueError:
                state = AgentState.UNKNOWN
            live = self.agent(name)
            live.state = state
            live.evidence = dict(event.evidence)
            return Change("state", name)
        if isinstance(event, ScreenEvent):
            self.agent(name).screen.apply(event)
            return Change("screen", name)
        if isinstance(event, RemovedEvent):
            # Taken out of tundra.toml and no longer running: gone from every list.
            self.agents.pop(name, None)
            for approval_id in [a.id for a in self.pending_for(name)]:
                del self.approvals[approval_id]
            return Change("removed", name)
        if isinstance(event, ExitedEvent):
            live = self.agent(name)
            live.exit = f"signal {event.signal}" if event.signal else f"exit {event.code}"
            return Change("exited", name)
        if isinstance(event, TroubleEvent):
            kind = event.kind
            self.agent(name).trouble = visible(kind, single_line=True) if kind else ""
            return Change("trouble", name)
        return Change("ignored")

    def _approval(self, event: ApprovalEvent | ApprovalResolvedEvent) -> Change:
        info = event.approval
        if not info.agent:
            return Change("ignored")
        if isinstance(event, ApprovalResolvedEvent):
            self.approvals.pop(info.id, None)
            self.notices = [n for n in self.notices if n.approval != info.id]
            return Change("approval_resolved", info.agent, info.id)
        self.approvals[info.id] = PendingApproval(
            id=info.id,
            agent=info.agent,
            subject=_subject(info.subject),
            tool=info.tool,
            source=info.source,
            created_at=info.created_at,
        )
        return Change("approval", info.agent, info.id)

    def _attention(self, event: AttentionEvent) -> Change:
        notice = Notice(
            agent=event.agent,
            kind=visible(event.kind, single_line=True, limit=40),
            reason=visible(event.reason, single_line=True, limit=300),
            bead=event.bead,
            approval=event.approval,
        )
        self.notices = [n for n in self.notices if n != notice][-(MAX_NOTICES - 1) :]
        self.notices.append(notice)
        key = (event.agent, event.approval)
        if event.bell and key not in self._rung:
            self._rung.add(key)
            return Change("attention_bell", event.agent, event.approval)
        return Change("attention", event.agent, event.approval)


NOTICE_GLYPHS = {"budget warning": "$", "budget stop": "$", "rate limited": "⏸"}
"""The brake's findings read apart from the witness's at a glance."""


def notice_items(notices: list[Notice]) -> list[AttentionItem]:
    """The witness's findings as Attention rows, newest first. One about an approval is
    left out: the approval itself is listed while it waits."""
    return [
        AttentionItem(
            glyph=NOTICE_GLYPHS.get(n.kind, "⚑"),
            agent=visible(n.agent, single_line=True),
            text=f"{n.kind}: {n.reason}",
        )
        for n in reversed(notices)
        if n.approval is None
    ]


def _subject(text: str) -> str:
    if len(text) <= MAX_SUBJECT:
        return text
    return text[:MAX_SUBJECT] + f"\n… ({len(text) - MAX_SUBJECT} more characters not shown)"
