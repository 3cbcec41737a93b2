"""Split decoded terminal output into text and complete, bounded control sequences.

pyte's own parser raises on hostile input (`CSI ? 6 n`, 5,000-digit
parameters), keeps OSC strings without a bound and walks every sequence one
character at a time through a generator (research P3, P5). So nothing but
text reaches pyte's parser: this module tokenises the stream itself, drops
what is malformed or unsupported, and hands the emulator only whole, validated
sequences. Every sequence is capped at `max_sequence` characters; beyond that
it is discarded without being stored, at regex speed.

Deliberate choices, each simpler than a full DEC parser and safe:
- A C0 control, DEL or non-ASCII character inside a CSI or ESC sequence
  aborts it and is then processed as ordinary output.
- Strings (OSC, DCS, APC, PM, SOS) end at BEL, ST, CAN, SUB or a new ESC. A
  string that outgrew the cap also ends at CR or LF, so output after an
  unterminated string shows again (tmux uses a timer for the same purpose).
- C0 controls pyte would not act on, DEL, C1 controls and zero-width
  characters that are not combining marks are removed from text: pyte's
  `draw` silently drops the rest of a chunk after any of them (research P4).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from wcwidth import wcwidth
from wcwidth.table_zero import ZERO_WIDTH

ESC = "\x1b"
_CAN_SUB = "\x18\x1a"
_GROUND, _ESCAPE, _ESC_INTER, _CSI, _CSI_SKIP, _STRING, _STRING_ESC = range(7)

TextHandler = Callable[[str], None]
CsiHandler = Callable[[str, list[int], bool], None]
EscHandler = Callable[[str, str], None]
OscHandler = Callable[[str], None]


def _junk() -> tuple[str, frozenset[str]]:
    """The characters pyte's `draw` stops at, minus those pyte acts on.

    Returns a regex class of those in the BMP (sre matches a BMP-only class in
    constant time per character) and the set of the astral ones.
    """
    table = ZERO_WIDTH[max(ZERO_WIDTH, key=lambda v: tuple(int(p) for p in v.split(".")))]
    codes = {*range(0x00, 0x07), *range(0x0E, 0x20), *range(0x7F, 0xA0)}
    codes.discard(0x1B)  # ESC never reaches text: it starts a sequence.
    for first, last in table:
        for code in range(first, last + 1):
            char = chr(code)
            surrogate = 0xD800 <= code < 0xE000
            if not surrogate and wcwidth(char) == 0 and not unicodedata.combining(char):
                codes.add(code)
    bmp = sorted(code for code in codes if code < 0x10000)
    ranges: list[str] = []
    begin = prev = bmp[0]
    for code in [*bmp[1:], -1]:
        if code != prev + 1:
            ranges.append(f"\\u{begin:04x}" if begin == prev else f"\\u{begin:04x}-\\u{prev:04x}")
            begin = code
        prev = code
    astral = frozenset(chr(code) for code in codes if code >= 0x10000)
    return "[" + "".join(ranges) + "]+", astral


_BMP_JUNK_CLASS, _ASTRAL_JUNK = _junk()
_BMP_JUNK = re.compile(_BMP_JUNK_CLASS)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]+")


def _keep_astral(match: re.Match[str]) -> str:
    return "".join(char for char in match[0] if char not in _ASTRAL_JUNK)


def clean_text(text: str) -> str:
    """`text` without the characters pyte's `draw` would stop at (see the module docstring)."""
    text = _BMP_JUNK.sub("", text)
    if not text.isascii():
        text = _ASTRAL.sub(_keep_astral, text)
    return text


