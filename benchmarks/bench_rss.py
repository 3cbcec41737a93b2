"""The daemon's memory with 50 agents streaming for minutes, against tmux's (issue 10, item 6).

    .venv/bin/python benchmarks/bench_rss.py [--quick] [--minutes 10] [--agents 50] [--every 30]

Target: the daemon's RSS levels off. `--agents` agents print a coloured test log
at `--rate` bytes a second each (benchmarks/gen_testlog.py) into the daemon; the
same generators run in as many windows of a private tmux server at the same time
(`--no-tmux` leaves it out). Every `--every` seconds the script prints both RSS
figures (VmRSS from /proc), the daemon's CPU over the interval and what the
generators really got written. At the end: the growth over the first and the
second half of the run (MiB per minute, least squares) and whether the daemon's
levelled off (second-half growth under a tenth of the first half's, or under
0.5 MiB a minute).

Everything started here is torn down at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchlib import (
    ROOT,
    BenchTown,
    CpuMeter,
    TmuxServer,
    delivered_kbs,
    generator,
    header,
    rss_mb,
    written,
)

FLAT_MIB_PER_MIN = 0.5


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minutes, MiB) points, MiB per minute."""
    if len(points) < 2:
        return float("nan")
    return statistics.linear_regression([t for t, _ in points], [m for _, m in points]).slope


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 minute, 10 agents, every 10 s")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of streaming")
    parser.add_argument("--agents", type=int, default=50, help="agents printing a test log")
    parser.add_argument("--rate", type=float, default=20_000, help="bytes/s per agent")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--no-tmux", action="store_true", help="measure the daemon only")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.agents, args.every = 1.0, 10, 10.0
    header("bench_rss: daemon RSS with many agents streaming, vs a tmux server with the same")
    names = [f"r{i:02d}" for i in range(1, args.agents + 1)]
    town = BenchTown(
        {
            name: generator(args.rate, seed, Path(ROOT) / "stats" / name)
            for seed, name in enumerate(names, 1)
        }
    )
    print(
        f"town      {town.root}: {args.agents} agents at {args.rate / 1000:g} kB/s each for "
        f"{args.minutes:g} min, sampled every {args.every:g} s"
    )
    server = TmuxServer("rss", 120, 40)
    daemon_curve: list[tuple[float, float]] = []
    tmux_curve: list[tuple[float, float]] = []
    try:
        daemon = town.start_daemon()
        empty = rss_mb(daemon)
        took = town.start_agents(names)
        print(f"          daemon RSS with no agent {empty:.1f} MiB; agents running in {took:.1f} s")
        tmux_pid = None
        if not args.no_tmux:
            for seed, name in enumerate(names, 1):
                stats = town.stats / f"tmux-{name}"
                if seed == 1:
                    server.new_session("bench", generator(args.rate, seed, stats), window=name)
                else:
                    server.new_window("bench", name, generator(args.rate, seed, stats))
            tmux_pid = server.pid()
        at_stats = [town.stats / name for name in names]
        tmux_stats = [town.stats / f"tmux-{name}" for name in names]
        print(
            f"\n  {'min':>5}  {'daemon MiB':>10}  {'CPU %':>6}  {'got kB/s':>8}"
            + ("" if tmux_pid is None else f"  {'tmux MiB':>8}  {'CPU %':>6}  {'got kB/s':>8}")
        )
        began = time.monotonic()
        end = began + args.minutes * 60
        while True:
            before_at = [written(s) for s in at_stats]
            before_tmux = [written(s) for s in tmux_stats]
            meter = CpuMeter({"daemon": daemon, "tmux": tmux_pid})
            time.sleep(max(0.0, min(args.every, end - time.monotonic())))
            cpu = meter.read()
            minutes = (time.monotonic() - began) / 60
            daemon_curve.append((minutes, rss_mb(daemon)))
            line = (
                f"  {minutes:5.1f}  {daemon_curve[-1][1]:10.1f}  {cpu['daemon']:6.1f}  "
                f"{delivered_kbs(before_at, [written(s) for s in at_stats]):8.1f}"
            )
            if tmux_pid is not None:
                tmux_curve.append((minutes, rss_mb(tmux_pid)))
                line += (
                    f"  {tmux_curve[-1][1]:8.1f}  {cpu['tmux']:6.1f}  "
                    f"{delivered_kbs(before_tmux, [written(s) for s in tmux_stats]):8.1f}"
                )
            print(line, flush=True)
            if time.monotonic() >= end - 0.5:
                break
    finally:
        server.close()
        town.close()
    print("\nsummary")
    for label, curve in (("daemon", daemon_curve), ("tmux server", tmux_curve)):
        if len(curve) < 4:
            continue
        half = len(curve) // 2
        first, second = slope(curve[: half + 1]), slope(curve[half:])
        flat = second < FLAT_MIB_PER_MIN or second < first / 10
        print(
            f"  {label:<12} {curve[0][1]:6.1f} -> {curve[-1][1]:6.1f} MiB; growth "
            f"{first:+.2f} MiB/min in the first half, {second:+.2f} in the second: "
            + ("levels off" if flat else "still growing")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
