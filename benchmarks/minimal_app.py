"""The smallest Textual app worth comparing `at tui` with: header, two tabs, footer.

    .venv/bin/python benchmarks/minimal_app.py

bench_tui_frame.py times its first frame (`minimal first pane` on screen) and its
tab switches (`1` and `2`) the same way as `at tui`'s, in the same run. `q` quits.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane


class Minimal(App[None]):
    """Header, a TabbedContent of two static panes, footer."""

    TITLE = "minimal"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show('one')", "First"),
        Binding("2", "show('two')", "Second"),
        Binding("q", "quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="one"):
            with TabPane("One", id="one"):
                yield Static("minimal first pane")
            with TabPane("Two", id="two"):
                yield Static("minimal second pane")
        yield Footer()

    def action_show(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab


if __name__ == "__main__":
    Minimal().run()
