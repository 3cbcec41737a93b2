"""A stand-in for Claude Code's Stop hook: mail handed over as the agent finishes a turn.

Like `hooked_agent`, it reports its state through `at hook-event` (SessionStart,
UserPromptSubmit, Stop). After each turn it calls the `Stop` hook with
`stop_hook_active` false; when the reply is `{"decision": "block", "reason": TEXT}`,
it takes TEXT as its next input and works on at once, as Claude Code does, then calls
`Stop` again with `stop_hook_active` true (which never blocks). Every input it works
on, typed or handed over, is appended to the file named by its first argument as one
JSON object a line: `{"via": "typed"|"stop_hook", "text": ...}`. A line `SLOW N`
works for N seconds first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

AT = [sys.executable, "-m", "tundra_tui", "hook-event"]
WORKING_FOR = 0.3


def hook(event: str, payload: dict[str, object]) -> str:
    done = subprocess.run(
        [*AT, event],
        input=json.dumps({"hook_event_name": event, "cwd": os.getcwd(), **payload}),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def idle() -> None:
    print("\r\n[demo] idle\r\ndemo❯ ", end="", flush=True)


def work(log: Path | None, via: str, text: str) -> None:
    if log is not None:
        with log.open("a") as out:
            out.write(json.dumps({"via": via, "text": text}) + "\n")
    # A continuation redraws the spinner line the turn already shows.
    start = "\r\x1b[2K" if via == "stop_hook" else "\r\n"
    print(f"{start}⠋ Thinking (esc to interrupt)", end="", flush=True)
    seconds = float(text.split()[1]) if text.startswith("SLOW ") else 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        print("\r\x1b[2K⠙ Thinking (esc to interrupt)", end="", flush=True)
    time.sleep(WORKING_FOR)


def blocked(reply: str) -> str | None:
    """The reason of a `block` decision, or None."""
    try:
        decision = json.loads(reply) if reply.strip() else {}
    except json.JSONDecodeError:
        return None
    if isinstance(decision, dict) and decision.get("decision") == "block":
        return str(decision.get("reason", ""))
    return None


def main() -> None:
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    hook("SessionStart", {"source": "startup"})
    idle()
    for line in sys.stdin:
        task = line.rstrip("\r\n")
        hook("UserPromptSubmit", {"prompt": task})
        work(log, "typed", task)
        reason = blocked(hook("Stop", {"stop_hook_active": False, "last_assistant_message": "ok"}))
        if reason is not None:
            work(log, "stop_hook", reason)
            hook("Stop", {"stop_hook_active": True, "last_assistant_message": "ok"})
        # Like Claude Code, the spinner stays up while the Stop hook runs: the turn ends here.
        print("\r\x1b[2Kdone.", end="", flush=True)
        idle()


if __name__ == "__main__":
    main()
