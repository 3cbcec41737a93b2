"""Reading Gemini CLI's chat sessions (`tmp/<project>/chats/session-*.jsonl`).

The first line names the session (`sessionId`, `projectHash`, `startTime`); `$set` lines update
metadata; each `gemini` line is one answer with its tokens. An answer is written again when
its tool calls are added (same `id`, same tokens), so it is keyed `gemini:<session>:<id>`.
Gemini counts cached input inside `input`: our input is the uncached part plus the tool-use
prompt, and thoughts are output (research/real-agents.md §6). No cost is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from tundra_tui.usage.jsonl import BAD, Parsed, count, read_jsonl, text, timestamp
from tundra_tui.usage.records import Cursor, RawSample, ReadResult

RUNTIME: Final = "gemini"
PROVIDER: Final = "google"


class _Tokens(msgspec.Struct):
    input: object = 0
    output: object = 0
    cached: object = 0
    thoughts: object = 0
    tool: object = 0


class _Line(msgspec.Struct):
    sessionId: object = None
    projectHash: object = None
    startTime: object = None
    id: object = None
    timestamp: object = None
    type: object = None
    model: object = None
    tokens: _Tokens | None = None


_LINE = msgspec.json.Decoder(_Line)


def parse(line: bytes, state: dict[str, str], offset: int = 0) -> Parsed:
    """One chat line: an answer's `RawSample`, BAD, or None (the header, `$set`, user lines)."""
    del offset
    header = "session" not in state and b'"sessionId"' in line
    if not header and b'"gemini"' not in line:
        return None
    try:
        record = _LINE.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return BAD
    if header and record.type is None:
        state["session"] = text(record.sessionId)
        state["project"] = text(record.projectHash)
        state["started"] = timestamp(record.startTime) or ""
        return None
    if record.type != "gemini":
        return None
    at, message_id, tokens = timestamp(record.timestamp), text(record.id), record.tokens
    if at is None or not message_id or tokens is None:
        return BAD
    counts = (
        count(tokens.input),
        count(tokens.cached),
        count(tokens.tool),
        count(tokens.output),
        count(tokens.thoughts),
    )
    if None in counts:
        return BAD
    prompt, cached, tool, output, thoughts = (c or 0 for c in counts)
    if not (prompt or tool or output or thoughts):
        return None
    session = state.get("session", "")
    return RawSample(
        at=at,
        runtime=RUNTIME,
        provider=PROVIDER,
        model=text(record.model),
        session=session,
        source_key=f"gemini:{session}:{message_id}",
        input=max(prompt - cached, 0) + tool,
        output=output + thoughts,
        cache_read=min(cached, prompt),
    )


class GeminiReader:
    """Gemini CLI chat sessions, one file per session."""

    runtime = RUNTIME

    def read(self, path: Path, cursor: Cursor, *, max_bytes: int = 16 << 20) -> ReadResult:
        """The answers in the complete lines after `cursor`."""
        return read_jsonl(path, cursor, parse, max_bytes=max_bytes)
