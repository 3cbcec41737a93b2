"""A tile's scrollback: an agent's history read from the daemon a page at a time, above its
screen as it was when the operator scrolled back, seen `offset` lines above the bottom.

Plain Python (no Textual), so it is tested on its own; `TerminalView` draws it.

The view holds still while the agent goes on printing, as tmux's copy mode does: what is
scrolled through is the history and screen of the moment the operator scrolled back, and
leaving shows the live screen again. The document's history lines are the daemon's as they
were when the first page came; each reply says how many lines had scrolled off before its
line 0 (`dropped`), so a page read while the agent prints still lands on the right lines,
and lines the daemon no longer keeps show blank.
"""

from __future__ import annotations

from tundra_tui.daemon.protocol import HistoryReply
from tundra_tui.daemon.protocol import Run as WireRun
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.remote_screen import Run

PAGE = 200
"""History lines asked of the daemon at a time."""
MAX_CACHED = 2000
"""History lines held at once; those farthest from the view go first and are asked for again
if the operator scrolls back to them."""


def history_line(runs: list[WireRun]) -> list[Run]:
    """One history line from the wire as runs, its text made safe to show as a live row's is
    (it is what an agent printed)."""
    return [
        Run(visible(text, single_line=True), fg, bg, bold, italics, underscore, reverse)
        for text, fg, bg, bold, italics, underscore, reverse in runs
        if text
    ]


class Scrollback:
    """What one tile scrolls through, and where it is.

    Until the first page arrives (`ready`), only the offset asked for is known. Then the
    document is `total` history lines followed by the screen rows taken at that moment, and
    the view shows its last `height` lines ending `offset` lines above the bottom.
    """

    def __init__(self, offset: int) -> None:
        self.offset = max(0, offset)
        """Lines between the bottom of the view and the bottom of the document."""
        self.total: int | None = None
        """History lines the daemon held when the first page came (None until then)."""
        self.failed = False
        """Asking failed: lines not read yet stay blank rather than being asked again."""
        self.base = 0
        """Lines that had scrolled off before the document's first history line."""
        self.dropped = 0
        """Lines scrolled off before the daemon's line 0, as its latest reply said."""
        self._screen: list[list[Run]] = []
        self._lines: dict[int, list[Run]] = {}

    @property
    def ready(self) -> bool:
        """The first page arrived: the document is known."""
        return self.total is not None

    @property
    def length(self) -> int:
        """Lines in the document: history, then the screen rows taken."""
        return (self.total or 0) + len(self._screen)

    @property
    def cached(self) -> int:
        """History lines held now (bounded by MAX_CACHED)."""
        return len(self._lines)

    def start(self, reply: HistoryReply, screen: list[list[Run]]) -> None:
        """Take the first page (the newest history, asked for from the end) and the screen
        rows below it."""
        self.total = max(0, reply.total)
        self.base = self.dropped = max(0, reply.dropped)
        self._screen = screen
        self.add(reply, range(max(0, reply.start), self.total))

    def limit(self, height: int) -> int:
        """The largest offset: the top of the document at the top of the view."""
        return max(0, self.length - height)

    def scroll(self, lines: int, height: int) -> None:
        """Move `lines` up (negative: down), kept within the document once it is known."""
        offset = max(0, self.offset + lines)
        self.offset = min(offset, self.limit(height)) if self.ready else offset

    def clamp(self, height: int) -> None:
        """Keep the offset valid for a view `height` rows tall (after a resize)."""
        self.scroll(0, height)

    def top(self, height: int) -> int:
        """The document line at the top of the view."""
        return max(0, self.length - height - self.offset)

    def line(self, index: int) -> list[Run] | None:
        """Document line `index`; None while a history line is not read yet."""
        total = self.total or 0
        if index >= total:
            row = index - total
            return self._screen[row] if 0 <= row < len(self._screen) else []
        return self._lines.get(index)

    def add(self, reply: HistoryReply, asked: range) -> None:
        """Keep a page (`asked` as requested: the daemon's line numbers when it was asked).
        Lines asked for that the daemon no longer has are kept blank, so they are not asked
        for again; then the cache is cut back to MAX_CACHED."""
        total = self.total or 0
        moved = self.dropped - self.base  # `wanted` numbered the request from this
        asked = range(asked.start + moved, asked.stop + moved)
        if reply.dropped < self.dropped:
            # Fewer lines gone than before: another terminal (the agent restarted). Its
            # lines are not this document's; what was asked stays blank.
            lacking: range | set[int] = asked
        else:
            self.dropped = reply.dropped
            shift = reply.dropped - self.base
            for index, raw in enumerate(reply.lines, start=reply.start + shift):
                if 0 <= index < total:
                    self._lines[index] = history_line(raw)
            # Lines gone since the first page, or (nothing gone) lines the daemon lacks.
            lacking = range(shift) if shift else asked
        for index in asked:
            if 0 <= index < total and index in lacking:
                self._lines.setdefault(index, [])
        if len(self._lines) > MAX_CACHED:
            bottom = self.length - self.offset
            nearest = sorted(self._lines, key=lambda index: abs(index - bottom))[:MAX_CACHED]
            self._lines = {index: self._lines[index] for index in nearest}

    def wanted(self, height: int) -> tuple[int, int] | None:
        """The next page to ask for (start, count), or None when the view and a view's height
        either side of it are read. A page ends at the newest line missing, since operators
        mostly scroll up."""
        total = self.total
        if total is None or self.failed:
            return None
        top = self.top(height)
        low, high = max(0, top - height), min(total, top + 2 * height)
        while True:
            missing = next((i for i in range(high - 1, low - 1, -1) if i not in self._lines), None)
            if missing is None:
                return None
            first = max(0, missing + 1 - PAGE)
            start = first + self.base - self.dropped  # the daemon's line number now
            if start >= 0:
                return start, missing + 1 - first
            for index in range(first, min(missing + 1, first - start)):  # scrolled away
                self._lines.setdefault(index, [])
