"""The refinery's git: rebase or merge a submitted tip in a worktree of its own, and
advance the target branch with a compare-and-swap, never a checkout or a force.

Three rules keep every commit and the operator's files safe (plan §0, traps 1-5):
- Nothing writing runs in the operator's checkout; there only plumbing on refs
  (`update-ref` with an old value, `worktree add/remove/prune`).
- A SHA is rebased, never a branch, in a detached worktree: the polecat's branch
  (maybe checked out in its own worktree) never moves.
- The operator's git config cannot leak in: no hooks, no signing, no `updateRefs`,
  no autostash or rerere; a fixed committer so it works with no identity at all.

Synchronous on purpose: the daemon runs each call with `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.refinery import CHECKOUT_BASE
from tundra_tui.orchestra.worktrees import (
    _REDIRECTING_ENV,
    BRANCH_PREFIX,
    _one_line,
    run_git_command,
)

REFINERY_NAME = "auto-tundra refinery"
REFINERY_EMAIL = "refinery@auto-tundra.invalid"
MAX_COMMITS = 500
"""At most this many commits are listed per attempt (a runaway branch stays readable)."""

SAFE_CONFIG: tuple[str, ...] = (
    "core.hooksPath=/dev/null",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "rebase.updateRefs=false",
    "rebase.autoSquash=false",
    "rebase.autoStash=false",
    "rebase.abbreviateCommands=false",
    "rebase.missingCommitsCheck=ignore",
    "merge.autoStash=false",
    "pull.rebase=false",
    "rerere.enabled=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "core.fsmonitor=false",
    "core.autocrlf=false",
    "advice.detachedHead=false",
)
"""`-c` options on every command: the operator's config must not change what we do."""

_SAFE_ENV = {
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "LC_ALL": "C",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_COMMITTER_NAME": REFINERY_NAME,
    "GIT_COMMITTER_EMAIL": REFINERY_EMAIL,
    "GIT_AUTHOR_NAME": REFINERY_NAME,
    "GIT_AUTHOR_EMAIL": REFINERY_EMAIL,
}
_LOCK_FILE = re.compile(r"Unable to create '([^']+\.lock)'")


@dataclass(frozen=True, slots=True)
class Integration:
    """What bringing a tip up to date with the target gave.

    `ok` with `result` the commit to gate and land (equal to the base when the work is
    already in the target); otherwise `conflicts` lists the paths, or, when empty, git
    failed for another reason given in `detail`."""

    ok: bool
    result: str = ""
    conflicts: tuple[str, ...] = field(default_factory=tuple)
    detail: str = ""


