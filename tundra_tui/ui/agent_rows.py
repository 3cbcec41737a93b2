"""The Agents tab's rows: the store's roster merged with what the daemon says now.

Plain Python (no Textual), so the merge and the filter are tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tundra_tui.config import AgentSpec
from tundra_tui.domain.agents import Agent, AgentState
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.live import LiveModel


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent as the list and its tile show it. `name` is the raw key for requests;
    every other text field is already safe to show."""

    name: str
    role: str
    runtime: str
    model: str
    state: AgentState
    pending: int
    trouble: str
    note: str = ""
    """Plain news about how it ended, not a fault: `stopped by you`."""

    @property
    def label(self) -> str:
        """The name made safe to show (a daemon event may name an agent anything)."""
        return visible(self.name, single_line=True, limit=64)

    @property
    def engine(self) -> str:
        """`runtime/model`, or whichever of the two is known."""
        return "/".join(part for part in (self.runtime, self.model) if part)

    @property
    def running(self) -> bool:
        """A process is (believed to be) running, so its terminal is live."""
        return self.state.is_live

    def matches(self, text: str) -> bool:
        """Case-insensitive match of the search box on name, role or runtime/model."""
        needle = text.strip().lower()
        return not needle or any(
            needle in field.lower() for field in (self.name, self.role, self.engine)
        )


def agent_rows(
    agents: Iterable[Agent], live: LiveModel, specs: Mapping[str, AgentSpec]
) -> list[AgentRow]:
    """Every agent the store, the configuration or the daemon knows, by name.

    The daemon's state wins over the stored one (it is newer); the stored record
    wins over the configured one for role and runtime (it is what was started).
    """
    stored = {agent.name: agent for agent in agents}
    rows = []
    for name in sorted(set(stored) | set(specs) | set(live.agents)):
        agent, spec, now = stored.get(name), specs.get(name), live.agents.get(name)
        state = now.state if now else agent.state if agent else AgentState.STOPPED
        trouble = note = ""
        if now is not None:
            note = _stopped_by(now.evidence) if state is AgentState.STOPPED else ""
            # A stop asked for ends the process by a signal on purpose: no exit code.
            ended = state.is_live or state is AgentState.STOPPED
            trouble = now.trouble or ("" if ended else now.exit)
        rows.append(
            AgentRow(
                name=name,
                role=(agent.role.value if agent else spec.role.value if spec else ""),
                runtime=(agent.runtime.value if agent else spec.runtime.value if spec else ""),
                model=visible(
                    (agent.model if agent and agent.model else spec.model if spec else ""),
                    single_line=True,
                    limit=40,
                ),
                state=state,
                pending=len(live.pending_for(name)),
                trouble=visible(trouble, single_line=True, limit=60),
                note=note,
            )
        )
    return rows


def _stopped_by(evidence: Mapping[str, object]) -> str:
    """`stopped by you` for the operator's stop, `stopped by <agent>` for an agent's; empty
    when the town stopped it (the state says enough). Never an exit code: a stop asked for
    ends the process by a signal on purpose."""
    by = evidence.get("by") if evidence.get("rule") == "stopped" else None
    if not isinstance(by, str) or not by:
        return ""
    return (
        "stopped by you"
        if by == "operator"
        else f"stopped by {visible(by, single_line=True, limit=40)}"
    )
