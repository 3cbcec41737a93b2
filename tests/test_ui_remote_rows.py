"""A RemoteScreen makes a row safe once: a scrolling screen resends every row, most of them
one line higher, and those are the rows it already holds (the tile then redraws new rows only)."""

from __future__ import annotations

from tundra_tui.daemon.protocol import ScreenEvent
from tundra_tui.ui.remote_screen import RemoteScreen


def scrolled(first: int, rows: int = 4) -> ScreenEvent:
    lines = {
        y: [(f"line {first + y}\x1b", "red", "default", False, False, False, False)]
        for y in range(rows)
    }
    return ScreenEvent(agent="a", rows=lines, cursor=(0, rows - 1), size=(20, rows))


def test_a_row_sent_again_one_line_higher_is_the_row_already_held() -> None:
    screen = RemoteScreen(columns=20, rows=4)
    screen.apply(scrolled(0))
    held = list(screen.lines)
    screen.apply(scrolled(1))
    assert [line[0].text for line in screen.lines] == [f"line {n}␛" for n in range(1, 5)]
    assert all(screen.lines[y] is held[y + 1] for y in range(3))  # shared, not made again
    assert screen.dirty == set(range(4))  # every row still redraws where it now is


def test_the_rows_kept_stay_bounded() -> None:
    screen = RemoteScreen(columns=20, rows=4)
    for first in range(100):
        screen.apply(scrolled(first))
    assert len(screen._made) <= 2 * screen.rows + 4
