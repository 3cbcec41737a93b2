"""The whole loop, end to end, in one daemon run: dispatch, work, submit, gates, merge,
rework, escalation, cleanup, next bead (issue 12's test; it holds issue 11's too).

A git town with a real pytest gate (`helpers/gate_repo.py`) and demo polecats at speed 0,
at most two. Seven beads: X and Y (P0) both add a line to CHANGELOG.md from the same main,
so the second to merge conflicts and is reworked (the refinery waits, paused, until both have
their branch: a polecat slow to start would otherwise branch from main after the first merged,
and not conflict); Z leaves a TODO the gate refuses once;
E always does, and is escalated after two attempts; three plain beads, one in a convoy `k`
the test starts after X merges, one blocked by Z. The operator's checkout is on main and
dirty the whole time: the refinery never touches it. The test plays the operator only by
resuming the refinery and starting the convoy; a subscribed client counts live polecats at
every state change.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from at_cli import at, git, git_town
from helpers.gate_repo import PYTEST_GATE, write_gate_repo
from test_dispatch_e2e import recording

DEADLINE = 150.0
FINAL = {"done:merged"}


def add(town: Path, title: str, *argv: str) -> int:
    made: dict[str, Any] = json.loads(at(town, "bead", "add", title, *argv, "--json").stdout)
    return int(made["id"])


def beads(town: Path) -> dict[int, dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(at(town, "bead", "list", "--json").stdout)
    return {b["id"]: b for b in listed}


def rows(town: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def outcomes(town: Path, bead: int) -> list[str]:
    found = rows(town, "SELECT outcome FROM merge_attempts WHERE bead_id = ? ORDER BY n", (bead,))
    return [o for (o,) in found]


def worktrees(town: Path) -> list[str]:
    listed = git(town, "worktree", "list", "--porcelain").split("\n\n")
    return [w.splitlines()[0].removeprefix("worktree ") for w in listed if w.strip()]


def polecat_branches(town: Path) -> list[str]:
    return git(town, "branch", "--list", "polecat/*", "--format=%(refname:short)").split()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_refinery_takes_seven_beads_to_merged_or_escalated_by_itself() -> None:
    with git_town(
        orchestra={"max_polecats": 2, "polecat_retire_seconds": 1},
        refinery={"gates": [PYTEST_GATE], "max_attempts": 2},
    ) as town:
        write_gate_repo(town, extra={"CHANGELOG.md": "# Changelog\n"})
        (town / "README.md").write_text("the operator's own edit\n")
        (town / "notes.txt").write_text("untracked, the operator's\n")
        index = digest(town / ".git" / "index")
        x = add(town, "X: a changelog line", "-p", "0", "--label", "demo-changelog")
        y = add(town, "Y: another changelog line", "-p", "0", "--label", "demo-changelog")
        z = add(town, "Z: fails its gate once", "--label", "demo-gate-fails-once")
        free = add(town, "plain: free")
        in_k = add(town, "plain: in convoy k")
        after_z = add(town, "plain: waits for Z", "--blocked-by", str(z))
        e = add(town, "E: always fails its gate", "--label", "demo-gate-fails-always")
        at(town, "convoy", "create", "k")
        at(town, "convoy", "add", "k", str(in_k))
        merged = [x, y, z, free, in_k, after_z]
        at(town, "refinery", "pause", "--reason", "until X and Y have branches")
        with recording(town) as recorder:
            at(town, "up", timeout=60)
            started, paused = False, True
            deadline = time.monotonic() + DEADLINE
            while True:
                now = beads(town)
                if paused and now[x]["branch"] and now[y]["branch"]:
                    at(town, "refinery", "resume")
                    paused = False
                if now[x]["status"] == "done" and not started:
                    at(town, "convoy", "start", "k")
                    started = True
                states = {n: f"{now[n]['status']}:{now[n]['grade']}" for n in now}
                finished = (
                    all(states[n] in FINAL for n in merged)
                    and now[e]["status"] == "escalated"
                    and worktrees(town) == [str(town)]
                )
                if finished and polecat_branches(town) == [now[e]["branch"]]:
                    break
                assert recorder.error is None, recorder.error
                if time.monotonic() > deadline:
                    raise AssertionError(f"{states} {worktrees(town)} {polecat_branches(town)}")
                time.sleep(0.2)  # the operator's pace; the loop has a deadline

        # Six merged, each once, each reachable from main.
        subjects = git(town, "log", "--format=%s", "main").splitlines()
        for bead in merged:
            commit = now[bead]["merged_commit"]
            assert commit, bead
            git(town, "merge-base", "--is-ancestor", commit, "refs/heads/main")
            assert subjects.count(f"bead #{bead}: {now[bead]['title']}") == 1, (bead, subjects)
        assert not any(s.startswith(f"bead #{e}:") for s in subjects)

        # Every tip ever submitted is kept by its attempt's archive ref.
        attempts = rows(town, "SELECT branch_tip, archive_ref FROM merge_attempts")
        assert len(attempts) >= 9
        for tip, ref in attempts:
            git(town, "merge-base", "--is-ancestor", tip, ref)

        # Z: red once, reworked by mail, then merged.
        assert outcomes(town, z) == ["gate_failed", "merged"]
        mails = rows(
            town,
            "SELECT delivered_at FROM mail WHERE sender = 'refinery' AND subject = ?",
            (f"rework #{z}: gate",),
        )
        assert len(mails) == 1 and mails[0][0], mails

        # X and Y: one merged first, the other conflicted, was rebased and merged.
        pair = sorted([outcomes(town, x), outcomes(town, y)])
        assert pair == [["conflict", "merged"], ["merged"]], pair
        changelog = git(town, "show", "main:CHANGELOG.md").splitlines()
        assert f"- #{x} {now[x]['title']}" in changelog
        assert f"- #{y} {now[y]['title']}" in changelog

        # E: escalated after two counted attempts, and the operator was told.
        counted = rows(
            town, "SELECT count(*) FROM merge_attempts WHERE bead_id = ? AND counted", (e,)
        )
        assert counted == [(2,)] and outcomes(town, e) == ["gate_failed", "gate_failed"]
        told = rows(
            town,
            "SELECT subject FROM mail WHERE recipient = 'operator' AND sender = 'refinery'",
        )
        assert any(f"#{e}" in s for (s,) in told), told

        # The operator's checkout: files, index and branch untouched; its base remembered.
        assert (town / "README.md").read_text() == "the operator's own edit\n"
        assert (town / "notes.txt").read_text() == "untracked, the operator's\n"
        assert digest(town / ".git" / "index") == index
        assert git(town, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
        git(town, "rev-parse", "--verify", "refs/tundra/checkout-base/main")

        assert rows(town, "SELECT status FROM convoys WHERE name = 'k'") == [("completed",)]

        # Dispatch (issue 11): never before blockers were done or the convoy started; never
        # more than two polecats; never two live hand-overs of one bead.
        hooks = rows(town, "SELECT bead_id, id FROM events WHERE kind = 'bead.hook'")
        dones = dict(rows(town, "SELECT bead_id, id FROM events WHERE kind = 'bead.done'"))
        [(start,)] = rows(town, "SELECT id FROM events WHERE kind LIKE 'convoy.start%'")
        for bead, hooked in hooks:
            if bead == after_z:
                assert hooked > dones[z]
            if bead == in_k:
                assert hooked > start
        assert recorder.seen and recorder.most <= 2, (recorder.most, recorder.seen)
        assert rows(town, "SELECT count(*) FROM dispatches WHERE state != 'closed'") == [(0,)]
