"""Git worktrees for agents: one locked worktree and branch per agent and bead.

Each agent works in `<root>/<agent>-<bead>` on branch `polecat/<agent>/<bead>`
(`adhoc` when there is no bead). The worktree is locked while the agent owns it,
so neither `git worktree prune` nor `git gc` drops it if its directory vanishes.

Removal never loses work (DESIGN.md, "Never lose work in git"): uncommitted
changes, stashes and unmerged commits refuse a plain removal, and a forced one
first points `refs/tundra/archive/<agent>/<bead>/<UTC time>` at a commit that
holds all of them. Git runs without a shell, under `-C`, `LC_ALL=C` and a
timeout; every failure surfaces as a one-line `TundraError`.
"""

from __future__ import annotations

import builtins
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from tundra_tui.domain.agents import validate_agent_name
from tundra_tui.domain.clock import Clock, system_clock
from tundra_tui.domain.errors import NotFound, TundraError

BRANCH_PREFIX = "polecat"
ARCHIVE_PREFIX = "refs/tundra/archive"
ADHOC = "adhoc"
MIN_GIT = (2, 36)
"""`git worktree list --porcelain -z` and `worktree add --lock --reason` need 2.36."""

_NULL_SHA = "0" * 40
_ROOT_MODE = 0o700
# Variables that would point git at another repository, index or work tree than
# the `-C` directory, e.g. when `at` itself runs from inside a git hook.
_REDIRECTING_ENV = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
    }
)
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "auto-tundra",
    "GIT_AUTHOR_EMAIL": "auto-tundra@localhost",
    "GIT_COMMITTER_NAME": "auto-tundra",
    "GIT_COMMITTER_EMAIL": "auto-tundra@localhost",
}
_STASH_SUBJECT = re.compile(r"(?:WIP on|On) ([^:]+): ")


