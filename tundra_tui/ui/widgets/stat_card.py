"""A KPI card: a headline number, a few short lines, and an optional progress bar."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from tundra_tui.domain.overview import CardText
from tundra_tui.domain.readout import bar


class StatCard(Widget):
    """Draws one `CardText`; the bar takes the card's whole inner width, so it fits any size.

    The text is ours (counts and money), but it is still assembled as `Content`, never
    parsed as markup.
    """

    DEFAULT_CSS = """
    StatCard {
        height: 4;
        border: round $primary 50%;
        border-title-color: $foreground;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = title
        self.card = CardText("-")

    def show(self, card: CardText) -> None:
        """Replace what the card says."""
        if card != self.card:
            self.card = card
            self.refresh()

    def render(self) -> Content:
        card = self.card
        first = card.lines[0] if card.lines else ""
        lines = [Content.assemble((card.value, "bold $accent"), "  ", first)]
        lines += [Content(line) for line in card.lines[1:]]
        if card.progress is not None:
            done, rest = bar(card.progress, self.content_size.width)
            lines.append(Content.assemble((done, "$success"), (rest, "$foreground 30%")))
        return Content("\n").join(lines)
