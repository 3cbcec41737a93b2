"""How fast `at tui` opens and switches tabs, and how much memory it holds (run on demand).

    .venv/bin/python benchmarks/bench_tui.py [--runs 5] [--switches 100]

Targets (the issue's): first frame within 0.6 s on a town of 20 agents and 10k beads;
key-to-screen p99 within 50 ms; `at tui` within 90 MB RSS with 20 live agents.

The town lives under /tmp (a socket path holds ~104 bytes) with a private HOME, so no
user configuration is read. Its 10k beads, their dependencies and events are
bulk-loaded with bench_store's `generate`/`load`; its 20 demo agents take up a task of
their own after 2 idle seconds, so once started the daemon streams 20 busy screens.

The real `at tui` runs in a private tmux server at 120x36. The pane's shell waits on
`read` and then execs `at tui`, so tmux's own start-up is not counted: "launch" is the
Enter that lets it go. `capture-pane` is polled every ~5 ms; each poll spawns a tmux
client, whose cost is printed so the reader can subtract it. Cold launches find no
daemon (the TUI starts it); warm ones find it up with 20 agents working. The in-process
figures run `TundraApp` headless under `run_test` on the same store with a scripted
link, to tell the app's own work from Python start-up, the terminal and the daemon.

In one live session with the 20 agents working, the script settles 10 s on the dashboard
(CPU and RSS of `at tui` and the daemon), alternates tabs 3 and 1 (`--switches` times, or
until 50 s have gone on a slow machine), then visits every tab and cycles the Agents tiles
through single, split and grid, reading RSS from /proc after each step.

Everything started here (tmux servers, the daemon and its agents, the temp dir) is torn
down at the end, whatever happens. The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_store import AGENTS, generate, load

from tundra_tui.config import load_config, remove_agent
from tundra_tui.daemon.protocol import Event
from tundra_tui.daemon.usage import usage_dir
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.store import RosterEntry, open_store
from tundra_tui.town import Town

AT = [sys.executable, "-m", "tundra_tui"]
TESTS = Path(__file__).resolve().parent.parent / "tests"
BEADS = 10_000
DEPS = 12_000
WIDTH, HEIGHT = 120, 36
FIRST_FRAME_S = 0.6
KEY_P99_MS = 50.0
RSS_MB = 90.0
POLL_S = 0.005
SETTLE_S = 10.0
SWITCH_BUDGET_S = 50.0
SESSION = "t"

FIRST_FRAME = (" auto-tundra ", "Recent activity")
"""The title bar and the dashboard's panels: the first frame the operator sees."""
POPULATED = f"{BEADS} "
"""The Beads card's total, shown once the dashboard's first read of the store is in."""
TAB_MARKS = {
    "1": "Recent activity",
    "2": f"Agents {len(AGENTS)}",
    "3": "Backlog",
    "4": "Timeline",
    "5": "convoy-",
    "6": "Next 30 days",
    "7": "Insights",
    "8": "ui.theme",
    "9": "MCP servers configured",
}
"""Text only that tab shows on this town, so a switch is seen once it is drawn."""


# ---- processes ---------------------------------------------------------------------------------


