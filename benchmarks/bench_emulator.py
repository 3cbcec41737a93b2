"""How fast `Emulator` eats agent output next to tmux, and what its scrollback costs (on demand).

    .venv/bin/python benchmarks/bench_emulator.py [--mb 20] [--chunk 4096] [--no-tmux] [--pyte]

(a) Throughput. A deterministic agent-like stream (coloured markdown, tool-call
blocks, 24-bit diff backgrounds, box drawing, wide characters, a spinner and
input box redrawn with CR, `CSI 2K` and `CSI 1A`, synchronized-output brackets)
goes through `Emulator` at 120x40 in PTY-sized chunks, and through a tmux pane
of the same size (private socket, no config, history-limit 5000) running `cat`
on the same file in the same run. tmux's time runs from `new-session` until a
sentinel printed after the stream shows in `capture-pane`, minus the same
measurement on an empty file. `--pyte` adds bare `pyte.ByteStream` + `Screen`.

(b) Memory. Emulators of 120x40 with 5,000 lines of scrollback are filled with
coloured agent lines (no spinner); the per-emulator cost is the tracemalloc
delta. The target is at most 4 MiB per agent.

The research figures this follows are in /work/shared/research/perf-baseline.md
§1 and §6. The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import random
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

from tundra_tui.session.emulator import Emulator

COLUMNS, ROWS = 120, 40
SCROLLBACK = 5000
MEMORY_TARGET_MIB = 4.0
SENTINEL = "BENCH-END-7f3a"
_RUNS = itertools.count()

_WORDS = (
    "the function returns a list of runs and the caller renders each row with cached",
    "strips so only dirty rows are repainted at the frame tick",
)
_WORD = tuple(" ".join(_WORDS).split(" "))
_WIDE = ("漢字", "テスト", "✅", "🚀", "┃", "→")


def _sgr(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return f"\x1b[{rng.choice((1, 3, 4, 2))}m"
    if kind < 0.75:
        return f"\x1b[38;5;{rng.randrange(256)}m"
    return f"\x1b[38;2;{rng.randrange(256)};{rng.randrange(256)};{rng.randrange(256)}m"


def _prose(rng: random.Random, width: int) -> str:
    out: list[str] = []
    used = 0
    while used < width - 12:
        word = rng.choice(_WORD) if rng.random() > 0.05 else rng.choice(_WIDE)
        if rng.random() < 0.15:
            out.append(f"{_sgr(rng)}{word}\x1b[0m ")
        else:
            out.append(word + " ")
        used += len(word) + 1
    return "".join(out)


def _block(rng: random.Random) -> str:
    """One burst of agent output: prose, a tool call with its output, or a diff."""
    kind = rng.random()
    lines: list[str] = []
    if kind < 0.5:
        lines = [_prose(rng, rng.randrange(40, COLUMNS)) for _ in range(rng.randrange(1, 6))]
    elif kind < 0.8:
        lines.append(
            f"\x1b[32m⏺\x1b[0m \x1b[1mBash\x1b[0m(pytest -q tests/test_{rng.randrange(99)}.py)"
        )
        for _ in range(rng.randrange(1, 5)):
            lines.append(f"  ⎿  \x1b[2m{_prose(rng, 80)}\x1b[0m")
    else:
        for n in range(rng.randrange(2, 8)):
            sign, bg = rng.choice((("+", "22;60;30"), ("-", "70;20;20"), (" ", "30;30;30")))
            lines.append(f"\x1b[48;2;{bg}m{n + 100:4d} {sign} {_prose(rng, 90)}\x1b[K\x1b[0m")
    return "\r\n".join(lines) + "\r\n"


def _redraw(rng: random.Random, frame: int) -> str:
    """The Ink-style dynamic region: spinner, a boxed input and a footer, erased and redrawn."""
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[frame % 10]
    box = "─" * (COLUMNS - 2)
    region = (
        f"\x1b[38;5;174m{spinner}\x1b[0m Thinking… ({frame // 10}s · esc to interrupt)\r\n"
        f"\x1b[2m╭{box}╮\x1b[0m\r\n"
        f"\x1b[2m│\x1b[0m > {' ' * (COLUMNS - 5)}\x1b[2m│\x1b[0m\r\n"
        f"\x1b[2m╰{box}╯\x1b[0m\r\n"
        f"  \x1b[2m? for shortcuts · {rng.randrange(1000, 99999)} tokens\x1b[0m"
    )
    erase = "\x1b[2K\x1b[1A" * 4 + "\x1b[2K\x1b[G"
    return f"\x1b[?2026h{erase}{region}\x1b[?2026l"


def agent_stream(size: int, seed: int = 7) -> bytes:
    """About `size` bytes of agent-like output, the same for the same seed."""
    rng = random.Random(seed)
    parts: list[str] = ["\x1b[?25l", _redraw(rng, 0)]
    total = 0
    frame = 1
    while total < size:
        piece = _redraw(rng, frame)
        if rng.random() < 0.3:
            erase = "\x1b[2K\x1b[1A" * 4 + "\x1b[2K\x1b[G"
            piece = erase + _block(rng) + _redraw(rng, frame)
        if rng.random() < 0.1:
            piece += f"\x1b[{rng.randrange(1, ROWS)};{rng.randrange(1, COLUMNS)}H\x1b[s\x1b[u"
        parts.append(piece)
        total += len(piece.encode())
        frame += 1
    return "".join(parts).encode()


def _agent_lines(count: int, seed: int = 11) -> bytes:
    rng = random.Random(seed)
    return "".join(_prose(rng, rng.randrange(60, COLUMNS)) + "\r\n" for _ in range(count)).encode()


def time_emulator(data: bytes, chunk: int) -> float:
    emulator = Emulator(COLUMNS, ROWS, scrollback=SCROLLBACK)
    start = time.perf_counter()
    for offset in range(0, len(data), chunk):
        emulator.feed(data[offset : offset + chunk])
        emulator.take_dirty()
    elapsed = time.perf_counter() - start
    if emulator.errors:
        print(f"  emulator errors: {emulator.errors} ({emulator.last_error})")
    return elapsed


def time_pyte(data: bytes, chunk: int) -> float:
    import pyte

    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    start = time.perf_counter()
    for offset in range(0, len(data), chunk):
        stream.feed(data[offset : offset + chunk])
        screen.dirty.clear()
    return time.perf_counter() - start


def _tmux_once(tmux: str, config: Path, path: Path) -> float:
    # A fresh private socket per run: a server still shutting down can refuse a new session.
    base = [tmux, "-L", f"bench-emulator-{os.getpid()}-{next(_RUNS)}", "-f", str(config)]
    command = f"cat {path}; printf '\\r\\n{SENTINEL}'; sleep 30"
    start = time.perf_counter()
    subprocess.run(
        [*base, "new-session", "-d", "-s", "bench", "-x", str(COLUMNS), "-y", str(ROWS), command],
        check=True,
    )
    try:
        while True:
            shown = subprocess.run(
                [*base, "capture-pane", "-p", "-t", "bench"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            if SENTINEL in shown:
                return time.perf_counter() - start
            time.sleep(0.002)
    finally:
        subprocess.run([*base, "kill-server"], check=False, capture_output=True)


def time_tmux(data: bytes) -> float | None:
    """Seconds a detached tmux pane takes to consume `data`, start-up cost subtracted."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        config, stream, empty = Path(folder, "tmux.conf"), Path(folder, "s"), Path(folder, "e")
        config.write_text(f"set -g history-limit {SCROLLBACK}\nset -g status off\n")
        stream.write_bytes(data)
        empty.write_bytes(b"")
        overhead = min(_tmux_once(tmux, config, empty) for _ in range(3))
        return max(_tmux_once(tmux, config, stream) - overhead, 1e-9)


