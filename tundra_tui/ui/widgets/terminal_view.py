"""One agent's live terminal, drawn with the Line API from the daemon's screen deltas.

Redrawing is driven by a timer at `ui.max_fps`, not by each event: a tick that finds
the screen unchanged does nothing, and one that finds changes repaints only the rows
that changed. Rows are cached as strips; styles are cached per run attribute set.

While focused (`grab()`), every key goes to the agent as the bytes a terminal would
send, app bindings included, except the release key (`ctrl+]` as in `at session
attach`; remappable as `agents-release`), which hands focus back, and the scrollback key.

Scrollback (`scroll_back()`, the wheel over a focused or zoomed tile, or `shift+pageup`
while focused) shows the agent's history from the daemon with vim and tmux copy-mode keys,
holding still while output goes on; `q`, `Esc`, scrolling past the bottom or typing returns
to the live screen (a typed key then goes to the agent if the tile has the keyboard).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tundra_tui.daemon.protocol import HistoryReply
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.session.keys import encode_key, encode_paste
from tundra_tui.ui.keymap import display_keys
from tundra_tui.ui.remote_screen import RemoteScreen, Run
from tundra_tui.ui.scrollback import PAGE, Scrollback
from tundra_tui.ui.terminal_style import run_style

RELEASE_KEY = "ctrl+right_square_bracket"
"""Textual's name for Ctrl-]: by default the one key a focused terminal keeps for itself."""
SIZE_DEBOUNCE = 0.15
BACKGROUND_FPS = 4
"""Frames a second of a tile in the background (another tile is grabbed): the operator
reads the one they type into, and every tile drawn at full rate is the cost that delays
that one's echo (on 2 cores, ten streaming tiles kept the TUI's loop three-quarters busy
drawing)."""
BACKGROUND_GAP = 1 / 30
"""Background tiles take turns (`PaintTurns`): at most one repaints in this long. Started
together, they otherwise all came due in the same frame, and the grabbed tile's echo waited
behind several whole tiles drawn at once (a streaming tile costs Textual about 10 ms)."""
ECHO_WAIT = 0.1
"""After a key, background tiles wait this long at most for the grabbed tile's echo to be
painted before they may paint again (an agent that does not echo holds them no longer)."""
TYPING_GAP = 0.25
"""While the operator types (a key in the last `TYPING_WINDOW`), background tiles take
turns this far apart instead of `BACKGROUND_GAP`: every background repaint is a frame the
next key's echo may land behind, and nobody reads the other tiles mid-word."""
TYPING_WINDOW = 1.0


class PaintTurns:
    """Shared by a grid's tiles: when a background tile may repaint (see `BACKGROUND_GAP`).

    Tiles tick in a fixed order, so those kept waiting win in turn. While a key's echo is on
    its way none repaints: a background tile drawn in the same frame as the echo, or just
    before it, is what the echo waits behind. The pane ticks them again right after the echo
    is drawn, when the operator's next key is furthest away.
    """

    def __init__(self, gap: float = BACKGROUND_GAP) -> None:
        self.gap = gap
        self._last = float("-inf")
        self._keyed = float("-inf")
        self._echoed = float("-inf")
        self._fresh = False
        """An echo was drawn and no background tile has repainted since."""

    def keyed(self, now: float) -> None:
        """A key went to the grabbed tile's agent: its echo is on its way."""
        self._keyed = now

    def echoed(self, now: float) -> None:
        """The grabbed tile repainted (the echo, or whatever else the agent drew)."""
        self._echoed = now
        self._fresh = True

    def take(self, now: float) -> bool:
        """Whether a background tile may repaint at `now` (and it counts as doing so)."""
        if self._keyed > self._echoed and now - self._keyed < ECHO_WAIT:
            return False
        # While typing, a tile goes at once only right after an echo (the next key is furthest
        # away then); otherwise it waits the typing gap.
        fresh, self._fresh = self._fresh, False
        typing = now - self._keyed < TYPING_WINDOW
        gap = TYPING_GAP if typing and not fresh else self.gap
        if now - self._last < max(gap, self.gap):
            self._fresh = fresh
            return False
        self._last = now
        return True


"""Seconds a new size must hold before the agent's PTY is resized to it."""
WHEEL_LINES = 3
"""Lines one notch of the mouse wheel scrolls."""
TOP = 1 << 30
"""An offset past any history: the top, once the history's length is known."""

HistorySource = Callable[[str, int, int], Awaitable[HistoryReply]]
"""Reads an agent's history: (name, start, count), `start` < 0 counting from the newest."""
KeySink = Callable[[str, bytes], None]
"""Sends bytes the operator typed to an agent (name, data), at once and in order."""


