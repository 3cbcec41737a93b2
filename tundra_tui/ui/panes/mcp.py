"""The MCP tab: the MCP servers each runtime would start in this town, and whether they can.

Read-only. The servers come from other tools' files (`tundra_tui.mcp`), so every name,
command and path is sanitized and loses its token shapes, env and header values never
reach the screen (the display helpers show their names with a mask), and secrets in
arguments or URLs are masked. Enter opens a detail panel under
the table with the whole command, the resolved binary and the source file.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from tundra_tui.domain.sanitize import visible
from tundra_tui.mcp import (
    FileCache,
    McpReport,
    McpServer,
    command_line,
    masked_env,
    masked_headers,
    one_line,
    problem_line,
    read_servers,
    source_label,
)
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services

WIDE = 110
"""From this many columns the arguments and env names get columns of their own."""
MAX_PROBLEMS = 4
"""Problem lines shown above the table; the rest are counted."""


def found_cell(server: McpServer) -> Text:
    """Whether the binary is there, in words and a shape as well as colour."""
    if server.found is None:
        return Text(f"· {server.transport}", style="dim")
    if server.found:
        return Text("✓ found", style="green")
    return Text("✗ missing", style="bold red")


def name_cell(server: McpServer, width: int) -> Text:
    """The name, with what keeps the server from running after it."""
    notes = []
    if not server.enabled:
        notes.append("off")
    if server.shadowed_by:
        notes.append("shadowed")
    text = one_line(server.name)
    if notes:
        text += f" ({', '.join(notes)})"
    return Text(visible(text, limit=width), style="dim" if notes else "")


def _identity(server: McpServer) -> tuple[str, str, str, str]:
    """What stays the same for one server across reads (its binary may appear)."""
    return server.runtime, server.scope, server.name, str(server.source)


class _ServerTable(DataTable[Text]):
    """One server per row; vim motions live here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", id="mcp-down", show=False),
        Binding("k", "cursor_up", "Up", id="mcp-up", show=False),
        Binding("g", "scroll_top", "First server", id="mcp-top", show=False),
        Binding("G", "scroll_bottom", "Last server", id="mcp-bottom", show=False),
        Binding("enter", "select_cursor", "Server details", id="mcp-detail"),
    ]


