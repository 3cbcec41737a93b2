"""The refinery's git on real repositories: a copy is rebased or merged in its own worktree,
the target moves only by compare-and-swap, and the operator's checkout, hooks and config
change nothing (plan §0 traps 1-5, §1.7)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tundra_tui.domain.errors import TundraError
from tundra_tui.orchestra.refinery_git import REFINERY_EMAIL, RefineryGit
from tundra_tui.orchestra.worktrees import Worktrees

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

ID = ["-c", "user.name=Polecat", "-c", "user.email=polecat@example.invalid"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *ID, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {args}: {done.stderr}"
    return done.stdout.strip()


def commit(cwd: Path, name: str, text: str) -> str:
    (cwd / name).write_text(text)
    git(cwd, "add", name)
    git(cwd, "commit", "-q", "-m", f"write {name}")
    return git(cwd, "rev-parse", "HEAD")


def index_hash(repo: Path) -> str:
    return hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system config: the refinery must work without a git identity (CI)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with one commit; a polecat worktree on polecat/a/1 holding one commit on a;
    then main moves on (b), so the branch is behind. The operator sits on main with a
    modified README and an untracked file."""
    root = tmp_path / "town"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".tundra/\n")
    commit(root, "README.md", "hello\n")
    git(root, "worktree", "add", "-q", "-b", "polecat/a/1", str(root / ".tundra/wt/a-1"))
    commit(root / ".tundra/wt/a-1", "a.txt", "a\n")
    commit(root, "b.txt", "b\n")
    (root / "README.md").write_text("operator's edit\n")
    (root / "notes.txt").write_text("mine\n")
    return root


@pytest.fixture
def rg(repo: Path) -> RefineryGit:
    return RefineryGit(repo, repo / ".tundra" / "refinery" / "work", timeout=30)


def test_rebase_lands_a_copy_and_leaves_branch_and_checkout_alone(
    repo: Path, rg: RefineryGit
) -> None:
    before = index_hash(repo)
    ref, t0 = rg.resolve_target("main")
    assert ref == "refs/heads/main"
    tip = rg.tip("refs/heads/polecat/a/1")
    assert [s for _, s in rg.commits(t0, tip)] == ["write a.txt"]
    rg.prepare(t0)
    made = rg.integrate("rebase", t0, tip, "unused")
    assert made.ok and made.result not in (t0, tip)
    assert git(repo, "rev-parse", f"{made.result}^") == t0
    assert git(repo, "log", "-1", "--format=%an|%ce", made.result) == f"Polecat|{REFINERY_EMAIL}"
    assert rg.tip("refs/heads/polecat/a/1") == tip  # the branch never moved
    assert rg.advance(ref, made.result, t0, "auto-tundra refinery: #1") == "ok"
    assert rg.tip(ref) == made.result
    # The operator's files, index and HEAD stayed; the branch moved under them.
    assert index_hash(repo) == before
    assert (repo / "README.md").read_text() == "operator's edit\n"
    assert (repo / "notes.txt").read_text() == "mine\n"
    assert not (repo / "a.txt").exists()
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    rg.reset_workdir()
    assert not rg.workdir.exists()
    assert str(rg.workdir) not in git(repo, "worktree", "list")


def test_merge_strategy_makes_a_two_parent_commit(repo: Path, rg: RefineryGit) -> None:
    _, t0 = rg.resolve_target("main")
    tip = rg.tip("refs/heads/polecat/a/1")
    rg.prepare(t0)
    made = rg.integrate("merge", t0, tip, "Merge #1: a (polecat/a/1)")
    assert made.ok
    assert git(repo, "rev-list", "--parents", "-n1", made.result).split()[1:] == [t0, tip]
    assert git(repo, "log", "-1", "--format=%s|%ae", made.result) == (
        f"Merge #1: a (polecat/a/1)|{REFINERY_EMAIL}"
    )


