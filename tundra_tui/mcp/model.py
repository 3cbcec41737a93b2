"""What the MCP reader returns: servers as each runtime would start them, and problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    """Every server found, and every file or entry that could not be used."""

    servers: list[McpServer]
    problems: list[McpProblem]
