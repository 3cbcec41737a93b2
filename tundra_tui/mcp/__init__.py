"""The MCP servers each coding-agent runtime would start for this town, read from their files.

Claude Code, Codex, Gemini CLI and OpenCode each keep their own list, in their own
format and scopes (`formats`). Files are only read, never written. A broken file or
entry becomes one `McpProblem` line; nothing here raises. Env and header values are
kept for callers but never shown: `display` prints names with `MASK`, and `repr`
leaves them (and arguments and URLs, which can carry tokens too) out.
"""

from __future__ import annotations

from tundra_tui.mcp.display import (
    MASK,
    command_line,
    masked_env,
    masked_headers,
    one_line,
    problem_line,
    source_label,
)
from tundra_tui.mcp.files import FileCache
from tundra_tui.mcp.model import McpProblem, McpReport, McpServer
from tundra_tui.mcp.reader import read_servers

__all__ = [
    "MASK",
    "FileCache",
    "McpProblem",
    "McpReport",
    "McpServer",
    "command_line",
    "masked_env",
    "masked_headers",
    "one_line",
    "problem_line",
    "read_servers",
    "source_label",
]
