"""A read-only row table with vim motions, theme-coloured cells and one column that flexes.

Cells are always `rich.text.Text` (a plain `str` cell would be parsed as markup). The
flexible column takes whatever width the others leave and ends long text with `…`,
so a narrow terminal cuts a summary cleanly instead of scrolling sideways.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.css.styles import RenderStyles
from textual.events import Resize
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist, RowKey

from tundra_tui.domain.activity import byline, matches, summarize
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.events import Event
from tundra_tui.domain.readout import clock_time
from tundra_tui.ui.widgets.focus_look import FocusLook

TONES = ("good", "warn", "bad", "muted", "accent")
"""Cell colours a pane may ask for; each is a component class styled from the theme."""

STATE_TONES = {
    AgentState.WORKING: "good",
    AgentState.AWAITING_APPROVAL: "warn",
    AgentState.FAILED: "bad",
    AgentState.LOST: "bad",
}
"""The tone of each agent state's glyph; the others are muted."""


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its header, and a fixed width, None for its content's width, or `flex`."""

    label: str
    width: int | None = None
    flex: bool = False


class NavTable(FocusLook, DataTable[Text]):
    """Whole-row cursor, `j`/`k`/`g`/`G` motions; rows keep their cursor across refills.

    While it has focus, its container has the class `-focus-within` (what `:focus-within`
    would say, without restyling the table a second time with its container)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="table-down"),
        Binding("k", "cursor_up", "Up", show=False, id="table-up"),
        Binding("g", "scroll_top", "First row", show=False, id="table-first"),
        Binding("G", "scroll_bottom", "Last row", show=False, id="table-last"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        f"nav-table--{tone}" for tone in TONES
    }

    DEFAULT_CSS = """
    NavTable {
        height: 1fr;
        & > .nav-table--good { color: $success; }
        & > .nav-table--warn { color: $warning; }
        & > .nav-table--bad { color: $error; }
        & > .nav-table--muted { color: $foreground-muted; }
        & > .nav-table--accent { color: $accent; }
    }
    """

    MIN_FLEX = 8
    """The flexible column never gets narrower than this."""

    def __init__(self, *, id: str | None = None, show_header: bool = True) -> None:
        super().__init__(id=id, cursor_type="row", show_header=show_header)
        self._columns: tuple[Column, ...] = ()
        self._rows: list[tuple[str, Sequence[Text]]] = []
        self._built_size = Size(0, 0)
        """The size the columns were last fitted to."""
        self._sized = Size(0, 0)
        """The size of the last Resize (see `on_resize`)."""
        self._looks: dict[object, dict[str, RenderStyles]] = {}
        """The component styles (cursor, header...) the cached rows of each focus/hover state
        were drawn with (see `notify_style_update`)."""
        self._restyled = False
        self._line_style: Style | None = None
        """The widget's style while a render is under way (see `render_line`)."""

    def tone(self, name: str) -> Style:
        """The theme's colour for one of TONES, for styling a cell's Text."""
        return self.get_component_rich_style(f"nav-table--{name}", partial=True)

    def glyph(self, state: AgentState) -> Text:
        """An agent's state glyph in its tone (working good, waiting warn, failed/lost bad)."""
        return Text(state.glyph, self.tone(STATE_TONES.get(state, "muted")))

    def event_rows(
        self,
        events: Iterable[Event],
        convoys: Mapping[int, str],
        *,
        needle: str,
        now: datetime,
        short: bool,
    ) -> list[tuple[str, list[Text]]]:
        """Rows of an activity feed, (At, What) each, keeping those that match `needle`."""
        rows = []
        for event in events:
            summary = summarize(event, convoys)
            if needle and not matches(event, summary, needle):
                continue
            who = byline(event, summary)
            line = Text.assemble((who, self.tone("accent")), " " if who else "", summary)
            at = Text(clock_time(event.at, now, short=short), self.tone("muted"))
            rows.append((str(event.id), [at, line]))
        return rows

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor, None for an empty table."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def fill(self, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[Text]]]) -> None:
        """Show `rows` (key, cells); the cursor stays on the same key when it is still there.

        Nothing is redrawn when the rows are the ones already shown (periodic polls).
        """
        if tuple(columns) == self._columns and list(rows) == self._rows:
            return
        self._columns = tuple(columns)
        self._rows = list(rows)
        self._rebuild()

    def move_to(self, key: str) -> None:
        """Put the cursor on the row with this key, if there is one."""
        try:
            self.move_cursor(row=self.get_row_index(RowKey(key)), animate=False)
        except RowDoesNotExist:
            return

    def on_resize(self, event: Resize) -> None:
        # Showing a tab again resizes its tables to the size they had: DataTable would throw
        # away every rendered row (and a rebuild too), so a resize to the same size stops here.
        if event.size == self._sized:
            event.prevent_default()
            return
        self._sized = event.size
        if any(column.flex for column in self._columns) and event.size != self._built_size:
            self._rebuild()

    def notify_style_update(self) -> None:
        """Keep the rendered rows over a restyle: focus comes and goes with every tab switch,
        and DataTable would render every cell again (Rich, cell by cell) each time. A cached
        row's key holds the widget's style and focus state; the component styles it was drawn
        with are compared at the next render (`render_lines`)."""
        self._look_stale = False  # see FocusLook
        Widget.notify_style_update(self)
        self._styles_cache.clear()
        self._get_styles_to_render_cell.cache_clear()
        self._restyled = True
        self.refresh()

    def restyle_focus(self, focused: bool) -> None:
        self.update_node_styles()
        box = self.parent
        if isinstance(box, Widget) and box.has_class("-focus-within") != focused:
            box.set_class(focused, "-focus-within", update=False)
            self.app.stylesheet.update_nodes([box], animate=True)  # the box alone

    def render_lines(self, crop: Region) -> list[Strip]:
        state = self.get_pseudo_class_state()
        if self._restyled or state not in self._looks:
            self._restyled = False
            look = dict(self._component_styles)
            seen = self._looks.get(state)
            if seen is not None and seen != look:
                # Drawn with other colours (a theme, a class): every state's rows go.
                self._clear_caches()
                self._looks.clear()
            self._looks[state] = look
        # DataTable's render_line works out the widget's style (walking every ancestor) for
        # each line: once per render here.
        self._line_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._line_style = None

    def render_line(self, y: int) -> Strip:
        style = self._line_style
        if style is None:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y  # a NavTable has no fixed rows
        return self._render_line(y, scroll_x, scroll_x + self.size.width, style)

    def _widths(self) -> list[int | None]:
        widths: list[int | None] = []
        used = 0
        for index, column in enumerate(self._columns):
            if column.flex:
                widths.append(None)
                continue
            natural = max([len(column.label)] + [cells[index].cell_len for _, cells in self._rows])
            width = column.width if column.width is not None else natural
            widths.append(width)
            used += width
        room = self.size.width
        if len(self._rows) + int(self.show_header) > self.size.height:
            room -= self.styles.scrollbar_size_vertical
        padding = 2 * self.cell_padding * len(self._columns)
        flex = max(room - used - padding, self.MIN_FLEX)
        return [flex if w is None else w for w in widths]

    def _rebuild(self) -> None:
        self._built_size = self.size
        keep = self.current_key
        widths = self._widths()
        self.clear(columns=True)
        for index, (column, width) in enumerate(zip(self._columns, widths, strict=True)):
            self.add_column(Text(column.label), width=width, key=f"c{index}")
        for key, cells in self._rows:
            fitted = []
            for column, width, cell in zip(self._columns, widths, cells, strict=True):
                if column.flex and width is not None and cell.cell_len > width:
                    cell = cell.copy()
                    cell.truncate(width, overflow="ellipsis")
                fitted.append(cell)
            self.add_row(*fitted, key=key)
        if keep is not None:
            self.move_to(keep)
