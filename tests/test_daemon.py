"""The daemon: agents that outlive their clients, one socket, and the CLI that drives it.

Each test gets a short private town path (Unix socket paths are limited to
about 104 bytes) and stops its daemon at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, at, daemon_town, wait_for

from tundra_tui.daemon.client import DaemonClient, daemon_pid
from tundra_tui.daemon.protocol import (
    VERSION,
    ApprovalEvent,
    Event,
    ScreenEvent,
    Subscribe,
    request_frame,
)
from tundra_tui.town import find_town


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town() as root:
        yield root


def agent_row(town: Path, name: str) -> dict[str, object]:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return next(row for row in rows if row["name"] == name)


def test_task_approve_and_deny_through_the_cli(town: Path) -> None:
    assert "d1: " in at(town, "agent", "start", "d1").stdout
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    assert "delivered" in at(town, "send", "d1", "RUN: touch yes.txt").stdout
    wait_for(lambda: "yes.txt" in at(town, "approvals").stdout)
    assert "approved" in at(town, "approve").stdout
    wait_for(lambda: (town / "yes.txt").exists())
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    at(town, "send", "d1", "RUN: touch no.txt")
    wait_for(lambda: "no.txt" in at(town, "approvals").stdout)
    approval_id = json.loads(at(town, "approvals", "--json").stdout)[0]["id"]
    assert "denied" in at(town, "deny", str(approval_id)).stdout
    wait_for(lambda: "Denied by operator." in at(town, "peek", "d1").stdout)
    assert not (town / "no.txt").exists()
    assert "no approvals waiting" in at(town, "approvals").stdout


def test_agents_survive_a_killed_client_and_a_hung_up_terminal(town: Path) -> None:
    import ptyprocess

    # Start everything from a terminal that then hangs up, as an SSH drop does.
    terminal = ptyprocess.PtyProcess.spawn(
        [*AT, "--town", str(town), "agent", "start", "d1"], dimensions=(24, 80)
    )
    wait_for(lambda: not terminal.isalive())
    terminal.close(force=True)
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    pid = agent_row(town, "d1")["pid"]
    # A client killed mid-subscription.
    watcher = subprocess.Popen([*AT, "--town", str(town), "peek", "d1"], stdout=subprocess.DEVNULL)
    watcher.send_signal(signal.SIGKILL)
    watcher.wait()
    time.sleep(0.5)
    row = agent_row(town, "d1")
    assert row["state"] == "idle" and row["pid"] == pid
    assert "demo❯" in at(town, "peek", "d1").stdout


def test_a_killed_daemon_reports_its_agents_lost(town: Path) -> None:
    at(town, "agent", "start", "d1")
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    found = find_town(town)
    pid = daemon_pid(found)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon_pid(found) is None)
    at(town, "daemon", "start")
    row = agent_row(town, "d1")
    assert row["state"] == "lost"
    events = json.loads(at(town, "events", "--agent", "d1", "--json").stdout)
    assert events[-1]["data"]["to"] == "lost"
    assert events[-1]["data"]["evidence"]["rule"] == "daemon.restarted"
    peeked = at(town, "peek", "d1").stdout
    assert "d1 is lost; its last recorded screen" in peeked and "demo❯" in peeked


def test_one_daemon_per_town_and_a_stale_socket_is_replaced(town: Path) -> None:
    first = at(town, "daemon", "start").stdout
    second = at(town, "daemon", "start").stdout
    assert first == second
    found = find_town(town)
    pid = daemon_pid(found)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon_pid(found) is None)
    assert found.socket_path.exists(), "a crash leaves the socket file behind"
    assert "running" in at(town, "daemon", "start").stdout
    assert at(town, "daemon", "status").returncode == 0
    assert oct(found.socket_path.stat().st_mode & 0o777) == "0o600"


def test_a_client_of_another_protocol_version_gets_a_clear_error(town: Path) -> None:
    at(town, "daemon", "start")
    found = find_town(town)

    async def talk() -> dict[str, object]:
        reader, writer = await asyncio.open_unix_connection(str(found.socket_path))
        writer.write(json.dumps({"v": VERSION + 1, "id": 1, "op": "ping"}).encode() + b"\n")
        await writer.drain()
        reply = json.loads(await reader.readline())
        writer.close()
        return reply

    reply = asyncio.run(talk())
    assert "ok" not in reply and "protocol version" in str(reply["error"])


def test_two_subscribers_see_the_same_screen(town: Path) -> None:
    at(town, "agent", "start", "d1")
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    found = find_town(town)

    async def first_screen() -> ScreenEvent:
        client = await DaemonClient.connect(found)
        try:
            async for event in client.subscribe(["d1"], show=["d1"]):
                if isinstance(event, ScreenEvent) and event.full:
                    return event
        finally:
            await client.close()
        raise AssertionError("no screen")

    async def both() -> list[ScreenEvent]:
        return list(await asyncio.gather(first_screen(), first_screen()))

    one, two = asyncio.run(both())
    assert one.rows == two.rows
    text = "".join(run[0] for row in one.rows.values() for run in row)
    assert "demo❯" in text


def test_a_client_that_stops_reading_is_resynced_not_buffered(town: Path) -> None:
    spew = "import itertools\nfor i in itertools.count(): print(i, 'x' * 90)"
    config = town / "tundra.toml"
    config.write_text(
        config.read_text()
        + '\n[agents.spew]\nrole = "crew"\nruntime = "custom"\n'
        + f'command = {json.dumps(sys.executable)}\nargs = ["-c", {json.dumps(spew)}]\n'
        + "\n[daemon]\nsubscriber_queue = 16\n"
    )
    at(town, "daemon", "start")
    found = find_town(town)
    pid = daemon_pid(found)
    assert pid

    def rss_kib() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stall_then_read() -> bool:
        # A plain socket with a small receive buffer that we do not read: real back-pressure.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.connect(str(found.socket_path))
        sock.sendall(request_frame(Subscribe(agents=["spew"], show=["spew"]), 1))
        time.sleep(0.5)
        before = rss_kib()
        at(town, "agent", "start", "spew")
        # The agent prints without end while we read nothing, until the daemon gives up on us.
        wait_for(
            lambda: json.loads(at(town, "daemon", "status", "--json").stdout).get("resyncs", 0) > 0,
            timeout=60,
        )
        grown = rss_kib() - before
        assert grown < 30 * 1024, f"daemon grew {grown} KiB for a stalled reader"
        sock.settimeout(15)
        with sock.makefile("rb") as stream:
            for line in stream:
                if json.loads(line).get("ev", {}).get("resync"):
                    return True
        return False

    assert stall_then_read(), "a reader that fell behind must get a resync"


def test_a_worktree_agent_works_in_its_own_locked_worktree(town: Path) -> None:
    git = ["git", "-C", str(town)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run(
        [*git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], check=True
    )
    config = town / "tundra.toml"
    config.write_text(
        config.read_text() + '\n[agents.p1]\nrole = "polecat"\nruntime = "demo"\nworktree = true\n'
    )
    at(town, "agent", "start", "p1")
    wait_for(lambda: agent_row(town, "p1")["state"] == "idle")
    listing = subprocess.run(
        [*git, "worktree", "list", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout
    assert "branch refs/heads/polecat/p1/adhoc" in listing
    block = listing.split("branch refs/heads/polecat/p1/adhoc")[1].split("\n\n")[0]
    assert "locked" in block, listing
    assert "/.tundra/worktrees/p1-" in at(town, "peek", "p1").stdout.replace("\n", "")
    at(town, "agent", "stop", "p1")

    def unlocked() -> bool:
        out = subprocess.run(
            [*git, "worktree", "list", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout
        return "locked" not in out.split("branch refs/heads/polecat/p1/adhoc")[1].split("\n\n")[0]

    wait_for(unlocked)


def test_a_crashing_agent_is_restarted_then_left_failed_with_its_last_screen(town: Path) -> None:
    config = town / "tundra.toml"
    config.write_text(
        config.read_text()
        + '\n[agents.crashy]\nrole = "crew"\nruntime = "custom"\ncommand = "sh"\n'
        + 'args = ["-c", "echo about to fail; sleep 0.3; exit 3"]\n'
    )
    at(town, "agent", "start", "crashy")

    def crashes() -> list[dict[str, object]]:
        events = json.loads(at(town, "events", "--agent", "crashy", "--json", "-n", "100").stdout)
        return [e["data"] for e in events if e["kind"] == "agent.crashed"]

    wait_for(lambda: len(crashes()) == 3, timeout=30)
    assert [c["restart"] for c in crashes()] == [True, True, False]
    assert [c["delay"] for c in crashes()[:2]] == [1, 2]
    assert "3 times in a row" in str(crashes()[-1]["reason"])
    found = find_town(town)
    import sqlite3

    conn = sqlite3.connect(found.db_path)
    (last_screen,) = conn.execute("SELECT last_screen FROM agents WHERE name = 'crashy'").fetchone()
    conn.close()
    assert "about to fail" in last_screen


def test_polecat_spawn_gives_worktree_bead_and_task_and_nudge_interrupts(town: Path) -> None:
    git = ["git", "-C", str(town)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run(
        [*git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], check=True
    )
    at(town, "bead", "add", "Add a health endpoint", "-d", "GET /health\nreturns ok")
    out = at(town, "polecat", "spawn", "pc1", "--runtime", "demo", "--bead", "1").stdout
    assert "/.tundra/worktrees/pc1-1" in out
    bead = json.loads(at(town, "bead", "show", "1", "--json").stdout)["bead"]
    # Handed over as dispatch does (the demo agent may already have submitted its work).
    assert bead["status"] in ("slung", "review")
    assert (bead["assignee"], bead["branch"]) == ("pc1", "polecat/pc1/1")
    header = "[tundra work] bead #1: Add a health endpoint."
    wait_for(lambda: header in at(town, "peek", "pc1").stdout)
    # The description, as one line (the prompt wraps on screen wherever it must).
    assert "GET/healthreturnsok" in "".join(at(town, "peek", "pc1").stdout.split())
    polecats = json.loads(at(town, "polecat", "list", "--json").stdout)
    assert {"name": "pc1", "beads": [1], "worktree": True}.items() <= next(
        p for p in polecats if p["name"] == "pc1"
    ).items()
    wait_for(lambda: agent_row(town, "pc1")["state"] == "idle", timeout=40)
    assert "nudged pc1" in at(town, "nudge", "pc1", "-m", "update the changelog too").stdout
    wait_for(lambda: "update the changelog too" in at(town, "peek", "pc1").stdout)
    mail = json.loads(at(town, "mail", "list", "--to", "pc1", "--json").stdout)
    assert mail[0]["subject"] == "nudge" and mail[0]["urgent"] is True


def test_a_nudge_never_types_over_an_approval_prompt(town: Path) -> None:
    at(town, "agent", "start", "d1")
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    at(town, "send", "d1", "RUN: touch nudged.txt")
    wait_for(lambda: agent_row(town, "d1")["state"] == "awaiting_approval")
    done = at(town, "nudge", "d1", "-m", "y", check=False)
    assert done.returncode == 1 and "waiting for an approval" in done.stdout
    time.sleep(1)
    assert agent_row(town, "d1")["state"] == "awaiting_approval"
    assert not (town / "nudged.txt").exists()


def test_hung_up_subscribers_are_dropped_and_new_ones_see_waiting_approvals(town: Path) -> None:
    at(town, "agent", "start", "d1")
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    found = find_town(town)

    async def subscribe_and_hang_up() -> None:
        for _ in range(3):
            client = await DaemonClient.connect(found)
            stream = client.subscribe(["d1"])
            await stream.__anext__()
            await client.close()

    asyncio.run(subscribe_and_hang_up())

    def subscribers() -> int:
        return int(json.loads(at(town, "daemon", "status", "--json").stdout)["subscribers"])

    wait_for(lambda: subscribers() == 0, timeout=10)
    at(town, "send", "d1", "RUN: touch waiting.txt")
    wait_for(lambda: "waiting.txt" in at(town, "approvals").stdout)

    async def first_messages() -> list[Event]:
        client = await DaemonClient.connect(found)
        seen: list[Event] = []
        try:
            async for event in client.subscribe(["d1"]):
                seen.append(event)
                if isinstance(event, ApprovalEvent):
                    break
        finally:
            await client.close()
        return seen

    seen = asyncio.run(asyncio.wait_for(first_messages(), 10))
    last = seen[-1]
    assert isinstance(last, ApprovalEvent)
    assert (last.approval.subject, last.approval.status) == ("touch waiting.txt", "pending")


def test_an_agent_cannot_answer_approvals_from_its_terminal(town: Path) -> None:
    out = town / "rogue.txt"
    rogue = (
        f"sleep 4; {sys.executable} -m tundra_tui --town {town} approve > {out} 2>&1; "
        f"env -u TUNDRA_AGENT_MARK {sys.executable} -m tundra_tui --town {town} deny "
        f">> {out} 2>&1; sleep 60"
    )
    config = town / "tundra.toml"
    config.write_text(
        config.read_text()
        + '\n[agents.rogue]\nrole = "crew"\nruntime = "custom"\ncommand = "sh"\n'
        + f'args = ["-c", {json.dumps(rogue)}]\n'
    )
    at(town, "agent", "start", "d1")
    wait_for(lambda: agent_row(town, "d1")["state"] == "idle")
    at(town, "send", "d1", "RUN: touch never.txt")
    wait_for(lambda: "never.txt" in at(town, "approvals").stdout)
    at(town, "agent", "start", "rogue")
    wait_for(lambda: out.exists() and out.read_text().count("answered by the operator") == 2)
    assert "never.txt" in at(town, "approvals").stdout, "the request is still pending"
    assert not (town / "never.txt").exists()
