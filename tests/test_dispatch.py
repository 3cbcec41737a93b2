"""Dispatch end to end: real daemons in git towns, real PTYs, stand-in and demo agents.

The town takes ready beads by itself, within capacity, only while up and not paused, as
soon as a bead becomes ready (events, not a poll); `at sling` hands a bead over through the
same verified path; `at up`/`at down` start and stop the town; and a daemon killed at any
step of a hand-over loses and duplicates no bead.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from at_cli import AT, at, git_town, wait_for

HELPERS = Path(__file__).parent / "helpers"
DEADLINE = 60.0


# ---- helpers --------------------------------------------------------------------------------


def configure(town: Path, **tables: Any) -> None:
    """Merge tables into the town's tundra.toml (before its daemon starts)."""
    path = town / "tundra.toml"
    document = tomlkit.parse(path.read_text())
    for key, value in tables.items():
        if isinstance(value, dict) and key in document:
            for inner, item in value.items():
                document[key][inner] = item  # type: ignore[index]
        else:
            document[key] = value
    path.write_text(tomlkit.dumps(document))


def lazy_polecats(town: Path) -> None:
    """Polecats that take their work prompt and never report: their dispatches stay open."""
    script = HELPERS / "lazy_agent.py"
    configure(
        town,
        runtimes={
            "demo": {"command": f"{sys.executable} {script} {town / 'lazy.log'}", "args": []}
        },
    )


def rows(town: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(town / ".tundra" / "town.db")) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def add_bead(town: Path, title: str, *extra: str) -> int:
    made: dict[str, Any] = json.loads(at(town, "bead", "add", title, *extra, "--json").stdout)
    return int(made["id"])


def status(town: Path) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(at(town, "dispatch", "status", "--json").stdout)
    return shown


def waiting(town: Path) -> dict[int, str]:
    return {row["bead"]: row["reason"] for row in status(town)["waiting"]}


def delivered(town: Path) -> set[int]:
    found = rows(town, "SELECT bead_id FROM dispatches WHERE delivered_at != ''")
    return {int(bead) for (bead,) in found}


def open_dispatches(town: Path) -> list[tuple[int, str]]:
    return rows(town, "SELECT bead_id, agent FROM dispatches WHERE state != 'closed' ORDER BY id")


def claimed_events(town: Path, bead: int) -> int:
    found = rows(
        town, "SELECT count(*) FROM events WHERE kind = 'dispatch.claimed' AND bead_id = ?", (bead,)
    )
    return int(found[0][0])


def bead_status(town: Path, bead: int) -> str:
    return str(rows(town, "SELECT status FROM beads WHERE id = ?", (bead,))[0][0])


def daemon_pid(town: Path) -> int:
    shown = json.loads(at(town, "daemon", "status", "--json").stdout)
    return int(shown["pid"])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone as far as we care (its parent has not reaped it yet).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] == "Z"


@contextmanager
def town_with(**config: Any) -> Iterator[Path]:
    with git_town(**config) as town:
        try:
            yield town
        finally:
            at(town, "down", check=False)


# ---- capacity, pause, events ------------------------------------------------------------------


def test_capacity_limits_polecats_and_status_says_why_a_bead_waits() -> None:
    with town_with(orchestra={"max_polecats": 2}) as town:
        lazy_polecats(town)
        beads = [add_bead(town, f"job {n}") for n in (1, 2, 3)]
        before = status(town)
        assert not before["up"]
        assert {row["bead"]: row["reason"] for row in before["waiting"]} == dict.fromkeys(
            beads, "town is down"
        )
        at(town, "up")
        wait_for(lambda: delivered(town) == {beads[0], beads[1]}, DEADLINE)
        shown = status(town)
        assert {row["bead"] for row in shown["active"]} == {beads[0], beads[1]}
        assert (shown["polecats"], shown["max_polecats"]) == (2, 2)
        assert waiting(town) == {beads[2]: "no capacity"}
        assert claimed_events(town, beads[2]) == 0
        # Each polecat has its own worktree on polecat/<agent>/<bead>, from main.
        for bead, agent, branch, path in rows(
            town, "SELECT bead_id, agent, branch, worktree FROM dispatches"
        ):
            assert branch == f"polecat/{agent}/{bead}"
            assert Path(path).is_dir() and Path(path).parent == town / ".tundra" / "worktrees"

        # Paused, a freed slot is not filled; resumed, it is.
        at(town, "dispatch", "pause", "--reason", "lunch")
        at(town, "done", str(beads[0]))
        wait_for(lambda: waiting(town) == {beads[2]: "paused"}, DEADLINE)
        assert status(town)["pause_reason"] == "lunch"
        assert claimed_events(town, beads[2]) == 0
        at(town, "dispatch", "resume")
        wait_for(lambda: beads[2] in delivered(town), DEADLINE)
        assert status(town)["waiting"] == []


