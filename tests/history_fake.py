"""An agent's scrollback as the daemon keeps it, for scrollback tests: it answers `History`
requests the way `daemon/ops.py` does (0 the oldest kept, `start` < 0 from the newest)."""

from __future__ import annotations

from tundra_tui.daemon.protocol import History, HistoryReply
from tundra_tui.daemon.protocol import Run as WireRun


def plain(text: str, fg: str = "default") -> list[WireRun]:
    """A line of one run."""
    return [(text, fg, "default", False, False, False, False)]


class FakeHistory:
    """Lines kept oldest first, and the pages asked for. Use `answer` as a FakeLink answer
    for `History`, or `read` as a `TerminalView`'s history source."""

    def __init__(self, lines: list[list[WireRun]], *, keep: int | None = None) -> None:
        self.lines = lines
        self.keep = keep
        """Lines kept at most (None: all), as the daemon's scrollback is bounded."""
        self.dropped = 0
        """Lines that fell off the front, as `HistoryReply.dropped` counts them."""
        self.asked: list[tuple[int, int]] = []

    def prints(self, count: int) -> None:
        """The agent prints `count` more lines (`h<n>`, numbered on from the newest); the
        oldest fall off once more than `keep` are kept."""
        first = self.dropped + len(self.lines)
        self.lines += [plain(f"h{n}") for n in range(first, first + count)]
        if self.keep is not None and len(self.lines) > self.keep:
            gone = len(self.lines) - self.keep
            self.lines = self.lines[gone:]
            self.dropped += gone

    @classmethod
    def numbered(cls, count: int) -> FakeHistory:
        """`count` lines reading `h0` (the oldest) to `h<count-1>`."""
        return cls([plain(f"h{n}") for n in range(count)])

    def answer_from(self, start: int, count: int) -> HistoryReply:
        self.asked.append((start, count))
        total = len(self.lines)
        first = min(start if start >= 0 else max(0, total + start), total)
        return HistoryReply(
            total=total, start=first, lines=self.lines[first : first + count], dropped=self.dropped
        )

    def answer(self, request: History) -> HistoryReply:
        return self.answer_from(request.start, request.count)

    async def read(self, name: str, start: int, count: int) -> HistoryReply:
        return self.answer_from(start, count)
