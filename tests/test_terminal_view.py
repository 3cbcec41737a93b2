"""The terminal widget: key encoding, colours, dirty-row redraws, cropping, keys, size and
scrollback."""

from __future__ import annotations

from typing import Any

import pytest
from history_fake import FakeHistory
from rich.color import Color
from textual import events
from textual.app import App, ComposeResult
from textual.content import Content
from textual.pilot import Pilot
from textual.strip import Strip

from tundra_tui.daemon.protocol import Run as WireRun
from tundra_tui.daemon.protocol import ScreenEvent
from tundra_tui.session.keys import encode_key, encode_paste
from tundra_tui.ui import terminal_style
from tundra_tui.ui.remote_screen import RemoteScreen, Run
from tundra_tui.ui.terminal_style import rich_color, run_style
from tundra_tui.ui.widgets.terminal_view import RELEASE_KEY, HistorySource, TerminalView

SCROLLBACK_KEY = "shift+pageup"

# Key encoding (headless)


@pytest.mark.parametrize(
    ("key", "character", "expected"),
    [
        ("a", "a", b"a"),
        ("A", "A", b"A"),
        ("q", "q", b"q"),
        ("1", "1", b"1"),
        ("question_mark", "?", b"?"),
        ("colon", ":", b":"),
        ("slash", "/", b"/"),
        ("space", " ", b" "),
        ("é", "é", "é".encode()),
        ("enter", "\r", b"\r"),
        ("tab", "\t", b"\t"),
        ("shift+tab", None, b"\x1b[Z"),
        ("backspace", "\x7f", b"\x7f"),
        ("escape", "\x1b", b"\x1b"),
        ("up", None, b"\x1b[A"),
        ("down", None, b"\x1b[B"),
        ("right", None, b"\x1b[C"),
        ("left", None, b"\x1b[D"),
        ("home", None, b"\x1b[H"),
        ("end", None, b"\x1b[F"),
        ("pageup", None, b"\x1b[5~"),
        ("pagedown", None, b"\x1b[6~"),
        ("insert", None, b"\x1b[2~"),
        ("delete", None, b"\x1b[3~"),
        ("f1", None, b"\x1bOP"),
        ("f4", None, b"\x1bOS"),
        ("f5", None, b"\x1b[15~"),
        ("f12", None, b"\x1b[24~"),
        ("ctrl+a", "\x01", b"\x01"),
        ("ctrl+c", "\x03", b"\x03"),
        ("ctrl+z", "\x1a", b"\x1a"),
        ("ctrl+space", None, b"\x00"),
        ("ctrl+@", "\x00", b"\x00"),
        ("ctrl+up", None, b"\x1b[1;5A"),
        ("shift+right", None, b"\x1b[1;2C"),
        ("shift+f1", None, b"\x1b[1;2P"),
        ("ctrl+delete", None, b"\x1b[3;5~"),
        ("alt+x", "x", b"\x1bx"),
        ("f24", None, None),
    ],
)
def test_encode_key(key: str, character: str | None, expected: bytes | None) -> None:
    assert encode_key(key, character) == expected


def test_encode_paste_types_one_line_and_brackets_several() -> None:
    assert encode_paste("git status") == b"git status"
    assert encode_paste("a\r\nb\n") == b"\x1b[200~a\rb\r\x1b[201~"
    # A pasted end marker cannot close the bracket early and run the rest as keys.
    assert encode_paste("x\n\x1b[201~rm -rf ~\n") == b"\x1b[200~x\rrm -rf ~\r\x1b[201~"


# Colours and styles


def test_pyte_colours_map_to_rich_colours() -> None:
    assert rich_color("default") is None
    assert rich_color("") is None
    assert rich_color("brown") == Color.parse("yellow")
    assert rich_color("red") == Color.parse("red")
    assert rich_color("brightred") == Color.parse("bright_red")
    assert rich_color("brightbrown") == Color.parse("bright_yellow")
    assert rich_color("ff8700") == Color.parse("#ff8700")
    assert rich_color("zzzzzz") is None
    assert rich_color("chartreuse") is None


def test_run_styles_are_shared_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run("x", "red", "default", True, False, True, False)
    style = run_style(run)
    assert style is run_style(run._replace(text="other text"))
    assert style.bold and style.underline and not style.italic
    monkeypatch.setattr(terminal_style, "MAX_CACHED_STYLES", 8)
    for n in range(50):
        run_style(Run("x", f"{n:06x}", "default", False, False, False, False))
    assert len(terminal_style._styles) <= 8