def test_a_blocker_done_from_the_cli_dispatches_its_dependent_at_once() -> None:
    # The safety re-read is an hour away: only the event of `at done` can wake dispatch.
    with town_with(daemon={"patrol_interval_seconds": 3600}) as town:
        lazy_polecats(town)
        first = add_bead(town, "first")
        second = add_bead(town, "second", "--blocked-by", str(first))
        convoyed = add_bead(town, "in a convoy")
        at(town, "convoy", "create", "later")
        at(town, "convoy", "add", "later", str(convoyed))
        at(town, "up")
        wait_for(lambda: first in delivered(town), DEADLINE)
        assert waiting(town) == {second: "blocked", convoyed: "convoy not started"}
        at(town, "done", str(first))
        wait_for(lambda: second in delivered(town), DEADLINE)
        assert claimed_events(town, convoyed) == 0
        at(town, "convoy", "start", "later")
        wait_for(lambda: convoyed in delivered(town), DEADLINE)


# ---- at sling -----------------------------------------------------------------------------------


def demo_crew(**extra: Any) -> dict[str, Any]:
    return {
        "role": "crew",
        "runtime": "demo",
        "worktree": True,
        "args": ["--speed", "0", "--approval-rate", "0", "--seed", "1"],
        **extra,
    }


def test_sling_starts_a_stopped_agent_and_its_prompt_is_taken() -> None:
    with town_with(agents={"c1": demo_crew()}) as town:
        bead = add_bead(town, "write the notes", "-d", "a short description")
        done = at(town, "sling", str(bead), "c1", "--json", timeout=DEADLINE)
        reply = json.loads(done.stdout)
        assert (reply["started"], reply["delivered"], reply["attempts"]) == (True, True, 1)
        dispatch = rows(town, "SELECT kind, state, branch, worktree FROM dispatches")
        assert dispatch[0][:3] in (
            ("sling", "delivered", f"polecat/c1/{bead}"),
            ("sling", "closed", f"polecat/c1/{bead}"),  # the demo already submitted
        )
        # The demo agent does the work: a commit on the bead's branch, then review.
        wait_for(lambda: bead_status(town, bead) == "review", DEADLINE)


def test_sling_refuses_unknown_busy_and_agents_themselves() -> None:
    shell = f"{sys.executable} {HELPERS / 'shell_agent.py'}"
    lazy = f"{sys.executable} {HELPERS / 'lazy_agent.py'}"
    with town_with(
        agents={
            "c1": demo_crew(),
            "sh": {"role": "crew", "runtime": "demo", "command": shell},
            "lz": {"role": "crew", "runtime": "demo", "command": lazy},
        }
    ) as town:
        first, second = add_bead(town, "one"), add_bead(town, "two")
        unknown = at(town, "sling", str(first), "nobody", check=False)
        assert unknown.returncode == 2 and "no agent 'nobody'" in unknown.stderr
        reply = json.loads(at(town, "sling", str(first), "lz", "--json", timeout=DEADLINE).stdout)
        assert reply["delivered"], reply
        busy = at(town, "sling", str(second), "lz", check=False, timeout=DEADLINE)
        assert busy.returncode == 2 and f"lz is already working on #{first}" in busy.stderr
        # From inside an agent: the CLI refuses at once; with the agent's variables gone
        # (the CLI then asks as the operator would), the daemon refuses by process ancestry.
        at(town, "agent", "start", "sh")
        wait_for(lambda: "demo❯" in at(town, "peek", "sh").stdout, DEADLINE)
        at(town, "send", "sh", f"at sling {second} c1 2> refused-cli.txt")
        hidden = "env -u TUNDRA_AGENT -u TUNDRA_AGENT_MARK TUNDRA_ACTOR=operator"
        at(town, "send", "sh", f"{hidden} at sling {second} c1 2> refused.txt")
        for name, words in (
            ("refused-cli.txt", "agents do not sling beads"),
            ("refused.txt", "the daemon decides who works on what"),
        ):
            refused = Path(town / name)
            wait_for(lambda r=refused: r.exists() and r.read_text().strip() != "", DEADLINE)
            assert words in refused.read_text(), refused.read_text()
        assert bead_status(town, second) == "backlog" and claimed_events(town, second) == 0