class RefineryGit:
    """Git for one town's refinery.

    Args:
        repo: The town's repository (the operator's checkout; only refs are written there).
        workdir: The refinery's own worktree, `.tundra/refinery/work`: made fresh per
            attempt, detached, never locked, removed after.
        timeout: Seconds any one git command may take (a rebase of a big branch).
    """

    def __init__(self, repo: Path, workdir: Path, *, timeout: float = 120.0) -> None:
        self.repo = Path(repo)
        self.workdir = Path(workdir)
        self.timeout = timeout

    # Refs

    def resolve_target(self, name: str) -> tuple[str, str]:
        """(full ref, commit) of the target branch; refused for HEAD, a detached or
        missing branch, or anything that is not a local branch."""
        short = name.removeprefix("refs/heads/")
        if not short or short == "HEAD" or short.startswith("refs/"):
            raise TundraError(
                f"no target branch: {name or 'nothing'!r} is not a local branch;"
                " set orchestra.target_branch"
            )
        ref = f"refs/heads/{short}"
        if self._git("check-ref-format", ref, check=False).returncode != 0:
            raise TundraError(f"no target branch: {name!r} is not a valid branch name")
        sha = self.tip(ref)
        if not sha:
            raise TundraError(f"no target branch: {ref} does not exist in {self.repo}")
        return ref, sha

    def tip(self, ref: str) -> str:
        """The commit `ref` (a full ref name) points at, or "" when it does not exist."""
        result = self._git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    def commits(self, base: str, tip: str) -> list[tuple[str, str]]:
        """(sha, subject) of `base..tip`, oldest first: what the attempt brings."""
        output = self._git(
            "rev-list",
            "--reverse",
            "--no-commit-header",
            "--format=%H%x1f%s",
            f"--max-count={MAX_COMMITS}",
            tip,
            f"^{base}",
        ).stdout
        found = []
        for line in output.splitlines():
            sha, sep, subject = line.partition("\x1f")
            if sep:
                found.append((sha, subject))
        return found

    def archive(self, ref: str, commit: str) -> None:
        """Point the archive `ref` at `commit`, create-only; already there is fine."""
        self._check_full(ref, "refs/tundra/")
        made = self._git(
            "update-ref", "-m", "auto-tundra refinery: archive", ref, commit, "", check=False
        )
        if made.returncode != 0 and self.tip(ref) != commit:
            raise TundraError(f"cannot archive {commit[:12]} as {ref}: {_one_line(made.stderr)}")

    def advance(self, ref: str, new: str, old: str, message: str) -> Literal["ok", "moved"]:
        """Compare-and-swap `ref` from `old` to `new`.

        "moved" when `ref` is no longer at `old` (nothing changed); a TundraError for
        anything else, naming a `.lock` file a dead git left behind (never deleted here)."""
        self._check_full(ref, "refs/heads/")
        result = self._git("update-ref", "-m", message, ref, new, old, check=False)
        if result.returncode == 0:
            return "ok"
        if "but expected" in result.stderr:
            return "moved"
        lock = _LOCK_FILE.search(result.stderr)
        if lock:
            raise TundraError(
                f"cannot move {ref}: {lock.group(1)} exists (a git command died holding it?)"
            )
        raise TundraError(f"cannot move {ref}: {_one_line(result.stderr) or 'no message'}")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether `ancestor` is reachable from `descendant`."""
        result = self._git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise TundraError(f"git merge-base failed: {_one_line(result.stderr) or 'no message'}")

    def main_checkout_on(self, branch: str) -> bool:
        """Whether a worktree of the repository other than ours (the operator's checkout)
        has `branch` checked out, so advancing it moves HEAD under someone's files."""
        ref = f"refs/heads/{branch.removeprefix('refs/heads/')}"
        return any(b == ref for _, b in self._worktrees())

    def mark_checkout_base(self, branch: str, old: str) -> None:
        """Keep the commit the operator's files match, `refs/tundra/checkout-base/<branch>`,
        create-only: the first old commit is the one to `read-tree -m -u` from."""
        short = branch.removeprefix("refs/heads/")
        self._git(
            "update-ref",
            "-m",
            "auto-tundra refinery: the checkout's files match this commit",
            f"{CHECKOUT_BASE}/{short}",
            old,
            "",
            check=False,
        )

    def delete_branch(self, branch: str, expected: str, *, target: str = "") -> bool:
        """Delete `branch` only while it is an agent's (`polecat/…`), is not the `target`,
        points at `expected` and no worktree has it checked out; False (and the branch
        kept) otherwise."""
        short = branch.removeprefix("refs/heads/")
        ref = f"refs/heads/{short}"
        if not short.startswith(f"{BRANCH_PREFIX}/") or short == target.removeprefix("refs/heads/"):
            return False
        if not expected or any(b == ref for _, b in self._worktrees()):
            return False
        result = self._git(
            "update-ref", "-m", "auto-tundra refinery: merged", "-d", ref, expected, check=False
        )
        if result.returncode != 0:
            return False
        self._git("config", "--remove-section", f"branch.{short}", check=False)
        return True

    # The refinery's worktree

    def reset_workdir(self) -> None:
        """Remove the refinery's worktree whatever state it is in (a half-done rebase, a
        kill -9), and forget it; idempotent."""
        registered = any(p == self.workdir.resolve() for p, _ in self._worktrees(all_=True))
        if registered:
            self._git("worktree", "remove", "--force", "--force", str(self.workdir), check=False)
        if os.path.lexists(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)
            if os.path.lexists(self.workdir):
                raise TundraError(f"cannot remove the refinery's worktree {self.workdir}")
        if registered:
            self._git("worktree", "prune")

    def prepare(self, commit: str) -> None:
        """A fresh detached worktree at `commit` (whatever was there is removed first)."""
        self.reset_workdir()
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        self._git("worktree", "add", "--detach", "--quiet", str(self.workdir), commit)

    def integrate(
        self, strategy: Literal["rebase", "merge"] | str, base: str, tip: str, message: str
    ) -> Integration:
        """Bring `tip` up to date with `base` in the prepared worktree.

        Rebase replays `base..tip` onto `base` (the SHA, so no branch moves); merge makes
        a `--no-ff` merge commit with `message`. A tip that already contains `base` is
        rebased to itself (a fast-forward; the gates still run). A conflict is aborted and its paths
        listed; the worktree is left clean either way."""
        work = self.workdir
        if strategy == "rebase" and self.is_ancestor(base, tip):
            # The agent merged the target in itself: replaying its commits would meet
            # the conflicts its merge already resolved. The tip is a fast-forward, checked
            # out so the gates run on it (the worktree was prepared at `base`).
            self._git("checkout", "-q", "--detach", tip, cwd=work)
            return Integration(ok=True, result=tip)
        if strategy == "rebase":
            run = self._git("rebase", "--no-autosquash", base, tip, cwd=work, check=False)
            abort = ("rebase", "--abort")
        elif strategy == "merge":
            run = self._git(
                "merge", "--no-ff", "--no-edit", "-m", message, tip, cwd=work, check=False
            )
            abort = ("merge", "--abort")
        else:
            raise TundraError(f"unknown refinery.strategy {strategy!r}: expected rebase or merge")
        if run.returncode != 0:
            listed = self._git(
                "diff", "--name-only", "-z", "--diff-filter=U", cwd=work, check=False
            ).stdout
            conflicts = tuple(sorted({p for p in listed.split("\0") if p}))
            self._git(*abort, cwd=work, check=False)
            detail = _one_line(run.stderr or run.stdout) or f"git {strategy} failed"
            return Integration(ok=False, conflicts=conflicts, detail=detail)
        result = self._git("rev-parse", "--verify", "HEAD^{commit}", cwd=work).stdout.strip()
        return Integration(ok=True, result=result)

    # Running git

    def _worktrees(self, *, all_: bool = False) -> list[tuple[Path, str]]:
        """(resolved path, full branch ref or "") of each worktree; ours left out unless
        `all_`."""
        output = self._git("worktree", "list", "--porcelain", "-z").stdout
        found: list[tuple[Path, str]] = []
        record: dict[str, str] = {}
        ours = self.workdir.resolve()
        for item in [*output.split("\0"), ""]:
            if item:
                key, _, value = item.partition(" ")
                record[key] = value
            elif record:
                path = Path(record["worktree"]).resolve()
                if all_ or path != ours:
                    found.append((path, record.get("branch", "")))
                record = {}
        return found

    def _check_full(self, ref: str, prefix: str) -> None:
        """A short name would make `update-ref` write a pseudo-ref such as `.git/main`."""
        if not ref.startswith(prefix) or self._git("check-ref-format", ref, check=False).returncode:
            raise TundraError(f"refusing to update {ref!r}: not a full ref under {prefix}")

    def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return run_git(self.repo if cwd is None else cwd, args, self.timeout, env, check=check)


def safe_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment minus what redirects git, plus the refinery's fixed one."""
    environ = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_ENV}
    for key in [k for k in environ if k.startswith("GIT_CONFIG")]:
        del environ[key]  # GIT_CONFIG_PARAMETERS/COUNT would add config back
    environ.update(_SAFE_ENV)
    environ.update(extra or {})
    return environ


def run_git(
    cwd: Path,
    args: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run git without a shell under the refinery's safe config; one-line TundraError."""
    command = ["git", "-C", str(cwd)]
    for option in SAFE_CONFIG:
        command += ["-c", option]
    command += list(args)
    return run_git_command(command, list(args), safe_env(env), timeout, check=check)
