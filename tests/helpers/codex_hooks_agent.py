"""A stand-in for Codex CLI 0.169.0's hook channel, run as a program named `codex`.

`--version` prints `codex-cli <version>` (the first argument). Otherwise it reads
the `-c hooks.<Event>=…` and `-c hooks.state=…` overrides as Codex does: a hook runs
only when its trust entry holds the hash of its normalized identity (the algorithm
of Codex's `version_for_toml`, written out here on its own), and gets the payload
Codex 0.169.0 sent (tests/fixtures/channels/codex-0.169.0/) on stdin. `RUN: cmd`
asks through the PermissionRequest hook while the screen says only that a hook
runs, and obeys the reply, as the real CLI does. `QUIET RUN: cmd` draws the idle
screen instead while the hook waits (Codex 0.150.1's screen can read idle then).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent.parent / "fixtures" / "channels" / "codex-0.169.0"
SOURCE = "/<session-flags>/config.toml"
KEYS = {
    "SessionStart": "session_start",
    "UserPromptSubmit": "user_prompt_submit",
    "PermissionRequest": "permission_request",
    "PostToolUse": "post_tool_use",
    "Stop": "stop",
}


def overrides(argv: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for flag, item in itertools.pairwise(argv):
        if flag == "-c" and "=" in item:
            key, value = item.split("=", 1)
            found[key] = tomllib.loads(f"v = {value}")["v"]
    return found


def trusted_hooks(argv: list[str]) -> dict[str, str]:
    """Event -> command, for the hooks whose trust entry matches (Codex's rule)."""
    given = overrides(argv)
    state = given.get("hooks.state", {})
    hooks = {}
    for event, key in KEYS.items():
        groups = given.get(f"hooks.{event}")
        if not groups:
            continue
        handler = groups[0]["hooks"][0]
        identity = {
            "event_name": key,
            "hooks": [
                {
                    "async": False,
                    "command": handler["command"],
                    "timeout": handler.get("timeout", 600),
                    "type": "command",
                }
            ],
        }
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        if state.get(f"{SOURCE}:{key}:0:0", {}).get("trusted_hash") == digest:
            hooks[event] = handler["command"]
    return hooks


def payload(event: str, **fields: object) -> dict[str, object]:
    recorded = dict(json.loads((FIXTURES / f"{event}.json").read_text()))
    return {**recorded, "cwd": os.getcwd(), **fields}


def main(version: str, argv: list[str]) -> None:
    if argv[:1] == ["--version"]:
        print(f"codex-cli {version}")
        return
    hooks = trusted_hooks(argv)
    untrusted = {k for a in argv if a.startswith("hooks.") for k in [a.split("=")[0]]}
    if untrusted - {f"hooks.{e}" for e in hooks} - {"hooks.state"}:
        print("Hooks need review", flush=True)  # Codex asks a person; nothing runs

    def hook(event: str, **fields: object) -> dict[str, Any]:
        if event not in hooks:
            return {}
        done = subprocess.run(
            hooks[event],
            shell=True,
            input=json.dumps(payload(event, **fields)),
            capture_output=True,
            text=True,
            check=False,
        )
        return dict(json.loads(done.stdout)) if done.stdout.strip() else {}

    def idle() -> None:
        print("\x1b[2J\x1b[H  >_ OpenAI Codex (v0.169.0)\r\n\r\n› Ask Codex to do anything\r\n")
        print("  fake-model default · work\r\n  ← for agents · ? for shortcuts", flush=True)

    idle()
    for turn, line in enumerate(sys.stdin):
        task = line.strip()
        if turn == 0:
            hook("SessionStart")  # Codex 0.169.0 starts its session with the first prompt
        hook("UserPromptSubmit", prompt=task)
        quiet = task.startswith("QUIET ")
        task = task.removeprefix("QUIET ")
        if task.startswith("RUN: "):
            command = task.removeprefix("RUN: ")
            if quiet:
                idle()
            else:
                print(f"\x1b[2J\x1b[H› {task}\r\n• Working (1s • esc to interrupt) · Running hook")
                print("› Ask Codex to do anything", flush=True)
            tool_input = {"command": command, "description": f"Allow running `{command}`?"}
            reply = hook("PermissionRequest", tool_input=tool_input)
            decision = reply.get("hookSpecificOutput", {}).get("decision", {})
            if decision.get("behavior") == "allow":
                subprocess.run(command, shell=True, check=False)
                hook("PostToolUse", tool_input={"command": command}, tool_response="")
                print("• Ran it", flush=True)
            else:
                print(f"• Blocked by hook: {decision.get('message', '')}", flush=True)
        hook("Stop", last_assistant_message="Done.")
        idle()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
