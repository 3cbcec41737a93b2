"""A 10 MiB line with no newline through one agent, against tmux (issue 10, item 4).

    .venv/bin/python benchmarks/bench_long_line.py [--quick] [--mib 10] [--rounds 3]

Target: under 2 s from the agent starting its write to the daemon having emulated
it. The agent (benchmarks/gen_testlog.py --long-line) writes one line of `--mib`
MiB and no newline each time a trigger file appears, the last characters a marker
`<TAIL-k>`, and notes the monotonic time around its write (its write blocks while
nobody reads the PTY, so the write's duration is how long the agent was held up).
"Emulated" is the first `screen` reply (over one open socket, polled every 20 ms)
whose rows contain the marker; the agent's state is sampled with each poll and its
changes are printed. tmux runs the same agent in a pane of the same size in the same
run, its screen polled with `capture-pane -J` over a control client.

Everything started here is torn down at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    GENERATOR,
    PY,
    ROOT,
    BenchTown,
    CpuMeter,
    Socket,
    TmuxServer,
    header,
    verdict,
)

TARGET_S = 2.0
POLL_S = 0.02
WIDTH, HEIGHT = 120, 40


@dataclass
class Round:
    """One line's figures, seconds from the start of the agent's write."""

    write_s: float
    seen_s: float
    cpu: dict[str, float] = field(default_factory=dict)
    states: list[tuple[float, str]] = field(default_factory=list)


def long_line_agent(size: int, trigger: Path | str, stats: Path | str) -> str:
    return shlex.join(
        [
            PY, str(GENERATOR), "--long-line", str(size),
            "--trigger", str(trigger), "--stats", str(stats),
        ]
    )  # fmt: skip


def write_times(stats: Path, k: int) -> tuple[float, float] | None:
    """(start, end) of round k's write, once the agent has noted it."""
    if not stats.exists():
        return None
    for line in stats.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == str(k):
            return float(parts[1]), float(parts[2])
    return None


def wait_times(stats: Path, k: int, timeout: float) -> tuple[float, float]:
    deadline = time.monotonic() + timeout
    while (times := write_times(stats, k)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the agent never finished writing line {k}")
        time.sleep(0.01)
    return times


async def at_rounds(
    town: BenchTown, daemon: int, rounds: int, timeout: float, trigger: Path, stats: Path
) -> list[Round]:
    sock = await Socket.open(town.root)
    results = []
    try:
        deadline = time.monotonic() + 30
        while "ready" not in "".join((await sock.ask("screen", name="long"))["lines"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the long-line agent never said ready")
            await asyncio.sleep(0.05)
        for k in range(1, rounds + 1):
            marker = f"<TAIL-{k}>"
            states: list[tuple[float, str]] = []
            meter = CpuMeter({"daemon": daemon})
            (trigger / f"go-{k}").touch()
            deadline = time.monotonic() + timeout
            while True:
                screen = await sock.ask("screen", name="long")
                now = time.monotonic()
                state = str(screen.get("state", "?"))
                if not states or states[-1][1] != state:
                    states.append((now, state))
                if marker in "".join(screen["lines"]):
                    break
                if now > deadline:
                    raise RuntimeError(f"line {k} was not on the screen after {timeout:g} s")
                await asyncio.sleep(POLL_S)
            cpu = meter.read()
            start, end = wait_times(stats, k, timeout)
            results.append(
                Round(end - start, now - start, cpu, [(t - start, s) for t, s in states])
            )
            await asyncio.sleep(1.0)  # let it settle (the state after the line) between rounds
    finally:
        await sock.close()
    return results


def tmux_rounds(args: argparse.Namespace, root: Path) -> list[Round]:
    server = TmuxServer("long", WIDTH, HEIGHT)
    trigger = root / "tmux-trigger"
    trigger.mkdir()
    stats = root / "stats" / "tmux-long"
    results = []
    try:
        server.new_session("bench", long_line_agent(args.size, trigger, stats))
        ctl = server.control("ctl")
        try:

            def screen() -> str:
                return "".join(ctl.command("capture-pane -p -J -t bench"))

            deadline = time.monotonic() + 30
            while "ready" not in screen():
                if time.monotonic() > deadline:
                    raise RuntimeError("the long-line agent never said ready in tmux")
                time.sleep(0.05)
            for k in range(1, args.rounds + 1):
                meter = CpuMeter({"tmux server": server.pid()})
                (trigger / f"go-{k}").touch()
                deadline = time.monotonic() + args.timeout
                while f"<TAIL-{k}>" not in screen():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"line {k} was not in tmux after {args.timeout:g} s")
                    time.sleep(POLL_S)
                now = time.monotonic()
                cpu = meter.read()
                start, end = wait_times(stats, k, args.timeout)
                results.append(Round(end - start, now - start, cpu))
                time.sleep(0.5)
        finally:
            ctl.close()
    finally:
        server.close()
    return results


def report(label: str, rounds: list[Round]) -> None:
    for k, one in enumerate(rounds, 1):
        cpu = "  ".join(f"{name} {value:.0f}%" for name, value in one.cpu.items())
        print(
            f"  {label:<5} line {k}: agent's write took {one.write_s:6.2f} s; on screen after "
            f"{one.seen_s:6.2f} s   (CPU meanwhile: {cpu} of a core)"
        )
        if one.states:
            changes = ", ".join(f"{state} at {t:.2f} s" for t, state in one.states)
            print(f"  {'':<5}         state: {changes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2 MiB")
    parser.add_argument("--mib", type=float, default=10.0, help="MiB in the line")
    parser.add_argument("--rounds", type=int, default=3, help="lines, one after another")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per line at most")
    args = parser.parse_args()
    if args.quick:
        args.mib, args.rounds = 2.0, 1
    args.size = int(args.mib * 1024 * 1024)
    header("bench_long_line: one line of many MiB and no newline through an agent, vs tmux")
    trigger = Path(ROOT) / "trigger"
    town = BenchTown({"long": long_line_agent(args.size, trigger, Path(ROOT) / "stats" / "long")})
    (town.root / "trigger").mkdir()
    print(f"town      {town.root}; the line is {args.mib:g} MiB, terminal {WIDTH}x{HEIGHT}")
    tmux: list[Round] = []
    at: list[Round] = []
    try:
        try:
            tmux = tmux_rounds(args, town.root)
        except Exception as error:  # a benchmark reports what it could not measure
            print(f"  tmux could not measure: {error!r}")
        try:
            daemon = town.start_daemon()
            town.start_agents(["long"])
            at = asyncio.run(
                at_rounds(
                    town,
                    daemon,
                    args.rounds,
                    args.timeout,
                    town.root / "trigger",
                    town.stats / "long",
                )
            )
        except Exception as error:
            print(f"  at could not measure: {error!r}")
    finally:
        town.close()
    print()
    report("tmux", tmux)
    report("at", at)
    if at:
        worst = max(one.seen_s for one in at)
        print("\nsummary")
        print(
            f"  {args.mib:g} MiB line on the daemon's screen after at most {worst:.2f} s "
            f"(target < {TARGET_S:g} s: {verdict(worst < TARGET_S)})"
            + (f"; tmux {max(one.seen_s for one in tmux):.2f} s" if tmux else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
