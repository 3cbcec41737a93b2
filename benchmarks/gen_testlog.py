"""A stand-in agent for the benchmarks: prints a coloured test log at a steady rate.

    python benchmarks/gen_testlog.py [--rate 300000] [--seed 1] [--stats FILE]
    python benchmarks/gen_testlog.py --long-line 10485760 --trigger DIR --stats FILE

Standard library only, so it starts in a few milliseconds and costs next to no CPU:
the bytes are built once (pytest-style lines: PASSED in green, FAILED and
tracebacks in red, warnings in yellow, progress dots) and then written from that
buffer every 10 ms, as many as keep the rate. When whoever reads the terminal
falls behind, the write blocks; the backlog it may catch up on is capped at 0.1 s,
so a slow reader sees at most the rate, never a burst.

`--stats FILE` keeps `bytes first last` (bytes written, monotonic seconds of the
first and the last write) in FILE, rewritten about twice a second, so the
benchmark can say how much of the offered load was taken. CLOCK_MONOTONIC is
system-wide, so these times compare with the benchmark's `time.monotonic()`.

`--long-line N` prints `ready` and then, each time a file `go-K` appears in the
`--trigger` directory (K = 1, 2, ...), one line of N bytes with no newline whose
last characters are `<TAIL-K>`, and writes `K start end` (monotonic seconds
around the write) to FILE.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

RESET = "\x1b[0m"
GREEN = "\x1b[32m"
RED = "\x1b[31m"
YELLOW = "\x1b[33m"
BOLD_RED = "\x1b[1;31m"
CYAN = "\x1b[36m"
DIM = "\x1b[2m"
MODULES = ("parser", "store", "daemon", "emulator", "host", "tiling", "ring", "config", "cli")
WORDS = ("value", "empty", "unicode", "nested", "large", "slow", "retry", "default", "none")
BUFFER_BYTES = 512 * 1024
TICK_S = 0.01
MAX_BACKLOG_S = 0.1
STATS_EVERY_S = 0.5


def test_log(seed: int, size: int) -> bytes:
    """About `size` bytes of a pytest run's output, lines under 100 columns."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        module = rng.choice(MODULES)
        test = f"tests/test_{module}.py::test_{rng.choice(WORDS)}_{rng.choice(WORDS)}"
        roll = rng.random()
        if roll < 0.78:
            line = f"{test}[{n % 97}] {GREEN}PASSED{RESET}{' ' * rng.randint(1, 8)}[{n % 100:3d}%]"
        elif roll < 0.84:
            line = f"{test} {BOLD_RED}FAILED{RESET} [{n % 100:3d}%]"
            line += (
                f"\n{DIM}    def test_case():{RESET}\n>       assert parse({n}) == {n + 1}"
                f"\n{RED}E       AssertionError: assert {n} == {n + 1}{RESET}"
                f"\n{CYAN}tundra_tui/{module}.py{RESET}:{rng.randint(10, 900)}: AssertionError"
            )
        elif roll < 0.9:
            line = f"{test} {YELLOW}SKIPPED{RESET} (needs a network) [{n % 100:3d}%]"
        elif roll < 0.95:
            line = (
                f"{YELLOW}  DeprecationWarning: {rng.choice(WORDS)} is deprecated{RESET}"
                f"  -- {DIM}tundra_tui/{module}.py:{rng.randint(10, 900)}{RESET}"
            )
        else:
            dots = "".join(rng.choice("....................sF") for _ in range(60))
            line = f"tests/test_{module}.py {GREEN}{dots}{RESET} [{n % 100:3d}%]"
        line += "\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()


class Stats:
    """`bytes first last` in a file, replaced atomically so a reader never sees half of it."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.written = 0
        self.first = 0.0
        self.last = 0.0
        self.saved = 0.0

    def add(self, count: int, now: float) -> None:
        if not self.first:
            self.first = now
        self.written += count
        self.last = now
        if now - self.saved >= STATS_EVERY_S:
            self.save(now)

    def save(self, now: float) -> None:
        self.saved = now
        if self.path is None:
            return
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(f"{self.written} {self.first:.6f} {self.last:.6f}\n")
        temp.replace(self.path)


def stream(rate: float, seed: int, stats: Stats) -> None:
    data = test_log(seed, BUFFER_BYTES)
    view = memoryview(data)
    offset = 0
    started = time.monotonic()
    owed = 0.0
    last = started
    while True:
        now = time.monotonic()
        owed = min(owed + (now - last) * rate, rate * MAX_BACKLOG_S)
        last = now
        count = int(owed)
        while count > 0:
            chunk = view[offset : offset + count]
            written = os.write(1, chunk)
            offset = (offset + written) % len(data)
            count -= written
            owed -= written
            stats.add(written, time.monotonic())
        time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))


def long_lines(size: int, trigger: Path, stats_path: Path) -> None:
    os.write(1, b"ready\r\n")
    k = 1
    body = (b"0123456789abcdefghijklmnopqrstuvwxyz" * (size // 36 + 1))[:size]
    results: list[str] = []
    while True:
        if not (trigger / f"go-{k}").exists():
            time.sleep(0.002)
            continue
        tail = f"<TAIL-{k}>".encode()
        line = body[: size - len(tail)] + tail
        start = time.monotonic()
        view = memoryview(line)
        while view:
            view = view[os.write(1, view) :]
        end = time.monotonic()
        results.append(f"{k} {start:.6f} {end:.6f}")
        temp = stats_path.with_name(stats_path.name + ".tmp")
        temp.write_text("\n".join(results) + "\n")
        temp.replace(stats_path)
        k += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300_000, help="bytes per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats", help="file to keep `bytes first last` in")
    parser.add_argument("--long-line", type=int, default=0, help="bytes per line (no newline)")
    parser.add_argument("--trigger", help="directory watched for go-K files (--long-line)")
    args = parser.parse_args()
    try:
        if args.long_line:
            if not args.trigger or not args.stats:
                parser.error("--long-line needs --trigger and --stats")
            long_lines(args.long_line, Path(args.trigger), Path(args.stats))
        else:
            stats = Stats(args.stats)
            try:
                stream(args.rate, args.seed, stats)
            finally:
                stats.save(time.monotonic())
    except (KeyboardInterrupt, BrokenPipeError, OSError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
