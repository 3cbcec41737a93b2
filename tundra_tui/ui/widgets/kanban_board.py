"""The kanban board: its columns side by side and the cursor that moves between cards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

from tundra_tui.domain.beads import Bead
from tundra_tui.domain.kanban import BOARD, BoardColumn, place_cursor
from tundra_tui.ui.widgets.focus_look import FocusLook
from tundra_tui.ui.widgets.kanban_column import KanbanColumn

MIN_COLUMN_WIDTH = 16
"""Narrower than this, a card cannot show `#id ▲P0` and a readable title."""


class KanbanBoard(FocusLook, Widget, can_focus=True):
    """Owns the cursor and the vim motions; the pane owns what the keys do to a bead.

    When the terminal is too narrow for every column, the board shows as many as fit
    and slides them so the cursor's column stays in view (`hidden` names the others).
    """

    DEFAULT_CSS = """
    KanbanBoard { layout: horizontal; height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor(0, 1)", "Next card", id="beads-down", show=False),
        Binding("k,up", "cursor(0, -1)", "Previous card", id="beads-up", show=False),
        Binding("h,left", "cursor(-1, 0)", "Column left", id="beads-left", show=False),
        Binding("l,right", "cursor(1, 0)", "Column right", id="beads-right", show=False),
        Binding("g,home", "edge(-1)", "First card", id="beads-first", show=False),
        Binding("G,end", "edge(1)", "Last card", id="beads-last", show=False),
    ]

    class WindowChanged(Message):
        """Which columns are out of view changed (the pane's header names them)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: list[BoardColumn] = []
        self.blocked: frozenset[int] = frozenset()
        self.column = 0
        self.row = 0
        self.first = 0
        """The leftmost column in view."""
        self._want: int | None = None
        self._window = (-1, 0)
        """(first, count) of the columns in view; nothing has been laid out yet."""

    def compose(self) -> ComposeResult:
        for index, spec in enumerate(BOARD):
            yield KanbanColumn(spec, id=f"beads-column-{index}")

    @property
    def current(self) -> Bead | None:
        """The bead under the cursor, if the cursor's column has any."""
        if self.column < len(self.columns):
            beads = self.columns[self.column].beads
            if self.row < len(beads):
                return beads[self.row]
        return None

    @property
    def hidden(self) -> tuple[list[BoardColumn], list[BoardColumn]]:
        """The columns scrolled out of view to the left and to the right."""
        first, count = self._window
        return self.columns[:first], self.columns[first + count :]

    def set_board(self, columns: Sequence[BoardColumn], blocked: frozenset[int]) -> None:
        """Show new contents; the cursor stays on its bead if the bead is still shown."""
        current = self.current
        wanted = self._want if self._want is not None else (current.id if current else None)
        self._want = None
        self.columns = list(columns)
        self.blocked = blocked
        ids = [[bead.id for bead in column.beads] for column in self.columns]
        self.column, self.row = place_cursor(ids, wanted, self.column, self.row)
        self._redraw()

    def select(self, bead_id: int) -> None:
        """Put the cursor on `bead_id` at the next `set_board` (e.g. a bead just created)."""
        self._want = bead_id

    # ---- motions ---------------------------------------------------------------------------

    def action_cursor(self, columns: int, rows: int) -> None:
        """Move one card down/up, or one column left/right keeping the nearest row."""
        if not self.columns:
            return
        self.column = min(max(self.column + columns, 0), len(self.columns) - 1)
        size = len(self.columns[self.column].beads)
        self.row = min(max(self.row + rows, 0), max(size - 1, 0))
        self._redraw()

    def action_edge(self, direction: int) -> None:
        """Jump to the first or last card of the column."""
        if self.columns:
            size = len(self.columns[self.column].beads)
            self.row = 0 if direction < 0 else max(size - 1, 0)
            self._redraw()

    # ---- drawing ---------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._redraw()

    def restyle_focus(self, focused: bool) -> None:
        """Restyle the board alone, not its columns: how they look does not depend on the
        board's focus (`_redraw` hands it to them), and restyling a column matches every one
        of its component classes again (seven columns, on every switch to and from the tab)."""
        self.app.stylesheet.update_nodes([self], animate=True)

    def on_focus(self) -> None:
        self._redraw()

    def on_blur(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        self._slide_window()
        for index, widget in enumerate(self.query(KanbanColumn)):
            if index < len(self.columns):
                widget.show(
                    self.columns[index],
                    blocked=self.blocked,
                    cursor=self.row if index == self.column else None,
                    focused=self.has_focus,
                )

    def _slide_window(self) -> None:
        """Show as many columns as fit, sliding just enough to keep the cursor in view."""
        total = len(BOARD)
        width = self.size.width
        count = total if width <= 0 else max(1, min(total, width // MIN_COLUMN_WIDTH))
        first = min(self.first, total - count)
        if self.column < first:
            first = self.column
        elif self.column >= first + count:
            first = self.column - count + 1
        self.first = first
        if (first, count) == self._window:
            return
        self._window = (first, count)
        for index, widget in enumerate(self.query(KanbanColumn)):
            widget.display = first <= index < first + count
            widget.set_class(index == first, "-first")
        self.post_message(self.WindowChanged())
