"""The demo town: four demo agents and two weeks of history, ready before any team of your own.

It is created once and from then on only reused, so the operator's edits to its tundra.toml and
whatever happened in it later are never overwritten. The history is seeded into a private
database file that is linked into place only when complete, so a crash or a second process
racing this one never leaves a half-seeded town behind.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import tomlkit

from tundra_tui.demo_history import SimClock, seed_history
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.clock import Clock, system_clock
from tundra_tui.domain.errors import TundraError
from tundra_tui.store import RosterEntry, open_store
from tundra_tui.town import TOWN_FILE, Town, init_town, write_text_atomic
from tundra_tui.usage.follower import usage_dir

DEMO_NAME = "demo-town"


@dataclass(frozen=True)
class DemoAgent:
    """One agent of the demo team and how its demo agent process behaves."""

    name: str
    role: Role
    model: str
    approval_rate: float
    """Chance that a task ends by asking to run a command (an approval prompt)."""
    seed: int
    """Its random choices; with its task, decides whether the first task asks for approval
    (for polecat-1 and crew-1 it does, so the approval queue has something at once)."""
    task: str
    """What it starts working on as soon as it is started."""
    note: str
    """The comment above its table in tundra.toml."""


DEMO_AGENTS: tuple[DemoAgent, ...] = (
    DemoAgent(
        "mayor",
        Role.MAYOR,
        "demo-opus",
        0.1,
        21,
        "Triage the backlog and plan today's work for the team",
        "Plans the work and hands ready beads to idle agents.",
    ),
    DemoAgent(
        "polecat-1",
        Role.POLECAT,
        "demo-sonnet",
        0.6,
        22,
        "Lock an account after five failed logins (login-v2)",
        "Works one bead at a time; asks to run commands often, so approvals show up.",
    ),
    DemoAgent(
        "witness",
        Role.WITNESS,
        "demo-haiku",
        0.05,
        13,
        "Patrol: look for stalled beads and agents waiting on approvals",
        "Watches the town and reports what is stuck.",
    ),
    DemoAgent(
        "crew-1",
        Role.CREW,
        "demo-sonnet",
        0.2,
        14,
        "Speed up `at bead list` on a town with ten thousand beads",
        "A long-lived worker you pair with directly.",
    ),
)


def demo_town_root() -> Path:
    """`$XDG_DATA_HOME/auto-tundra/demo-town`, else under `~/.local/share` (as XDG says, a
    relative $XDG_DATA_HOME is ignored)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    data = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return data / "auto-tundra" / DEMO_NAME


async def ensure_demo_town(root: Path | None = None, *, clock: Clock = system_clock) -> Town:
    """The demo town at `root` (default `demo_town_root()`), created and seeded the first time.

    An existing tundra.toml is kept as it is, and an existing database is never reseeded.
    History is placed relative to `clock()`, and the same clock gives the same database.
    Raises TundraError when the town cannot be created, StoreError when it cannot be seeded.
    """
    town = Town((root or demo_town_root()).expanduser().absolute())
    await asyncio.to_thread(_write_config_once, town)
    if not town.db_path.exists():
        await _seed_once(town, clock)
    return town


def _write_config_once(town: Town) -> None:
    """Write the demo team unless a tundra.toml is there, then make the state directories."""
    try:
        town.root.mkdir(parents=True, exist_ok=True)
        if not town.config_path.exists():
            write_text_atomic(town.config_path, demo_config(town))
    except OSError as error:
        raise TundraError(f"cannot create the demo town at {town.root}: {error}") from None
    init_town(town.root, name=DEMO_NAME)
    try:
        usage_dir(town).mkdir(mode=0o700, exist_ok=True)
    except OSError as error:
        raise TundraError(f"cannot create {usage_dir(town)}: {error}") from None


KEEP_WORKING_S = 8
"""Idle seconds before a demo agent takes up work of its own, so the demo stays busy."""


def demo_config(town: Town) -> str:
    """The demo town's tundra.toml: its team runs the bundled demo agent, no account needed."""
    parts = [_HEADER.replace("@NAME@", _q(DEMO_NAME))]
    for agent in DEMO_AGENTS:
        args = [
            "--name",
            agent.name,
            "--auto-task",
            agent.task,
            "--approval-rate",
            str(agent.approval_rate),
            "--seed",
            str(agent.seed),
            "--usage-log",
            str(usage_dir(town) / f"{agent.name}.jsonl"),
            "--keep-working",
            str(KEEP_WORKING_S),
        ]
        lines = "".join(f"    {_q(arg)},\n" for arg in args)
        parts.append(
            f"\n[agents.{agent.name}]\n# {agent.note}\n"
            f'role = {_q(agent.role.value)}\nruntime = "demo"\nmodel = {_q(agent.model)}\n'
            f"worktree = false\nargs = [\n{lines}]\n"
        )
    return "".join(parts)


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
# {TOWN_FILE} of the demo town: a team of four demo agents (the bundled stand-in for a coding
# agent: no account, no network) and two weeks of invented history to look around in.
#
# auto-tundra writes this file once and never again: edit it as you like. Each agent starts on
# its --auto-task when started; left idle for --keep-working seconds it takes up a task of its
# own; --approval-rate is the chance a task ends by asking to run a command. Usage logs go to
# .tundra/usage/, where the Costs tab reads them.

[general]
name = @NAME@
default_lane = "standard"
default_priority = 2

[costs]
# Budgets for the Costs tab: the busiest days of the history go over the daily one.
daily_budget_usd = 8.0
monthly_budget_usd = 150.0
"""
