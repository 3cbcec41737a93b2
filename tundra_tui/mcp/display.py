"""MCP servers as one sanitized line each, with every secret masked.

Names, commands and paths come from other tools' files: each piece goes through the
one sanitizer. Env and header values are never shown, only their names; secret-looking
flag values, `NAME=value` arguments and passwords or query values in URLs are masked.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tundra_tui.config import short_path
from tundra_tui.domain.sanitize import visible
from tundra_tui.mcp.model import McpProblem, McpServer

MASK = "••••"
"""Shown in place of every env and header value."""

_SECRET_WORD = re.compile(r"token|key|secret|passw|auth|credential|cookie", re.IGNORECASE)
_ENV_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", re.DOTALL)


def masked_env(server: McpServer) -> str:
    """`KEY=•••• OTHER=••••`: the names only, safe for one table cell."""
    return " ".join(f"{_one_line(name)}={MASK}" for name in sorted(server.env))


def masked_headers(server: McpServer) -> str:
    """HTTP header names with their values masked (they carry bearer tokens)."""
    return " ".join(f"{_one_line(name)}: {MASK}" for name in sorted(server.headers))


def command_line(server: McpServer, *, with_args: bool = True) -> str:
    """The command and its arguments (or the URL) on one sanitized line, secrets masked."""
    if not server.command:
        return _one_line(_masked_url(server.url))
    words = [server.command, *(_masked_args(server.args) if with_args else ())]
    return " ".join(_one_line(_quoted(word)) for word in words)


def source_label(item: McpServer | McpProblem, root: Path) -> str:
    """The source file as the operator would type it: relative to the town or to ~."""
    return _one_line(short_path(item.source, root))


def problem_line(problem: McpProblem, root: Path) -> str:
    """`~/.claude.json: line 3 col 1: invalid JSON: ...` on one sanitized line."""
    return f"{source_label(problem, root)}: {_one_line(problem.message)}"


def _one_line(text: str) -> str:
    return visible(text, single_line=True)


def _quoted(word: str) -> str:
    """Quote a word only when it would otherwise read as two; shlex quoting is noisier."""
    return repr(word) if not word or any(char.isspace() for char in word) else word


def _masked_args(args: tuple[str, ...]) -> list[str]:
    """Arguments with secret-looking flag values, `NAME=value` pairs and URL passwords masked."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        flag, equals, _value = arg.partition("=")
        if arg.startswith("-") and _SECRET_WORD.search(flag):
            if equals:
                shown.append(f"{flag}={MASK}")
            else:
                shown.append(arg)
                hide_next = True
        elif (assign := _ENV_ASSIGN.fullmatch(arg)) and _SECRET_WORD.search(assign[1]):
            shown.append(f"{assign[1]}={MASK}")
        elif "://" in arg:
            shown.append(_masked_url(arg))
        else:
            shown.append(arg)
    return shown


def _masked_url(url: str) -> str:
    """A URL without its password and with every query value masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{parts.username}:{MASK}@{host}" if parts.password else parts.netloc
        if parts.password and parts.port:
            netloc += f":{parts.port}"
        query = "&".join(f"{pair.partition('=')[0]}={MASK}" for pair in parts.query.split("&"))
        return urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "", ""))
    except ValueError:
        return MASK
