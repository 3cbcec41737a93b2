"""The real `at tui --demo` in a real terminal (tmux), driven the way an operator would:
every tab, an approval answered, a bead moved a column, then quit with the agents still running.
The demo town is up meanwhile: dispatch hands its backlog to polecats by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, Tmux, wait_for

from tundra_tui.demo_town import DEMO_DIR, ensure_demo_town

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


def settled(town: Path) -> bool:
    """No bead hooked or slung, once every approval asked is answered."""
    pending = at_json(town, "approvals")
    assert isinstance(pending, list)
    for request in pending:
        subprocess.run([*AT, "--town", str(town), "approve", str(request["id"])], check=False)
    beads = at_json(town, "bead", "list")
    assert isinstance(beads, list)
    return not pending and not [b for b in beads if b["status"] in ("hooked", "slung")]


def done_count(town: Path) -> int:
    """How many beads are done, as the command line reports it."""
    done = at_json(town, "bead", "list", "--status", "done")
    assert isinstance(done, list)
    return len(done)


def test_operator_drives_the_demo_control_room(data_home: Path, private_home: Path) -> None:
    # Approvals are answered from the Agents tab here, so the popup would only race the keys.
    config = private_home / ".auto-tundra"
    config.mkdir()
    (config / "config.toml").write_text("[ui]\napproval_popup = false\n")
    env = (
        f"PATH={os.environ['PATH']} HOME={private_home} XDG_DATA_HOME={data_home} "
        # A stale exported COLUMNS must not pin the layout (it did, before `at tui` dropped it).
        "TERM=xterm-256color COLUMNS=80 LINES=24"
    )
    # The demo town, made as `at tui --demo` would, with every submit asking approval (the
    # operator answers one below) and the agents at full speed.
    town = data_home / "auto-tundra" / DEMO_DIR
    asyncio.run(ensure_demo_town(town))
    (town / ".tundra" / "local.toml").write_text(
        '[runtimes.demo]\nargs = ["--approval-rate", "1", "--speed", "0.3"]\n'
        '[agents.polecat-1]\nargs = ["--approval-rate", "1", "--speed", "0.3"]\n'
    )
    tmux = Tmux("tui", f"{env} {' '.join(AT)} tui --demo; echo at-tui-exited-$?; sleep 60", 120, 36)
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
        wait_for(lambda: polecat in submitters(town), timeout=30)

        # Pause dispatch and let the beads in flight reach review (answering what they ask),
        # so the board holds still; then move the card under the cursor in Review one column
        # right, into Done: one more bead is done (only the operator closes beads).
        subprocess.run([*AT, "--town", str(town), "dispatch", "pause"], check=True)
        wait_for(lambda: settled(town), timeout=90)
        done_before = done_count(town)
        tmux.keys("3")
        tmux.wait_for("Backlog")
        tmux.keys(*"hhhhhh", "l", "l", "l", "L")
        wait_for(lambda: done_count(town) == done_before + 1, timeout=10)

        tmux.keys("q")
        tmux.wait_for("at-tui-exited-0", timeout=15)
        agents = at_json(town, "agent", "list")
        assert isinstance(agents, list)
        live = {a["name"] for a in agents if a.get("state") in LIVE}
        assert {"mayor", "crew-1"} <= live and "witness" not in live
    finally:
        tmux.close()
