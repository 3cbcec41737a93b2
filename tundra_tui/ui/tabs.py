"""The nine tabs, in order: the number key, the title and the pane that fills it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services


@dataclass(frozen=True, slots=True)
class Tab:
    """One tab: `id` names its pane (`pane-<id>`) and its binding (`tab-<id>`)."""

    id: str
    title: str
    make: Callable[[Services, str], Pane]
    module: str = ""
    """The module `make` imports on first use, if any: the app imports it ahead of the tab's
    first show, after the first frame."""


TAB_TITLES: tuple[tuple[str, str], ...] = (
    ("dashboard", "Dashboard"),
    ("agents", "Agents"),
    ("beads", "Beads"),
    ("sessions", "Sessions"),
    ("convoys", "Convoys"),
    ("costs", "Costs"),
    ("analytics", "Analytics"),
    ("config", "Config"),
    ("mcp", "MCP"),
)
"""Tab ids and titles in key order (`1` is the first); the app's bindings come from these."""

PANES: dict[str, str] = {
    "dashboard": "dashboard:DashboardPane",
    "agents": "agents:AgentsPane",
    "beads": "beads:BeadsPane",
    "sessions": "sessions:SessionsPane",
    "convoys": "convoys:ConvoysPane",
    "costs": "costs:CostsPane",
    "analytics": "analytics:AnalyticsPane",
    "config": "config:ConfigPane",
    "mcp": "mcp:McpPane",
}
"""Each tab's pane as `module:class` under `tundra_tui.ui.panes`, imported when first made:
`at tui` shows its first frame without importing the tabs it does not show."""


def _lazy(module: str, name: str) -> Callable[[Services, str], Pane]:
    def make(services: Services, pane_id: str) -> Pane:
        pane_class: type[Pane] = getattr(importlib.import_module(module), name)
        return pane_class(services, id=pane_id)

    return make


def default_tabs() -> tuple[Tab, ...]:
    """The control room's tabs (design §5.1)."""
    tabs = []
    for tab_id, title in TAB_TITLES:
        module, _, name = PANES[tab_id].partition(":")
        path = f"tundra_tui.ui.panes.{module}"
        tabs.append(Tab(tab_id, title, _lazy(path, name), module=path))
    return tuple(tabs)
