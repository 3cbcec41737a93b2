"""Keys in, lines out: the demo agent's whole contact with its terminal.

Input is read byte by byte in a raw-ish mode (no echo, no line discipline, no signals from keys)
because that is how real agent CLIs see it: text arrives, then an Enter in a separate write, and
a lone Esc has to be told apart from the start of an arrow key. Output keeps one spinner row at
the bottom that is redrawn in place with `\\r` + `ESC[K`, as the session host's state detection
expects.
"""

from __future__ import annotations

import codecs
import os
import select
import termios
import unicodedata
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress

ESC = "\x1b"
CTRL_C = "\x03"
CTRL_D = "\x04"
CTRL_U = "\x15"
ENTER = ("\r", "\n")
BACKSPACE = ("\x7f", "\x08")
EOF = ""
"""Returned by `Keyboard.read` once stdin has closed."""

ESC_WAIT = 0.05
"""How long an Esc waits for a following `[` before it counts as the Esc key itself."""

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
INTERRUPT_HINT = " (esc to interrupt)"


@contextmanager
def raw_input(fd: int) -> Iterator[None]:
    """Turn off echo, line editing and key signals on `fd` for the duration; no-op off a TTY.

    `TCSANOW` rather than `TCSAFLUSH`, so a task the host typed before we were ready survives.
    """
    if not os.isatty(fd):
        yield
        return
    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[0] &= ~(termios.ICRNL | termios.IXON)
    new[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
    new[6][termios.VMIN] = 1
    new[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        yield
    finally:
        # After a hang-up the terminal is gone and there is nothing left to restore.
        with suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, old)


class Keyboard:
    """Decoded keys from a file descriptor, with Esc told apart from escape sequences."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.interactive = os.isatty(fd)
        """False for a pipe: then its lines are a script, read only when asked for."""
        self.closed = False
        self._pending: deque[str] = deque()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def _fill(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds for more input; False on timeout or end of input."""
        if self.closed:
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the PTY's other end closed
            data = b""
        if not data:
            self.closed = True
            return False
        self._pending.extend(self._decoder.decode(data))
        return True

    def read(self, timeout: float | None = None) -> str | None:
        """The next key: a character, a whole escape sequence, `ESC`, `EOF`, or None on timeout."""
        if not self._pending and not self._fill(timeout):
            return EOF if self.closed else None
        char = self._pending.popleft()
        if char != ESC:
            return char
        if not self._pending:
            self._fill(ESC_WAIT)
        if not self._pending or self._pending[0] not in "[O":
            return ESC
        return ESC + self._sequence_tail()

    def _sequence_tail(self) -> str:
        """Consume the rest of a CSI or SS3 sequence so it is never mistaken for typed text."""
        tail = self._pending.popleft()
        while True:
            if not self._pending and not self._fill(ESC_WAIT):
                return tail
            char = self._pending.popleft()
            tail += char
            # SS3 takes one character; CSI ends at its final byte (0x40-0x7E).
            if tail[0] == "O" or "@" <= char <= "~":
                return tail

    def flush(self) -> None:
        """Forget every key typed so far, so that none of them answers what is shown next.

        Piped input is a script written in advance, so it is never flushed.
        """
        if self.interactive:
            self._pending.clear()
            self._decoder.reset()
            with suppress(termios.error):
                termios.tcflush(self.fd, termios.TCIFLUSH)


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide East Asian characters count two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def printable(text: str) -> str:
    """`text` with tabs expanded and other control characters shown as `?`, safe to echo."""
    return "".join(c if c.isprintable() else "?" for c in text.expandtabs(4))


class Screen:
    """Writes lines above a spinner row that stays at the bottom while the agent works."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.columns = 80
        self.verb: str | None = None
        self._frame = 0
        self._partial: str | None = None
        self.resize()

    def resize(self) -> None:
        """Re-read the size from the PTY (called on SIGWINCH); 80 columns off a terminal."""
        try:
            self.columns = max(os.get_terminal_size(self.fd).columns, 1)
        except OSError:
            self.columns = 80

    def rows_for(self, line: str) -> int:
        """How many rows the terminal uses for `line` once it wraps it."""
        return max(1, -(-display_width(line) // self.columns))

    def write(self, text: str) -> None:
        """Write all of `text`, in as few writes as the PTY allows, so redraws do not flicker."""
        data = text.encode("utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data) :]

    def _spinner_row(self) -> str:
        """Never wider than the terminal (`\r` only returns to the start of the last row), and
        the verb gives way first, so the hint detection looks for survives narrow panes."""
        verb = (self.verb or "")[: max(self.columns - len(INTERRUPT_HINT) - 4, 0)]
        row = f"{SPINNER_FRAMES[self._frame]} {verb}…{INTERRUPT_HINT}"
        return row[: max(self.columns - 1, 1)]

    def spin(self, verb: str) -> None:
        """Show (or relabel) the spinner; the cursor hides while it is up, as in real agents."""
        first = self.verb is None
        self.verb = verb
        self.write(("\x1b[?25l" if first else "") + "\r\x1b[K" + self._spinner_row())

    def tick(self) -> None:
        """Advance the spinner one frame."""
        if self.verb is not None:
            self._frame = (self._frame + 1) % len(SPINNER_FRAMES)
            self.write("\r\x1b[K" + self._spinner_row())

    def stop(self) -> None:
        """Erase the spinner row and show the cursor again."""
        if self.verb is not None:
            self.write("\r\x1b[K\x1b[?25h")
        self.verb = None
        self._partial = None

    def line(self, text: str = "") -> None:
        """Print one finished line above the spinner."""
        self._partial = None
        if self.verb is None:
            self.write(text + "\n")
        else:
            self.write("\r\x1b[K" + text + "\n" + self._spinner_row())

    def stream(self, chunk: str) -> None:
        """Append a few words to the line being streamed, redrawing it above the spinner."""
        if self.verb is None:
            self.write(chunk)
            self._partial = (self._partial or "") + chunk
            return
        out = "\r\x1b[K"
        if self._partial is not None:
            out += f"\x1b[{self.rows_for(self._partial)}A\r\x1b[J"
        self._partial = (self._partial or "") + chunk
        self.write(out + self._partial + "\n" + self._spinner_row())

    def end_stream(self) -> None:
        """Finish the streamed line; the next output starts a new one."""
        if self._partial is not None and self.verb is None:
            self.write("\n")
        self._partial = None

    def erase_lines(self, lines: list[str]) -> None:
        """Remove `lines`, the last thing printed, so a stale prompt never lingers on screen."""
        rows = sum(self.rows_for(line) for line in lines)
        self.write(f"\x1b[{rows}A\r\x1b[J")
