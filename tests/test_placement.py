"""Where a hand-over puts an agent to work on a bead (`handover.place_worktree`), on real git.

The bead's branch where it is checked out and clean; else the agent's own worktree switched
to it; else a new one from the target. A dirty worktree is never touched: the work goes on
from its branch's tip on a branch of the new agent's own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tundra_tui.daemon.handover import place_worktree
from tundra_tui.daemon.leases import lock_reason
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.town import Town

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Worktrees:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "town"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".tundra/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return Worktrees(root, Town(root).worktrees_dir)


def commit(path: Path, name: str) -> str:
    (path / name).write_text(name)
    git(path, "add", name)
    git(path, "commit", "-q", "-m", name)
    return git(path, "rev-parse", "HEAD")


def place(trees: Worktrees, agent: str, bead: int, old: str = "", current: Path | None = None):  # type: ignore[no-untyped-def]
    return place_worktree(trees, agent, bead, old_branch=old, target="main", current=current)


def test_a_new_agent_gets_a_new_worktree_from_the_target(trees: Worktrees) -> None:
    placed = place(trees, "p1", 3)
    assert (placed.how, placed.branch, placed.path.name) == ("created", "polecat/p1/3", "p1-3")
    assert git(placed.path, "rev-parse", "HEAD") == git(trees.repo, "rev-parse", "main")
    assert trees.holding("polecat/p1/3") is not None and trees.holding("polecat/p1/3").locked  # type: ignore[union-attr]


def test_a_bead_back_in_its_clean_worktree_is_worked_there(trees: Worktrees) -> None:
    first = place(trees, "p1", 3)
    tip = commit(first.path, "half.txt")
    trees.unlock(first.path)  # its agent died; the worktree is free
    again = place(trees, "p2", 3, old="polecat/p1/3")
    assert (again.how, again.path, again.branch) == ("reused", first.path, "polecat/p1/3")
    assert git(again.path, "rev-parse", "HEAD") == tip
    # Still locked for the dead agent (its release not done yet): its own, taken back.
    trees.unlock(again.path)
    trees.lock(again.path, lock_reason("p1"))
    assert place(trees, "p1", 3, old="polecat/p1/3").how == "reused"


def test_a_dirty_worktree_is_left_and_the_work_goes_on_from_its_tip(trees: Worktrees) -> None:
    first = place(trees, "p1", 3)
    tip = commit(first.path, "done-part.txt")
    (first.path / "unsaved.txt").write_text("not committed")
    trees.unlock(first.path)
    placed = place(trees, "p2", 3, old="polecat/p1/3")
    assert placed.dirty_left == str(first.path)
    assert (placed.how, placed.branch) == ("created", "polecat/p2/3")
    assert git(placed.path, "rev-parse", "HEAD") == tip
    assert (first.path / "unsaved.txt").read_text() == "not committed"
    assert git(first.path, "branch", "--show-current") == "polecat/p1/3"


def test_a_running_agent_is_switched_where_it_runs(trees: Worktrees) -> None:
    first = place(trees, "p1", 3)
    commit(first.path, "three.txt")
    placed = place(trees, "p1", 4, current=first.path)
    assert (placed.how, placed.path, placed.branch) == ("switched", first.path, "polecat/p1/4")
    assert git(first.path, "rev-parse", "HEAD") == git(trees.repo, "rev-parse", "main")
    assert place(trees, "p1", 4, current=first.path).how == "kept"


def test_a_stopped_agent_reuses_its_own_clean_worktree(trees: Worktrees) -> None:
    first = place(trees, "p1", 3)
    trees.unlock(first.path)
    placed = place(trees, "p1", 5)
    assert (placed.how, placed.path, placed.branch) == ("switched", first.path, "polecat/p1/5")
    assert trees.holding("polecat/p1/5").locked  # type: ignore[union-attr]
    assert len(trees.list()) == 1
