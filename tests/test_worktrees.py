"""Agents' git worktrees: confinement, locking, and removal that never loses work (F8, F9, S11)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.orchestra.worktrees import Worktree, Worktrees
from tundra_tui.town import Town

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

FIXED = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def commit(cwd: Path, name: str, text: str) -> str:
    (cwd / name).write_text(text)
    git(cwd, "add", name)
    git(cwd, "commit", "-q", "-m", f"write {name}")
    return git(cwd, "rev-parse", "HEAD")


def all_commits(repo: Path) -> set[str]:
    return set(git(repo, "rev-list", "--all").split())


def archive_refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/tundra/archive").split()


@pytest.fixture(autouse=True)
def _no_system_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "town"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".tundra/\n")
    (root / "README.md").write_text("hello\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def trees(repo: Path) -> Worktrees:
    return Worktrees(repo, Town(repo).worktrees_dir, clock=lambda: FIXED)


def unlocked(trees: Worktrees, agent: str, bead: int | None = 1) -> Worktree:
    worktree = trees.create(agent, bead)
    trees.unlock(worktree.path)
    return worktree


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()


# Creating


def test_create_adds_a_locked_worktree_on_a_namespaced_branch(repo: Path, trees: Worktrees) -> None:
    worktree = trees.create("polecat-1", 7)

    assert worktree.path == (repo / ".tundra" / "worktrees" / "polecat-1-7").resolve()
    assert (worktree.agent, worktree.bead_id) == ("polecat-1", 7)
    assert worktree.branch == "polecat/polecat-1/7"
    assert worktree.head == git(repo, "rev-parse", "main")
    assert worktree.locked and not worktree.dirty and not worktree.missing
    assert git(worktree.path, "branch", "--show-current") == "polecat/polecat-1/7"
    assert (worktree.path / "README.md").read_text() == "hello\n"
    porcelain = git(repo, "worktree", "list", "--porcelain")
    assert "locked auto-tundra: agent polecat-1 is running" in porcelain


def test_create_without_a_bead_is_adhoc_and_starts_at_base(repo: Path, trees: Worktrees) -> None:
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, "later.txt", "later\n")

    worktree = trees.create("crew-1", base=first)

    assert worktree.path.name == "crew-1-adhoc"
    assert (worktree.branch, worktree.bead_id, worktree.head) == (
        "polecat/crew-1/adhoc",
        None,
        first,
    )


def test_list_shows_only_worktrees_under_the_root(
    repo: Path, trees: Worktrees, tmp_path: Path
) -> None:
    a = trees.create("a", 1)
    b = trees.create("b")
    git(repo, "worktree", "add", "-q", "-b", "elsewhere", str(tmp_path / "elsewhere"))
    (b.path / "scratch.txt").write_text("untracked\n")

    listed = {w.path: w for w in trees.list()}

    assert set(listed) == {a.path, b.path}
    assert not listed[a.path].dirty
    assert listed[b.path].dirty
    assert (listed[b.path].agent, listed[b.path].bead_id) == ("b", None)


@pytest.mark.parametrize(
    "name", ["../../x", "x/../../y", ".git", "-rf", "a b", "x.lock", "", "x/y"]
)
def test_create_refuses_unsafe_agent_names(repo: Path, trees: Worktrees, name: str) -> None:
    with pytest.raises(TundraError, match="invalid agent name"):
        trees.create(name, 1)
    assert branches(repo) == ["main"]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.parametrize("base", ["--orphan", "refs/heads/../../x", "nope", "HEAD:README.md", ""])
def test_create_refuses_bad_base_refs(repo: Path, trees: Worktrees, base: str) -> None:
    with pytest.raises(TundraError, match="unknown base"):
        trees.create("a", 1, base=base)
    assert branches(repo) == ["main"]


@pytest.mark.parametrize("bead", [-1, True])
def test_create_refuses_bad_bead_ids(trees: Worktrees, bead: int) -> None:
    with pytest.raises(TundraError, match="invalid bead id"):
        trees.create("a", bead)


def test_create_refuses_a_path_that_exists_or_escapes(
    repo: Path, trees: Worktrees, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    trees.root.mkdir(parents=True)
    (trees.root / "a-1").symlink_to(outside)
    (trees.root / "b-1").mkdir()

    for agent in ("a", "b"):
        with pytest.raises(TundraError, match="already exists"):
            trees.create(agent, 1)
    assert list(outside.iterdir()) == []
    assert branches(repo) == ["main"]


def test_operations_refuse_paths_outside_the_root(
    repo: Path, trees: Worktrees, tmp_path: Path
) -> None:
    worktree = trees.create("a", 1)
    git(repo, "worktree", "add", "-q", "-b", "elsewhere", str(tmp_path / "elsewhere"))

    for path in (
        repo,
        tmp_path / "elsewhere",
        worktree.path / ".." / ".." / "..",
        worktree.path / "sub",
    ):
        with pytest.raises(TundraError, match="not a worktree under"):
            trees.remove(path, force=True)
    with pytest.raises(NotFound):
        trees.status(trees.root / "nobody-1")
    assert (tmp_path / "elsewhere").is_dir()


def test_create_reuses_an_existing_branch(repo: Path, trees: Worktrees) -> None:
    git(repo, "switch", "-q", "-c", "polecat/a/1")
    tip = commit(repo, "work.txt", "earlier work\n")
    git(repo, "switch", "-q", "main")

    worktree = trees.create("a", 1)

    assert (worktree.branch, worktree.head) == ("polecat/a/1", tip)
    assert (worktree.path / "work.txt").read_text() == "earlier work\n"


def test_create_refuses_a_branch_checked_out_elsewhere(repo: Path, trees: Worktrees) -> None:
    git(repo, "switch", "-q", "-c", "polecat/a/1")

    with pytest.raises(TundraError, match="already checked out at"):
        trees.create("a", 1)
    assert trees.list() == []


# Inspecting and locking


def test_status_reports_dirt_and_unmerged_commits(repo: Path, trees: Worktrees) -> None:
    worktree = trees.create("a", 1)
    assert trees.status(worktree.path) == (False, [])

    (worktree.path / "new.txt").write_text("untracked\n")
    assert trees.status(worktree.path) == (True, [])

    sha = commit(worktree.path, "new.txt", "committed\n")
    assert trees.status(worktree.path) == (False, [sha])

    git(repo, "branch", "release", sha)
    assert trees.status(worktree.path, target="release") == (False, [])
    with pytest.raises(TundraError, match="with itself"):
        trees.status(worktree.path, target="polecat/a/1")
    with pytest.raises(TundraError, match="does not name a branch"):
        trees.status(worktree.path, target=sha)


def test_holding_finds_a_worktree_by_branch_and_clean_says_if_it_is(
    repo: Path, trees: Worktrees
) -> None:
    worktree = trees.create("a", 1)
    found = trees.holding("polecat/a/1")
    assert found is not None and found.path == worktree.path
    assert trees.holding("polecat/a/2") is None
    assert trees.holding("main") is None  # the main worktree is not under the root
    assert trees.clean(worktree.path)
    (worktree.path / "scratch.txt").write_text("x\n")
    assert not trees.clean(worktree.path)


# Switching (an idle agent takes its next bead where it runs)


def test_switch_moves_a_clean_worktree_to_a_new_branch_from_base(
    repo: Path, trees: Worktrees
) -> None:
    worktree = trees.create("p1", 1)
    done = commit(worktree.path, "one.txt", "bead one\n")
    main = git(repo, "rev-parse", "main")
    switched = trees.switch(worktree.path, "polecat/p1/2", base="main")
    assert switched.path == worktree.path and switched.branch == "polecat/p1/2"
    assert switched.locked  # still the running agent's
    assert git(worktree.path, "rev-parse", "HEAD") == main
    assert not (worktree.path / "one.txt").exists()
    assert git(repo, "rev-parse", "polecat/p1/1") == done  # the old bead's work is kept
    assert trees.holding("polecat/p1/2") == switched
    assert trees.holding("polecat/p1/1") is None


def test_switch_resumes_an_existing_branch_as_it_is(repo: Path, trees: Worktrees) -> None:
    worktree = trees.create("p1", 1)
    git(repo, "branch", "polecat/old/3", "main")
    tip = commit(repo, "other.txt", "main moved\n")
    git(repo, "branch", "-f", "polecat/old/3", tip)
    switched = trees.switch(worktree.path, "polecat/old/3", base="HEAD~1")
    assert switched.branch == "polecat/old/3"
    assert git(worktree.path, "rev-parse", "HEAD") == tip
    assert trees.switch(worktree.path, "polecat/old/3").branch == "polecat/old/3"


def test_switch_refuses_a_dirty_worktree_and_changes_nothing(repo: Path, trees: Worktrees) -> None:
    worktree = trees.create("p1", 1)
    (worktree.path / "half.txt").write_text("unfinished\n")
    with pytest.raises(TundraError, match="1 uncommitted change on polecat/p1/1"):
        trees.switch(worktree.path, "polecat/p1/2", base="main")
    assert git(worktree.path, "branch", "--show-current") == "polecat/p1/1"
    assert "polecat/p1/2" not in branches(repo)
    assert (worktree.path / "half.txt").read_text() == "unfinished\n"


def test_switch_refuses_a_stash_and_a_branch_held_elsewhere(repo: Path, trees: Worktrees) -> None:
    first = trees.create("p1", 1)
    second = trees.create("p2", 2)
    with pytest.raises(TundraError, match="already checked out"):
        trees.switch(first.path, "polecat/p2/2")
    (first.path / "README.md").write_text("changed\n")
    git(first.path, "stash", "-q")
    with pytest.raises(TundraError, match="1 stash entry"):
        trees.switch(first.path, "polecat/p1/5", base="main")
    assert git(second.path, "branch", "--show-current") == "polecat/p2/2"
    with pytest.raises(TundraError, match="invalid branch name"):
        trees.switch(second.path, "bad..name")


def test_unlock_stale_lifts_only_our_agents_locks(trees: Worktrees) -> None:
    ours = trees.create("a", 1)
    theirs = trees.create("b", 2)
    trees.unlock(theirs.path)
    trees.lock(theirs.path, "maintenance")
    assert trees.unlock_stale("auto-tundra: agent ") == [ours.path]
    locked = {w.path: w.locked for w in trees.list()}
    assert locked == {ours.path: False, theirs.path: True}
    assert trees.unlock_stale("auto-tundra: agent ") == []


def test_lock_and_unlock(trees: Worktrees) -> None:
    worktree = trees.create("a", 1)
    trees.unlock(worktree.path)
    trees.unlock(worktree.path)
    assert not trees.list()[0].locked

    trees.lock(worktree.path, "maintenance")
    assert trees.list()[0].locked
    with pytest.raises(TundraError, match="already locked"):
        trees.lock(worktree.path, "again")


# Removing


def test_remove_clean_merged_worktree_deletes_its_branch(repo: Path, trees: Worktrees) -> None:
    worktree = unlocked(trees, "a")
    sha = commit(worktree.path, "feature.txt", "done\n")
    git(repo, "merge", "-q", "--ff-only", "polecat/a/1")

    assert trees.remove(worktree.path) is None

    assert not worktree.path.exists()
    assert trees.list() == []
    assert branches(repo) == ["main"]
    assert sha in all_commits(repo)
    assert archive_refs(repo) == []


def test_remove_refuses_a_dirty_worktree_and_leaves_everything(
    repo: Path, trees: Worktrees
) -> None:
    worktree = unlocked(trees, "a")
    (worktree.path / "README.md").write_text("edited\n")
    (worktree.path / "notes.txt").write_text("untracked\n")

    with pytest.raises(TundraError, match=r"refusing to remove .*: 2 uncommitted changes;"):
        trees.remove(worktree.path)

    assert (worktree.path / "README.md").read_text() == "edited\n"
    assert (worktree.path / "notes.txt").read_text() == "untracked\n"
    assert [w.path for w in trees.list()] == [worktree.path]
    assert "polecat/a/1" in branches(repo)
    assert archive_refs(repo) == []


def test_remove_refuses_unmerged_commits(repo: Path, trees: Worktrees) -> None:
    worktree = unlocked(trees, "a")
    commit(worktree.path, "feature.txt", "wip\n")

    with pytest.raises(TundraError, match=r"1 unmerged commit on polecat/a/1 \(not in main\)"):
        trees.remove(worktree.path)
    assert worktree.path.is_dir() and "polecat/a/1" in branches(repo)


def test_remove_refuses_a_locked_worktree_without_force(repo: Path, trees: Worktrees) -> None:
    worktree = trees.create("a", 1)

    with pytest.raises(TundraError, match=r"locked \(auto-tundra: agent a is running\)"):
        trees.remove(worktree.path)
    assert trees.list()[0].locked

    assert trees.remove(worktree.path, force=True) is None
    assert trees.list() == [] and branches(repo) == ["main"]


def test_forced_remove_archives_the_dirty_tree_first(repo: Path, trees: Worktrees) -> None:
    worktree = unlocked(trees, "a")
    head = worktree.head
    (worktree.path / "README.md").write_text("edited\n")
    (worktree.path / "deep" / "er").mkdir(parents=True)
    (worktree.path / "deep" / "er" / "new.txt").write_text("untracked\n")

    ref = trees.remove(worktree.path, force=True)

    assert ref == "refs/tundra/archive/a/1/20250102T030405.678901Z"
    assert archive_refs(repo) == [ref]
    assert git(repo, "show", f"{ref}:README.md") == "edited"
    assert git(repo, "show", f"{ref}:deep/er/new.txt") == "untracked"
    assert git(repo, "rev-parse", f"{ref}^1") == head
    assert not worktree.path.exists()
    assert branches(repo) == ["main"]
    assert git(repo, "status", "--porcelain") == ""


def test_forced_remove_keeps_staged_and_working_versions(repo: Path, trees: Worktrees) -> None:
    worktree = unlocked(trees, "a")
    (worktree.path / "README.md").write_text("staged\n")
    git(worktree.path, "add", "README.md")
    (worktree.path / "README.md").write_text("working\n")

    ref = trees.remove(worktree.path, force=True)

    assert ref is not None
    assert git(repo, "show", f"{ref}:README.md") == "working"
    assert git(repo, "show", f"{ref}^2:README.md") == "staged"


def test_forced_remove_keeps_unmerged_commits_reachable(repo: Path, trees: Worktrees) -> None:
    worktree = unlocked(trees, "a")
    first = commit(worktree.path, "one.txt", "1\n")
    second = commit(worktree.path, "two.txt", "2\n")

    ref = trees.remove(worktree.path, force=True)

    assert ref is not None
    assert git(repo, "rev-parse", ref) == second
    assert {first, second} <= set(git(repo, "rev-list", ref).split())
    assert branches(repo) == ["main"]


def test_a_stash_on_the_branch_is_refused_then_archived(repo: Path, trees: Worktrees) -> None:
    worktree = unlocked(trees, "a")
    (worktree.path / "README.md").write_text("stashed\n")
    git(worktree.path, "stash", "-q")
    stash = git(repo, "rev-parse", "refs/stash")

    with pytest.raises(TundraError, match="1 stash entry on polecat/a/1"):
        trees.remove(worktree.path)
    ref = trees.remove(worktree.path, force=True)

    assert ref is not None
    assert git(repo, "rev-parse", f"{ref}^2") == stash
    assert git(repo, "show", f"{ref}^2:README.md") == "stashed"


def test_forced_remove_works_without_a_git_identity(
    repo: Path, trees: Worktrees, monkeypatch: pytest.MonkeyPatch
) -> None:
    worktree = unlocked(trees, "a")
    (worktree.path / "README.md").write_text("edited\n")
    git(repo, "config", "user.useConfigOnly", "true")
    for name in ("NAME", "EMAIL"):
        monkeypatch.delenv(f"GIT_AUTHOR_{name}")
        monkeypatch.delenv(f"GIT_COMMITTER_{name}")
    monkeypatch.delenv("EMAIL", raising=False)

    ref = trees.remove(worktree.path, force=True)

    assert ref is not None
    assert git(repo, "log", "-1", "--format=%an", ref) == "auto-tundra"


# A worktree whose directory vanished (F8)


def test_git_prune_keeps_a_locked_worktree_whose_directory_vanished(
    repo: Path, trees: Worktrees
) -> None:
    """Git's own behaviour, which `prune` and F8 rely on: a lock outlives the directory."""
    live = trees.create("live", 1)
    tip = commit(live.path, "work.txt", "unmerged\n")
    stopped = unlocked(trees, "stopped")
    shutil.rmtree(live.path)
    shutil.rmtree(stopped.path)

    git(repo, "worktree", "prune")

    porcelain = git(repo, "worktree", "list", "--porcelain")
    assert str(live.path) in porcelain and str(stopped.path) not in porcelain
    assert git(repo, "rev-parse", "polecat/live/1") == tip
    assert "polecat/stopped/1" in branches(repo)
    [listed] = trees.list()
    assert listed.missing and listed.locked and not listed.dirty


