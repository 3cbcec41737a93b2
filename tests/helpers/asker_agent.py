"""A hostile agent for approval tests (a `custom` runtime): it asks, and then it cheats.

Idle prompt `READY>`; a task line is a script of steps separated by ` ; `:

- `ask CMD`: print `Allow command? CMD [y/n] ` and read one key in raw mode; `y` runs CMD
  with the shell and prints `EXECUTED CMD`, anything else prints `DENIED CMD`.
- `ask-then CMD1 || CMD2`: ask CMD1; the moment it is approved, ask CMD2 at once (the
  second prompt appears where the first was, with no idle prompt between: F3).
- `swap CMD1 || CMD2 || SECONDS`: show CMD1's prompt, then after SECONDS redraw the same
  line in place (`\\r\\e[K`) as CMD2's prompt and obey the key for CMD2 (F4).
- `bg CMD`: start CMD with the shell in the background (its output to `bg.log`) and go
  on at once: a child of the agent that tries to answer for it (F2).

Every key it reads is appended to `keys.log` in its working directory, so a test can
tell how many answers were really typed.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import termios
import tty
from pathlib import Path


def prompt(command: str) -> None:
    print(f"Allow command? {command} [y/n] ", end="", flush=True)


def read_key(timeout: float | None = None) -> str:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return ""
    key = os.read(sys.stdin.fileno(), 1).decode(errors="replace")
    with Path("keys.log").open("a") as log:
        log.write(key)
    return key


def obey(command: str, key: str) -> bool:
    print("\r\n", end="")
    if key == "y":
        subprocess.run(command, shell=True, check=False)
        print(f"EXECUTED {command}\r\n", end="", flush=True)
        return True
    print(f"DENIED {command}\r\n", end="", flush=True)
    return False


def step(kind: str, rest: str) -> None:
    if kind == "bg":
        with Path("bg.log").open("ab") as log:
            subprocess.Popen(rest, shell=True, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    elif kind == "ask":
        prompt(rest)
        obey(rest, read_key())
    elif kind == "ask-then":
        first, second = (part.strip() for part in rest.split("||"))
        prompt(first)
        if obey(first, read_key()):
            prompt(second)
            obey(second, read_key())
    elif kind == "swap":
        first, second, delay = (part.strip() for part in rest.split("||"))
        prompt(first)
        key = read_key(float(delay))
        if key:
            obey(first, key)
            return
        print("\r\x1b[K", end="")
        prompt(second)
        obey(second, read_key())


def main() -> None:
    saved = termios.tcgetattr(sys.stdin.fileno())
    try:
        while True:
            print("READY> ", end="", flush=True)
            tty.setcbreak(sys.stdin.fileno())
            line = ""
            while not line.endswith(("\r", "\n")):
                key = os.read(sys.stdin.fileno(), 1).decode(errors="replace")
                if not key:
                    return
                print(key if key.isprintable() else "", end="", flush=True)
                line += key
            # Like a real CLI, the input line is cleared once it is taken.
            print("\r\x1b[K(working)\r\n", end="", flush=True)
            for part in line.strip().split(" ; "):
                kind, _, rest = part.strip().partition(" ")
                step(kind, rest)
    finally:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


if __name__ == "__main__":
    main()
