"""The shared shape of a tab's pane."""

from __future__ import annotations

from typing import ClassVar

from textual.containers import Container

from tundra_tui.ui.live import Change
from tundra_tui.ui.services import Services


class Pane(Container):
    """A tab's content. It reads the store and live model through `services`.

    A pane is composed when its tab is first shown. The app calls `reload()` then, on `r`,
    when the daemon says data it `SHOWS` changed, and when the watcher sees others write the
    store; while hidden, such a change only marks it to reload when shown again, and a pane
    shown again with nothing changed gets `shown_again()` instead. `live_changed()` comes on
    every daemon event except screen updates (agent tiles draw those from their `RemoteScreen`
    on their own timer). Both must be cheap when nothing relevant changed, and neither may
    block: the store is async.
    """

    can_focus = False

    SHOWS: ClassVar[frozenset[str]] = frozenset(
        {"beads", "convoys", "config", "usage", "metrics", "events", "agents"}
    )
    """The stored data this pane shows, as `ChangedEvent.what` names it (and "events" for the
    store's event log, "agents" for its agent rows, which the file watcher reports): the app
    reloads the pane on show when one of them changes. Every kind, unless a pane says less."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.services = services

    async def reload(self) -> None:
        """Re-read what this pane shows from the store."""

    def changed(self, what: str) -> None:
        """Told ahead of the reload a change brings (now, or when next shown): `what` changed,
        as SHOWS names it, or "store" for anything. A pane may then re-read only that part;
        by default `reload()` re-reads everything."""

    def shown_again(self) -> bool:
        """Shown again with nothing it shows changed meanwhile: bring up to date, cheaply and
        without the store, what depends on the clock alone. True if the clock alone made its
        data out of date (a new day for "today"): the app reloads it then."""
        return False

    def live_changed(self, change: Change) -> None:
        """React to one daemon event (states, approvals, exits, trouble, the link)."""

    def search(self, text: str) -> None:
        """Filter what this pane shows to `text` (empty clears the filter)."""

    def focus_default(self) -> None:
        """Give focus to the pane's main widget (the first focusable one unless overridden)."""
        for widget in self.query("*"):
            if widget.focusable:
                widget.focus()
                return
