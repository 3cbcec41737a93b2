"""The demo town: demo agents, a git repository for them to work in (with a real, fast test
suite that the refinery runs as its gate), and two weeks of history.

It is created once and from then on only reused, so the operator's edits to its tundra.toml and
whatever happened in it later are never overwritten. The history is seeded into a private
database file that is linked into place only when complete, so a crash or a second process
racing this one never leaves a half-seeded town behind. Its directory name carries a version
(`DEMO_DIR`): when what the demo needs changes, a new town is made beside an old one, which is
neither reused nor touched.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import subprocess
import textwrap
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import tomlkit

from tundra_tui.demo_history import HISTORY_DAYS, SimClock, seed_history
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Lane
from tundra_tui.domain.clock import Clock, system_clock
from tundra_tui.domain.errors import TundraError
from tundra_tui.store import RosterEntry, open_store
from tundra_tui.town import TOWN_FILE, Town, init_town, write_text_atomic

DEMO_NAME = "demo-town"
DEMO_DIR = "demo-town-4"
"""Version 4: costs from the agents' logs, a daily budget the live demo reaches, and one
unpriced model (3 had no budget brake; 2 stopped at review; 1 faked work with auto-tasks).
Bump it whenever an existing demo town would no longer show what the demo promises."""
TARGET_BRANCH = "main"
DEMO_DAILY_BUDGET = 0.25
"""Dollars: the demo team's first few minutes of work (demo-table prices; polecat-1's model
is unpriced and does not count)."""


@dataclass(frozen=True)
class DemoAgent:
    """One agent of the demo team and how its demo agent process behaves."""

    name: str
    role: Role
    model: str
    approval_rate: float
    """Chance it asks the operator's approval: before `at submit` in a bead's work, and for a
    command at the end of a free task."""
    seed: int
    """Its random choices."""
    note: str
    """The comment above its table in tundra.toml: what it does, and nothing more."""
    start: bool = False
    """Started by `at up` (and `at tui --demo`)."""
    worktree: bool = False
    lanes: tuple[Lane, ...] = ()


DEMO_AGENTS: tuple[DemoAgent, ...] = (
    DemoAgent(
        "mayor",
        Role.MAYOR,
        "demo-opus",
        0.1,
        21,
        "Started by `at up` with the mayor's prompt; answers its mail between turns. Beads are "
        "handed out by the daemon's dispatch, not by the mayor.",
        start=True,
    ),
    DemoAgent(
        "polecat-1",
        Role.POLECAT,
        "demo-mystery",
        0.3,
        22,
        "A polecat: dispatch starts it for a ready bead, in its own worktree, and stops it "
        "once it has sat idle with no bead for orchestra.polecat_retire_seconds. Its model, "
        "demo-mystery, is in no price table: its tokens are counted and its cost shows as "
        "unpriced (give it a [costs.prices] entry to price it).",
        worktree=True,
    ),
    DemoAgent(
        "witness",
        Role.WITNESS,
        "demo-haiku",
        0.05,
        13,
        "Not started by `at up`: the witness's checks (reminders, stalls, approvals left "
        "waiting) run in the daemon. Start it to have a witness agent to talk to.",
    ),
    DemoAgent(
        "crew-1",
        Role.CREW,
        "demo-sonnet",
        0.2,
        14,
        "A long-lived worker in its own worktree, started by `at up`: critical beads go to it "
        "when it is idle. You can also pair with it directly.",
        start=True,
        worktree=True,
        lanes=(Lane.CRITICAL,),
    ),
)

POLECAT_APPROVAL_RATE = 0.3
"""Polecats that dispatch adds (polecat-2, …) take the demo runtime's args: this rate."""


def demo_town_root() -> Path:
    """`$XDG_DATA_HOME/auto-tundra/demo-town-2`, else under `~/.local/share` (as XDG says, a
    relative $XDG_DATA_HOME is ignored)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    data = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return data / "auto-tundra" / DEMO_DIR


async def ensure_demo_town(root: Path | None = None, *, clock: Clock = system_clock) -> Town:
    """The demo town at `root` (default `demo_town_root()`), created and seeded the first time.

    An existing tundra.toml is kept as it is, and an existing database is never reseeded.
    History is placed relative to `clock()`, and the same clock gives the same database.
    Raises TundraError when the town cannot be created, StoreError when it cannot be seeded.
    """
    town = Town((root or demo_town_root()).expanduser().absolute())
    await asyncio.to_thread(_write_config_once, town, clock)
    if not town.db_path.exists():
        await _seed_once(town, clock)
    return town


def _write_config_once(town: Town, clock: Clock) -> None:
    """Write the demo team unless a tundra.toml is there, make the state directories, and
    make the town a git repository with a first commit unless it is one."""
    try:
        town.root.mkdir(parents=True, exist_ok=True)
        if not town.config_path.exists():
            write_text_atomic(town.config_path, demo_config(town))
    except OSError as error:
        raise TundraError(f"cannot create the demo town at {town.root}: {error}") from None
    init_town(town.root, name=DEMO_NAME)
    from tundra_tui.daemon.usage import usage_dir  # the daemon follows what lands there

    try:
        usage_dir(town).mkdir(mode=0o700, exist_ok=True)
    except OSError as error:
        raise TundraError(f"cannot create {usage_dir(town)}: {error}") from None
    _git_once(town, clock)


README = """\
# The demo town's project