def test_conflict_lists_paths_and_leaves_the_worktree_clean(repo: Path, rg: RefineryGit) -> None:
    commit(repo / ".tundra/wt/a-1", "b.txt", "polecat's b\n")
    _, t0 = rg.resolve_target("main")
    tip = rg.tip("refs/heads/polecat/a/1")
    for strategy in ("rebase", "merge"):
        rg.prepare(t0)
        made = rg.integrate(strategy, t0, tip, "m")
        assert not made.ok and made.conflicts == ("b.txt",), made
        assert git(rg.workdir, "status", "--porcelain") == ""
        assert not (repo / ".git/worktrees/work/rebase-merge").exists()
    assert rg.tip("refs/heads/polecat/a/1") == tip


def test_work_already_in_the_target_gives_the_base(repo: Path, rg: RefineryGit) -> None:
    tip = rg.tip("refs/heads/polecat/a/1")
    git(repo, "update-ref", "refs/heads/main", git(repo, "commit-tree", "-p", "main", "-p", tip,
        "-m", "merged by hand", "main^{tree}"))  # fmt: skip
    _, t0 = rg.resolve_target("main")
    for strategy in ("rebase", "merge"):
        rg.prepare(t0)
        made = rg.integrate(strategy, t0, tip, "m")
        assert made.ok and made.result == t0


def test_a_branch_that_merged_the_target_fast_forwards(repo: Path, rg: RefineryGit) -> None:
    """The agent resolved a conflict by `git merge main`: replaying its commits would
    meet that conflict again, forever. Its tip is landed as it is."""
    work = repo / ".tundra/wt/a-1"
    commit(work, "b.txt", "polecat's b\n")
    subprocess.run(["git", "-C", str(work), *ID, "merge", "-q", "main"], capture_output=True)
    (work / "b.txt").write_text("both\n")
    git(work, "add", "b.txt")
    git(work, "commit", "-q", "--no-edit")
    tip = rg.tip("refs/heads/polecat/a/1")
    _, t0 = rg.resolve_target("main")
    rg.prepare(t0)
    made = rg.integrate("rebase", t0, tip, "m")
    assert made.ok and made.result == tip, made
    # The gates run in the workdir next: it must hold the tip, not the target it was
    # prepared at (they passed vacuously on the target once).
    assert git(rg.workdir, "rev-parse", "HEAD").strip() == tip
    assert (rg.workdir / "b.txt").read_text() == "both\n"


def test_advance_is_a_compare_and_swap_on_a_full_ref(repo: Path, rg: RefineryGit) -> None:
    ref, t0 = rg.resolve_target("main")
    tip = rg.tip("refs/heads/polecat/a/1")
    stale = git(repo, "rev-parse", "main^")
    assert rg.advance(ref, tip, stale, "m") == "moved"
    assert rg.tip(ref) == t0
    with pytest.raises(TundraError, match="not a full ref"):
        rg.advance("main", tip, t0, "m")
    assert not (repo / ".git" / "main").exists()
    lock = repo / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("")
    with pytest.raises(TundraError, match=r"main\.lock exists"):
        rg.advance(ref, tip, t0, "m")
    assert lock.exists() and rg.tip(ref) == t0
    for bad in ("HEAD", "", "nope", "refs/tags/v1"):
        with pytest.raises(TundraError, match="no target branch"):
            rg.resolve_target(bad)


def test_archive_is_create_only_and_idempotent(repo: Path, rg: RefineryGit) -> None:
    tip = rg.tip("refs/heads/polecat/a/1")
    ref = "refs/tundra/archive/a/1/1"
    rg.archive(ref, tip)
    rg.archive(ref, tip)
    assert rg.tip(ref) == tip
    with pytest.raises(TundraError, match="cannot archive"):
        rg.archive(ref, rg.tip("refs/heads/main"))
    assert rg.tip(ref) == tip


