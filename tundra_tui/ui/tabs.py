"""The nine tabs, in order: the number key, the title and the pane that fills it."""

from __future__ import annotations

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


def default_tabs() -> tuple[Tab, ...]:
    """The control room's tabs (design §5.1)."""
    from tundra_tui.ui.panes.agents import AgentsPane
    from tundra_tui.ui.panes.analytics import AnalyticsPane
    from tundra_tui.ui.panes.beads import BeadsPane
    from tundra_tui.ui.panes.config import ConfigPane
    from tundra_tui.ui.panes.convoys import ConvoysPane
    from tundra_tui.ui.panes.costs import CostsPane
    from tundra_tui.ui.panes.dashboard import DashboardPane
    from tundra_tui.ui.panes.mcp import McpPane
    from tundra_tui.ui.panes.sessions import SessionsPane

    return (
        Tab("dashboard", "Dashboard", lambda s, i: DashboardPane(s, id=i)),
        Tab("agents", "Agents", lambda s, i: AgentsPane(s, id=i)),
        Tab("beads", "Beads", lambda s, i: BeadsPane(s, id=i)),
        Tab("sessions", "Sessions", lambda s, i: SessionsPane(s, id=i)),
        Tab("convoys", "Convoys", lambda s, i: ConvoysPane(s, id=i)),
        Tab("costs", "Costs", lambda s, i: CostsPane(s, id=i)),
        Tab("analytics", "Analytics", lambda s, i: AnalyticsPane(s, id=i)),
        Tab("config", "Config", lambda s, i: ConfigPane(s, id=i)),
        Tab("mcp", "MCP", lambda s, i: McpPane(s, id=i)),
    )
