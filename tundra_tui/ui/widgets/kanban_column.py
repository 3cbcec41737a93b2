"""One column of the kanban board, drawn as text: a header, then as many cards as fit.

Cards are lines of text rather than widgets, so a reload redraws a column instead of
mounting and removing dozens of widgets; only the cards that fit are laid out.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tundra_tui.domain.beads import Bead, Grade, Lane
from tundra_tui.domain.costs import Cost
from tundra_tui.domain.kanban import (
    BLOCKED_GLYPH,
    GRADE_GLYPH,
    HAND_DONE_GLYPH,
    MERGING_GLYPH,
    STATUS_GLYPH,
    UNGATED_GLYPH,
    BoardColumn,
    ColumnSpec,
    cell_width,
    cost_label,
    fit,
    grade_glyph,
    wrap_words,
)
from tundra_tui.domain.sanitize import visible

GRADE_WORD = {
    GRADE_GLYPH[Grade.SUBMITTED]: "submitted",
    GRADE_GLYPH[Grade.VERIFIED]: "verified",
    GRADE_GLYPH[Grade.MERGED]: "merged",
    UNGATED_GLYPH: "merged, no gates",
    HAND_DONE_GLYPH: "by hand",
    MERGING_GLYPH: "merging",
}
"""A grade glyph in words, written after it on a card wide enough (the legend's words)."""
TITLE_LINES = 2
"""A card shows at most this many lines of its title."""
_LANE_CLASS = {Lane.CRITICAL: "critical", Lane.EXPERIMENTAL: "experimental"}


def _line(text: str, style: Style | str = "") -> Text:
    return Text(text, style, no_wrap=True, overflow="crop")


class KanbanColumn(Widget):
    """Holds no data of its own: the board hands it a column, the cursor and focus."""

    DEFAULT_CSS = """
    KanbanColumn { width: 1fr; height: 1fr; padding: 0 1; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "kanban-column--header",
        "kanban-column--rule",
        "kanban-column--id",
        "kanban-column--meta",
        "kanban-column--critical",
        "kanban-column--experimental",
        "kanban-column--blocked",
        "kanban-column--assignee",
        "kanban-column--grade",
        "kanban-column--merged",
        "kanban-column--cursor",
        "kanban-column--cursor-idle",
        "kanban-column--more",
        "kanban-column--cost",
    }

    def __init__(self, spec: ColumnSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.column: BoardColumn | None = None
        self.blocked: frozenset[int] = frozenset()
        self.cursor: int | None = None
        """Index of the selected card, or None when the cursor is in another column."""
        self.focused = False
        """Whether the board has focus (the cursor is drawn brighter when it does)."""
        self.top = 0
        """The first card drawn; moves only as far as needed to keep the cursor in view."""
        self.merging: int | None = None
        """The Review bead the refinery is merging now (its card shows ⟳)."""
        self.ungated: frozenset[int] = frozenset()
        """Beads the refinery merged with no gates run (their cards say so)."""
        self.costs: dict[int, Cost] = {}
        """Each loaded bead's spend (`$0.42` on its card; none for a bead with no usage)."""
        self._styles: dict[str, Style] = {}
        self._cards: dict[tuple[int, int], list[Text]] = {}
        """Laid-out cards by (index, width); only the ones near the cursor are ever built."""

    def show(
        self,
        column: BoardColumn,
        *,
        blocked: frozenset[int],
        cursor: int | None,
        focused: bool,
    ) -> None:
        """Take new contents and redraw (not when nothing it draws changed: showing the tab
        again resizes and focuses the board, and a redrawn column renders every card)."""
        same = column is self.column and blocked is self.blocked and cursor == self.cursor
        if same and (cursor is None or focused == self.focused):
            self.focused = focused
            return
        if column is not self.column or blocked is not self.blocked:
            self._cards.clear()
        self.column = column
        self.blocked = blocked
        self.cursor = cursor
        self.focused = focused
        self.refresh()

    def set_refinery(self, merging: int | None, ungated: frozenset[int]) -> None:
        """Take what the refinery says about cards (redrawn at the next `show` or now)."""
        if merging == self.merging and ungated == self.ungated:
            return
        self.merging = merging
        self.ungated = ungated
        self._cards.clear()
        self.refresh()

    def set_costs(self, costs: dict[int, Cost]) -> None:
        """Take the beads' spend (redrawn now when it changed)."""
        if costs == self.costs:
            return
        self.costs = costs
        self._cards.clear()
        self.refresh()

    # ---- layout ----------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._styles.clear()
        self._cards.clear()
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        """A component's colour and text style, without its background.

        Cards draw on the cursor's background, so their spans must not paint their own;
        the full style (not the partial one) is used so translucent theme colours blend.
        """
        if (style := self._styles.get(name)) is None:
            full = self.get_component_rich_style(f"kanban-column--{name}")
            style = Style(
                color=full.color,
                bold=full.bold,
                italic=full.italic,
                underline=full.underline,
                reverse=full.reverse,
            )
            self._styles[name] = style
        return style

    def _cursor_style(self) -> Style:
        name = "cursor" if self.focused else "cursor-idle"
        return self.get_component_rich_style(f"kanban-column--{name}")

    def _card(self, bead: Bead, width: int) -> list[Text]:
        """A card's lines: `#id ▲P0 ⊘ ◔ submitted $0.42  @assignee` (the grade's word only if it
        fits; a head too long for the card ends in …), then its title (cut on a word)."""
        head = Text(no_wrap=True, overflow="crop")
        head.append(bead.ref, self._style("id"))
        lane = _LANE_CLASS.get(bead.lane, "meta")
        head.append(f" {bead.lane.glyph}", self._style(lane))
        head.append(f"P{bead.priority}", self._style("meta"))
        if bead.id in self.blocked:
            head.append(f" {BLOCKED_GLYPH}", self._style("blocked"))
        if bead.status in STATUS_GLYPH:
            head.append(f" {STATUS_GLYPH[bead.status]}", self._style("blocked"))
        glyph = grade_glyph(bead, merging=bead.id == self.merging, ungated=bead.id in self.ungated)
        spend = cost_label(self.costs.get(bead.id))
        assignee = visible(bead.assignee, single_line=True)
        if glyph:
            merged = bead.merged_commit and glyph == GRADE_GLYPH[Grade.MERGED]
            # The grade in words too when the head still fits with them (and the agent).
            word = f" {GRADE_WORD[glyph]}" if glyph in GRADE_WORD else ""
            rest = cell_width(f" {spend}" if spend else "")
            rest += cell_width(f" @{assignee}") if assignee else 0
            if head.cell_len + 2 + cell_width(word) + rest > width:
                word = ""
            head.append(f" {glyph}{word}", self._style("merged" if merged else "grade"))
        if spend:
            head.append(f" {spend}", self._style("cost"))
        if head.cell_len > width:
            head.truncate(width, overflow="ellipsis")
        lines = [head]
        if assignee:
            tag = f"@{assignee}"
            gap = width - head.cell_len - cell_width(tag)
            if gap >= 1:
                head.append(" " * gap)
                head.append(tag, self._style("assignee"))
                assignee = ""
        title = visible(bead.title, single_line=True)
        lines.extend(_line(line) for line in wrap_words(title, width, TITLE_LINES))
        if assignee:
            lines.append(_line(fit(f"@{assignee}", width), self._style("assignee")))
        return lines

    def _card_at(self, index: int, width: int) -> list[Text]:
        key = (index, width)
        if (card := self._cards.get(key)) is None:
            assert self.column is not None
            card = self._cards[key] = self._card(self.column.beads[index], width)
        return card

    def _fits(self, top: int, rows: int, width: int, hidden_after: int) -> list[int]:
        """The card indexes drawn from `top` in `rows` lines, keeping room for the markers."""
        assert self.column is not None
        total = len(self.column.beads)
        room = rows - (1 if top > 0 else 0)
        drawn: list[int] = []
        used = 0
        for index in range(top, total):
            need = len(self._card_at(index, width)) + (1 if drawn else 0)
            more_below = index < total - 1 or hidden_after > 0
            if used + need + (1 if more_below else 0) > room:
                break
            drawn.append(index)
            used += need
        return drawn

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        column = self.column
        if width <= 0 or height <= 0 or column is None:
            return Text()
        out: list[Text] = [self._header(column, width)]
        out.append(_line("─" * width, self._style("rule")))
        rows = height - len(out)
        if not column.beads:
            note = "no match" if column.loaded else "empty"
            out.append(_line(fit(note, width), self._style("more")))
            return _line("\n").join(out)
        # Beads the store did not load (beyond its per-column limit) count as more below.
        not_loaded = 0 if column.filtered else max(column.count - column.loaded, 0)
        self.top = self._scrolled_top(rows, width, not_loaded)
        drawn = self._fits(self.top, rows, width, not_loaded)
        if self.top > 0:
            out.append(_line(fit(f"↑ {self.top} more", width), self._style("more")))
        for index in drawn:
            if index != drawn[0]:
                out.append(_line(""))
            for line in self._card_at(index, width):
                if index == self.cursor:
                    # One colour pair for the whole card keeps it readable in every theme.
                    line = _line(line.plain, self._cursor_style())
                    line.set_length(width)
                out.append(line)
        shown_to = drawn[-1] + 1 if drawn else self.top
        below = len(column.beads) - shown_to + not_loaded
        if below > 0:
            out.append(_line(fit(f"↓ {below} more", width), self._style("more")))
        return _line("\n").join(out[:height])

    def _scrolled_top(self, rows: int, width: int, hidden_after: int) -> int:
        """The smallest scroll from the current one that keeps the cursor's card in view."""
        assert self.column is not None
        top = min(self.top, max(len(self.column.beads) - 1, 0))
        if self.cursor is None:
            return top
        if self.cursor < top:
            return self.cursor
        while top < self.cursor and self.cursor not in self._fits(top, rows, width, hidden_after):
            top += 1
        return top

    def _header(self, column: BoardColumn, width: int) -> Text:
        """`Backlog        12`; with a filter, matches over the full count (`3/12`)."""
        count = str(column.count)
        if column.filtered:
            count = f"{len(column.beads)}/{column.count}"
        name = self.spec.title
        if len(name) + 1 + len(count) > width:
            name = fit(self.spec.short, max(width - len(count) - 1, 1))
        gap = max(width - len(name) - len(count), 1)
        return _line(f"{name}{' ' * gap}{count}", self._style("header"))
