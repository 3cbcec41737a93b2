"""Kill -9 the daemon at every step of a merge, ten times: the target is always an old or a
new commit, the queue resumes, and nothing is merged twice.

No agents: beads are seeded in review (`helpers/refinery_seed.py`), the gate is an instant
`sh` line except in the round cut while it runs, when it sleeps in a grandchild that
survives the daemon (as a pytest would). Each round starts the daemon with the refinery
paused, so what recovery left is checked before the next attempt begins, then resumes it
and waits for the daemon to die at the armed point (or kills it after a merge began).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from at_cli import AT, at, git, git_town, wait_for
from helpers.refinery_seed import Review, seed

from tundra_tui.domain.beads import Lane
from tundra_tui.store import open_store

DEADLINE = 30.0
GATE_MARK = "TUNDRA_GATE_MARK"
POINTS = ("rejected", "started", "integrated", "gate", "verified", "advanced", "merged")
"""The order matters: only the conflicting P0 bead reaches `rejected` (max_attempts 1), and
it is first in the queue."""
KILLS = 3
"""Rounds cut by a plain kill -9 after a merge began, at a random delay."""
WAITING = 3


def pause(town: Path, paused: bool) -> None:
    """Pause or resume the queue through the store (the daemon hears it from its tail)."""

    async def write() -> None:
        store = await open_store(town / ".tundra" / "town.db")
        try:
            await store.flags.set_refinery_paused(paused, actor="test", reason="between rounds")
        finally:
            await store.close()

    asyncio.run(write())


def rows(town: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def sha(town: Path, rev: str) -> str:
    return git(town, "rev-parse", rev).strip()


def daemon_pid(town: Path) -> int | None:
    shown = json.loads(at(town, "daemon", "status", "--json", check=False).stdout)
    return int(shown["pid"]) if shown.get("running") else None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")  # a zombie is gone as far as we care
    return stat.exists() and stat.read_text().split()[2] == "Z"


def marked(town: Path) -> list[int]:
    """Our gate processes still alive for this town (by their mark and working directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if f"{GATE_MARK}=".encode() in environ and cwd.startswith(str(town)):
            found.append(int(proc.name))
    return found


def up(town: Path, fault: str = "") -> int:
    """`at up` (armed at `fault`); the new daemon's pid. Recovery has run when it returns:
    the daemon recovers before it listens."""
    env = {**os.environ, "TUNDRA_FAULT": fault} if fault else None
    done = subprocess.run(
        [*AT, "--town", str(town), "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    pid = daemon_pid(town)
    assert pid is not None
    return pid


def waiting(town: Path, besides: int = 0) -> int:
    """Beads in review (the queue, once recovery closed the open attempts)."""
    return len(rows(town, "SELECT id FROM beads WHERE status = 'review' AND id != ?", (besides,)))


def results(town: Path) -> set[str]:
    return {r for (r,) in rows(town, "SELECT result_commit FROM merge_attempts") if r}


def last_started(town: Path) -> int:
    found = rows(town, "SELECT max(id) FROM events WHERE kind = 'refinery.started'")
    return int(found[0][0] or 0)


def assert_recovered(town: Path) -> None:
    """What the next daemon's recovery leaves before it merges again."""
    assert marked(town) == [], "a gate process of the killed daemon survived recovery"
    assert rows(town, "SELECT id FROM merge_attempts WHERE state != 'closed'") == []
    work = town / ".tundra" / "refinery" / "work"
    if work.exists():
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
        status = subprocess.run(
            ["git", "-C", str(work), "status", "--porcelain"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert status.returncode == 0 and status.stdout == "", status


def test_kill_9_at_every_step_of_a_merge_never_loses_or_doubles_work(tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    gate = f"test ! -e {slow} || {{ sleep 30; true; }}"
    with git_town(
        orchestra={"max_polecats": 0}, refinery={"gates": [gate], "max_attempts": 1}
    ) as town:
        (town / "c.txt").write_text("main\n")
        git(town, "add", "c.txt")
        git(town, "commit", "-q", "-m", "main's c.txt")
        initial = sha(town, "refs/heads/main")
        (town / "README.md").write_text("the operator's own edit\n")  # dirty, never touched
        index = (town / ".git" / "index").read_bytes()
        rng = random.Random(12)
        (conflicting,) = seed(
            town,
            Review(
                "conflicts with main",
                files={"c.txt": "the bead's\n"},
                base="main~1",
                lane=Lane.CRITICAL,
                priority=0,
            ),
        )
        green: list[int] = []
        for round_no, point in enumerate([*POINTS, *["kill"] * KILLS], start=1):
            topup = max(0, WAITING - waiting(town, besides=conflicting))
            green += seed(town, *(Review(f"green {round_no}.{n}") for n in range(topup)))
            pause(town, True)
            pid = up(town, "" if point == "kill" else f"refinery.{point}")
            assert_recovered(town)
            if point == "gate":
                slow.write_text("")
            seen = last_started(town)
            pause(town, False)
            if point == "kill":
                wait_for(lambda seen=seen: last_started(town) > seen, DEADLINE)
                time.sleep(rng.uniform(0, 0.3))  # picks the kill point; not synchronisation
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda pid=pid: gone(pid), DEADLINE)
            slow.unlink(missing_ok=True)
            main = sha(town, "refs/heads/main")
            assert main in {initial} | results(town), (round_no, point, main)
        up(town)
        wait_for(
            lambda: (
                waiting(town) == 0
                and not rows(town, "SELECT id FROM merge_attempts WHERE state != 'closed'")
            ),
            DEADLINE,
        )
        assert_recovered(town)
        statuses = dict(rows(town, "SELECT id, status || ':' || grade FROM beads"))
        assert statuses.pop(conflicting).startswith("escalated")
        assert set(statuses) == set(green)
        assert set(statuses.values()) == {"done:merged"}
        subjects = git(town, "log", "--format=%s", "main").splitlines()
        titles = dict(rows(town, "SELECT id, title FROM beads"))
        for bead in green:
            assert subjects.count(f"bead #{bead}: {titles[bead]}") == 1, bead
        assert not any(f"bead #{conflicting}:" in s for s in subjects)
        for ref, tip in rows(
            town, "SELECT archive_ref, branch_tip FROM merge_attempts WHERE branch_tip != ''"
        ):
            assert sha(town, ref) == tip
        for (commit,) in rows(town, "SELECT merged_commit FROM beads WHERE grade = 'merged'"):
            git(town, "merge-base", "--is-ancestor", commit, "refs/heads/main")
        listed = git(town, "worktree", "list", "--porcelain").split("\n\n")
        assert [w.splitlines()[0] for w in listed if w.strip()] == [f"worktree {town}"]
        assert (town / "README.md").read_text() == "the operator's own edit\n"
        assert (town / ".git" / "index").read_bytes() == index
        assert git(town, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
