"""A stand-in agent that runs what it is told: each line it reads is a shell command.

It shows the demo agent's idle prompt, and for each line read shows the working
spinner, runs the line with `sh -c` (inside the agent's process tree, as an agent's
tool call would), prints the output, and goes idle again. Each command's result is
also appended as one JSON line to the file named by its first argument, so a test
reads exit codes and output without scraping the screen.

The venv's bin directory (holding our `at`) goes first on PATH: the agent's
environment is allow-listed, and /usr/bin/at is POSIX `at`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def idle() -> None:
    print("\r\n[demo] idle\r\ndemo❯ ", end="", flush=True)


def main() -> None:
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    idle()
    for line in sys.stdin:
        command = line.strip()
        if not command:
            idle()
            continue
        print("\r\n⠋ Running (esc to interrupt)\r\n", end="", flush=True)
        done = subprocess.run(
            ["sh", "-c", command],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        output = (done.stdout + done.stderr).replace("\n", "\r\n")
        print(f"{output}\r\nexit {done.returncode}", end="", flush=True)
        if log is not None:
            result = {
                "command": command,
                "code": done.returncode,
                "stdout": done.stdout,
                "stderr": done.stderr,
            }
            with log.open("a") as out:
                out.write(json.dumps(result) + "\n")
        idle()


if __name__ == "__main__":
    main()
