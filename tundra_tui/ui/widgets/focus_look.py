"""Focus styling that skips what nobody sees: a widget blurred because its tab was hidden.

Every tab switch moves focus from the old tab's main widget to the new one's, and Textual
restyles a widget on each focus change, every component class of it again (a table has
fourteen). The old tab is already hidden when its widget loses focus, and the same widget
usually gets focus back when its tab is shown again: both restyles are for nothing. So a
blur while hidden only notes the look as out of date; focus coming back finds it right;
shown again without focus, the pane calls `refresh_focus_look` (or the Show event does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.dom import DOMNode

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    _Base = object  # a mixin, not a CSS type of its own


def on_screen(node: DOMNode) -> bool:
    """Whether the node and every ancestor are displayed (its tab is the one shown)."""
    current: DOMNode | None = node
    while current is not None:
        if not current.display:
            return False
        current = current.parent
    return True


class FocusLook(_Base):
    """Mix in before a focusable widget class; `restyle_focus` is how a focus change
    restyles it (by default as Textual does: the widget and its descendants)."""

    _look_stale = False
    """Styled as focused though blurred (blurred while hidden, not restyled since)."""

    def watch_has_focus(self, focused: bool) -> None:
        if not focused and not on_screen(self):
            self._look_stale = True
            return
        if focused and self._look_stale:
            self._look_stale = False  # still styled as focused
            return
        self._look_stale = False
        self.restyle_focus(focused)

    def restyle_focus(self, focused: bool) -> None:
        """Restyle for a change of focus."""
        self.update_node_styles()

    def refresh_focus_look(self) -> None:
        """Shown again without focus after a blur while hidden: restyle now."""
        if self._look_stale and not self.has_focus:
            self._look_stale = False
            self.restyle_focus(False)

    def notify_style_update(self) -> None:
        self._look_stale = False  # restyled meanwhile (a theme): the look follows the focus
        super().notify_style_update()

    def on_show(self) -> None:
        self.refresh_focus_look()
