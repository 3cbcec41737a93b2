"""The palette's argument pickers: one choice from a list (typed text filters it), or one
line of free text. Escape backs out with None, so a verb asked from the palette does nothing.

Labels are bead titles and agent names, which agents can write: they are shown through the
sanitizer as plain text, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from tundra_tui.domain.sanitize import visible

LABEL_CHARS = 120
"""A choice's label is cut to this many characters (it is one line)."""

_CSS = """
PickerModal, TextModal {
    align: center middle;
    background: $background 60%;
}
PickerModal > #picker-dialog, TextModal > #picker-dialog {
    width: 80%;
    max-width: 100;
    height: auto;
    max-height: 80%;
    border: round $accent;
    background: $panel;
    padding: 0 1;
}
PickerModal #picker-title, TextModal #picker-title {
    text-style: bold;
}
PickerModal OptionList {
    height: auto;
    max-height: 16;
}
"""


def matches(label: str, text: str) -> bool:
    """Whether every word typed is in the label (any order, any case): `d1 idle`, `#12`."""
    folded = label.casefold()
    return all(word in folded for word in text.casefold().split())


class PickerModal(ModalScreen[str | None]):
    """Pick one of `choices` ((value, label) pairs); dismisses with its value, or None."""

    DEFAULT_CSS = _CSS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Back out", id="picker-back"),
        Binding("down", "move(1)", "Down", show=False, id="picker-down"),
        Binding("up", "move(-1)", "Up", show=False, id="picker-up"),
    ]

    def __init__(self, title: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__(classes="picker-modal")
        self.title_text = title
        self.choices = [
            (value, visible(label, single_line=True, limit=LABEL_CHARS)) for value, label in choices
        ]
        self.shown: list[str] = []
        """The values listed now (the filter's matches), in order."""

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog"):
            yield Label(Content(self.title_text), id="picker-title")
            yield Input(
                placeholder="type to filter, enter picks, escape backs out", id="picker-filter"
            )
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        rows = [(value, label) for value, label in self.choices if matches(label, text)]
        self.shown = [value for value, _ in rows]
        options = self.query_one(OptionList)
        options.set_options([Option(Content(label)) for _, label in rows])
        if rows:
            options.highlighted = 0

    @on(Input.Changed, "#picker-filter")
    def _filtered(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if self.shown:
            now = options.highlighted or 0
            options.highlighted = max(0, min(len(self.shown) - 1, now + step))

    @on(Input.Submitted, "#picker-filter")
    def _submitted(self) -> None:
        index = self.query_one(OptionList).highlighted
        if index is not None and index < len(self.shown):
            self.dismiss(self.shown[index])

    @on(OptionList.OptionSelected, "#picker-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self.shown):
            self.dismiss(self.shown[event.option_index])


class TextModal(ModalScreen[str | None]):
    """One line of text (a nudge, a name, a subject); enter gives it, escape None. Empty
    text is refused unless `allow_empty`."""

    DEFAULT_CSS = _CSS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Back out", id="text-back"),
    ]

    def __init__(self, title: str, *, placeholder: str = "", allow_empty: bool = False) -> None:
        super().__init__(classes="text-modal")
        self.title_text = title
        self.placeholder = placeholder
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog"):
            yield Label(Content(self.title_text), id="picker-title")
            yield Input(placeholder=self.placeholder, id="text-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#text-input")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text or self.allow_empty:
            self.dismiss(text)
