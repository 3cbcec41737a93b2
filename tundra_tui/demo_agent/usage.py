"""Token accounting and a usage log in Claude Code's JSONL format.

The demo writes what Claude Code writes (research/real-agents.md §3 "Usage log"), so the usage
watchers and cost roll-ups are exercised by the demo exactly as by the real runtime: one
`assistant` line per content block (blocks of one answer share `message.id` and its usage), and a
`cost-state` line after every turn holding the session totals and their dollar cost.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tundra_tui.usage.pricing import Price, price_for

SYSTEM_PROMPT_TOKENS = 2400
"""Tokens of the (imaginary) system prompt, written to the prompt cache by the first call."""


@dataclass
class Usage:
    """One model call's tokens, named as in the Anthropic API's `usage` object."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens

    def cost(self, price: Price) -> float:
        return price.cost(
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        )


def tokens_of(text: str) -> int:
    """A deterministic token estimate: about four characters a token, at least one."""
    return max(1, (len(text) + 3) // 4)


def town_log_path(env: Mapping[str, str]) -> Path | None:
    """Where a demo agent run by a town's daemon logs its usage: `<agent>.jsonl` in the town's
    usage directory, which the control room follows. None outside a town.

    Never Claude Code's own `~/.claude/projects`: the demo's made-up sessions would land in the
    user's real Claude history.
    """
    town, agent = env.get("TUNDRA_TOWN"), env.get("TUNDRA_AGENT")
    if not town or not agent or agent != Path(agent).name or agent in (".", ".."):
        return None
    from tundra_tui.town import Town  # only here: a bare demo agent starts without it

    # The daemon's `usage_dir` (`.tundra/usage`), named here so the agent imports no daemon.
    return Town(Path(town)).state_dir / "usage" / f"{agent}.jsonl"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UsageLog:
    """Counts tokens the way a cached conversation grows and appends the JSONL lines (to
    `path`; with None it only counts, for the status line)."""

    def __init__(
        self, path: Path | None, session_id: str, model: str, cwd: str, version: str
    ) -> None:
        self.path = path
        self.session_id = session_id
        self.model = model
        self.cwd = cwd
        self.version = version
        self.total = Usage()
        self.error: str | None = None
        self.api_ms = 0
        self.tool_ms = 0
        self._started = time.monotonic()
        self._price, self._known = price_for(model)
        self._cached = 0
        self._to_cache = SYSTEM_PROMPT_TOKENS
        self._new = 0
        self._parent: str | None = None

    @property
    def cost(self) -> float:
        return round(self.total.cost(self._price), 6)

    def _append(self, record: dict[str, Any]) -> None:
        """One `write` per line, so a reader tailing the file never sees half a line; compact
        separators, as Claude Code writes them."""
        if self.path is None:
            return
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as error:
            self.error = self.error or f"usage log {self.path}: {error.strerror or error}"

    def _envelope(self, kind: str) -> dict[str, Any]:
        line_id = str(uuid.uuid4())
        record = {
            "parentUuid": self._parent,
            "type": kind,
            "uuid": line_id,
            "timestamp": _now(),
            "sessionId": self.session_id,
            "cwd": self.cwd,
            "version": self.version,
        }
        self._parent = line_id
        return record

    def add_context(self, text: str) -> None:
        """Count text the next call sends as new input (a tool result, say)."""
        self.add_tokens(tokens_of(text))

    def add_tokens(self, count: int) -> None:
        """Count `count` tokens of new input for the next call (a file it read, say)."""
        self._new += count

    def user(self, text: str) -> None:
        """Log the operator's prompt; it is new input for the next call."""
        self.add_context(text)
        self._append({**self._envelope("user"), "message": {"role": "user", "content": text}})

    def call(
        self,
        blocks: list[dict[str, Any]],
        stop_reason: str,
        overrides: dict[str, int],
        duration_ms: int,
    ) -> Usage:
        """Account for one model call that answered with `blocks` and log one line per block.

        The prompt is the cached prefix (read), the previous call's new text (written to the
        cache now) and what is new since (uncached input); `overrides` replace any of the four.
        """
        produced = sum(tokens_of(json.dumps(block, ensure_ascii=False)) for block in blocks)
        computed = Usage(
            input_tokens=max(1, self._new),
            output_tokens=produced,
            cache_creation_input_tokens=self._to_cache,
            cache_read_input_tokens=self._cached,
        )
        usage = Usage(**{**asdict(computed), **overrides})
        self._cached += self._to_cache
        self._to_cache = computed.input_tokens + computed.output_tokens
        self._new = 0
        self.total.add(usage)
        self.api_ms += duration_ms
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        for block in blocks:
            message = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [block],
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {**asdict(usage), "service_tier": "standard"},
            }
            self._append(
                {**self._envelope("assistant"), "requestId": request_id, "message": message}
            )
        return usage

    def turn_end(self, duration_ms: int, message_count: int) -> None:
        """Log the session totals (`cost-state`) and the turn's length, as after a real turn."""
        self._append(
            {
                "type": "cost-state",
                "sessionId": self.session_id,
                "timestamp": _now(),
                "totalCostUSD": self.cost,
                "totalAPIDuration": self.api_ms,
                "totalToolDuration": self.tool_ms,
                "totalDuration": int((time.monotonic() - self._started) * 1000),
                "modelUsage": {
                    self.model: {
                        "inputTokens": self.total.input_tokens,
                        "outputTokens": self.total.output_tokens,
                        "thinkingTokens": 0,
                        "cacheReadInputTokens": self.total.cache_read_input_tokens,
                        "cacheCreationInputTokens": self.total.cache_creation_input_tokens,
                        "webSearchRequests": 0,
                        "costUSD": self.cost,
                    }
                },
                "hasUnknownModelCost": not self._known,
            }
        )
        self._append(
            {
                **self._envelope("system"),
                "subtype": "turn_duration",
                "durationMs": duration_ms,
                "messageCount": message_count,
            }
        )
