"""Finding and creating a town: a directory holding `tundra.toml` and `.tundra/`.

`tundra.toml` is the team and is meant to be committed; `.tundra/` is state
(database, socket, logs, worktrees), private to the user (0700) and git-ignored.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from tundra_tui.domain.errors import TundraError

# tomllib, tomlkit, secrets and subprocess are imported where they are used: finding a
# town is the first step of every `at` command, and `at agent list` answered by the
# daemon needs nothing more of this module (see cli/quick.py).

TOWN_FILE = "tundra.toml"
STATE_DIR = ".tundra"
TOWN_ENV = "TUNDRA_TOWN"
PRIVATE_DIR_MODE = 0o700
"""State directories: the socket, database, logs and hook secrets are the user's alone."""
PRIVATE_FILE_MODE = 0o600
"""State files, whatever the umask."""
SHARED_FILE_MODE = 0o644
"""The most a file meant for the team (tundra.toml, the global config) is written with:
anyone may read it, only its owner may change what agents run."""
_STATE_SUBDIRS = ("logs", "agents")
"""Made with `.tundra/` so that code creating files or directories inside them never
leaves the umask to decide their mode."""
# .gitignore lines that already ignore the state directory beside them.
_IGNORE_LINES = frozenset({".tundra", ".tundra/", "/.tundra", "/.tundra/"})


