"""Worktree leases: an agent that asks for a worktree gets its own, locked while it runs."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tundra_tui.domain.errors import TundraError
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.town import Town


def _lock_reason(agent: str) -> str:
    return f"auto-tundra: agent {agent} is running"


class WorktreeLeases:
    """Which worktree each running agent holds; git work runs in threads, off the loop."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self._held: dict[str, tuple[Worktrees, Path]] = {}

    async def lease(self, name: str, bead: int | None) -> Path:
        """The agent's own worktree for `bead` (made if missing), locked until released."""
        worktrees = await asyncio.to_thread(Worktrees, self.town.root, self.town.worktrees_dir)
        mine = [
            w
            for w in await asyncio.to_thread(worktrees.list)
            if w.agent == name and w.bead_id == bead
        ]
        if mine:
            path = mine[0].path
            if not mine[0].locked:
                await asyncio.to_thread(worktrees.lock, path, _lock_reason(name))
        else:
            path = (await asyncio.to_thread(worktrees.create, name, bead)).path
        self._held[name] = (worktrees, path)
        return path

    async def release(self, name: str) -> None:
        """An agent that is no longer running no longer pins its worktree."""
        held = self._held.pop(name, None)
        if held is not None:
            worktrees, path = held
            with contextlib.suppress(TundraError):
                await asyncio.to_thread(worktrees.unlock, path)
