"""Scrollback against a real daemon: a tile pages through what a real agent printed, the
daemon's history above the screen its events drew, meeting without a line lost or doubled."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import daemon_town
from textual.app import App, ComposeResult

from tundra_tui.daemon.client import DaemonClient, start_daemon
from tundra_tui.daemon.protocol import History, HistoryReply, Spawn
from tundra_tui.town import find_town
from tundra_tui.ui.live import LiveModel
from tundra_tui.ui.remote_screen import RemoteScreen
from tundra_tui.ui.widgets.terminal_view import HistorySource, TerminalView

LINES = 700
SCRIPT = f"import time\nfor i in range({LINES}): print(f'line {{i}}')\ntime.sleep(600)"


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town(demo_agent=False) as root:
        config = root / "tundra.toml"
        config.write_text(
            config.read_text()
            + '\n[agents.spew]\nrole = "crew"\nruntime = "custom"\n'
            + f'command = {json.dumps(sys.executable)}\nargs = ["-c", {json.dumps(SCRIPT)}]\n'
        )
        yield root


class TileApp(App[None]):
    CSS = "TerminalView { width: 40; height: 12; }"

    def __init__(self, screen: RemoteScreen, history: HistorySource) -> None:
        super().__init__()
        self.remote, self.history = screen, history

    def compose(self) -> ComposeResult:
        view = TerminalView(history=self.history)
        view.agent = "spew"
        view.remote_screen = self.remote
        yield view


async def test_a_tile_pages_through_a_real_agents_history(town: Path) -> None:
    found = find_town(town)
    await start_daemon(found)
    client = await DaemonClient.connect(found)
    live = LiveModel()

    async def follow() -> None:
        async for event in client.subscribe(show=["spew"]):
            live.apply(event)

    following = asyncio.ensure_future(follow())
    try:
        await client.call(Spawn(name="spew"))
        screen = live.agent("spew").screen
        deadline = asyncio.get_running_loop().time() + 30
        while not any(row and row[0].text == f"line {LINES - 1}" for row in screen.lines):
            assert not following.done(), following
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        pages: list[tuple[int, int]] = []

        async def read(name: str, start: int, count: int) -> HistoryReply:
            pages.append((start, count))
            reply: HistoryReply = await client.call(History(name=name, start=start, count=count))
            return reply

        app = TileApp(screen, read)
        async with app.run_test(size=(50, 16)) as pilot:
            view = app.query_one(TerminalView)

            async def shown() -> list[str]:
                """The tile's rows once every page it needs is read."""
                for _ in range(200):
                    await pilot.pause(0.02)
                    if view._reading is None:
                        break
                return [view.render_line(y).text.strip() for y in range(view.size.height)]

            view.drives_size = True
            assert view.scroll_back()
            await pilot.press("g")
            seen: list[list[int]] = []
            while view.scrolling:
                rows = await shown()
                seen.append([int(row.split()[1]) for row in rows if row.startswith("line ")])
                await pilot.press("pagedown")
            seen.append([int(row.split()[1]) for row in await shown() if row.startswith("line ")])
        assert seen[0][0] == 0 and seen[-1][-1] == LINES - 1
        for page in seen:  # no line lost or doubled, where history meets the screen too
            assert page == list(range(page[0], page[0] + len(page)))
        assert set().union(*seen) == set(range(LINES))
        assert all(0 < count <= 200 for _, count in pages)
    finally:
        following.cancel()
        await client.close()
