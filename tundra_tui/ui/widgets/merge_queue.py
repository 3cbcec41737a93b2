"""The merge queue strip under the kanban board: what the refinery does, what waits, what it did.

`Refinery merging #12 · gate 1/1 3s │ queue #14 #15 │ ✓ #11 3f2a1bc  ✗ #9 gate`

One line when it fits, else two (the state and the queue, then the recent results). It
draws a `RefineryStatus` as the daemon (or the store, with no daemon) says it; reasons
and names came from agents and the operator, so they go through the sanitizer, and
nothing here is markup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.timer import Timer
from textual.widget import Widget

from tundra_tui.daemon.protocol import AttemptRow, RefineryStatus
from tundra_tui.domain.refinery import Outcome, RefineryState
from tundra_tui.domain.sanitize import visible

SEPARATOR = " │ "
MAX_RECENT = 4
"""Recent results on the strip (`at refinery status` lists more)."""
STEP_CHARS = 36
"""The current step (`gate 1/2 `pytest -q``) is cut to this many characters."""
MAX_QUEUED = 8
"""Queued beads named on the strip; the rest are counted."""
_OUTCOME_WORD: dict[str, str] = {
    Outcome.CONFLICT: "conflict",
    Outcome.GATE_FAILED: "gate",
    Outcome.TARGET_MOVED: "target moved",
    Outcome.WITHDRAWN: "withdrawn",
    Outcome.INTERRUPTED: "interrupted",
    Outcome.ERROR: "error",
}
_STATE_HINT: dict[str, str] = {
    RefineryState.NEEDS_GATES: "set refinery.gates",
    RefineryState.NO_TARGET: "set orchestra.target_branch",
    RefineryState.DISABLED: "refinery.enabled = false",
}


def _one(text: str, limit: int = 60) -> str:
    return visible(text, single_line=True, limit=limit)


def _sha(commit: str) -> str:
    return _one(commit, 40)[:7]


def _branch(ref: str) -> str:
    return _one(ref.removeprefix("refs/heads/"), 40)


def _elapsed(since: str, now: datetime) -> str:
    """`3s`, `2m05s` since an ISO stamp; empty if the stamp is missing or unreadable."""
    try:
        start = datetime.fromisoformat(since)
    except ValueError:
        return ""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    seconds = max(int((now - start).total_seconds()), 0)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s"


class MergeQueue(Widget):
    """Holds the last status it was shown; the Beads pane fetches it and calls `show`."""

    DEFAULT_CSS = """
    MergeQueue { height: auto; padding: 0 1; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "merge-queue--label",
        "merge-queue--busy",
        "merge-queue--good",
        "merge-queue--bad",
        "merge-queue--muted",
    }

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        legend: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.legend = legend
        """Shown dim at the right of a one-line strip when it fits."""
        self.status: RefineryStatus | None = None
        self._now = now
        self._ticker: Timer | None = None

    def show(self, status: RefineryStatus | None) -> None:
        """Draw `status` (None: not known yet); a running step's clock ticks each second."""
        self.status = status
        merging = status is not None and bool(status.step_since) and status.current is not None
        if merging and self._ticker is None:
            self._ticker = self.set_interval(1.0, self.refresh)
        elif not merging and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.refresh(layout=True)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"merge-queue--{name}")

    # ---- the parts ---------------------------------------------------------------------

    def state_part(self, status: RefineryStatus) -> Text:
        """`merging #12 (attempt 2) · gate 1/1 3s`, `paused: release`, `target red: main …`."""
        text = Text(no_wrap=True, overflow="ellipsis")
        state = status.state
        current = status.current
        if state == RefineryState.MERGING and current is not None:
            text.append(f"merging #{current.bead}", self._style("busy"))
            if current.n > 1:
                text.append(f" (attempt {current.n})")
            if status.step:  # cut short: the queue after it must stay in view
                text.append(f" · {_one(status.step, STEP_CHARS)}")
            if status.step_since and (took := _elapsed(status.step_since, self._now())):
                text.append(f" {took}", self._style("muted"))
            return text
        if state == RefineryState.PAUSED or (status.paused and state == RefineryState.IDLE):
            text.append("paused", self._style("bad"))
            if status.pause_reason:
                text.append(f": {_one(status.pause_reason)}")
            return text
        if state == RefineryState.TARGET_RED:
            text.append("target red", self._style("bad"))
            text.append(f": {_branch(status.target)} {_sha(status.target_commit)}".rstrip())
            return text
        bad = state not in (RefineryState.IDLE, RefineryState.MERGING)
        text.append(_one(state), self._style("bad" if bad else "good"))
        # A known state's short hint beats its long detail: the queue must stay in view.
        detail = (_STATE_HINT.get(state) or _one(status.detail)) if bad else ""
        if state == RefineryState.IDLE and status.gates == []:
            detail = "no gates"
        if detail:
            text.append(f": {detail}" if bad else f" ({detail})")
        return text

    def queue_part(self, status: RefineryStatus) -> Text:
        """`queue #14 #15` (held-back beads dimmed), or `queue empty`."""
        text = Text("queue", no_wrap=True, overflow="ellipsis")
        if not status.queue:
            text.append(" empty", self._style("muted"))
        for row in status.queue[:MAX_QUEUED]:
            text.append(f" #{row.bead}", self._style("muted") if row.waiting else "")
        if len(status.queue) > MAX_QUEUED:
            text.append(f" +{len(status.queue) - MAX_QUEUED}", self._style("muted"))
        return text

    def recent_part(self, status: RefineryStatus) -> Text:
        """`✓ #11 3f2a1bc  ✗ #9 gate`: the newest results first."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, attempt in enumerate(status.recent[:MAX_RECENT]):
            if index:
                text.append("  ")
            text.append_text(self._result(attempt))
        return text

    def _result(self, attempt: AttemptRow) -> Text:
        if attempt.outcome == Outcome.MERGED:
            glyph = "✓" if attempt.gates else "○"
            return Text.assemble(
                (glyph, self._style("good")), f" #{attempt.bead} {_sha(attempt.result_commit)}"
            )
        word = _OUTCOME_WORD.get(attempt.outcome, _one(attempt.outcome, 20))
        counted = attempt.outcome in (Outcome.CONFLICT, Outcome.GATE_FAILED)
        mark = Text("✗", self._style("bad")) if counted else Text("·", self._style("muted"))
        return Text.assemble(mark, f" #{attempt.bead} {word}")

    # ---- drawing -----------------------------------------------------------------------

    def lines(self, width: int) -> list[Text]:
        """The strip's lines at `width` cells: one if everything fits, else two."""
        status = self.status
        label = Text("Refinery ", self._style("label"))
        if status is None:
            return [label + Text("…", self._style("muted"))]
        parts = [self.state_part(status), self.queue_part(status)]
        recent = self.recent_part(status)
        tail = [recent] if recent.plain else []
        if status.checkout_behind:
            tail.append(Text(f"your checkout is behind {_branch(status.target)}: at refinery sync"))
        sep = Text(SEPARATOR, self._style("muted"))
        one = label + sep.join([*parts, *tail])
        if one.cell_len <= width or not tail:
            return [self._cut(self._with_legend(one, width), width)]
        second = Text(" " * label.cell_len) + sep.join(tail)
        return [self._cut(label + sep.join(parts), width), self._cut(second, width)]

    def _with_legend(self, line: Text, width: int) -> Text:
        """The completion legend at the right of a line with room for it (the header's
        legend, of lanes and statuses, takes its own line)."""
        gap = width - line.cell_len - len(self.legend)
        if not self.legend or gap < 4:
            return line
        return line + Text(" " * gap) + Text(self.legend, self._style("muted"))

    @staticmethod
    def _cut(line: Text, width: int) -> Text:
        if line.cell_len > width:
            line = line.copy()
            line.truncate(max(width - 1, 0))
            line.append("…")
        line.no_wrap = True
        return line

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        return Text("\n").join(self.lines(self.size.width))
