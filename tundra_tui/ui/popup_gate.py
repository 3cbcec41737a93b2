"""When an approval may pop up by itself: only while the operator is not typing.

A popup over a form, a grabbed agent or a half-typed search takes the next key meant for
it. So it waits for a pause in the keys, for no text field or agent terminal to have the
keyboard, and for no other dialog to be open; until then the request waits in the inbox.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.screen import ModalScreen

TYPING_PAUSE_S = 2.0
"""Seconds without a key before a popup may show."""
POLL_S = 0.1
"""How often a waiting popup looks again."""


def why_not(app: App[Any], last_key: float, now: float, pause: float = TYPING_PAUSE_S) -> str:
    """Why a popup must wait now; empty when it may show."""
    if len(app.screen_stack) > 1 or isinstance(app.screen, ModalScreen):
        return "a dialog is open"
    focused = app.focused
    # A text field or a grabbed agent terminal takes every printable key (asked rather than
    # isinstance: a grabbed tile says so, and so does any widget that takes text).
    if focused is not None and focused.display and focused.check_consume_key("x", "x"):
        return "the keyboard belongs to a field or an agent"
    if now - last_key < pause:
        return "the operator is typing"
    return ""