# ---- at up / at down ----------------------------------------------------------------------------


def down(town: Path) -> str:
    """`at down`, failing with the daemon's log when it does not stop."""
    done = at(town, "down", check=False)
    log = town / ".tundra" / "logs" / "daemon.log"
    assert done.returncode == 0, (done.stdout, done.stderr, log.read_text()[-5000:])
    return done.stdout


def started_names(output: str) -> list[str]:
    reply: dict[str, Any] = json.loads(output)
    return sorted(reply["started"])


def test_up_is_idempotent_and_brings_back_what_ran_after_down_and_a_crash() -> None:
    demo = ["--speed", "0", "--approval-rate", "0", "--seed", "1"]
    with town_with(
        agents={
            "m1": {"role": "mayor", "runtime": "demo", "start": True, "args": demo},
            "c1": {"role": "crew", "runtime": "demo", "args": demo},
            "idle": {"role": "crew", "runtime": "demo", "args": demo},
        }
    ) as town:
        assert started_names(at(town, "up", "--json").stdout) == ["m1"]
        second = json.loads(at(town, "up", "--json").stdout)
        assert (second["started"], second["running"], second["dispatch"]) == ([], ["m1"], "running")
        # The mayor was given its role prompt as its first task.
        wait_for(lambda: "You are m1, the mayor" in at(town, "peek", "m1").stdout, DEADLINE)
        at(town, "agent", "start", "c1")  # by hand: wanted back
        stopped = down(town)
        assert "c1" in stopped and "m1" in stopped
        assert rows(town, "SELECT value FROM town_flags WHERE key = 'up'") == [("0",)]
        assert started_names(at(town, "up", "--json").stdout) == ["c1", "m1"]
        # A reboot: the daemon dies with its agents; `at up` brings them back.
        pid = daemon_pid(town)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: gone(pid), DEADLINE)
        assert started_names(at(town, "up", "--json").stdout) == ["c1", "m1"]
        # Stopped by hand: not brought back.
        at(town, "agent", "stop", "c1")
        down(town)
        assert started_names(at(town, "up", "--json").stdout) == ["m1"]


def test_dispatch_status_without_a_daemon_says_the_town_is_down() -> None:
    with town_with() as town:
        first = add_bead(town, "one")
        second = add_bead(town, "two", "--blocked-by", str(first))
        at(town, "dispatch", "pause")
        shown = status(town)
        assert (shown["up"], shown["paused"]) == (False, True)
        assert waiting(town) == {first: "town is down", second: "blocked"}
        assert not (town / ".tundra" / "at.sock").exists(), "status started no daemon"


# ---- kill -9 mid-dispatch -----------------------------------------------------------------------


