"""The Sessions tab: every agent's process (pid, CPU, memory, uptime, tokens) and a timeline.

Process figures come from the daemon, polled every `ui.refresh_interval_ms` while the
tab is on screen; agents it does not run show the store's last known state. The
timeline is the audit log, oldest first, for every agent or for the one chosen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.events import Resize
from textual.theme import Theme
from textual.widgets import DataTable

from tundra_tui.daemon.protocol import AgentRow as DaemonRow
from tundra_tui.daemon.protocol import Agents
from tundra_tui.domain.agents import Agent
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event
from tundra_tui.domain.readout import duration, memory, percent, tokens
from tundra_tui.domain.sanitize import visible
from tundra_tui.domain.session_rows import CpuMeter, SessionRow, session_rows
from tundra_tui.ui.live import Change
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import Column, NavTable

TIMELINE = 300
"""Events shown in the timeline (the most recent, oldest first)."""
WIDE = 160
"""Pane width from which the table and the timeline sit side by side."""
DEFAULT_INTERVAL = 2.0


class SessionsPane(Pane):
    """Sessions above (or beside) their timeline; `enter` narrows the timeline to one agent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "timeline", "Agent's timeline", id="sessions-timeline"),
        Binding("a", "all_agents", "Every agent's timeline", id="sessions-all"),
    ]

    SHOWS: ClassVar[frozenset[str]] = frozenset({"config", "agents", "usage", "convoys", "events"})
    """The roster and stored agents, tokens per agent, convoy names and the event log (the
    timeline)."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.needle = ""
        """The `/` filter, casefolded."""
        self.agent: str | None = None
        """The agent whose timeline is shown; None for every agent."""
        self.link_error = ""
        """Why the daemon did not answer the last poll ("" when it did)."""
        self._meter = CpuMeter()
        self._stored: list[Agent] = []
        self._tokens: dict[str, int] = {}
        self._daemon: list[DaemonRow] = []
        self._rows: list[SessionRow] = []
        self._events: list[Event] = []
        self._convoy_names: dict[int, str] = {}
        self._generation = 0
        self._timeline_day = ""
        """The day the timeline's times were written for (today's show no date)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions-table-box", classes="sessions-box"):
            yield NavTable(id="sessions-table")
        with Vertical(id="sessions-timeline-box", classes="sessions-box"):
            yield NavTable(id="sessions-timeline", show_header=False)

    def on_mount(self) -> None:
        self.query_one("#sessions-table-box").border_title = "Sessions"
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self.set_interval(self._interval(), self._tick)
        self._title_timeline()

    def _interval(self) -> float:
        try:
            return max(int(self.services.config.get("ui.refresh_interval_ms")), 50) / 1000
        except (TundraError, TypeError, ValueError):
            return DEFAULT_INTERVAL

    def _theme_changed(self, theme: Theme) -> None:
        self._fill_table()
        self._fill_timeline()

    @property
    def wide(self) -> bool:
        """Whether the table has room for every column beside the timeline."""
        return self.size.width >= WIDE

    def on_resize(self, event: Resize) -> None:
        if self.has_class("-wide") != self.wide:
            self.set_class(self.wide, "-wide")
            self._fill_table()
            self._fill_timeline()

    # ---- reading -----------------------------------------------------------------------------

    async def reload(self) -> None:
        self._generation += 1
        generation = self._generation
        store = self.services.store
        try:
            stored = await store.agents.all()
            rollup = await store.metrics.rollup("agent")
            events = await store.events.find(agent=self.agent, limit=TIMELINE)
            convoys = await store.convoys.all()
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        if generation != self._generation:
            return
        self._convoy_names = {convoy.id: convoy.name for convoy in convoys}
        self._stored = stored
        self._tokens = {row.key: row.input_tokens + row.output_tokens for row in rollup}
        self._events = events
        self._fill_table()
        self._fill_timeline()
        self.poll()

    def shown_again(self) -> bool:
        """The daemon's figures move on their own: ask for them (no store read)."""
        if self._timeline_day != self._today():
            self._fill_timeline()
        self.poll()
        return False

    def _today(self) -> str:
        return self.services.now().astimezone().date().isoformat()

    def _tick(self) -> None:
        if self.is_on_screen:
            self.poll()

    @work(exclusive=True, group="sessions-poll", exit_on_error=False)
    async def poll(self) -> None:
        """Ask the daemon for its sessions' pid, CPU, memory and uptime."""
        try:
            answer = await self.services.link.call(Agents())
        except TundraError as error:
            reason = visible(str(error), single_line=True, limit=200)
            if reason != self.link_error:
                self.notify(
                    f"sessions: {reason}; showing stored states", severity="error", markup=False
                )
            self.link_error = reason
            self._daemon = []
        else:
            self.link_error = ""
            self._daemon = answer.agents
        self._fill_table()

    def live_changed(self, change: Change) -> None:
        if change.kind in ("state", "exited", "trouble") and self.is_on_screen:
            self.poll()

    def search(self, text: str) -> None:
        self.needle = text.strip().casefold()
        self._fill_table()
        self._fill_timeline()

    # ---- drawing -----------------------------------------------------------------------------

    def _fill_table(self) -> None:
        table = self.query_one("#sessions-table", NavTable)
        self._rows = session_rows(self._daemon, self._stored, self._tokens, self._meter)
        wide = self.wide
        rows = []
        for row in self._rows:
            if self.needle and not row.matches(self.needle):
                continue
            cpu = Text(percent(row.cpu), justify="right")
            if row.cpu is not None and row.cpu >= 80:
                cpu.stylize(table.tone("warn"))
            cells = [
                table.glyph(row.state),
                Text(row.label),
            ]
            if wide:
                cells.append(Text(row.state.value))
            cells += [
                Text(row.runtime),
                Text(str(row.pid) if row.pid is not None else "-", justify="right"),
                cpu,
                Text(memory(row.rss_kib), justify="right"),
                Text(duration(row.uptime), justify="right"),
                Text(tokens(row.tokens), justify="right"),
                Text(row.note or ("" if wide else row.state.value), table.tone("muted")),
            ]
            rows.append((row.name, cells))
        columns = [Column(""), Column("Agent")]
        if wide:
            columns.append(Column("State"))
        columns += [
            Column("Runtime"),
            Column("PID"),
            Column("CPU"),
            Column("RSS"),
            Column("Up"),
            Column("Tokens"),
            Column("Note", flex=True),
        ]
        table.fill(columns, rows)
        running = sum(1 for row in self._rows if row.running)
        box = self.query_one("#sessions-table-box")
        box.border_subtitle = Content(
            f"daemon: {self.link_error} · stored states"
            if self.link_error
            else f"{running} running of {len(self._rows)}"
        )
        box.set_class(bool(self.link_error), "-offline")

    def _fill_timeline(self) -> None:
        table = self.query_one("#sessions-timeline", NavTable)
        now = self.services.now().astimezone()
        self._timeline_day = now.date().isoformat()
        rows = table.event_rows(
            self._events, self._convoy_names, needle=self.needle, now=now, short=not self.wide
        )
        follow = not table.has_focus or table.cursor_row >= table.row_count - 1
        table.fill([Column("At"), Column("What", flex=True)], rows)
        if follow and rows:
            table.move_cursor(row=len(rows) - 1, animate=False)
            table.call_after_refresh(table.scroll_end, animate=False)
        self._title_timeline()

    def _title_timeline(self) -> None:
        box = self.query_one("#sessions-timeline-box")
        if self.agent is None:
            box.border_title = "Timeline · every agent"
            box.border_subtitle = "enter: one agent"
        else:
            box.border_title = Content(
                f"Timeline · {visible(self.agent, single_line=True, limit=40)}"
            )
            box.border_subtitle = "a: every agent"

    # ---- keys --------------------------------------------------------------------------------

    def action_timeline(self) -> None:
        """Show the timeline of the agent under the cursor (again: every agent)."""
        key = self.query_one("#sessions-table", NavTable).current_key
        if key is None:
            return
        self._show_agent(None if key == self.agent else key)

    def action_all_agents(self) -> None:
        """Show every agent's events in the timeline."""
        self._show_agent(None)

    def _show_agent(self, agent: str | None) -> None:
        self.agent = agent
        self._title_timeline()
        self.load_timeline()

    @work(exclusive=True, group="sessions-timeline", exit_on_error=False)
    async def load_timeline(self) -> None:
        """Read the chosen agent's (or everyone's) recent events."""
        try:
            self._events = await self.services.store.events.find(agent=self.agent, limit=TIMELINE)
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self._fill_timeline()

    @on(DataTable.RowSelected, "#sessions-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_timeline()

    def focus_default(self) -> None:
        self.query_one("#sessions-table", NavTable).focus()
