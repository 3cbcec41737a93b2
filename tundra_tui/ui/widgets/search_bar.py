"""The `/` search line: filters the active pane as you type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class SearchBar(Input):
    """Hidden until `/`; Enter keeps the filter, Escape clears it. Both give focus back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear search", id="search-clear", show=False),
    ]

    @dataclass
    class Filter(Message):
        """The filter text changed (empty clears it)."""

        text: str

    @dataclass
    class Done(Message):
        """The operator is done searching."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="search (Enter keeps, Esc clears)", id=id)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Filter(event.value))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done())

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(self.Filter(""))
        self.post_message(self.Done())
