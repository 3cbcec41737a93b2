"""Agents: who they are (name, role, runtime) and the states a running one can be in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tundra_tui.domain.errors import TundraError


class Role(StrEnum):
    """Gastown's taxonomy: what an agent is for, not how it runs."""

    MAYOR = "mayor"
    DEACON = "deacon"
    WITNESS = "witness"
    REFINERY = "refinery"
    POLECAT = "polecat"
    CREW = "crew"


class Runtime(StrEnum):
    """Which coding-agent CLI runs inside the agent's terminal."""

    CLAUDE = "claude"
    CODEX = "codex"
    GEMINI = "gemini"
    OPENCODE = "opencode"
    AIDER = "aider"
    DEMO = "demo"
    CUSTOM = "custom"


class AgentState(StrEnum):
    """What an agent is doing now; the first four come from detection, the rest from its process."""

    WORKING = "working"
    IDLE = "idle"
    AWAITING_APPROVAL = "awaiting_approval"
    UNKNOWN = "unknown"
    QUEUED = "queued"
    STOPPED = "stopped"
    EXITED = "exited"
    FAILED = "failed"
    LOST = "lost"

    @property
    def glyph(self) -> str:
        """The one-character status glyph shown in lists and tiles."""
        return _GLYPHS[self]

    @property
    def is_live(self) -> bool:
        """True while a process is (believed to be) running for the agent."""
        return self in _LIVE


_GLYPHS = {
    AgentState.WORKING: "@",
    AgentState.IDLE: "*",
    AgentState.AWAITING_APPROVAL: "!",
    AgentState.UNKNOWN: "?",
    AgentState.QUEUED: "~",
    AgentState.STOPPED: "-",
    AgentState.EXITED: "x",
    AgentState.FAILED: "X",
    AgentState.LOST: "%",
}
_LIVE = frozenset(
    {AgentState.WORKING, AgentState.IDLE, AgentState.AWAITING_APPROVAL, AgentState.UNKNOWN}
)

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def validate_agent_name(name: str) -> str:
    """Return `name` if it is safe as a file, branch and table key, else raise.

    Names become directory names and branch components, so anything that could
    climb out of a directory or read as a command-line flag is refused.
    """
    # The last three are names git refuses as a branch component (check-ref-format).
    if not _NAME_RE.fullmatch(name) or ".." in name or name.endswith(".") or name.endswith(".lock"):
        raise TundraError(
            f"invalid agent name {name!r}: use 1-64 letters, digits, '.', '_' or '-',"
            " not starting with '.' or '-', without '..', not ending in '.' or '.lock'"
        )
    return name


def parse_role(value: str) -> Role:
    """Parse a role name, or raise with the list of valid ones."""
    try:
        return Role(value)
    except ValueError:
        raise TundraError(
            f"unknown role {value!r}: expected one of {', '.join(r.value for r in Role)}"
        ) from None


def parse_runtime(value: str) -> Runtime:
    """Parse a runtime name, or raise with the list of valid ones."""
    try:
        return Runtime(value)
    except ValueError:
        raise TundraError(
            f"unknown runtime {value!r}: expected one of {', '.join(r.value for r in Runtime)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent as the store knows it: its identity plus the last state recorded for it."""

    name: str
    role: Role
    runtime: Runtime
    state: AgentState = AgentState.STOPPED
    model: str = ""
    pid: int | None = None
    worktree: str = ""
    branch: str = ""
    exit_status: int | None = None
    created_at: str = ""
    updated_at: str = ""