The demo agents work here. For each bead it is given, a demo agent writes `beads/<id>.md`
(the bead's title and description) on its own branch, `polecat/<agent>/<bead>`, commits it and
reports with `at submit`. The refinery then rebases the branch onto main, runs the gate
(`tests/test_beads.py`: each bead file names its bead and has no `TODO` line) and, when it
passes, moves main to the result.
"""

GATE = "python3 -m unittest discover -q -s tests -t ."
"""The demo's gate: stdlib only, since a new user's Python may have no pytest."""
TEST_BEADS = '''\
"""Each bead's file names its bead and leaves nothing to do: the refinery's gate."""

import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent


class BeadFiles(unittest.TestCase):
    def test_each_bead_file_names_its_bead(self) -> None:
        for path in sorted((ROOT / "beads").glob("*.md")):
            with self.subTest(path=path.name):
                head = path.read_text(encoding="utf-8").partition("\\n")[0]
                self.assertTrue(head.startswith(f"# #{path.stem}: "), head)

    def test_no_bead_file_is_left_unfinished(self) -> None:
        for path in sorted((ROOT / "beads").glob("*.md")):
            with self.subTest(path=path.name):
                lines = path.read_text(encoding="utf-8").splitlines()
                todo = [line for line in lines if line.startswith("TODO")]
                self.assertEqual(todo, [], f"{path.name} is unfinished")


if __name__ == "__main__":
    unittest.main()
'''
GATE_FILES = {
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    "tests/__init__.py": "",
    "tests/test_beads.py": TEST_BEADS,
    "CHANGELOG.md": "# Changelog\n",
}
"""The project's test suite and changelog. `pytest.ini` pins pytest's rootdir here (the
refinery's worktree is inside the town, under a checkout that may have a conftest.py of its
own); `tests/__init__.py` lets `unittest discover -s tests -t .` import the tests."""


def _git_once(town: Town, clock: Clock) -> None:
    """`git init -b main` and one commit dated before the history, under a lock so that two
    first calls make one repository. The user's git config is left out (no signing, no hooks)."""
    lock_path = town.state_dir / "demo-git.lock"
    try:
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (town.root / ".git").exists():
                return
            files = {".gitignore": ".tundra/\n", "README.md": README, **GATE_FILES}
            for name, text in files.items():
                if not (town.root / name).exists():
                    (town.root / name).parent.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(town.root / name, text)
            when = int((clock() - timedelta(days=HISTORY_DAYS + 1)).timestamp())
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "HOME": str(town.root),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_AUTHOR_NAME": "operator",
                "GIT_AUTHOR_EMAIL": "operator@demo.invalid",
                "GIT_COMMITTER_NAME": "operator",
                "GIT_COMMITTER_EMAIL": "operator@demo.invalid",
                "GIT_AUTHOR_DATE": f"@{when} +0000",
                "GIT_COMMITTER_DATE": f"@{when} +0000",
            }
            for argv in (
                ["git", "init", "-q", "-b", TARGET_BRANCH],
                ["git", "add", "--", *files, "tundra.toml"],
                ["git", "commit", "-q", "-m", "The demo town"],
            ):
                subprocess.run(
                    argv, cwd=town.root, env=env, capture_output=True, check=True, timeout=60
                )
    except subprocess.CalledProcessError as error:
        detail = error.stderr.decode(errors="replace").strip().splitlines()
        raise TundraError(
            f"cannot make the demo town a git repository: {' '.join(error.cmd[:2])}: "
            f"{detail[-1] if detail else f'exit status {error.returncode}'}"
        ) from None
    except (OSError, subprocess.SubprocessError) as error:
        raise TundraError(f"the demo town needs git: {error}") from None


