"""Reports from inside agents: `at submit`, `at done --fail`, `at bead note`, `at mail send`.

An agent reports on the bead on its own hook only, and is known by its process
ancestry in the daemon, never by its environment. A submit needs a branch with work
on it and nothing left uncommitted. The branch checks run on real repositories; the
reports run through a real daemon, from inside real agents (`helpers/shell_agent.py`
runs what it is typed with `sh -c`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tundra_tui.orchestra.branches import default_target, submit_problem, worktree_holding

GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *GIT_ID, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def commit(repo: Path, name: str, text: str = "x") -> None:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "README")
    return root


# ---- branches ------------------------------------------------------------------------------


def test_a_branch_with_a_commit_and_a_clean_worktree_can_be_submitted(repo: Path) -> None:
    tree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "polecat/a/1", str(tree), "main")
    commit(tree, "work.md")
    assert worktree_holding(repo, "polecat/a/1") == tree.resolve()
    assert submit_problem(repo, "polecat/a/1", "main") is None
    assert submit_problem(repo, "polecat/a/1") is None  # the target defaults to main


def test_a_missing_branch_is_refused(repo: Path) -> None:
    assert submit_problem(repo, "polecat/a/9", "main") == "branch polecat/a/9 does not exist"
    assert submit_problem(repo, "", "main") == "the bead has no branch to submit"


def test_a_branch_with_no_commit_beyond_the_target_is_refused(repo: Path) -> None:
    git(repo, "branch", "polecat/a/1")
    problem = submit_problem(repo, "polecat/a/1", "main")
    assert problem == "polecat/a/1 has no commit beyond main: commit your work first"


def test_a_dirty_worktree_is_refused_until_committed(repo: Path) -> None:
    tree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "polecat/a/1", str(tree), "main")
    commit(tree, "work.md")
    (tree / "left.txt").write_text("not committed")  # untracked counts
    problem = submit_problem(repo, "polecat/a/1", "main")
    assert problem is not None and "uncommitted changes" in problem and str(tree) in problem
    git(tree, "add", "left.txt")
    assert "uncommitted changes" in (submit_problem(repo, "polecat/a/1", "main") or "")
    git(tree, "commit", "-q", "-m", "the rest")
    assert submit_problem(repo, "polecat/a/1", "main") is None


def test_a_branch_without_a_worktree_is_judged_by_its_commits(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "polecat/a/2")
    commit(repo, "work.md")
    git(repo, "checkout", "-q", "main")
    (repo / "operator-scratch.txt").write_text("the operator's own checkout is not the bead's")
    assert submit_problem(repo, "polecat/a/2", "main") is None


def test_the_target_must_exist_and_differ(repo: Path) -> None:
    git(repo, "branch", "polecat/a/1")
    assert submit_problem(repo, "polecat/a/1", "trunk") == "target branch trunk does not exist"
    assert "is the target branch itself" in (submit_problem(repo, "main", "main") or "")


def test_the_default_target_is_the_main_worktrees_branch(repo: Path) -> None:
    assert default_target(repo) == "main"
    git(repo, "checkout", "-q", "-b", "develop")
    assert default_target(repo) == "develop"
    git(repo, "checkout", "-q", "--detach")
    assert default_target(repo) == "main"


def test_outside_git_nothing_can_be_submitted(tmp_path: Path) -> None:
    problem = submit_problem(tmp_path, "polecat/a/1", "main")
    assert problem is not None and "is not a git repository" in problem
