"""`at approvals` and `at agent list` with 50 idle agents and 10 streaming (issue 10, item 3).

    .venv/bin/python benchmarks/bench_cli.py [--quick] [--runs 40] [--idle 50] [--streaming 10]

Target: p99 under 150 ms for each command, timed as the operator sees it: from
spawning `at … --json` to its exit, its output read. Idle agents are `cat` (a PTY
and nothing printed); streaming ones print a coloured test log at `--rate` bytes a
second each (benchmarks/gen_testlog.py). The figures are broken down: a bare
`python -c pass`, `at --version` (the interpreter plus the CLI's imports, no
daemon), and the same two requests over one open socket (the daemon's share).
The tmux baseline is `tmux list-windows -a` on a tmux server running the same 60
programs, timed the same way in the same run, round-robin with the rest.

Everything started here is torn down at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import (
    NEUTRAL_CWD,
    PY,
    ROOT,
    BenchTown,
    CpuMeter,
    Socket,
    TmuxServer,
    generator,
    header,
    p,
    spread,
    verdict,
)

TARGET_P99_MS = 150.0


def timed(argv: list[str], env: dict[str, str] | None, cwd: str | Path) -> float:
    """Milliseconds from spawn to exit, output read; RuntimeError if it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, check=False)
    took = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-3:])} failed: {done.stderr.decode()[-500:]}")
    return took


async def socket_round_trips(root: Path, runs: int) -> dict[str, list[float]]:
    """Milliseconds per `agents` and `approvals` request on one open connection: the
    requests the two commands send (`agents` with `roster` where the code has it)."""
    from tundra_tui.daemon.protocol import REQUESTS

    roster = "roster" in REQUESTS["agents"].__struct_fields__
    asked: dict[str, dict[str, object]] = {"agents": {"roster": True} if roster else {}}
    sock = await Socket.open(root)
    samples: dict[str, list[float]] = {"agents": [], "approvals": []}
    try:
        for _ in range(runs):
            for op in samples:
                started = time.perf_counter()
                await sock.ask(op, **asked.get(op, {}))
                samples[op].append((time.perf_counter() - started) * 1000)
    finally:
        await sock.close()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and agents")
    parser.add_argument("--runs", type=int, default=40, help="runs of each command")
    parser.add_argument("--idle", type=int, default=50, help="idle agents (cat)")
    parser.add_argument("--streaming", type=int, default=10, help="agents printing a test log")
    parser.add_argument("--rate", type=float, default=100_000, help="bytes/s per streaming agent")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.idle, args.streaming = 10, 10, 4
    header("bench_cli: `at approvals` and `at agent list` with many agents, vs tmux list-windows")
    idle = [f"idle{i:02d}" for i in range(1, args.idle + 1)]
    streaming = [f"stream{i:02d}" for i in range(1, args.streaming + 1)]
    agents = dict.fromkeys(idle, "cat")
    for seed, name in enumerate(streaming, 1):
        agents[name] = generator(args.rate, seed, Path(ROOT) / "stats" / name)
    town = BenchTown(agents)
    server = TmuxServer("cli", 120, 40)
    print(
        f"town      {town.root}: {args.idle} idle agents (cat), {args.streaming} printing "
        f"{args.rate / 1000:g} kB/s each"
    )
    figures: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}
    try:
        daemon = town.start_daemon()
        took = town.start_agents(list(agents))
        print(f"          all {len(agents)} agents started and running in {took:.1f} s")
        server.new_session("bench", "cat", window=idle[0] if idle else "w0")
        for name in idle[1:]:
            server.new_window("bench", name, "cat")
        for seed, name in enumerate(streaming, 1):
            server.new_window("bench", name, generator(args.rate, seed))
        time.sleep(2.0)  # let the streams settle before timing (a benchmark, not a test)
        tmux = ["tmux", "-L", server.socket, "-f", "/dev/null", "list-windows", "-a"]
        commands: dict[str, Callable[[], float]] = {
            "python -c pass": lambda: timed([PY, "-c", "pass"], None, NEUTRAL_CWD),
            "at --version": lambda: timed(town.argv("--version"), town.env, NEUTRAL_CWD),
            "at agent list --json": lambda: timed(
                town.argv("agent", "list", "--json"), town.env, NEUTRAL_CWD
            ),
            "at approvals --json": lambda: timed(
                town.argv("approvals", "--json"), town.env, NEUTRAL_CWD
            ),
            "tmux list-windows -a": lambda: timed(tmux, None, NEUTRAL_CWD),
        }
        figures = {label: [] for label in commands}
        meter = CpuMeter({"daemon": daemon, "tmux server": server.pid()})
        for _ in range(args.runs):
            for label, run in commands.items():
                figures[label].append(run())
        cpu = meter.read()
        sockets = asyncio.run(socket_round_trips(town.root, args.runs))
        figures["socket: agents request"] = sockets["agents"]
        figures["socket: approvals request"] = sockets["approvals"]
    finally:
        server.close()
        town.close()
    print(f"\nwall time per command, {args.runs} runs each, round-robin (spawn to exit)")
    for label, samples in figures.items():
        print(f"  {label:<26} {spread(samples)}")
    print(
        "  CPU while timing (% of a core): "
        + "  ".join(f"{label} {value:.1f}%" for label, value in cpu.items())
    )
    print("\nsummary")
    for label in ("at agent list --json", "at approvals --json"):
        if figures.get(label):
            worst = p(figures[label], 0.99)
            print(
                f"  {label:<22} p99 {worst:6.1f} ms   (target < {TARGET_P99_MS:g} ms: "
                f"{verdict(worst < TARGET_P99_MS)})"
            )
    if figures.get("at --version"):
        print(
            f"  start-up alone (at --version) p50 {p(figures['at --version'], 0.5):.1f} ms;"
            f" tmux list-windows p99 {p(figures['tmux list-windows -a'], 0.99):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
