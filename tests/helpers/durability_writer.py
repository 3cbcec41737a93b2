"""A bead writer for the kill -9 harness (tests/test_durability.py).

Usage: `python durability_writer.py DB ROUND`. It adds beads through the real store
until it is killed and prints `<id>\\t<title>` for each one, flushed, only after
`add()` has returned, i.e. after COMMIT. A printed line is therefore a promise the
database must keep however the process dies.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from pathlib import Path

from tundra_tui.domain.beads import Lane
from tundra_tui.store import open_store

LANES = tuple(Lane)
MAX_SECONDS = 60.0
"""Never outlive a harness that failed to kill us."""


def title_for(round_no: int, n: int) -> str:
    """A title unique across rounds, so a row from the wrong write cannot pass for an ack."""
    digest = hashlib.sha256(f"{round_no}:{n}".encode()).hexdigest()[:16]
    return f"round {round_no} bead {n} {digest}"


async def write_until_killed(path: Path, round_no: int) -> None:
    """Add beads (each with a label, so every ack spans three tables) and acknowledge them."""
    store = await open_store(path, busy_timeout_ms=5000)
    deadline = time.monotonic() + MAX_SECONDS
    n = 0
    try:
        while time.monotonic() < deadline:
            title = title_for(round_no, n)
            bead = await store.beads.add(
                title,
                actor="durability-writer",
                lane=LANES[n % len(LANES)],
                priority=n % 5,
                labels=[f"round-{round_no}"],
            )
            sys.stdout.write(f"{bead.id}\t{title}\n")
            sys.stdout.flush()
            n += 1
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(write_until_killed(Path(sys.argv[1]), int(sys.argv[2])))
