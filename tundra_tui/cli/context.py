"""What every command handler gets: the parsed arguments and lazily opened town, config and store.

Opening is lazy so that `at init`, `at detect` and `--help` never need a town,
and a command that fails on its arguments never touches the database.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from tundra_tui.config import LayeredConfig, load_config
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town, ensure_state_dir, find_town


@dataclass
class Context:
    """Per-invocation state. Handlers ask for the town, config or store only when they need it."""

    args: argparse.Namespace
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _town: Town | None = None
    _config: LayeredConfig | None = None
    _store: Store | None = None

    @property
    def json(self) -> bool:
        """True when the command was asked for machine-readable output."""
        return bool(getattr(self.args, "json", False))

    @property
    def actor(self) -> str:
        """Who is acting: agents run `at` with TUNDRA_ACTOR set to their name."""
        return self.env.get("TUNDRA_ACTOR") or OPERATOR

    def town(self) -> Town:
        """The town from --town, TUNDRA_TOWN or the nearest parent holding tundra.toml."""
        if self._town is None:
            self._town = find_town(getattr(self.args, "town", None), env=self.env)
        return self._town

    def use_town(self, town: Town) -> None:
        """Work in `town` (used by `at init`, which creates the town it then opens)."""
        self._town = town

    def config(self) -> LayeredConfig:
        """The layered configuration of the town; unknown keys are warned about once (each
        warning already says the key is ignored)."""
        if self._config is None:
            self._config = load_config(self.town())
            for issue in self._config.warnings:
                print(f"at: warning: {issue}", file=sys.stderr)
        return self._config

    async def store(self) -> Store:
        """The town database, opened with the configured discipline and synced to the roster."""
        if self._store is None:
            config = self.config()
            town = self.town()
            ensure_state_dir(town)
            store = await open_store(
                town.db_path,
                busy_timeout_ms=int(config.get("store.busy_timeout_ms")),
                synchronous=str(config.get("store.synchronous")),
                # A damaged file can still be read (list, show); any write says why not.
                allow_damaged=True,
                # The page check waits for the first write: `at cost` and other reads of a
                # big town the daemon keeps changing do not read every page first.
                check_on_write=True,
            )
            self._store = store
            await self.sync_roster()
        return self._store

    def reload_config(self) -> None:
        """Forget the cached config after a command changed a file."""
        self._config = None

    async def sync_roster(self) -> None:
        """Mirror the configured agents into the store."""
        store = await self.store()
        roster = [
            RosterEntry(spec.name, spec.role, spec.runtime, spec.model)
            for spec in self.config().agents().values()
        ]
        await store.agents.sync_roster(roster, actor=self.actor)

    async def close(self) -> None:
        """Close whatever was opened."""
        if self._store is not None:
            await self._store.close()
            self._store = None
