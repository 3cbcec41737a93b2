"""The Beads tab: the kanban board, and the keys that move, close, create and edit beads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from tundra_tui.daemon.protocol import (
    BeadApply,
    BeadChanged,
    BeadCreate,
    BeadMove,
    BeadUpdate,
    RefineryControl,
    RefineryQuery,
    RefineryStatus,
    Request,
    Sling,
    SlingReply,
)
from tundra_tui.daemon.refinery_status import read_status
from tundra_tui.domain.beads import Action, Bead, BeadStatus
from tundra_tui.domain.costs import Cost
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event
from tundra_tui.domain.kanban import GRADE_LEGEND, LEGEND, BeadDraft, build_board
from tundra_tui.domain.refinery import AttemptState
from tundra_tui.domain.sanitize import visible
from tundra_tui.store import KanbanColumn
from tundra_tui.ui.live import Change
from tundra_tui.ui.modals.agent_pick import DISPATCH, AgentChoice, AgentPick
from tundra_tui.ui.modals.bead_detail import BeadDetail, BeadFacts
from tundra_tui.ui.modals.bead_form import BeadForm
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.kanban_board import KanbanBoard
from tundra_tui.ui.widgets.kanban_column import KanbanColumn as ColumnWidget
from tundra_tui.ui.widgets.merge_queue import MergeQueue
from tundra_tui.usage.reports import bead_cost

PER_COLUMN = 200
"""Beads loaded per column; headers still count them all."""
HISTORY = 200
"""Events shown in a bead's history (the most recent)."""
FINISHED = frozenset({BeadStatus.DONE, BeadStatus.FAILED, BeadStatus.ESCALATED})
"""A bead in these is held by nobody: its last agent's later approvals are not about it."""
RECENT = 6
"""Recent merge attempts asked of the refinery for the strip."""


