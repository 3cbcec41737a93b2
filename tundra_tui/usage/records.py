"""What a runtime's log says, before an agent, a price or a bead is put on it, and the
cursor a reader resumes from. Every reader (one per runtime) speaks these types."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RawSample:
    """One model call as logged. Tokens are normalised: `input` is uncached input,
    reasoning and thoughts are in `output`, `cache_write` includes `cache_write_1h`."""

    at: str
    runtime: str
    provider: str
    model: str
    session: str
    source_key: str
    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    logged_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class LoggedCost:
    """A session's cumulative cost as the CLI wrote it (Claude Code's cost-state)."""

    runtime: str
    session: str
    cost_usd: float
    unknown_model: bool
    at: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a reader stopped in a source, and what identifies the file it read (so a
    replaced or truncated file is read again from 0)."""

    offset: int = 0
    device: int = 0
    inode: int = 0
    head: bytes = b""
    skipping: bool = False
    """Inside an over-long line, skipping to its end."""
    state: Mapping[str, str] = field(default_factory=dict)
    """Reader state kept between reads (a Codex file's model, OpenCode's position)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one bounded read found, and the cursor to resume from."""

    samples: list[RawSample]
    logged: list[LoggedCost]
    cursor: Cursor
    bad_lines: int
    first_bad_offset: int | None
    eof: bool
    """Nothing complete is left to read."""


class Reader(Protocol):
    """Reads new usage from one source, incrementally from a cursor; pure apart from reading."""

    runtime: str

    def read(self, path: Path, cursor: Cursor, *, max_bytes: int = 16 << 20) -> ReadResult: ...


class _Readers(Mapping[str, Reader]):
    """One reader per runtime, built on first use: the reader modules import this one."""

    def __init__(self) -> None:
        self._readers: dict[str, Reader] | None = None

    def _all(self) -> dict[str, Reader]:
        if self._readers is None:
            from tundra_tui.usage.aider import AiderReader
            from tundra_tui.usage.claude import ClaudeReader
            from tundra_tui.usage.codex import CodexReader
            from tundra_tui.usage.gemini import GeminiReader
            from tundra_tui.usage.opencode import OpenCodeReader

            self._readers = {
                "claude": ClaudeReader(),
                "demo": ClaudeReader("demo"),
                "codex": CodexReader(),
                "gemini": GeminiReader(),
                "aider": AiderReader(),
                "opencode": OpenCodeReader(),
            }
        return self._readers

    def __getitem__(self, runtime: str) -> Reader:
        return self._all()[runtime]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


READERS: Mapping[str, Reader] = _Readers()
"""One reader per runtime: claude, demo (the demo agent's Claude-format log), codex, gemini,
aider, opencode. Readers are stateless: the cursor holds everything."""
