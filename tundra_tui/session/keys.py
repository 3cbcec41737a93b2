"""Key names to the bytes a terminal program expects (xterm's encoding).

The control room names keys the way Textual does (`up`, `ctrl+a`, `shift+tab`,
`f5`); an agent's PTY wants what a real terminal would have sent. `at session
attach` never needs this (it passes the terminal's own bytes through), so it
lives here, headless, for any client that receives keys by name.
"""

from __future__ import annotations

_CSI = "\x1b["

_PLAIN: dict[str, str] = {
    "enter": "\r",
    "tab": "\t",
    "shift+tab": _CSI + "Z",
    "backspace": "\x7f",
    "escape": "\x1b",
    "space": " ",
    "ctrl+@": "\x00",
    "ctrl+space": "\x00",
    "ctrl+backslash": "\x1c",
    "ctrl+right_square_bracket": "\x1d",
    "ctrl+circumflex_accent": "\x1e",
    "ctrl+underscore": "\x1f",
}
"""Keys with one fixed encoding, whatever the modifiers say."""

_CURSOR: dict[str, str] = {
    "up": "A",
    "down": "B",
    "right": "C",
    "left": "D",
    "home": "H",
    "end": "F",
}
"""`CSI <final>` keys; with modifiers `CSI 1;<mod> <final>`."""

_FUNCTION_SS3: dict[str, str] = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
"""F1-F4 are `SS3 <final>`; with modifiers `CSI 1;<mod> <final>`."""

_TILDE: dict[str, int] = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}
"""`CSI <n> ~` keys; with modifiers `CSI <n>;<mod> ~`."""

_MODIFIER_BITS = {"shift": 1, "alt": 2, "ctrl": 4}
"""xterm's modifier parameter is 1 + the sum of these."""

BRACKETED_PASTE = ("\x1b[200~", "\x1b[201~")


def _split_modifiers(key: str) -> tuple[int, str]:
    """The xterm modifier bits of `key` and the key without them."""
    bits = 0
    *modifiers, base = key.split("+")
    for modifier in modifiers:
        bits |= _MODIFIER_BITS.get(modifier, 0)
    return bits, base


def encode_key(key: str, character: str | None = None) -> bytes | None:
    """The bytes for one key press, or None for a key a terminal cannot send.

    `key` is the key's name (`ctrl+a`, `shift+up`, `f5`); `character` is the text it
    produced, if any (Textual gives both). Text keys are sent as their UTF-8.
    """
    if key in _PLAIN:
        return _PLAIN[key].encode()
    bits, base = _split_modifiers(key)
    param = f"1;{bits + 1}" if bits else ""
    if base in _CURSOR:
        return f"{_CSI}{param}{_CURSOR[base]}".encode()
    if base in _FUNCTION_SS3:
        final = _FUNCTION_SS3[base]
        return (f"{_CSI}{param}{final}" if bits else f"\x1bO{final}").encode()
    if base in _TILDE:
        suffix = f";{bits + 1}" if bits else ""
        return f"{_CSI}{_TILDE[base]}{suffix}~".encode()
    if bits & _MODIFIER_BITS["ctrl"] and len(base) == 1 and base.isascii() and base.isalpha():
        code = bytes([ord(base.lower()) - ord("a") + 1])
        return b"\x1b" + code if bits & _MODIFIER_BITS["alt"] else code
    if character and character.isprintable():
        text = character.encode()
        return b"\x1b" + text if bits & _MODIFIER_BITS["alt"] else text
    if character and len(character) == 1:
        # A control character Textual named differently (ctrl+h as backspace, and so on).
        return character.encode()
    return None


def encode_paste(text: str) -> bytes:
    """Pasted text: one line as typed, several lines bracketed so no line submits early.

    Newlines become carriage returns (what Enter sends). The agent CLIs we run all
    enable bracketed paste; a program that did not would see the markers as keys.
    """
    text = text.replace("\r\n", "\n")
    if "\n" not in text:
        return text.encode()
    start, end = BRACKETED_PASTE
    body = text.replace(start, "").replace(end, "").replace("\n", "\r")
    return f"{start}{body}{end}".encode()