def test_operator_hooks_and_update_refs_have_no_effect(repo: Path, rg: RefineryGit) -> None:
    wt = repo / ".tundra/wt/a-1"
    mid = git(wt, "rev-parse", "HEAD")
    commit(wt, "c.txt", "c\n")
    git(repo, "branch", "polecat/a/mid", mid)
    hooks = repo / "hooks"
    hooks.mkdir()
    for name in ("pre-commit", "commit-msg", "pre-rebase", "post-checkout", "post-rewrite",
                 "pre-merge-commit", "reference-transaction"):  # fmt: skip
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> {repo}/hooked\nexit 1\n")
        (hooks / name).chmod(0o755)
    git(repo, "config", "core.hooksPath", str(hooks))
    git(repo, "config", "rebase.updateRefs", "true")
    git(repo, "config", "commit.gpgSign", "true")
    _, t0 = rg.resolve_target("main")
    tip = rg.tip("refs/heads/polecat/a/1")
    rg.prepare(t0)
    made = rg.integrate("rebase", t0, tip, "m")
    assert made.ok, made
    assert rg.tip("refs/heads/polecat/a/mid") == mid
    assert rg.tip("refs/heads/polecat/a/1") == tip
    assert rg.advance("refs/heads/main", made.result, t0, "m") == "ok"
    assert not (repo / "hooked").exists()


def test_reset_workdir_clears_a_half_done_rebase(repo: Path, rg: RefineryGit) -> None:
    commit(repo / ".tundra/wt/a-1", "b.txt", "polecat's b\n")
    _, t0 = rg.resolve_target("main")
    rg.prepare(t0)
    # A daemon killed mid-rebase leaves this behind.
    tip = rg.tip("refs/heads/polecat/a/1")
    argv = ["git", "-C", str(rg.workdir), *ID, "rebase", t0, tip]
    subprocess.run(argv, capture_output=True, check=False)
    assert "rebase" in git(rg.workdir, "status")
    rg.reset_workdir()
    rg.reset_workdir()
    assert not rg.workdir.exists()
    rg.prepare(t0)
    assert git(rg.workdir, "status", "--porcelain") == ""


def test_checkout_marks_and_branch_deletion(repo: Path, rg: RefineryGit) -> None:
    _, t0 = rg.resolve_target("main")
    assert rg.main_checkout_on("main") and not rg.main_checkout_on("other")
    rg.mark_checkout_base("main", t0)
    rg.mark_checkout_base("main", rg.tip("refs/heads/polecat/a/1"))  # keeps the first
    assert rg.tip("refs/tundra/checkout-base/main") == t0
    tip = rg.tip("refs/heads/polecat/a/1")
    assert not rg.delete_branch("polecat/a/1", tip)  # still checked out in its worktree
    git(repo, "worktree", "remove", str(repo / ".tundra/wt/a-1"))
    assert not rg.delete_branch("polecat/a/1", t0)  # the branch is not where we think
    assert rg.delete_branch("polecat/a/1", tip)
    assert rg.tip("refs/heads/polecat/a/1") == ""
    # Only an agent's branch, never the target, whatever the caller says.
    git(repo, "branch", "feature", t0)
    assert not rg.delete_branch("feature", t0)
    git(repo, "branch", "polecat/main", t0)
    assert not rg.delete_branch("polecat/main", t0, target="refs/heads/polecat/main")
    assert rg.tip("refs/heads/feature") == t0 and rg.tip("refs/heads/polecat/main") == t0


def test_retire_counts_the_archive_as_kept(repo: Path, rg: RefineryGit) -> None:
    trees = Worktrees(repo, repo / ".tundra" / "wt")
    path = repo / ".tundra/wt/a-1"
    tip = rg.tip("refs/heads/polecat/a/1")
    with pytest.raises(TundraError, match="in neither"):
        trees.retire(path, keep="refs/heads/main", target="main")
    trees.lock(path, "auto-tundra: agent a is running")
    with pytest.raises(TundraError, match="locked"):
        trees.retire(path, keep=tip, target="main")
    trees.unlock(path)
    (path / "wip.txt").write_text("unsaved\n")
    with pytest.raises(TundraError, match="uncommitted"):
        trees.retire(path, keep=tip, target="main")
    (path / "wip.txt").unlink()
    rg.archive("refs/tundra/archive/a/1/1", tip)
    trees.retire(path, keep="refs/tundra/archive/a/1/1", target="main")
    assert not path.exists()
    assert rg.tip("refs/heads/polecat/a/1") == tip  # the branch is the refinery's to delete
