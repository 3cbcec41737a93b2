"""What the daemon says is happening now: agent states, screens and waiting approvals.

Plain Python fed by `Link.events()`, so it is tested without Textual. Panes read it;
the app applies each event once and tells the panes what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tundra_tui.domain.agents import AgentState
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


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changed, for deciding what to redraw."""

    kind: str
    """state, screen, approval, approval_resolved, exited, trouble, link, store, removed,
    snapshot, or ignored."""
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

    def agent(self, name: str) -> AgentLive:
        """The live record of `name`, created on first mention."""
        if name not in self.agents:
            self.agents[name] = AgentLive(name)
        return self.agents[name]

    def pending_for(self, name: str) -> list[PendingApproval]:
        """Approvals waiting for one agent, oldest first."""
        return [a for a in self.approvals.values() if a.agent == name]

    def apply(self, event: dict[str, Any]) -> Change:
        """Apply one daemon event; unknown or malformed events change nothing."""
        kind = event.get("event")
        if kind == "link":
            self.connected = bool(event.get("up"))
            self.link_error = visible(str(event.get("error", "")), single_line=True, limit=200)
            if self.connected:
                # The daemon's snapshot follows: only what it repeats is still true.
                self.agents.clear()
                self.approvals.clear()
            return Change("link")
        if kind == "store":
            pending = event.get("pending")
            self.store_pending = pending if isinstance(pending, int) else 0
            self.store_error = visible(str(event.get("error", "")), single_line=True, limit=300)
            return Change("store")
        if kind == "snapshot":
            # What follows lists everything still waiting (after falling behind, too).
            self.approvals.clear()
            return Change("snapshot")
        name = event.get("agent")
        if not isinstance(name, str) or not name:
            return Change("ignored")
        if kind == "state":
            try:
                state = AgentState(str(event.get("state")))
            except ValueError:
                state = AgentState.UNKNOWN
            live = self.agent(name)
            live.state = state
            evidence = event.get("evidence")
            live.evidence = evidence if isinstance(evidence, dict) else {}
            return Change("state", name)
        if kind == "screen":
            self.agent(name).screen.apply(event)
            return Change("screen", name)
        if kind == "approval":
            approval_id = _approval_id(event.get("id"))
            if approval_id is None:
                return Change("ignored")
            self.approvals[approval_id] = PendingApproval(
                id=approval_id,
                agent=name,
                subject=_subject(str(event.get("subject", ""))),
                tool=str(event.get("tool", "")),
                source=str(event.get("source", "")),
            )
            return Change("approval", name, approval_id)
        if kind == "approval_resolved":
            approval_id = _approval_id(event.get("id"))
            if approval_id is not None:
                self.approvals.pop(approval_id, None)
            return Change("approval_resolved", name, approval_id)
        if kind == "removed":
            # Taken out of tundra.toml and no longer running: gone from every list.
            self.agents.pop(name, None)
            for approval_id in [a.id for a in self.pending_for(name)]:
                del self.approvals[approval_id]
            return Change("removed", name)
        if kind == "exited":
            live = self.agent(name)
            code, signal = event.get("code"), event.get("signal")
            live.exit = f"signal {signal}" if signal else f"exit {code}"
            return Change("exited", name)
        if kind == "trouble":
            kind_of = event.get("kind")
            self.agent(name).trouble = visible(str(kind_of), single_line=True) if kind_of else ""
            return Change("trouble", name)
        return Change("ignored")


def _approval_id(value: Any) -> int | None:
    """An approval id from the wire (JSON `true` is not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _subject(text: str) -> str:
    if len(text) <= MAX_SUBJECT:
        return text
    return text[:MAX_SUBJECT] + f"\n… ({len(text) - MAX_SUBJECT} more characters not shown)"
