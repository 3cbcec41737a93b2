"""The Config tab: every key, what each layer says about it, and which layer wins.

Wide terminals show the four layers side by side; narrow ones show the winning value
and its layer, and the panel under the table always lists all four layers of the
selected key with their files. Values come from files the user (or another tool)
wrote, so they are sanitized, and tables of env values are masked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tundra_tui.config import (
    LAYERS,
    MISSING,
    ConfigError,
    LayeredConfig,
    masked,
    short_path,
    show_value,
)
from tundra_tui.config_schema import join_key, split_key
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.modals.config_edit import ConfigEditModal, ConfigWrite, describe_key
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services

WIDE = 110
"""From this many columns the four layers fit side by side."""
WINNER = "● "
"""Marks the winning value: a shape as well as bold, never colour alone."""
UNSET = "·"
FILE_LAYERS = LAYERS[1:]


@dataclass(frozen=True)
class _Row:
    key: str
    """As the schema spells it: what an edit writes."""
    shown: str
    """The key as displayed (a `ui.keys` name may hold anything)."""
    values: dict[str, str]
    """Each layer's value as shown (sanitized, one line); "" where the layer is silent."""
    winner: str


UI_LATER = {
    "ui.max_fps": "; applies when at tui starts again",
    "ui.agents_layout": "; applies when at tui starts again",
    "ui.terminal_scrollback_lines": "; applies to agents started from now on",
}
"""`ui.*` keys a running control room cannot take at once, and when they apply (the app
applies the others as soon as the file changes: `TundraApp._apply_ui`)."""


