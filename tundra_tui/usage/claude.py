"""Reading Claude Code's projects JSONL (and the demo agent's log, which has the same format).

Only `assistant` lines cost money. Claude Code writes one line per content block, and every
block of one answer repeats its `message.id`, its `requestId` and its whole usage; `--resume`
copies old lines into a new file. So an answer is keyed `claude:<message id>:<request id>` and
counted once wherever it appears (research/real-agents.md §3 "Usage log"). `cost-state` lines
carry Claude's own running session cost, kept beside ours. The log is written by another
program and may be hostile or half-written: a line that is not what we expect is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from tundra_tui.usage.jsonl import (
    BAD,
    MAX_LINE_BYTES,
    Parsed,
    count,
    read_jsonl,
    text,
    timestamp,
)
from tundra_tui.usage.records import Cursor, LoggedCost, RawSample, ReadResult

RUNTIME: Final = "claude"
PROVIDER: Final = "anthropic"
__all__ = ["MAX_LINE_BYTES", "RUNTIME", "ClaudeReader", "parse"]


class _CacheCreation(msgspec.Struct):
    ephemeral_1h_input_tokens: object = 0


class _Usage(msgspec.Struct):
    input_tokens: object = 0
    output_tokens: object = 0
    cache_creation_input_tokens: object = 0
    cache_read_input_tokens: object = 0
    cache_creation: _CacheCreation | None = None


class _Message(msgspec.Struct):
    id: object = None
    model: object = None
    usage: _Usage | None = None


class _Line(msgspec.Struct):
    """The fields we use; unknown ones are skipped by the decoder, never parsed into objects."""

    type: object = None
    timestamp: object = None
    requestId: object = None
    sessionId: object = None
    message: msgspec.Raw = msgspec.Raw(b"")
    totalCostUSD: object = None
    hasUnknownModelCost: object = None


_LINE = msgspec.json.Decoder(_Line)
_MESSAGE = msgspec.json.Decoder(_Message)


def parse(line: bytes, state: dict[str, str], offset: int = 0, *, runtime: str = RUNTIME) -> Parsed:
    """One line: an answer's `RawSample`, a `cost-state`'s `LoggedCost`, BAD, or None (other)."""
    del offset
    # Cheap test first: most lines (prompts, tool results) are not parsed at all.
    if b'"assistant"' not in line and b'"cost-state"' not in line:
        return None
    try:
        record = _LINE.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return BAD
    session = text(record.sessionId)
    if session:
        state["session"] = session
    if record.type == "cost-state":
        cost = record.totalCostUSD
        if isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 <= cost < 1e9:
            return BAD
        return LoggedCost(
            runtime=runtime,
            session=session or state.get("session", ""),
            cost_usd=float(cost),
            unknown_model=record.hasUnknownModelCost is True,
            at=timestamp(record.timestamp) or state.get("at", ""),
        )
    if record.type != "assistant" or not record.message:
        return None
    try:
        message = _MESSAGE.decode(record.message)
    except (msgspec.DecodeError, RecursionError):
        return BAD
    model = text(message.model)
    if model == "<synthetic>":
        return None  # Claude Code's own placeholder answers: no call was made
    at = timestamp(record.timestamp)
    usage = message.usage
    if at is None or usage is None:
        return BAD
    state["at"] = at
    message_id, request_id = text(message.id), text(record.requestId)
    if not message_id and not request_id:
        return BAD  # nothing to deduplicate it by
    one_hour = count(usage.cache_creation.ephemeral_1h_input_tokens if usage.cache_creation else 0)
    counts = (
        count(usage.input_tokens),
        count(usage.output_tokens),
        count(usage.cache_read_input_tokens),
        count(usage.cache_creation_input_tokens),
    )
    if one_hour is None or None in counts:
        return BAD
    input_tokens, output_tokens, cache_read, cache_write = (c or 0 for c in counts)
    if not (input_tokens or output_tokens or cache_read or cache_write):
        return None
    return RawSample(
        at=at,
        runtime=runtime,
        provider=PROVIDER,
        model=model,
        session=session or state.get("session", ""),
        source_key=f"claude:{message_id}:{request_id}",
        input=input_tokens,
        output=output_tokens,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=min(one_hour, cache_write),
    )


class ClaudeReader:
    """Claude Code's `projects/*/<session>.jsonl`, or (runtime `demo`) the demo agent's log."""

    def __init__(self, runtime: str = RUNTIME) -> None:
        self.runtime = runtime

    def _parse(self, line: bytes, state: dict[str, str], offset: int) -> Parsed:
        return parse(line, state, offset, runtime=self.runtime)

    def read(self, path: Path, cursor: Cursor, *, max_bytes: int = 16 << 20) -> ReadResult:
        """The answers and cost-states in the complete lines after `cursor`."""
        return read_jsonl(path, cursor, self._parse, max_bytes=max_bytes)
