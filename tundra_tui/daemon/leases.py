"""Worktree leases: an agent that asks for a worktree gets its own, locked while it runs."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tundra_tui.domain.errors import TundraError
from tundra_tui.orchestra.worktrees import ADHOC, BRANCH_PREFIX, Worktrees
from tundra_tui.town import Town

LOCK_PREFIX = "auto-tundra: agent "


def lock_reason(agent: str) -> str:
    return f"{LOCK_PREFIX}{agent} is running"


class WorktreeLeases:
    """Which worktree each running agent holds; git work runs in threads, off the loop."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self._held: dict[str, tuple[Worktrees, Path]] = {}

    async def lease(self, name: str, bead: int | None, *, base: str = "HEAD") -> Path:
        """The agent's own worktree for `bead` (made from `base` if missing), locked until
        released. Found by its branch `polecat/<agent>/<bead>`, not its directory name: a
        worktree switched to another bead keeps the directory it was made as."""
        worktrees = await asyncio.to_thread(Worktrees, self.town.root, self.town.worktrees_dir)
        branch = f"{BRANCH_PREFIX}/{name}/{bead if bead is not None else ADHOC}"
        mine = await asyncio.to_thread(worktrees.holding, branch)
        if mine is not None:
            path = mine.path
            if not mine.locked:
                await asyncio.to_thread(worktrees.lock, path, lock_reason(name))
        else:
            path = (await asyncio.to_thread(worktrees.create, name, bead, base=base)).path
        self.hold(name, worktrees, path)
        return path

    def hold(self, name: str, worktrees: Worktrees, path: Path) -> None:
        """Record a worktree the agent holds (locked by whoever made or switched it)."""
        self._held[name] = (worktrees, path)

    def held(self, name: str) -> Path | None:
        """The worktree a running agent holds, if any."""
        held = self._held.get(name)
        return held[1] if held is not None else None

    async def unlock_stale(self) -> list[Path]:
        """At start, before any agent runs: unlock the worktrees a killed daemon left locked
        for its agents (so a bead given back can be worked in its worktree again)."""
        try:
            worktrees = await asyncio.to_thread(Worktrees, self.town.root, self.town.worktrees_dir)
            return await asyncio.to_thread(worktrees.unlock_stale, LOCK_PREFIX)
        except TundraError:
            return []  # not a git repository: no worktrees

    async def release(self, name: str) -> None:
        """An agent that is no longer running no longer pins its worktree."""
        held = self._held.pop(name, None)
        if held is not None:
            worktrees, path = held
            with contextlib.suppress(TundraError):
                await asyncio.to_thread(worktrees.unlock, path)
