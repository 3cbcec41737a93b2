"""One agent's live terminal, drawn with the Line API from the daemon's screen deltas.

Redrawing is driven by a timer at `ui.max_fps`, not by each event: a tick that finds
the screen unchanged does nothing, and one that finds changes repaints only the rows
that changed. Rows are cached as strips; styles are cached per run attribute set.

While focused (`grab()`), every key goes to the agent as the bytes a terminal would
send, app bindings included, except the release key (`ctrl+]` as in `at session
attach`; remappable as `agents-release`), which hands focus back.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tundra_tui.session.keys import encode_key, encode_paste
from tundra_tui.ui.keymap import display_keys
from tundra_tui.ui.remote_screen import RemoteScreen, Run
from tundra_tui.ui.terminal_style import run_style

RELEASE_KEY = "ctrl+right_square_bracket"
"""Textual's name for Ctrl-]: by default the one key a focused terminal keeps for itself."""
SIZE_DEBOUNCE = 0.15
"""Seconds a new size must hold before the agent's PTY is resized to it."""


def _blank(line: list[Run]) -> bool:
    """True for a row with nothing to see (a coloured bar is something)."""
    return all(not run.text.strip() and run.bg == "default" and not run.reverse for run in line)


def _with_cursor(strip: Strip, x: int) -> Strip:
    """`strip` with the cell at `x` shown inverted (or un-inverted, on a reversed cell)."""
    length = strip.cell_length
    if not 0 <= x < length:
        return strip
    left, cell, right = strip.divide([x, x + 1, length])
    segments = [
        Segment(
            seg.text, (seg.style or Style()) + Style(reverse=not (seg.style and seg.style.reverse))
        )
        for seg in cell
    ]
    return Strip.join([left, Strip(segments, 1), right])


