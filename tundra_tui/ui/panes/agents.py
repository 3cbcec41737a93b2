"""Tab 2, Agents: the agent list beside a grid of their live terminals.

The list is the selection every key acts on. Tiles show the page of agents holding
the selection (single, split or grid, cycled by `s`; `z` zooms one). `f` hands the
keyboard to the selected agent until `ctrl+]`; `[` scrolls its tile back through the
agent's history. Keys are sent as typed, without waiting for replies; everything else
(approve, start, stop, resize) goes to the daemon through the app.

The daemon is told which agents the tab shows (`Link.show`) whenever that changes, and
nothing while the tab is hidden, so it streams and emulates eagerly only those.
"""

from __future__ import annotations

import contextlib
import time
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.content import Content
from textual.widgets import Static

from tundra_tui.config import AgentSpec
from tundra_tui.daemon.protocol import (
    Approve,
    Deny,
    History,
    HistoryReply,
    Record,
    Resize,
    Restart,
    SendKeys,
    Spawn,
    Stop,
)
from tundra_tui.domain.agents import Agent
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui import collector
from tundra_tui.ui.agent_rows import AgentRow, agent_rows
from tundra_tui.ui.live import Change
from tundra_tui.ui.messages import DaemonRequest, RememberChoice
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.modals.record import RecordModal
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.remote_screen import RemoteScreen
from tundra_tui.ui.services import Services
from tundra_tui.ui.tiling import MAX_TILES, Layout, tile_shape, visible_window
from tundra_tui.ui.widgets.agent_list import AgentList
from tundra_tui.ui.widgets.terminal_view import PaintTurns, TerminalView

SUBJECT_CHARS = 100
"""Characters of a request's subject shown in the approve-all confirmation."""
NO_SCREEN = "(no screen recorded: this agent has not run yet; u starts it)"
"""Shown dimmed in the tile of an agent that is not running and never ran."""
EMPTY_TEXT = "No agents yet. Add one with `at agent add`, then select it and press u to start it."


