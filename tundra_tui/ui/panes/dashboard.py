"""The Dashboard tab: KPI cards, active agents, recent activity and what needs attention.

Everything shown is computed by `domain.overview` from one read of the store plus the
live model; daemon events redraw from the cached read without touching the store.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.theme import Theme
from textual.widgets import DataTable

from tundra_tui.domain.agents import Agent
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.clock import iso
from tundra_tui.domain.convoys import Convoy
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.domain.overview import (
    AgentView,
    AttentionItem,
    Spend,
    active,
    agent_card,
    agent_views,
    attention,
    bead_card,
    convoy_card,
    cost_card,
)
from tundra_tui.domain.readout import DayWindow, day_window, money, percent
from tundra_tui.ui.keymap import display_keys
from tundra_tui.ui.live import Change, notice_items
from tundra_tui.ui.messages import OpenApproval
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import Column, NavTable
from tundra_tui.ui.widgets.recap import RecapPanel, recap_lines
from tundra_tui.ui.widgets.stat_card import StatCard

# The recap's domain and store modules are imported once the operator comes back: the
# Dashboard is every first frame, and a recap is not.

ACTIVITY = 100
"""Events read for the activity feed (newest first)."""
WIDE = 200
"""Pane width from which cards show every status on their own lines."""
AGENT_DETAIL = (50, 70)
"""Active agents' table widths from which each row adds its state and bead, then its runtime
and today's spend (below the first: glyph, name, model, context)."""
PARTS = {
    "agents": "agents",
    "config": "agents",
    "beads": "beads",
    "convoys": "convoys",
    "usage": "usage",
    "events": "events",
}
"""The part of the read each change touches (`changed`); anything else re-reads them all."""
EVERYTHING = frozenset(PARTS.values())
LIVE_GAP_S = 0.25
"""Daemon events are drawn at most this often: twenty busy agents change state several times
a second, and each drawing rebuilds the agents table (the latest state is always drawn)."""
LIVE_KINDS = frozenset(
    {"state", "approval", "approval_resolved", "exited", "trouble", "link"}
    | {"attention", "attention_bell"}
)
"""Daemon events that change what the dashboard shows (screens do not)."""


