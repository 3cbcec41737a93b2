"""`at session attach` in a real terminal (tmux), driven the way an operator would."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, Tmux, at, daemon_town

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town() as root:
        yield root


def test_attach_type_see_detach_and_the_agent_lives_on(town: Path) -> None:
    at(town, "agent", "start", "d1")
    env = f"PATH={os.environ['PATH']} HOME={os.environ['HOME']}"
    tmux = Tmux("attach", f"{env} {' '.join(AT)} --town {town} session attach d1; sleep 30")
    try:
        tmux.wait_for("demo❯")
        tmux.run("send-keys", "-t", "t", "-l", "hello there")
        time.sleep(0.4)
        tmux.run("send-keys", "-t", "t", "Enter")
        tmux.wait_for("Here is the plan for “hello there”")
        tmux.run("send-keys", "-t", "t", "C-]")
        tmux.wait_for("detached from d1 (it keeps running)")
    finally:
        tmux.close()
    sessions = at(town, "session", "list").stdout
    assert "d1" in sessions and ("working" in sessions or "idle" in sessions)
