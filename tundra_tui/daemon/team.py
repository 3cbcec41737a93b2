"""The team as tundra.toml names it: the store's roster follows the file, at once.

An agent added to the file is known without a restart; one taken out leaves
every list as soon as it no longer runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import watchfiles

from tundra_tui.config import LayeredConfig, load_config
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.host import SessionHost
from tundra_tui.store import RosterEntry, Store
from tundra_tui.town import Town

ACTOR = "daemon"


class Team:
    """Keeps the roster in step with tundra.toml and forgets agents taken out of it."""

    def __init__(
        self,
        town: Town,
        host: SessionHost,
        store: Store,
        writer: StoreWriter,
        log: DaemonLog,
        forgotten: Callable[[str], None],
    ) -> None:
        self.town = town
        self.host = host
        self.store = store
        self.writer = writer
        self.log = log
        self._forgotten = forgotten
        """Called for each agent dropped, so the other parts forget it too."""
        self.changed: Callable[[], None] = lambda: None
        """Called after each change of tundra.toml is read (dispatch plans with it)."""

    def sync(self, config: LayeredConfig) -> None:
        """Make the store's agent list follow tundra.toml (queued like every daemon write)."""
        roster = [RosterEntry(s.name, s.role, s.runtime, s.model) for s in config.agents().values()]
        self.writer.submit("roster", lambda: self.store.agents.sync_roster(roster, actor=ACTOR))

    def names(self) -> set[str] | None:
        """The agents tundra.toml names now; None while it cannot be read."""
        try:
            return set(load_config(self.town).agents())
        except TundraError:
            return None

    def removed(self, agent: str) -> bool:
        """True if `agent` is no longer in tundra.toml (it is then forgotten once stopped)."""
        team = self.names()
        if team is None or agent in team:
            return False
        asyncio.get_running_loop().call_soon(self.forget_removed, team)
        return True

    async def watch(self, stopped: asyncio.Event) -> None:
        """Follow tundra.toml until `stopped`."""
        name = self.town.config_path.name

        def ours(_change: watchfiles.Change, path: str) -> bool:
            return Path(path).name == name

        async for _changes in watchfiles.awatch(
            self.town.root, watch_filter=ours, recursive=False, stop_event=stopped
        ):
            try:
                config = load_config(self.town)
            except TundraError as error:
                self.log.warning("team.unreadable", error=error)
                continue
            self.sync(config)
            self.forget_removed(set(config.agents()))
            self.changed()

    def forget_removed(self, team: set[str]) -> None:
        """An agent taken out of tundra.toml leaves every list once it no longer runs."""
        for session in self.host.sessions():
            if session.name not in team and self.host.forget(session.name):
                self.log.info("agent.removed", agent=session.name)
                self._forgotten(session.name)