def _filled(lines: bytes) -> Emulator:
    emulator = Emulator(COLUMNS, ROWS, scrollback=SCROLLBACK)
    for offset in range(0, len(lines), 65536):
        emulator.feed(lines[offset : offset + 65536])
    emulator.take_dirty()
    assert emulator.scrollback_size == SCROLLBACK
    return emulator


def memory_per_agent(count: int = 4) -> tuple[float, float]:
    """Median tracemalloc MiB per emulator with full scrollback, and one fill's seconds."""
    lines = _agent_lines(SCROLLBACK + ROWS + 100)
    start = time.perf_counter()
    _filled(lines)
    fill = time.perf_counter() - start  # Timed apart: tracemalloc slows allocation a lot.
    keep: list[Emulator] = []
    deltas: list[float] = []
    tracemalloc.start()
    for _ in range(count):
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        keep.append(_filled(lines))
        gc.collect()
        deltas.append((tracemalloc.get_traced_memory()[0] - before) / 2**20)
    tracemalloc.stop()
    deltas.sort()
    return deltas[len(deltas) // 2], fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="stream size in MB")
    parser.add_argument("--chunk", type=int, default=4096, help="bytes per feed, like a PTY read")
    parser.add_argument("--no-tmux", action="store_true", help="skip the tmux comparison")
    parser.add_argument("--pyte", action="store_true", help="also time bare pyte")
    args = parser.parse_args()

    data = agent_stream(int(args.mb * 1_000_000))
    megabytes = len(data) / 1_000_000
    print(f"(a) throughput, {megabytes:.1f} MB agent-like stream, {COLUMNS}x{ROWS}")
    emulator_s = time_emulator(data, args.chunk)
    rate = megabytes / emulator_s
    print(f"  {f'Emulator ({args.chunk} B feeds):':<30}{rate:8.2f} MB/s ({emulator_s:.1f} s)")
    if args.pyte:
        pyte_s = time_pyte(data, args.chunk)
        print(
            f"  {'bare pyte ByteStream+Screen:':<30}{megabytes / pyte_s:8.2f} MB/s ({pyte_s:.1f} s)"
        )
    tmux_s = None if args.no_tmux else time_tmux(data)
    if tmux_s is not None:
        print(f"  {'tmux pane:':<30}{megabytes / tmux_s:8.2f} MB/s ({tmux_s:.2f} s)")
        print(f"  {'tmux / Emulator:':<30}{emulator_s / tmux_s:8.1f}x")
    elif not args.no_tmux:
        print("  tmux not found: no comparison")

    per_agent, fill = memory_per_agent()
    verdict = "PASS" if per_agent <= MEMORY_TARGET_MIB else "FAIL"
    print(f"(b) memory, {COLUMNS}x{ROWS} with {SCROLLBACK} lines of coloured scrollback")
    print(f"  {per_agent:.2f} MiB per agent (target <= {MEMORY_TARGET_MIB} MiB): {verdict}")
    print(f"  fill time {fill:.2f} s per agent")


if __name__ == "__main__":
    main()
