"""How fast `Emulator` eats agent output next to tmux, and what its scrollback costs (on demand).

    .venv/bin/python benchmarks/bench_emulator.py [--mb 5] [--chunk 4096] [--no-tmux] [--pyte]
        [--no-agents]

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

(c) Skimming. A 1 MB coloured test log (pass/fail lines, percentages, erased
assertion lines) and a 10 MiB line with no newline, through `Emulator` with
the skimmer (session/skim.py) and without it (plain pyte, as before), in
feeds of 4 KiB (a PTY read), 64 KiB and 1 MiB; both must end on the same
screen and scrollback.

(d) End to end through an agent (real PTY, `SessionHost` and its emulation
pump): a 10 MiB line and then a prompt, hidden and shown: when the last byte
was read, when the pump had the prompt on screen, when the agent was
published idle (the tracker holds idle back ~1.1 s after output stops: it
waits out its activity window and idle debounce), and how much output a
hidden agent's ring lost (it gets a quarter of the pump). Then a prompt
printed after a 0.5 MB burst by a hidden agent: seconds from its last byte
to `awaiting_approval` (the target is 0.3 s). Last, the CPU this process
spends while four agents print a coloured test log at ~300 kB/s each, hidden
and shown (the daemon's share of issue 10's 25% target, without clients).

The research figures this follows are in /work/shared/research/perf-baseline.md
§1 and §6. The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.session.adapters import adapter_for
from tundra_tui.session.agent import AgentConfig
from tundra_tui.session.emulator import Emulator
from tundra_tui.session.host import SessionHost
from tundra_tui.store import open_store

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


def test_log(size: int, seed: int = 3) -> bytes:
    """About `size` bytes of a coloured test run, the same for the same seed."""
    rng = random.Random(seed)
    out: list[str] = []
    total = n = 0
    while total < size:
        status = rng.choice(("\x1b[32mPASSED", "\x1b[31mFAILED", "\x1b[33mSKIPPED"))
        test = f"tests/test_m{rng.randrange(50)}.py::test_{n}"
        line = f"{test} {status}\x1b[0m \x1b[1m[{n % 100:3d}%]\x1b[0m"
        if rng.random() < 0.1:
            line = f"\x1b[1;31mE   assert {rng.random()} == {rng.random()}\x1b[0m\x1b[K"
        out.append(line + "\r\n")
        total += len(line) + 2
        n += 1
    return "".join(out).encode()


def _fed(data: bytes, chunk: int, skim: bool) -> tuple[float, Emulator]:
    emulator = Emulator(COLUMNS, ROWS, scrollback=SCROLLBACK, skim=skim)
    start = time.perf_counter()
    for offset in range(0, len(data), chunk):
        emulator.feed(data[offset : offset + chunk])
        emulator.take_dirty()
    return time.perf_counter() - start, emulator


def _same(one: Emulator, other: Emulator) -> bool:
    rows = range(one.rows)
    return (
        [one.line_cells(y) for y in rows] == [other.line_cells(y) for y in rows]
        and one.cursor == other.cursor
        and one.scrollback_lines(0, SCROLLBACK) == other.scrollback_lines(0, SCROLLBACK)
    )


def skimming() -> None:
    cases = (
        ("1 MB coloured test log", test_log(1_000_000)),
        ("10 MiB line", b"x" * 10 * 2**20),
    )
    print(f"(c) skimming vs plain pyte, {COLUMNS}x{ROWS}, {SCROLLBACK} lines of scrollback")
    for name, data in cases:
        megabytes = len(data) / 1_000_000
        for chunk in (4096, 65536, 1 << 20):
            plain_s, plain = _fed(data, chunk, skim=False)
            skim_s, skimmed = _fed(data, chunk, skim=True)
            same = "same screen" if _same(skimmed, plain) else "SCREENS DIFFER"
            print(
                f"  {name}, {chunk // 1024:>4} KiB feeds: plain {megabytes / plain_s:7.2f} MB/s,"
                f" skimmed {megabytes / skim_s:7.2f} MB/s ({plain_s / skim_s:5.1f}x), {same}"
            )


_LONG_LINE = "import sys, time; sys.stdout.write('x' * 10485760 + '\\r\\nREADY> '); " + (
    "sys.stdout.flush(); time.sleep(60)"
)
_BURST_PROMPT = (
    "import sys, time; w = sys.stdout.write\n"
    "for n in range(7000): w('tests/test_m.py::test_%d \\x1b[32mPASSED\\x1b[0m\\r\\n' % n)\n"
    "sys.stdout.flush(); time.sleep(0.01); w('Allow command? rm -rf build [y/n] ')\n"
    "sys.stdout.flush(); time.sleep(60)"
)


async def _through_agent(script: str, *, shown: bool, wanted: AgentState) -> dict[str, float]:
    """Run `script` as an agent; seconds from its first byte to the milestones, and loss."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        store = await open_store(workdir / "town.db")
        host = SessionHost(store)
        patterns = {"idle_pattern": r"READY>\Z", "approval_pattern": r"Allow command\? .*\[y/n\]\Z"}
        adapter = adapter_for(Runtime.CUSTOM, patterns)
        launch = adapter.launch(
            command=shlex.join([sys.executable, "-c", script]),
            args=[],
            env={},
            cwd=workdir,
            base_env=os.environ,
        )
        try:
            await host.start(AgentConfig("bench", adapter, launch, columns=COLUMNS, rows=ROWS))
            host.set_shown("bench", shown)
            session = host.session("bench")
            marks: dict[str, float] = {}
            while "state" not in marks:
                now = time.perf_counter()
                if "first" not in marks and session.arrived:
                    marks["first"] = now
                tail = session.ring.tail(8)
                if "last" not in marks and (tail.endswith(b"READY> ") or tail.endswith(b"[y/n] ")):
                    marks["last"] = now
                if "screen" not in marks and "last" in marks and not session.pending:
                    marks["screen"] = now
                if session.state is wanted:
                    marks["state"] = now
                await asyncio.sleep(0.002)
            first = marks.pop("first")
            result = {name: when - first for name, when in marks.items()}
            result["lost"] = session.lost_bytes
            return result
        finally:
            await host.close()
            await store.close()


