"""A notify program for Codex that only logs what it is given (argv, stdin) as JSONL.

Usage in Codex config: ``notify = ["<python>", "<this file>", "<log.jsonl>"]``.
Codex appends one JSON argument; the log line keeps argv after the log path.
"""

from __future__ import annotations

import json
import os
import sys
import time

if __name__ == "__main__":
    log = sys.argv[1]
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read(65536)
    record = {"t": time.time(), "argv": sys.argv[2:], "stdin": stdin, "cwd": os.getcwd()}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
