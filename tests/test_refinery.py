"""The refinery in a real daemon on a real repository: beads seeded in review (no agents),
gates as tiny `sh` lines. It lands green work in queue order, sends red or conflicting work
back, escalates, blames nobody for a red target, and waits for gates to be configured."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

from at_cli import AT, at, git, git_town
from at_cli import until as poll
from helpers.refinery_seed import ACTOR, Review, commit_on, seed_review

from tundra_tui.config import load_config
from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import (
    AttentionEvent,
    Event,
    RefineryControl,
    RefineryQuery,
    RefineryStatus,
)
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, Lane
from tundra_tui.store import RosterEntry, open_store
from tundra_tui.town import Town

DEADLINE = 30.0
RED_IF_FAIL = 'test -z "$(ls fail-* 2>/dev/null)"'
"""Red for a tree holding a `fail-*` file (the branches that should fail add one)."""
FAST = {"max_polecats": 0}
DAEMON = {"patrol_interval_seconds": 1}


def rows(town: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db", timeout=10)) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def bead(town: Path, bead_id: int) -> dict[str, Any]:
    cols = ("status", "grade", "merged_commit", "branch")
    (row,) = rows(town, f"SELECT {', '.join(cols)} FROM beads WHERE id = ?", (bead_id,))
    return dict(zip(cols, row, strict=True))


def attempts(town: Path, bead_id: int) -> list[tuple[Any, ...]]:
    """(outcome, counted, n, branch_tip, archive_ref, result_commit) oldest first."""
    return rows(
        town,
        "SELECT outcome, counted, n, branch_tip, archive_ref, result_commit FROM merge_attempts"
        " WHERE bead_id = ? ORDER BY id",
        (bead_id,),
    )


def events(town: Path, kind: str) -> list[tuple[int | None, dict[str, Any]]]:
    found = rows(town, "SELECT bead_id, data FROM events WHERE kind = ? ORDER BY id", (kind,))
    return [(b, json.loads(d)) for b, d in found]


def ref(town: Path, name: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(town), "rev-parse", "--verify", "-q", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def is_ancestor(town: Path, a: str, b: str) -> bool:
    argv = ["git", "-C", str(town), "merge-base", "--is-ancestor", a, b]
    return subprocess.run(argv, check=False).returncode == 0


def index_hash(town: Path) -> str:
    return hashlib.sha256((town / ".git" / "index").read_bytes()).hexdigest()


async def until(check: Any, timeout: float = DEADLINE, what: str = "") -> None:
    """at_cli's poll with this file's deadline."""
    await poll(check, timeout, 0.1, what=what)


async def resubmit(town: Path, bead_id: int, agent: str = "p1") -> None:
    """What an agent would do after a rework through backlog: take it again and submit."""
    store = await open_store(town / ".tundra" / "town.db")
    try:
        # The daemon's roster sync hid the unconfigured agent: put it back, as seeding did.
        roster = [RosterEntry(s.name, s.role, s.runtime, s.model) for s in
                  load_config(Town(town)).agents().values()]  # fmt: skip
        await store.agents.sync_roster([*roster, RosterEntry(agent, Role.POLECAT, Runtime.DEMO)],
                                       actor=ACTOR)  # fmt: skip
        for action in (Action.HOOK, Action.SLING):
            await store.beads.apply(bead_id, action, actor=ACTOR, agent=agent)
        await store.beads.apply(bead_id, Action.SUBMIT, actor=ACTOR, reason="again")
    finally:
        await store.close()


@asynccontextmanager
async def listening(town: Path) -> AsyncIterator[tuple[DaemonClient, list[Event]]]:
    """A subscribed client and every event it heard."""
    client = await DaemonClient.connect(Town(town))
    heard: list[Event] = []

    async def listen() -> None:
        async for event in client.subscribe():
            heard.append(event)

    task = asyncio.ensure_future(listen())
    try:
        await until(lambda: client.subscribed, what="subscribed")
        yield client, heard
    finally:
        task.cancel()
        await client.close()


def dispatch_wakes(town: Path) -> list[str]:
    """Why each dispatcher pass ran, from the daemon's log (the refinery's holding and
    releasing wake it)."""
    log = town / ".tundra" / "logs" / "daemon.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [w for r in lines if r.get("event") == "dispatch.pass" for w in r["data"]["why"]]


def worktrees(town: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(town, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


async def test_queue_merges_rejects_and_escalates() -> None:
    refinery = {"gates": [RED_IF_FAIL], "max_attempts": 2}
    with git_town(orchestra=FAST, refinery=refinery, daemon=DAEMON) as town:
        g_std, g_crit, red, clash, esc = await seed_review(
            town,
            [
                Review("green standard", priority=0),
                Review("green critical", lane=Lane.CRITICAL, priority=2),
                Review("red once", files={"fail-{id}": "x\n"}),
                Review("conflicting", files={"README.md": "the polecat's {id}\n"}),
                Review("red always", files={"fail-{id}": "x\n"}, priority=3),
            ],
        )
        # main moves on under the operator's checkout, so the README branch conflicts.
        await asyncio.to_thread(
            commit_on, town, "main", {"README.md": "main moved on\n"}, message="main moves"
        )
        tips = {b: ref(town, f"refs/heads/polecat/p1/{b}") for b in (g_std, g_crit, red, esc)}
        (town / "README.md").write_text("the operator's edit\n")
        index = index_hash(town)
        await asyncio.to_thread(at, town, "up")
        async with listening(town) as (client, heard):
            await until(lambda: len(attempts(town, esc)) == 1 and bead(town, esc)["status"]
                        == "backlog", what="first round")  # fmt: skip
            for green in (g_std, g_crit):
                shown = bead(town, green)
                assert shown["status"] == "done" and shown["grade"] == "merged", shown
                assert is_ancestor(town, shown["merged_commit"], "refs/heads/main")
                ((outcome, counted, n, tip, archive, result),) = attempts(town, green)
                assert (outcome, counted, n, result) == ("merged", 0, 1, shown["merged_commit"])
                assert tip == tips[green] and ref(town, archive) == tip
                assert ref(town, f"refs/heads/polecat/p1/{green}") == ""  # deleted
            crit_first = rows(
                town, "SELECT bead_id FROM merge_attempts WHERE outcome = 'merged' ORDER BY id"
            )
            assert [b for (b,) in crit_first] == [g_crit, g_std]
            # Red: back to backlog (its agent is not running) with a note, the branch kept.
            assert bead(town, red)["status"] == "backlog"
            assert [a[:2] for a in attempts(town, red)] == [("gate_failed", 1)]
            notes = rows(town, "SELECT author, body FROM bead_notes WHERE bead_id = ?", (red,))
            assert notes[-1][0] == "refinery"
            assert notes[-1][1].startswith(f"rework #{red}: gate")
            assert ref(town, f"refs/heads/polecat/p1/{red}") == tips[red]
            # Conflict: the paths are in the event.
            assert [a[:2] for a in attempts(town, clash)] == [("conflict", 1)]
            rejected = dict(events(town, "refinery.rejected"))
            assert rejected[clash]["conflicts"] == ["README.md"]
            # A second red attempt escalates: the operator is mailed and told.
            await resubmit(town, esc)
            await until(lambda: bead(town, esc)["status"] == "escalated", what="escalated")

            def told() -> bool:  # the notice follows the escalation's commit
                mail = rows(town, "SELECT sender, subject FROM mail WHERE recipient = 'operator'")
                return any(s == "refinery" and f"#{esc} escalated" in subj for s, subj in mail)

            await until(told, what="operator mailed")
            await until(
                lambda: any(
                    isinstance(e, AttentionEvent) and e.kind == "escalated" and e.bead == esc
                    for e in heard
                ),
                what="attention",
            )
            # The operator's checkout sits on main, moved under it: they are told how to sync.
            assert any(isinstance(e, AttentionEvent) and e.kind == "checkout behind" for e in heard)
            # Retry zeroes the count: the next red attempt is a rework, not an escalation.
            reply = await client.call(RefineryControl(verb="retry", bead=esc))
            assert isinstance(reply, RefineryStatus)
            await until(lambda: len(attempts(town, esc)) == 3, what="third attempt")
            await until(lambda: bead(town, esc)["status"] == "backlog", what="reworked")
            work = town / ".tundra" / "refinery" / "work"
            await until(lambda: not work.exists(), what="the attempt's worktree removed")
        assert [a[:2] for a in attempts(town, esc)] == [
            ("gate_failed", 0),
            ("gate_failed", 0),
            ("gate_failed", 1),
        ]
        assert worktrees(town) == [str(town.resolve())]
        assert not (town / ".tundra" / "refinery" / "work").exists()
        assert index_hash(town) == index
        assert (town / "README.md").read_text() == "the operator's edit\n"
        assert git(town, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
        assert ref(town, "refs/tundra/checkout-base/main")


async def test_target_red_blames_nobody_then_resumes(tmp_path: Path) -> None:
    scratch = tmp_path
    extra = scratch / "extra.sh"
    extra.write_text("true\n")
    refinery = {"gates": [f"test ! -e broken && sh {extra}"]}
    with git_town(orchestra=FAST, refinery=refinery, daemon=DAEMON) as town:
        await asyncio.to_thread(commit_on, town, "main", {"broken": "yes\n"}, message="main breaks")
        (first,) = await seed_review(town, [Review("first")])
        await asyncio.to_thread(at, town, "up")
        await until(lambda: events(town, "refinery.target_red"), what="target red")
        async with listening(town) as (_, heard):  # a late client still hears it
            await until(
                lambda: any(
                    isinstance(e, AttentionEvent) and e.kind == "target red" for e in heard
                ),
                what="standing attention",
            )
        assert rows(town, "SELECT count(*) FROM merge_attempts") == [(0,)]
        # No verdict can come while main is red: the agents in review are not held.
        assert "refinery holding" not in dispatch_wakes(town)
        # The operator fixes main; the queue resumes. The second bead's gate moves main
        # once while it runs: the attempt closes target_moved (not counted), then lands.
        extra.write_text(
            f"test -e {scratch}/moved && exit 0\n"
            f"touch {scratch}/moved\n"
            "export GIT_AUTHOR_NAME=o GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=o"
            " GIT_COMMITTER_EMAIL=o@x\n"
            "c=$(git commit-tree -p refs/heads/main -m 'moved by hand' 'refs/heads/main^{tree}')\n"
            "git update-ref refs/heads/main $c\n"
        )
        (scratch / "moved").touch()  # not for the first bead
        await asyncio.to_thread(commit_on, town, "main", {"broken": None}, message="main fixed")
        await until(lambda: bead(town, first)["status"] == "done", what="first merged")
        (scratch / "moved").unlink()
        (second,) = await seed_review(town, [Review("second")])
        await until(lambda: bead(town, second)["status"] == "done", what="second merged")
        assert [a[:2] for a in attempts(town, second)] == [("target_moved", 0), ("merged", 0)]
        assert "refinery holding" in dispatch_wakes(town)
        assert len(events(town, "refinery.target_red")) == 1
        subjects = git(town, "log", "--format=%s", "main").splitlines()
        assert subjects.count(f"bead #{second}: second") == 1
        assert "moved by hand" in subjects


async def test_needs_gates_then_no_gates_and_merge_strategy() -> None:
    # No target branch configured either: the refinery never guesses it from the checkout.
    orchestra = {**FAST, "target_branch": ""}
    with git_town(orchestra=orchestra, daemon=DAEMON, refinery={"strategy": "merge"}) as town:
        one, two = await seed_review(town, [Review("one"), Review("two")])
        await asyncio.to_thread(at, town, "up")
        async with listening(town) as (client, _):
            states: list[str] = []
            details: list[str] = []

            async def state() -> str:
                status = await client.call(RefineryQuery())
                states.append(status.state)
                details.append(status.detail)
                return states[-1]

            while await state() != "needs gates":
                assert len(states) < DEADLINE * 10, states
                await asyncio.sleep(0.1)
            assert bead(town, one)["status"] == "review"  # nothing merged meanwhile
            await asyncio.to_thread(at, town, "config", "set", "refinery.gates", "[]")
            while await state() != "no target branch":
                assert len(states) < DEADLINE * 20, states
                await asyncio.sleep(0.1)
            assert "orchestra.target_branch" in details[-1]
            assert bead(town, one)["status"] == "review"
            await asyncio.to_thread(at, town, "config", "set", "orchestra.target_branch", "main")
            for merged in (one, two):
                await until(lambda m=merged: bead(town, m)["status"] == "done", what="merged")
        assert rows(town, "SELECT count(*) FROM gate_results") == [(0,)]
        for merged in (one, two):
            shown = bead(town, merged)
            assert shown["grade"] == "merged"
            parents = git(town, "rev-list", "--parents", "-n1", shown["merged_commit"]).split()
            assert len(parents) == 3  # a merge commit: --no-ff


async def test_an_unexpected_failure_closes_the_attempt_and_the_bead_lands_later() -> None:
    """An OSError inside an attempt (here the first gate's log path is a directory) must
    not leave the attempt running forever: it closes as an error and the bead lands on
    the next try (whose log is a new file)."""
    with git_town(orchestra=FAST, refinery={"gates": ["true"]}, daemon=DAEMON) as town:
        (town / ".tundra" / "refinery" / "logs" / "1-0.log").mkdir(parents=True)
        (one,) = await seed_review(town, [Review("one")])
        await asyncio.to_thread(at, town, "up")
        await until(lambda: bead(town, one)["status"] == "done", what="merged on the retry")
        assert [a[:2] for a in attempts(town, one)] == [("error", 0), ("merged", 0)]


async def test_git_refusing_without_conflicts_counts_and_escalates() -> None:
    """`git merge` refuses unrelated histories with no conflicting path: counted like a
    conflict (never retried forever), so with max_attempts 1 the bead escalates. A bead
    whose branch is the target itself is refused (escalated), never merged into itself."""
    refinery = {"gates": [], "strategy": "merge", "max_attempts": 1}
    with git_town(orchestra=FAST, refinery=refinery, daemon=DAEMON) as town:
        one, itself = await seed_review(town, [Review("one"), Review("itself")])
        branch = bead(town, one)["branch"]
        orphan = git(town, "commit-tree", "-m", "unrelated", "main^{tree}").strip()
        git(town, "update-ref", f"refs/heads/{branch}", orphan)
        with closing(sqlite3.connect(town / ".tundra" / "town.db", timeout=10)) as conn:
            conn.execute("UPDATE beads SET branch = 'main' WHERE id = ?", (itself,))
            conn.commit()
        main = ref(town, "refs/heads/main")
        await asyncio.to_thread(at, town, "up")
        await until(lambda: len(events(town, "refinery.escalated")) == 2, what="escalated")
        assert [a[:2] for a in attempts(town, one)] == [("conflict", 1)]
        said = dict(events(town, "refinery.escalated"))
        assert "unrelated histories" in said[one]["reason"]
        assert "branch main is the target" in said[itself]["reason"]
        assert bead(town, itself)["status"] == "escalated"
        assert ref(town, "refs/heads/main") == main


def daemon_running(town: Path) -> bool:
    return bool(json.loads(at(town, "daemon", "status", "--json", check=False).stdout)["running"])


async def test_an_escalation_cut_by_a_kill_is_announced_at_restart() -> None:
    """Killed right after `reject` escalated (fault point refinery.rejected): the next
    daemon's recovery sends the notice the dead one never did."""
    refinery = {"gates": [], "max_attempts": 1}
    with git_town(orchestra=FAST, refinery=refinery, daemon=DAEMON) as town:
        (one,) = await seed_review(town, [Review("one", files={"a.txt": "mine\n"})])
        await asyncio.to_thread(commit_on, town, "main", {"a.txt": "theirs\n"}, message="clash")
        env = {**os.environ, "TUNDRA_FAULT": "refinery.rejected"}
        argv = [*AT, "--town", str(town), "up"]
        done = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
        await until(lambda: bead(town, one)["status"] == "escalated", what="escalated")
        await until(lambda: not daemon_running(town), what="the armed daemon died")
        assert events(town, "refinery.escalated") == []
        await asyncio.to_thread(at, town, "up")
        await until(lambda: events(town, "refinery.escalated"), what="notice re-sent")
        ((bead_id, data),) = events(town, "refinery.escalated")
        assert bead_id == one and "1 attempt(s) failed; last: conflicts" in data["reason"]


async def test_checkout_behind_is_read_from_git_after_a_restart() -> None:
    """The notice is not memory: a daemon that finds the checkout-base ref while the
    operator's checkout is on the target says it (status and a standing attention)."""
    with git_town(orchestra=FAST, refinery={"gates": []}, daemon=DAEMON) as town:
        git(town, "update-ref", "refs/tundra/checkout-base/main", "main")
        await asyncio.to_thread(at, town, "up")
        async with listening(town) as (client, heard):
            await until(
                lambda: any(
                    isinstance(e, AttentionEvent) and e.kind == "checkout behind" for e in heard
                ),
                what="checkout behind said",
            )
            assert (await client.call(RefineryQuery())).checkout_behind
            git(town, "update-ref", "-d", "refs/tundra/checkout-base/main")
            assert not (await client.call(RefineryQuery())).checkout_behind


async def test_a_changed_gate_list_checks_the_target_again() -> None:
    """The target a green merge produced is known green for the gates of then: a new,
    failing gate must re-check it (red, nobody blamed), not blame the next bead."""
    with git_town(orchestra=FAST, refinery={"gates": ["true"]}, daemon=DAEMON) as town:
        (one,) = await seed_review(town, [Review("one")])
        await asyncio.to_thread(at, town, "up")
        await until(lambda: bead(town, one)["status"] == "done", what="one merged")
        # Seeded with no daemon (its roster sync would race the seed), then started again.
        await asyncio.to_thread(at, town, "daemon", "stop")
        await asyncio.to_thread(at, town, "config", "set", "refinery.gates", '["false"]')
        (two,) = await seed_review(town, [Review("two")])
        await asyncio.to_thread(at, town, "up")
        await until(
            lambda: events(town, "refinery.target_red") or attempts(town, two), what="verdict"
        )
        assert attempts(town, two) == []
        assert bead(town, two)["status"] == "review"