# Short complete CSIs are taken in one regex match; long ones go through the states.
_QUICK_CSI = re.compile(r"\x1b\[([\x20-\x3f]{0,64}+)([\x40-\x7e])")
_CSI_BODY = re.compile(r"[\x20-\x3f]*+")
_INTERMEDIATES = re.compile(r"[\x20-\x2f]*+")
_STRING_END = re.compile(r"[\x07\x18\x1a\x1b\x9c]")
_OVERFLOW_END = re.compile(r"[\x07\x18\x1a\x1b\x9c\r\n]")
_PARAMS = re.compile(r"\d{0,16}(?:;\d{0,16})*")
_COLON_SGR = re.compile(r"[\d:]{0,64}(?:;[\d:]{0,64})*")
_MAX_PARAM = 9999  # pyte clamps to this too.


def _span_end(pattern: re.Pattern[str], data: str, start: int, stop: int) -> int:
    """Where a run of `pattern` (which also matches nothing) starting at `start` ends."""
    match = pattern.match(data, start, stop)
    return start if match is None else match.end()


def _sgr_without_colons(body: str) -> str:
    """Rewrite ISO 8613-6 colon sub-parameters (`38:2::r:g:b`, `4:3`) as pyte's `;` form.

    pyte would otherwise stop at the colon and print the rest as text.
    """
    fields: list[str] = []
    for field in body.split(";"):
        if ":" not in field:
            fields.append(field)
            continue
        head, *rest = field.split(":")
        if head in ("38", "48") and rest:
            if rest[0] == "5" and len(rest) >= 2:
                fields += [head, "5", rest[1]]
            elif rest[0] == "2" and len(rest) >= 4:
                fields += [head, "2", *rest[-3:]]
        elif head == "4":
            fields.append("24" if rest[:1] == ["0"] else "4")
        elif head != "58":  # Underline colour: pyte has none.
            fields.append(head)
    return ";".join(fields)


