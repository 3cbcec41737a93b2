"""A claimer process for the claim-race tests (tests/test_claim_race.py).

Usage: `python claim_worker.py DB AGENT`. It reads one JSON command per stdin line
and answers each with one JSON line on stdout; EOF ends it. Every command carries
`start`, a `time.monotonic()` instant (one clock for all processes on Linux), so the
two claimers leave the starting line together instead of one after the other.

- `{"op": "ping", "start": t}`: answers `{"ready": agent}` once the store is open.
- `{"op": "drain", "start": t}`: `claim_next` until it returns None;
  answers `{"claimed": [ids in the order won]}`.
- `{"op": "claim", "id": n, "start": t}`: `claim(n)` once;
  answers `{"won": true}` or `{"won": false, "error": class name, "message": text}`.
- `{"op": "dispatch", "id": n, "start": t}`: `dispatches.claim(n)` once (as dispatch
  does); answers `{"won": true, "dispatch": id}` or `{"won": false}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tundra_tui.domain.dispatch import DispatchKind
from tundra_tui.domain.errors import TundraError
from tundra_tui.store import Store, open_store

SPIN_SECONDS = 0.002
"""Sleep until this close to the start, then spin: asyncio.sleep alone is ~1 ms coarse."""


async def _wait_until(start: float) -> None:
    await asyncio.sleep(max(0.0, start - time.monotonic() - SPIN_SECONDS))
    while time.monotonic() < start:
        pass


async def _handle(store: Store, agent: str, command: dict[str, Any]) -> dict[str, Any]:
    await _wait_until(float(command["start"]))
    if command["op"] == "ping":
        return {"ready": agent}
    if command["op"] == "drain":
        claimed: list[int] = []
        while (bead := await store.beads.claim_next(agent, actor=agent)) is not None:
            claimed.append(bead.id)
        return {"claimed": claimed}
    if command["op"] == "claim":
        try:
            await store.beads.claim(int(command["id"]), agent, actor=agent)
        except TundraError as error:
            return {"won": False, "error": type(error).__name__, "message": str(error)}
        return {"won": True}
    if command["op"] == "dispatch":
        dispatch = await store.dispatches.claim(
            int(command["id"]), agent, kind=DispatchKind.POLECAT, actor=agent
        )
        return {"won": dispatch is not None, "dispatch": dispatch.id if dispatch else None}
    raise ValueError(f"unknown op {command['op']!r}")


async def serve(path: Path, agent: str) -> None:
    """Answer commands until stdin closes; report any crash as a reply, not a hang."""
    store = await open_store(path, busy_timeout_ms=5000)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            try:
                reply = await _handle(store, agent, json.loads(line))
            except Exception:
                reply = {"crash": traceback.format_exc()}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), sys.argv[2]))