class McpPane(Pane):
    """Every MCP server of the town's runtimes, its command, binary and masked env."""

    SHOWS: ClassVar[frozenset[str]] = frozenset({"config"})
    """The town's runtimes; the servers themselves are in other tools' files, which no event
    announces: they are looked at again on every show (unchanged ones from the cache)."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self._report = McpReport([], [])
        self._cache: FileCache = {}
        self._filter = ""
        self._shown: list[McpServer] = []
        self._width = 0
        """The width the columns were last fitted to."""

    def compose(self) -> ComposeResult:
        yield Static("", id="mcp-problems", markup=False)
        yield Static("", id="mcp-summary", markup=False)
        yield _ServerTable(id="mcp-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="mcp-detail", markup=False)

    def shown_again(self) -> bool:
        return True  # only files that changed are read again

    async def reload(self) -> None:
        """Read every runtime's files off the event loop (unchanged ones come from the cache)."""
        root = self.services.town.root
        self._report = await asyncio.to_thread(read_servers, root, cache=self._cache)
        self._show_problems()
        self._fill()

    def search(self, text: str) -> None:
        self._filter = text.strip().casefold()
        self._fill()

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._fill()

    def _show_problems(self) -> None:
        problems = self._report.problems
        root = self.services.town.root
        lines = [f"⚠ {problem_line(problem, root)}" for problem in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"  (and {len(problems) - MAX_PROBLEMS} more)")
        widget = self.query_one("#mcp-problems", Static)
        widget.update(Text("\n".join(lines)))
        widget.set_class(bool(lines), "-shown")

    def _matches(self, server: McpServer) -> bool:
        if not self._filter:
            return True
        fields = (
            server.runtime,
            server.scope,
            one_line(server.name),
            command_line(server),
            source_label(server, self.services.town.root),
        )
        return any(self._filter in field.casefold() for field in fields)

    def _fill(self) -> None:
        """Rebuild the table for the current width and filter, keeping the selected server."""
        table = self.query_one(_ServerTable)
        width = self.size.width or 80
        wide = width >= WIDE
        self._width = width
        current = self._selected()
        self._shown = [server for server in self._report.servers if self._matches(server)]
        table.clear(columns=True)
        scope_width = min(max((len(s.scope) for s in self._shown), default=5), 16)
        scope_width = max(scope_width, len("scope"))  # the header is never cut mid-word
        name_width = min(max((len(s.name) for s in self._shown), default=4) + 14, 32)
        found_width = 9
        # Cell padding (2 per column) and the scrollbar (2) come out of the width.
        fixed = 8 + scope_width + found_width + 2 + 2 * (6 if wide else 5)
        if not wide:
            name_width = min(name_width, 18)
        rest = max(12, width - fixed - name_width)
        command_width = rest * 3 // 5 if wide else rest
        env_width = rest - command_width
        table.add_column("runtime", width=8)
        table.add_column("scope", width=scope_width)
        table.add_column("name", width=name_width)
        table.add_column("command and args" if wide else "command", width=command_width)
        table.add_column("found", width=found_width)
        if wide:
            table.add_column("env", width=env_width)
        for index, server in enumerate(self._shown):
            cells = [
                Text(server.runtime),
                Text(visible(one_line(server.scope), limit=scope_width)),
                name_cell(server, name_width),
                Text(visible(command_line(server, with_args=wide), limit=command_width)),
                found_cell(server),
            ]
            if wide:
                cells.append(Text(visible(masked_env(server), limit=env_width), style="dim"))
            table.add_row(*cells, key=str(index))
        keys = [_identity(server) for server in self._shown]
        if current is not None and _identity(current) in keys:
            table.move_cursor(row=keys.index(_identity(current)), animate=False)
        self._show_summary()
        self._show_detail()

    def _show_summary(self) -> None:
        servers = self._report.servers
        missing = sum(1 for server in servers if server.found is False)
        files = len({server.source for server in servers})
        text = f"{len(servers)} MCP server{'s' if len(servers) != 1 else ''}"
        if servers:
            text += f" from {files} file{'s' if files != 1 else ''}"
        if missing:
            text += f" · {missing} binar{'ies' if missing != 1 else 'y'} missing"
        if self._filter:
            text += f" · {len(self._shown)} match the search"
        if not servers:
            text += " configured for claude, codex, gemini or opencode in this town"
        self.query_one("#mcp-summary", Static).update(Text(text))

    def _selected(self) -> McpServer | None:
        table = self.query_one(_ServerTable)
        if table.row_count == 0 or not self._shown:
            return None
        row = table.cursor_row
        return self._shown[row] if 0 <= row < len(self._shown) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter: show or hide the details of the selected server."""
        event.stop()
        detail = self.query_one("#mcp-detail", Static)
        detail.set_class(not detail.has_class("-shown"), "-shown")
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#mcp-detail", Static)
        server = self._selected()
        if server is None:
            detail.update("")
            return
        root = self.services.town.root
        name = one_line(server.name)
        text = Text()
        text.append(f"{server.runtime} · {one_line(server.scope)} · ")
        text.append(name, style="bold")
        text.append(f"  ({server.transport}{'' if server.enabled else ', disabled'})", style="dim")
        if server.shadowed_by:
            text.append(f"  overridden by the {server.shadowed_by} one", style="dim")
        rows = [
            ("command" if server.command else "url", command_line(server)),
            ("binary", self._binary(server)),
            ("env", masked_env(server) or "(none)"),
        ]
        if server.headers:
            rows.append(("headers", masked_headers(server)))
        rows.append(("source", source_label(server, root)))
        for label, value in rows:
            text.append(f"\n{label:<8} ", style="dim")
            text.append(value)
        detail.update(text)

    @staticmethod
    def _binary(server: McpServer) -> str:
        if server.found is None:
            return "none: a remote server"
        if server.found:
            return f"✓ {one_line(server.resolved)}"
        return "✗ not found on PATH" if "/" not in server.command else "✗ not an executable file"
