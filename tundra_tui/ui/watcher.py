"""Following the town's database with watchfiles, for writes the daemon did not announce.

The CLI and agents' own `at` commands write the store directly; the control room hears
of them here. Only the database and its WAL are reported, the directory is watched
without recursion (worktrees are large), and bursts are coalesced by watchfiles'
debounce, so a busy town costs a reload a few times a second at most. (Usage logs are
the daemon's to follow.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from watchfiles import Change, awatch

DEBOUNCE_MS = 400
"""Changes within this window arrive as one batch."""


async def watch_town(db_path: Path, *, debounce_ms: int = DEBOUNCE_MS) -> AsyncIterator[None]:
    """Yield once for every coalesced batch of writes to the town's database."""

    def relevant(change: Change, path: str) -> bool:
        return Path(path).name.startswith(db_path.name)

    async for _changes in awatch(
        db_path.parent, watch_filter=relevant, debounce=debounce_ms, recursive=False, step=50
    ):
        yield None
