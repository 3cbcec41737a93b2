"""Whether a bead's branch is ready for review: it exists, has work, and nothing is left unsaved.

A submit moves a bead to review, where a reviewer (next, the refinery) merges its branch.
A branch with no commit beyond the target has nothing to review, and a worktree with
uncommitted changes holds work the review would never see: both are refused with the
reason, so the agent can fix it and submit again. Git runs without a shell, under
`LC_ALL=C` and a timeout, off the event loop (the caller runs this in a thread).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tundra_tui.domain.errors import TundraError
from tundra_tui.orchestra.worktrees import _REDIRECTING_ENV

GIT_TIMEOUT_S = 30.0


def submit_problem(repo: Path, branch: str, target: str = "") -> str | None:
    """Why `branch` cannot go to review now, or None when it can.

    `target` is the branch the work will be merged into; empty means the main worktree's
    branch, else `main` or `master` (as `orchestra.target_branch` defaults)."""
    if not _git(repo, "rev-parse", "--is-inside-work-tree", check=False).stdout.startswith("true"):
        return f"{repo} is not a git repository: there is no branch to submit"
    if not branch:
        return "the bead has no branch to submit"
    if not _ref_exists(repo, f"refs/heads/{branch}"):
        return f"branch {branch} does not exist"
    target = target or default_target(repo)
    if not _ref_exists(repo, f"refs/heads/{target}"):
        return f"target branch {target} does not exist"
    if target == branch:
        return f"branch {branch} is the target branch itself"
    ahead = _git(repo, "rev-list", "--count", f"refs/heads/{target}..refs/heads/{branch}").stdout
    if int(ahead.strip() or "0") == 0:
        return f"{branch} has no commit beyond {target}: commit your work first"
    holder = worktree_holding(repo, branch)
    if holder is not None and _dirty(holder):
        return f"the worktree at {holder} has uncommitted changes: commit or remove them first"
    return None


def default_target(repo: Path) -> str:
    """The main worktree's branch, else `main` or `master`; "" when there is none."""
    entries = _worktrees(repo)
    if entries and entries[0][1]:
        return entries[0][1]
    for name in ("main", "master"):
        if _ref_exists(repo, f"refs/heads/{name}"):
            return name
    return ""


def worktree_holding(repo: Path, branch: str) -> Path | None:
    """The worktree (the main one included) with `branch` checked out, if any."""
    for path, checked_out in _worktrees(repo):
        if checked_out == branch and path.is_dir():
            return path
    return None


def _worktrees(repo: Path) -> list[tuple[Path, str]]:
    """(path, short branch name or "" when detached) for every worktree, main first."""
    output = _git(repo, "worktree", "list", "--porcelain", "-z").stdout
    found: list[tuple[Path, str]] = []
    record: dict[str, str] = {}
    for field in [*output.split("\0"), ""]:
        if field:
            key, _, value = field.partition(" ")
            record[key] = value
        elif record:
            branch = record.get("branch", "").removeprefix("refs/heads/")
            found.append((Path(record["worktree"]), branch))
            record = {}
    return found


def _dirty(path: Path) -> bool:
    """Uncommitted changes, untracked files included (ignored files are not work)."""
    status = _git(path, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    return bool(status.stdout.strip("\0"))


def _ref_exists(repo: Path, ref: str) -> bool:
    return _git(repo, "show-ref", "--verify", "--quiet", ref, check=False).returncode == 0


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in `cwd` without a shell; one-line TundraError on failure."""
    environ = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_ENV}
    environ.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    try:
        result = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            stdin=subprocess.DEVNULL,
            env=environ,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise TundraError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise TundraError(f"git {args[0]} timed out after {GIT_TIMEOUT_S:g}s") from None
    except OSError as error:
        raise TundraError(f"cannot run git: {error.strerror or error}") from None
    if check and result.returncode != 0:
        message = " ".join(result.stderr.split())[:300] or "no message"
        raise TundraError(f"git {args[0]} failed: {message}")
    return result
