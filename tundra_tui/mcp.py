"""The MCP servers each coding-agent runtime would start for this town, read from their files.

Every runtime keeps its own list, in its own format and scopes:

- Claude Code: `.mcp.json` in the project (project), `~/.claude.json` top-level
  `mcpServers` (user) and `projects[<path>].mcpServers` (local, per directory).
- Codex: `$CODEX_HOME/config.toml`, default `~/.codex/config.toml` (user), and
  `.codex/config.toml` in a trusted project (project), `[mcp_servers.<name>]`.
- Gemini CLI: `~/.gemini/settings.json` (user) and `.gemini/settings.json` (project),
  `mcpServers`; comments allowed.
- OpenCode: `~/.config/opencode/opencode.json[c]` (global) and `opencode.json[c]` in
  the project, `mcp.<name>` with `type` local (command as one list) or remote.

Files are only read. A broken file or entry becomes one `McpProblem` line; nothing
here raises. Env and header values are kept for callers but never shown: the
display helpers print names with `MASK`, and `repr` leaves them out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tundra_tui.config import short_path
from tundra_tui.domain.sanitize import visible

__all__ = [
    "MASK",
    "FileCache",
    "McpProblem",
    "McpReport",
    "McpServer",
    "command_line",
    "masked_env",
    "masked_headers",
    "problem_line",
    "read_servers",
    "source_label",
]

MASK = "••••"
"""Shown in place of every env and header value."""
MAX_FILE_BYTES = 32 << 20
"""~/.claude.json keeps per-project history and grows; anything larger is not a settings file."""

RUNTIMES = ("claude", "codex", "gemini", "opencode")
PRECEDENCE: Mapping[str, tuple[str, ...]] = {
    "claude": ("local", "project", "user"),
    "codex": ("project", "user"),
    "gemini": ("project", "user"),
    "opencode": ("project", "global"),
}
"""Each runtime's scopes, the one that wins a name clash first."""

_SECRET_WORD = re.compile(r"token|key|secret|passw|auth|credential|cookie", re.IGNORECASE)
_ENV_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", re.DOTALL)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")

Which = Callable[..., str | None]
FileCache = dict[Path, tuple[tuple[int, ...], dict[str, Any] | None, str]]
"""Parsed files by path: (inode, size, mtime, ctime), the data, the problem."""


@dataclass(frozen=True)
class McpServer:
    """One configured server, as its runtime would read it."""

    runtime: str
    scope: str
    """project, user, local or global; `local:<dir>` for a Claude entry of a directory inside."""
    name: str
    command: str
    # Arguments, URLs, env and headers can all carry tokens: kept out of repr, so out of logs.
    args: tuple[str, ...] = field(repr=False)
    url: str = field(repr=False)
    env: dict[str, str] = field(repr=False)
    source: Path
    found: bool | None
    """Whether `command` resolves to an executable; None for a remote (url) server."""
    resolved: str
    """The executable `command` resolved to, or ""."""
    transport: str = "stdio"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    enabled: bool = True
    shadowed_by: str = ""
    """The scope whose server of the same name wins over this one, or ""."""


@dataclass(frozen=True)
class McpProblem:
    """A file or entry that could not be used, as one line."""

    source: Path
    message: str


@dataclass
class McpReport:
    servers: list[McpServer]
    problems: list[McpProblem]


@dataclass(frozen=True)
class _Source:
    runtime: str
    scope: str
    path: Path
    kind: str
    """json, jsonc or toml."""


def read_servers(
    root: Path,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
    which: Which = shutil.which,
    cache: FileCache | None = None,
) -> McpReport:
    """Every MCP server configured for the town at `root`, with the problems met on the way.

    Pass the same `cache` to each call to skip parsing files that have not changed
    (~/.claude.json grows to megabytes); binaries are looked up again every time.
    """
    home = home if home is not None else Path.home()
    environ = environ if environ is not None else os.environ
    root = root.resolve()
    servers: list[McpServer] = []
    problems: list[McpProblem] = []
    context = _Context(root, environ, which)
    for source in _sources(root, home, environ):
        data, problem = _load_cached(source, cache)
        if problem:
            problems.append(McpProblem(source.path, problem))
        if data is None:
            continue
        for raw_scope, name, entry in _entries(source, data, root, problems):
            server = _server(source, raw_scope, name, entry, context, problems)
            if server is not None:
                servers.append(server)
    return McpReport(_ordered(_shadow(servers)), problems)


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


