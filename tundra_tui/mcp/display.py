"""MCP servers as one sanitized line each, with every secret masked.

Names, commands and paths come from other tools' files: each piece goes through the
one sanitizer, and loses any well-known token shape on the way. Env and header values
are never shown, only their names; arguments are shown as `config.mask_args` leaves
them (secret-named flags, `NAME=value` and `Name: value` pairs, URL passwords and
query values masked; `ghp_…`, `AKIA…`, Slack webhooks and `Bearer …` redacted).
"""

from __future__ import annotations

from pathlib import Path

from tundra_tui.config import SECRET_MASK, mask_args, mask_url, short_path
from tundra_tui.domain.redact import redact
from tundra_tui.domain.sanitize import visible
from tundra_tui.mcp.model import McpProblem, McpServer

MASK = SECRET_MASK
"""Shown in place of every env and header value."""


def masked_env(server: McpServer) -> str:
    """`KEY=•••• OTHER=••••`: the names only, safe for one table cell."""
    return " ".join(f"{one_line(name)}={MASK}" for name in sorted(server.env))


def masked_headers(server: McpServer) -> str:
    """HTTP header names with their values masked (they carry bearer tokens)."""
    return " ".join(f"{one_line(name)}: {MASK}" for name in sorted(server.headers))


def command_line(server: McpServer, *, with_args: bool = True) -> str:
    """The command and its arguments (or the URL) on one sanitized line, secrets masked."""
    if not server.command:
        return one_line(mask_url(server.url))
    words = [server.command, *(mask_args(server.args) if with_args else ())]
    return " ".join(one_line(_quoted(word)) for word in words)


def source_label(item: McpServer | McpProblem, root: Path) -> str:
    """The source file as the operator would type it: relative to the town or to ~."""
    return one_line(short_path(item.source, root))


def problem_line(problem: McpProblem, root: Path) -> str:
    """`~/.claude.json: line 3 col 1: invalid JSON: ...` on one sanitized line."""
    return f"{source_label(problem, root)}: {one_line(problem.message)}"


def one_line(text: str) -> str:
    """Text from another tool's file as one sanitized line, token shapes redacted: a
    server's name or a path can hold one as well as its arguments."""
    return visible(redact(text), single_line=True)


def _quoted(word: str) -> str:
    """Quote a word only when it would otherwise read as two; shlex quoting is noisier."""
    return repr(word) if not word or any(char.isspace() for char in word) else word
