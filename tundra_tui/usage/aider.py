"""Reading Aider's analytics log (`--analytics-log FILE`, which `at` asks for at launch).

One JSON line per event; `message_send` has the exact tokens and Aider's own cost of the call
(research/real-agents.md §5). The log has no ids, but `at` gives every launch a file of its
own, so a call is keyed by the file (a hash of its absolute path) and the line's byte offset.
Not by its content: two agents started in the same second write the same first lines.
`main_model` is litellm's `provider/model`.
"""

from __future__ import annotations

import hashlib
import os
from functools import partial
from pathlib import Path
from typing import Final

import msgspec

from tundra_tui.usage.jsonl import BAD, Parsed, count, read_jsonl, text, unix_time
from tundra_tui.usage.records import Cursor, RawSample, ReadResult

RUNTIME: Final = "aider"


class _Properties(msgspec.Struct):
    main_model: object = None
    prompt_tokens: object = 0
    completion_tokens: object = 0
    cost: object = None


class _Line(msgspec.Struct):
    event: object = None
    properties: _Properties | None = None
    time: object = None


_LINE = msgspec.json.Decoder(_Line)


def split_model(name: str) -> tuple[str, str]:
    """litellm's `openai/gpt-5.5` as (provider, model); a bare name has no provider."""
    provider, slash, model = name.partition("/")
    return (provider, model) if slash and model else ("", name)


def file_key(path: Path | str) -> str:
    """What names a log in its calls' keys: a hash of its absolute path."""
    return hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]


def parse(line: bytes, state: dict[str, str], offset: int = 0, *, file: str = "") -> Parsed:
    """One analytics line of the log `file` (its `file_key`): a `message_send`'s `RawSample`,
    BAD, or None (other events)."""
    if b"message_send" not in line:
        return None
    try:
        record = _LINE.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return BAD
    if record.event != "message_send":
        return None
    props, at = record.properties, unix_time(record.time)
    if props is None or at is None:
        return BAD
    prompt, completion = count(props.prompt_tokens), count(props.completion_tokens)
    cost = props.cost
    if prompt is None or completion is None:
        return BAD
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)):
        return BAD
    if not (prompt or completion):
        return None
    provider, model = split_model(text(props.main_model))
    return RawSample(
        at=at,
        runtime=RUNTIME,
        provider=provider,
        model=model,
        session=file,
        source_key=f"aider:{file}:{offset}",
        input=prompt,
        output=completion,
        logged_cost_usd=float(cost) if cost is not None and 0 <= cost < 1e9 else None,
    )


class AiderReader:
    """One launch's analytics log."""

    runtime = RUNTIME

    def read(self, path: Path, cursor: Cursor, *, max_bytes: int = 16 << 20) -> ReadResult:
        """The calls in the complete lines after `cursor`."""
        return read_jsonl(path, cursor, partial(parse, file=file_key(path)), max_bytes=max_bytes)
