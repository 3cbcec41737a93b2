"""Agent CLIs' hooks as a structured channel for state and approvals (pure parts).

Each Claude Code agent is started with `--settings <file>` naming hooks that run
`at hook-event EVENT`: a file of ours, so the user's own `.claude/` settings are
never edited (research: claude-code-hooks.md §7). A Codex agent whose CLI has
hooks (0.135.0 on, docs/channels.md) gets the same hooks as `-c` overrides, with
their trust pinned in the same overrides, so the user's `config.toml` is never
edited either. `PermissionRequest` blocks until the operator answers; every other
event only reports state. Both CLIs send the same payloads and take the same reply.
An OpenCode agent gets our plugin (opencode_plugin.js) through `OPENCODE_CONFIG_CONTENT`,
which reports state only: its approvals are still answered on the screen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tundra_tui.domain.agents import Runtime
from tundra_tui.session.detect import Detected, Detection, Evidence, from_hook_event

STATE_EVENTS = ("SessionStart", "UserPromptSubmit", "PostToolUse", "Stop", "SessionEnd")
PERMISSION_EVENT = "PermissionRequest"
CODEX_NOTIFY = "codex-notify"
"""Codex runs its `notify` program with the event's JSON as its last argument."""
PERMISSION_TIMEOUT_S = 3600
"""How long Claude Code lets the permission hook wait for the operator."""
MAX_SUBJECT = 16 * 1024


def hook_line(hook_command: Sequence[str], event: str) -> str:
    """The shell command a CLI runs for `event`: `at hook-event EVENT`, quoted."""
    return " ".join(shlex.quote(part) for part in (*hook_command, event))


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


CODEX_HOOKS_SINCE = (0, 135, 0)
"""The oldest Codex whose hooks we checked for real (docs/channels.md: 0.135.0, 0.150.1,
0.160.1, 0.169.0): the events, payloads, the reply and trust pinned from `-c`. Older
versions keep `notify` and the screen."""
CODEX_HOOK_VERSIONS = "codex 0.135.0-0.169.0 hooks"
CODEX_TRUST_SOURCE = "/<session-flags>/config.toml"
"""How Codex names the `-c` layer in a hook's trust key (`<source>:<event>:<group>:<hook>`)."""
_CODEX_EVENT_KEYS = {
    "SessionStart": "session_start",
    "UserPromptSubmit": "user_prompt_submit",
    "PostToolUse": "post_tool_use",
    "Stop": "stop",
    PERMISSION_EVENT: "permission_request",
}
"""SessionEnd is left out: Codex clamps its timeout to 3 s, which changes the trusted hash,
and it says nothing about state."""
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """`codex-cli 0.169.0` -> (0, 169, 0); None when no version number is in the text."""
    found = _VERSION.search(version)
    if found is None:
        return None
    return (int(found[1]), int(found[2]), int(found[3]))


def codex_has_hooks(version: str) -> bool:
    """Whether the Codex CLI that printed `version` (`codex --version`) has the hooks we use."""
    parsed = version_tuple(version)
    return parsed is not None and parsed >= CODEX_HOOKS_SINCE


