"""The real `at tui --demo` in a real terminal (tmux), driven the way an operator would:
every tab, an approval answered, a bead moved a column, then quit with the agents still running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, Tmux, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

TAB_MARKS = {
    "1": "Recent activity",
    "2": "Agents 4",
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
        town = path / "auto-tundra" / "demo-town"
        if town.exists():
            subprocess.run([*AT, "--town", str(town), "daemon", "stop"], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def at_json(town: Path, *args: str) -> object:
    done = subprocess.run(
        [*AT, "--town", str(town), *args, "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def bead_status(town: Path, bead: int) -> str:
    """A bead's status as the command line reports it."""
    shown = at_json(town, "bead", "show", str(bead))
    assert isinstance(shown, dict)
    return str(shown["bead"]["status"])


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
    tmux = Tmux("tui", f"{env} {' '.join(AT)} tui --demo; echo at-tui-exited-$?; sleep 60", 120, 36)
    town = data_home / "auto-tundra" / "demo-town"
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

        # polecat-1 asks to run a command soon after it starts: approve it from the Agents tab.
        tmux.keys("2")
        tmux.wait_for(lambda s: "! polecat-1" in s, timeout=60)
        tmux.keys("/")
        tmux.type("polecat-1")
        tmux.keys("Enter")
        tmux.wait_for("Agents 1", timeout=10)
        tmux.keys("y")
        tmux.wait_for("approved", timeout=10)
        pending = at_json(town, "approvals")
        assert isinstance(pending, list)
        assert not [a for a in pending if a.get("agent") == "polecat-1"]
        tmux.keys("/", "Escape")

        # Move the card under the cursor in Review one column right, into Done.
        review = at_json(town, "bead", "list", "--status", "review")
        assert isinstance(review, list) and len(review) >= 2
        ids = [int(b["id"]) for b in review]
        tmux.keys("3")
        tmux.wait_for("Backlog")
        tmux.keys("l", "l", "l", "L")
        wait_for(lambda: [bead_status(town, i) for i in ids].count("done") == 1, timeout=10)

        tmux.keys("q")
        tmux.wait_for("at-tui-exited-0", timeout=15)
        agents = at_json(town, "agent", "list")
        assert isinstance(agents, list)
        assert (
            len([a for a in agents if a.get("state") in ("working", "idle", "awaiting_approval")])
            == 4
        )
    finally:
        tmux.close()