class Town:
    """A town's root directory and where everything inside it lives.

    A plain class, not a dataclass: importing dataclasses (inspect with it) cost a
    quick command such as `at agent list --json` a fifth of its time.
    """

    __slots__ = ("root",)
    root: Path
    """Absolute and resolved, so two spellings of one town compare equal."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root).resolve())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Town is immutable: cannot set {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Town) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Town(root={self.root!r})"

    @property
    def config_path(self) -> Path:
        return self.root / TOWN_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def db_path(self) -> Path:
        return self.state_dir / "town.db"

    @property
    def local_config_path(self) -> Path:
        return self.state_dir / "local.toml"

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "at.sock"

    @property
    def worktrees_dir(self) -> Path:
        return self.state_dir / "worktrees"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def name(self) -> str:
        """`[general] name` from tundra.toml, else the directory name.

        Read directly and leniently: a title must never fail, and a broken file
        is reported by whoever loads the configuration properly.
        """
        import tomllib

        try:
            with self.config_path.open("rb") as file:
                general = tomllib.load(file).get("general")
        except (OSError, ValueError):
            return self.root.name
        name = general.get("name") if isinstance(general, dict) else None
        return name if isinstance(name, str) and name else self.root.name


def find_town(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Town:
    """The town to act on: `--town`, else `$TUNDRA_TOWN`, else the nearest parent with one."""
    environ = os.environ if env is None else env
    chosen = explicit if explicit is not None else environ.get(TOWN_ENV) or None
    if chosen is not None:
        root = Path(chosen).expanduser().absolute()
        if not (root / TOWN_FILE).is_file():
            raise TundraError(f"no town at {root}: {TOWN_FILE} not found (run `at init {root}`)")
        return Town(root)
    try:
        start = (cwd or Path.cwd()).resolve()
    except OSError as error:
        raise TundraError(f"cannot read the current directory: {error.strerror}") from None
    for directory in (start, *start.parents):
        if (directory / TOWN_FILE).is_file():
            return Town(directory)
    raise TundraError(
        f"not in a town: no {TOWN_FILE} in CWD or any parent (run `at init` or pass --town)"
    )


def ensure_state_dir(town: Town, *, warn: Callable[[str], None] | None = None) -> Path:
    """Create `.tundra/` (and its logs/ and agents/) as 0700, or check and tighten them.

    It holds the socket, the database and every agent's hook secret, so one owned by
    another user is refused: whoever owns it can read them or plant a socket. One that
    group or others can enter is tightened, and that is said through `warn` (stderr by
    default), since something made it so and the user should know.
    """
    say = warn or _warn
    path = town.state_dir
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        _private_dir(path, say)
        for name in _STATE_SUBDIRS:
            sub = path / name
            sub.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
            _private_dir(sub, say)
    except OSError as error:
        raise TundraError(
            f"cannot create {error.filename or path}: {error.strerror or error}"
        ) from None
    return path


def _private_dir(path: Path, warn: Callable[[str], None]) -> None:
    """Refuse a directory owned by another user; make ours exactly 0700 (chmod beats umask)."""
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise TundraError(
            f"refusing to use {path}: it belongs to another user (uid {info.st_uid}), who could "
            "read the town's state or answer in its place; remove it or run as its owner"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode == PRIVATE_DIR_MODE:
        return
    path.chmod(PRIVATE_DIR_MODE)
    if mode & 0o077:
        warn(f"{path} was open to other users (mode {mode:04o}); tightened it to 0700")


def _warn(message: str) -> None:
    print(f"at: warning: {message}", file=sys.stderr)


def write_text_atomic(path: Path, text: str, *, mode: int = SHARED_FILE_MODE) -> None:
    """Replace `path` with `text` so a reader or a crash sees the old file or the new, never half.

    `mode` is the most the file may allow, whatever the umask: an existing file keeps
    its bits within it (a stricter file stays strict, a looser one is tightened), a
    new one gets it less what the umask removes. A private file (0600) is always
    exactly 0600 for its owner, even under an odd umask. A symlinked file is written
    through to its target. Raises OSError.
    """
    import secrets

    target = Path(os.path.realpath(path))
    try:
        existing: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        existing = None
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            if existing is not None:
                os.fchmod(file.fileno(), existing & mode)
            elif mode == PRIVATE_FILE_MODE:
                os.fchmod(file.fileno(), mode)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def init_town(path: Path, *, name: str | None = None) -> tuple[Town, list[str]]:
    """Make `path` a town, keeping whatever is already there; return it and what was done."""
    root = Path(path).expanduser().absolute()
    done: list[str] = []
    try:
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        if not root.exists():
            # The root holds tundra.toml: whoever may write to it (or to a directory above
            # it that we create) may replace the team, so no umask makes them writable by
            # others; pathlib would give the parents 0777 less the umask.
            for directory in reversed((root, *root.parents)):
                if not directory.exists():
                    directory.mkdir(mode=0o755, exist_ok=True)
            done.append(f"created {root}")
        town = Town(root)
        if town.config_path.exists():
            done.append(f"kept existing {TOWN_FILE}")
        else:
            target = _checked_out_branch(town.root)
            write_text_atomic(
                town.config_path, sample_config(name or town.root.name, target_branch=target)
            )
            done.append(f"wrote {TOWN_FILE} with a sample team: mayor, deacon, polecat-1, crew-1")
    except OSError as error:
        raise TundraError(f"cannot create town at {root}: {error.strerror or error}") from None
    kept_state = town.state_dir.is_dir()
    ensure_state_dir(town)
    done.append(f"{'kept' if kept_state else 'created'} {STATE_DIR}/ for state (mode 0700)")
    if _in_git_work_tree(town.root):
        done.append(_ignore_state_dir(town.root / ".gitignore"))
    return town, done


def _in_git_work_tree(path: Path) -> bool:
    """True when git knows `path` as part of a work tree; a missing git simply means no."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _checked_out_branch(path: Path) -> str:
    """The branch checked out at `path` ("" outside git or on a detached HEAD): polecats
    branch from it and submit against it unless `orchestra.target_branch` says otherwise."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "-C", str(path), "symbolic-ref", "--quiet", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _ignore_state_dir(gitignore: Path) -> str:
    """Append `.tundra/` to a .gitignore unless a line there already ignores it."""
    try:
        text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
        if any(line.strip() in _IGNORE_LINES for line in text.splitlines()):
            return f"{STATE_DIR}/ already in .gitignore"
        separator = "\n" if text and not text.endswith("\n") else ""
        write_text_atomic(gitignore, f"{text}{separator}{STATE_DIR}/\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid UTF-8"
        raise TundraError(f"cannot update {gitignore}: {reason or error}") from None
    return f"added {STATE_DIR}/ to .gitignore"


def sample_config(name: str, *, target_branch: str = "") -> str:
    """The commented tundra.toml `at init` writes: the user's first look at a town.
    `target_branch` (the branch checked out at init) is written when there is one."""
    import tomlkit

    target = (
        f"target_branch = {tomlkit.string(target_branch).as_string()}"
        if target_branch
        else '# target_branch = "main"'
    )
    return _SAMPLE.replace("@NAME@", tomlkit.string(name).as_string()).replace("@TARGET@", target)


_SAMPLE = """\
# tundra.toml: the team for this town.
#
# auto-tundra reads this file to learn who is on the team (agents), which
# coding-agent CLI each one runs (its runtime) and a few town-wide settings.
# Commit it: it holds no secrets and no state. State lives in .tundra/ next to
# this file, which stays out of git.
#
# Settings are layered; a later layer wins:
#   built-in defaults < ~/.auto-tundra/config.toml < this file < .tundra/local.toml
# Keep personal or machine-specific overrides (models, API endpoints) in
# .tundra/local.toml so your teammates do not inherit them.

