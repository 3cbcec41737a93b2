"""The daemon's wire format: one JSON object per line, each carrying the protocol version.

Requests:  {"v": 1, "id": 7, "op": "spawn", "args": {...}}
Responses: {"v": 1, "id": 7, "ok": true, "result": ...} or {"v": 1, "id": 7, "ok": false,
           "error": "one line"}
Events:    {"v": 1, "event": "state", ...} pushed to subscribed connections.

A peer speaking another version gets one error line and is disconnected, so a
stale client never misreads a newer daemon (or the reverse).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tundra_tui.domain.errors import TundraError

VERSION = 1
MAX_LINE = 4 * 1024 * 1024
"""The longest line either side accepts; a full screen of a large terminal fits easily."""

OPS = frozenset(
    {
        "ping",
        "status",
        "spawn",
        "stop",
        "restart",
        "send_text",
        "send_keys",
        "resize",
        "approve",
        "deny",
        "approvals",
        "screen",
        "agents",
        "subscribe",
        "shutdown",
        "nudge",
        "hook",
    }
)


class ProtocolError(TundraError):
    """A malformed line, an unknown operation or a version mismatch."""


@dataclass(frozen=True, slots=True)
class Request:
    """One operation asked of the daemon."""

    id: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)


def encode(message: dict[str, Any]) -> bytes:
    """One line of JSON with the version stamped in; control characters stay escaped."""
    return (json.dumps({"v": VERSION, **message}, ensure_ascii=True) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line and check its version."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message exceeds {MAX_LINE} bytes")
    try:
        message = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProtocolError(f"malformed message: {error}") from error
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    version = message.get("v")
    if version != VERSION:
        raise ProtocolError(
            f"protocol version {version!r} is not supported (this side speaks {VERSION}); "
            "upgrade or restart auto-tundra so both sides match"
        )
    return message


def parse_request(message: dict[str, Any]) -> Request:
    """Validate a decoded message as a request."""
    op = message.get("op")
    request_id = message.get("id")
    args = message.get("args", {})
    if not isinstance(request_id, int):
        raise ProtocolError("a request needs an integer id")
    if op not in OPS:
        raise ProtocolError(f"unknown operation {op!r}")
    if not isinstance(args, dict):
        raise ProtocolError("args must be an object")
    return Request(request_id, str(op), args)