class _KeyTable(DataTable[Text]):
    """The keys, one row each; vim motions live here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", id="config-down", show=False),
        Binding("k", "cursor_up", "Up", id="config-up", show=False),
        Binding("g", "scroll_top", "First key", id="config-top", show=False),
        Binding("G", "scroll_bottom", "Last key", id="config-bottom", show=False),
        Binding("enter", "select_cursor", "Edit key", id="config-select", show=False),
    ]


class ConfigPane(Pane):
    """The layered configuration as a table; edits go to one chosen layer's file."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "edit", "Edit key", id="config-edit"),
        Binding("a", "add", "Set new key", id="config-add"),
        Binding("x", "unset", "Unset key", id="config-unset"),
    ]

    SHOWS: ClassVar[frozenset[str]] = frozenset({"config"})

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self._config: LayeredConfig | None = None
        self._rows: list[_Row] = []
        self._filter = ""
        self._width = 0
        """The width the columns were last fitted to."""
        self._select_next = ""
        """The key just written: the reload the daemon's ChangedEvent brings selects it."""

    def compose(self) -> ComposeResult:
        yield Static("", id="config-error", markup=False)
        yield Static("", id="config-warnings", markup=False)
        yield _KeyTable(id="config-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="config-detail", markup=False)

    async def reload(self) -> None:
        """Re-read the files: this tab is where an edit made in an editor should show."""
        select, self._select_next = self._select_next, ""
        await self._load(select=select)

    def search(self, text: str) -> None:
        self._filter = text.strip().casefold()
        self._fill()

    async def _load(self, select: str = "") -> None:
        """Read every layer off the event loop; a broken file becomes the error line."""
        try:
            self._config = await asyncio.to_thread(self.services.reload_config)
            error = ""
        except ConfigError as problem:
            self._config, error = None, str(problem)
        self._show_problems(error)
        self._rows = self._make_rows()
        self._fill(select=select)

    def _show_problems(self, error: str) -> None:
        line = self.query_one("#config-error", Static)
        line.update(Text(f"✗ {visible(error, single_line=True)}") if error else "")
        line.set_class(bool(error), "-shown")
        warnings = self._config.warnings if self._config else []
        shown = self.query_one("#config-warnings", Static)
        if warnings:
            more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
            first = visible(str(warnings[0]), single_line=True)
            shown.update(Text(f"⚠ {first}{more}"))
        else:
            shown.update("")
        shown.set_class(bool(warnings), "-shown")

    def _make_rows(self) -> list[_Row]:
        config = self._config
        if config is None:
            return []
        rows = []
        for key in config.leaf_keys():
            values = {
                # Secrets masked as in `at config show`; the edit modal shows the exact text.
                layer: visible(
                    show_value(masked(key, config.value_in(key, layer))), single_line=True
                )
                for layer in LAYERS
            }
            rows.append(_Row(key, visible(key, single_line=True), values, config.winner(key)))
        return rows

    def _visible_rows(self) -> list[_Row]:
        if not self._filter:
            return self._rows
        return [
            row
            for row in self._rows
            if self._filter in row.shown.casefold()
            or any(self._filter in value.casefold() for value in row.values.values())
        ]

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._fill()

    def _fill(self, *, select: str = "") -> None:
        """Rebuild the table for the current width and filter, keeping the cursor's key."""
        table = self.query_one(_KeyTable)
        width = self.size.width or 80
        wide = width >= WIDE
        self._width = width
        current = select or self._selected_key()
        rows = self._visible_rows()
        table.clear(columns=True)
        # Cell padding (2 per column) and the scrollbar (2) come out of the width.
        key_width = min(max((len(row.shown) for row in rows), default=10), 44)
        if wide:
            value_width = max(10, (width - key_width - 2 - 2 * 5) // 4)
            table.add_column("key", width=key_width, key="key")
            for layer in LAYERS:
                table.add_column(layer, width=value_width, key=layer)
        else:
            key_width = min(key_width, max(16, (width - 2 - 2 * 3) // 2))
            value_width = max(8, width - key_width - 8 - 2 - 2 * 3)
            table.add_column("key", width=key_width, key="key")
            table.add_column(f"value  ({WINNER.strip()} winning layer)", width=value_width)
            table.add_column("from", width=8, key="from")
        for row in rows:
            key_cell = Text(visible(row.shown, limit=key_width))
            if wide:
                cells = [self._cell(row, layer, value_width) for layer in LAYERS]
            else:
                cells = [self._cell(row, row.winner, value_width), Text(row.winner)]
            table.add_row(key_cell, *cells, key=row.key)
        keys = [row.key for row in rows]
        if current in keys:
            table.move_cursor(row=keys.index(current), animate=False)
        self._show_detail()

    @staticmethod
    def _cell(row: _Row, layer: str, width: int) -> Text:
        value = row.values[layer]
        if layer == row.winner:
            return Text(visible(WINNER + value, limit=width), style="bold")
        if not value:
            return Text(UNSET, style="dim")
        return Text(visible(value, limit=width))

    def _selected_key(self) -> str:
        table = self.query_one(_KeyTable)
        if table.row_count == 0:
            return ""
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value or "")

    def _row(self, key: str) -> _Row | None:
        return next((row for row in self._rows if row.key == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def _show_detail(self) -> None:
        """All four layers of the selected key, with their files, under the table."""
        detail = self.query_one("#config-detail", Static)
        row = self._row(self._selected_key())
        if row is None or self._config is None:
            hint = "no key matches the search" if self._config else "fix the file, then press r"
            detail.update(Text(hint, style="dim"))
            return
        text = Text()
        text.append(row.shown, style="bold")
        expected = describe_key(row.key)
        if expected:
            text.append(f"  expects {expected}", style="dim")
        room = max(8, self.size.width - 48)
        values = {layer: visible(row.values[layer] or UNSET, limit=room) for layer in LAYERS}
        column = max(len(value) for value in values.values())
        for layer in LAYERS:
            mark = WINNER if layer == row.winner else "  "
            path = self._config.paths.get(layer)
            where = short_path(path, self.services.town.root) if path else "built in"
            text.append(f"\n{mark}{layer:<8} ")
            text.append(values[layer].ljust(column), style="bold" if layer == row.winner else "")
            text.append(f"   {visible(where, single_line=True)}", style="dim")
        detail.update(text)

    def _layer_files(self, layers: tuple[str, ...]) -> dict[str, str]:
        paths = self._config.paths if self._config else {}
        root = self.services.town.root
        return {
            layer: short_path(path, root) if (path := paths.get(layer)) else "" for layer in layers
        }

    def _ready(self) -> LayeredConfig | None:
        if self._config is None:
            self.notify("the configuration did not load: fix it first", severity="error")
        return self._config

    def action_edit(self) -> None:
        """Open the editor on the selected key, in the layer that wins it (or project)."""
        config, key = self._ready(), self._selected_key()
        if config is None or not key:
            return
        winner = config.winner(key)
        layer = winner if winner in FILE_LAYERS else "project"
        value = config.value_in(key, layer)
        if value is MISSING:
            value = config.get(key)
        secret = isinstance(value, dict)
        shown = "" if secret else show_value(value)
        if visible(shown) != shown:
            # Hidden characters would be shown changed and written back changed: start empty.
            shown = ""
        self.app.push_screen(
            ConfigEditModal(
                self.services.link,
                key=key,
                layers=self._layer_files(FILE_LAYERS),
                layer=layer,
                value=shown,
                secret=secret,
            ),
            self._written,
        )

    def action_add(self) -> None:
        """Set a key that no layer sets yet (the key is typed in the editor)."""
        if self._ready() is None:
            return
        self.app.push_screen(
            ConfigEditModal(
                self.services.link, key="", layers=self._layer_files(FILE_LAYERS), layer="project"
            ),
            self._written,
        )

    def action_unset(self) -> None:
        """Remove the selected key from one of the layer files that set it, after a yes."""
        config, key = self._ready(), self._selected_key()
        if config is None or not key:
            return
        setting = tuple(
            layer for layer in FILE_LAYERS if config.value_in(key, layer) is not MISSING
        )
        if not setting:
            self.notify(f"{key} is a built-in default: no file sets it", severity="warning")
            return
        winner = config.winner(key)
        self.app.push_screen(
            ConfigEditModal(
                self.services.link,
                key=key,
                layers=self._layer_files(setting),
                layer=winner if winner in setting else setting[-1],
                unset=True,
            ),
            self._written,
        )

    def _written(self, write: ConfigWrite | None) -> None:
        if write is None:
            return
        what = "unset from" if write.unset else "set in"
        where = short_path(write.path, self.services.town.root)
        later = UI_LATER.get(join_key(split_key(write.key)), "")
        said = f"{write.key} {what} {write.layer} ({where}){later}"
        self.notify(
            visible(said, single_line=True), timeout=8 if later else self.app.NOTIFICATION_TIMEOUT
        )
        # The daemon's ChangedEvent reloads every pane that shows the configuration, this one
        # too; whichever comes first, the written key ends up selected.
        key = join_key(split_key(write.key))
        if any(row.key == key for row in self._rows):
            self._fill(select=key)
        else:
            self._select_next = key  # a new key: it has a row once the files are read
