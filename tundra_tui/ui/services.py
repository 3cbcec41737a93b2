"""Everything a pane needs, handed down from the app (attributes down, messages up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tundra_tui.config import LayeredConfig, load_config
from tundra_tui.domain.clock import Clock, system_clock
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.store import Store
from tundra_tui.town import Town
from tundra_tui.ui.link import Link
from tundra_tui.ui.live import LiveModel


@dataclass
class Services:
    """The town, its database, the daemon link, the live model and the clock."""

    town: Town
    store: Store
    link: Link
    live: LiveModel = field(default_factory=LiveModel)
    clock: Clock = system_clock
    """Where agents' usage logs are written (followed by the watcher, read by Costs)."""
    actor: str = OPERATOR
    """Who the events written from the TUI name."""
    _config: LayeredConfig | None = None

    def now(self) -> datetime:
        """The current time (fixed in snapshot tests)."""
        return self.clock()

    @property
    def config(self) -> LayeredConfig:
        """The town's layered configuration, read once and re-read after `reload_config`."""
        if self._config is None:
            self._config = load_config(self.town)
        return self._config

    def reload_config(self) -> LayeredConfig:
        """Read the configuration again (after an edit); a broken file raises ConfigError and
        the last good configuration stays in use."""
        self._config = load_config(self.town)
        return self._config