def _blank(line: list[Run]) -> bool:
    """True for a row with nothing to see (a coloured bar is something)."""
    return all(not run.text.strip() and run.bg == "default" and not run.reverse for run in line)


def _strip(line: list[Run], width: int, base: Style) -> Strip:
    """One row as a strip `width` cells wide. Rich caches `base + style`, so a row costs one
    Segment per run and two strips."""
    segments = [Segment(run.text, base + run_style(run)) for run in line if run.text]
    return Strip(segments).crop_extend(0, width, base)


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
        Binding("shift+pageup", "scrollback", "Scrollback", id="agents-scrollback"),
        Binding("pageup,ctrl+b", "back_pages(1)", "Page up", show=False, id="scrollback-page-up"),
        Binding(
            "pagedown,ctrl+f,shift+pagedown",
            "back_pages(-1)",
            "Page down",
            show=False,
            id="scrollback-page-down",
        ),
        Binding("ctrl+u", "back_halves(1)", "Half page up", show=False, id="scrollback-half-up"),
        Binding(
            "ctrl+d", "back_halves(-1)", "Half page down", show=False, id="scrollback-half-down"
        ),
        Binding("k,up", "back(1)", "Line up", show=False, id="scrollback-line-up"),
        Binding("j,down", "back(-1)", "Line down", show=False, id="scrollback-line-down"),
        Binding("g,home", "back_top", "Oldest line", show=False, id="scrollback-top"),
        Binding("G,end", "bottom", "Newest (live)", show=False, id="scrollback-bottom"),
        Binding("q", "live", "Back to live", id="scrollback-leave"),
        Binding("escape", "live", "Back to live", show=False, id="scrollback-leave-escape"),
    ]
    """The only keys the view keeps while it has the keyboard (each remappable by its id):
    release and scrollback while the agent has the keys, the motions only in scrollback."""

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
        self,
        *,
        max_fps: int = 30,
        history: HistorySource | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._agent = ""
        self._history = history
        self._max_fps = max(1, max_fps)
        self._remote: RemoteScreen | None = None
        self._strips: dict[int, Strip] = {}
        self._made: dict[int, tuple[list[Run], Strip]] = {}
        """Strips by the row they were made from (by identity: a RemoteScreen shares the row
        a scrolling screen sends again one line higher), so that a scroll draws new rows only."""
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
        self._typing = False
        """Grabbed: keys go to the agent (when not in scrollback)."""
        self._scroll: Scrollback | None = None
        self._reading: Scrollback | None = None
        """The scrollback whose pages are being read (one reader at a time)."""
        self._frozen_version = -1
        """The screen's version when scrollback took it: newer means new output below."""
        self._news = False
        """The agent printed since scrollback took its screen."""
        self._background = False
        self.turns = PaintTurns()
        """Shared with the other tiles of the grid (the pane sets it): see `BACKGROUND_GAP`."""
        self._painted_at = 0.0
        """When `tick` last repainted (monotonic), for the background rate."""
        self.keys_to: KeySink | None = None
        """Where typed bytes go, called from the key handler (the pane sets it). Without one
        they go up as `Input` messages; with one they skip that message's three queue hops
        (tile, grid, pane), each of which could wait behind a whole frame being drawn."""

    def on_mount(self) -> None:
        self.set_interval(1 / self._max_fps, self.tick, name="terminal-frame")

    @property
    def agent(self) -> str:
        """Whose screen this is and whose keys it sends (the raw name the daemon knows)."""
        return self._agent

    @agent.setter
    def agent(self, agent: str) -> None:
        if agent != self._agent:
            self.action_live()
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
        self.action_live()
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
    def background(self) -> bool:
        """Another tile is grabbed: repaint at `BACKGROUND_FPS`, not the full rate."""
        return self._background

    @background.setter
    def background(self, background: bool) -> None:
        self._background = background

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

    @property
    def scrolling(self) -> bool:
        """In scrollback: the tile shows history, not the live screen."""
        return self._scroll is not None

    def grab(self) -> None:
        """Take the keyboard: from now on every key goes to the agent."""
        self._typing = True
        self.can_focus = True
        self.focus()
        self._show_position()

    def action_release(self) -> None:
        """Give the keyboard back to the pane."""
        self.release(refocus=True)

    def release(self, *, refocus: bool) -> None:
        """Stop taking keys (leaving scrollback) and tell the pane, which gives focus back on
        `refocus`."""
        self._typing = False
        self.can_focus = False
        self._end_scroll()
        self.border_subtitle = None
        self.post_message(self.Released(self, refocus=refocus))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "release":
            return self._typing or self._scroll is None
        if action == "scrollback":
            return self._typing or self._scroll is not None
        return self._scroll is not None

    # Scrollback

    def scroll_back(self, lines: int | None = None) -> bool:
        """Scroll `lines` up (a page if None), entering scrollback and taking the keyboard for
        its keys. False when there is no history to read (no agent, or it is not running)."""
        if self._history is None or not self.agent or self._dimmed:
            return False
        amount = self._page() if lines is None else lines
        if self._scroll is not None:
            self._move(amount)
            return True
        self._scroll = Scrollback(amount)
        self.can_focus = True
        if not self.has_focus:
            self.focus()
        self._show_position()
        self._want_history()
        return True

    def action_scrollback(self) -> None:
        """Enter scrollback a page up, or go a page further up."""
        self.scroll_back()

    def action_back(self, lines: int) -> None:
        """Scroll `lines` up (negative: down)."""
        self._move(lines)

    def action_back_pages(self, pages: int) -> None:
        """Scroll `pages` pages up (negative: down)."""
        self._move(pages * self._page())

    def action_back_halves(self, halves: int) -> None:
        """Scroll `halves` half tile heights up (negative: down), as vim's ctrl+u and ctrl+d."""
        self._move(halves * max(1, self.size.height // 2))

    def action_back_top(self) -> None:
        """Scroll to the oldest line kept."""
        self._move(TOP)

    def action_bottom(self) -> None:
        """Scroll to the newest line: the live screen."""
        self.action_live()

    def action_live(self) -> None:
        """Leave scrollback for the live screen, keeping the keyboard only if it was grabbed."""
        if self._scroll is None:
            return
        if self._typing:
            self._end_scroll()
        else:
            self.release(refocus=True)

    def _page(self) -> int:
        """A page: the tile's height less one line, kept on screen for context."""
        return max(1, self.size.height - 1)

    def _move(self, lines: int) -> None:
        scroll = self._scroll
        if scroll is None or not lines:
            return
        if scroll.offset + lines <= 0:
            self.action_live()  # past the bottom: back to live, as tmux's copy-mode -e does
            return
        scroll.scroll(lines, self.size.height)
        self.refresh()
        self._show_position()
        self._want_history()

    def _end_scroll(self) -> None:
        if self._scroll is None:
            return
        self._scroll = self._reading = None
        self.workers.cancel_group(self, "terminal-history")
        self._resync()
        self.refresh()
        self._show_position()

    def _snapshot(self) -> list[list[Run]]:
        """The screen rows down to the bottom of what the live tile shows. Rows are never
        changed in place (a delta replaces a row's list), so a shallow copy holds still."""
        remote = self._remote
        if remote is None:
            return []
        self._resync()
        self._frozen_version, self._news = remote.version, False
        return list(remote.lines[: min(remote.rows, self._top + self.size.height)])

    def _want_history(self) -> None:
        scroll = self._scroll
        if scroll is not None and self._reading is not scroll:
            self._reading = scroll
            self._read_history(scroll)

    @work(group="terminal-history", exclusive=True, exit_on_error=False)
    async def _read_history(self, scroll: Scrollback) -> None:
        """Read the newest page and take the screen, then the pages around the view until it
        and a tile's height either side of it are read."""
        source, agent = self._history, self.agent
        try:
            if source is None:
                return
            if not scroll.ready:
                reply = await source(agent, -PAGE, PAGE)
                if scroll is not self._scroll:
                    return
                scroll.start(reply, self._snapshot())
                scroll.clamp(self.size.height)
                if not scroll.offset:
                    self.notify(
                        f"nothing to scroll back to in {visible(agent, single_line=True)} yet",
                        markup=False,
                    )
                    self.action_live()
                    return
                self.refresh()
                self._show_position()
            while scroll is self._scroll:
                page = scroll.wanted(self.size.height)
                if page is None:
                    return
                start, count = page
                reply = await source(agent, start, count)
                if scroll is not self._scroll:
                    return
                scroll.add(reply, range(start, start + count))
                self.refresh()
        except TundraError as error:
            scroll.failed = True
            self.notify(
                f"history of {visible(agent, single_line=True)}: "
                f"{visible(str(error), single_line=True, limit=200)}",
                severity="warning",
                markup=False,
            )
            if scroll is self._scroll and not scroll.ready:
                self.action_live()
        finally:
            if self._reading is scroll:
                self._reading = None

    def _key_for(self, action: str) -> str | None:
        """The key bound to one of the view's own actions now (after any remap)."""
        for key, active in self.screen.active_bindings.items():
            if active.node is self and active.binding.action == action:
                return key
        return None

    def _show_position(self) -> None:
        """The border's subtitle: where scrollback is (as tmux's copy mode shows it), or how to
        release the keys."""
        scroll = self._scroll
        if scroll is not None:
            where = f"{scroll.offset}/{scroll.limit(self.size.height)}" if scroll.ready else "…"
            news = " · new output below" if self._news else ""
            leave = self._key_for("live")
            hint = f" · {display_keys(leave)} to leave" if leave else ""
            self.border_subtitle = Content(f"[scrollback {where}]{news}{hint}")
        elif self._typing:
            key = self._key_for("release")
            self.border_subtitle = Content(f"{display_keys(key)} to release") if key else None
        else:
            self.border_subtitle = None

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """The wheel scrolls back in a focused or zoomed tile (the ones that drive the size)."""
        if (self._scroll is not None or self._drives_size) and self.scroll_back(WHEEL_LINES):
            event.stop()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        if self._scroll is not None:
            event.stop()
            self._move(-WHEEL_LINES)

    # Drawing

    def tick(self) -> None:
        """One frame: repaint the rows that changed since the last one, if any."""
        remote = self._remote
        if remote is None or remote.version == self._seen_version:
            return
        now = time.monotonic()
        if self._background and (
            now - self._painted_at < 1 / BACKGROUND_FPS or not self.turns.take(now)
        ):
            return
        if not self._background:
            self.turns.echoed(now)
        self._painted_at = now
        if self._scroll is not None:
            # The view holds still (rows are read again on leaving); say once that more came.
            if self._scroll.ready and not self._news and remote.version != self._frozen_version:
                self._news = True
                self._show_position()
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

    def _forget_strips(self) -> None:
        self._strips.clear()
        self._made.clear()

    def _resync(self) -> None:
        """Forget every cached row and re-read the whole screen."""
        self._forget_strips()
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
                self._forget_strips()
            self._base = style
        return self._base

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base = None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        base = self._base_style()
        scroll = self._scroll
        if scroll is not None and scroll.ready:
            # Not cached: history does not change, and a scroll redraws every row anyway.
            return _strip(scroll.line(scroll.top(height) + y) or [], width, base)
        remote = self._remote
        row = self._top + y
        if remote is None or row >= remote.rows:
            return Strip.blank(width, base)
        if width != self._strips_width:
            self._forget_strips()
            self._strips_width = width
        strip = self._strips.get(row)
        if strip is None:
            line = remote.lines[row]
            made = self._made.get(id(line))
            if made is not None and made[0] is line:
                strip = made[1]
            else:
                strip = _strip(line, width, base)
                if len(self._made) > 2 * remote.rows:
                    self._made.clear()  # mostly rows that scrolled off
                self._made[id(line)] = (line, strip)
            self._strips[row] = strip
        if self.has_focus and self._typing and row == remote.cursor[1]:
            strip = _with_cursor(strip, remote.cursor[0])
        return strip

    def on_resize(self) -> None:
        top = self._top_row()
        if top != self._top:
            self._top = top
            self.refresh()
        if self._scroll is not None:
            self._scroll.clamp(self.size.height)
            self.refresh()
            self._show_position()
            self._want_history()
        self._schedule_size_report()

    # Focus and keys

    def check_consume_key(self, key: str, character: str | None) -> bool:
        """Every key is the view's: Textual then drops every other node's binding for it from
        the chain while this view has focus (priority ones too, such as ctrl+q), and the
        footer and help show only the view's own keys."""
        return True

    def on_focus(self) -> None:
        self._show_position()
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
        if self.can_focus and self.screen.focused is not self:
            # Focus went elsewhere (a click, another tab): stop taking keys quietly.
            self.release(refocus=False)

    async def on_key(self, event: events.Key) -> None:
        # Stopped here, the key never reaches the app's bindings, so the view runs its own.
        event.stop()
        event.prevent_default()
        active = self.screen.active_bindings.get(event.key)
        if active is not None and active.node is self and active.enabled:
            await self.run_action(active.binding.action)
            return
        if self._scroll is not None:
            self.action_live()  # typing returns to live, and goes on to a grabbing agent
        data = encode_key(event.key, event.character)
        if data and self.agent and self._typing:
            self._send(data)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if self._scroll is not None:
            self.action_live()
        if event.text and self.agent and self._typing:
            self._send(encode_paste(event.text))

    def _send(self, data: bytes) -> None:
        if self.keys_to is not None:
            self.keys_to(self.agent, data)
        else:
            self.post_message(self.Input(self.agent, data))

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