@dataclass(frozen=True, slots=True)
class Worktree:
    """One agent's worktree as git reports it now."""

    agent: str
    bead_id: int | None
    path: Path
    branch: str
    """Short branch name; empty when the worktree's HEAD is detached."""
    head: str
    locked: bool
    dirty: bool
    """Uncommitted changes (untracked files included) or stash entries on the branch."""
    missing: bool = False
    """The directory is gone but git still has the worktree registered."""
    lock_reason: str = ""
    """Why it is locked (ours say which agent runs in it); empty when it is not."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """One record of `git worktree list --porcelain -z`."""

    path: Path
    head: str
    branch: str
    locked: bool
    lock_reason: str
    missing: bool


@dataclass(frozen=True, slots=True)
class _Loss:
    """What removing a worktree would throw away."""

    changes: int
    stashes: list[str]
    unmerged: list[str]
    target: str

    def __bool__(self) -> bool:
        return bool(self.changes or self.stashes or self.unmerged)

    def describe(self, branch: str) -> list[str]:
        where = branch or "detached HEAD"
        parts = []
        if self.changes:
            parts.append(_count(self.changes, "uncommitted change"))
        if self.stashes:
            parts.append(f"{_count(len(self.stashes), 'stash entry', 'stash entries')} on {where}")
        if self.unmerged:
            target = self.target.removeprefix("refs/heads/")
            parts.append(
                f"{_count(len(self.unmerged), 'unmerged commit')} on {where} (not in {target})"
            )
        return parts


class Worktrees:
    """Creates, inspects and removes agents' worktrees of one repository.

    Args:
        repo: The town's git repository (any directory inside its main work tree).
        root: Where agents' worktrees live, normally `Town.worktrees_dir`.
        timeout: Seconds any one git command may take.
        clock: Names archive refs; injected so tests get fixed names.
    """

    def __init__(
        self,
        repo: Path,
        root: Path,
        *,
        timeout: float = 30.0,
        clock: Clock = system_clock,
    ) -> None:
        self.timeout = timeout
        self._clock = clock
        _check_git_version(self._run(["--version"], cwd=None).stdout)
        result = self._run(["rev-parse", "--show-toplevel"], cwd=Path(repo), check=False)
        if result.returncode != 0:
            raise TundraError(f"{repo} is not inside a git work tree: {_one_line(result.stderr)}")
        self.repo = Path(result.stdout.strip()).resolve()
        self.root = Path(root).absolute()

    def create(self, agent: str, bead_id: int | None = None, *, base: str = "HEAD") -> Worktree:
        """Add a locked worktree for `agent` on `polecat/<agent>/<bead>`.

        An existing branch of that name is checked out as it is (`base` is then
        ignored), so an agent can resume its own work; one checked out in another
        worktree is refused, since git allows a branch in only one place.
        """
        validate_agent_name(agent)
        bead = _bead_part(bead_id)
        branch = self._check_branch(f"{BRANCH_PREFIX}/{agent}/{bead}")
        path = self._new_path(f"{agent}-{bead}")
        reason = f"auto-tundra: agent {agent} is running"
        # --lock at add time leaves no window in which a prune could drop the entry.
        add = ["worktree", "add", "--lock", "--reason", reason]
        if self._ref_exists(f"refs/heads/{branch}"):
            holder = next((e for e in self._entries() if e.branch == branch), None)
            if holder is not None:
                raise TundraError(
                    f"branch {branch} is already checked out at {holder.path}; remove that first"
                )
            self._git(*add, str(path), branch)
        else:
            self._git(*add, "-b", branch, str(path), self._commit(base))
        return self._worktree(self._entry(path), self._stashes())

    def holding(self, branch: str) -> Worktree | None:
        """The worktree under `root` that has `branch` checked out, if any.

        Found by branch, not by directory name: a worktree reused for another bead
        keeps the directory it was made as (its agent may be running in it).
        """
        root = self._resolved_root()
        for entry in self._entries():
            if entry.branch == branch and entry.path.parent == root:
                return self._worktree(entry, self._stashes())
        return None

    def has_branch(self, branch: str) -> bool:
        """Whether the local branch `branch` exists."""
        return self._ref_exists(f"refs/heads/{branch}")

    def clean(self, path: Path) -> bool:
        """No uncommitted changes (untracked files count) and no stash on its branch."""
        entry = self._entry(path)
        return not (self._changes(entry) or _stashes_on(self._stashes(), entry.branch))

    def switch(self, path: Path, branch: str, *, base: str = "HEAD") -> Worktree:
        """Check out `branch` in an existing worktree, so an idle agent takes its next bead
        where it runs (no new process, no new directory).

        A new branch starts at `base`; an existing one is checked out as it is (a bead
        coming back resumes its branch). Refused, leaving the worktree as it was, when
        the worktree has uncommitted changes or stashes (they belong to the branch it
        is on) or `branch` is checked out in another worktree.
        """
        entry = self._entry(path)
        branch = self._check_branch(branch)
        if entry.missing or not entry.path.is_dir():
            raise TundraError(f"cannot switch {entry.path}: its directory is gone")
        loss = self._changes(entry), _stashes_on(self._stashes(), entry.branch)
        if loss[0] or loss[1]:
            parts = [_count(loss[0], "uncommitted change")] if loss[0] else []
            if loss[1]:
                parts.append(_count(len(loss[1]), "stash entry", "stash entries"))
            raise TundraError(
                f"cannot switch {entry.path} to {branch}: it has {' and '.join(parts)}"
                f" on {entry.branch or 'a detached HEAD'}"
            )
        if entry.branch == branch:
            return self._worktree(entry, self._stashes())
        if self._ref_exists(f"refs/heads/{branch}"):
            holder = next((e for e in self._entries() if e.branch == branch), None)
            if holder is not None:
                raise TundraError(f"branch {branch} is already checked out at {holder.path}")
            self._git("switch", "--no-guess", "--end-of-options", branch, cwd=entry.path)
        else:
            commit = self._commit(base)
            self._git("switch", "--no-guess", "-c", branch, commit, cwd=entry.path)
        return self._worktree(self._entry(path), self._stashes())

    def unlock_stale(self, reason_prefix: str) -> builtins.list[Path]:
        """Unlock every worktree under `root` whose lock reason starts with `reason_prefix`:
        at a daemon's start no agent of ours runs, so the locks a killed daemon left are
        stale. Returns the paths unlocked."""
        root = self._resolved_root()
        unlocked = []
        for entry in self._entries():
            ours = entry.locked and entry.lock_reason.startswith(reason_prefix)
            if ours and entry.path.parent == root:
                self._git("worktree", "unlock", str(entry.path))
                unlocked.append(entry.path)
        return unlocked

    def lock(self, path: Path, reason: str) -> None:
        """Lock a worktree so git refuses to prune or remove it while its agent runs."""
        entry = self._entry(path)
        self._git("worktree", "lock", "--reason", reason, str(entry.path))

    def unlock(self, path: Path) -> None:
        """Unlock a worktree; unlocking one that is not locked does nothing."""
        entry = self._entry(path)
        if entry.locked:
            self._git("worktree", "unlock", str(entry.path))

    def list(self) -> builtins.list[Worktree]:
        """The worktrees under `root`; others of the repository are not ours to show."""
        stashes = self._stashes()
        root = self._resolved_root()
        return [self._worktree(e, stashes) for e in self._entries() if e.path.parent == root]

    def status(self, path: Path, *, target: str | None = None) -> tuple[bool, builtins.list[str]]:
        """Whether the worktree is dirty, and the commits on it that `target` lacks.

        Dirty means uncommitted changes, untracked files included, or stash
        entries made on its branch. A worktree whose directory vanished has no
        changes left to lose. `target` defaults to the main worktree's branch,
        else `main` or `master`.
        """
        loss = self._loss(self._entry(path), target)
        return bool(loss.changes or loss.stashes), loss.unmerged

    def remove(self, path: Path, *, force: bool = False, target: str | None = None) -> str | None:
        """Remove a worktree and its branch; return the archive ref written, if any.

        Refused, leaving everything as it was, when the worktree is locked (its
        agent may be running) or holds work that `target` lacks, unless `force`.
        A forced removal first archives that work under `refs/tundra/archive/`,
        so every commit that was on the branch stays reachable from a ref. Only
        branches in the `polecat/` namespace are deleted, and only once merged
        or archived. Stop the agent before forcing: whatever it writes after the
        archive is taken is not in it.
        """
        entry = self._entry(path)
        loss = self._loss(entry, target)
        problems = loss.describe(entry.branch)
        if entry.locked:
            problems.insert(0, f"locked ({_one_line(entry.lock_reason) or 'no reason given'})")
        if problems and not force:
            advice = (
                f"forcing archives the work under {ARCHIVE_PREFIX}/ first"
                if loss
                else "stop its agent or force the removal"
            )
            raise TundraError(f"refusing to remove {entry.path}: {', '.join(problems)}; {advice}")
        archived = self._archive(entry, loss) if loss else None
        if entry.locked:
            self._git("worktree", "unlock", str(entry.path))
        try:
            self._git("worktree", "remove", *(["--force"] if force else []), str(entry.path))
        except TundraError:
            if entry.locked:
                self._git(
                    "worktree", "lock", "--reason", entry.lock_reason, str(entry.path), check=False
                )
            raise
        if entry.branch.startswith(f"{BRANCH_PREFIX}/") and (archived or not loss.unmerged):
            self._delete_branch(entry.branch, entry.head)
        return archived

    def retire(self, path: Path, *, keep: str, target: str | None = None) -> None:
        """Remove a worktree whose work has landed or is kept under `keep` (an archive ref).

        Never forced and unlocks nothing: refused, leaving everything as it was, when it
        is locked (its agent may run), dirty, or holds commits neither `target` nor `keep`
        has (work made after the submission). The branch stays: the refinery deletes it
        with a compare-and-swap on the tip it merged."""
        entry = self._entry(path)
        target_ref = self._target(target, entry)
        problems = []
        if entry.locked:
            problems.append(f"locked ({_one_line(entry.lock_reason) or 'no reason given'})")
        changes = self._changes(entry)
        stashes = _stashes_on(self._stashes(), entry.branch)
        if changes or stashes:
            problems.extend(_Loss(changes, stashes, [], target_ref).describe(entry.branch))
        if entry.head != _NULL_SHA:
            keep_ref = self._commit(keep)
            extra = self._git("rev-list", entry.head, f"^{target_ref}", f"^{keep_ref}").stdout
            if extra.split():
                where = entry.branch or "detached HEAD"
                count = _count(len(extra.split()), "commit")
                problems.append(f"{count} on {where} in neither {target_ref} nor {keep}")
        if problems:
            raise TundraError(f"refusing to retire {entry.path}: {', '.join(problems)}")
        self._git("worktree", "remove", str(entry.path))

    def prune(self) -> builtins.list[Path]:
        """Forget worktrees whose directories vanished; return the paths forgotten.

        Git prunes across the whole repository but never a locked entry, so a
        running agent's worktree keeps its registration (and its branch keeps
        its commits either way) until the agent is stopped and it is unlocked.
        """
        before = {e.path for e in self._entries()}
        self._git("worktree", "prune")
        return sorted(before - {e.path for e in self._entries()})

    # Inspection

    def _entries(self) -> builtins.list[_Entry]:
        output = self._git("worktree", "list", "--porcelain", "-z").stdout
        entries: builtins.list[_Entry] = []
        record: dict[str, str] = {}
        for field in output.split("\0"):
            if field:
                key, _, value = field.partition(" ")
                record[key] = value
            elif record:
                entries.append(
                    _Entry(
                        path=Path(record["worktree"]).resolve(),
                        head=record.get("HEAD", _NULL_SHA),
                        branch=record.get("branch", "").removeprefix("refs/heads/"),
                        locked="locked" in record,
                        lock_reason=record.get("locked", ""),
                        missing="prunable" in record,
                    )
                )
                record = {}
        return entries

    def _entry(self, path: Path) -> _Entry:
        resolved = self._confined(path)
        for entry in self._entries():
            if entry.path == resolved:
                return entry
        raise NotFound(f"{resolved} is not a worktree of {self.repo}")

    def _worktree(self, entry: _Entry, stashes: builtins.list[tuple[str, str]]) -> Worktree:
        agent, bead_id = _identity(entry.path.name)
        dirty = bool(self._changes(entry) or _stashes_on(stashes, entry.branch))
        return Worktree(
            agent=agent,
            bead_id=bead_id,
            path=entry.path,
            branch=entry.branch,
            head=entry.head,
            locked=entry.locked,
            dirty=dirty,
            missing=entry.missing or not entry.path.is_dir(),
            lock_reason=entry.lock_reason if entry.locked else "",
        )

    def _loss(self, entry: _Entry, target: str | None) -> _Loss:
        target_ref = self._target(target, entry)
        unmerged: builtins.list[str] = []
        if entry.head != _NULL_SHA:
            unmerged = self._git("rev-list", entry.head, f"^{target_ref}").stdout.split()
        return _Loss(
            changes=self._changes(entry),
            stashes=_stashes_on(self._stashes(), entry.branch),
            unmerged=unmerged,
            target=target_ref,
        )

    def _changes(self, entry: _Entry) -> int:
        """How many paths `git status` reports, untracked files counted one by one."""
        if not entry.path.is_dir():
            return 0
        output = self._git(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
            cwd=entry.path,
        ).stdout
        fields = iter(output.split("\0"))
        count = 0
        for field in fields:
            if not field:
                continue
            count += 1
            if "R" in field[:2] or "C" in field[:2]:
                next(fields, None)  # a rename or copy is followed by its source path
        return count

    def _stashes(self) -> builtins.list[tuple[str, str]]:
        """Every stash entry as (commit, branch it was made on); refs/stash is repository-wide."""
        output = self._git("stash", "list", "--format=%H%x1f%gs").stdout
        stashes = []
        for line in output.splitlines():
            sha, _, subject = line.partition("\x1f")
            match = _STASH_SUBJECT.match(subject)
            stashes.append((sha, match.group(1) if match else ""))
        return stashes

    def _target(self, target: str | None, entry: _Entry) -> str:
        """The full ref that counts as merged; a ref, so merged commits stay reachable."""
        if target is None:
            main_branch = self._entries()[0].branch
            fallbacks = [b for b in ("main", "master") if self._ref_exists(f"refs/heads/{b}")]
            candidates = [main_branch] if main_branch else fallbacks
            if not candidates:
                raise TundraError(
                    "no branch to compare with: the main worktree is detached and there is"
                    " no main or master; pass a target"
                )
            target = candidates[0]
        result = self._git(
            "rev-parse", "--verify", "--symbolic-full-name", "--end-of-options", target, check=False
        )
        ref = result.stdout.strip()
        if result.returncode != 0 or not ref.startswith("refs/"):
            raise TundraError(f"target {target!r} does not name a branch of {self.repo}")
        if entry.branch and ref == f"refs/heads/{entry.branch}":
            raise TundraError(f"cannot compare {entry.branch} with itself; pass another target")
        return ref

    # Archiving

    def _archive(self, entry: _Entry, loss: _Loss) -> str:
        """Point a new archive ref at everything the removal would lose; return its name."""
        agent, bead_id = _identity(entry.path.name)
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        ref = f"{ARCHIVE_PREFIX}/{agent}/{_bead_part(bead_id)}/{stamp}"
        if self._git("check-ref-format", ref, check=False).returncode != 0:
            raise TundraError(f"cannot archive {entry.path}: {ref!r} is not a valid ref name")
        commit = self._snapshot(entry, loss) if loss.changes or loss.stashes else entry.head
        # An empty old value makes update-ref refuse to overwrite an existing archive.
        self._git("update-ref", "-m", "auto-tundra: archive before removal", ref, commit, "")
        return ref

    def _snapshot(self, entry: _Entry, loss: _Loss) -> str:
        """Commit the working tree, untracked files included, plus the index and stashes.

        A throwaway index keeps the worktree's own index, branch and files
        untouched; `git stash create` would miss untracked files. The archive
        commit's parents are HEAD, the staged state when it differs, and the
        branch's stashes, so one ref reaches all of them.
        """
        head = entry.head
        parents = [head] if head != _NULL_SHA else []
        head_tree = self._git("rev-parse", f"{head}^{{tree}}").stdout.strip() if parents else ""
        tree, staged = head_tree, ""
        if loss.changes:
            tree, staged = self._trees(entry)
        lines = [f"auto-tundra: archive of {entry.path} before a forced removal", ""]
        lines.append(f"branch: {entry.branch or '(detached)'}; first parent: its HEAD")
        if staged and staged not in (tree, head_tree):
            parents.append(self._commit_tree(staged, parents[:1], "auto-tundra: staged changes"))
            lines.append("second parent: the staged changes (index)")
        parents.extend(loss.stashes)
        if loss.stashes:
            lines.append(f"last {len(loss.stashes)} parent(s): stash entries on the branch")
        return self._commit_tree(tree, parents, "\n".join(lines))

    def _trees(self, entry: _Entry) -> tuple[str, str]:
        """(working tree, index tree or "") written through a temporary copy of the index."""
        index = self._git(
            "rev-parse", "--path-format=absolute", "--git-path", "index", cwd=entry.path
        ).stdout.strip()
        with tempfile.TemporaryDirectory(prefix="tundra-archive-") as scratch:
            temp_index = Path(scratch) / "index"
            env = {"GIT_INDEX_FILE": str(temp_index)}
            if Path(index).is_file():
                shutil.copyfile(index, temp_index)
            else:
                self._git("read-tree", "HEAD", cwd=entry.path, env=env)
            # Unmerged entries make write-tree fail; the working tree is then the record.
            result = self._git("write-tree", cwd=entry.path, env=env, check=False)
            staged = result.stdout.strip() if result.returncode == 0 else ""
            self._git("add", "--all", cwd=entry.path, env=env)
            tree = self._git("write-tree", cwd=entry.path, env=env).stdout.strip()
        return tree, staged

    def _commit_tree(self, tree: str, parents: builtins.list[str], message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree, "-m", message]
        for parent in parents:
            args += ["-p", parent]
        return self._git(*args, env=self._identity_env()).stdout.strip()

    def _identity_env(self) -> dict[str, str]:
        """A stand-in author when git has none, so archiving cannot fail for want of one."""
        for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
            if self._git("var", var, check=False).returncode != 0:
                return dict(_FALLBACK_IDENTITY)
        return {}

    def _delete_branch(self, branch: str, head: str) -> None:
        """Delete `branch` only if it still points at `head`, the commit checked or archived."""
        result = self._git(
            "update-ref",
            "-m",
            "auto-tundra: worktree removed",
            "-d",
            f"refs/heads/{branch}",
            head,
            check=False,
        )
        # A branch that moved since it was checked is simply kept: nothing is lost.
        if result.returncode == 0:
            self._git("config", "--remove-section", f"branch.{branch}", check=False)

    # Paths and refs

    def _resolved_root(self) -> Path:
        return self.root.resolve()

    def _confined(self, path: Path) -> Path:
        """Resolve `path` and insist it is a direct child of the worktree root."""
        root = self._resolved_root()
        resolved = Path(path).resolve()
        if resolved.parent != root:
            raise TundraError(f"{path} is not a worktree under {root}; refusing to touch it")
        return resolved

    def _new_path(self, name: str) -> Path:
        try:
            self.root.mkdir(mode=_ROOT_MODE, parents=True, exist_ok=True)
        except OSError as error:
            raise TundraError(f"cannot create {self.root}: {error.strerror or error}") from None
        path = self._resolved_root() / name
        if os.path.lexists(path):
            raise TundraError(f"{path} already exists; remove it or pick another agent or bead")
        return self._confined(path)

    def _check_branch(self, name: str) -> str:
        result = self._git("check-ref-format", "--branch", name, check=False)
        if result.returncode != 0 or result.stdout.strip() != name:
            raise TundraError(f"invalid branch name {name!r}")
        return name

    def _ref_exists(self, ref: str) -> bool:
        return self._git("show-ref", "--verify", "--quiet", ref, check=False).returncode == 0

    def _commit(self, base: str) -> str:
        result = self._git(
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{base}^{{commit}}",
            check=False,
        )
        if result.returncode != 0:
            raise TundraError(f"unknown base {base!r}: not a commit of {self.repo}")
        return result.stdout.strip()

    # Running git

    def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return self._run(list(args), cwd=cwd or self.repo, env=env, check=check)

    def _run(
        self,
        args: builtins.list[str],
        *,
        cwd: Path | None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run git without a shell; C locale so its messages read the same everywhere."""
        environ = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_ENV}
        # No prompts (they would hang until the timeout) and no optional index
        # locks, which could collide with the agent's own git commands.
        environ.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
        environ.update(env or {})
        command = ["git", *(["-C", str(cwd)] if cwd is not None else []), *args]
        return run_git_command(command, list(args), environ, self.timeout, check=check)


