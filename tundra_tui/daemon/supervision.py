"""Crashed agents are started again after a growing delay, or left failed, visibly.

The decisions are `orchestra.supervisor.RestartPolicy`'s (pure, tested with exact
times); this part applies them to the host and records each crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import TundraError
from tundra_tui.orchestra.supervisor import RestartPolicy
from tundra_tui.session.host import SessionHost
from tundra_tui.session.launch import relaunch
from tundra_tui.store import Store

ACTOR = "daemon"


class Supervision:
    """One restart policy per agent, and the restarts themselves."""

    def __init__(
        self, host: SessionHost, store: Store, writer: StoreWriter, log: DaemonLog
    ) -> None:
        self.host = host
        self.store = store
        self.writer = writer
        self.log = log
        self.limits = (5, 300.0)
        """(restarts, window seconds), from the daemon's config."""
        self._policies: dict[str, RestartPolicy] = {}

    def policy(self, name: str) -> RestartPolicy:
        if name not in self._policies:
            most, window = self.limits
            self._policies[name] = RestartPolicy(max_restarts=most, window=window)
        return self._policies[name]

    def started_by_hand(self, name: str) -> None:
        """The operator started it: past crashes are forgotten."""
        policy = self.policy(name)
        policy.reset()
        policy.started(time.monotonic())

    def forget(self, name: str) -> None:
        self._policies.pop(name, None)

    async def crashed(self, name: str) -> None:
        """Decide about an exit nobody asked for, and act on it."""
        session = self.host.session(name)
        status = session.exit_status
        decision = self.policy(name).exited(
            time.monotonic(),
            code=status.code if status else None,
            signal=status.signal if status else None,
        )
        data = {"restart": decision.restart, "delay": decision.delay, "reason": decision.reason}
        self.writer.submit(
            f"{name} crashed",
            lambda: self.store.events.record("agent.crashed", actor=ACTOR, agent=name, data=data),
        )
        if not decision.restart:
            self.log.error("agent.gave_up", agent=name, error=decision.reason)
            session.set_state(
                AgentState.FAILED,
                {"source": "supervisor", "rule": "supervisor.gave_up", "matched": decision.reason},
            )
            return
        await asyncio.sleep(decision.delay)
        current = self.host.session(name)
        if current is session and session.exit_status is not None:  # nobody restarted it
            self.policy(name).started(time.monotonic())
            with contextlib.suppress(TundraError):
                await self.host.start(relaunch(session.config))
