"""The one sanitizer for untrusted text: anything an agent printed or wrote.

Terminals act on control characters, and Textual passes them through even with
markup off (research P1). So every string that came from an agent, a bead, mail
or a log is made visible here before it reaches a terminal or a widget: C0, DEL
and C1 controls become symbols, invisible format characters (bidi overrides,
zero-width) become `⟨U+XXXX⟩`, and floods of combining marks are cut short.
The stored data is never changed; only what is shown.
"""

from __future__ import annotations

import unicodedata

MAX_COMBINING = 16
"""Combining marks kept per base character; the rest are dropped for display."""

_TAB_NEWLINE = frozenset("\t\n")


def _picture(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"⟨U+{code:04X}⟩"


def _is_hidden(char: str) -> bool:
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return True
    # Cf: bidi overrides, zero-width joiners, BOM. Zl/Zp: line and paragraph separators.
    # Cs: lone surrogates left by surrogateescape decoding of invalid bytes.
    return unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs")


def _is_mark(char: str) -> bool:
    # Category M, not combining() != 0: enclosing marks and variation selectors
    # have combining class 0 but stack on their base all the same.
    return unicodedata.category(char).startswith("M")


def visible(text: str, *, single_line: bool = False, limit: int | None = None) -> str:
    """Return `text` safe to show in a terminal, with hidden characters made visible.

    Tabs and newlines are kept unless `single_line`, which shows newlines as `␤`
    and tabs as a space so table cells stay one row. `limit` truncates the
    result with an ellipsis. Applying this twice gives the same result as once.
    """
    if limit is not None and limit <= 0:
        return ""
    if text.isascii() and text.isprintable():
        # The common case (most terminal rows): nothing to show differently, only to cut.
        if limit is None or len(text) <= limit:
            return text
        return text[: max(limit - 1, 0)] + "…"
    out: list[str] = []
    combining_run = 0
    length = 0
    for char in text:
        if char in _TAB_NEWLINE and not single_line:
            piece = char
        elif char == "\t":
            piece = " "
        elif char == "\n":
            piece = "\u2424"
        elif _is_hidden(char):
            piece = _picture(char)
        elif _is_mark(char):
            combining_run += 1
            if combining_run > MAX_COMBINING:
                continue
            piece = char
        else:
            piece = char
        if not _is_mark(char):
            combining_run = 0
        out.append(piece)
        length += len(piece)
        if limit is not None and length > limit:
            return "".join(out)[: max(limit - 1, 0)] + "…"
    return "".join(out)


def is_clean(text: str) -> bool:
    """True if `text` has nothing `visible` would change (multi-line mode)."""
    return visible(text) == text