def up_armed(town: Path, fault: str) -> None:
    env = {**os.environ, "TUNDRA_FAULT": fault}
    done = subprocess.run(
        [*AT, "--town", str(town), "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def dead_daemon(town: Path) -> bool:
    return not json.loads(at(town, "daemon", "status", "--json", check=False).stdout)["running"]


@pytest.mark.parametrize("fault", ["dispatch.claimed", "dispatch.slung", "dispatch.typed", "kill"])
def test_a_daemon_killed_mid_dispatch_loses_and_duplicates_nothing(fault: str) -> None:
    with town_with(orchestra={"max_polecats": 2}) as town:
        beads = [add_bead(town, f"job {n}", "-d", f"write job {n}") for n in (1, 2)]
        if fault == "kill":
            at(town, "up")
            wait_for(lambda: claimed_events(town, beads[0]) > 0, DEADLINE)
            os.kill(daemon_pid(town), signal.SIGKILL)
        else:
            up_armed(town, fault)
        wait_for(lambda: dead_daemon(town), DEADLINE)
        interrupted = {bead for bead, _ in open_dispatches(town)}
        assert interrupted, "the daemon died with a hand-over open"
        worktrees = dict(
            rows(town, "SELECT bead_id, worktree FROM dispatches WHERE state != 'closed'")
        )
        at(town, "up")
        wait_for(lambda: all(bead_status(town, b) == "review" for b in beads), DEADLINE * 2)
        # Never two open dispatches of one bead (the index), and none left open.
        assert open_dispatches(town) == []
        for bead in beads:
            kept = rows(
                town,
                "SELECT agent, outcome FROM dispatches WHERE bead_id = ? AND outcome != 'returned'",
                (bead,),
            )
            assert len(kept) == 1, (bead, kept)
            assert kept[0][1] == "submitted"
        for bead in interrupted:
            returned = rows(
                town,
                "SELECT reason FROM dispatches WHERE bead_id = ? AND outcome = 'returned'",
                (bead,),
            )
            assert ("daemon restarted",) in returned
            reasons = [
                json.loads(data)["reason"]
                for (data,) in rows(
                    town,
                    "SELECT data FROM events WHERE kind = 'dispatch.returned' AND bead_id = ?",
                    (bead,),
                )
            ]
            assert "daemon restarted" in reasons
        # Each bead's work is one commit on its branch, beyond main.
        for bead in beads:
            (branch,) = rows(town, "SELECT branch FROM beads WHERE id = ?", (bead,))[0]
            log = subprocess.run(
                ["git", "-C", str(town), "rev-list", f"main..{branch}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            assert len(log) == 1, (bead, branch, log)
        if fault == "dispatch.slung":
            # The interrupted bead's worktree was clean: the same one took it back.
            for bead, path in worktrees.items():
                if path:
                    final = rows(
                        town,
                        "SELECT worktree FROM dispatches WHERE bead_id = ? AND outcome = ?",
                        (bead, "submitted"),
                    )
                    assert final == [(path,)], (bead, path, final)


def test_stale_worktree_locks_of_a_killed_daemon_are_lifted_at_start() -> None:
    with town_with() as town:
        bead = add_bead(town, "one")
        up_armed(town, "dispatch.slung")
        wait_for(lambda: dead_daemon(town), DEADLINE)
        (path,) = rows(town, "SELECT worktree FROM dispatches WHERE bead_id = ?", (bead,))[0]
        listing = subprocess.run(
            ["git", "-C", str(town), "worktree", "list", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "locked auto-tundra: agent polecat-1 is running" in listing
        at(town, "dispatch", "pause")
        at(town, "daemon", "start")
        wait_for(lambda: bead_status(town, bead) == "backlog", DEADLINE)
        listing = subprocess.run(
            ["git", "-C", str(town), "worktree", "list", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "locked" not in listing.split(f"worktree {path}")[1].split("worktree ")[0]


# ---- crew by lane, polecats reused and retired ------------------------------------------------


def test_a_crew_takes_its_lane_and_polecats_are_reused_then_retired() -> None:
    crew = demo_crew(lanes=["critical"], start=True)
    with town_with(
        orchestra={"max_polecats": 1, "polecat_retire_seconds": 1.0}, agents={"c1": crew}
    ) as town:
        at(town, "up")
        # Only an idle crew takes a bead: wait until c1 has taken in its role prompt.
        wait_for(lambda: "Understood: I am c1" in at(town, "peek", "c1").stdout, DEADLINE)
        wait_for(
            lambda: any(r["name"] == "c1" and r["state"] == "idle" for r in running(town)),
            DEADLINE,
        )
        urgent = add_bead(town, "the site is down", "--lane", "critical")
        plain = [add_bead(town, f"chore {n}") for n in (1, 2)]
        beads = [urgent, *plain]
        wait_for(lambda: all(bead_status(town, b) == "review" for b in beads), DEADLINE * 2)
        holders = dict(
            rows(town, "SELECT bead_id, agent FROM dispatches WHERE outcome = 'submitted'")
        )
        assert holders[urgent] == "c1"
        # One polecat at most: the second chore went to the same polecat, in place.
        assert holders[plain[0]] == holders[plain[1]] == "polecat-1"
        kinds = [
            kind
            for (kind,) in rows(
                town, "SELECT kind FROM events WHERE kind LIKE 'polecat.%' ORDER BY id"
            )
        ]
        assert kinds[:2] == ["polecat.started", "polecat.reused"]
        (worktree,) = {
            path
            for (path,) in rows(town, "SELECT worktree FROM dispatches WHERE agent = 'polecat-1'")
        }
        assert worktree.endswith("polecat-1-2")  # made for the first chore, switched for the next
        # With no work left, the polecat is retired; the crew stays.
        wait_for(lambda: "polecat.retired" in kinds_of(town), DEADLINE)
        wait_for(lambda: "polecat-1" not in {r["name"] for r in running(town)}, DEADLINE)
        assert "c1" in {r["name"] for r in running(town)}


def running(town: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(at(town, "agent", "list", "--json").stdout)
    return [r for r in listed if r["state"] in ("idle", "working", "awaiting_approval", "unknown")]


def kinds_of(town: Path) -> list[str]:
    return [kind for (kind,) in rows(town, "SELECT kind FROM events ORDER BY id")]