class BeadsPane(Pane):
    """Backlog -> Hooked -> Slung -> Review -> Done, with failed and escalated beside them.

    Every write is a request to the daemon as the operator; the daemon's `ChangedEvent`
    makes the app reload this pane (once), here and in every other client. A refused move
    is one line saying why, and nothing is lost.
    """

    HELP = f"""
Kanban of beads. `H`/`L` move a card to the previous/next column along a legal
transition only; `L` on a Backlog card asks who takes it: an agent (slung to it, as
`at sling` does) or dispatch (it stays ready). A failed or escalated card moves left
back into Backlog. `d` marks done, `Enter` shows everything about a
bead, `n` creates one and `e` edits it. `/` filters by id, title, @agent or lane.

Cards: {LEGEND}
Completion: {GRADE_LEGEND}

The strip under the board is the refinery (the merge queue): what it merges now, the
beads waiting, the latest results. `P` pauses or resumes it, `R` retries the selected
bead's merge (an escalated bead goes back to review, its attempts count from zero),
`o` opens the merge in progress: its gates and the running gate's output as it prints.
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("H", "move(-1)", "Move card left", id="beads-move-left"),
        Binding("L", "move(1)", "Move card right", id="beads-move-right"),
        Binding("enter", "open", "Open bead", id="beads-open"),
        Binding("n", "new", "New bead", id="beads-new"),
        Binding("e", "edit", "Edit bead", id="beads-edit"),
        Binding("d", "done", "Mark done", id="beads-done"),
        Binding("P", "refinery_pause", "Pause/resume merging", id="beads-refinery-pause"),
        Binding("R", "refinery_retry", "Retry merge", id="beads-refinery-retry"),
        Binding("o", "gate_output", "Merge output", id="beads-gate-output"),
    ]

    SHOWS: ClassVar[frozenset[str]] = frozenset({"beads", "refinery", "usage"})
    """The board, the merge queue, and spend (the cards' cost labels)."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.query_text = ""
        """The `/` filter (empty shows every card)."""
        self._sources: list[KanbanColumn] = []
        self._blocked: frozenset[int] = frozenset()
        self._generation = 0
        self._write_lock = asyncio.Lock()
        self._dirty: set[str] | None = None
        """What changed since the last reload (None: everything, e.g. never read yet)."""
        self._ungated: frozenset[int] = frozenset()
        self._costs: dict[int, Cost] = {}
        self.refinery: RefineryStatus | None = None
        """The refinery's last status (what the strip shows)."""

    def compose(self) -> ComposeResult:
        yield Static(id="beads-header")
        yield KanbanBoard(id="beads-board")
        yield MergeQueue(now=self.services.now, legend=GRADE_LEGEND, id="beads-refinery")

    @property
    def board(self) -> KanbanBoard:
        return self.query_one(KanbanBoard)

    # ---- reading -----------------------------------------------------------------------------

    def changed(self, what: str) -> None:
        if self._dirty is not None:
            self._dirty.add(what)

    async def reload(self) -> None:
        """Re-read the board and the refinery's status, or only the status when only the
        refinery changed (it says so at every step of a merge)."""
        dirty, self._dirty = self._dirty, set()
        if dirty == {"refinery"}:
            await self._read_refinery()
            return
        if dirty == {"usage"}:
            await self._read_costs()
            return
        self._generation += 1
        generation = self._generation
        store = self.services.store
        beads = store.beads
        try:
            sources = await beads.kanban(per_column=PER_COLUMN)
            blocked = frozenset(await beads.blocked_ids())
            unchecked = frozenset(await store.merges.ungated_ids())
            costs = await store.metrics.bead_costs(_loaded_ids(sources))
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        if generation != self._generation:
            return  # A newer reload started while this one waited; its result wins.
        self._sources = sources
        self._blocked = blocked
        self._ungated = unchecked
        self._costs = costs
        await self._read_refinery()
        self._redraw()

    async def _read_costs(self) -> None:
        """Re-read the loaded cards' spend only (usage changes often; the board less)."""
        try:
            costs = await self.services.store.metrics.bead_costs(_loaded_ids(self._sources))
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self._costs = costs
        self._show_costs()

    def _show_costs(self) -> None:
        for column in self.board.query(ColumnWidget):
            column.set_costs(self._costs)

    async def _read_refinery(self) -> None:
        """Ask the daemon for the refinery's status; with no daemon, read it from the store."""
        services = self.services
        status: RefineryStatus | None = None
        if services.live.connected:
            try:
                reply = await services.link.call(RefineryQuery(recent=RECENT))
            except TundraError:
                reply = None
            if isinstance(reply, RefineryStatus):
                status = reply
        if status is None:
            try:
                status = await read_status(services.store, services.config, recent=RECENT)
            except TundraError as error:
                self.notify(f"refinery: {error}", severity="error", markup=False)
                return
        self._show_refinery(status)

    def _show_refinery(self, status: RefineryStatus) -> None:
        self.refinery = status
        self.query_one(MergeQueue).show(status)
        current = status.current
        merging = current.bead if current and current.state != AttemptState.CLOSED else None
        for column in self.board.query(ColumnWidget):
            column.set_refinery(merging, self._ungated)

    @work(exclusive=True, group="beads-refinery", exit_on_error=False)
    async def _refresh_refinery(self) -> None:
        await self._read_refinery()

    def live_changed(self, change: Change) -> None:
        if change.kind == "link":
            self._refresh_refinery()  # connected (its status) or gone (the store's)

    def search(self, text: str) -> None:
        self.query_text = text.strip()
        self._redraw()

    def _redraw(self) -> None:
        self._show_costs()
        self.board.set_board(build_board(self._sources, self.query_text), self._blocked)
        self._show_header()

    def on_resize(self) -> None:
        self._show_header()

    @on(KanbanBoard.WindowChanged)
    def _show_header(self) -> None:
        """Name the pane, the filter, the columns out of view and, if it fits, the legend."""
        header = Text(no_wrap=True, overflow="ellipsis")
        left, right = self.board.hidden
        if left:
            header.append("◂ " + "  ".join(f"{c.spec.short} {c.count}" for c in left) + "  ")
        header.append("Beads", "bold")
        if self.query_text:
            header.append("  filter: ")
            header.append(visible(self.query_text, single_line=True, limit=40), "bold")
        if right:
            header.append("  " + "  ".join(f"{c.spec.short} {c.count}" for c in right) + " ▸")
        line = self.query_one("#beads-header", Static)
        width = line.size.width
        if width and width - header.cell_len >= len(LEGEND) + 4:
            header.append(" " * (width - header.cell_len - len(LEGEND)))
            header.append(LEGEND, "dim")
        line.update(header)

    # ---- actions -----------------------------------------------------------------------------

    def _selected(self) -> Bead | None:
        bead = self.board.current
        if bead is None:
            self.notify("no bead selected", severity="warning")
        return bead

    def action_move(self, step: int) -> None:
        """Move the card one column left (-1) or right (+1) along a legal transition; right
        from Backlog asks who takes it (an agent, or dispatch)."""
        if (bead := self._selected()) is None:
            return
        if step > 0 and bead.status is BeadStatus.BACKLOG:
            self._pick_agent(bead)
            return
        self._write(BeadMove(id=bead.id, step=-1 if step < 0 else 1, actor=self.actor))

    @work(exclusive=True, group="beads-pick", exit_on_error=False)
    async def _pick_agent(self, bead: Bead) -> None:
        """Offer the agents (their live state when the daemon says it) and dispatch."""
        live = self.services.live
        try:
            agents = await self.services.store.agents.all()
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        choices = [
            AgentChoice(
                name=agent.name,
                state=(live.agents[agent.name].state if agent.name in live.agents else agent.state),
                role=agent.role,
            )
            for agent in agents
        ]
        title = f"Who takes {bead.ref} {visible(bead.title, single_line=True)}?"
        self.app.push_screen(AgentPick(title, choices), self._picked(bead))

    def _picked(self, bead: Bead) -> Callable[[str | None], None]:
        def picked(choice: str | None) -> None:
            if choice is None:
                return
            if choice == DISPATCH:
                self.notify(f"{bead.ref} stays in Backlog: dispatch hands it out when ready")
                return
            self._sling(bead.id, choice)

        return picked

    @work(group="beads-write", exit_on_error=False)
    async def _sling(self, bead_id: int, agent: str) -> None:
        """Hand the bead to `agent` as `at sling` does (the agent started if stopped, the work
        prompt typed and verified); the board reloads on the daemon's ChangedEvent."""
        async with self._write_lock:
            try:
                reply = await self.services.link.call(
                    Sling(bead=bead_id, agent=agent, actor=self.actor)
                )
            except TundraError as error:
                self.notify(str(error), severity="error", markup=False)
                return
        if not isinstance(reply, SlingReply):
            return
        who = visible(reply.agent, single_line=True)
        if reply.delivered:
            started = " (started)" if reply.started else ""
            self.notify(f"slung #{reply.bead} to {who}{started}", markup=False)
        else:
            why = visible(reply.evidence, single_line=True)
            self.notify(f"#{reply.bead} not taken by {who}: {why}", severity="error", markup=False)

    def action_refinery_pause(self) -> None:
        """Pause the merge queue (an attempt already running completes), or resume it."""
        paused = self.refinery is not None and self.refinery.paused
        verb: Literal["pause", "resume"] = "resume" if paused else "pause"
        self._control(RefineryControl(verb=verb, reason="from the control room"))

    def action_gate_output(self) -> None:
        """Open the merge in progress: its gates and the running gate's output, live."""
        current = self.refinery.current if self.refinery is not None else None
        if current is None or current.state == AttemptState.CLOSED:
            self.notify("the refinery is merging nothing now", severity="warning")
            return
        from tundra_tui.ui.modals.gate_tail import GateTail

        self.app.push_screen(GateTail(self.services.store, current.id))

    def action_refinery_retry(self) -> None:
        """Retry the selected bead's merge: its counted attempts are zeroed, and an
        escalated bead goes back to review."""
        if (bead := self._selected()) is not None:
            self._control(RefineryControl(verb="retry", bead=bead.id))

    @work(group="beads-write", exit_on_error=False)
    async def _control(self, request: RefineryControl) -> None:
        async with self._write_lock:
            try:
                reply = await self.services.link.call(request)
            except TundraError as error:
                self.notify(str(error), severity="error", markup=False)
                return
        if isinstance(reply, RefineryStatus):
            self._show_refinery(reply)

    def action_done(self) -> None:
        """Mark the selected bead done (from slung or review)."""
        if (bead := self._selected()) is not None:
            self._write(BeadApply(id=bead.id, action=Action.DONE, actor=self.actor))

    @property
    def actor(self) -> str:
        return self.services.actor

    def action_open(self) -> None:
        """Show everything about the selected bead."""
        if (bead := self._selected()) is not None:
            self._open(bead.id)

    def action_new(self) -> None:
        """Create a bead (it lands in Backlog, or Hooked if an agent was picked)."""
        self._open_form(None)

    def action_edit(self) -> None:
        """Edit the selected bead's fields and agent."""
        if (bead := self._selected()) is not None:
            self._open_form(bead.id)

    @work(exclusive=True, group="beads-detail", exit_on_error=False)
    async def _open(self, bead_id: int) -> None:
        store = self.services.store
        try:
            bead = await store.beads.get(bead_id)
            history = await store.events.find(bead_id=bead_id, limit=HISTORY)
            approvals: list[Event] = []
            for agent, (start, end) in _holds(bead, history).items():
                found = await store.events.find(agent=agent, kind_prefix="approval.", limit=HISTORY)
                approvals.extend(e for e in found if start <= e.at and (not end or e.at <= end))
            facts = BeadFacts(
                bead=bead,
                blockers=await store.beads.blockers_of(bead_id),
                dependents=await store.beads.dependents_of(bead_id),
                history=history,
                attempts=tuple(await store.merges.for_bead(bead_id)),
                spend=await bead_cost(store, bead_id),
                approvals=approvals,
            )
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self.app.push_screen(BeadDetail(facts))

    @work(exclusive=True, group="beads-form", exit_on_error=False)
    async def _open_form(self, bead_id: int | None) -> None:
        """Read the agents (and the bead, fresh) and open the form on them."""
        store = self.services.store
        try:
            agents = [agent.name for agent in await store.agents.all()]
            bead = await store.beads.get(bead_id) if bead_id is not None else None
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        if bead is None:
            self.app.push_screen(BeadForm(agents=agents), self._created)
        else:
            self.app.push_screen(BeadForm(agents=agents, bead=bead), self._edited(bead.id))

    def _created(self, draft: BeadDraft | None) -> None:
        """Create the bead (the daemon hooks it too if an agent was picked) and select it."""
        if draft is not None:
            request = BeadCreate(
                title=draft.title,
                description=draft.description,
                lane=draft.lane,
                priority=draft.priority,
                assignee=draft.assignee,
                actor=self.actor,
            )
            self._write(request, select=True)

    def _edited(self, bead_id: int) -> Callable[[BeadDraft | None], None]:
        def saved(draft: BeadDraft | None) -> None:
            if draft is not None:
                self._write(
                    BeadUpdate(
                        id=bead_id,
                        title=draft.title,
                        description=draft.description,
                        lane=draft.lane,
                        priority=draft.priority,
                        assignee=draft.assignee,
                        actor=self.actor,
                    )
                )

        return saved

    # ---- writing -----------------------------------------------------------------------------

    # Not exclusive: a second key press must queue behind the first write, not cancel it
    # half-way. The lock sends writes one at a time; the daemon reads each bead afresh.
    @work(group="beads-write", exit_on_error=False)
    async def _write(self, request: Request, *, select: bool = False) -> None:
        """Send one write; the reload comes with the daemon's ChangedEvent, not from here."""
        async with self._write_lock:
            try:
                reply = await self.services.link.call(request)
            except TundraError as error:
                self.notify(str(error), severity="error", markup=False)
                return
        if not isinstance(reply, BeadChanged):
            return
        if reply.warning:
            # The bead exists either way; say why it stayed in Backlog.
            self.notify(reply.warning, severity="error", markup=False)
        if select:
            self.board.select(reply.id)
            if any(b.id == reply.id for column in self._sources for b in column.beads):
                self._redraw()  # the reload came first: put the cursor on it now


def _holds(bead: Bead, history: list[Event]) -> dict[str, tuple[str, str]]:
    """Each agent named in the bead's events, from the first event naming it to the last
    ("" end: it holds the bead still), the span whose approvals belong on its timeline."""
    holds: dict[str, tuple[str, str]] = {}
    for event in history:
        agent = event.agent or str(event.data.get("assignee") or "")
        if agent:
            start, _ = holds.get(agent, (event.at, ""))
            holds[agent] = (start, event.at)
    if bead.assignee in holds and bead.status not in FINISHED:
        holds[bead.assignee] = (holds[bead.assignee][0], "")
    return holds


def _loaded_ids(sources: list[KanbanColumn]) -> list[int]:
    """The ids of every bead the board loaded (the cards that can be drawn)."""
    return [bead.id for column in sources for bead in column.beads]
