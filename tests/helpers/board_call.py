"""Send one board request to the town's daemon and print the answer or the error.

Run from inside an agent, it shows what an agent gets when it asks the daemon for a
board operation the CLI does not route there (moving a bead, handing one out).
Usage: board_call.py TOWN move BEAD | apply BEAD ACTION [AGENT] | create TITLE [AGENT]
       | config-set KEY VALUE | config-unset KEY
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import (
    BeadApply,
    BeadCreate,
    BeadMove,
    ConfigSet,
    ConfigUnset,
    Request,
)
from tundra_tui.domain.beads import Action
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town


def request(argv: list[str]) -> Request:
    verb, *rest = argv
    if verb == "move":
        return BeadMove(id=int(rest[0]), step=1, actor="operator")
    if verb == "config-set":
        return ConfigSet(key=rest[0], value=rest[1], layer="project")
    if verb == "config-unset":
        return ConfigUnset(key=rest[0], layer="project")
    if verb == "apply":
        agent = rest[2] if len(rest) > 2 else None
        return BeadApply(id=int(rest[0]), action=Action(rest[1]), agent=agent, actor="operator")
    agent = rest[1] if len(rest) > 1 else ""
    return BeadCreate(title=rest[0], assignee=agent, actor="operator")


async def main() -> int:
    client = await DaemonClient.connect(Town(Path(sys.argv[1])))
    try:
        reply = await client.call(request(sys.argv[2:]))
    except TundraError as error:
        print(f"error: {error}")
        return 1
    finally:
        await client.close()
    print(f"ok: {reply}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
