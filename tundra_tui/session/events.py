"""What the session host reports to whoever listens: the UI today, the daemon's clients later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.approvals import Approval


@dataclass(frozen=True, slots=True)
class ScreenChanged:
    """Rows of an agent's screen changed; redraw only these."""

    agent: str
    rows: frozenset[int]


@dataclass(frozen=True, slots=True)
class StateChanged:
    """An agent's published state moved, with the evidence for the decision."""

    agent: str
    state: AgentState
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """An agent is waiting for the operator's answer."""

    approval: Approval


@dataclass(frozen=True, slots=True)
class ApprovalResolved:
    """A request was answered (approved or denied) or expired."""

    approval: Approval
    verified: bool = True


@dataclass(frozen=True, slots=True)
class Exited:
    """An agent's process ended."""

    agent: str
    code: int | None
    signal: int | None


@dataclass(frozen=True, slots=True)
class Trouble:
    """The agent's screen shows it is rate-limited or its authentication failed (or cleared)."""

    agent: str
    kind: str
    """`rate_limited`, `auth_failed`, or empty when the trouble cleared."""
    matched: str = ""


HostEvent = ScreenChanged | StateChanged | Exited | Trouble
"""What the session host emits; approval events come from the daemon's approval book."""
