"""The bottom line: the keys that work where the focus is, as one line of text.

Textual's Footer rebuilds a widget per key on every focus change and, in 8.2.8, keeps the
old ones alive through a data binding (Textualize/textual#6666): tab switches grew memory
without bound and cost a rebuild each. This draws the same information as plain text.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget


class KeyHints(Widget):
    """Shown bindings of the focused chain: `key description`, dimmed when unavailable."""

    DEFAULT_CSS = """
    KeyHints { dock: bottom; height: 1; width: 1fr; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-hints--key", "key-hints--disabled"}

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self.refresh()

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        key_style = self.get_component_rich_style("key-hints--key")
        disabled = self.get_component_rich_style("key-hints--disabled")
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show:
                continue
            key = binding.key_display or self.app.get_key_display(binding)
            line.append(f" {key} ", key_style if active.enabled else disabled)
            line.append(f"{binding.description} ", "" if active.enabled else disabled)
        return line
