"""The top line: town, agents by state, the approvals waiting (a click opens the inbox), the
operator's unread mail (a click opens the Mail view), the budget brake and paused accounts,
the daemon link, the clock."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.clock import parse_iso
from tundra_tui.domain.costs import Brake, BrakeLevel
from tundra_tui.domain.sanitize import visible

SHOWN = (AgentState.WORKING, AgentState.IDLE, AgentState.AWAITING_APPROVAL, AgentState.UNKNOWN)


class TitleBar(Widget):
    """Redrawn by the app when states or the link change; holds no data of its own."""

    class WaitingClicked(Message):
        """The operator clicked the count of approvals waiting: open the inbox."""

    class MailClicked(Message):
        """The operator clicked the count of their unread mail: open the Mail view."""

    DEFAULT_CSS = """
    TitleBar { height: 1; width: 1fr; }
    TitleBar > .title-bar--mail { color: $accent; text-style: bold; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "title-bar--name",
        "title-bar--down",
        "title-bar--waiting",
        "title-bar--mail",
        "title-bar--budget",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.town = ""
        self.states: list[AgentState] = []
        self.waiting = 0
        self.mail = 0
        """Mail to the operator not read yet (`✉ N`)."""
        self.connected = False
        self.clock = ""
        self.demo = False
        self.brake: Brake | None = None
        """Budgets, the override and pauses, as the store last said (None: not read)."""
        self.now = ""
        """The stored form of now, for the brake's countdowns and expiries."""
        self._said: tuple[object, ...] = ()
        self._waiting_cells: tuple[int, int] | None = None
        """Columns (from, to) of `N waiting` as last drawn, for clicks."""
        self._mail_cells: tuple[int, int] | None = None
        """Columns (from, to) of `✉ N` as last drawn, for clicks."""

    def refresh_if_changed(self) -> None:
        """Repaint only when what the bar says changed (a clock minute, a count, a mark):
        ticking every second, a repaint at the top of the screen made Textual redraw all
        that lies between it and the grabbed tile's echo in the echo's frame."""
        marks = brake_marks(self.brake, self.now) if self.brake and self.now else ""
        said = (
            self.town,
            tuple(sorted(Counter(self.states).items())),
            self.waiting,
            self.mail,
            self.connected,
            self.clock,
            self.demo,
            marks,
        )
        if said != self._said:
            self._said = said
            self.refresh()

    def render(self) -> Text:
        left = Text(no_wrap=True, overflow="crop")
        left.append(" auto-tundra ", self.get_component_rich_style("title-bar--name"))
        left.append(" " + visible(self.town, single_line=True, limit=40))
        if self.demo:
            left.append("  (demo)")
        right = Text(no_wrap=True)
        counts = Counter(self.states)
        right.append(" ".join(f"{s.glyph}{counts[s]}" for s in SHOWN))
        right.append(f"  [{len(self.states)} agents]")
        waiting_at: tuple[int, int] | None = None
        if self.waiting:
            right.append("  ")
            start = right.cell_len
            right.append(
                f"{self.waiting} waiting", self.get_component_rich_style("title-bar--waiting")
            )
            waiting_at = (start, right.cell_len)
        mail_at: tuple[int, int] | None = None
        if self.mail:
            right.append("  ")
            start = right.cell_len
            right.append(f"✉ {self.mail}", self.get_component_rich_style("title-bar--mail"))
            mail_at = (start, right.cell_len)
        marks = brake_marks(self.brake, self.now) if self.brake and self.now else ""
        if marks:
            right.append(f"  {marks}", self.get_component_rich_style("title-bar--budget"))
        if self.connected:
            right.append("  daemon up")
        else:
            right.append("  daemon down", self.get_component_rich_style("title-bar--down"))
        right.append(f"  {self.clock} ")
        width = self.size.width or 80
        gap = width - left.cell_len - right.cell_len
        if gap < 1:
            left.truncate(max(0, width - right.cell_len - 1), overflow="ellipsis")
            gap = max(1, width - left.cell_len - right.cell_len)
        offset = left.cell_len + gap
        self._waiting_cells = _shifted(waiting_at, offset)
        self._mail_cells = _shifted(mail_at, offset)
        return Text.assemble(left, " " * gap, right)

    def on_click(self, event: events.Click) -> None:
        waiting, mail = self._waiting_cells, self._mail_cells
        if self.waiting and waiting is not None and waiting[0] <= event.x < waiting[1]:
            self.post_message(self.WaitingClicked())
        elif self.mail and mail is not None and mail[0] <= event.x < mail[1]:
            self.post_message(self.MailClicked())


def _shifted(cells: tuple[int, int] | None, offset: int) -> tuple[int, int] | None:
    return None if cells is None else (offset + cells[0], offset + cells[1])


_SCOPE = {"day": "today", "month": "month"}


def brake_marks(brake: Brake, now: str) -> str:
    """`$ 84% today` at a warning (`$ ≥84% today` when unpriced usage makes it a floor),
    `$ STOP` when a day or month budget stops dispatch, `$ STOP alpha` (`+2` more) when only
    convoys' budgets are spent (the rest of the town goes on), `$ override` while the
    operator's override lifts a stop, then `⏸ claude 12m` per paused account."""
    marks: list[str] = []
    level = brake.town_level(now)
    if level == "stop":
        marks.append("$ STOP")
    elif level == "overridden":
        marks.append("$ override")
    else:
        stopped = brake.convoys_stopped(now)
        if stopped:
            more = f" +{len(stopped) - 1}" if len(stopped) > 1 else ""
            marks.append(f"$ STOP {visible(stopped[0], single_line=True, limit=20)}{more}")
        warned = [s for s in brake.scopes if s.level is BrakeLevel.WARN]
        if warned:
            scope = max(warned, key=lambda s: s.percent)
            where = _SCOPE.get(scope.kind, visible(scope.name, single_line=True, limit=20))
            least = "" if scope.spent.complete else "≥"  # unpriced usage: the percent is a floor
            marks.append(f"$ {least}{scope.percent:.0f}% {where}")
    for pause in brake.pauses:
        if brake.paused(pause.account, now) is not pause:
            continue
        left = (parse_iso(pause.until) - parse_iso(now)).total_seconds()
        minutes = max(1, int((left + 59) // 60))
        span = f"{minutes}m" if minutes < 120 else f"{minutes // 60}h{minutes % 60:02d}m"
        marks.append(f"⏸ {visible(pause.account, single_line=True, limit=20)} {span}")
    return "  ".join(marks)
