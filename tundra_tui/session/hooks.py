"""Claude Code's hooks as a structured channel for state and approvals (pure parts).

Each Claude Code agent is started with `--settings <file>` naming hooks that run
`at hook-event EVENT`: a file of ours, so the user's own `.claude/` settings are
never edited (research: claude-code-hooks.md §7). `PermissionRequest` blocks
until the operator answers; every other event only reports state.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATE_EVENTS = ("SessionStart", "UserPromptSubmit", "PostToolUse", "Stop", "SessionEnd")
PERMISSION_EVENT = "PermissionRequest"
CODEX_NOTIFY = "codex-notify"
"""Codex runs its `notify` program with the event's JSON as its last argument."""
PERMISSION_TIMEOUT_S = 3600
"""How long Claude Code lets the permission hook wait for the operator."""
MAX_SUBJECT = 16 * 1024


def claude_settings(hook_command: Sequence[str]) -> dict[str, Any]:
    """The settings document that routes Claude Code's hooks to `at hook-event`."""
    base = " ".join(shlex.quote(part) for part in hook_command)

    def entry(event: str, timeout: int) -> list[dict[str, Any]]:
        return [
            {
                "matcher": "*",
                "hooks": [{"type": "command", "command": f"{base} {event}", "timeout": timeout}],
            }
        ]

    hooks = {event: entry(event, 30) for event in STATE_EVENTS}
    hooks[PERMISSION_EVENT] = entry(PERMISSION_EVENT, PERMISSION_TIMEOUT_S)
    return {"disableAllHooks": False, "hooks": hooks}


def codex_notify_args(hook_command: Sequence[str]) -> list[str]:
    """`-c notify=[...]`: Codex's per-run config override that names our notify program."""
    program = json.dumps([*hook_command, CODEX_NOTIFY])
    return ["-c", f"notify={program}"]


@dataclass(frozen=True, slots=True)
class PermissionAsk:
    """What a PermissionRequest asks, exactly as the agent sent it."""

    tool: str
    subject: str
    cwd: str


def permission_ask(payload: Mapping[str, Any]) -> PermissionAsk:
    """Read the tool and its exact argument (command, file or the whole input) from a payload."""
    tool = str(payload.get("tool_name") or "")
    tool_input = payload.get("tool_input")
    subject = ""
    if isinstance(tool_input, Mapping):
        for key in ("command", "file_path", "path", "url", "pattern"):
            value = tool_input.get(key)
            if isinstance(value, str) and value:
                subject = value
                break
        else:
            subject = json.dumps(tool_input, sort_keys=True, ensure_ascii=False)
    elif tool_input is not None:
        subject = json.dumps(tool_input, ensure_ascii=False)
    return PermissionAsk(tool, subject[:MAX_SUBJECT], str(payload.get("cwd") or ""))


def permission_reply(allow: bool, message: str = "") -> dict[str, Any]:
    """The JSON Claude Code expects on stdout from a PermissionRequest hook."""
    decision: dict[str, Any] = {"behavior": "allow" if allow else "deny"}
    if not allow:
        decision["message"] = message or "Denied by the operator."
    return {"hookSpecificOutput": {"hookEventName": PERMISSION_EVENT, "decision": decision}}


def state_payload(event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a state event worth keeping in the audit log (no transcript text)."""
    kept = {"event": event}
    for key in ("session_id", "tool_name", "source", "reason"):
        value = payload.get(key)
        if isinstance(value, str):
            kept[key] = value[:200]
    return kept
