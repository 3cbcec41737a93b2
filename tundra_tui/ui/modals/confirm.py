"""A yes/no question about a list of things (stop these agents, approve these requests).

The items are shown one line each, through the sanitizer, so the operator sees exactly
what the answer applies to; `n` and escape are always safe, and the No button has focus.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tundra_tui.domain.sanitize import visible

MAX_ITEMS = 50
"""Items listed; beyond this the dialog says how many more there are."""
ITEM_CHARS = 160
"""An item is cut to this many characters (it is one line)."""


class ConfirmModal(ModalScreen[bool]):
    """Ask `question` about `items`; dismisses with True for yes, False for no."""

    DEFAULT_CSS = """
    ConfirmModal {
        align: center middle;
        background: $background 60%;
    }
    ConfirmModal > #confirm-dialog {
        width: 80%;
        max-width: 100;
        height: auto;
        max-height: 80%;
        border: round $warning;
        background: $panel;
        padding: 0 1;
    }
    ConfirmModal #confirm-question {
        text-style: bold;
        margin-bottom: 1;
    }
    ConfirmModal #confirm-items {
        height: auto;
        max-height: 16;
        color: $foreground;
    }
    ConfirmModal .confirm-item {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    ConfirmModal #confirm-buttons {
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    ConfirmModal Button {
        margin-left: 1;
        min-width: 10;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]

    def __init__(
        self, question: str, items: Sequence[str] = (), *, yes: str = "Yes", no: str = "No"
    ) -> None:
        super().__init__(classes="confirm-modal")
        self.question = question
        self.items = list(items)
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(Content(visible(self.question, single_line=True)), id="confirm-question")
            if self.items:
                with VerticalScroll(id="confirm-items"):
                    for item in self.items[:MAX_ITEMS]:
                        line = visible(item, single_line=True, limit=ITEM_CHARS)
                        yield Static(Content(line), classes="confirm-item")
                    if len(self.items) > MAX_ITEMS:
                        more = f"… and {len(self.items) - MAX_ITEMS} more"
                        yield Static(Content(more), classes="confirm-item")
            with Horizontal(id="confirm-buttons"):
                yield Button(
                    Content(f"{self.yes_label} (y)"), id="confirm-button-yes", variant="warning"
                )
                yield Button(
                    Content(f"{self.no_label} (n)"), id="confirm-button-no", variant="primary"
                )

    def on_mount(self) -> None:
        self.query_one("#confirm-button-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-button-yes")

    def action_answer(self, yes: bool) -> None:
        """Close the dialog with the operator's answer."""
        self.dismiss(yes)
