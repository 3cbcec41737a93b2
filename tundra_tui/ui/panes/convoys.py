"""The Convoys tab: each convoy's progress, the beads of the one selected, start and pause.

Start and pause are requests to the daemon as the operator (its `ChangedEvent` makes
the app reload this pane once); a move the state machine refuses is one line saying why.
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

from tundra_tui.daemon.protocol import ConvoyChanged, ConvoyMove
from tundra_tui.domain.beads import Bead, BeadStatus
from tundra_tui.domain.convoys import Convoy, ConvoyStatus, grade_summary
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.kanban import grade_glyph
from tundra_tui.domain.readout import bar
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import Column, NavTable

WIDE = 160
"""Pane width from which the convoys and their beads sit side by side."""
BAR_WIDTH = 16
STATUS_TONES = {
    ConvoyStatus.ACTIVE: "good",
    ConvoyStatus.PAUSED: "warn",
    ConvoyStatus.COMPLETED: "accent",
    ConvoyStatus.PENDING: "muted",
}
BEAD_TONES = {
    BeadStatus.DONE: "good",
    BeadStatus.FAILED: "bad",
    BeadStatus.ESCALATED: "bad",
    BeadStatus.BACKLOG: "muted",
}


class ConvoysPane(Pane):
    """Convoys above (or beside) the selected convoy's beads; `S` starts it, `p` pauses it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("S", "start", "Start convoy", id="convoys-start"),
        Binding("p", "pause", "Pause convoy", id="convoys-pause"),
    ]
    SHOWS: ClassVar[frozenset[str]] = frozenset({"beads", "convoys"})

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.needle = ""
        """The `/` filter, casefolded."""
        self._convoys: list[Convoy] = []
        self._beads: list[Bead] = []
        self._beads_of: int | None = None
        self._hits: frozenset[int] = frozenset()
        self._generation = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="convoys-list-box", classes="convoys-box"):
            yield NavTable(id="convoys-table")
        with Vertical(id="convoys-beads-box", classes="convoys-box"):
            yield NavTable(id="convoys-beads")

    def on_mount(self) -> None:
        self.query_one("#convoys-list-box").border_title = "Convoys"
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Theme) -> None:
        self._fill_convoys()
        self._fill_beads()

    @property
    def wide(self) -> bool:
        """Whether convoys and beads sit side by side."""
        return self.size.width >= WIDE

    def on_resize(self, event: Resize) -> None:
        if self.has_class("-wide") != self.wide:
            self.set_class(self.wide, "-wide")
            self._fill_convoys()

    # ---- reading -----------------------------------------------------------------------------

    async def reload(self) -> None:
        self._generation += 1
        generation = self._generation
        store = self.services.store
        try:
            convoys = await store.convoys.all()
            hits = await self._bead_hits(self.needle)
            selected = self._selected_id() or (convoys[0].id if convoys else None)
            beads = await store.beads.find(convoy_id=selected) if selected is not None else []
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        if generation != self._generation:
            return
        self._convoys, self._hits = convoys, hits
        self._beads, self._beads_of = beads, selected
        self._fill_convoys()
        self._fill_beads()

    async def _bead_hits(self, needle: str) -> frozenset[int]:
        """Convoys holding a bead whose title or description matches the search."""
        if not needle:
            return frozenset()
        found = await self.services.store.beads.find(search=needle)
        return frozenset(b.convoy_id for b in found if b.convoy_id is not None)

    def search(self, text: str) -> None:
        self.needle = text.strip().casefold()
        self._search()

    @work(exclusive=True, group="convoys-search", exit_on_error=False)
    async def _search(self) -> None:
        try:
            self._hits = await self._bead_hits(self.needle)
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self._fill_convoys()
        self._fill_beads()

    def _selected_id(self) -> int | None:
        key = self.query_one("#convoys-table", NavTable).current_key
        return int(key) if key is not None else None

    @property
    def selected(self) -> Convoy | None:
        """The convoy under the cursor."""
        chosen = self._selected_id()
        return next((c for c in self._convoys if c.id == chosen), None)

    @on(DataTable.RowHighlighted, "#convoys-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        chosen = self._selected_id()
        if chosen is not None and chosen != self._beads_of:
            self.load_beads(chosen)

    @work(exclusive=True, group="convoys-beads", exit_on_error=False)
    async def load_beads(self, convoy_id: int) -> None:
        """Read the beads of one convoy."""
        try:
            beads = await self.services.store.beads.find(convoy_id=convoy_id)
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self._beads, self._beads_of = beads, convoy_id
        self._fill_beads()

    # ---- drawing -----------------------------------------------------------------------------

    def _fill_convoys(self) -> None:
        table = self.query_one("#convoys-table", NavTable)
        wide = self.wide
        rows = []
        for convoy in self._convoys:
            name = visible(convoy.name, single_line=True)
            description = visible(convoy.description, single_line=True)
            if not self._shows(convoy):
                continue
            progress = convoy.progress
            filled, empty = bar(progress.fraction, BAR_WIDTH * (2 if wide else 1))
            done = f"{progress.done}/{progress.total}"
            if progress.failed:
                done += f" ✗{progress.failed}"
            cells = [
                Text(name),
                Text(convoy.status.value, table.tone(STATUS_TONES[convoy.status])),
                Text.assemble((filled, table.tone("good")), (empty, table.tone("muted"))),
                Text(done, justify="right"),
                Text(f"{progress.percent}%", justify="right"),
            ]
            if wide:
                cells.append(Text(description, table.tone("muted")))
            rows.append((str(convoy.id), cells))
        columns = [Column("Convoy"), Column("Status"), Column("Progress"), Column("Done")]
        columns.append(Column("%"))
        if wide:
            columns.append(Column("Description", flex=True))
        table.fill(columns, rows)
        active = sum(1 for c in self._convoys if c.status is ConvoyStatus.ACTIVE)
        box = self.query_one("#convoys-list-box")
        box.border_subtitle = f"{len(rows)} of {len(self._convoys)} · {active} active"
        chosen = self._selected_id()
        if chosen is not None and chosen != self._beads_of:
            self.load_beads(chosen)

    def _fill_beads(self) -> None:
        table = self.query_one("#convoys-beads", NavTable)
        chosen = self._selected_id()
        convoy = next((c for c in self._convoys if c.id == chosen == self._beads_of), None)
        every = convoy is not None and self._own_match(convoy)
        rows = []
        for bead in self._beads if convoy is not None else []:
            title = visible(bead.title, single_line=True)
            assignee = visible(bead.assignee, single_line=True, limit=24)
            if not every and not self._found(bead.ref, title, assignee, bead.status.value):
                continue
            cells = [
                Text(bead.ref, table.tone("accent")),
                Text(
                    f"{bead.status.value} {grade_glyph(bead)}".rstrip(),
                    table.tone(BEAD_TONES.get(bead.status, "warn")),
                ),
                Text(title),
                Text(assignee or "-", table.tone("muted") if not assignee else ""),
            ]
            rows.append((str(bead.id), cells))
        columns = [Column("Bead"), Column("Status"), Column("Title", flex=True)]
        table.fill([*columns, Column("Assignee")], rows)
        box = self.query_one("#convoys-beads-box")
        if convoy is None:
            box.border_title = "Beads"
            box.border_subtitle = (
                "no convoy matches" if self._convoys else "no convoy yet: `at convoy create NAME`"
            )
        else:
            box.border_title = Content(f"Beads of {visible(convoy.name, single_line=True)}")
            # Progress by evidence (merged, done by hand, in review): the table has no room.
            grades = grade_summary(convoy.progress).rsplit(" / ", 1)[0]
            box.border_subtitle = (
                f"{grades} · {convoy.progress.total} beads · {convoy.status.value}"
            )

    def _own_match(self, convoy: Convoy) -> bool:
        """Whether the search names the convoy itself (then every bead of it is shown)."""
        name = visible(convoy.name, single_line=True)
        return self._found(name, visible(convoy.description, single_line=True), convoy.status.value)

    def _shows(self, convoy: Convoy) -> bool:
        return self._own_match(convoy) or convoy.id in self._hits

    def _found(self, *fields: str) -> bool:
        return self.needle in " ".join(fields).casefold()

    # ---- keys --------------------------------------------------------------------------------

    def action_start(self) -> None:
        """Start the selected convoy: its beads become ready work."""
        self.move("start")

    def action_pause(self) -> None:
        """Pause the selected convoy: its backlog beads are held back."""
        self.move("pause")

    @work(exclusive=True, group="convoys-write", exit_on_error=False)
    async def move(self, verb: str) -> None:
        """Start or pause the selected convoy, or say why it cannot be."""
        convoy = self.selected
        if convoy is None:
            self.notify("no convoy selected", severity="warning")
            return
        request = ConvoyMove(
            convoy=convoy.name,
            verb="start" if verb == "start" else "pause",
            actor=self.services.actor,
        )
        try:
            moved = await self.services.link.call(request)
        except TundraError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        if isinstance(moved, ConvoyChanged):
            name = visible(moved.name, single_line=True)
            self.notify(f"convoy {name}: {moved.status}", markup=False)

    def focus_default(self) -> None:
        self.query_one("#convoys-table", NavTable).focus()