[general]
# Shown in the title bar; defaults to the directory's name.
name = @NAME@
# Lane (critical, standard or experimental) and priority (0 = most urgent,
# 4 = least) given to new beads.
default_lane = "standard"
default_priority = 2

# How a runtime is launched. Every agent on that runtime inherits this unless
# the agent sets its own command, args or env. Uncomment to change it:
#
# [runtimes.claude]
# command = "claude"
# args = []
# env = { ANTHROPIC_BASE_URL = "http://localhost:8080" }

# Dispatch: once `at up` has started the town, the daemon hands each ready bead
# (its blockers done, its convoy started) to a polecat it starts on a worktree
# of its own, branch polecat/NAME/BEAD, at most max_polecats at once. Agents
# report with `at submit` (to review) or `at done --fail --reason ...`.
# `at dispatch pause|resume|status` controls it.
[orchestra]
# The branch polecats start from and submit against.
@TARGET@
# max_polecats = 3
# polecat_runtime = "claude"

# The refinery: a merge queue. Each submitted branch is rebased onto the target
# branch in a worktree of its own, the gates below run there (as you, on the
# agents' code), and only if all pass does the target move. A conflict or a red
# gate sends the bead back to its agent; after max_attempts it is escalated.
# While gates is unset the refinery waits; gates = [] merges with no gates (and
# every card says so). Give the repo a pytest.ini so pytest stays in the repo.
# `at refinery status|pause|resume|retry` controls it.
#
# [refinery]
# gates = ["python -m pytest -q"]
# max_attempts = 3
# gate_timeout_seconds = 900
# strategy = "rebase"

# Costs: auto-tundra reads each agent's own usage log (Claude Code, Codex, Gemini
# CLI, OpenCode, Aider) and prices it with the genai-prices table; `at cost`
# shows it. A model no table knows is "unpriced": its tokens are counted, its
# cost shown as unknown. Budgets (US dollars, 0 = none) warn at warn_percent and
# at 100% stop dispatch taking new beads (running work finishes); raise one with
# `at config set costs.daily_budget_usd 60`, or `at cost override`.
#
# [costs]
# daily_budget_usd = 0
# monthly_budget_usd = 0
# warn_percent = 80
#
# A price of your own, in dollars per million tokens (wins over the table):
# [costs.prices."my-model"]
# input = 3
# output = 15
# cache_read = 0.3
#
# A convoy's budget covers its whole life:
# [convoys.release]
# budget_usd = 25

# Keys in the control room, remapped by binding id. Uncomment to change them:
#
# [ui.keys]
# quit = "ctrl+q"

# The team: one [agents.NAME] table per agent.
#   role     mayor, deacon, witness, refinery, polecat or crew
#   runtime  claude, codex, gemini, opencode, aider, demo or custom
# Optional: model, command, args and env (override the runtime's),
# worktree = true to give the agent its own git worktree and branch,
# start = true to have `at up` start it, and for crew, lanes = ["critical"]
# to let dispatch hand it ready beads of those lanes while it is idle.

[agents.mayor]
# Plans the work as beads; gets mail when a bead is submitted, fails or is escalated.
role = "mayor"
runtime = "claude"

[agents.deacon]
# A standing agent for town chores (the daemon's witness watches agents' health).
role = "deacon"
runtime = "codex"

[agents.polecat-1]
# Works one bead at a time on its own branch. Dispatch starts polecats as it
# needs them, and uses this one when its runtime is orchestra.polecat_runtime.
role = "polecat"
runtime = "gemini"
# worktree = true

[agents.crew-1]
# A long-lived worker you pair with directly.
role = "crew"
runtime = "aider"
"""