def demo_config(town: Town) -> str:
    """The demo town's tundra.toml: its team runs the bundled demo agent, no account needed."""
    parts = [_HEADER.replace("@NAME@", _q(DEMO_NAME))]
    for agent in DEMO_AGENTS:
        args = ["--approval-rate", str(agent.approval_rate), "--seed", str(agent.seed)]
        lines = "".join(f"    {_q(arg)},\n" for arg in args)
        extra = f"start = {'true' if agent.start else 'false'}\n"
        extra += f"worktree = {'true' if agent.worktree else 'false'}\n"
        if agent.lanes:
            extra += f"lanes = [{', '.join(_q(lane.value) for lane in agent.lanes)}]\n"
        parts.append(
            f"\n[agents.{agent.name}]\n{_comment(agent.note)}"
            f'role = {_q(agent.role.value)}\nruntime = "demo"\nmodel = {_q(agent.model)}\n'
            f"{extra}args = [\n{lines}]\n"
        )
    return "".join(parts)


def _comment(text: str, width: int = 94) -> str:
    """`text` as `# ` lines of at most `width` characters."""
    return "".join(f"# {line}\n" for line in textwrap.wrap(text, width - 2))


def _q(text: str) -> str:
    return tomlkit.string(text).as_string()


async def _seed_once(town: Town, clock: Clock) -> None:
    """Seed a private file, then hard-link it to town.db: linking fails if another process
    got there first, so a complete database appears at once or not at all."""
    temp = town.state_dir / f".demo-seed-{secrets.token_hex(4)}.db"
    roster = [RosterEntry(a.name, a.role, Runtime.DEMO, a.model) for a in DEMO_AGENTS]
    sim = SimClock(clock())
    try:
        store = await open_store(temp, clock=sim)
        try:
            await seed_history(store, town, roster, sim)
        finally:
            await store.close()
        with suppress(FileExistsError):  # seeded by a concurrent call: theirs is as good
            os.link(temp, town.db_path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{temp}{suffix}").unlink(missing_ok=True)


_HEADER = f"""\
# {TOWN_FILE} of the demo town: demo agents (the bundled stand-in for a coding agent: no
# account, no network), a git repository for them to work in, and two weeks of invented
# history to look around in.
#
# `at up` (which `at tui --demo` sends) starts the agents marked `start = true`, and dispatch:
# each ready bead (its blockers done, its convoy started) goes to an idle crew agent whose
# lanes take it, or else to a polecat, at most orchestra.max_polecats at once, each in its own
# worktree on a branch `polecat/<agent>/<bead>` from main. Given a bead, a demo agent writes
# beads/<id>.md, commits it and runs `at submit`, which moves the bead to review. The refinery
# (below) merges it into main, or mails the agent its rework. --approval-rate is the chance it
# asks your approval first. Between turns it answers its mail in one line. Usage logs go to
# .tundra/usage/, where the daemon reads them: `at cost`, the Costs tab and the budget below.
#
# auto-tundra writes this file once and never again: edit it as you like.

[general]
name = @NAME@
default_lane = "standard"
default_priority = 2

[orchestra]
polecat_runtime = "demo"
max_polecats = 2
target_branch = "{TARGET_BRANCH}"
polecat_retire_seconds = 30

[refinery]
# The merge queue: for each bead in review, in lane and priority order, the refinery rebases a
# copy of its branch onto main in .tundra/refinery/work, runs these gates there (shell commands,
# as you), and moves main to the result with a compare-and-swap when they pass. A conflict or a
# red gate sends the bead back to its agent by mail; after max_attempts it is escalated to you.
# The gate is the project's own tests (stdlib unittest). Unset `gates` to stop merging (beads
# then wait in review for `at done`); `gates = []` would merge with no check at all.
gates = ["{GATE}"]
max_attempts = 3

[runtimes.demo]
# What polecats added by dispatch (polecat-2, …) run with; an agent's own args replace these.
args = ["--approval-rate", "{POLECAT_APPROVAL_RATE}"]

[costs]
# The daemon's budget brake, counted from the agents' usage logs (priced calls only: polecat-1's
# demo-mystery is unpriced; the history has no calls today, so today is what you watch the demo
# spend). At warn_percent (80%) of the daily budget, a couple of minutes in, the title bar shows
# "$ 80% today" and the dashboard a warning; at 100%, soon after, dispatch takes no new bead
# (running work finishes), the title bar shows "$ STOP" and `at dispatch status` says why. Then
# `at convoy start docs-refresh` waits too: raise the budget (`at config set
# costs.daily_budget_usd 5`) or run `at cost override` to go on. `at cost` shows the figures.
daily_budget_usd = {DEMO_DAILY_BUDGET}
monthly_budget_usd = 150.0
"""
