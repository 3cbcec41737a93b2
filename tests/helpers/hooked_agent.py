"""A stand-in for Claude Code's hook behaviour: shows a prompt AND asks through the hook.

Like Claude Code, it paints its own approval prompt while a PermissionRequest
hook (`at hook-event PermissionRequest`) waits, and obeys whatever the hook
answers. State events go through the hook too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

AT = [sys.executable, "-m", "tundra_tui", "hook-event"]


def hook(event: str, payload: dict[str, object], timeout: str = "60") -> str:
    done = subprocess.run(
        [*AT, event, "--timeout", timeout],
        input=json.dumps({"hook_event_name": event, "cwd": os.getcwd(), **payload}),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def idle() -> None:
    print("\r\n[demo] idle\r\ndemo❯ ", end="", flush=True)


def main() -> None:
    hook("SessionStart", {"source": "startup"})
    idle()
    for line in sys.stdin:
        task = line.strip()
        hook("UserPromptSubmit", {"prompt": task})
        timeout = "60"
        if task.startswith("WAIT "):
            # `WAIT 0.5 RUN: cmd`: the hook gives up after 0.5 s, as on a short hook timeout.
            _, timeout, task = task.split(" ", 2)
        if task.startswith("NOTIFY"):
            # Codex's notify: a side thread's turn (not ours), then the turn we were given.
            for inputs in (["Generate a title"], [line.strip()]):
                note = {"type": "agent-turn-complete", "input-messages": inputs}
                subprocess.run([*AT, "codex-notify", json.dumps(note)], check=False)
        if task.startswith("RUN: "):
            command = task.removeprefix("RUN: ")
            print(
                f"Allow this command?\r\n  {command}\r\n❯ 1. Yes\r\n  2. No\r\n"
                "1/y approve · 2/n/Esc deny",
                flush=True,
            )
            reply = json.loads(
                hook(
                    "PermissionRequest",
                    {"tool_name": "Bash", "tool_input": {"command": command}},
                    timeout,
                )
            )
            decision = reply["hookSpecificOutput"]["decision"]
            print("\x1b[2J\x1b[H", end="")
            if decision["behavior"] == "allow":
                subprocess.run(command, shell=True, check=False)
                print("ran it", flush=True)
            else:
                print(f"denied: {decision.get('message', '')}", flush=True)
        hook("Stop", {"last_assistant_message": "done"})
        idle()
    Path("exited").write_text("bye")


if __name__ == "__main__":
    main()
