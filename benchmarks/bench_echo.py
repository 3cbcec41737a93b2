"""Key echo through `at session attach` while other agents flood, against tmux in the same run.

    .venv/bin/python benchmarks/bench_echo.py [--quick] [--keys 200] [--floods 4] [--rate 300000]

Issue 10's first benchmark. One agent is `cat` (the kernel echoes each key, so the
figure is pure plumbing); `--floods` others print a coloured test log at `--rate`
bytes a second each (benchmarks/gen_testlog.py). The operator's terminal is a PTY
this script holds, 120x40: it runs `at session attach echo`, or a real tmux client
attached to the `echo` window of a tmux server whose other windows run the same
generators. A key is timed from its write into that PTY to the read that brought
its echo onto the terminal's screen (emulated here, a few bytes per key). Keys go
out every `--gap` seconds (50 ms: faster than anyone types, slower than the
daemon's cap of 30 screen messages a second per agent, under which every key of a
faster stream waits for the next frame, up to 33 ms).

Each side is measured quiet (nothing else running) and then loaded (the floods
on, after a settle). CPU is read from /proc over the loaded keys: the daemon and
the tmux server (targets: daemon at most 25% of a core; p99 at most 3x tmux's),
plus each side's client. The generators report what they really got written, so a
side that throttles its agents shows it.

The sides run one after the other (tmux first), never together. Everything
started here is torn down at the end. Not part of the test suite; prints figures,
exits 0 whatever they are.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    ROOT,
    BenchTown,
    CpuMeter,
    Terminal,
    TmuxServer,
    Written,
    delivered_kbs,
    echo_latencies,
    generator,
    header,
    p,
    spread,
    verdict,
    written,
)

WIDTH, HEIGHT = 120, 40
TARGET_RATIO = 3.0
TARGET_DAEMON_CPU = 25.0
DETACH = b"\x1d"


@dataclass
class Side:
    """One side's figures."""

    name: str
    quiet: list[float] = field(default_factory=list)
    loaded: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    delivered: float = float("nan")
    error: str = ""


def flood_names(count: int) -> list[str]:
    return [f"flood{i}" for i in range(1, count + 1)]


def measure_loaded(
    term: Terminal,
    stats: list[Path],
    meter_pids: dict[str, int | None],
    args: argparse.Namespace,
    side: Side,
) -> None:
    """Settle with the floods on, then time `--keys` keys with CPU and delivery metered."""
    term.pump(time.perf_counter() + args.settle)
    before: list[Written] = [written(s) for s in stats]
    meter = CpuMeter(meter_pids)
    side.loaded = echo_latencies(term, args.keys, args.gap)
    side.cpu = meter.read()
    side.delivered = delivered_kbs(before, [written(s) for s in stats])


def tmux_side(args: argparse.Namespace, stats_dir: Path) -> Side:
    side = Side("tmux")
    server = TmuxServer("echo", WIDTH, HEIGHT)
    term: Terminal | None = None
    try:
        server.new_session("bench", "cat", window="echo")
        term = Terminal(
            ["tmux", "-L", server.socket, "-f", "/dev/null", "attach", "-t", "bench:echo"],
            WIDTH,
            HEIGHT,
            {},
        )
        term.quiet(0.3, 5)
        side.quiet = echo_latencies(term, args.quiet_keys, args.gap)
        stats = []
        for seed, name in enumerate(flood_names(args.floods), 1):
            stat = stats_dir / f"tmux-{name}"
            stats.append(stat)
            server.new_window("bench", name, generator(args.rate, seed, stat))
        client = term.process.pid
        measure_loaded(term, stats, {"server": server.pid(), "client": client}, args, side)
    except Exception as error:  # a benchmark reports what it could not measure
        side.error = repr(error)
    finally:
        if term is not None:
            term.close(detach=b"\x02d")
        server.close()
    return side


