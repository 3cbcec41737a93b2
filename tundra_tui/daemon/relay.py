"""What happens to agents, told: each host and book event is stored and sent to clients.

Every state change is written to the store (with the screen, so a daemon that is
killed leaves each agent's last screen for the next one to show), and becomes
one protocol event for the fan-out. Exits go to supervision and leases.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tundra_tui.daemon.book import BookEvent
from tundra_tui.daemon.fanout import FanOut
from tundra_tui.daemon.leases import WorktreeLeases
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import (
    ApprovalEvent,
    ApprovalInfo,
    ApprovalResolvedEvent,
    ExitedEvent,
    StateEvent,
    TroubleEvent,
)
from tundra_tui.daemon.supervision import Supervision
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import NotFound
from tundra_tui.session.events import (
    ApprovalRequested,
    ApprovalResolved,
    Exited,
    HostEvent,
    ScreenChanged,
    StateChanged,
    Trouble,
)
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store

ACTOR = "daemon"


def state_event(agent: str, state: AgentState, evidence: dict[str, Any]) -> StateEvent:
    """The one shape of a `state` event, live or in a snapshot."""
    return StateEvent(agent=agent, state=state.value, glyph=state.glyph, evidence=evidence)


class Relay:
    """Turns the host's and the book's events into store writes and client events."""

    def __init__(
        self,
        *,
        host: SessionHost,
        store: Store,
        writer: StoreWriter,
        fanout: FanOut,
        supervision: Supervision,
        leases: WorktreeLeases,
        log: DaemonLog,
        own: Callable[[Awaitable[Any]], None],
        removed: Callable[[str], bool],
    ) -> None:
        self.host = host
        self.store = store
        self.writer = writer
        self.fanout = fanout
        self.supervision = supervision
        self.leases = leases
        self.log = log
        self._own = own
        self._removed = removed
        """True if an agent left tundra.toml (then forgotten, not restarted)."""
        self.owned: Callable[[str], bool] = lambda agent: False
        """True for an agent the dispatcher started: when it dies holding a bead, the
        witness gives the bead back and dispatch decides again; supervision keeps out."""

    def on_host(self, event: HostEvent) -> None:
        if isinstance(event, ScreenChanged):
            self.fanout.screen_changed(event.agent, event.rows)
        elif isinstance(event, StateChanged):
            self._record_state(event)
            self.fanout.publish(state_event(event.agent, event.state, event.evidence), event.agent)
        elif isinstance(event, Trouble):
            data = {"kind": event.kind or "cleared", "matched": event.matched}
            self.writer.submit(
                f"{event.agent} trouble",
                lambda: self.store.events.record(
                    "agent.trouble", actor=ACTOR, agent=event.agent, data=data
                ),
            )
            self.fanout.publish(
                TroubleEvent(agent=event.agent, kind=event.kind, matched=event.matched),
                event.agent,
            )
        elif isinstance(event, Exited):
            self._exited(event)

    def _exited(self, event: Exited) -> None:
        session = self.host.session(event.agent)
        status = session.exit_status
        self.log.info("agent.exited", agent=event.agent, exit=status and status.describe())
        self._own(self.leases.release(event.agent))
        removed = self._removed(event.agent)
        if session.state is AgentState.FAILED and not removed and not self.owned(event.agent):
            self._own(self.supervision.crashed(event.agent))  # a crash: not a stop, not `exit`
        self.fanout.publish(
            ExitedEvent(agent=event.agent, code=event.code, signal=event.signal), event.agent
        )

    def on_book(self, event: BookEvent) -> None:
        """Requests opened, upgraded or closed: one message each, to every client."""
        approval = event.approval
        if isinstance(event, ApprovalRequested):
            self.log.info(
                "approval.requested",
                agent=approval.agent,
                id=approval.id,
                source=approval.source.value,
                tool=approval.tool,
            )
            self.fanout.publish(ApprovalEvent(approval=ApprovalInfo.of(approval)), approval.agent)
        elif isinstance(event, ApprovalResolved):
            self.log.info(
                f"approval.{approval.status.value}",
                agent=approval.agent,
                id=approval.id,
                by=approval.decided_by,
            )
            self.fanout.publish(
                ApprovalResolvedEvent(approval=ApprovalInfo.of(approval)), approval.agent
            )

    def _record_state(self, event: StateChanged) -> None:
        try:
            session = self.host.session(event.agent)
        except NotFound:
            return
        exit_status = session.exit_status
        pid = session.pid
        # Read when the write is made, so writes kept for a locked store hold no screen each.
        self.writer.submit(
            f"{event.agent} {event.state.value}",
            lambda: self.store.agents.set_state(
                event.agent,
                event.state,
                actor=ACTOR,
                pid=pid,
                exit_status=exit_status.code if exit_status is not None else None,
                evidence=event.evidence,
                last_screen=session.emulator.text(),
            ),
        )