# The widget


def text_screen(lines: list[str], columns: int = 40, rows: int = 24) -> RemoteScreen:
    screen = RemoteScreen(columns=columns, rows=rows)
    screen.apply(
        ScreenEvent(
            agent="a",
            size=(columns, rows),
            full=True,
            rows={y: [plain(text)] for y, text in enumerate(lines)},
            cursor=(0, max(len(lines) - 1, 0)),
        )
    )
    return screen


def plain(text: str) -> WireRun:
    return (text, "default", "default", False, False, False, False)


def delta(screen: RemoteScreen, rows: dict[int, list[WireRun]]) -> ScreenEvent:
    """Changed rows for `screen`, its size and cursor as they are."""
    size = (screen.columns, screen.rows)
    return ScreenEvent(agent="a", rows=rows, cursor=screen.cursor, size=size)


def set_row(screen: RemoteScreen, y: int, text: str) -> None:
    screen.apply(delta(screen, {y: [plain(text)]}))


class CountingView(TerminalView):
    """Records which lines were rendered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rendered: list[int] = []

    def render_line(self, y: int) -> Strip:
        self.rendered.append(y)
        return super().render_line(y)


class ViewApp(App[None]):
    CSS = "CountingView { width: 30; height: 6; }"

    def __init__(self, screen: RemoteScreen | None, history: HistorySource | None = None) -> None:
        super().__init__()
        self.remote = screen
        self.history = history
        self.messages: list[Any] = []

    def compose(self) -> ComposeResult:
        view = CountingView(max_fps=60, history=self.history)
        view.agent = "mayor"
        view.remote_screen = self.remote
        yield view

    @property
    def view(self) -> CountingView:
        return self.query_one(CountingView)

    def on_terminal_view_input(self, message: TerminalView.Input) -> None:
        self.messages.append(message)

    def on_terminal_view_released(self, message: TerminalView.Released) -> None:
        self.messages.append(message)

    def on_terminal_view_size_changed(self, message: TerminalView.SizeChanged) -> None:
        self.messages.append(message)


def shown(view: TerminalView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


async def test_a_short_tile_shows_the_bottom_rows_with_content_cropped_never_wrapped() -> None:
    lines = [f"row {n}" for n in range(12)] + ["$ " + "x" * 60]
    app = ViewApp(text_screen(lines, columns=80))
    async with app.run_test(size=(40, 10)):
        assert shown(app.view) == ["row 7", "row 8", "row 9", "row 10", "row 11", "$ " + "x" * 28]


async def test_untrusted_text_is_shown_literally() -> None:
    screen = text_screen(["[bold]not bold[/bold] [link=x]y[/link]", "bell\x07 esc\x1b[31m"])
    app = ViewApp(screen)
    async with app.run_test(size=(60, 10)):
        rows = shown(app.view)
        assert rows[0] == "[bold]not bold[/bold] [link=x]y[/link]"[:30]
        assert "\x1b" not in rows[1] and "\x07" not in rows[1] and "␛" in rows[1]
        strip = app.view.render_line(0)
        assert not any(segment.style and segment.style.bold for segment in strip)


async def test_only_dirty_rows_are_redrawn_and_nothing_when_nothing_changed() -> None:
    screen = text_screen([f"line {n}" for n in range(6)], rows=6)
    app = ViewApp(screen)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause(0.1)
        view = app.view
        view.rendered.clear()
        await pilot.pause(0.1)
        assert view.rendered == []
        set_row(screen, 3, "changed")
        await pilot.pause(0.1)
        assert set(view.rendered) == {3}
        assert shown(view)[3] == "changed"
        view.rendered.clear()
        await pilot.pause(0.1)
        assert view.rendered == []


async def test_a_frame_applies_several_deltas_at_once() -> None:
    screen = text_screen(["a", "b", "c"], rows=6)
    app = ViewApp(screen)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause(0.1)
        app.view.rendered.clear()
        for n in range(20):
            set_row(screen, 1, f"tick {n}")
        app.view.tick()
        await pilot.pause()
        assert set(app.view.rendered) == {1}
        assert shown(app.view)[1] == "tick 19"


async def test_colours_and_attributes_reach_the_strip() -> None:
    screen = RemoteScreen(columns=20, rows=4)
    screen.apply(
        delta(
            screen,
            {
                0: [
                    ("ok", "green", "brown", True, False, False, False),
                    ("rev", "default", "default", False, False, False, True),
                ]
            },
        )
    )
    app = ViewApp(screen)
    async with app.run_test(size=(40, 10)):
        segments = list(app.view.render_line(0))
        ok = next(s for s in segments if s.text == "ok")
        assert ok.style is not None and ok.style.color == Color.parse("green")
        assert ok.style.bgcolor == Color.parse("yellow") and ok.style.bold
        rev = next(s for s in segments if s.text == "rev")
        assert rev.style is not None and rev.style.reverse


async def test_cursor_is_drawn_only_while_focused() -> None:
    screen = text_screen(["$ hello"], rows=4)
    screen.apply(ScreenEvent(agent="a", rows={}, cursor=(2, 0), size=(screen.columns, 4)))
    app = ViewApp(screen)
    async with app.run_test(size=(40, 10)) as pilot:

        def cursor_cells() -> list[str]:
            return [s.text for s in app.view.render_line(0) if s.style and s.style.reverse]

        assert cursor_cells() == []
        app.view.grab()
        await pilot.pause()
        assert cursor_cells() == ["h"]
        assert app.view.border_subtitle == "ctrl+] to release"


async def test_grabbed_view_sends_every_key_but_the_release_key() -> None:
    app = ViewApp(text_screen(["$"]))
    async with app.run_test(size=(40, 10)) as pilot:
        app.view.grab()
        await pilot.pause()
        # Every other binding steps aside, even App's priority ctrl+q (quit).
        assert set(app.screen.active_bindings) == {RELEASE_KEY, SCROLLBACK_KEY}
        await pilot.press("q", "1", "question_mark", "tab", "escape", "ctrl+a", "up", "f5")
        await pilot.press("ctrl+q", "ctrl+c")
        await pilot.pause()
        assert app.is_running
        sent = [m.data for m in app.messages if isinstance(m, TerminalView.Input)]
        assert b"".join(sent) == b"q1?\t\x1b\x01\x1b[A\x1b[15~\x11\x03"
        assert len(sent) == 10
        assert all(m.agent == "mayor" for m in app.messages)
        await pilot.press(RELEASE_KEY)
        await pilot.pause()
        released = [m for m in app.messages if isinstance(m, TerminalView.Released)]
        assert len(released) == 1 and released[0].refocus
        assert not app.view.can_focus
        assert not any(
            isinstance(m, TerminalView.Input) and m.data == b"\x1d" for m in app.messages
        )


async def test_with_a_key_sink_keys_go_straight_to_it_in_order_and_no_message_is_posted() -> None:
    app = ViewApp(text_screen(["$"]))
    async with app.run_test(size=(40, 10)) as pilot:
        sunk: list[tuple[str, bytes]] = []
        app.view.keys_to = lambda agent, data: sunk.append((agent, data))
        app.view.grab()
        await pilot.pause()
        await pilot.press("a", "b", "enter", "up")
        app.view.post_message(events.Paste("p"))
        await pilot.pause()
        assert sunk == [
            ("mayor", b"a"),
            ("mayor", b"b"),
            ("mayor", b"\r"),
            ("mayor", b"\x1b[A"),
            ("mayor", b"p"),
        ]
        assert [m for m in app.messages if isinstance(m, TerminalView.Input)] == []


async def test_the_release_key_can_be_remapped_by_its_id() -> None:
    app = ViewApp(text_screen(["$"]))
    async with app.run_test(size=(40, 10)) as pilot:
        app.set_keymap({"agents-release": "f10"})
        app.view.grab()
        await pilot.pause()
        assert app.view.border_subtitle == "f10 to release"
        await pilot.press(RELEASE_KEY, "f10")
        await pilot.pause()
        sent = [m.data for m in app.messages if isinstance(m, TerminalView.Input)]
        assert sent == [b"\x1d"]
        assert [m.refocus for m in app.messages if isinstance(m, TerminalView.Released)] == [True]


async def test_paste_goes_to_the_agent() -> None:
    from textual import events

    app = ViewApp(text_screen(["$"]))
    async with app.run_test(size=(40, 10)) as pilot:
        app.view.grab()
        await pilot.pause()
        app.view.post_message(events.Paste("one\ntwo"))
        await pilot.pause()
        sent = [m.data for m in app.messages if isinstance(m, TerminalView.Input)]
        assert sent == [b"\x1b[200~one\rtwo\x1b[201~"]


async def test_size_is_reported_once_per_change_only_while_driving() -> None:
    app = ViewApp(text_screen(["$"]))
    async with app.run_test(size=(40, 10)) as pilot:

        def sizes() -> list[tuple[str, int, int]]:
            return [
                (m.agent, m.columns, m.rows)
                for m in app.messages
                if isinstance(m, TerminalView.SizeChanged)
            ]

        await pilot.pause(0.3)
        assert sizes() == []
        app.view.drives_size = True
        app.view.drives_size = True
        await pilot.pause(0.3)
        assert sizes() == [("mayor", 30, 6)]
        app.view.styles.width = 25
        await pilot.pause(0.05)
        app.view.styles.width = 20
        await pilot.pause(0.4)
        assert sizes() == [("mayor", 30, 6), ("mayor", 20, 6)]
        app.view.agent = "deacon"
        await pilot.pause(0.4)
        assert sizes()[-1] == ("deacon", 20, 6)
        app.view.drives_size = False
        app.view.styles.width = 22
        await pilot.pause(0.4)
        assert len(sizes()) == 3


async def test_swapping_screens_redraws_the_new_one() -> None:
    app = ViewApp(text_screen(["first"]))
    async with app.run_test(size=(40, 10)) as pilot:
        app.view.remote_screen = text_screen(["second"])
        await pilot.pause()
        assert shown(app.view)[0] == "second"
        app.view.remote_screen = None
        await pilot.pause()
        assert shown(app.view) == [""] * 6


async def test_a_theme_change_recolours_cached_rows() -> None:
    class ThemedApp(ViewApp):
        CSS = "CountingView { width: 30; height: 6; background: $background; }"

    app = ThemedApp(text_screen(["$ ok"]))
    async with app.run_test(size=(40, 10)) as pilot:
        app.theme = "textual-dark"
        await pilot.pause()
        before = app.view.render_line(0)
        app.theme = "textual-light"
        await pilot.pause()
        after = app.view.render_line(0)
        assert before.text == after.text
        assert next(iter(before)).style != next(iter(after)).style


# Scrollback


def subtitle(view: TerminalView) -> str:
    """The border's subtitle as shown (Textual hands it back as markup)."""
    return Content.from_markup(view.border_subtitle or "").plain