class SequenceFilter:
    """An incremental tokeniser that calls one handler per text run or sequence.

    Handlers get: `text(str)` with only printable characters and BEL, BS, HT,
    LF, VT, FF, CR; `csi(final, params, private)` for well-formed CSIs whose
    parameters are digits (at most 16 each, clamped to 9999) with an optional
    leading `?`; `esc(intermediates, final)`; `osc(payload)` for complete OSC
    strings. Everything else is counted in `dropped` and discarded.
    """

    def __init__(
        self,
        *,
        text: TextHandler,
        csi: CsiHandler,
        esc: EscHandler,
        osc: OscHandler,
        max_sequence: int = 64 * 1024,
    ) -> None:
        self._text = text
        self._csi = csi
        self._esc = esc
        self._osc = osc
        self._max = max_sequence
        self.dropped = 0
        """Sequences discarded: malformed, unsupported, aborted or over the cap."""
        self._state = _GROUND
        self._parts: list[str] = []
        self._length = 0
        self._intermediate = ""
        self._collect = False
        self._overflow = False

    @property
    def idle(self) -> bool:
        """True between sequences: the next character starts text or a new sequence."""
        return self._state == _GROUND

    @property
    def pending(self) -> int:
        """Characters of an unfinished sequence held until more output arrives."""
        return sum(map(len, self._parts))

    def reset(self) -> None:
        """Forget any unfinished sequence."""
        self._state = _GROUND
        self._parts = []
        self._length = 0

    def feed(self, data: str) -> None:
        """Tokenise `data`, continuing any sequence a previous call left open."""
        i = 0
        n = len(data)
        while i < n:
            state = self._state
            if state == _GROUND:
                j = data.find(ESC, i)
                if j < 0:
                    self._emit_text(data[i:] if i else data)
                    return
                if j > i:
                    self._emit_text(data[i:j])
                quick = _QUICK_CSI.match(data, j)
                if quick is not None:
                    self._dispatch_csi(quick[1], quick[2])
                    i = quick.end()
                else:
                    self._state = _ESCAPE
                    i = j + 1
            elif state == _ESCAPE:
                char = data[i]
                i += 1
                if char == "[":
                    self._begin(_CSI)
                elif char == "]":
                    self._begin(_STRING, collect=True)
                elif char in "P_^X":
                    self._begin(_STRING, collect=False)
                elif char == ESC:
                    pass
                elif char in _CAN_SUB:
                    self._state = _GROUND
                elif "\x20" <= char <= "\x2f":
                    self._intermediate = char
                    self._state = _ESC_INTER
                elif "\x30" <= char <= "\x7e":
                    self._state = _GROUND
                    self._esc("", char)
                else:
                    self._abort(to=_GROUND)
                    i -= 1
            elif state == _ESC_INTER:
                i = _span_end(_INTERMEDIATES, data, i, n)
                if i < n:
                    char = data[i]
                    i += 1
                    if "\x30" <= char <= "\x7e":
                        self._state = _GROUND
                        self._esc(self._intermediate, char)
                    else:
                        i = self._end_abnormally(char, i)
            elif state in (_CSI, _CSI_SKIP):
                if state == _CSI:
                    stop = min(n, i + self._max - self._length + 1)
                    end = _span_end(_CSI_BODY, data, i, stop)
                    self._parts.append(data[i:end])
                    self._length += end - i
                    if self._length > self._max:
                        self._abort(to=_CSI_SKIP)
                        i = end
                        continue
                else:
                    end = _span_end(_CSI_BODY, data, i, n)
                i = end
                if i < n:
                    char = data[i]
                    i += 1
                    if "\x40" <= char <= "\x7e":
                        body = "".join(self._parts)
                        self.reset()
                        if state == _CSI:
                            self._dispatch_csi(body, char)
                    else:
                        i = self._end_abnormally(char, i)
            elif state == _STRING:
                i = self._string(data, i, n)
            else:  # _STRING_ESC
                if data[i] == "\\":
                    i += 1
                    self._finish_string()
                else:
                    self._abort(to=_ESCAPE)

    def _begin(self, state: int, *, collect: bool = False) -> None:
        self._state = state
        self._parts = []
        self._length = 0
        self._collect = collect
        self._overflow = False

    def _abort(self, *, to: int) -> None:
        self.dropped += 1
        self._parts = []
        self._length = 0
        self._state = to

    def _end_abnormally(self, char: str, i: int) -> int:
        """End a CSI or ESC sequence at an unexpected `char`; return where to resume."""
        if char == ESC:
            self._abort(to=_ESCAPE)
            return i
        self._abort(to=_GROUND)
        return i if char in _CAN_SUB else i - 1

    def _string(self, data: str, i: int, n: int) -> int:
        if self._overflow:
            match = _OVERFLOW_END.search(data, i)
            if match is None:
                return n
        else:
            stop = min(n, i + self._max - self._length + 1)
            match = _STRING_END.search(data, i, stop)
            end = stop if match is None else match.start()
            if self._collect:
                self._parts.append(data[i:end])
            self._length += end - i
            if match is None:
                if self._length > self._max:
                    self._abort(to=_STRING)
                    self._overflow = True
                return end
        char = match[0]
        i = match.end()
        if char == ESC:
            self._state = _STRING_ESC
        elif char in "\x07\x9c":
            self._finish_string()
        elif char in _CAN_SUB:
            self._abort(to=_GROUND)
        else:  # A line break after an overflow: output resumes with it.
            self._state = _GROUND
            return i - 1
        return i

    def _finish_string(self) -> None:
        payload = "".join(self._parts) if self._collect and not self._overflow else None
        self.reset()
        if payload is not None:
            self._osc(payload)

    def _emit_text(self, text: str) -> None:
        text = clean_text(text)
        if text:
            self._text(text)

    def _dispatch_csi(self, body: str, final: str) -> None:
        private = body[:1] == "?"
        if private:
            body = body[1:]
        if _PARAMS.fullmatch(body) is None:
            if final != "m" or private or _COLON_SGR.fullmatch(body) is None:
                self.dropped += 1
                return
            body = _sgr_without_colons(body)
            if _PARAMS.fullmatch(body) is None:
                self.dropped += 1
                return
        params = [min(int(p), _MAX_PARAM) if p else 0 for p in body.split(";")]
        self._csi(final, params, private)
