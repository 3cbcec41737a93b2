"""A stand-in Codex that draws recorded screens, run as a program named `codex`.

`--version` prints `codex-cli <version>` (the first argument; one before 0.135.0 gets
no hooks, so the screen alone decides). Otherwise it draws Codex's recorded idle
screen, then, when a file `ask-screen` exists in its working directory, the recorded
screen whose path that file holds (an approval prompt), and waits for input. It
answers nothing: tests read what the daemon made of the screen.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

IDLE = Path(__file__).parent.parent / "fixtures/screens/matrix/codex/0.169.0/80x24/idle-start.txt"
WAIT = 60.0
"""Seconds to wait for the test's `ask-screen` before giving up."""


def draw(path: Path) -> None:
    rows = path.read_text().splitlines()
    sys.stdout.write("\x1b[2J\x1b[H" + "\r\n".join(rows))
    sys.stdout.flush()


def main(version: str, argv: list[str]) -> None:
    if "--version" in argv:
        print(f"codex-cli {version}")
        return
    draw(IDLE)
    ask = Path("ask-screen")
    deadline = time.monotonic() + WAIT
    while not ask.exists():  # polled: the test writes it when ready
        if time.monotonic() > deadline:
            sys.exit("ask-screen never came")
        time.sleep(0.02)
    draw(Path(ask.read_text().strip()))
    while os.read(0, 1024):
        pass


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