async def wheel(pilot: Pilot[Any], view: TerminalView, *, up: bool = True) -> None:
    """One notch of the mouse wheel over the view, routed by the screen as a real one is."""
    event = events.MouseScrollUp if up else events.MouseScrollDown
    await pilot._post_mouse_events([event], view, offset=(2, 2))


def scrolled_app(history: FakeHistory) -> ViewApp:
    """A 30x6 tile over a screen of two lines, with `history` above them."""
    return ViewApp(text_screen(["$ one", "$ two"], rows=6), history.read)


async def test_shift_pageup_in_a_grabbed_tile_pages_back_with_vim_and_tmux_keys() -> None:
    history = FakeHistory.numbered(500)
    app = scrolled_app(history)
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.view
        view.grab()
        await pilot.press(SCROLLBACK_KEY)
        await pilot.pause()
        assert view.scrolling
        # A page is the tile's height less one line; the document is history then the screen.
        assert shown(view) == ["h495", "h496", "h497", "h498", "h499", "$ one"]
        assert subtitle(view) == "[scrollback 5/500] · q to leave"
        assert history.asked == [(-200, 200)]
        await pilot.press("pageup")
        assert shown(view)[0] == "h490" and subtitle(view).startswith("[scrollback 10/500]")
        await pilot.press("ctrl+d")
        assert shown(view)[0] == "h493"
        await pilot.press("k", "k", "up", "j")
        assert shown(view)[0] == "h491"
        await pilot.press("ctrl+u", "ctrl+b")
        assert shown(view)[0] == "h483"
        await pilot.press("g")
        await pilot.pause()
        assert shown(view) == ["h0", "h1", "h2", "h3", "h4", "h5"]
        assert subtitle(view).startswith("[scrollback 500/500]")
        assert history.asked[-1] == (0, 12)  # only what the view and its margins need
        await pilot.press("G")
        await pilot.pause()
        assert not view.scrolling and view.has_focus
        assert shown(view)[:2] == ["$ one", "$ two"]
        assert subtitle(view) == "ctrl+] to release"
        assert [m for m in app.messages if isinstance(m, TerminalView.Input)] == []


