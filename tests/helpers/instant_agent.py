"""A stand-in agent whose turns are over before anyone looks, and never show working.

It shows the demo agent's idle prompt and echoes what is typed. In `instant` mode an
Enter leaves the typed line where it is (as Claude Code and the demo keep `❯ task`),
prints a few lines of answer and a fresh prompt at once: no spinner, no state but
idle ever shows. In `deaf` mode it ignores Enter: the text stays in the input line.
An Enter is logged to the file named by the second argument, so a test can act the
moment it arrives.
"""

from __future__ import annotations

import os
import sys
import tty

IDLE = "\r\n[demo] idle\r\ndemo❯ "


def main() -> None:
    mode, log = sys.argv[1], sys.argv[2]
    tty.setraw(0)
    os.write(1, ("instant agent" + IDLE).encode())
    line = ""
    while data := os.read(0, 4096):
        for char in data.decode(errors="replace"):
            if char != "\r":
                line += char
                os.write(1, char.encode())
                continue
            with open(log, "a") as out:
                out.write(f"enter {line!r}\n")
            if mode == "deaf" or not line.strip():
                continue
            answer = "".join(f"\r\nanswer line {n}" for n in range(4))
            os.write(1, (answer + IDLE).encode())
            line = ""


if __name__ == "__main__":
    main()
