"""The refinery's figures: a convoy from start to all merged, and the cost of a merge beyond
its gates.

    .venv/bin/python benchmarks/bench_refinery.py [--convoy 10] [--seeded 20]

(a) A git town with demo polecats at speed 0 (approval rate 0), at most 2, gate `true`: the
    wall time from `at convoy start` to every bead of a `--convoy`-bead convoy merged.
(b) `--seeded` beads put in review directly (no agents), gate `true`: the refinery's own
    overhead per merge, `finished_at - started_at - Σ gate seconds` of each attempt (rebase
    in a fresh worktree, the store writes, the CAS, the cleanup), p50 and p95.

What a new user sees (kanban before and after a few minutes), by hand, in a private tmux:

    export XDG_DATA_HOME=$(mktemp -d)
    tmux -L demo -f /dev/null new-session -d -s d -x 140 -y 45 '.venv/bin/at tui --demo'
    sleep 5; tmux -L demo send-keys -t d 3; sleep 1; tmux -L demo capture-pane -p -t d
    sleep 180; tmux -L demo capture-pane -p -t d
    tmux -L demo kill-server
    .venv/bin/at --town $XDG_DATA_HOME/auto-tundra/demo-town-3 down

(`3` shows the Beads tab; the merge queue strip is under the board.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.refinery_seed import Review, seed_review  # noqa: E402

AT = [sys.executable, "-m", "tundra_tui"]
IDENTITY = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid"]
DEADLINE = 600.0


def at(town: Path, *argv: str) -> str:
    done = subprocess.run(
        [*AT, "--town", str(town), *argv], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"at {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def git(town: Path, *argv: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(town), *IDENTITY, *argv], capture_output=True, text=True, check=True
    )
    return done.stdout


def make_town(max_polecats: int) -> Path:
    """A git town on main with one commit, demo polecats at speed 0, gate `true`."""
    root = Path(tempfile.mkdtemp(prefix="at-bench-", dir="/tmp"))
    git(root, "init", "-q", "-b", "main")
    at(root, "init", str(root))
    (root / "tundra.toml").write_text(
        '[general]\nname = "bench"\n\n'
        f'[orchestra]\ntarget_branch = "main"\npolecat_runtime = "demo"\n'
        f"max_polecats = {max_polecats}\npolecat_retire_seconds = 5\n\n"
        '[refinery]\ngates = ["true"]\n\n'
        '[runtimes.demo]\nargs = ["--speed", "0", "--approval-rate", "0"]\n'
    )
    (root / "README.md").write_text("bench\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def rows(town: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def wait_merged(town: Path, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        done = rows(town, "SELECT count(*) FROM beads WHERE status = 'done' AND grade = 'merged'")
        if done[0][0] >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done[0][0]} of {count} merged after {DEADLINE:.0f} s")
        time.sleep(0.05)


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def convoy(size: int) -> float:
    """(a): seconds from `at convoy start` to every bead merged."""
    town = make_town(2)
    try:
        ids = [
            json.loads(at(town, "bead", "add", f"bead {n}", "--json"))["id"] for n in range(size)
        ]
        at(town, "convoy", "create", "bench")
        at(town, "convoy", "add", "bench", *map(str, ids))
        at(town, "up")
        started = time.monotonic()
        at(town, "convoy", "start", "bench")
        wait_merged(town, size)
        return time.monotonic() - started
    finally:
        subprocess.run([*AT, "--town", str(town), "down"], capture_output=True)
        subprocess.run([*AT, "--town", str(town), "daemon", "stop"], capture_output=True)
        shutil.rmtree(town, ignore_errors=True)


def overhead(count: int) -> list[float]:
    """(b): per merge, its wall time minus the time its gates ran, in ms."""
    town = make_town(0)
    try:
        asyncio.run(seed_review(town, [Review(f"seeded {n}") for n in range(count)]))
        at(town, "up")
        wait_merged(town, count)
        attempts = rows(
            town,
            "SELECT m.started_at, m.finished_at, coalesce(sum(g.seconds), 0) "
            "FROM merge_attempts m LEFT JOIN gate_results g ON g.attempt_id = m.id "
            "WHERE m.outcome = 'merged' GROUP BY m.id",
        )
        return [(stamp(end) - stamp(begin) - gates) * 1000 for begin, end, gates in attempts]
    finally:
        subprocess.run([*AT, "--town", str(town), "daemon", "stop"], capture_output=True)
        shutil.rmtree(town, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", type=int, default=10)
    parser.add_argument("--seeded", type=int, default=20)
    args = parser.parse_args()
    wall = convoy(args.convoy)
    print(f"(a) {args.convoy}-bead convoy, 2 demo polecats at speed 0, gate `true`:")
    print(f"    start to all merged {wall:.1f} s ({wall / args.convoy:.2f} s per bead)")
    spent = sorted(overhead(args.seeded))
    p95 = spent[min(len(spent) - 1, round(0.95 * (len(spent) - 1)))]
    print(f"(b) {len(spent)} seeded merges, gate `true`: overhead beyond the gate per merge")
    print(f"    p50 {statistics.median(spent):.0f} ms, p95 {p95:.0f} ms, max {spent[-1]:.0f} ms")


if __name__ == "__main__":
    main()