async def test_the_wheel_scrolls_a_zoomed_tile_back_and_past_the_bottom_returns_to_live() -> None:
    app = scrolled_app(FakeHistory.numbered(50))
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.view
        await wheel(pilot, view)
        assert not view.scrolling  # only a focused or zoomed tile scrolls back
        view.drives_size = True
        await wheel(pilot, view)
        await pilot.pause()
        assert view.scrolling and view.has_focus
        assert shown(view)[:4] == ["h47", "h48", "h49", "$ one"]
        assert subtitle(view).startswith("[scrollback 3/50]")
        await wheel(pilot, view)
        assert shown(view)[0] == "h44"
        await wheel(pilot, view, up=False)
        await wheel(pilot, view, up=False)
        await pilot.pause()
        assert not view.scrolling and not view.can_focus
        released = [m for m in app.messages if isinstance(m, TerminalView.Released)]
        assert [m.refocus for m in released] == [True]


async def test_live_output_goes_on_while_scrolled_and_shows_on_leaving() -> None:
    app = scrolled_app(FakeHistory.numbered(50))
    async with app.run_test(size=(40, 10)) as pilot:
        view, screen = app.view, app.remote
        assert screen is not None
        view.grab()
        await pilot.press(SCROLLBACK_KEY)
        await pilot.pause()
        before = shown(view)
        for n in range(20):
            set_row(screen, 1, f"$ tick {n}")
        await pilot.pause(0.1)
        assert shown(view) == before  # not yanked
        assert "new output below" in subtitle(view)
        await pilot.press("q")
        await pilot.pause()
        assert not view.scrolling and shown(view)[1] == "$ tick 19"