_PACED_LOG = (
    "import random, sys, time\n"
    "rng = random.Random(int(sys.argv[1])); out = sys.stdout.buffer; n = 0\n"
    "while True:\n"
    "    start = time.monotonic()\n"
    "    for _ in range(40):\n"
    "        n += 1; status = rng.choice((b'\\x1b[32mPASSED', b'\\x1b[31mFAILED'))\n"
    "        out.write(b'tests/test_m.py::test_%d ' % n + status + b'\\x1b[0m [ 42%]\\r\\n')\n"
    "    out.flush(); time.sleep(max(0.0, 0.01 - (time.monotonic() - start)))\n"
)
"""About 300 kB/s of a coloured test log: 40 lines every 10 ms."""


async def _streaming_cpu(count: int, *, shown: bool, seconds: float) -> tuple[float, float]:
    """This process's CPU (fraction of a core) while `count` agents stream the paced log,
    and the MB/s they printed."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        store = await open_store(workdir / "town.db")
        host = SessionHost(store, max_ptys=count)
        adapter = adapter_for(Runtime.CUSTOM, {})
        try:
            for n in range(count):
                launch = adapter.launch(
                    command=shlex.join([sys.executable, "-c", _PACED_LOG, str(n)]),
                    args=[],
                    env={},
                    cwd=workdir,
                    base_env=os.environ,
                )
                config = AgentConfig(f"log{n}", adapter, launch, columns=COLUMNS, rows=ROWS)
                await host.start(config)
                host.set_shown(config.name, shown)
            await asyncio.sleep(1.0)  # past start-up
            arrived = sum(session.arrived for session in host.sessions())
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            printed = sum(session.arrived for session in host.sessions()) - arrived
            return cpu / wall, printed / wall / 1e6
        finally:
            await host.close()
            await store.close()


def agents() -> None:
    print("(d) end to end through an agent (real PTY, session host, pump)")
    for shown in (False, True):
        got = asyncio.run(_through_agent(_LONG_LINE, shown=shown, wanted=AgentState.IDLE))
        print(
            f"  10 MiB line, {'shown' if shown else 'hidden'}: last byte read {got['last']:.2f} s,"
            f" on screen {got['screen']:.2f} s, idle published {got['state']:.2f} s"
            f" after the first byte; lost {got['lost'] / 2**20:.1f} MiB"
        )
    for shown in (False, True):
        runs = [
            asyncio.run(
                _through_agent(_BURST_PROMPT, shown=shown, wanted=AgentState.AWAITING_APPROVAL)
            )
            for _ in range(5)
        ]
        found = sorted(run["state"] - run["last"] for run in runs)
        print(
            f"  prompt after a 0.5 MB burst, {'shown' if shown else 'hidden'}: awaiting approval"
            f" {statistics.median(found):.3f} s after the last byte"
            f" (median of 5, max {found[-1]:.3f} s)"
        )
    for shown in (False, True):
        share, rate = asyncio.run(_streaming_cpu(4, shown=shown, seconds=10.0))
        print(
            f"  4 agents {'shown' if shown else 'hidden'}, {rate:.2f} MB/s of coloured log in all:"
            f" host process {share * 100:.0f}% of a core (reading, emulating, detecting)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="stream size in MB")
    parser.add_argument("--chunk", type=int, default=4096, help="bytes per feed, like a PTY read")
    parser.add_argument("--no-tmux", action="store_true", help="skip the tmux comparison")
    parser.add_argument("--pyte", action="store_true", help="also time bare pyte")
    parser.add_argument("--no-agents", action="store_true", help="skip the end-to-end runs")
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
    skimming()
    if not args.no_agents:
        agents()


if __name__ == "__main__":
    main()
