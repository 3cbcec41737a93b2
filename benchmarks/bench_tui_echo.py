"""Key echo in `at tui`'s grabbed terminal tile with 20 agents streaming (issue 10, item 2).

    .venv/bin/python benchmarks/bench_tui_echo.py [--quick] [--agents 20] [--rate 100000]

Target: p99 at most 50 ms; the daemon's and the TUI's CPU are reported. The real
`at tui` runs in a private tmux server (200x50 by default). On the Agents tab the
first agent, `aa-echo` (`cat`), is selected and grabbed (`f`), its tile among the
streaming ones; `--agents` others print a coloured test log at `--rate` bytes a
second each (benchmarks/gen_testlog.py). Each key is sent with `send-keys` and its
echo found by polling `capture-pane` every ~2 ms, both over one tmux control
client (no process per poll): the figure covers tmux -> `at tui` -> daemon -> PTY ->
`cat` -> emulator -> screen event -> tile -> tmux.

Baseline in the same run: `cat` in a plain tmux window of a server whose other
windows run the same generators, typed into and polled the same way. It shows
what the harness itself costs.

Everything started here is torn down at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import (
    ALPHABET,
    ROOT,
    BenchTown,
    CpuMeter,
    NotShown,
    TmuxApp,
    TmuxServer,
    delivered_kbs,
    generator,
    header,
    p,
    showing,
    spread,
    verdict,
    written,
)

TARGET_P99_MS = 50.0
ECHO = "aa-echo"
"""Sorts first, so it is the agent the Agents tab's list starts on."""
ECHO_TIMEOUT_S = 10.0
GRABBED_TOP = "┏━"
GRABBED_SIDE = "┃"


def typed_latencies(
    send: Callable[[str], float],
    wipe: Callable[[], None],
    shows: Callable[[str], Callable[[str], bool]],
    until: Callable[[Callable[[str], bool], float, str], float],
    keys: int,
    gap: float,
    line_keys: int,
) -> list[float]:
    """Milliseconds from each key sent until a capture shows the typed line so far.

    `shows(typed)` is the check for a screen showing `typed` at the start of the echo
    row; every `line_keys` keys, `wipe()` (Ctrl-U) and wait for the row to be blank.
    """
    latencies = []
    typed = ""
    for i in range(keys):
        if len(typed) >= line_keys:
            wipe()
            before = shows(typed)
            until(lambda screen, before=before: not before(screen), 10, "the line wiped")
            typed = ""
        typed += ALPHABET[i % len(ALPHABET)]
        sent = send(typed[-1])
        try:
            seen = until(shows(typed), ECHO_TIMEOUT_S, f"the echo of key {i}")
        except NotShown as error:
            raise NotShown(f"{error} ({len(latencies)} keys were echoed)", error.screen) from None
        latencies.append((seen - sent) * 1000)
        time.sleep(max(0.0, sent + gap - time.perf_counter()))
    wipe()
    return latencies


def tile_shows(typed: str) -> Callable[[str], bool]:
    """The grabbed tile (heavy border) has `typed` at the start of one of its rows."""
    needle = GRABBED_SIDE + typed
    return lambda screen: needle in screen


def line_shows(typed: str) -> Callable[[str], bool]:
    """A plain pane has a row starting with `typed`."""
    return lambda screen: any(row.startswith(typed) for row in screen.splitlines())


def grab_echo(app: TmuxApp, agents: int) -> None:
    """Agents tab, the list on its first agent (`aa-echo`), its terminal grabbed."""
    app.keys("2")
    app.until(showing(f"Agents {agents + 1}"), 60, "the Agents tab")
    for _ in range(5):
        app.keys("Home")
        app.keys("f")
        app.until(showing("to release"), 30, "a grabbed terminal")
        grabbed = [row for row in app.screen().splitlines() if GRABBED_TOP in row]
        if grabbed and ECHO in grabbed[0]:
            return
        app.keys("C-]")
        time.sleep(0.5)
    raise RuntimeError(f"could not grab {ECHO}'s tile")