def at(town: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; failures are raised with its stderr."""
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
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def pids_of(town: Path, *words: str) -> list[int]:
    """Processes whose command line names this town (and every one of `words`)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            tokens = " ".join(argv).split()
            names_town = any(t == str(town) or t.startswith(f"{town}/") for t in tokens)
            if names_town and all(w in argv for w in words):
                found.append(int(proc.name))
    return found


def daemon_pid(town: Path) -> int | None:
    pids = pids_of(town, "daemon", "run")
    return pids[0] if pids else None


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---- the town ----------------------------------------------------------------------------------


def build_town(root: Path) -> None:
    """20 busy demo agents (and none of `at init`'s sample team), 10k beads, a private HOME."""
    home = root / "home"
    home.mkdir()
    # Every `at` below, the daemon it starts and the in-process app read no user configuration.
    os.environ["HOME"] = str(home)
    at(root, "init", str(root))
    town = Town(root)
    for name in load_config(town).agents():
        remove_agent(town, name)
    usage = usage_dir(town)
    usage.mkdir(mode=0o700, parents=True, exist_ok=True)
    tables = []
    for seed, name in enumerate(AGENTS, 1):
        args = [
            "--name", name, "--seed", str(seed), "--approval-rate", "0",
            "--keep-working", "2", "--usage-log", str(usage / f"{name}.jsonl"),
            "--auto-task", "run the test suite and fix what fails",
        ]  # fmt: skip
        tables.append(
            f'\n[agents.{name}]\nrole = "crew"\nruntime = "demo"\nworktree = false\n'
            f"args = {json.dumps(args)}\n"
        )
    with town.config_path.open("a") as config:
        config.write("".join(tables))
    asyncio.run(fill_store(town))


async def fill_store(town: Town) -> None:
    store = await open_store(town.db_path)
    try:
        roster = [RosterEntry(name, Role.CREW, Runtime.DEMO) for name in AGENTS]
        await store.agents.sync_roster(roster, actor="bench")
        await load(store, generate(BEADS, DEPS, seed=7))
    finally:
        await store.close()


def start_agents(town: Path) -> float:
    """Start the daemon, then every agent at once; seconds until all of them run."""
    started = time.monotonic()
    at(town, "daemon", "start")
    starts = [
        subprocess.Popen(
            [*AT, "--town", str(town), "agent", "start", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in AGENTS
    ]
    for start in starts:
        _, err = start.communicate(timeout=120)
        if start.returncode != 0:
            raise RuntimeError(f"at agent start failed: {err.strip()}")

    def running() -> bool:
        rows = json.loads(at(town, "agent", "list", "--json").stdout)
        return all(row["state"] in ("working", "idle") for row in rows)

    wait_until(running, timeout=60, what="every demo agent to run")
    return time.monotonic() - started


def stop_daemon(town: Path) -> None:
    """`at daemon stop`; whatever of ours is still running after that is killed by pid."""
    with contextlib.suppress(Exception):
        at(town, "daemon", "stop")
    with contextlib.suppress(RuntimeError):
        wait_until(lambda: daemon_pid(town) is None, timeout=10, what="the daemon to stop")
    for pid in pids_of(town):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# ---- tmux --------------------------------------------------------------------------------------


class Tmux:
    """A private tmux server (no user config) whose one pane runs `at tui` once let go."""

    def __init__(self, town: Path, tag: str) -> None:
        self.socket = f"bench-tui-{os.getpid()}-{tag}"
        tui = shlex.join(
            [
                "env", "-u", "COLUMNS", "-u", "LINES", "TERM=xterm-256color",
                *AT, "--town", str(town), "tui",
            ]
        )  # fmt: skip
        # The size is the default before the pane's program starts, so it never sees 80x24.
        self.run(
            "start-server", ";", "set-option", "-g", "default-size", f"{WIDTH}x{HEIGHT}", ";",
            "new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT),
            f"read _ && exec {tui}",
        )  # fmt: skip
        self.pid = int(self.run("display", "-p", "-t", SESSION, "#{pane_pid}").strip())
        """The pane's shell, which becomes `at tui` (exec keeps the pid)."""

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", SESSION)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", SESSION, *keys)

    def until(self, check: Callable[[str], bool], timeout: float, what: str) -> float:
        """Poll the screen every ~POLL_S; the perf_counter time of the capture that passed."""
        deadline = time.perf_counter() + timeout
        while True:
            polled = time.perf_counter()
            screen = self.screen()
            if check(screen):
                return time.perf_counter()
            if polled > deadline:
                raise RuntimeError(f"timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(max(0.0, POLL_S - (time.perf_counter() - polled)))

    def quit(self) -> None:
        """`q`, then wait for `at tui` to exit (the pane, and so the server, go with it)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.keys("q")
        deadline = time.monotonic() + 10
        while pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)
        # A killed tmux server leaves its socket file behind.
        tmpdir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (tmpdir / self.socket).unlink(missing_ok=True)


def showing(*texts: str) -> Callable[[str], bool]:
    return lambda screen: all(text in screen for text in texts)


@dataclass(frozen=True, slots=True)
class Launch:
    """Seconds from the Enter that starts `at tui` to each milestone on screen."""

    first_frame: float
    populated: float
    daemon_up: float


def launch(tmux: Tmux) -> Launch:
    """Let `at tui` go and time its first frames (it keeps running)."""
    started = time.perf_counter()
    tmux.keys("Enter")
    first = tmux.until(showing(*FIRST_FRAME), 30, "the first frame")
    populated = tmux.until(showing(POPULATED), 30, "the dashboard's data")
    up = tmux.until(showing("daemon up"), 30, "the daemon link")
    return Launch(first - started, populated - started, up - started)


def launches(town: Path, runs: int, *, cold: bool) -> list[Launch]:
    results = []
    for run in range(runs):
        if cold:
            stop_daemon(town)
        tmux = Tmux(town, f"{'cold' if cold else 'warm'}{run}")
        try:
            results.append(launch(tmux))
            tmux.quit()
        finally:
            tmux.close()
    return results


# ---- one live session: keys and memory ---------------------------------------------------------


def capture_cost(tmux: Tmux, n: int = 50) -> list[float]:
    """Milliseconds per `capture-pane` (one tmux client spawn), sorted."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        tmux.screen()
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def switch_latencies(tmux: Tmux, switches: int) -> list[float]:
    """Milliseconds from `send-keys` to the other tab on screen, alternating 3 and 1; sorted.

    Stops early after SWITCH_BUDGET_S, so a slow machine still finishes in a few minutes.
    """
    marks = {"1": ("Recent activity", "Backlog"), "3": ("Backlog", "Recent activity")}
    samples = []
    budget = time.monotonic() + SWITCH_BUDGET_S
    for i in range(switches):
        if time.monotonic() > budget:
            break
        key = "3" if i % 2 == 0 else "1"
        shown, gone = marks[key]
        started = time.perf_counter()
        tmux.keys(key)
        seen = tmux.until(
            lambda screen, shown=shown, gone=gone: shown in screen and gone not in screen,
            15,
            f"tab {key}",
        )
        samples.append((seen - started) * 1000)
        time.sleep(0.05)
    return sorted(samples)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the tour: the key, ms until its tab showed, and RSS (MB) after a pause."""

    key: str
    ms: float
    rss: float


def tour(tmux: Tmux, pid: int) -> list[Step]:
    """Every tab (the dashboard, where the switches left off, last), then the Agents tiles
    through all three layouts: the tab opens on the grid, `s` cycles to single, split, grid.
    """
    steps = []
    for key in "234567891":
        started = time.perf_counter()
        tmux.keys(key)
        shown = tmux.until(showing(TAB_MARKS[key]), 15, f"tab {key} ({TAB_MARKS[key]})")
        time.sleep(0.5)
        steps.append(Step(key, (shown - started) * 1000, rss_mb(pid)[0]))
    tmux.keys("2")
    tmux.until(showing(TAB_MARKS["2"]), 15, "the Agents tab")
    for _ in range(3):
        tmux.keys("s")
        time.sleep(1.0)
        steps.append(Step("s", float("nan"), rss_mb(pid)[0]))
    return steps


def echo_latencies(tmux: Tmux, count: int = 30) -> list[float]:
    """Milliseconds from a key typed into a grabbed agent terminal (Agents tab, `f`) until the
    agent's echo of it is on screen: keys through the daemon to the PTY, the agent's output
    back through the emulator, the subscription and the tile. Sorted; empty if no agent came
    to its prompt."""
    tmux.keys("2")
    tmux.until(showing(TAB_MARKS["2"]), 15, "the Agents tab")
    tmux.keys("f")
    try:
        tmux.until(lambda screen: "to release" in screen, 10, "a grabbed terminal")
        # The grabbed tile has the heavy border; wait for its agent to be at its prompt.
        tmux.until(lambda screen: "┃demo❯" in screen, 60, "the grabbed agent at its prompt")
    except RuntimeError:
        tmux.keys("C-]")
        return []
    samples = []
    for typed in range(1, count + 1):
        started = time.perf_counter()
        tmux.keys("x")
        try:
            seen = tmux.until(
                lambda screen, n=typed: "┃demo❯ " + "x" * n in screen, 5, f"echo {typed}"
            )
        except RuntimeError:
            break  # the agent took up work of its own: keep what was measured
        samples.append((seen - started) * 1000)
        time.sleep(0.03)
    tmux.keys("C-u", "C-]")
    return sorted(samples)


@dataclass
class Live:
    capture_ms: list[float]
    keys_ms: list[float]
    echo_ms: list[float]
    tour: list[Step]
    rss_settled: float
    rss_switched: float
    rss_toured: float
    rss_peak: float
    daemon_rss: float
    tui_cpu: float
    daemon_cpu: float


def live_session(town: Path, switches: int) -> Live:
    tmux = Tmux(town, "live")
    try:
        launch(tmux)
        tmux.until(showing(f"[{len(AGENTS)} agents]"), 30, "every agent in the title bar")
        tui = tmux.pid
        daemon = daemon_pid(town)
        if daemon is None:
            raise RuntimeError("no daemon is running")
        cpu = cpu_seconds(tui), cpu_seconds(daemon)
        time.sleep(SETTLE_S)
        tui_cpu = (cpu_seconds(tui) - cpu[0]) / SETTLE_S
        daemon_cpu = (cpu_seconds(daemon) - cpu[1]) / SETTLE_S
        settled, _ = rss_mb(tui)
        capture = capture_cost(tmux)
        keys = switch_latencies(tmux, switches)
        switched, _ = rss_mb(tui)
        steps = tour(tmux, tui)
        echo = echo_latencies(tmux)
        toured, peak = rss_mb(tui)
        daemon_rss, _ = rss_mb(daemon)
        tmux.quit()
    finally:
        tmux.close()
    return Live(
        capture,
        keys,
        echo,
        steps,
        settled,
        switched,
        toured,
        peak,
        daemon_rss,
        tui_cpu * 100,
        daemon_cpu * 100,
    )


# ---- in-process --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InProcess:
    """Seconds: open the store; then, from there, run_test ready and the first reload done."""

    store_open: float
    ready: float
    reloaded: float
    switches_ms: tuple[float, ...] = ()


async def in_process(town: Town, switches: int) -> InProcess:
    """`TundraApp` headless at 120x36 on the town's store, 20 working agents scripted.

    Then `switches` presses alternating 3 and 1, each timed until its pane's reload is done
    and the app is idle (the compositor's frame included, the terminal not).
    """
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from ui_harness import FakeLink, demo_screens, screen_event, state_event

    from tundra_tui.ui.app import TundraApp
    from tundra_tui.ui.panes.dashboard import DashboardPane
    from tundra_tui.ui.services import Services
    from tundra_tui.ui.tabs import Tab, default_tabs

    class TimedDashboard(DashboardPane):
        reloaded_at = 0.0

        async def reload(self) -> None:
            await super().reload()
            self.reloaded_at = self.reloaded_at or time.perf_counter()

    working = demo_screens("demo-sonnet")["working"]
    events: list[Event] = []
    for name in AGENTS:
        events.append(state_event(name, "working"))
        events.append(screen_event(name, working))
    tabs = (
        Tab("dashboard", "Dashboard", lambda s, i: TimedDashboard(s, id=i)),
        *default_tabs()[1:],
    )
    started = time.perf_counter()
    store = await open_store(town.db_path)
    opened = time.perf_counter()
    try:
        services = Services(town=town, store=store, link=FakeLink(events))
        app = TundraApp(services, tabs=tabs, watch_files=False)
        async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
            ready = time.perf_counter()
            dashboard = app.query_one(TimedDashboard)
            while not dashboard.reloaded_at:
                await pilot.pause(0.001)
            samples = []
            for i in range(switches):
                pressed = time.perf_counter()
                await pilot.press("3" if i % 2 == 0 else "1")
                while app._reloading:
                    await pilot.pause(0.001)
                await pilot.pause()
                samples.append((time.perf_counter() - pressed) * 1000)
            return InProcess(
                opened - started,
                ready - opened,
                dashboard.reloaded_at - opened,
                tuple(sorted(samples)),
            )
    finally:
        await store.close()


def import_seconds() -> float:
    """Seconds a fresh interpreter takes to import the app (part of every first frame)."""
    code = "import time; t = time.perf_counter(); import tundra_tui.ui.app; "
    code += "print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


# ---- report ------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def met(good: bool) -> str:
    return "yes" if good else "NO"


def median_max_ms(values: Sequence[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.0f} ms   max {max(values) * 1000:6.0f} ms"


def spread_ms(samples: Sequence[float]) -> str:
    """p50/p95/p99/max of sorted milliseconds."""
    return (
        f"p50 {percentile(samples, 0.50):6.1f}  p95 {percentile(samples, 0.95):6.1f}  "
        f"p99 {percentile(samples, 0.99):6.1f}  max {samples[-1]:6.1f} ms  (n={len(samples)})"
    )


def report_launches(label: str, results: Sequence[Launch]) -> None:
    print(f"  {label} (n={len(results)})")
    for name in ("first_frame", "populated", "daemon_up"):
        values = [getattr(r, name) for r in results]
        print(f"    {name.replace('_', ' '):<14} {median_max_ms(values)}")


def summarize(
    cold: Sequence[Launch], warm: Sequence[Launch], runs: Sequence[InProcess], live: Live
) -> list[tuple[str, str, str, str]]:
    """Rows of (measure, result, target, met) for the closing table."""
    summary: list[tuple[str, str, str, str]] = []
    for label, results in (("cold", cold), ("warm", warm)):
        values = [r.first_frame for r in results]
        summary.append(
            (
                f"first frame, {label} (median/max)",
                f"{statistics.median(values):.2f}/{max(values):.2f} s",
                f"<= {FIRST_FRAME_S} s",
                met(max(values) <= FIRST_FRAME_S),
            )
        )
    ready = [r.reloaded for r in runs]
    summary.append(
        (
            "in-process to data (median/max)",
            f"{statistics.median(ready):.2f}/{max(ready):.2f} s",
            f"<= {FIRST_FRAME_S} s",
            met(max(ready) <= FIRST_FRAME_S),
        )
    )
    p99 = percentile(live.keys_ms, 0.99)
    summary.append(
        ("tab switch, key to screen p99", f"{p99:.0f} ms", f"<= {KEY_P99_MS:g} ms",
         met(p99 <= KEY_P99_MS))
    )  # fmt: skip
    if live.echo_ms:
        echo = percentile(live.echo_ms, 0.99)
        summary.append(
            ("Agents tab, key to echo p99", f"{echo:.0f} ms", f"<= {KEY_P99_MS:g} ms",
             met(echo <= KEY_P99_MS))
        )  # fmt: skip
    for label, value in (("settled", live.rss_settled), ("after tour", live.rss_toured)):
        summary.append(
            (
                f"at tui RSS, {label}",
                f"{value:.1f} MB",
                f"<= {RSS_MB:g} MB",
                met(value <= RSS_MB),
            )
        )
    summary.append((f"daemon RSS, {len(AGENTS)} agents", f"{live.daemon_rss:.1f} MB", "-", "-"))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="launches per case (default 5)")
    parser.add_argument("--switches", type=int, default=100, help="tab switches (default 100)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed: nothing to measure")
        return 0
    tmux_version = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()
    print(
        f"machine   {platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.1f}, python {platform.python_version()}, {tmux_version}"
    )
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("          PYTHONDONTWRITEBYTECODE is set: modules without a .pyc compile each start")
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    try:
        build_town(root)
        print(
            f"town      {root}: {len(AGENTS)} demo agents, {BEADS} beads, {DEPS} deps "
            f"(built in {time.monotonic() - began:.1f} s), terminal {WIDTH}x{HEIGHT}"
        )
        print(f"import    tundra_tui.ui.app, fresh interpreter: {import_seconds() * 1000:.0f} ms")

        print("\nreal `at tui` in tmux, from the Enter that launches it to the screen showing")
        cold = launches(root, args.runs, cold=True)
        report_launches("cold: no daemon (at tui starts it), no agent running", cold)
        stop_daemon(root)

        print("\nin-process: TundraApp under run_test (headless), same store, scripted link")
        runs = [asyncio.run(in_process(Town(root), 0)) for _ in range(args.runs - 1)]
        runs.append(asyncio.run(in_process(Town(root), 20)))
        for name in ("store_open", "ready", "reloaded"):
            values = [getattr(r, name) for r in runs]
            print(f"    {name.replace('_', ' '):<14} {median_max_ms(values)}")
        print("    (ready and reloaded count from the store being open)")
        print(f"    tab 3/1, key to reload done  {spread_ms(runs[-1].switches_ms)}")

        took = start_agents(root)
        print(f"\n{len(AGENTS)} demo agents started and running in {took:.1f} s")
        warm = launches(root, args.runs, cold=False)
        report_launches(f"warm: daemon up, {len(AGENTS)} agents working", warm)

        print(f"\none live session, {len(AGENTS)} agents working")
        live = live_session(root, args.switches)
        print(
            f"  after {SETTLE_S:g} s on the dashboard: at tui uses {live.tui_cpu:.0f}% of a core, "
            f"the daemon {live.daemon_cpu:.0f}%"
        )
        print(f"  capture-pane, one poll:       {spread_ms(live.capture_ms)}")
        print(f"  key to screen, 3/1 alternate: {spread_ms(live.keys_ms)}")
        if live.echo_ms:
            print(f"  key to echo, grabbed agent:   {spread_ms(live.echo_ms)}")
        else:
            print("  key to echo, grabbed agent:   no agent reached its prompt in time")
        print("  tour: key, ms until its tab showed, at tui RSS (MB) 0.5-1 s later")
        print("    " + "  ".join(f"{s.key}:{s.ms:.0f}/{s.rss:.0f}" for s in live.tour[:9]))
        print(
            "    Agents tiles after s (single, split, grid): "
            + "  ".join(f"{s.rss:.0f}" for s in live.tour[9:])
        )
        print(
            f"  at tui RSS: {live.rss_settled:.1f} MB settled on the dashboard, "
            f"{live.rss_switched:.1f} MB after the switches, {live.rss_toured:.1f} MB after "
            f"every tab and layout (VmHWM {live.rss_peak:.1f} MB)"
        )
        print(f"  daemon RSS: {live.daemon_rss:.1f} MB")

        summary = summarize(cold, warm, runs, live)
    finally:
        stop_daemon(root)
        shutil.rmtree(root, ignore_errors=True)
    print("\nsummary")
    print(f"  {'measure':<34} {'result':>14}  {'target':<10} met")
    for name, value, target, verdict in summary:
        print(f"  {name:<34} {value:>14}  {target:<10} {verdict}")
    print(f"\n(the benchmark took {time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