def test_prune_forgets_only_unlocked_vanished_worktrees(repo: Path, trees: Worktrees) -> None:
    live = trees.create("live", 1)
    stopped = unlocked(trees, "stopped")
    kept = unlocked(trees, "kept")
    shutil.rmtree(live.path)
    shutil.rmtree(stopped.path)

    assert trees.prune() == [stopped.path]
    assert {w.path for w in trees.list()} == {live.path, kept.path}


def test_forced_remove_of_a_vanished_locked_worktree_archives_its_branch(
    repo: Path, trees: Worktrees
) -> None:
    worktree = trees.create("a", 1)
    tip = commit(worktree.path, "work.txt", "unmerged\n")
    shutil.rmtree(worktree.path)

    with pytest.raises(TundraError, match=r"locked .*1 unmerged commit"):
        trees.remove(worktree.path)
    ref = trees.remove(worktree.path, force=True)

    assert ref is not None and git(repo, "rev-parse", ref) == tip
    assert trees.list() == [] and branches(repo) == ["main"]


# Never lose a commit


def _make_state(
    repo: Path, path: Path, edit: bool, untracked: bool, commits: int, stash: bool, detach: bool
) -> None:
    if stash:
        (path / "README.md").write_text("stashed\n")
        git(path, "stash", "-q")
    if detach:
        git(path, "switch", "-q", "--detach")
    for n in range(commits):
        commit(path, f"c{n}.txt", f"{n}\n")
    if edit:
        (path / "README.md").write_text("edited\n")
    if untracked:
        (path / "loose.txt").write_text("loose\n")


