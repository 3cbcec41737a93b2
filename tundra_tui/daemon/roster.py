"""The team as `at agent list` prints it, answered by the daemon (`Agents(roster=True)`).

`at agent list` used to open the store, validate tundra.toml and ask the daemon for
its sessions: most of its time went on imports. The daemon already holds all three,
so it answers on its own and the command stays a thin client (cli/quick.py). The
validated configuration is kept until one of its files changes: validating a team of
fifty takes about 100 ms on a slow machine, and the command is asked for again and
again by scripts and agents.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from tundra_tui.config import AgentSpec, global_config_path, load_config
from tundra_tui.daemon.protocol import AgentRow
from tundra_tui.domain.agents import AgentState
from tundra_tui.store import Store
from tundra_tui.town import Town

_Stamp = tuple[tuple[int, int, int, int] | None, ...]


class Roster:
    """Builds the roster rows from the configuration (cached), the store and the sessions."""

    def __init__(self, town: Town, store: Store) -> None:
        self.town = town
        self.store = store
        self._stamp: _Stamp | None = None
        self._specs: dict[str, AgentSpec] = {}

    def specs(self) -> dict[str, AgentSpec]:
        """The configured agents, validated again only when a layer file changed.

        A file that does not validate raises its ConfigError (one line, sent to the
        client) and is read again next time.
        """
        stamp = self._stamp_now()
        if stamp != self._stamp:
            # Stamped before reading: a change made meanwhile shows as another stamp next time.
            self._specs = load_config(self.town).agents()
            self._stamp = stamp
        return self._specs

    async def rows(self, sessions: list[AgentRow]) -> list[AgentRow]:
        """Every configured agent in tundra.toml's order, running or not.

        A running agent's state, pid and uptime are its session's (the store is written
        a moment later); the others' are the store's last record. The store is read once
        for the whole team (each wait on it is a turn of the daemon's busy loop).
        """
        specs = self.specs()
        listing = await self.store.agents.listing()
        live = {row.name: row for row in sessions}
        rows: list[AgentRow] = []
        for name, spec in specs.items():
            state, pid = listing.states.get(name, (AgentState.STOPPED, None))
            row = live.get(name) or AgentRow(
                name=name, state=state.value, glyph=state.glyph, runtime="", pid=pid
            )
            rows.append(
                msgspec.structs.replace(
                    row,
                    runtime=spec.runtime.value,
                    role=spec.role.value,
                    model=spec.model,
                    command=spec.command,
                    holds=listing.held.get(name, []),
                )
            )
        return rows

    def _stamp_now(self) -> _Stamp:
        """Identity, size and times of every configuration file (None where there is none)."""
        paths: tuple[Path, ...] = (
            global_config_path(),
            self.town.config_path,
            self.town.local_config_path,
        )
        stamps: list[tuple[int, int, int, int] | None] = []
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                stamps.append(None)
                continue
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
        return tuple(stamps)
