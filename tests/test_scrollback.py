"""The scrollback model (headless): paging, the frozen document, bounded memory, safe text."""

from __future__ import annotations

from history_fake import FakeHistory, plain

from tundra_tui.ui.remote_screen import Run
from tundra_tui.ui.scrollback import MAX_CACHED, PAGE, Scrollback, history_line


def texts(scroll: Scrollback, height: int) -> list[str]:
    """What a view `height` rows tall shows now ("?" for a line not read yet)."""
    top = scroll.top(height)
    lines = [scroll.line(index) for index in range(top, top + height)]
    return ["?" if line is None else "".join(run.text for run in line) for line in lines]


def screen(*rows: str) -> list[list[Run]]:
    return [history_line(plain(text)) for text in rows]


def read(scroll: Scrollback, history: FakeHistory, height: int) -> int:
    """Read pages until the view is covered, as the view's reader does; how many were read."""
    pages = 0
    while (page := scroll.wanted(height)) is not None:
        start, count = page
        assert 0 < count <= PAGE
        scroll.add(history.answer_from(start, count), range(start, start + count))
        pages += 1
    return pages


def test_the_first_page_is_the_newest_and_the_screen_sits_below_it() -> None:
    history = FakeHistory.numbered(500)
    scroll = Scrollback(3)
    assert not scroll.ready and scroll.wanted(5) is None
    scroll.start(history.answer_from(-PAGE, PAGE), screen("$ one", "$ two"))
    assert scroll.ready and scroll.total == 500 and scroll.length == 502 and scroll.limit(5) == 497
    assert texts(scroll, 5) == ["h494", "h495", "h496", "h497", "h498"]
    scroll.scroll(-2, 5)
    assert texts(scroll, 5) == ["h496", "h497", "h498", "h499", "$ one"]
    assert scroll.wanted(5) is None  # the view and a view's height either side are read


def test_scrolling_up_reads_pages_as_needed_and_stays_within_the_document() -> None:
    history = FakeHistory.numbered(1000)
    scroll = Scrollback(1)
    scroll.start(history.answer_from(-PAGE, PAGE), screen("$"))
    scroll.scroll(400, 10)
    assert texts(scroll, 10)[0] == "?"
    assert read(scroll, history, 10) == 1
    assert texts(scroll, 10) == [f"h{n}" for n in range(590, 600)]
    scroll.scroll(10_000, 10)
    assert scroll.offset == scroll.limit(10) == 991
    read(scroll, history, 10)
    assert texts(scroll, 10) == [f"h{n}" for n in range(10)]
    scroll.scroll(-10_000, 10)
    assert scroll.offset == 0
    assert texts(scroll, 10)[-1] == "$"


def test_memory_is_bounded_however_far_the_operator_scrolls() -> None:
    history = FakeHistory.numbered(20_000)
    scroll = Scrollback(1)
    scroll.start(history.answer_from(-PAGE, PAGE), screen("$"))
    height = 40
    while scroll.offset < scroll.limit(height):
        scroll.scroll(height, height)
        read(scroll, history, height)
        top = scroll.top(height)
        assert texts(scroll, height)[0] == f"h{top}"
        assert scroll.cached <= MAX_CACHED
    assert texts(scroll, height)[0] == "h0"


def test_lines_the_daemon_no_longer_has_are_blank_and_not_asked_for_again() -> None:
    history = FakeHistory.numbered(300)
    scroll = Scrollback(250)
    scroll.start(history.answer_from(-PAGE, PAGE), screen("$"))
    history.lines = history.lines[:50]  # the agent's terminal was reset meanwhile
    assert read(scroll, history, 10) == 1
    assert scroll.wanted(10) is None
    assert texts(scroll, 10) == [f"h{n}" for n in range(41, 50)] + [""]


def test_pages_read_while_the_agent_prints_land_on_the_right_lines() -> None:
    # The daemon keeps 1000 lines; the agent prints 100 more between any two pages, so the
    # daemon's line numbers move under the reader (its scrollback is full).
    history = FakeHistory([], keep=1000)
    history.prints(1000)
    scroll = Scrollback(1)
    scroll.start(history.answer_from(-PAGE, PAGE), screen("$"))
    height = 20
    read_lines = blank = 0
    for _ in range(8):
        scroll.scroll(150, height)
        while (page := scroll.wanted(height)) is not None:
            start, count = page
            history.prints(100)
            scroll.add(history.answer_from(start, count), range(start, start + count))
        top = scroll.top(height)
        shown = texts(scroll, height)
        # The document holds still: line `i` is `h<i>` (its first line was h0), or blank
        # once the daemon let it go; never another line.
        assert all(text in ("", f"h{top + n}") for n, text in enumerate(shown)), shown
        assert "?" not in shown
        read_lines += sum(text != "" for text in shown)
        blank += shown.count("")
    assert history.dropped >= 300
    assert read_lines > 50 and blank > 0  # pages were read, and the oldest let go


def test_a_page_from_a_restarted_agent_is_not_taken_as_this_documents() -> None:
    history = FakeHistory([], keep=300)
    history.prints(600)  # 300 dropped
    scroll = Scrollback(250)
    scroll.start(history.answer_from(-PAGE, PAGE), screen("$"))
    history.lines, history.dropped = [plain(f"new{n}") for n in range(300)], 0
    read(scroll, history, 10)
    assert scroll.wanted(10) is None
    assert not any(text.startswith("new") for text in texts(scroll, 10))


def test_history_text_is_made_safe_and_never_markup() -> None:
    line = history_line(
        [
            ("[bold]x[/bold]", "red", "default", True, False, False, False),
            ("esc\x1b[31m bell\x07", "default", "default", False, False, False, False),
            ("", "green", "default", False, False, False, False),
        ]
    )
    assert [run.text for run in line] == ["[bold]x[/bold]", "esc␛[31m bell␇"]
    assert line[0].fg == "red" and line[0].bold