class TerminalView(Widget, can_focus=False):
    """A tile showing one agent's `RemoteScreen`; focusable only while grabbed."""

    DEFAULT_CSS = """
    TerminalView {
        width: 1fr;
        height: 1fr;
        overflow: hidden hidden;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(RELEASE_KEY, "release", "Release keys", id="agents-release"),
    ]
    """The only binding that works while the view has the keyboard (remappable by its id)."""

    class Input(Message):
        """Bytes the operator typed or pasted for `agent`, in order."""

        def __init__(self, agent: str, data: bytes) -> None:
            super().__init__()
            self.agent = agent
            self.data = data

    class Released(Message):
        """The view gave keys back: by the release key (`refocus`) or because focus moved."""

        def __init__(self, view: TerminalView, *, refocus: bool) -> None:
            super().__init__()
            self.view = view
            self.refocus = refocus

        @property
        def control(self) -> TerminalView:
            return self.view

    class SizeChanged(Message):
        """The view that drives its agent's PTY size settled on a new size."""

        def __init__(self, agent: str, columns: int, rows: int) -> None:
            super().__init__()
            self.agent = agent
            self.columns = columns
            self.rows = rows

    class Clicked(Message):
        """The operator clicked the tile of `agent` (to select it)."""

        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    def __init__(
        self, *, max_fps: int = 30, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._agent = ""
        self._max_fps = max(1, max_fps)
        self._remote: RemoteScreen | None = None
        self._strips: dict[int, Strip] = {}
        self._blank: list[bool] = []
        self._seen_version = -1
        self._top = 0
        self._base: Style | None = None
        self._styled_with: Style | None = None
        self._strips_width = 0
        """The width the cached strips were cut to."""
        self._label = ""
        self._dimmed = False
        self._drives_size = False
        self._reported: tuple[str, int, int] | None = None
        self._size_timer: Timer | None = None

    def on_mount(self) -> None:
        self.set_interval(1 / self._max_fps, self.tick, name="terminal-frame")

    @property
    def agent(self) -> str:
        """Whose screen this is and whose keys it sends (the raw name the daemon knows)."""
        return self._agent

    @agent.setter
    def agent(self, agent: str) -> None:
        if agent != self._agent:
            self._agent = agent
            self._schedule_size_report()

    @property
    def remote_screen(self) -> RemoteScreen | None:
        """The screen shown (named so as not to shadow `Widget.screen`)."""
        return self._remote

    @remote_screen.setter
    def remote_screen(self, remote: RemoteScreen | None) -> None:
        if remote is self._remote:
            return
        self._remote = remote
        self._resync()
        self.refresh()

    @property
    def label(self) -> str:
        """Plain text for the border title (never markup)."""
        return self._label

    @label.setter
    def label(self, label: str) -> None:
        if label != self._label:
            self._label = label
            self.border_title = Content(label)

    @property
    def dimmed(self) -> bool:
        """Drawn dim: a stored screen of an agent that is not running."""
        return self._dimmed

    @dimmed.setter
    def dimmed(self, dimmed: bool) -> None:
        if dimmed != self._dimmed:
            self._dimmed = dimmed
            self._base = None
            self.set_class(dimmed, "-stopped")
            self.refresh()

    @property
    def drives_size(self) -> bool:
        """True for the focused or zoomed tile: its size becomes the agent's PTY size."""
        return self._drives_size

    @drives_size.setter
    def drives_size(self, drives: bool) -> None:
        if drives == self._drives_size:
            return
        self._drives_size = drives
        if drives:
            self._schedule_size_report()
        else:
            self._reported = None

    def grab(self) -> None:
        """Take the keyboard: from now on every key goes to the agent."""
        self.can_focus = True
        self.focus()

    def action_release(self) -> None:
        """Give the keyboard back to the pane."""
        self.release(refocus=True)

    def release(self, *, refocus: bool) -> None:
        """Stop taking keys and tell the pane (which gives focus back on `refocus`)."""
        self.can_focus = False
        self.border_subtitle = None
        self.post_message(self.Released(self, refocus=refocus))

    # Drawing

    def tick(self) -> None:
        """One frame: repaint the rows that changed since the last one, if any."""
        remote = self._remote
        if remote is None or remote.version == self._seen_version:
            return
        self._seen_version = remote.version
        dirty = remote.take_dirty()
        if len(self._blank) != remote.rows:
            self._resync()
            self.refresh()
            return
        for row in dirty:
            self._strips.pop(row, None)
            self._blank[row] = _blank(remote.lines[row])
        top = self._top_row()
        if top != self._top:
            self._top = top
            self.refresh()
            return
        width, height = self.size
        regions = [Region(0, row - top, width, 1) for row in dirty if top <= row < top + height]
        if regions:
            self.refresh(*regions)

    def _resync(self) -> None:
        """Forget every cached row and re-read the whole screen."""
        self._strips.clear()
        remote = self._remote
        if remote is None:
            self._blank, self._seen_version, self._top = [], -1, 0
            return
        remote.take_dirty()
        self._seen_version = remote.version
        self._blank = [_blank(line) for line in remote.lines]
        self._top = self._top_row()

    def _top_row(self) -> int:
        """The first screen row shown: a short tile shows the bottom-most rows with content."""
        remote, height = self._remote, self.size.height
        if remote is None or height <= 0 or remote.rows <= height:
            return 0
        last = next((y for y in range(len(self._blank) - 1, -1, -1) if not self._blank[y]), 0)
        bottom = max(last, remote.cursor[1]) + 1
        return max(0, min(bottom - height, remote.rows - height))

    def _base_style(self) -> Style:
        """The widget's own colours under every run; computed once per style change, as
        `rich_style` walks every ancestor."""
        if self._base is None:
            style = self.rich_style + Style(dim=True) if self._dimmed else self.rich_style
            if style != self._styled_with:
                # Theme, dimming or focus changed the colours under every cached row.
                self._styled_with = style
                self._strips.clear()
            self._base = style
        return self._base

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._base_style()
        remote = self._remote
        row = self._top + y
        if remote is None or row >= remote.rows:
            return Strip.blank(width, base)
        if width != self._strips_width:
            self._strips.clear()
            self._strips_width = width
        strip = self._strips.get(row)
        if strip is None:
            # Rich caches `base + style`, so a row costs one Segment per run and two strips.
            line = remote.lines[row]
            segments = [Segment(run.text, base + run_style(run)) for run in line if run.text]
            strip = self._strips[row] = Strip(segments).crop_extend(0, width, base)
        if self.has_focus and row == remote.cursor[1]:
            strip = _with_cursor(strip, remote.cursor[0])
        return strip

    def on_resize(self) -> None:
        top = self._top_row()
        if top != self._top:
            self._top = top
            self.refresh()
        self._schedule_size_report()

    # Focus and keys

    def check_consume_key(self, key: str, character: str | None) -> bool:
        """Every key is the agent's: Textual then drops every other node's binding for it from
        the chain while this view has focus (priority ones too, such as ctrl+q), and the
        footer and help show only the release key."""
        return True

    def _release_key(self) -> str | None:
        """The key bound to release now (after any remap)."""
        for key, active in self.screen.active_bindings.items():
            if active.node is self and active.binding.action == "release":
                return key
        return None

    def on_focus(self) -> None:
        key = self._release_key()
        self.border_subtitle = Content(f"{display_keys(key)} to release") if key else None
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
        if self.can_focus and self.screen.focused is not self:
            # Focus went elsewhere (a click, another tab): stop taking keys quietly.
            self.release(refocus=False)

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        if event.key == self._release_key():
            self.release(refocus=True)
            return
        data = encode_key(event.key, event.character)
        if data and self.agent:
            self.post_message(self.Input(self.agent, data))

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text and self.agent:
            self.post_message(self.Input(self.agent, encode_paste(event.text)))

    def on_click(self) -> None:
        if self.agent:
            self.post_message(self.Clicked(self.agent))

    # PTY size

    def _schedule_size_report(self) -> None:
        if not self._drives_size:
            return
        if self._size_timer is not None:
            self._size_timer.stop()
        self._size_timer = self.set_timer(SIZE_DEBOUNCE, self._report_size)

    def _report_size(self) -> None:
        self._size_timer = None
        columns, rows = self.size
        if not self._drives_size or not self.agent or columns <= 0 or rows <= 0:
            return
        if (self.agent, columns, rows) != self._reported:
            self._reported = (self.agent, columns, rows)
            self.post_message(self.SizeChanged(self.agent, columns, rows))