def tui_side(
    town: BenchTown, args: argparse.Namespace, floods: list[str]
) -> tuple[list[float], dict[str, float], dict[str, float], float]:
    server = TmuxServer("tuiecho", args.width, args.height)
    app: TmuxApp | None = None
    try:
        daemon = town.start_daemon()
        took = town.start_agents([ECHO, *floods])
        print(f"          {len(floods) + 1} agents started and running in {took:.1f} s")
        app = TmuxApp(server, "t", town.argv("tui"), env={"HOME": str(town.home)})
        app.launch()
        app.until(showing(" auto-tundra "), 60, "the first frame")
        grab_echo(app, len(floods))
        pids = {"daemon": daemon, "at tui": app.pid, "tmux server": server.pid()}
        settle = CpuMeter(pids)
        time.sleep(args.settle)
        settled = settle.read()
        stats = [town.stats / name for name in floods]
        before = [written(s) for s in stats]
        meter = CpuMeter(pids)
        session = app.session
        latencies = typed_latencies(
            send=lambda char: _send(app, char),
            wipe=lambda: app.ctl.command(f"send-keys -t {session} C-u"),
            shows=tile_shows,
            until=app.until,
            keys=args.keys,
            gap=args.gap,
            line_keys=args.line_keys,
        )
        typing = meter.read()
        delivered = delivered_kbs(before, [written(s) for s in stats])
        app.keys("C-]")
        app.quit()
        return latencies, settled, typing, delivered
    except Exception:
        # What the daemon knew when the tiles failed (subscribers, what they show, resyncs).
        with contextlib.suppress(Exception):
            print(
                "  daemon status when it failed:\n" + town.at("daemon", "status", "--json").stdout
            )
            rows = json.loads(town.at("agent", "list", "--json").stdout)
            print(
                "  shown: " + " ".join(f"{r['name']}={r.get('shown')}/{r['state']}" for r in rows)
            )
        raise
    finally:
        if app is not None:
            app.close()
        server.close()


def _send(app: TmuxApp, char: str) -> float:
    sent = time.perf_counter()
    app.type(char)
    return sent


def tmux_side(args: argparse.Namespace, root: Path, floods: list[str]) -> list[float]:
    server = TmuxServer("tuiecho-base", args.width, args.height)
    app: TmuxApp | None = None
    try:
        app = TmuxApp(server, "t", ["cat"])
        app.launch()
        for seed, name in enumerate(floods, 1):
            server.new_window("t", name, generator(args.rate, seed))
        time.sleep(args.settle)
        session = app.session
        return typed_latencies(
            send=lambda char: _send(app, char),
            wipe=lambda: app.ctl.command(f"send-keys -t {session}:0 C-u"),
            shows=line_shows,
            until=lambda check, timeout, what: app.until(check, timeout, what),
            keys=args.keys,
            gap=args.gap,
            line_keys=args.line_keys,
        )
    finally:
        if app is not None:
            app.close()
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 agents, 30 keys")
    parser.add_argument("--agents", type=int, default=20, help="agents printing a test log")
    parser.add_argument("--rate", type=float, default=100_000, help="bytes/s per agent")
    parser.add_argument("--keys", type=int, default=100, help="keys timed")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between keys")
    parser.add_argument("--line-keys", type=int, default=20, help="keys before Ctrl-U")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds streaming before keys")
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--height", type=int, default=50)
    parser.add_argument("--verbose", action="store_true", help="print the screen on a failure")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.keys, args.settle = 6, 30, 2.0
    header("bench_tui_echo: key echo in at tui's grabbed tile with agents streaming")
    floods = [f"f{i:02d}" for i in range(1, args.agents + 1)]
    agents = {ECHO: "cat"}
    for seed, name in enumerate(floods, 1):
        agents[name] = generator(args.rate, seed, Path(ROOT) / "stats" / name)
    town = BenchTown(agents)
    print(
        f"town      {town.root}: `cat` + {args.agents} agents at {args.rate / 1000:g} kB/s, "
        f"terminal {args.width}x{args.height}"
    )
    baseline: list[float] = []
    tui: list[float] = []
    settled: dict[str, float] = {}
    typing: dict[str, float] = {}
    delivered = float("nan")
    try:
        try:
            baseline = tmux_side(args, town.root, floods)
        except Exception as error:  # a benchmark reports what it could not measure
            print(f"  tmux baseline could not measure: {error}")
        try:
            tui, settled, typing, delivered = tui_side(town, args, floods)
        except Exception as error:
            print(f"  at tui could not measure: {error}")
            if isinstance(error, NotShown) and args.verbose:
                print("  the last screen:\n" + error.screen)
    finally:
        town.close()
    print(f"\nkey to echo on screen, {args.gap * 1000:g} ms between keys (send-keys, capture-pane)")
    if baseline:
        print(f"  tmux window (baseline)    {spread(baseline)}")
    if tui:
        print(f"  at tui, grabbed tile      {spread(tui)}")
        for label, cpu in (("settled, no keys", settled), ("while typing", typing)):
            shown = "  ".join(f"{name} {value:5.1f}%" for name, value in cpu.items())
            print(f"  CPU {label:<17}     {shown}  (% of a core)")
        print(f"  streams got {delivered:.1f} kB/s each of {args.rate / 1000:g} offered")
        worst = p(tui, 0.99)
        print("\nsummary")
        print(
            f"  at tui echo p99 {worst:.1f} ms (target <= {TARGET_P99_MS:g} ms: "
            f"{verdict(worst <= TARGET_P99_MS)})"
            + (f"; tmux baseline p99 {p(baseline, 0.99):.1f} ms" if baseline else "")
        )
        print(
            "  daemon + at tui CPU while typing: "
            f"{typing.get('daemon', float('nan')) + typing.get('at tui', float('nan')):.1f}% "
            "of a core"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
