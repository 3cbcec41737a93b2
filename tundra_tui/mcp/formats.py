"""Where each runtime keeps its MCP servers, and how one entry of each format reads.

- Claude Code: `.mcp.json` in the project (project), `~/.claude.json` top-level
  `mcpServers` (user) and `projects[<path>].mcpServers` (local, per directory).
- Codex: `$CODEX_HOME/config.toml`, default `~/.codex/config.toml` (user), and
  `.codex/config.toml` in a trusted project (project), `[mcp_servers.<name>]`.
- Gemini CLI: `~/.gemini/settings.json` (user) and `.gemini/settings.json` (project),
  `mcpServers`, comments allowed; `httpUrl` is streamable HTTP, `url` is SSE.
- OpenCode: `$XDG_CONFIG_HOME/opencode/opencode.json[c]` (global) and
  `opencode.json[c]` in the project, `mcp.<name>` of `type` local (the command and
  its arguments as one list, `environment`) or remote (`url`, `headers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tundra_tui.mcp.files import kind_of

RUNTIMES = ("claude", "codex", "gemini", "opencode")
PRECEDENCE: Mapping[str, tuple[str, ...]] = {
    "claude": ("local", "project", "user"),
    "codex": ("project", "user"),
    "gemini": ("project", "user"),
    "opencode": ("project", "global"),
}
"""Each runtime's scopes, the one that wins a name clash first."""


@dataclass(frozen=True)
class Source:
    """One file a runtime reads servers from."""

    runtime: str
    scope: str
    path: Path
    kind: str
    """json, jsonc or toml."""


class Fields(NamedTuple):
    """One entry's settings, the same whatever the runtime's spelling."""

    command: str
    args: tuple[str, ...]
    url: str
    env: dict[str, str]
    headers: dict[str, str]
    transport: str
    enabled: bool


class EntryError(ValueError):
    """An entry of the wrong shape; the message is one line and holds no value."""


def sources(root: Path, home: Path, environ: Mapping[str, str]) -> Iterator[Source]:
    """Every file that may list servers for the town at `root`, whether or not it exists."""
    codex_home = Path(environ["CODEX_HOME"]) if environ.get("CODEX_HOME") else home / ".codex"
    xdg = environ.get("XDG_CONFIG_HOME")
    opencode_home = (Path(xdg) if xdg else home / ".config") / "opencode"
    yield Source("claude", "project", root / ".mcp.json", "json")
    yield Source("claude", "user", home / ".claude.json", "json")
    yield Source("codex", "project", root / ".codex" / "config.toml", "toml")
    yield Source("codex", "user", codex_home / "config.toml", "toml")
    yield Source("gemini", "project", root / ".gemini" / "settings.json", "jsonc")
    yield Source("gemini", "user", home / ".gemini" / "settings.json", "jsonc")
    for directory, scope in ((root, "project"), (opencode_home, "global")):
        for name in ("opencode.json", "opencode.jsonc"):
            yield Source("opencode", scope, directory / name, "jsonc")


def tables(source: Source, data: dict[str, Any], root: Path) -> Iterator[tuple[str, str, Any]]:
    """(scope, key, table) for each table of servers in the file; the table is unchecked."""
    key = {"opencode": "mcp", "codex": "mcp_servers"}.get(source.runtime, "mcpServers")
    if key in data:
        yield source.scope, key, data[key]
    if source.runtime == "claude" and source.scope == "user":
        projects = data.get("projects")
        if isinstance(projects, dict):
            for directory, settings in projects.items():
                scope = _local_scope(str(directory), root)
                if scope and isinstance(settings, dict) and "mcpServers" in settings:
                    yield scope, "mcpServers", settings["mcpServers"]


def fields(runtime: str, entry: Any) -> Fields:
    """Read one entry in its runtime's format; EntryError when its shape is wrong."""
    if not isinstance(entry, dict):
        raise EntryError(f"expected an object, got {kind_of(entry)}")
    return _FORMATS[runtime](entry)


def _local_scope(directory: str, root: Path) -> str:
    """`local` for the town's own directory, `local:<dir>` inside it (a worktree), else ""."""
    path = Path(directory)
    if not path.is_absolute():
        return ""
    if path == root:
        return "local"
    if path.is_relative_to(root):
        return f"local:{path.relative_to(root)}"
    return ""


def _claude(entry: dict[str, Any]) -> Fields:
    url = _text(entry, "url")
    return Fields(
        command=_text(entry, "command"),
        args=_strings(entry, "args"),
        url=url,
        env=_table(entry, "env"),
        headers=_table(entry, "headers"),
        transport=_text(entry, "type") or ("http" if url else "stdio"),
        enabled=True,
    )


def _codex(entry: dict[str, Any]) -> Fields:
    url = _text(entry, "url")
    return Fields(
        command=_text(entry, "command"),
        args=_strings(entry, "args"),
        url=url,
        env=_table(entry, "env"),
        headers=_table(entry, "http_headers"),
        transport="http" if url else "stdio",
        enabled=_flag(entry, "enabled"),
    )


def _gemini(entry: dict[str, Any]) -> Fields:
    http_url, sse_url = _text(entry, "httpUrl"), _text(entry, "url")
    return Fields(
        command=_text(entry, "command"),
        args=_strings(entry, "args"),
        url=http_url or sse_url,
        env=_table(entry, "env"),
        headers=_table(entry, "headers"),
        transport="http" if http_url else "sse" if sse_url else "stdio",
        enabled=True,
    )


def _opencode(entry: dict[str, Any]) -> Fields:
    kind = _text(entry, "type")
    if kind not in ("local", "remote"):
        raise EntryError(f"type must be local or remote, got {kind!r}")
    command = _strings(entry, "command") if kind == "local" else ()
    return Fields(
        command=command[0] if command else "",
        args=command[1:],
        url=_text(entry, "url") if kind == "remote" else "",
        env=_table(entry, "environment"),
        headers=_table(entry, "headers"),
        transport="http" if kind == "remote" else "stdio",
        enabled=_flag(entry, "enabled"),
    )


_FORMATS: Mapping[str, Callable[[dict[str, Any]], Fields]] = {
    "claude": _claude,
    "codex": _codex,
    "gemini": _gemini,
    "opencode": _opencode,
}


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise EntryError(f"{key}: expected a string, got {kind_of(value)}")
    return value


def _strings(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EntryError(f"{key}: expected a list of strings, got {kind_of(value)}")
    return tuple(value)


def _table(entry: dict[str, Any], key: str) -> dict[str, str]:
    """A table of names to values; numbers and booleans are taken as their text."""
    value = entry.get(key, {})
    if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
        raise EntryError(f"{key}: expected a table of strings, got {kind_of(value)}")
    return {str(name): str(item) for name, item in value.items()}


def _flag(entry: dict[str, Any], key: str) -> bool:
    value = entry.get(key, True)
    if not isinstance(value, bool):
        raise EntryError(f"{key}: expected true or false, got {kind_of(value)}")
    return value