class AgentsPane(Pane):
    """Agents and their terminals; approvals, start, stop and restart for the selected one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "grab", "Focus terminal", id="agents-focus"),
        Binding("z", "zoom", "Zoom", id="agents-zoom"),
        Binding("s", "split", "Split/grid", id="agents-split"),
        Binding("y", "answer(True)", "Approve", id="agents-approve"),
        Binding("n", "answer(False)", "Deny", id="agents-deny"),
        Binding("a", "approve_all", "Approve all", id="agents-approve-all"),
        Binding("u", "start", "Start", id="agents-start"),
        Binding("x", "stop", "Stop", id="agents-stop"),
        Binding("R", "restart", "Restart", id="agents-restart"),
        Binding("left_square_bracket", "scrollback", "Scrollback", id="agents-history"),
        Binding("d", "record", "Record screen (wrong state?)", show=False, id="agents-record"),
        Binding("escape", "unzoom", "Unzoom", show=False, id="agents-unzoom"),
    ]

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self._agents: list[Agent] = []
        self._specs: dict[str, AgentSpec] = {}
        self._stored: dict[str, tuple[str, RemoteScreen]] = {}
        """Last stored screen (text, parsed) of each agent that is not running."""
        self._filter = ""
        self._layout = Layout.GRID
        self._zoomed = False
        self._grabbed: TerminalView | None = None
        self._tab_shown = False
        """The tab is on screen (between Show and Hide)."""
        self._told: tuple[list[str], list[str]] | None = ([], [])
        self._turns = PaintTurns()
        """The agents the daemon was last told the tab shows (a new connection shows none;
        None: the telling failed and is due again)."""

    def compose(self) -> ComposeResult:
        try:
            fps = int(self.services.config.get("ui.max_fps") or 30)
        except (TundraError, TypeError, ValueError):
            fps = 30
        with contextlib.suppress(TundraError, ValueError):
            self._layout = Layout(str(self.services.config.get("ui.agents_layout")))
        yield AgentList(id="agents-list")
        with Container(id="agents-grid"):
            for index in range(MAX_TILES):
                view = TerminalView(
                    max_fps=fps, history=self._read_history, id=f"agents-tile-{index}"
                )
                view.turns = self._turns  # background tiles repaint one at a time
                view.keys_to = self._send_keys
                yield view
            yield Static(Content(EMPTY_TEXT), id="agents-empty")

    def focus_default(self) -> None:
        self._focus_home()

    @property
    def views(self) -> list[TerminalView]:
        """Every tile, shown or not, in grid order."""
        return list(self.query(TerminalView))

    @property
    def selected(self) -> AgentRow | None:
        """The agent the keys act on."""
        return self.query_one(AgentList).selected

    # Data

    async def reload(self) -> None:
        store = self.services.store
        try:
            self._agents = await store.agents.all()
            self._specs = self.services.config.agents()
            for row in agent_rows(self._agents, self.services.live, self._specs):
                if not row.running:
                    await self._load_stored(row.name)
        except TundraError as error:
            self.notify(str(error), severity="error")
        self._refresh_rows()

    async def _load_stored(self, name: str) -> None:
        try:
            text = await self.services.store.agents.last_screen(name)
        except NotFound:
            text = ""
        if name not in self._stored or self._stored[name][0] != text:
            self._stored[name] = (text, RemoteScreen.from_text(text or NO_SCREEN))

    def live_changed(self, change: Change) -> None:
        # Screens are picked up by each tile's frame timer, but the grabbed tile's at once:
        # it shows the echo of what the operator types. Everything else changes rows.
        if change.kind == "screen":
            grabbed = self._grabbed
            if grabbed is not None and grabbed.agent == change.agent:
                grabbed.tick()
                # The tiles behind it get their turn once its echo is on the terminal.
                grabbed.call_after_refresh(self._tick_background)
        elif change.kind != "ignored":
            self._refresh_rows()

    def _tick_background(self) -> None:
        collector.spare()  # the echo is drawn: the next key is furthest away
        for view in self.views:
            if view.background and view.display:
                view.tick()

    def search(self, text: str) -> None:
        self._filter = text
        self._refresh_rows()

    def _refresh_rows(self) -> None:
        rows = agent_rows(self._agents, self.services.live, self._specs)
        listing = self.query_one(AgentList)
        listing.show_rows([row for row in rows if row.matches(self._filter)])
        listing.border_title = Content(f"Agents {len(listing.rows)}")
        self._arrange()

    # Tiles

    def on_resize(self) -> None:
        self.call_after_refresh(self._arrange)

    def on_option_list_option_highlighted(self) -> None:
        self._arrange()

    def _arrange(self) -> None:
        """Show the page of agents holding the selection in as many tiles as fit."""
        listing = self.query_one(AgentList)
        grid = self.query_one("#agents-grid")
        rows = listing.rows
        selected = listing.highlighted or 0
        layout = Layout.SINGLE if self._zoomed else self._layout
        columns, lines = tile_shape(layout, grid.size.width, grid.size.height, len(rows))
        window = visible_window(len(rows), selected, columns * lines)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = lines
        empty = self.query_one("#agents-empty", Static)
        empty.display = not rows
        if not rows:
            needle = visible(self._filter, single_line=True, limit=40)
            empty.update(Content(f"No agent matches “{needle}”." if self._filter else EMPTY_TEXT))
        mode = "zoom" if self._zoomed else layout.value
        if len(window) < len(rows):
            # Not every agent has a tile: say which are shown (`tiles 4-7/9`), as a pager does.
            shown = f"{window.start + 1}" + (f"-{window.stop}" if len(window) > 1 else "")
            mode += f" · {shown}/{len(rows)}"
        listing.border_subtitle = Content(mode)
        slots = self._slots([rows[index] for index in window])
        current = listing.selected.name if listing.selected else None
        for view, row in zip(self.views, slots, strict=True):
            if view is self._grabbed and (row is None or row.name != view.agent or not row.running):
                # Never let typed keys land in another agent, or pile up for a stopped one.
                self._grabbed = None
                view.release(refocus=True)
                self.notify(f"{visible(view.agent, single_line=True)} left; keys released")
            elif view.scrolling and (row is None or row.name != view.agent):
                view.release(refocus=True)  # its history belongs to an agent no longer here
            if row is None:
                view.display = False
                view.agent = ""
                view.remote_screen = None
                view.drives_size = False
            else:
                self._show(view, row, selected=row.name == current)
        self._tell_shown()

    def _slots(self, shown: list[AgentRow]) -> list[AgentRow | None]:
        """The agent of each tile; the grabbed (or scrolled back) agent keeps its tile when the
        page shifts."""
        slots: list[AgentRow | None] = [*shown, *[None] * (MAX_TILES - len(shown))]
        pinned = self._grabbed or next((v for v in self.views if v.scrolling), None)
        names = [row.name for row in shown]
        if pinned is not None and pinned.agent in names:
            here, there = self.views.index(pinned), names.index(pinned.agent)
            slots[here], slots[there] = slots[there], slots[here]
        return slots

    # What the daemon streams

    def on_show(self) -> None:
        self._tab_shown = True
        self._tell_shown()

    def on_hide(self) -> None:
        self._tab_shown = False
        self._tell_shown()

    def _tell_shown(self) -> None:
        """Tell the daemon which agents' screens are on show, when that changed: the tiles'
        while the tab is on screen, none while it is hidden (no other tab shows a screen)."""
        names = sorted({v.agent for v in self.views if v.display and v.agent})
        # Tiles behind a grabbed one repaint a few times a second: the daemon need not
        # emulate and send them faster (`Show.glance`).
        glance = sorted({v.agent for v in self.views if v.display and v.agent and v.background})
        if not self._tab_shown:
            names, glance = [], []
        if (names, glance) != self._told:
            self._told = (names, glance)
            self._show_agents(names, glance)

    @work(group="agents-show", exclusive=True, exit_on_error=False)
    async def _show_agents(self, names: list[str], glance: list[str]) -> None:
        try:
            await self.services.link.show(names, glance)
        except TundraError:
            self._told = None  # told again with the next change

    async def _read_history(self, name: str, start: int, count: int) -> HistoryReply:
        """A page of an agent's history, for its tile's scrollback."""
        reply: HistoryReply = await self.services.link.call(
            History(name=name, start=start, count=count)
        )
        return reply

    def _show(self, view: TerminalView, row: AgentRow, *, selected: bool) -> None:
        live = self.services.live.agents.get(row.name)
        stored = self._stored.get(row.name)
        if live is not None and (row.running or live.screen.version or stored is None):
            view.remote_screen = live.screen
        else:
            view.remote_screen = stored[1] if stored else None
        view.agent = row.name
        view.display = True
        view.dimmed = not row.running
        view.set_class(selected, "-selected")
        parts = [f"{row.state.glyph} {row.label}", row.note or row.state.value.replace("_", " ")]
        if live is not None and row.running and live.evidence.get("source") == "hook":
            parts.append("by its hooks")  # the agent said so itself, no screen was read (`d`)
        if row.pending:
            parts.append(f"!{row.pending} waiting")
        if row.trouble:
            parts.append(row.trouble)
        view.label = " · ".join(parts)
        view.drives_size = view is self._grabbed or (self._zoomed and selected)
        view.background = self._grabbed is not None and view is not self._grabbed

    def _view_for(self, name: str) -> TerminalView | None:
        return next((v for v in self.views if v.display and v.agent == name), None)

    # Actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unzoom":
            return self._zoomed
        return True

    def action_grab(self) -> None:
        """Send every key to the selected agent until ctrl+]."""
        row = self.selected
        if row is None:
            self.notify("no agent selected")
            return
        if not row.running:
            self.notify(f"{row.label} is not running (u starts it)", severity="warning")
            return
        view = self._view_for(row.name)
        if view is None:
            return
        self._grabbed = view
        view.drives_size = True
        for other in self.views:
            other.background = other is not view
        view.grab()
        self._tell_shown()

    def on_terminal_view_released(self, message: TerminalView.Released) -> None:
        message.stop()
        if self._grabbed is message.view:
            self._grabbed = None
        if self._grabbed is None:
            for view in self.views:
                view.background = False
            self._tell_shown()
        message.view.drives_size = self._zoomed and message.view.has_class("-selected")
        if message.refocus:
            self._focus_home()

    def _focus_home(self) -> None:
        """Focus where the pane's keys work: the list, or the pane itself while the list is
        hidden by zoom (a hidden widget cannot keep focus)."""
        self.can_focus = self._zoomed
        (self if self._zoomed else self.query_one(AgentList)).focus()

    def action_scrollback(self) -> None:
        """Scroll the selected agent's tile back through its history (q or Esc: back to live)."""
        row = self.selected
        if row is None:
            self.notify("no agent selected")
            return
        if not row.running:
            self.notify(f"{row.label} is not running: no history to scroll", severity="warning")
            return
        view = self._view_for(row.name)
        if view is not None:
            view.scroll_back()

    def action_zoom(self) -> None:
        """Show the selected terminal over the whole pane (list hidden), or restore."""
        self._zoomed = not self._zoomed
        self.set_class(self._zoomed, "-zoomed")
        self._focus_home()
        self.refresh_bindings()
        self.call_after_refresh(self._arrange)

    def action_unzoom(self) -> None:
        """Leave zoom."""
        if self._zoomed:
            self.action_zoom()

    def action_split(self) -> None:
        """Cycle the tiles: the selected agent alone, two side by side, as many as fit."""
        self._layout = self._layout.next()
        self._arrange()
        self.post_message(RememberChoice("ui.agents_layout", self._layout.value))

    def action_answer(self, approve: bool) -> None:
        """Approve or deny the selected agent's oldest waiting request."""
        row = self.selected
        if row is None:
            self.notify("no agent selected")
            return
        pending = self.services.live.pending_for(row.name)
        if not pending:
            self.notify(f"{row.label} has no request waiting")
            return
        # The words shown now: the daemon refuses the answer if the request changed since.
        first, actor = pending[0], self.services.actor
        request = (
            Approve(id=first.id, actor=actor, seen=first.subject)
            if approve
            else Deny(id=first.id, actor=actor, seen=first.subject)
        )
        verb = "approved" if approve else "denied"
        self.post_message(DaemonRequest(request, done=f"{verb} {row.label}'s request"))

    def action_approve_all(self) -> None:
        """After a confirmation listing them, approve every request waiting now."""
        pending = sorted(self.services.live.approvals.values(), key=lambda a: a.id)
        if not pending:
            self.notify("no requests waiting")
            return
        items = [
            f"{visible(a.agent, single_line=True, limit=32)}: {a.tool} "
            f"{visible(a.subject, single_line=True, limit=SUBJECT_CHARS)}"
            for a in pending
        ]
        listed = [(a.id, a.subject) for a in pending]
        ids = [approval_id for approval_id, _ in listed]

        def answered(yes: bool | None) -> None:
            # Only what was listed is approved, in the words listed; a request that arrived
            # or changed meanwhile still waits.
            for approval_id, subject in listed if yes else []:
                request = Approve(id=approval_id, actor=self.services.actor, seen=subject)
                self.post_message(DaemonRequest(request, done=f"approved #{approval_id}"))

        question = f"Approve {len(ids)} waiting request{'s' if len(ids) > 1 else ''}?"
        self.app.push_screen(ConfirmModal(question, items, yes="Approve all"), answered)

    def action_start(self) -> None:
        """Start the selected agent."""
        row = self.selected
        if row is None:
            return
        if row.running:
            self.notify(f"{row.label} is already running")
            return
        self.post_message(DaemonRequest(Spawn(name=row.name), done=f"started {row.label}"))

    def action_stop(self) -> None:
        """Stop the selected agent, after a confirmation."""
        row = self.selected
        if row is None:
            return
        if not row.running:
            self.notify(f"{row.label} is not running")
            return
        name, label = row.name, row.label

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(DaemonRequest(Stop(name=name), done=f"stopped {label}"))

        summary = f"{label} ({row.role or '?'}, {row.engine or '?'}) is {row.state.value}"
        self.app.push_screen(ConfirmModal(f"Stop {label}?", [summary], yes="Stop"), answered)

    def action_restart(self) -> None:
        """Restart the selected agent (stop, then start it again), after a confirmation when
        it is running: a restart ends its turn, as a stop does."""
        row = self.selected
        if row is None:
            return
        name, label = row.name, row.label

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(DaemonRequest(Restart(name=name), done=f"restarted {label}"))

        if not row.running:
            answered(True)
            return
        summary = f"{label} ({row.role or '?'}, {row.engine or '?'}) is {row.state.value}"
        self.app.push_screen(ConfirmModal(f"Restart {label}?", [summary], yes="Restart"), answered)

    def action_record(self) -> None:
        """The flight recorder: ask what the selected agent's screen really shows, and have
        the daemon record it with that label (a wrong state becomes a test fixture)."""
        row = self.selected
        if row is None:
            self.notify("no agent selected")
            return
        if not row.running:
            self.notify(f"{row.label} is not running: no live screen to record")
            return
        name = row.name
        live = self.services.live.agents.get(name)
        evidence = dict(live.evidence) if live is not None else {}

        def chosen(label: str | None) -> None:
            if label:
                self.run_worker(self._record(name, label), group="record", exit_on_error=False)

        self.app.push_screen(RecordModal(name, row.state.value, evidence), chosen)

    async def _record(self, name: str, label: str) -> None:
        try:
            reply = await self.services.link.call(Record(name=name, label=label))  # type: ignore[arg-type]
        except TundraError as error:
            self.notify(f"record: {error}", severity="error")
            return
        path = visible(reply.path, single_line=True)
        self.notify(f"recorded {visible(name, single_line=True, limit=64)} as {label}: {path}")

    def on_terminal_view_clicked(self, message: TerminalView.Clicked) -> None:
        message.stop()
        listing = self.query_one(AgentList)
        names = [row.name for row in listing.rows]
        if message.agent in names:
            listing.highlighted = names.index(message.agent)

    # Keys and size for the grabbed agent

    def on_terminal_view_size_changed(self, message: TerminalView.SizeChanged) -> None:
        message.stop()
        resize = Resize(name=message.agent, columns=message.columns, rows=message.rows)
        self.post_message(DaemonRequest(resize))

    def _send_keys(self, agent: str, data: bytes) -> None:
        """Keys go out as typed, in order, without waiting for a reply (so none queue up
        behind a slow request); a refusal (the daemon is gone) is said in one line. The
        tiles call this straight from their key handler (`TerminalView.keys_to`)."""
        self._turns.keyed(time.monotonic())
        try:
            self.services.link.send(SendKeys(name=agent, data=data))
        except TundraError as error:
            self.notify(
                f"keys not sent to {visible(agent, single_line=True)}: {error}",
                severity="error",
            )
