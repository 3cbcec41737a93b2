"""A stand-in agent that takes every input and never reports on its work.

It shows the demo agent's idle prompt; for each line it reads it shows the working
spinner for a moment, appends the line to the file named by its first argument (one
JSON string a line, so a test counts exactly what was typed into it), and goes idle
again. It never runs `at submit`: the witness has to remind it, then escalate.

When a turn ends with input already waiting (typed while it worked), it logs
`{"typed_while_working": true}` first: mail must never be typed into a working agent.

A line `STALL` shows the spinner and then prints nothing more, ever: a stalled agent.
A line `SLOW N` works for N seconds (the spinner redrawn as it goes) before going idle.

With `--quick` after the log file, each turn but STALL and SLOW is over at once: no spinner,
just `noted.` and the prompt again, a turn too short for any screen reading to see it work.
"""

from __future__ import annotations

import json
import select
import sys
import time
from pathlib import Path

WORKING_FOR = 0.3
"""How long each turn shows the spinner: long enough for detection to see it work."""


def idle() -> None:
    print("\r\n[demo] idle\r\ndemo❯ ", end="", flush=True)


def spin(seconds: float) -> None:
    """Work visibly: the spinner redrawn every tenth of a second (output keeps coming)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        print("\r\x1b[2K⠙ Thinking (esc to interrupt)", end="", flush=True)


def main() -> None:
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    quick = "--quick" in sys.argv[2:]
    idle()
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        if log is not None:
            with log.open("a") as out:
                out.write(json.dumps(text) + "\n")
        if not text.strip():
            idle()
            continue
        if quick and not text.startswith(("STALL", "SLOW ")):
            print("\r\nnoted.", end="", flush=True)
            idle()
            continue
        print("\r\n⠋ Thinking (esc to interrupt)", end="", flush=True)
        if text.strip() == "STALL":
            while True:
                time.sleep(3600)
        if text.startswith("SLOW "):
            spin(float(text.split()[1]))
        time.sleep(WORKING_FOR)
        if log is not None and select.select([sys.stdin], [], [], 0)[0]:
            with log.open("a") as out:
                out.write(json.dumps({"typed_while_working": True}) + "\n")
        print("\r\x1b[2Knoted.", end="", flush=True)  # the spinner line erased, as agents do
        idle()


if __name__ == "__main__":
    main()
