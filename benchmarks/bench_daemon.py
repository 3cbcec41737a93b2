"""Daemon memory with N demo agents, and keystroke echo latency through the daemon vs tmux.

    .venv/bin/python benchmarks/bench_daemon.py [--agents 20] [--keys 200]

Targets: daemon RSS at most 60 MB + 4 MB per agent (idle, and again after one
task each); keystroke echo p99 at most 30 ms through the daemon.

The echo agent is `cat` in a PTY: the kernel's line discipline echoes each
key, so the measure is pure plumbing (client -> socket -> daemon -> PTY ->
emulator -> screen event -> client), not the agent. tmux is measured on the
same `cat` two ways: one `tmux send-keys` + `capture-pane` process per key
(pays a client spawn per step), and a persistent control-mode client
(`tmux -C`, `%output` notifications), which is the fair comparison with a
persistent daemon connection. Everything started here is torn down at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tundra_tui.daemon.client import DaemonClient
from tundra_tui.daemon.protocol import (
    Screen,
    ScreenEvent,
    ScreenText,
    SendKeys,
    SendText,
    StateEvent,
)
from tundra_tui.town import Town, find_town

AT = [sys.executable, "-m", "tundra_tui"]
RSS_BASE_MB = 60.0
RSS_PER_AGENT_MB = 4.0
TARGET_P99_MS = 30.0
ECHO = "echo"
ALPHABET = string.ascii_letters + string.digits
"""Only characters tmux passes literally everywhere (no `;`, quotes or spaces)."""
LINE_KEYS = 100
"""Keys typed on one line before Enter starts a fresh one (stays inside 120 columns)."""
KEY_GAP_S = 0.02
ECHO_TIMEOUT_S = 2.0
TMUX_SESSION = "bench"


# ---- helpers -----------------------------------------------------------------------------------


def at(town: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, as a person would; failures are raised with its stderr."""
    done = subprocess.run(
        [*AT, "--town", str(town), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"at {' '.join(argv)} failed: {done.stderr.strip()}")
    return done


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` (slowly: it usually spawns the CLI) until true or time out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.25)


def states(town: Path) -> dict[str, str]:
    """Agent name -> state, from `at agent list --json`."""
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return {str(row["name"]): str(row["state"]) for row in rows}


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def percentile(sorted_ms: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return sorted_ms[max(0, min(len(sorted_ms) - 1, round(fraction * len(sorted_ms)) - 1))]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def tmux_version() -> str:
    if shutil.which("tmux") is None:
        return "not installed"
    return subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()


# ---- town --------------------------------------------------------------------------------------


def make_town(agents: int) -> Path:
    """A town under /tmp with a short path (sun_path is ~104 bytes), N demo agents and `cat`."""
    root = Path(tempfile.mkdtemp(prefix="bd-", dir="/tmp"))
    at(root, "init", str(root))
    tables = [f'\n[agents.d{i}]\nrole = "crew"\nruntime = "demo"\n' for i in range(1, agents + 1)]
    tables.append(f'\n[agents.{ECHO}]\nrole = "crew"\nruntime = "custom"\ncommand = "cat"\n')
    tables.append('\n[runtimes.demo]\nargs = ["--speed", "0.5", "--approval-rate", "0"]\n')
    config = root / "tundra.toml"
    config.write_text(config.read_text() + "".join(tables))
    # One PTY slot more than the demo agents, so the echo agent is never queued behind them.
    (root / ".tundra" / "local.toml").write_text(f"[general]\nmax_ptys = {agents + 1}\n")
    return root


def daemon_pid(town: Path) -> int:
    return int(json.loads(at(town, "daemon", "status", "--json").stdout)["pid"])


# ---- (a) memory --------------------------------------------------------------------------------


async def run_tasks(town: Town, names: list[str], timeout: float) -> None:
    """Give each agent one task and wait until every one has worked and gone idle again."""
    watcher = await DaemonClient.connect(town)
    seen: dict[str, list[str]] = {name: [] for name in names}
    finished = asyncio.Event()

    async def watch() -> None:
        async for event in watcher.subscribe(names):
            if not isinstance(event, StateEvent):
                continue
            history = seen.get(event.agent)
            if history is not None:
                history.append(event.state)
            if all("working" in h and h[-1] == "idle" for h in seen.values()):
                finished.set()
                return

    async def give(name: str) -> None:
        client = await DaemonClient.connect(town)
        try:
            await client.call(SendText(name=name, text=f"refactor the parser module, take {name}"))
        finally:
            await client.close()

    watching = asyncio.ensure_future(watch())
    try:
        await asyncio.sleep(0.2)  # the snapshot (all idle) is read before any task is sent
        for history in seen.values():
            history.clear()
        await asyncio.gather(*(give(name) for name in names))
        await asyncio.wait_for(finished.wait(), timeout)
    finally:
        watching.cancel()
        with contextlib.suppress(BaseException):
            await watching
        await watcher.close()


def measure_memory(root: Path, agents: int) -> dict[str, float]:
    """RSS of the daemon with no agent, N idle agents, and N agents after one task each."""
    names = [f"d{i}" for i in range(1, agents + 1)]
    at(root, "daemon", "start")
    pid = daemon_pid(root)
    time.sleep(1.0)
    figures: dict[str, float] = {}
    figures["empty"], _ = rss_mb(pid)
    started = time.monotonic()
    for name in names:
        at(root, "agent", "start", name)
    wait_until(
        lambda: all(states(root).get(n) == "idle" for n in names),
        timeout=60 + 3 * agents,
        what="every demo agent to be idle",
    )
    figures["start_s"] = time.monotonic() - started
    time.sleep(1.0)
    figures["idle"], _ = rss_mb(pid)
    started = time.monotonic()
    asyncio.run(run_tasks(find_town(root), names, timeout=120 + 5 * agents))
    figures["task_s"] = time.monotonic() - started
    time.sleep(1.0)
    figures["tasked"], figures["peak"] = rss_mb(pid)
    return figures


# ---- (b) latency through the daemon ------------------------------------------------------------


class EchoScreen:
    """The client's copy of the echo agent's screen, kept from `screen` events."""

    def __init__(self) -> None:
        self.rows: dict[int, str] = {}
        self.cursor: tuple[int, int] = (0, 0)
        self.expect: tuple[int, int, str] | None = None
        self.arrived: asyncio.Future[float] | None = None

    def apply(self, event: ScreenEvent) -> None:
        now = time.perf_counter()
        for y, runs in event.rows.items():
            self.rows[y] = "".join(run[0] for run in runs)
        self.cursor = event.cursor
        if self.expect is None or self.arrived is None or self.arrived.done():
            return
        row, column, char = self.expect
        line = self.rows.get(row, "")
        if len(line) > column and line[column] == char:
            self.arrived.set_result(now)


async def daemon_latency(town: Town, keys: int) -> list[float]:
    """Milliseconds from writing `SendKeys` (no reply asked) to the screen event showing
    the echoed key."""
    stream = await DaemonClient.connect(town)
    requests = await DaemonClient.connect(town)
    screen = EchoScreen()
    loop = asyncio.get_running_loop()

    async def follow() -> None:
        async for event in stream.subscribe([ECHO], show=[ECHO]):
            if isinstance(event, ScreenEvent) and event.agent == ECHO:
                screen.apply(event)

    def send(data: str) -> None:
        requests.send(SendKeys(name=ECHO, data=data.encode()))

    async def fresh_line() -> tuple[int, int]:
        send("\r")  # cat prints the line back; the cursor lands on a blank row
        await asyncio.sleep(0.15)
        shown: ScreenText = await requests.call(Screen(name=ECHO))
        return shown.cursor

    following = asyncio.ensure_future(follow())
    latencies: list[float] = []
    try:
        await asyncio.sleep(0.3)
        x, y = await fresh_line()
        for i in range(keys):
            if x >= LINE_KEYS:
                x, y = await fresh_line()
            char = ALPHABET[i % len(ALPHABET)]
            screen.expect = (y, x, char)
            screen.arrived = loop.create_future()
            t0 = time.perf_counter()
            send(char)
            t1 = await asyncio.wait_for(screen.arrived, ECHO_TIMEOUT_S)
            latencies.append((t1 - t0) * 1000)
            x += 1
            await asyncio.sleep(max(0.0, KEY_GAP_S - (time.perf_counter() - t0)))
    finally:
        following.cancel()
        with contextlib.suppress(BaseException):
            await following
        await stream.close()
        await requests.close()
    return latencies


def measure_daemon_latency(root: Path, keys: int) -> list[float]:
    at(root, "agent", "start", ECHO)
    wait_until(lambda: states(root).get(ECHO) not in ("stopped", "queued"), 20, "the echo agent")
    return asyncio.run(daemon_latency(find_town(root), keys))


# ---- (b) latency through tmux ------------------------------------------------------------------


def tmux(sock: str, *argv: str) -> str:
    return subprocess.run(
        ["tmux", "-L", sock, *argv], capture_output=True, text=True, check=True
    ).stdout


def tmux_cursor(sock: str) -> tuple[int, int]:
    x, y = tmux(sock, "display", "-p", "-t", TMUX_SESSION, "#{cursor_x} #{cursor_y}").split()
    return int(x), int(y)


def tmux_fresh_line(sock: str) -> tuple[int, int]:
    tmux(sock, "send-keys", "-t", TMUX_SESSION, "Enter")
    time.sleep(0.15)
    return tmux_cursor(sock)


def tmux_process_latency(sock: str, keys: int) -> list[float]:
    """Milliseconds from spawning `tmux send-keys` to `capture-pane` showing the key."""
    latencies: list[float] = []
    x, y = tmux_fresh_line(sock)
    for i in range(keys):
        if x >= LINE_KEYS:
            x, y = tmux_fresh_line(sock)
        char = ALPHABET[i % len(ALPHABET)]
        t0 = time.perf_counter()
        tmux(sock, "send-keys", "-t", TMUX_SESSION, "-l", char)
        deadline = t0 + ECHO_TIMEOUT_S
        while True:
            lines = tmux(sock, "capture-pane", "-p", "-t", TMUX_SESSION).split("\n")
            if y < len(lines) and len(lines[y]) > x and lines[y][x] == char:
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"tmux never showed key {i}")
        latencies.append((time.perf_counter() - t0) * 1000)
        x += 1
        time.sleep(max(0.0, KEY_GAP_S - (time.perf_counter() - t0)))
    return latencies


async def tmux_control_latency(sock: str, pane: str, keys: int) -> list[float]:
    """Milliseconds from writing `send-keys` to a control client to its `%output` echo."""
    client = await asyncio.create_subprocess_exec(
        "tmux",
        "-L",
        sock,
        "-C",
        "attach",
        "-t",
        TMUX_SESSION,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert client.stdin is not None and client.stdout is not None
    stdin, stdout = client.stdin, client.stdout
    prefix = f"%output {pane} "

    async def command(line: str) -> None:
        stdin.write(line.encode() + b"\n")
        await stdin.drain()

    async def drain(quiet: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            while await asyncio.wait_for(stdout.readline(), quiet):
                pass

    latencies: list[float] = []
    try:
        await drain(0.3)
        typed = 0
        for i in range(keys):
            if typed >= LINE_KEYS:
                await command(f"send-keys -t {TMUX_SESSION} Enter")
                await drain(0.15)
                typed = 0
            char = ALPHABET[i % len(ALPHABET)]
            t0 = time.perf_counter()
            await command(f"send-keys -t {TMUX_SESSION} -l {char}")
            deadline = t0 + ECHO_TIMEOUT_S
            while True:
                line = await asyncio.wait_for(
                    stdout.readline(), max(0.01, deadline - time.perf_counter())
                )
                if not line:
                    raise RuntimeError("the tmux control client exited")
                text = line.decode(errors="replace").rstrip("\n")
                if text.startswith(prefix) and char in text[len(prefix) :]:
                    break
            latencies.append((time.perf_counter() - t0) * 1000)
            typed += 1
            await asyncio.sleep(max(0.0, KEY_GAP_S - (time.perf_counter() - t0)))
    finally:
        with contextlib.suppress(Exception):
            stdin.write(b"detach-client\n")
            await stdin.drain()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.wait(), 2)
        if client.returncode is None:
            client.kill()
            await client.wait()
    return latencies


def measure_tmux(sock: str, keys: int) -> tuple[list[float], list[float]]:
    """Both tmux measures on one `cat` in a private server, the same size as a daemon PTY."""
    tmux(
        sock,
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        TMUX_SESSION,
        "-x",
        "120",
        "-y",
        "40",
        "cat",
    )
    time.sleep(0.3)
    spawned = tmux_process_latency(sock, keys)
    pane = tmux(sock, "display", "-p", "-t", TMUX_SESSION, "#{pane_id}").strip()
    control = asyncio.run(tmux_control_latency(sock, pane, keys))
    return spawned, control


# ---- report ------------------------------------------------------------------------------------


def describe(label: str, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered), percentile(ordered, 0.99)
    print(
        f"  {label:<34} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   max {ordered[-1]:6.2f} ms"
        f"   (n={len(ordered)})"
    )
    return p50, p99


def report_memory(figures: dict[str, float], agents: int) -> None:
    target = RSS_BASE_MB + RSS_PER_AGENT_MB * agents
    print(
        f"memory (daemon VmRSS; target <= {RSS_BASE_MB:g} + {RSS_PER_AGENT_MB:g} x {agents} "
        f"= {target:g} MB)"
    )
    idle_label = f"{agents} demo agents, all idle"
    print(f"  {'no agent running':<34} {figures['empty']:6.1f} MB   (reference)")
    print(
        f"  {idle_label:<34} {figures['idle']:6.1f} MB   {verdict(figures['idle'] <= target)}"
        f"   (started and idle in {figures['start_s']:.1f} s)"
    )
    print(
        f"  {'after one task each':<34} {figures['tasked']:6.1f} MB   "
        f"{verdict(figures['tasked'] <= target)}   (tasks took {figures['task_s']:.1f} s; "
        f"peak VmHWM {figures['peak']:.1f} MB)"
    )
    per_agent = (figures["tasked"] - figures["empty"]) / max(1, agents)
    print(f"  {'per agent (after tasks - empty)':<34} {per_agent:6.2f} MB")


def report_latency(
    daemon: list[float], spawned: list[float], control: list[float], agents: int
) -> None:
    print(f"keystroke echo (cat in a PTY, 120x40, {KEY_GAP_S * 1000:g} ms between keys;")
    print(f"                the daemon also hosts the {agents} demo agents, idle)")
    _, daemon_p99 = describe("daemon (send_keys -> screen event)", daemon)
    print(f"    target p99 <= {TARGET_P99_MS:g} ms: {verdict(daemon_p99 <= TARGET_P99_MS)}")
    if control:
        _, control_p99 = describe("tmux control mode (%output)", control)
    if spawned:
        _, spawned_p99 = describe("tmux send-keys + capture-pane", spawned)
    if control:
        print(
            f"  daemon / tmux control mode p99: {daemon_p99 / control_p99:.2f}x  "
            "(the fair comparison: both are persistent clients)"
        )
    if spawned:
        print(
            f"  daemon / tmux per-key processes p99: {daemon_p99 / spawned_p99:.2f}x  "
            "(tmux pays two client spawns per key here)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20, help="demo agents (default 20)")
    parser.add_argument("--keys", type=int, default=200, help="keystrokes per path (default 200)")
    args = parser.parse_args()
    print(f"machine   {os.cpu_count()} cores, python {sys.version.split()[0]}, {tmux_version()}")
    root = make_town(args.agents)
    sock = f"bench-daemon-{os.getpid()}"
    print(f"town      {root}")
    try:
        try:
            report_memory(measure_memory(root, args.agents), args.agents)
        except Exception as error:  # a benchmark reports what it could not measure
            print(f"memory    could not measure: {error}")
        try:
            daemon = measure_daemon_latency(root, args.keys)
        except Exception as error:
            print(f"latency   could not measure through the daemon: {error!r}")
            daemon = []
        spawned: list[float] = []
        control: list[float] = []
        if shutil.which("tmux"):
            try:
                spawned, control = measure_tmux(sock, args.keys)
            except Exception as error:
                print(f"latency   could not measure through tmux: {error!r}")
        if daemon:
            report_latency(daemon, spawned, control, args.agents)
    finally:
        with contextlib.suppress(Exception):
            at(root, "daemon", "stop")
        if shutil.which("tmux"):
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
            # A killed tmux server leaves its socket file behind.
            tmpdir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
            (tmpdir / sock).unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
