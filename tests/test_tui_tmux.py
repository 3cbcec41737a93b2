"""The real `at tui --demo` in a real terminal (tmux), driven the way an operator would:
every tab, an approval answered, a bead moved a column, then quit with the agents still running;
away, the town merges beads and two polecats wait on the operator; back in a new `at tui`, the
Dashboard leads with what happened, and both requests are answered from the inbox.
The demo town is up meanwhile: dispatch hands its backlog to polecats by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from at_cli import AT, Tmux, wait_for

from tundra_tui.demo_town import DEMO_DIR, ensure_demo_town
from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.domain.recap import MIN_AWAY_S
from tundra_tui.town import Town

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

TAB_MARKS = {
    "1": "Recent activity",
    "2": "Agents",
    "3": "Backlog",
    "4": "Timeline",
    "5": "login-v2",
    "6": "Next 30 days",
    "7": "Throughput",
    "8": "ui.theme",
    "9": "MCP",
}
"""Text only that tab shows (with the demo town), so the test knows the switch happened."""

LOCAL_TOML = """\
[orchestra]
max_polecats = 3
[runtimes.demo]
args = ["--approval-rate", "0", "--speed", "0.3"]
[agents.polecat-1]
args = ["--approval-rate", "1", "--speed", "0.3"]
[agents.polecat-3]
role = "polecat"
runtime = "demo"
worktree = true
args = ["--approval-rate", "1", "--speed", "0.3"]
[agents.mayor]
args = ["--approval-rate", "0", "--speed", "0.3"]
[agents.crew-1]
args = ["--approval-rate", "0", "--speed", "0.3"]
[costs]
daily_budget_usd = 100.0
"""
"""The test town's team (.tundra/local.toml, over the demo's tundra.toml), at full speed:
polecat-1 and polecat-3 ask approval before every submit (the operator answers them);
polecat-2, dispatch's new one with the runtime's args, never asks, so beads merge while the
operator is away. The mayor and crew-1 ask nothing, so only the polecats' requests wait, and
the budget is raised so that its brake never holds dispatch."""


@pytest.fixture
def data_home() -> Iterator[Path]:
    """A short XDG data dir (the demo town's socket path must fit in ~104 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="at-tui-", dir="/tmp"))
    try:
        yield path
    finally:
        town = path / "auto-tundra" / DEMO_DIR
        if town.exists():
            subprocess.run([*AT, "--town", str(town), "daemon", "stop"], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def at_json(town: Path, *args: str) -> object:
    done = subprocess.run(
        [*AT, "--town", str(town), *args, "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


LIVE = ("working", "idle", "awaiting_approval")


def submitters(town: Path) -> set[str]:
    """Who has submitted a bead for review."""
    events = at_json(town, "events", "--kind", "bead.submit", "--limit", "1000")
    assert isinstance(events, list)
    return {e["actor"] for e in events if e["kind"] == "bead.submit"}


def done_count(town: Path) -> int:
    """How many beads are done, as the command line reports it."""
    done = at_json(town, "bead", "list", "--status", "done")
    assert isinstance(done, list)
    return len(done)


def awaiting(town: Path) -> set[str]:
    """Agents whose screen asks the operator something."""
    agents = at_json(town, "agent", "list")
    assert isinstance(agents, list)
    return {a["name"] for a in agents if a.get("state") == "awaiting_approval"}


def merged_since(town: Path, since: str) -> int:
    """Beads the refinery merged at or after `since` (a store timestamp)."""
    events = at_json(town, "events", "--kind", "bead.done", "--limit", "1000")
    assert isinstance(events, list)
    return sum(1 for e in events if e["at"] >= since and e["data"].get("merged_commit"))


def pending(town: Path) -> list[dict[str, Any]]:
    """The requests waiting for an answer, oldest first."""
    waiting = at_json(town, "approvals")
    assert isinstance(waiting, list)
    return sorted(waiting, key=lambda request: int(request["id"]))


def approved_by_operator(town: Path) -> set[int]:
    events = at_json(town, "events", "--kind", "approval.approved", "--limit", "1000")
    assert isinstance(events, list)
    return {e["data"]["id"] for e in events if e["actor"] == "operator"}


def operator_seen(town: Path) -> str:
    with sqlite3.connect(Town(town).db_path, timeout=10) as db:
        row = db.execute("SELECT value FROM town_flags WHERE key = 'operator_seen'").fetchone()
    return str(row[0]) if row else ""


def left_earlier(town: Path, seen: str) -> str:
    """Move the operator's departure back by the shortest absence a recap covers (the test
    skips that minute of waiting, not the work done while away). The store's own setter only
    moves it forward, so this writes the row."""
    since = iso(parse_iso(seen) - timedelta(seconds=MIN_AWAY_S))
    with sqlite3.connect(Town(town).db_path, timeout=10) as db:
        db.execute("UPDATE town_flags SET value = ? WHERE key = 'operator_seen'", (since,))
    return since


RECAP_BEADS = re.compile(r"✓ (\d+) (?:merged|done \((\d+) merged\))")
"""The recap's bead line: all done beads merged, or how many of them were."""
STILL_WAITING = re.compile(r"(\d+) still waiting")


def test_operator_drives_the_demo_control_room(data_home: Path, private_home: Path) -> None:
    # Approvals are answered from the Agents tab and the inbox here: the popup would race keys.
    config = private_home / ".auto-tundra"
    config.mkdir()
    (config / "config.toml").write_text("[ui]\napproval_popup = false\n")
    env = (
        f"PATH={os.environ['PATH']} HOME={private_home} XDG_DATA_HOME={data_home} "
        # A stale exported COLUMNS must not pin the layout (it did, before `at tui` dropped it).
        "TERM=xterm-256color COLUMNS=80 LINES=24"
    )
    # The demo town, made as `at tui --demo` would, with LOCAL_TOML's team; dispatch starts
    # paused so that the board holds still until a card has been moved.
    town = data_home / "auto-tundra" / DEMO_DIR
    asyncio.run(ensure_demo_town(town))
    (town / ".tundra" / "local.toml").write_text(LOCAL_TOML)
    subprocess.run([*AT, "--town", str(town), "dispatch", "pause"], check=True)
    at_tui = f"{env} {' '.join(AT)} tui --demo"
    # The operator quits, and comes back (a new `at tui`) when the test presses Enter.
    command = f"{at_tui}; echo at-tui-exited-$?; read back; {at_tui}; echo at-tui-back-$?; sleep 60"
    tmux = Tmux("tui", command, 120, 36)
    try:
        tmux.wait_for("Recent activity")
        # Resize once it is up, as an operator dragging the window would: it reflows, and every
        # tab title fits at 120 columns (a program may start before tmux settles its size).
        tmux.resize(100, 30)
        tmux.resize(120, 36)
        tmux.wait_for("4 Sessions", timeout=5)
        tmux.wait_for("daemon up")

        for key, mark in TAB_MARKS.items():
            tmux.keys(key)
            tmux.wait_for(mark, timeout=10)

        # Move the card under the cursor in Review one column right, into Done: one more
        # bead is done (only the operator closes beads). Then let dispatch go.
        done_before = done_count(town)
        tmux.keys("3")
        tmux.wait_for("Backlog")
        tmux.keys(*"hhhhhh", "l", "l", "l", "L")
        wait_for(lambda: done_count(town) == done_before + 1, timeout=10)
        subprocess.run([*AT, "--town", str(town), "dispatch", "resume"], check=True)

        # A polecat given a bead by dispatch asks before `at submit`: approve it from the
        # Agents tab.
        tmux.keys("2")
        asking = re.compile(r"! (polecat-\d+)")
        found = asking.search(tmux.wait_for(lambda s: asking.search(s) is not None, timeout=90))
        assert found is not None
        polecat = found.group(1)
        tmux.keys("/")
        tmux.type(polecat)
        tmux.keys("Enter")
        tmux.wait_for("Agents 1", timeout=10)
        tmux.keys("y")
        tmux.wait_for("approved", timeout=10)
        tmux.keys("/", "Escape")
        # Before the next key: an Esc followed at once by `q` reads as Alt+q.
        tmux.wait_for(lambda screen: "Agents 1" not in screen)

        # Quit with the agents still running; quitting notes the operator's presence, where
        # the next control room's recap starts.
        pressed_q = iso(datetime.now(UTC))
        tmux.keys("q")
        tmux.wait_for("at-tui-exited-0", timeout=15)
        left = operator_seen(town)
        assert pressed_q <= left <= iso(datetime.now(UTC))
        agents = at_json(town, "agent", "list")
        assert isinstance(agents, list)
        live = {a["name"] for a in agents if a.get("state") in LIVE}
        assert {"mayor", "crew-1"} <= live and "witness" not in live

        # Away, with no control room and no key pressed: the approved polecat submits, and
        # polecat-2 merges beads while both askers come to wait on the operator.
        wait_for(
            lambda: (
                polecat in submitters(town)
                and merged_since(town, left) >= 1
                and len(pending(town)) >= 2
            ),
            timeout=60,
        )

        # Back: a new `at tui`, and the Dashboard leads with the recap since the operator left
        # (a minute earlier than they did: shorter absences are not recapped). Beads merge and
        # polecats ask meanwhile: the recap's counts lie between before and after it is read.
        since = left_earlier(town, left)
        merged, waiting = merged_since(town, since), len(pending(town))
        tmux.keys("Enter")
        screen = tmux.wait_for("While you were away", timeout=20)
        beads, still = RECAP_BEADS.search(screen), STILL_WAITING.search(screen)
        assert beads is not None and still is not None, screen
        assert merged <= int(beads.group(2) or beads.group(1)) <= merged_since(town, since), screen
        assert waiting <= int(still.group(1)) <= len(pending(town)), screen

        # The inbox lists the requests oldest first, the first highlighted with its detail
        # below; `y` answers it, its row leaves, the next is highlighted, and `y` answers that.
        first, second = pending(town)[:2]
        tmux.keys("I")
        for request in (first, second):
            tmux.wait_for(f"{request['agent']}  {request['tool']}  #{request['id']}")
            tmux.keys("y")
            tmux.wait_for(f"approved: {request['agent']} #{request['id']}")
        assert {first["id"], second["id"]} <= approved_by_operator(town)
        # The keys reached the agents: neither waits any more.
        askers = {first["agent"], second["agent"]}
        assert len(askers) == 2  # an agent waiting on one request asks nothing else
        wait_for(lambda: not askers & awaiting(town), timeout=10)
        tmux.keys("Escape")
        tmux.wait_for(lambda screen: "Approvals waiting" not in screen)
        tmux.keys("q")
        tmux.wait_for("at-tui-back-0", timeout=15)
    finally:
        tmux.close()
