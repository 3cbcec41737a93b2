"""How the Agents grid keeps up with 20 busy agents (on demand; prints figures, asserts nothing).

    .venv/bin/python benchmarks/bench_ui_terminal.py [--agents N] [--seconds S] [--fps F] [--rate R]

Twenty `TerminalView`s (5x4 at 250x70) each show one agent's `RemoteScreen` in a
headless Textual app. A feeder applies screen deltas as the daemon would send them,
at `--rate` messages per second per agent, in three scenarios:

- idle: nothing changes (the frame timers must cost next to nothing);
- spinner: one row per message (a spinner and a status line redrawn in place);
- stream: every row per message (output scrolling under a streaming answer).

For each we report frames per second per view (a frame is a tick that found changes;
at most `--fps`), terminal rows rendered per second, time per frame in the views
(tick + render_line), time per screen update (compositor render plus encoding it for
the terminal, which the headless driver would otherwise skip), and CPU seconds used
per wall second by the whole process (feeder included; its own share, applying
messages to `RemoteScreen`, is reported apart as microseconds per message).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.strip import Strip

from tundra_tui.daemon.protocol import Run, ScreenEvent
from tundra_tui.ui.remote_screen import RemoteScreen
from tundra_tui.ui.widgets.terminal_view import TerminalView

COLUMNS, ROWS = 80, 24
_COLOURS = ("default", "red", "green", "brown", "blue", "cyan", "brightmagenta", "ff8700", "5f87d7")
_WORDS = ("the", "agent", "reads", "a", "file", "and", "writes", "patch", "then", "runs", "tests")


@dataclass
class Stats:
    frames: int = 0
    rows: int = 0
    view_seconds: float = 0.0
    updates: int = 0
    update_seconds: float = 0.0
    messages: int = 0
    feed_seconds: float = 0.0


STATS = Stats()


class TimedView(TerminalView):
    """A TerminalView that adds its work to STATS."""

    def tick(self) -> None:
        start = time.perf_counter()
        before = self._seen_version
        super().tick()
        STATS.view_seconds += time.perf_counter() - start
        if self._seen_version != before:
            STATS.frames += 1

    def render_line(self, y: int) -> Strip:
        start = time.perf_counter()
        strip = super().render_line(y)
        STATS.view_seconds += time.perf_counter() - start
        STATS.rows += 1
        return strip


class GridApp(App[None]):
    CSS = """
    Screen { layout: grid; grid-size: 5 4; }
    TimedView { border: round $panel; }
    """

    def __init__(self, screens: list[RemoteScreen], fps: int) -> None:
        super().__init__()
        self.screens = screens
        self.fps = fps
        self.console_out = Console(
            width=250, height=70, force_terminal=True, color_system="truecolor", file=io.StringIO()
        )

    def compose(self) -> ComposeResult:
        for n, remote in enumerate(self.screens):
            view = TimedView(max_fps=self.fps)
            view.agent = f"agent-{n}"
            view.remote_screen = remote
            yield view

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        # The headless driver skips output; encode the update as a real terminal would get it.
        start = time.perf_counter()
        if renderable is not None:
            renderable.render_segments(self.console_out)
            self.console_out.file = io.StringIO()
            STATS.updates += 1
        STATS.update_seconds += time.perf_counter() - start


def _row(rng: random.Random) -> list[Run]:
    runs: list[Run] = []
    width = 0
    while width < COLUMNS - 12:
        text = " ".join(rng.choices(_WORDS, k=rng.randint(1, 4))) + " "
        runs.append(
            (text, rng.choice(_COLOURS), "default", rng.random() < 0.2, False, False, False)
        )
        width += len(text)
    return runs


def _message(rng: random.Random, rows: list[int], tick: int) -> ScreenEvent:
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[tick % 10]
    body = {y: _row(rng) for y in rows}
    body[ROWS - 1] = [
        (f"{spinner} Working… ({tick})", "cyan", "default", False, False, False, False)
    ]
    return ScreenEvent(agent="agent", rows=body, cursor=(0, ROWS - 1), size=(COLUMNS, ROWS))


async def _feed(screens: list[RemoteScreen], scenario: str, seconds: float, rate: int) -> None:
    rng = random.Random(7)
    interval = 1 / rate
    # Pre-built messages, so the feeder's own cost stays out of the figures as far as possible.
    rows = [] if scenario == "spinner" else list(range(ROWS - 1))
    messages = [_message(rng, rows, tick) for tick in range(64)]
    deadline = time.perf_counter() + seconds
    tick = 0
    while time.perf_counter() < deadline:
        if scenario != "idle":
            start = time.perf_counter()
            for remote in screens:
                remote.apply(messages[tick % len(messages)])
            STATS.feed_seconds += time.perf_counter() - start
            STATS.messages += len(screens)
        tick += 1
        await asyncio.sleep(interval)


async def _scenario(app: GridApp, scenario: str, seconds: float, rate: int) -> dict[str, float]:
    global STATS
    STATS = Stats()
    wall, cpu = time.perf_counter(), time.process_time()
    await _feed(app.screens, scenario, seconds, rate)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    views = len(app.screens)
    return {
        "fps_per_view": STATS.frames / views / wall,
        "rows_per_s": STATS.rows / wall,
        "ms_per_frame": 1000 * STATS.view_seconds / STATS.frames * views if STATS.frames else 0.0,
        "updates_per_s": STATS.updates / wall,
        "ms_per_update": 1000 * STATS.update_seconds / max(STATS.updates, 1),
        "cpu_per_s": cpu / wall,
        "us_per_message": 1e6 * STATS.feed_seconds / max(STATS.messages, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--rate", type=int, default=30, help="screen messages per second per agent")
    args = parser.parse_args()
    screens = [RemoteScreen(columns=COLUMNS, rows=ROWS) for _ in range(args.agents)]
    rng = random.Random(1)
    for remote in screens:
        remote.apply(
            ScreenEvent(
                agent="agent",
                rows={y: _row(rng) for y in range(ROWS - 1)},
                cursor=(0, 0),
                size=(COLUMNS, ROWS),
                full=True,
            )
        )
    app = GridApp(screens, args.fps)
    async with app.run_test(size=(250, 70)) as pilot:
        await pilot.pause(0.5)
        print(
            f"{args.agents} agents at {COLUMNS}x{ROWS} in a 250x70 grid,"
            f" ui.max_fps={args.fps}, {args.rate} screen messages/s per agent"
        )
        headings = ("fps/view", "rows/s", "ms/frame", "upd/s", "ms/upd", "cpu/s", "us/msg")
        print(f"{'scenario':<9}" + "".join(f"{h:>10}" for h in headings))
        for scenario in ("idle", "spinner", "stream"):
            figures = await _scenario(app, scenario, args.seconds, args.rate)
            print(f"{scenario:<9}" + "".join(f"{value:>10.2f}" for value in figures.values()))
    print("ms/frame: tick + render_line time of all views for one frame of each (0: no frames)")
    print("us/msg: RemoteScreen.apply per screen message (the live model's share, not the view's)")


if __name__ == "__main__":
    asyncio.run(main())
