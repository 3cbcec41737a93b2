"""Reading another tool's settings file: bounded, parsed, and every failure one line.

JSON, JSON with comments (Gemini's settings.json, OpenCode's opencode.jsonc) and TOML.
A file that is absent is not a problem; one that cannot be read or parsed is, and the
caller gets its reason instead of an exception. Parsed files can be cached by their
inode, size and times, since ~/.claude.json grows to megabytes.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 32 << 20
"""~/.claude.json keeps per-project history and grows; anything larger is not a settings file."""

FileCache = dict[Path, tuple[tuple[int, ...], dict[str, Any] | None, str]]
"""Parsed files by path: (inode, size, mtime, ctime), the data, the problem."""

Loaded = tuple[dict[str, Any] | None, str]
"""The file's top-level table, or None and why not ("" when the file is absent)."""


def load(path: Path, kind: str, cache: FileCache | None = None) -> Loaded:
    """Read and parse `path` (`kind` is json, jsonc or toml), from `cache` if unchanged."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None, ""
    except OSError as error:
        return None, f"cannot read: {error.strerror or error}"
    signature = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    hit = cache.get(path) if cache is not None else None
    if hit is not None and hit[0] == signature:
        return hit[1], hit[2]
    loaded = _read(path, kind)
    if cache is not None:
        cache[path] = (signature, *loaded)
    return loaded


def kind_of(value: Any) -> str:
    """A JSON/TOML type name for a message; never the value, which may be a secret."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _read(path: Path, kind: str) -> Loaded:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, ""
    except OSError as error:
        return None, f"cannot read: {error.strerror or error}"
    if len(raw) > MAX_FILE_BYTES:
        return None, f"larger than {MAX_FILE_BYTES >> 20} MiB, not read"
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    try:
        data = _parse(text, kind)
    except ValueError as error:
        return None, str(error)
    if not isinstance(data, dict):
        return None, f"expected an object at the top, got {kind_of(data)}"
    return data, ""


def _parse(text: str, kind: str) -> Any:
    """Parse JSON, JSON with comments, or TOML; every failure is a ValueError of one line."""
    try:
        if kind == "toml":
            return tomllib.loads(text)
        return json.loads(strip_jsonc(text) if kind == "jsonc" else text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"invalid TOML: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"line {error.lineno} col {error.colno}: invalid JSON: {error.msg}"
        ) from None
    except RecursionError:
        raise ValueError(
            f"invalid {'TOML' if kind == 'toml' else 'JSON'}: nested too deeply"
        ) from None


def strip_jsonc(text: str) -> str:
    """JSON with `//` and `/* */` comments and trailing commas, made plain JSON.

    Newlines inside comments are kept so that error positions still name the right line.
    """
    out: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == '"':
            end = _string_end(text, index)
            out.append(text[index:end])
            index = end
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            if close < 0:
                raise ValueError("invalid JSON: unterminated /* comment")
            out.append("\n" * text.count("\n", index, close))
            index = close + 2
        elif char == "," and _closes_next(text, index + 1):
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index + 1
        else:
            index += 1
    return len(text)


def _closes_next(text: str, index: int) -> bool:
    """True if the next thing after `index`, past blanks and comments, is `}` or `]`."""
    while index < len(text):
        if text[index].isspace():
            index += 1
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            index = len(text) if close < 0 else close + 2
        else:
            return text[index] in "}]"
    return False