@pytest.mark.parametrize(
    ("edit", "untracked", "commits", "stash", "detach"),
    [
        *itertools.product([False, True], [False, True], [0, 2], [False, True], [False]),
        (False, False, 1, False, True),
        (True, True, 2, True, True),
    ],
)
def test_no_commit_is_ever_lost(
    repo: Path,
    trees: Worktrees,
    edit: bool,
    untracked: bool,
    commits: int,
    stash: bool,
    detach: bool,
) -> None:
    worktree = trees.create("a", 1)
    _make_state(repo, worktree.path, edit, untracked, commits, stash, detach)
    before = all_commits(repo) | set(git(worktree.path, "rev-list", "HEAD").split())
    dirty = edit or untracked or stash

    for force in (False, True):
        try:
            trees.remove(worktree.path, force=force)
        except TundraError:
            assert not force
            assert trees.list()[0].dirty == dirty
        assert before <= all_commits(repo)

    assert trees.list() == []
    if edit or untracked:
        [ref] = archive_refs(repo)
        files = git(repo, "ls-tree", "-r", "--name-only", ref).split()
        assert ("loose.txt" in files) == untracked


# Git itself


def test_git_missing_is_a_one_line_error(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TundraError, match="git is not installed"):
        Worktrees(repo, tmp_path / "wt")


def test_not_a_repository_is_a_one_line_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(TundraError, match="not inside a git work tree") as caught:
        Worktrees(plain, plain / "wt")
    assert "\n" not in str(caught.value)


def test_a_hung_git_times_out(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "git version 2.40.0"; exit 0; fi\n'
        "exec sleep 30\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(TundraError, match=r"git rev-parse timed out after 0.5s"):
        Worktrees(repo, tmp_path / "wt", timeout=0.5)


def test_an_old_git_is_refused(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text('#!/bin/sh\necho "git version 2.20.1"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(TundraError, match=r"git 2\.36 or newer is needed, found git version 2\.20"):
        Worktrees(repo, tmp_path / "wt")