async def test_typing_in_scrollback_returns_to_live_and_reaches_a_grabbing_agent() -> None:
    app = scrolled_app(FakeHistory.numbered(50))
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.view
        view.grab()
        await pilot.press(SCROLLBACK_KEY, "x")
        await pilot.pause()
        assert not view.scrolling and view.has_focus
        assert [m.data for m in app.messages if isinstance(m, TerminalView.Input)] == [b"x"]
        # Not grabbed: the key only ends scrollback, and the keyboard goes back to the pane.
        view.release(refocus=False)
        view.drives_size = True
        await pilot.pause()
        assert view.scroll_back()
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert not view.scrolling and not view.can_focus
        assert len([m for m in app.messages if isinstance(m, TerminalView.Input)]) == 1
        assert view.scroll_back()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not view.scrolling


async def test_history_is_drawn_like_live_rows_and_never_read_as_markup() -> None:
    history = FakeHistory(
        [
            [("[bold]not bold[/bold]", "red", "default", False, False, False, False)],
            [("bell\x07 esc\x1b[31m", "default", "default", False, False, False, True)],
        ]
    )
    app = scrolled_app(history)
    async with app.run_test(size=(40, 10)) as pilot:
        app.view.drives_size = True
        app.view.scroll_back(2)
        await pilot.pause()
        rows = shown(app.view)
        assert rows[:2] == ["[bold]not bold[/bold]", "bell␇ esc␛[31m"]
        first = [seg for seg in app.view.render_line(0) if seg.text.strip()]
        assert first[0].style is not None and first[0].style.color == Color.parse("red")
        assert not first[0].style.bold
        second = [seg for seg in app.view.render_line(1) if seg.text.strip()]
        assert second[0].style is not None and second[0].style.reverse


async def test_with_nothing_above_scrollback_says_so_and_stays_live() -> None:
    app = scrolled_app(FakeHistory([]))
    async with app.run_test(size=(40, 10)) as pilot:
        app.view.grab()
        await pilot.press(SCROLLBACK_KEY)
        await pilot.pause()
        assert not app.view.scrolling and app.view.has_focus
        assert any("nothing to scroll back" in n.message for n in app._notifications)


async def test_a_history_that_cannot_be_read_is_one_line_and_stays_live() -> None:
    from tundra_tui.domain.errors import TundraError

    async def refuse(name: str, start: int, count: int) -> Any:
        raise TundraError("mayor is not running\nsecond line")

    app = ViewApp(text_screen(["$"], rows=6), refuse)
    async with app.run_test(size=(40, 10)) as pilot:
        app.view.grab()
        await pilot.press(SCROLLBACK_KEY)
        await pilot.pause()
        assert not app.view.scrolling
        messages = [n.message for n in app._notifications]
        assert messages == ["history of mayor: mayor is not running␤second line"]
