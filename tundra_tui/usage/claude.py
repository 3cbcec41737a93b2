"""Reading Claude Code's JSONL usage log (and the demo agent's, which writes the same format).

Only `assistant` lines cost money. Claude Code writes one line per content block, and every
block of one answer repeats the answer's `message.id` and its whole `usage`, so an answer is
counted once, keyed by its message id (research/real-agents.md §3 "Usage log"). The log is
written by another program and may be hostile or half-written: a line that is not what we
expect is skipped, never raised about.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tundra_tui.domain.clock import iso
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.usage.pricing import price_for

RUNTIME = "claude"
MAX_LINE_BYTES = 4 << 20
"""Longer lines are skipped unparsed; assistant lines are far shorter, tool results may not be."""
MAX_TOKENS = 10**9
"""More tokens than any call can use: such a count is corrupt (and would overflow SQLite)."""
MAX_MODEL_CHARS = 200
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def parse_line(line: bytes | str, *, agent: str, runtime: str = RUNTIME) -> UsageSample | None:
    """The usage of one log line, or None for any line that is not a well-formed paid answer."""
    raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    # Cheap tests first: most lines (user prompts, tool results) are skipped without parsing.
    if len(raw) > MAX_LINE_BYTES or b'"assistant"' not in raw or b'"usage"' not in raw:
        return None
    try:
        record = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("type") != "assistant":
        return None
    message = record.get("message")
    if not isinstance(message, dict):
        return None
    key = _source_key(message, record)
    at = _timestamp(record.get("timestamp"))
    tokens = _tokens(message.get("usage"))
    if key is None or at is None or tokens is None or not any(tokens):
        return None
    model = message.get("model")
    model = model[:MAX_MODEL_CHARS] if isinstance(model, str) else ""
    input_tokens, output_tokens, cache_write, cache_read = tokens
    price, _known = price_for(model)
    return UsageSample(
        at=at,
        agent=agent,
        model=model,
        runtime=runtime,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cost_usd=round(price.cost(input_tokens, output_tokens, cache_write, cache_read), 8),
        source_key=key,
    )


def parse_lines(
    lines: Iterable[bytes | str], *, agent: str, runtime: str = RUNTIME
) -> list[UsageSample]:
    """Every answer's usage in `lines`, each answer once (its first line wins)."""
    samples: dict[str, UsageSample] = {}
    for line in lines:
        sample = parse_line(line, agent=agent, runtime=runtime)
        if sample is not None and sample.source_key not in samples:
            samples[sample.source_key] = sample
    return list(samples.values())


def _source_key(message: dict[str, Any], record: dict[str, Any]) -> str | None:
    """`claude:<message id>`, else the request id; a line with neither cannot be deduplicated."""
    message_id = message.get("id")
    if isinstance(message_id, str) and 0 < len(message_id) <= 200:
        return f"claude:{message_id}"
    request_id = record.get("requestId")
    if isinstance(request_id, str) and 0 < len(request_id) <= 200:
        return f"claude:req:{request_id}"
    return None


def _timestamp(value: object) -> str | None:
    """Claude's `2026-11-22T02:25:39.423Z` in the store's sortable form; naive means UTC."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return iso(moment)
    except (ValueError, OverflowError):
        return None


def _tokens(usage: object) -> tuple[int, int, int, int] | None:
    """Input, output, cache-write and cache-read counts; None if any is not a sane count."""
    if not isinstance(usage, dict):
        return None
    counts: list[int] = []
    for name in _USAGE_FIELDS:
        value = usage.get(name)
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        if not 0 <= value <= MAX_TOKENS:
            return None
        counts.append(value)
    return counts[0], counts[1], counts[2], counts[3]
