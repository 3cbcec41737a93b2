"""Reading Codex CLI's session rollouts (`sessions/YYYY/MM/DD/rollout-*.jsonl`).

One `token_usage_record` per model response carries that response's tokens; it is keyed by its
`response_id`. A forked session's rollout replays its parent's history, records included, with
the same ids and timestamps, so keying by response (never by file) counts a fork's replayed
calls once, and running totals (`total_token_usage`) are never summed (ccusage 1349, 1369).
Older rollouts have only `event_msg/token_count` events; a file with no record falls back to
their `last_token_usage`, keyed by time and running total (replayed copies repeat both).
OpenAI counts cached input inside `input_tokens`: our input is the uncached part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from tundra_tui.usage.jsonl import BAD, Parsed, count, read_jsonl, text, timestamp
from tundra_tui.usage.records import Cursor, RawSample, ReadResult

RUNTIME: Final = "codex"
PROVIDER: Final = "openai"


class _Usage(msgspec.Struct):
    input_tokens: object = 0
    cached_input_tokens: object = 0
    cache_write_input_tokens: object = 0
    output_tokens: object = 0
    total_tokens: object = 0


class _Info(msgspec.Struct):
    total_token_usage: _Usage | None = None
    last_token_usage: _Usage | None = None


class _Payload(msgspec.Struct):
    type: object = None
    id: object = None
    cwd: object = None
    model: object = None
    timestamp: object = None
    thread_id: object = None
    response_id: object = None
    usage: _Usage | None = None
    info: _Info | None = None


class _Line(msgspec.Struct):
    timestamp: object = None
    type: object = None
    payload: _Payload | None = None


_LINE = msgspec.json.Decoder(_Line)
_WANTED = (b'"token_usage_record"', b'"token_count"', b'"session_meta"', b'"turn_context"')


def parse(line: bytes, state: dict[str, str], offset: int = 0) -> Parsed:
    """One rollout line: a response's `RawSample`, BAD, or None (others; state lines update
    the file's session, cwd and model)."""
    del offset
    if not any(marker in line for marker in _WANTED):
        return None
    try:
        record = _LINE.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return BAD
    payload = record.payload
    if payload is None:
        return BAD
    if record.type == "session_meta":
        # A fork replays its parent's lines, meta included: the file's own meta comes first.
        if "session" not in state:
            state["session"] = text(payload.id)
            state["cwd"] = text(payload.cwd)
            state["started"] = timestamp(payload.timestamp) or timestamp(record.timestamp) or ""
        return None
    if record.type == "turn_context":
        model = text(payload.model)
        if model:
            state["model"] = model
        return None
    at = timestamp(record.timestamp)
    if record.type == "token_usage_record":
        state["records"] = "1"
        response = text(payload.response_id)
        if at is None or payload.usage is None or not response:
            return BAD
        return _sample(payload.usage, at, f"codex:{response}", text(payload.thread_id), state)
    if record.type == "event_msg" and payload.type == "token_count":
        if "records" in state or payload.info is None:
            return None  # the records have it; or a rate-limit-only event
        last, total = payload.info.last_token_usage, payload.info.total_token_usage
        if at is None or last is None or total is None:
            return BAD
        running = count(total.total_tokens)
        if running is None:
            return BAD
        if state.get("tc_total") == str(running):
            return None  # the same event emitted again
        state["tc_total"] = str(running)
        return _sample(last, at, f"codex:tc:{record.timestamp}:{running}", "", state)
    return None


def _sample(usage: _Usage, at: str, key: str, thread: str, state: dict[str, str]) -> Parsed:
    counts = (
        count(usage.input_tokens),
        count(usage.cached_input_tokens),
        count(usage.cache_write_input_tokens),
        count(usage.output_tokens),
    )
    if None in counts:
        return BAD
    input_tokens, cached, cache_write, output = (c or 0 for c in counts)
    if not (input_tokens or output or cache_write):
        return None
    return RawSample(
        at=at,
        runtime=RUNTIME,
        provider=PROVIDER,
        model=state.get("model", ""),
        session=thread or state.get("session", ""),
        source_key=key,
        input=max(input_tokens - cached, 0),
        output=output,
        cache_read=min(cached, input_tokens),
        cache_write=cache_write,
    )


class CodexReader:
    """Codex rollouts, one file per session (a fork is its own file)."""

    runtime = RUNTIME

    def read(self, path: Path, cursor: Cursor, *, max_bytes: int = 16 << 20) -> ReadResult:
        """The responses in the complete lines after `cursor`."""
        return read_jsonl(path, cursor, parse, max_bytes=max_bytes)
