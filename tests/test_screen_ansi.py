"""The version matrix's colour sidecars (issue 14): a screen of our emulator re-rendered
as SGR-coloured text that gives the plain text back when its sequences are stripped."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "real_agents"))

import screen_ansi

from tundra_tui.session.emulator import Emulator


def _rows(emulator: Emulator) -> list[list[screen_ansi.Cell]]:
    return [screen_ansi.cells(emulator.line_cells(y)) for y in range(emulator.rows)]


def _screen() -> Emulator:
    emulator = Emulator(40, 6)
    emulator.feed(
        b"plain \x1b[1;31mbold red\x1b[0m \x1b[3;4;92mit ul\x1b[0m\r\n"
        b"\x1b[38;5;208m256\x1b[0m \x1b[38;2;1;2;3mtrue\x1b[0m \x1b[48;5;17;7mrev\x1b[0m\r\n"
        b"\x1b[44m bar \x1b[K\x1b[0m\r\n"
        b"\x1b[105mbg\x1b[0m\xe2\x9d\xaf\xc2\xa0\r\n"
    )
    return emulator


def test_each_row_is_its_runs_in_sgr_with_a_reset_at_its_end() -> None:
    lines = screen_ansi.render(_rows(_screen())).split("\n")
    assert lines[0] == "plain \x1b[1;31mbold red\x1b[0m \x1b[3;4;92mit ul\x1b[0m"
    # 256 colours come back as indices, any other hex as truecolour, reverse as 7
    assert (
        lines[1] == "\x1b[38;5;208m256\x1b[0m \x1b[38;2;1;2;3mtrue\x1b[0m \x1b[7;48;5;17mrev\x1b[0m"
    )
    # a coloured tail of blanks is painted by ECH, not written as spaces
    assert lines[2] == "\x1b[44m bar\x1b[0m\x1b[44m\x1b[36X\x1b[0m"
    # pyte's misspelt bright magenta background; the prompt's trailing U+00A0 is a blank
    assert lines[3] == "\x1b[105mbg\x1b[0m❯\x1b[0m"
    assert lines[4:] == [""]


def test_stripped_sidecar_is_the_screen_text_as_the_recorder_saves_it() -> None:
    emulator = _screen()
    saved = "\n".join(line.rstrip() for line in emulator.text().splitlines()).rstrip("\n") + "\n"
    assert screen_ansi.strip(screen_ansi.render(_rows(emulator))) == saved


def test_replace_keeps_the_style_of_what_it_replaces() -> None:
    emulator = Emulator(40, 2)
    emulator.feed(b"at \x1b[32m/tmp/at-mx-x/work\x1b[0m/notes")
    row = screen_ansi.replace(_rows(emulator)[0], "/tmp/at-mx-x/work", "<work>")
    assert screen_ansi.render_row(row) == "at \x1b[32m<work>\x1b[0m/notes\x1b[0m"
