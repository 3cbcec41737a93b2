"""A stand-in for OpenCode 1.18.33 with our plugin loaded, run as a program named `opencode`.

`--version` prints the version (the first argument). Otherwise it draws OpenCode's
own screens (the version matrix's captures) and, when `OPENCODE_CONFIG_CONTENT` names
our plugin file and `TUNDRA_OPENCODE_HOOK` the command, plays the plugin's part: it
runs that command with the payloads OpenCode 1.18.33 sent
(tests/fixtures/channels/opencode-1.18.33/), in the order and with the dedup the
plugin applies (a status only when it changes). Without the plugin nothing is
reported and only the screen speaks.

`RUN: cmd` reports busy, then `permission.asked` while the screen still shows the
spinner, and draws the approval box only once a file `draw-prompt` exists in its
working directory (so a test can look at the state before the screen shows the
prompt). Enter allows once (the command runs), Esc rejects, as OpenCode does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent / "fixtures"
PAYLOADS = ROOT / "channels" / "opencode-1.18.33"
SCREENS = ROOT / "screens" / "matrix" / "opencode" / "1.18.33" / "80x24"
PLUGIN = "opencode_plugin.js"


def screen(name: str, command: str = "") -> None:
    text = (SCREENS / f"{name}.txt").read_text().replace("touch approved.txt", command or "x")
    sys.stdout.write("\x1b[2J\x1b[H" + "\r\n".join(text.splitlines()))
    sys.stdout.flush()


class Plugin:
    """What our plugin would send, or nothing when it is not loaded."""

    def __init__(self) -> None:
        content = json.loads(os.environ.get("OPENCODE_CONFIG_CONTENT") or "{}")
        named = [p for p in content.get("plugin", []) if str(p).endswith(PLUGIN)]
        loaded = bool(named) and Path(named[0].removeprefix("file://")).is_file()
        self.command: list[str] = (
            json.loads(os.environ.get("TUNDRA_OPENCODE_HOOK", "[]")) if loaded else []
        )
        self.status = ""

    def report(self, name: str, **changes: Any) -> None:
        if not self.command:
            return
        event = json.loads((PAYLOADS / f"{name}.json").read_text())
        kind, properties = event["type"], {**event["properties"], **changes}
        if kind in ("session.status", "session.idle"):
            now = "idle" if kind == "session.idle" else properties["status"]["type"]
            if now == self.status:
                return
            self.status = now
        subprocess.run([*self.command, kind, json.dumps(properties)], check=False)


def keys() -> str:
    """One line typed (ends with Enter; echoed as OpenCode's input box does), or Esc alone."""
    typed = b""
    while True:
        byte = os.read(0, 1)
        if byte in (b"\r", b"\n"):
            return typed.decode(errors="replace")
        if byte == b"\x1b":
            return "\x1b"
        typed += byte
        os.write(1, byte)


DRAW_PROMPT_WAIT = 60.0
"""Seconds the prompt waits for the test's go-ahead before the agent gives up."""


def main(version: str, argv: list[str]) -> None:
    if argv[:1] == ["--version"]:
        print(version)
        return
    plugin = Plugin()
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        screen("idle-start")
        while True:
            task = keys().strip()
            if not task.startswith("RUN: "):
                continue
            command = task.removeprefix("RUN: ")
            plugin.report("session.status-busy")
            screen("working-before_first_token")
            asked = json.loads((PAYLOADS / "permission.asked.json").read_text())["properties"]
            plugin.report("permission.asked", patterns=[command], metadata={"command": command})
            deadline = time.monotonic() + DRAW_PROMPT_WAIT
            while not Path("draw-prompt").exists():  # polled: the test creates it when ready
                if time.monotonic() > deadline:
                    sys.exit("draw-prompt never came")
                time.sleep(0.02)
            screen("awaiting_approval-shell", command)
            answer = keys()
            reply = "reject" if answer == "\x1b" else "once"
            plugin.report("permission.replied", requestID=asked["id"], reply=reply)
            screen("working-before_first_token")
            if reply == "once":
                subprocess.run(command, shell=True, check=False)
            plugin.report("session.status-idle")
            plugin.report("session.idle")
            screen("idle-after_answer", command)
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