def _sources(root: Path, home: Path, environ: Mapping[str, str]) -> Iterator[_Source]:
    codex_home = Path(environ["CODEX_HOME"]) if environ.get("CODEX_HOME") else home / ".codex"
    xdg = environ.get("XDG_CONFIG_HOME")
    opencode_home = (Path(xdg) if xdg else home / ".config") / "opencode"
    yield _Source("claude", "project", root / ".mcp.json", "json")
    yield _Source("claude", "user", home / ".claude.json", "json")
    yield _Source("codex", "project", root / ".codex" / "config.toml", "toml")
    yield _Source("codex", "user", codex_home / "config.toml", "toml")
    yield _Source("gemini", "project", root / ".gemini" / "settings.json", "jsonc")
    yield _Source("gemini", "user", home / ".gemini" / "settings.json", "jsonc")
    for directory, scope in ((root, "project"), (opencode_home, "global")):
        for name in ("opencode.json", "opencode.jsonc"):
            yield _Source("opencode", scope, directory / name, "jsonc")


def _load_cached(source: _Source, cache: FileCache | None) -> tuple[dict[str, Any] | None, str]:
    """`_load`, skipped while the file's inode, size and times are those of the cached read."""
    try:
        info = source.path.stat()
    except FileNotFoundError:
        return None, ""
    except OSError as error:
        return None, f"cannot read: {error.strerror or error}"
    signature = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    hit = cache.get(source.path) if cache is not None else None
    if hit is not None and hit[0] == signature:
        return hit[1], hit[2]
    data, message = _load(source)
    if cache is not None:
        cache[source.path] = (signature, data, message)
    return data, message


def _load(source: _Source) -> tuple[dict[str, Any] | None, str]:
    """The file's top-level table, or None and why not ("" when the file is absent)."""
    try:
        with source.path.open("rb") as file:
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
        data = _parse(text, source.kind)
    except ValueError as error:
        return None, str(error)
    if not isinstance(data, dict):
        return None, f"expected an object at the top, got {_kind(data)}"
    return data, ""


def _parse(text: str, kind: str) -> Any:
    """Parse JSON, JSON with comments, or TOML; every failure is a ValueError of one line."""
    if kind == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"invalid TOML: {error}") from None
    if kind == "jsonc":
        text = _strip_jsonc(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"line {error.lineno} col {error.colno}: invalid JSON: {error.msg}"
        ) from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None


def _strip_jsonc(text: str) -> str:
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


def _entries(
    source: _Source, data: dict[str, Any], root: Path, problems: list[McpProblem]
) -> Iterator[tuple[str, str, Any]]:
    """(scope, name, raw entry) for every server the file lists."""
    if source.runtime == "opencode":
        yield from _named(source, source.scope, data, "mcp", problems)
    elif source.runtime == "codex":
        yield from _named(source, source.scope, data, "mcp_servers", problems)
    else:
        yield from _named(source, source.scope, data, "mcpServers", problems)
    if source.runtime == "claude" and source.scope == "user":
        projects = data.get("projects")
        if isinstance(projects, dict):
            for directory, settings in projects.items():
                scope = _local_scope(str(directory), root)
                if scope and isinstance(settings, dict):
                    yield from _named(source, scope, settings, "mcpServers", problems)


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


def _named(
    source: _Source, scope: str, data: dict[str, Any], key: str, problems: list[McpProblem]
) -> Iterator[tuple[str, str, Any]]:
    table = data.get(key)
    if table is None:
        return
    if not isinstance(table, dict):
        problems.append(McpProblem(source.path, f"{key}: expected an object, got {_kind(table)}"))
        return
    for name, entry in table.items():
        yield scope, str(name), entry


@dataclass(frozen=True)
class _Context:
    root: Path
    environ: Mapping[str, str]
    which: Which


