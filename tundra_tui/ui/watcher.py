"""Following the town's database and the agents' usage logs with watchfiles.

Only the files that matter are reported (the database and its WAL, `*.jsonl` logs), the
directories are watched without recursion (worktrees are large), and bursts are coalesced
by watchfiles' debounce, so a busy town costs a reload a few times a second at most.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

DEBOUNCE_MS = 400
"""Changes within this window arrive as one batch."""


@dataclass(frozen=True, slots=True)
class Touched:
    """What one batch of changes touched."""

    store: bool
    usage: bool


def classify(paths: set[str], db_path: Path) -> Touched:
    """Sort changed paths into the database and usage logs."""
    db_names = {db_path.name, db_path.name + "-wal"}
    store = any(Path(p).name in db_names for p in paths)
    usage = any(p.endswith(".jsonl") for p in paths)
    return Touched(store=store, usage=usage)


async def watch_town(
    db_path: Path, usage_dirs: list[Path], *, debounce_ms: int = DEBOUNCE_MS
) -> AsyncIterator[Touched]:
    """Yield a `Touched` for every coalesced batch of relevant changes."""
    roots = [db_path.parent, *(d for d in usage_dirs if d.is_dir())]

    def relevant(change: Change, path: str) -> bool:
        name = Path(path).name
        return name.startswith(db_path.name) or name.endswith(".jsonl")

    async for changes in awatch(
        *roots, watch_filter=relevant, debounce=debounce_ms, recursive=False, step=50
    ):
        touched = classify({path for _, path in changes}, db_path)
        if touched.store or touched.usage:
            yield touched
