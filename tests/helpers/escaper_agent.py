"""A hostile agent (a `custom` runtime command) whose children try to escape its stop (F6).

Usage: `escaper_agent.py PIDFILE`. It starts two long sleeps that leave everything
a stop could follow: one `setsid`s, clears its environment (`env -i`) and has no
terminal; the other is a classic daemon, a double fork whose middle process
exits at once, with every descriptor 0-255 closed and an empty environment.
Their pids and start times go to PIDFILE as JSON; then it prints its prompt and
waits, as an idle agent does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def _start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _silence() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, 256)


def setsid_env_i(sleep: str) -> int:
    """`setsid env -i sleep 1004 </dev/null >/dev/null 2>&1 &`: a child of ours, elsewhere."""
    pid = os.fork()
    if pid == 0:
        os.setsid()
        _silence()
        env = shutil.which("env") or "/usr/bin/env"
        os.execve(env, ["env", "-i", sleep, "1004"], {})
    return pid


def double_fork(sleep: str) -> int:
    """The grandchild of a fork whose middle exits at once: it is nobody's child of ours."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read)
        os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            os.closerange(0, 256)
            os.execve(sleep, ["sleep", "1005"], {})
        os.write(write, str(grandchild).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(middle, 0)
    with os.fdopen(read) as pipe:
        return int(pipe.read())


def main() -> None:
    pidfile = Path(sys.argv[1])
    sleep = shutil.which("sleep") or "/bin/sleep"
    pids = [setsid_env_i(sleep), double_fork(sleep)]
    escapers = [[pid, _start_time(pid)] for pid in pids]
    temp = pidfile.with_suffix(".tmp")
    temp.write_text(json.dumps({"agent": os.getpid(), "escapers": escapers}))
    temp.replace(pidfile)
    print("READY> ", end="", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