def at_side(args: argparse.Namespace, town: BenchTown, stats_dir: Path) -> Side:
    side = Side("at")
    term: Terminal | None = None
    try:
        daemon = town.start_daemon()
        town.start_agents(["echo"])
        term = Terminal(town.argv("session", "attach", "echo"), WIDTH, HEIGHT, town.env)
        term.quiet(0.5, 10)
        side.quiet = echo_latencies(term, args.quiet_keys, args.gap)
        floods = flood_names(args.floods)
        town.start_agents(floods)
        stats = [stats_dir / f"at-{name}" for name in floods]
        measure_loaded(term, stats, {"daemon": daemon, "client": term.process.pid}, args, side)
    except Exception as error:
        side.error = repr(error)
    finally:
        if term is not None:
            term.close(detach=DETACH)
    return side


def report(sides: list[Side], args: argparse.Namespace) -> None:
    print(
        f"\nkey echo into `cat`, terminal {WIDTH}x{HEIGHT}, {args.gap * 1000:g} ms between keys;"
        f" loaded = {args.floods} agents printing {args.rate / 1000:g} kB/s each"
    )
    for side in sides:
        label = "tmux attach" if side.name == "tmux" else "at session attach"
        if side.error:
            print(f"  {label:<18} could not measure: {side.error}")
        if side.quiet:
            print(f"  {label:<18} quiet   {spread(side.quiet)}")
        if side.loaded:
            print(f"  {label:<18} loaded  {spread(side.loaded)}")
            cpu = "  ".join(f"{k} {v:5.1f}%" for k, v in side.cpu.items())
            print(
                f"  {'':<18} loaded CPU (% of a core): {cpu};  floods got "
                f"{side.delivered:6.1f} kB/s each of {args.rate / 1000:g} offered"
            )
    tmux, at = sides[0], sides[1]
    print("\nsummary")
    if tmux.loaded and at.loaded:
        ratio = p(at.loaded, 0.99) / p(tmux.loaded, 0.99)
        print(
            f"  loaded echo p99: at {p(at.loaded, 0.99):.1f} ms / tmux "
            f"{p(tmux.loaded, 0.99):.1f} ms = {ratio:.1f}x   (target <= {TARGET_RATIO:g}x: "
            f"{verdict(ratio <= TARGET_RATIO)})"
        )
    if at.quiet and at.loaded:
        print(
            f"  at echo p50 quiet -> loaded: {p(at.quiet, 0.5):.1f} -> {p(at.loaded, 0.5):.1f} ms"
        )
    if at.cpu.get("daemon") is not None:
        daemon = at.cpu["daemon"]
        server = tmux.cpu.get("server", float("nan"))
        print(
            f"  daemon CPU {daemon:.1f}% of a core (target <= {TARGET_DAEMON_CPU:g}%: "
            f"{verdict(daemon <= TARGET_DAEMON_CPU)}); tmux server {server:.1f}%"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few keys, short settle")
    parser.add_argument("--keys", type=int, default=200, help="keys timed under load")
    parser.add_argument("--quiet-keys", type=int, default=50, help="keys timed with no flood")
    parser.add_argument("--floods", type=int, default=4, help="agents printing a test log")
    parser.add_argument("--rate", type=float, default=300_000, help="bytes/s per flood agent")
    parser.add_argument(
        "--gap", type=float, default=0.05, help="seconds from a key to the next (default 0.05)"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of flood before keys")
    parser.add_argument("--only", choices=("at", "tmux"), help="measure one side only")
    args = parser.parse_args()
    if args.quick:
        args.keys, args.quiet_keys, args.settle = 60, 20, 1.5
    header("bench_echo: key echo through `at session attach` vs tmux, with agents flooding")
    agents = {"echo": "cat"}
    for seed, name in enumerate(flood_names(args.floods), 1):
        agents[name] = generator(args.rate, seed, Path(ROOT) / "stats" / f"at-{name}")
    town = BenchTown(agents)
    stats_dir = town.stats
    print(f"town      {town.root}")
    sides = [Side("tmux"), Side("at")]
    try:
        if args.only != "at":
            sides[0] = tmux_side(args, stats_dir)
        if args.only != "tmux":
            sides[1] = at_side(args, town, stats_dir)
    finally:
        town.close()
    report(sides, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