def run_git_command(
    command: list[str],
    args: list[str],
    env: Mapping[str, str],
    timeout: float,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a git `command` (no shell), every failure one TundraError line naming `args`.

    Shared by `Worktrees` and the refinery's git (orchestra/refinery_git.py), which add
    their own environment and `-c` options."""
    what = "git " + " ".join(args[:2] if args and args[0] == "worktree" else args[:1])
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            stdin=subprocess.DEVNULL,
            env=dict(env),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise TundraError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise TundraError(f"{what} timed out after {timeout:g}s") from None
    except OSError as error:
        raise TundraError(f"cannot run git: {error.strerror or error}") from None
    if check and result.returncode != 0:
        raise TundraError(f"{what} failed: {_one_line(result.stderr) or 'no message'}")
    return result


def _check_git_version(output: str) -> None:
    match = re.search(r"(\d+)\.(\d+)", output)
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_GIT:
        found = output.strip() or "an unknown version"
        raise TundraError(f"git {MIN_GIT[0]}.{MIN_GIT[1]} or newer is needed, found {found}")


def _bead_part(bead_id: int | None) -> str:
    if bead_id is None:
        return ADHOC
    if isinstance(bead_id, bool) or not isinstance(bead_id, int) or bead_id < 0:
        raise TundraError(f"invalid bead id {bead_id!r}: expected a non-negative integer")
    return str(bead_id)


def _identity(name: str) -> tuple[str, int | None]:
    """(agent, bead id) from a worktree directory name `<agent>-<bead>`."""
    agent, sep, bead = name.rpartition("-")
    if sep and agent and bead == ADHOC:
        return agent, None
    if sep and agent and bead.isascii() and bead.isdigit():
        return agent, int(bead)
    return name, None


def _stashes_on(stashes: list[tuple[str, str]], branch: str) -> list[str]:
    return [sha for sha, on in stashes if branch and on == branch]


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse git's (possibly multi-line) message so an error stays on one line."""
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."