def _server(
    source: _Source,
    scope: str,
    name: str,
    entry: Any,
    context: _Context,
    problems: list[McpProblem],
) -> McpServer | None:
    """One entry as a server, or None with a problem noted when its shape is wrong."""
    try:
        if not isinstance(entry, dict):
            raise ValueError(f"expected an object, got {_kind(entry)}")
        fields = _FIELDS[source.runtime](entry)
    except ValueError as error:
        problems.append(McpProblem(source.path, f"{source.runtime} server {name!r}: {error}"))
        return None
    command, args, url, env, headers, transport, enabled = fields
    if not command and not url:
        problems.append(
            McpProblem(source.path, f"{source.runtime} server {name!r}: no command and no url")
        )
        return None
    found, resolved = _locate(command, context) if command else (None, "")
    return McpServer(
        runtime=source.runtime,
        scope=scope,
        name=name,
        command=command,
        args=args,
        url=url,
        env=env,
        source=source.path,
        found=found,
        resolved=resolved,
        transport=transport,
        headers=headers,
        enabled=enabled,
    )


_Fields = tuple[str, tuple[str, ...], str, dict[str, str], dict[str, str], str, bool]


def _claude_fields(entry: dict[str, Any]) -> _Fields:
    url = _text(entry, "url")
    transport = _text(entry, "type") or ("http" if url else "stdio")
    return (
        _text(entry, "command"),
        _strings(entry, "args"),
        url,
        _table(entry, "env"),
        _table(entry, "headers"),
        transport,
        True,
    )


def _codex_fields(entry: dict[str, Any]) -> _Fields:
    url = _text(entry, "url")
    return (
        _text(entry, "command"),
        _strings(entry, "args"),
        url,
        _table(entry, "env"),
        _table(entry, "http_headers"),
        "http" if url else "stdio",
        _flag(entry, "enabled"),
    )


def _gemini_fields(entry: dict[str, Any]) -> _Fields:
    http_url, sse_url = _text(entry, "httpUrl"), _text(entry, "url")
    return (
        _text(entry, "command"),
        _strings(entry, "args"),
        http_url or sse_url,
        _table(entry, "env"),
        _table(entry, "headers"),
        "http" if http_url else "sse" if sse_url else "stdio",
        True,
    )


def _opencode_fields(entry: dict[str, Any]) -> _Fields:
    kind = _text(entry, "type")
    if kind == "remote":
        command: tuple[str, ...] = ()
    elif kind == "local":
        command = _strings(entry, "command")
    else:
        raise ValueError(f"type must be local or remote, got {kind!r}")
    return (
        command[0] if command else "",
        command[1:],
        _text(entry, "url") if kind == "remote" else "",
        _table(entry, "environment"),
        _table(entry, "headers"),
        "http" if kind == "remote" else "stdio",
        _flag(entry, "enabled"),
    )


_FIELDS: Mapping[str, Callable[[dict[str, Any]], _Fields]] = {
    "claude": _claude_fields,
    "codex": _codex_fields,
    "gemini": _gemini_fields,
    "opencode": _opencode_fields,
}


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {_kind(value)}")
    return value


def _strings(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key}: expected a list of strings, got {_kind(value)}")
    return tuple(value)


def _table(entry: dict[str, Any], key: str) -> dict[str, str]:
    """A table of names to values; numbers and booleans are taken as their text."""
    value = entry.get(key, {})
    if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
        raise ValueError(f"{key}: expected a table of strings, got {_kind(value)}")
    return {str(name): str(item) for name, item in value.items()}


def _flag(entry: dict[str, Any], key: str) -> bool:
    value = entry.get(key, True)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    """A JSON/TOML type name for a message; never the value, which may be a secret."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


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
    def key(server: McpServer) -> tuple[int, int, str, str]:
        order = PRECEDENCE[server.runtime]
        base = server.scope.partition(":")[0]
        rank = order.index(base) if base in order else len(order)
        return RUNTIMES.index(server.runtime), rank, server.scope, server.name

    return sorted(servers, key=key)


def source_label(item: McpServer | McpProblem, root: Path) -> str:
    """The source file as the operator would type it: relative to the town or to ~."""
    return _one_line(short_path(item.source, root))


def problem_line(problem: McpProblem, root: Path) -> str:
    """`~/.claude.json: line 3 col 1: invalid JSON: ...` on one sanitized line."""
    return f"{source_label(problem, root)}: {_one_line(problem.message)}"