def codex_trusted_hash(event_key: str, command: str, timeout: int) -> str:
    """The hash Codex records when a person trusts one command hook of ours (its
    `version_for_toml` of the hook's normalized identity: sorted, compact JSON, SHA-256).
    Checked against the hash Codex 0.169.0 itself wrote after "Trust all"."""
    identity = {
        "event_name": event_key,
        "hooks": [{"async": False, "command": command, "timeout": timeout, "type": "command"}],
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def codex_hook_args(hook_command: Sequence[str]) -> list[str]:
    """`-c` overrides that route Codex's hooks to `at hook-event` and trust exactly them.

    Codex runs a hook only once it is trusted by hash; the `-c` layer may hold that trust
    (`hooks.state`), so no dialog is shown and the user's config is not written. Trust
    covers these commands only: any other hook still needs the user's own review.
    """
    args: list[str] = []
    trusted: list[str] = []
    for event, key in _CODEX_EVENT_KEYS.items():
        timeout = PERMISSION_TIMEOUT_S if event == PERMISSION_EVENT else 30
        command = hook_line(hook_command, event)
        args += [
            "-c",
            f"hooks.{event}=[{{hooks=[{{type={json.dumps('command')},"
            f"command={json.dumps(command)},timeout={timeout}}}]}}]",
        ]
        digest = codex_trusted_hash(key, command, timeout)
        trusted.append(
            f"{json.dumps(f'{CODEX_TRUST_SOURCE}:{key}:0:0')}={{trusted_hash={json.dumps(digest)}}}"
        )
    return [*args, "-c", "hooks.state={" + ",".join(trusted) + "}"]


def with_codex_hooks(argv: Sequence[str], hook_command: Sequence[str]) -> list[str]:
    """`argv` with the hook overrides right after the program (options go anywhere)."""
    return [argv[0], *codex_hook_args(hook_command), *argv[1:]]


def channel_of(runtime: Runtime, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Which structured channel an agent started with `argv` and `env` reports through."""
    if runtime is Runtime.CLAUDE and "--settings" in argv:
        return "Claude Code hooks"
    if runtime is Runtime.OPENCODE and OPENCODE_HOOK_ENV in (env or {}):
        return "OpenCode plugin (state only)"
    if runtime is Runtime.CODEX:
        if any(arg.startswith(f"hooks.{PERMISSION_EVENT}=") for arg in argv):
            return "Codex hooks"
        if any(arg.startswith("notify=") for arg in argv):
            return "Codex notify (turn ends only)"
    return "none (the screen only)"


def hook_detection(runtime: Runtime, event: str, payload: Mapping[str, Any]) -> Detection | None:
    """A hook event as a detection, its rule and versions naming the CLI that sent it
    (Codex's events and payloads are Claude Code's, so one mapping reads both)."""
    if runtime is Runtime.OPENCODE:
        return opencode_detection(event, payload)
    detection = from_hook_event(event, payload)
    if detection is None or detection.evidence is None or runtime is not Runtime.CODEX:
        return detection
    evidence = detection.evidence
    rule = "codex." + evidence.rule.removeprefix("claude.")
    return dataclasses.replace(
        detection,
        evidence=dataclasses.replace(evidence, rule=rule, versions=CODEX_HOOK_VERSIONS),
    )


# --- OpenCode's plugin ------------------------------------------------------------------

OPENCODE_PLUGIN_SINCE = (1, 3, 2)
"""The oldest OpenCode whose plugin we ran and saw report every event we use (1.3.2,
1.14.41, 1.17.19, 1.18.33: docs/channels.md). Older ones are left to the screen."""
OPENCODE_PLUGIN_VERSIONS = "opencode 1.3.2-1.18.33 plugin"
OPENCODE_CONFIG_ENV = "OPENCODE_CONFIG_CONTENT"
"""OpenCode's per-run config layer, merged over the user's own files."""
OPENCODE_HOOK_ENV = "TUNDRA_OPENCODE_HOOK"
"""The command (a JSON array) our plugin runs for each report: `at hook-event`."""
OPENCODE_PLUGIN = Path(__file__).with_name("opencode_plugin.js")


def opencode_has_plugin(version: str) -> bool:
    """Whether the OpenCode that printed `version` (`opencode --version`) has the events."""
    parsed = version_tuple(version)
    return parsed is not None and parsed >= OPENCODE_PLUGIN_SINCE


def opencode_plugin_env(
    env: Mapping[str, str], hook_command: Sequence[str]
) -> dict[str, str] | None:
    """What to add to an OpenCode agent's environment so our plugin reports its state.

    Config the user gives in `OPENCODE_CONFIG_CONTENT` is kept and our plugin added to its
    list. None (no plugin) when that config is not a JSON object we can extend: the
    user's setting wins over our channel.
    """
    given = env.get(OPENCODE_CONFIG_ENV, "").strip()
    try:
        document = json.loads(given) if given else {}
    except json.JSONDecodeError:
        return None
    plugins = document.get("plugin", []) if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(plugins, list):
        return None
    ours = OPENCODE_PLUGIN.resolve().as_uri()
    if ours not in plugins:
        document = {**document, "plugin": [*plugins, ours]}
    return {
        OPENCODE_CONFIG_ENV: json.dumps(document),
        OPENCODE_HOOK_ENV: json.dumps(list(hook_command)),
    }


def opencode_detection(event: str, payload: Mapping[str, Any]) -> Detection | None:
    """One report of our OpenCode plugin as a detection, or None when it says nothing.

    `session.status` busy (or retry) is working and idle is idle; `session.idle` is idle;
    `permission.asked` is awaiting approval, with the permission and its exact patterns
    (the command); `permission.replied` means the answer was taken and the turn goes on.
    """
    state: Detected | None = None
    matched = event
    detail: str | None = None
    if event == "session.status":
        status = payload.get("status")
        kind = status.get("type") if isinstance(status, Mapping) else None
        state = {"busy": Detected.WORKING, "retry": Detected.WORKING, "idle": Detected.IDLE}.get(
            str(kind)
        )
        matched = f"session.status {kind}"
    elif event == "session.idle":
        state = Detected.IDLE
    elif event == "permission.asked":
        state = Detected.AWAITING_APPROVAL
        matched = f"permission.asked {_opencode_permission(payload)}"
        detail = json.dumps(
            {key: payload.get(key) for key in ("permission", "patterns", "metadata")},
            default=str,
            ensure_ascii=False,
        )[:MAX_SUBJECT]
    elif event == "permission.replied":
        state = Detected.WORKING
        matched = f"permission.replied {str(payload.get('reply', '?'))[:40]}"
    if state is None:
        return None
    rule = "opencode.plugin." + event.replace(".", "_")
    return Detection(state, Evidence("hook", rule, matched[:200], detail, OPENCODE_PLUGIN_VERSIONS))


def _opencode_permission(payload: Mapping[str, Any]) -> str:
    """`bash: touch approved.txt`: the permission and what it is asked for, exactly."""
    kind = str(payload.get("permission") or payload.get("type") or "?")
    metadata = payload.get("metadata")
    command = metadata.get("command") if isinstance(metadata, Mapping) else None
    if isinstance(command, str) and command:
        return f"{kind}: {command}"
    patterns = payload.get("patterns") or payload.get("pattern")
    if isinstance(patterns, list):
        return f"{kind}: {' '.join(str(p) for p in patterns)}"
    return f"{kind}: {patterns}" if isinstance(patterns, str) else kind


def permission_rule(runtime: Runtime) -> str:
    """The evidence rule of a request that came through `runtime`'s PermissionRequest hook."""
    prefix = "codex" if runtime is Runtime.CODEX else "claude"
    return f"{prefix}.hook.permission_request"


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
