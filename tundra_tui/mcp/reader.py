"""Reading every runtime's MCP servers for a town: files only read, problems never raised."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tundra_tui.mcp.files import FileCache, kind_of, load
from tundra_tui.mcp.formats import PRECEDENCE, RUNTIMES, EntryError, Source, fields, sources, tables
from tundra_tui.mcp.model import McpProblem, McpReport, McpServer

Which = Callable[..., str | None]
"""shutil.which's signature: (command, mode=..., path=...)."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class _Context:
    root: Path
    environ: Mapping[str, str]
    which: Which


def read_servers(
    root: Path,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    which: Which = shutil.which,
    cache: FileCache | None = None,
) -> McpReport:
    """Every MCP server configured for the town at `root`, with the problems met on the way.

    `home` and `environ` default to the process's (HOME, PATH, CODEX_HOME, XDG_CONFIG_HOME).
    Pass the same `cache` to each call to skip parsing files that have not changed;
    binaries are looked up again every time.
    """
    home = home if home is not None else Path.home()
    environ = environ if environ is not None else os.environ
    root = root.resolve()
    context = _Context(root, environ, which)
    servers: list[McpServer] = []
    problems: list[McpProblem] = []
    for source in sources(root, home, environ):
        data, problem = load(source.path, source.kind, cache)
        if problem:
            problems.append(McpProblem(source.path, problem))
        if data is None:
            continue
        for scope, key, table in tables(source, data, root):
            if not isinstance(table, dict):
                message = f"{key}: expected an object, got {kind_of(table)}"
                problems.append(McpProblem(source.path, message))
                continue
            for name, entry in table.items():
                server = _server(source, scope, str(name), entry, context, problems)
                if server is not None:
                    servers.append(server)
    return McpReport(_ordered(_shadow(servers)), problems)


def _server(
    source: Source,
    scope: str,
    name: str,
    entry: Any,
    context: _Context,
    problems: list[McpProblem],
) -> McpServer | None:
    """One entry as a server, or None with a problem noted when its shape is wrong."""

    def problem(reason: str) -> None:
        problems.append(McpProblem(source.path, f"{source.runtime} server {name!r}: {reason}"))

    try:
        read = fields(source.runtime, entry)
    except EntryError as error:
        problem(str(error))
        return None
    if not read.command and not read.url:
        problem("no command and no url")
        return None
    found, resolved = _locate(read.command, context) if read.command else (None, "")
    return McpServer(
        runtime=source.runtime,
        scope=scope,
        name=name,
        command=read.command,
        args=read.args,
        url=read.url,
        env=read.env,
        source=source.path,
        found=found,
        resolved=resolved,
        transport=read.transport,
        headers=read.headers,
        enabled=read.enabled,
    )


def _locate(command: str, context: _Context) -> tuple[bool, str]:
    """Whether `command` names an executable: on PATH, or a path from the town root."""
    expanded = os.path.expanduser(_expand(command, context.environ))
    if "/" in expanded:
        path = Path(expanded)
        expanded = str(path if path.is_absolute() else context.root / path)
    resolved = context.which(expanded, path=context.environ.get("PATH", os.defpath))
    return resolved is not None, resolved or ""


def _expand(text: str, environ: Mapping[str, str]) -> str:
    """`${VAR}`, `${VAR:-default}` and `$VAR`, as Claude Code expands them in .mcp.json."""

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[3]
        default = match[2] if match[2] is not None else ""
        return environ.get(name) or default

    return _VARIABLE.sub(value, text)


def _shadow(servers: list[McpServer]) -> list[McpServer]:
    """Mark each server that a same-named one in a stronger scope of its runtime overrides."""
    best: dict[tuple[str, str], str] = {}
    for server in servers:
        order = PRECEDENCE[server.runtime]
        if server.scope not in order:
            continue
        key = (server.runtime, server.name)
        current = best.get(key)
        if current is None or order.index(server.scope) < order.index(current):
            best[key] = server.scope
    marked = []
    for server in servers:
        winner = best.get((server.runtime, server.name), server.scope)
        if server.scope in PRECEDENCE[server.runtime] and winner != server.scope:
            server = replace(server, shadowed_by=winner)
        marked.append(server)
    return marked


def _ordered(servers: list[McpServer]) -> list[McpServer]:
    """By runtime, then the winning scope first, then name."""

    def key(server: McpServer) -> tuple[int, int, str, str]:
        order = PRECEDENCE[server.runtime]
        base = server.scope.partition(":")[0]
        rank = order.index(base) if base in order else len(order)
        return RUNTIMES.index(server.runtime), rank, server.scope, server.name

    return sorted(servers, key=key)
