"""Key-to-screen latency of opening the approval inbox with 50 requests waiting (issue 15).

    .venv/bin/python benchmarks/bench_inbox.py [--quick] [--runs 20] [--requests 50]

A town of `--requests` demo agents (the bundled demo agent at full speed), each started
with `--auto-task "RUN: true"`: each asks at once, so the daemon holds that many real
requests read from the agents' screens. `at tui` runs in a pane of a private tmux server
(120x36); once its title bar counts every request, `I` is sent and timed until the inbox
shows "Approvals waiting: N" (its title and rows are drawn in one call), then Esc closes
it and the next open waits until it is gone. The first open, which also imports the
inbox's module, is reported on its own, then `--runs` more.

The baseline, in the same run: a minimal Textual app (this file, `--minimal-app N`) whose
`I` pushes a ModalScreen holding a title and a DataTable of N rows, in a pane beside it,
timed the same way; the two apps' opens alternate.
Screens are polled every ~2 ms over one tmux control client, as in bench_tui_frame.py.

Everything started here is torn down at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import ClassVar

from benchlib import (
    PY,
    BenchTown,
    NotShown,
    TmuxApp,
    TmuxControl,
    TmuxServer,
    header,
    p,
    showing,
    spread,
    wait_until,
)

WIDTH, HEIGHT = 120, 36
TUI_FIRST = (" auto-tundra ", "Recent activity")
MINIMAL_FIRST = ("minimal first pane",)
DEMO_ARGS = ["--speed", "0", "--approval-rate", "0", "--auto-task", "RUN: true"]
"""Each agent asks to run `true` as soon as it starts (an explicit RUN always asks)."""


def minimal_modal_app(rows: int) -> None:
    """The baseline: a header, a static pane and a footer; `I` opens a modal with a title
    and a DataTable of `rows` rows, Esc closes it, `q` quits."""
    from textual.app import App, ComposeResult
    from textual.binding import Binding, BindingType
    from textual.containers import Vertical
    from textual.screen import ModalScreen
    from textual.widgets import DataTable, Footer, Header, Static

    class Rows(ModalScreen[None]):
        DEFAULT_CSS = "Rows { align: center middle; } Rows > Vertical { width: 90%; height: 80%; }"
        BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]

        def compose(self) -> ComposeResult:
            with Vertical():
                yield Static(f"Minimal modal: {rows} rows")
                yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("agent", "command")
            for i in range(rows):
                table.add_row(f"agent-{i}", f"true {i}")
            table.focus()

    class MinimalModal(App[None]):
        BINDINGS: ClassVar[list[BindingType]] = [
            Binding("I", "open", "Open"),
            Binding("q", "quit", "Quit"),
        ]

        def compose(self) -> ComposeResult:
            yield Header()
            yield Static("minimal first pane")
            yield Footer()

        def action_open(self) -> None:
            self.push_screen(Rows())

    MinimalModal().run()


def demo_town(requests: int) -> BenchTown:
    """A town of `requests` demo agents that each ask at once when started."""
    town = BenchTown({}, prefix="b15-")
    names = [f"i{i:02d}" for i in range(1, requests + 1)]
    tables = "".join(
        f'\n[agents.{name}]\nrole = "crew"\nruntime = "demo"\nargs = {json.dumps(DEMO_ARGS)}\n'
        for name in names
    )
    with (town.root / "tundra.toml").open("a") as config:
        config.write(tables)
    (town.root / ".tundra" / "local.toml").write_text(
        f"[general]\nmax_ptys = {requests + 4}\n[ui]\napproval_popup = false\n"
    )
    town.names = names
    return town


def open_once(app: TmuxApp, mark: str, gone: str, what: str) -> float:
    """`I` until `mark` is on screen (milliseconds); then Esc, until `gone` is not."""
    sent = time.perf_counter()
    app.keys("I")
    shown = app.until(showing(mark), 15, f"{what} open")
    app.keys("Escape")
    app.until(lambda screen: gone not in screen, 15, f"{what} closed")
    return (shown - sent) * 1000


def alternate_opens(
    server: TmuxServer, ctl: TmuxControl, town: BenchTown, requests: int, runs: int
) -> tuple[list[float], list[float]]:
    """Both apps up side by side; then `runs` opens of each, alternating (so that the
    machine's load falls on both alike): milliseconds, the first open of each first."""
    env = {"HOME": str(town.home)}
    tui = TmuxApp(server, "inbox", town.argv("tui"), env=env, ctl=ctl)
    argv = [PY, __file__, "--minimal-app", str(requests)]
    minimal = TmuxApp(server, "minimal", argv, ctl=ctl)
    try:
        tui.launch()
        minimal.launch()
        tui.until(showing(*TUI_FIRST, f"{requests} waiting"), 60, "at tui with every request")
        minimal.until(showing(*MINIMAL_FIRST), 60, "the minimal app")
        tui_ms: list[float] = []
        minimal_ms: list[float] = []
        for _ in range(runs):
            tui_ms.append(
                open_once(tui, f"Approvals waiting: {requests}", "Approvals waiting", "inbox")
            )
            minimal_ms.append(
                open_once(minimal, f"Minimal modal: {requests} rows", "Minimal modal", "modal")
            )
            time.sleep(0.1)  # a benchmark, not a test: let both go idle between opens
        tui.quit()
        minimal.quit()
        return tui_ms, minimal_ms
    finally:
        tui.close()
        minimal.close()


def pending(town: BenchTown) -> int:
    return len(json.loads(town.at("approvals", "--json").stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 opens of each")
    parser.add_argument("--runs", type=int, default=20, help="opens of each app (+1 first)")
    parser.add_argument("--requests", type=int, default=50, help="requests waiting")
    parser.add_argument("--verbose", action="store_true", help="print the screen on a failure")
    parser.add_argument("--minimal-app", type=int, metavar="ROWS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.minimal_app is not None:
        minimal_modal_app(args.minimal_app)
        return 0
    if args.quick:
        args.runs = 8
    header("bench_inbox: key to screen of the approval inbox vs a minimal app's modal")
    town = demo_town(args.requests)
    print(
        f"town      {town.root}: {args.requests} demo agents, each asking at once; "
        f"terminal {WIDTH}x{HEIGHT}"
    )
    server = TmuxServer("inbox", WIDTH, HEIGHT)
    tui: list[float] = []
    minimal: list[float] = []
    try:
        town.start_daemon()
        took = town.start_agents(town.names)
        wait_until(lambda: pending(town) >= args.requests, 120, "every request", every=0.5)
        print(f"          {args.requests} agents started and asking in {took:.1f} s")
        ctl = server.control("ctl")
        try:
            tui, minimal = alternate_opens(server, ctl, town, args.requests, args.runs + 1)
        except NotShown as error:
            print(f"  could not measure: {error}")
            if args.verbose:
                print("  the last screen:\n" + error.screen)
        finally:
            ctl.close()
    finally:
        server.close()
        town.close()
    print(f"\nopen, key to screen, {args.requests} requests / rows (ms)")
    for label, figures in (("at tui inbox (I)", tui), ("minimal app modal (I)", minimal)):
        if figures:
            print(f"  {label:<22} first {figures[0]:6.1f}   then {spread(figures[1:])}")
    if tui[1:] and minimal[1:]:
        ratio = statistics.median(tui[1:]) / statistics.median(minimal[1:])
        worst = p(tui[1:], 0.99) / p(minimal[1:], 0.99)
        print(f"\nsummary\n  at tui / minimal app: {ratio:.2f}x at p50, {worst:.2f}x at p99")
    return 0


if __name__ == "__main__":
    sys.exit(main())
