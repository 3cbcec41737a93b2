"""The real control room on a town with a running daemon, for Pilot tests: its store opened,
its link to the daemon, and the link closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tundra_tui.store import open_store
from tundra_tui.town import find_town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.link import DaemonLink
from tundra_tui.ui.live import LiveModel
from tundra_tui.ui.services import Services


@asynccontextmanager
async def control_room(town: Path, **options: Any) -> AsyncIterator[TundraApp]:
    """`TundraApp(services, **options)` on `town`, no file watcher and no clock ticks."""
    found = find_town(town)
    async with await open_store(found.db_path) as store:
        services = Services(town=found, store=store, link=DaemonLink(found), live=LiveModel())
        try:
            yield TundraApp(services, watch_files=False, clock_interval=0, **options)
        finally:
            await services.link.close()