class DashboardPane(Pane):
    """The town at a glance. `enter` on a waiting approval in Attention opens it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_attention", "Open approval", id="dashboard-open"),
        Binding("x", "dismiss_recap", "Dismiss the recap", id="dashboard-dismiss-recap"),
    ]

    SHOWS: ClassVar[frozenset[str]] = frozenset(PARTS)
    """Stored agents (and the roster), bead counts, convoys, today's spend and the event log;
    a change re-reads only its part."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.needle = ""
        """The `/` filter, casefolded (empty shows everything)."""
        self._agents: list[Agent] = []
        self._counts: dict[BeadStatus, int] = {}
        self._convoys: list[Convoy] = []
        self._spend = Spend()
        self._latest: dict[str, UsageSample] = {}
        self._held: dict[str, int] = {}
        """Each agent's held (hooked or slung) bead."""
        self._agent_costs: dict[str, float] = {}
        """What each agent spent today."""
        self._detail_drawn = -1
        self._events: list[Event] = []
        self._attention: list[AttentionItem] = []
        self._generation = 0
        self._today = ""
        """The day the last read was for (the start of "today" in the cost card)."""
        self._clock = ""
        """The time of day the cost card compares yesterday at: when the spend was read."""
        self._live_dirty = False
        """Daemon events came while hidden: the live parts are drawn when shown again."""
        self._live_drawn = 0.0
        self._live_due = False
        """When the live parts were last drawn; whether a drawing waits for LIVE_GAP_S."""
        self._dirty: set[str] | None = set()
        """The parts the next reload re-reads (see PARTS); None or empty: every part."""
        self._activity_basis: tuple[object, ...] = ()
        self._activity_rows: dict[int, tuple[str, list[Text]] | None] = {}
        """The feed's row of each event held (None: filtered out), built for `_activity_basis`."""
        self._away: tuple[str, str] | None = None
        """The absence the recap is (to be) read for: (since, until) store timestamps."""
        self._left = ""
        """When the operator left, if the recap starts later (`recap_start`)."""

    def compose(self) -> ComposeResult:
        yield RecapPanel(id="dash-recap")
        with Horizontal(id="dash-cards"):
            yield StatCard("Agents", id="card-agents")
            yield StatCard("Beads", id="card-beads")
            yield StatCard("Convoys", id="card-convoys")
            yield StatCard("Cost today", id="card-cost")
        with Horizontal(id="dash-panels"):
            with Vertical(id="dash-agents-box", classes="dash-box"):
                yield NavTable(id="dash-agents")
            with Vertical(id="dash-activity-box", classes="dash-box"):
                yield NavTable(id="dash-activity", show_header=False)
        with Vertical(id="dash-attention-box", classes="dash-box"):
            yield NavTable(id="dash-attention", show_header=False)

    def on_mount(self) -> None:
        self.query_one("#dash-agents-box").border_title = "Active agents"
        self.query_one("#dash-activity-box").border_title = "Recent activity"
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        if self._away is not None:
            self._read_recap()

    def _theme_changed(self, theme: Theme) -> None:
        self._redraw()

    @property
    def wide(self) -> bool:
        """Whether the cards have room for every status."""
        return self.size.width >= WIDE

    def on_resize(self, event: Resize) -> None:
        self.query_one(RecapPanel).refresh(layout=True)  # roomy or compact
        if self._agent_detail() != self._detail_drawn:
            self.call_after_refresh(self._redraw_live)  # the table has its new width then
        if self.has_class("-wide") != self.wide:
            self.set_class(self.wide, "-wide")
            self._redraw()

    # ---- reading -----------------------------------------------------------------------------

    def changed(self, what: str) -> None:
        if not self._today:
            return  # never read yet: the first reload reads everything
        part = PARTS.get(what)
        if self._dirty is not None and part is not None:
            self._dirty.add(part)
        else:
            self._dirty = None

    async def reload(self) -> None:
        """Re-read the parts that changed (all of them when none was named: the first show,
        `r`, a new day); redraw only what they show."""
        self._generation += 1
        generation = self._generation
        dirty, self._dirty = self._dirty, set()
        parts = frozenset(dirty) if dirty else EVERYTHING
        now = self.services.now().astimezone()
        window = day_window(now)
        if window.today != self._today:
            parts = EVERYTHING  # "today" moved on
        try:
            read = await self._read(parts, window)
        except TundraError as error:
            self._dirty = None  # read it all next time
            self.notify(str(error), severity="error", markup=False)
            return
        if generation != self._generation:
            # A newer reload started meanwhile: its result wins, and it reads this one's parts.
            self._dirty = None if self._dirty is None else self._dirty | parts
            return
        if "agents" in parts:
            self._agents = read["agents"]
        if "beads" in parts:
            self._counts = read["beads"]
            self._held = read["held"]
        if "convoys" in parts:
            self._convoys = read["convoys"]
        if "usage" in parts:
            self._spend, self._latest = read["usage"]
            self._agent_costs = read["agent_costs"]
            self._clock = now.strftime("%H:%M")
        if "events" in parts:
            self._events = read["events"]
        self._today = window.today
        if parts & {"beads", "convoys", "usage"}:
            self._redraw_cards()
        if parts & {"agents", "beads", "usage"} or self._live_dirty:
            self._live_dirty = False
            self._redraw_live()
        if parts & {"events", "convoys"}:
            self._fill_activity()

    async def _read(self, parts: frozenset[str], window: DayWindow) -> dict[str, Any]:
        store = self.services.store
        read: dict[str, Any] = {}
        if "agents" in parts:
            read["agents"] = await store.agents.all()
        if "beads" in parts:
            read["beads"] = await store.beads.counts()
            held = [
                bead
                for status in (BeadStatus.HOOKED, BeadStatus.SLUNG)
                for bead in await store.beads.find(status=status)
            ]
            read["held"] = {b.assignee: b.id for b in reversed(held) if b.assignee}
        if "convoys" in parts:
            read["convoys"] = await store.convoys.all()
        if "usage" in parts:
            metrics = store.metrics
            today = await metrics.total_cost(since=window.today, until=window.tomorrow)
            so_far = await metrics.total_cost(since=window.yesterday, until=window.a_day_ago)
            yesterday = await metrics.total_cost(since=window.yesterday, until=window.today)
            days = await metrics.rollup("day", since=window.today, until=window.tomorrow)
            used = sum(d.input_tokens + d.output_tokens for d in days)
            read["usage"] = Spend(today, so_far, yesterday, used), await metrics.latest_by_agent()
            by_agent = await metrics.rollup("agent", since=window.today, until=window.tomorrow)
            read["agent_costs"] = {row.key: row.cost_usd for row in by_agent if row.samples}
        if "events" in parts:
            read["events"] = await self._read_events()
        return read

    async def _read_events(self) -> list[Event]:
        """The feed, newest first: only the events after the newest one held are read."""
        events = self.services.store.events
        newest = self._events[0].id if self._events else 0
        new = await events.find(after_id=newest, limit=ACTIVITY) if newest else []
        if not newest or len(new) == ACTIVITY:
            return list(reversed(await events.find(limit=ACTIVITY)))
        return (list(reversed(new)) + self._events)[:ACTIVITY]

    def shown_again(self) -> bool:
        """A new day needs a new read (today's spend); else only what the daemon said while
        the tab was hidden is drawn (the feed's times of day do not age)."""
        if self._today != day_window(self.services.now().astimezone()).today:
            return True
        if self._live_dirty:
            self._live_dirty = False
            # After the frame that shows the tab (drawn from what the tables rendered before):
            # the switch shows at once, the states a frame later.
            self.call_after_refresh(self._redraw_live)
        return False

    def live_changed(self, change: Change) -> None:
        if change.kind not in LIVE_KINDS:
            return
        if not self.display:
            self._live_dirty = True  # drawn when shown again, once
        elif not self._live_due:
            wait = self._live_drawn + LIVE_GAP_S - time.monotonic()
            if wait <= 0:
                self._redraw_live()
            else:
                self._live_due = True
                self.set_timer(wait, self._live_now)

    def _live_now(self) -> None:
        self._live_due = False
        if self.display:
            self._redraw_live()
        else:
            self._live_dirty = True

    def search(self, text: str) -> None:
        self.needle = text.strip().casefold()
        self._redraw()

    # ---- drawing -----------------------------------------------------------------------------

    def _views(self) -> list[AgentView]:
        live = self.services.live
        return agent_views(
            self._agents,
            live.agents,
            connected=live.connected,
            latest=self._latest,
            beads=self._held,
            costs=self._agent_costs,
        )

    def _redraw(self) -> None:
        self._redraw_cards()
        self._redraw_live()
        self._fill_activity()

    def _redraw_live(self) -> None:
        self._live_drawn = time.monotonic()
        views = self._views()
        self.query_one("#card-agents", StatCard).show(agent_card(views, wide=self.wide))
        self._fill_agents(views)
        self._fill_attention(views)

    def _redraw_cards(self) -> None:
        wide = self.wide
        clock = self._clock or self.services.now().astimezone().strftime("%H:%M")
        self.query_one("#card-beads", StatCard).show(bead_card(self._counts, wide=wide))
        self.query_one("#card-convoys", StatCard).show(convoy_card(self._convoys, wide=wide))
        self.query_one("#card-cost", StatCard).show(cost_card(self._spend, clock, wide=wide))

    def _agent_detail(self) -> int:
        """How much each active agent's row says, by the table's width (`AGENT_DETAIL`)."""
        width = self.query_one("#dash-agents", NavTable).size.width
        return sum(width >= at for at in AGENT_DETAIL)

    def _fill_agents(self, views: list[AgentView]) -> None:
        table = self.query_one("#dash-agents", NavTable)
        shown = [v for v in active(views) if self._found(v.name, v.model, v.runtime, v.state)]
        detail = self._agent_detail()
        self._detail_drawn = detail
        rows = []
        for view in shown:
            context = Text(percent(view.context), justify="right")
            if view.context is not None and view.context >= 80:
                context.stylize(table.tone("bad" if view.context >= 90 else "warn"))
            cells = [table.glyph(view.state), Text(view.name)]
            if detail >= 1:
                cells.append(Text(view.state.value.replace("_", " ")))
            if detail >= 2:
                cells.append(Text(view.runtime))
            cells.append(Text(view.model or ("-" if detail >= 2 else view.runtime)))
            if detail >= 1:
                cells.append(Text(f"#{view.bead}" if view.bead is not None else "-"))
            cells.append(context)
            if detail >= 2:
                cells.append(
                    Text(money(view.cost) if view.cost is not None else "-", justify="right")
                )
            rows.append((view.name, cells))
        columns = [Column(""), Column("Agent")]
        if detail >= 1:
            columns.append(Column("State"))
        if detail >= 2:
            columns.append(Column("Runtime"))
        columns.append(Column("Model", flex=True))
        if detail >= 1:
            columns.append(Column("Bead"))
        columns.append(Column("Ctx"))
        if detail >= 2:
            columns.append(Column("Today"))
        table.fill(columns, rows)
        box = self.query_one("#dash-agents-box")
        box.border_subtitle = f"{len(shown)} running" if shown else "none running"

    def _fill_activity(self) -> None:
        """The feed; each event's row is built once (until the filter, the day, the theme or
        a convoy's name changes), since new events come many times a second."""
        table = self.query_one("#dash-activity", NavTable)
        now = self.services.now().astimezone()
        names = {c.id: c.name for c in self._convoys}
        basis = (self.needle, now.date(), self.app.theme, tuple(sorted(names.items())))
        if basis != self._activity_basis:
            self._activity_basis, self._activity_rows = basis, {}
        cached = self._activity_rows
        new = [event for event in self._events if event.id not in cached]
        for event in new:
            cached[event.id] = None  # filtered out unless a row comes for it below
        for key, cells in table.event_rows(new, names, needle=self.needle, now=now, short=True):
            cached[int(key)] = (key, cells)
        held = {event.id for event in self._events}
        for gone in [event_id for event_id in cached if event_id not in held]:
            del cached[gone]
        rows = [row for event in self._events if (row := cached[event.id]) is not None]
        table.fill([Column("At"), Column("What", flex=True)], rows)

    def _fill_attention(self, views: list[AgentView]) -> None:
        table = self.query_one("#dash-attention", NavTable)
        live = self.services.live
        items = attention(live.approvals.values(), views) + notice_items(live.notices)
        self._attention = [i for i in items if self._found(i.agent, i.text)]
        rows = []
        for index, item in enumerate(self._attention):
            tone = "warn" if item.approval_id is not None else "bad"
            cells = [Text(item.glyph, table.tone(tone)), Text(item.agent), Text(item.text)]
            rows.append((str(index), cells))
        table.fill([Column(""), Column("Agent"), Column("What", flex=True)], rows)
        box = self.query_one("#dash-attention-box")
        waiting = sum(1 for i in self._attention if i.approval_id is not None)
        box.border_title = f"Attention ({len(self._attention)})"
        if waiting:
            box.border_subtitle = f"{waiting} waiting · enter opens"
        else:
            box.border_subtitle = "" if self._attention else "nothing needs you"
        box.set_class(not self._attention, "-calm")
        limit = 8 if self.wide else 4
        box.styles.height = max(1, min(len(self._attention), limit)) + 2

    def _found(self, *fields: object) -> bool:
        return not self.needle or self.needle in " ".join(map(str, fields)).casefold()

    # ---- while you were away ---------------------------------------------------------------

    def came_back(self, since: datetime, until: datetime) -> None:
        """The operator is back after being away from `since`: lead with a recap of what
        happened until `until` (replacing any earlier one). Too short an absence, none."""
        from tundra_tui.domain.recap import recap_start, worth_recapping

        if not worth_recapping(since, until):
            return
        start = recap_start(since, until)
        self._left = iso(since) if start != since else ""
        self._away = (iso(start), iso(until))
        if self.is_mounted:
            self._read_recap()

    @work(exclusive=True, group="recap", exit_on_error=False)
    async def _read_recap(self) -> None:
        if self._away is None:
            return
        since, until = self._away
        from tundra_tui.store.recap import RecapRepo

        try:
            recap = await RecapRepo(self.services.store.db).read(since, until)
        except TundraError as error:
            self.notify(f"while you were away: {error}", severity="warning", markup=False)
            return
        if self._away != (since, until):
            return  # a newer absence replaced it meanwhile
        recap = replace(recap, left=self._left)
        key = display_keys(self.app._keymap.get("dashboard-dismiss-recap", "x"))
        panel = self.query_one(RecapPanel)
        panel.show(recap, self.services.now().astimezone(), key)
        self.app.refresh_bindings()
        if panel.recap is not None and not self.display:
            # On another tab: say so in a toast, which takes no focus.
            first = recap_lines(panel.recap, roomy=False)[0].plain
            self.notify(f"While you were away: {first} (see the Dashboard)", markup=False)

    def action_dismiss_recap(self) -> None:
        """Hide the recap until the operator is away again."""
        self._away = None
        self.query_one(RecapPanel).show(None, self.services.now())
        self.app.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "dismiss_recap":
            return any(panel.recap is not None for panel in self.query(RecapPanel))
        return True

    # ---- keys --------------------------------------------------------------------------------

    def action_open_attention(self) -> None:
        """Open the approval under the Attention cursor, or the oldest one waiting."""
        table = self.query_one("#dash-attention", NavTable)
        key = table.current_key
        chosen = self._attention[int(key)] if key is not None else None
        if chosen is None or chosen.approval_id is None:
            chosen = next((i for i in self._attention if i.approval_id is not None), None)
        if chosen is None or chosen.approval_id is None:
            self.notify("no approval is waiting", severity="warning")
            return
        self.post_message(OpenApproval(chosen.approval_id))

    @on(DataTable.RowSelected, "#dash-attention")
    def _attention_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_attention()

    def focus_default(self) -> None:
        target = "#dash-attention" if self._attention else "#dash-agents"
        for table in self.query(NavTable):
            if table.id == target[1:]:
                table.focus()
            else:
                table.refresh_focus_look()  # it had focus when the tab was hidden
