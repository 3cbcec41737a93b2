"""`?`: every binding, grouped by where it works, with the id that remaps it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tundra_tui.ui.keymap import BindingRow


class HelpModal(ModalScreen[None]):
    """A table of key, action and id; Escape, `q` or `?` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close help", id="help-close"),
    ]

    def __init__(self, rows: list[BindingRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(
                Text.assemble(
                    ("Keys", "bold"),
                    '  remap any of them in config: [ui.keys] <id> = "<key>"',
                ),
                id="help-title",
            )
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "key", "does", "id")
        for row in self.rows:
            table.add_row(row.group, Text(row.key, style="bold"), row.description, row.id)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
