"""What the issue-10 benchmarks share: towns of generator agents, /proc figures, tmux, PTYs.

Not a benchmark itself. Every helper drives stable interfaces (the `at` command
line, `at tui` and `at session attach` in a terminal, tmux), so the same script
measures the landed code and an older checkout run with `PYTHONPATH=/tmp/before`.
Where a benchmark needs the daemon's socket, `Socket` speaks the typed API
(`DaemonClient.call`) when the code under test has it, else the older `request`.

Everything a benchmark starts (towns, daemons, tmux servers, PTY children) has a
handle here whose `close()` ends it by pid or by its private socket, never by name.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyte

BYTECODE_OFF = os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None
"""Set where the benchmark was started. Programs started here run without it, as an
installed package would, so their start-up figures do not include compiling modules."""
PY = sys.executable
AT = [PY, "-m", "tundra_tui"]
BENCH_DIR = Path(__file__).resolve().parent
GENERATOR = BENCH_DIR / "gen_testlog.py"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Keys typed in echo tests: tmux passes each literally, no shell or tmux quoting needed."""
NEUTRAL_CWD = "/tmp"
"""Where programs we start run: `python -m` puts the working directory first on sys.path,
so a run from the checkout would import it even when PYTHONPATH names another."""
KILL_LINE = b"\x15"
"""Ctrl-U: the line discipline erases the typed line (ECHOKE), so echo rows never scroll."""


# ---- figures -----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.4999)))
    return sorted_values[rank - 1]


def spread(samples: Iterable[float], unit: str = "ms") -> str:
    """`p50 … p95 … p99 … max … (n=…)` of the samples."""
    ordered = sorted(samples)
    if not ordered:
        return "no samples"
    return (
        f"p50 {percentile(ordered, 0.5):7.1f}  p95 {percentile(ordered, 0.95):7.1f}  "
        f"p99 {percentile(ordered, 0.99):7.1f}  max {ordered[-1]:7.1f} {unit}  (n={len(ordered)})"
    )


def p(samples: Iterable[float], fraction: float) -> float:
    ordered = sorted(samples)
    return percentile(ordered, fraction) if ordered else float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def header(title: str) -> None:
    """The first lines of every report: what ran, on what, against which code."""
    import tundra_tui

    print(title)
    tmux = "tmux not installed"
    if shutil.which("tmux"):
        tmux = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.strip()
    print(
        f"machine   {platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}, python {platform.python_version()}, {tmux}"
    )
    source = Path(tundra_tui.__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(source), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(
        f"code      {source} at {commit[:70] or '?'}{' (+ uncommitted changes)' if dirty else ''}"
    )
    if BYTECODE_OFF:
        print(
            "          PYTHONDONTWRITEBYTECODE was set: unset for what runs here (cached bytecode)"
        )
    print("          (figures on a shared 2-core machine are noisy: compare ratios in one run)")
    warm_up()


def warm_up() -> None:
    """Import the CLI and the TUI once, so bytecode is cached before anything is timed."""
    subprocess.run(
        [PY, "-c", "import tundra_tui.cli, tundra_tui.ui.app"],
        capture_output=True,
        check=False,
        cwd=NEUTRAL_CWD,
    )


# ---- /proc -------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """VmRSS of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Percent of one core each process used between construction and `read()`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {label: pid for label, pid in pids.items() if pid}
        self.started = time.monotonic()
        self.before = {label: _cpu_or_nan(pid) for label, pid in self.pids.items()}

    def read(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        return {
            label: 100 * (_cpu_or_nan(pid) - self.before[label]) / wall
            for label, pid in self.pids.items()
        }


def _cpu_or_nan(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return float("nan")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids_naming(root: Path, *words: str) -> list[int]:
    """Our processes whose command line names `root` (and has every one of `words`)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if proc.stat().st_uid != os.getuid():
                continue
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            tokens = " ".join(argv).split()
            names = any(t == str(root) or t.startswith(f"{root}/") for t in tokens)
            if names and all(w in argv for w in words):
                found.append(int(proc.name))
    return found


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.1
) -> None:
    """Poll until `predicate()` holds; RuntimeError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# ---- generators --------------------------------------------------------------------------------


def generator(rate: float, seed: int, stats: Path | None = None) -> str:
    """The command line of a test-log agent printing `rate` bytes a second."""
    argv = [PY, str(GENERATOR), "--rate", f"{rate:g}", "--seed", str(seed)]
    if stats is not None:
        argv += ["--stats", str(stats)]
    return shlex.join(argv)


@dataclass(frozen=True, slots=True)
class Written:
    """What a generator reported: bytes written and the monotonic time of the last write."""

    bytes: int
    last: float


def written(stats: Path) -> Written:
    try:
        count, _, last = stats.read_text().split()
    except (OSError, ValueError):
        return Written(0, 0.0)
    return Written(int(count), float(last))


def delivered_kbs(before: Sequence[Written], after: Sequence[Written]) -> float:
    """Mean kB/s each generator got written between two readings, by its own clock."""
    rates = [
        (a.bytes - b.bytes) / (a.last - b.last) / 1000
        for b, a in zip(before, after, strict=True)
        if a.last > b.last > 0
    ]
    return statistics.fmean(rates) if rates else float("nan")


# ---- towns -------------------------------------------------------------------------------------


ROOT = "{root}"
"""Stands for the town's directory in agent commands given to BenchTown (it is made there)."""


STARTING = ("stopped", "queued", "starting")
"""States of an agent asked to start that is not running yet."""


class BenchTown:
    """A throwaway town under /tmp whose agents are custom runtimes running given commands.

    `{root}` in a command is replaced by the town's directory, which has a `stats/`
    directory for the generators' reports. A private HOME keeps the user's configuration
    out. The daemon is `at`'s own, started by `at daemon start`; `close()` stops it and
    kills whatever of ours still names the town.
    """

    def __init__(self, agents: dict[str, str], prefix: str = "b10-") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.home = self.root / "home"
        self.home.mkdir()
        self.stats = self.root / "stats"
        self.stats.mkdir()
        self.env = {**os.environ, "HOME": str(self.home)}
        self.env.pop("TUNDRA_TOWN", None)
        self.at("init", str(self.root))
        tables = ['[general]\nname = "bench"\n']
        for name, command in agents.items():
            command = command.replace(ROOT, str(self.root))
            tables.append(
                f'\n[agents.{name}]\nrole = "crew"\nruntime = "custom"\n'
                f"command = {json.dumps(command)}\n"
            )
        config = self.root / "tundra.toml"
        config.write_text("".join(tables))
        config.chmod(0o644)
        # Every agent runs at once: none waits for a PTY slot.
        (self.root / ".tundra" / "local.toml").write_text(
            f"[general]\nmax_ptys = {len(agents) + 4}\n"
        )
        self.names = list(agents)

    def at(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the real CLI on this town; RuntimeError with its stderr if it fails."""
        done = subprocess.run(
            [*AT, "--town", str(self.root), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env,
            cwd=self.root,
        )
        if done.returncode != 0:
            raise RuntimeError(f"at {' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
        return done

    def argv(self, *argv: str) -> list[str]:
        return [*AT, "--town", str(self.root), *argv]

    def start_daemon(self) -> int:
        self.at("daemon", "start")
        pid = self.daemon_pid()
        if pid is None:
            raise RuntimeError("the daemon did not start")
        return pid

    def daemon_pid(self) -> int | None:
        pids = pids_naming(self.root, "daemon", "run")
        return pids[0] if pids else None

    def states(self) -> dict[str, str]:
        """Each running agent's state as the daemon has it (`at session list`)."""
        rows = json.loads(self.at("session", "list", "--json").stdout)
        return {str(row["name"]): str(row["state"]) for row in rows}

    def start_agents(self, names: Sequence[str], *, at_once: int = 8) -> float:
        """`at agent start` for each (a few at a time); seconds until none is stopped or queued."""
        began = time.monotonic()
        todo = list(names)
        while todo:
            batch, todo = todo[:at_once], todo[at_once:]
            starts = [
                subprocess.Popen(
                    self.argv("agent", "start", name),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=self.env,
                    cwd=self.root,
                )
                for name in batch
            ]
            for start in starts:
                _, err = start.communicate(timeout=120)
                if start.returncode != 0:
                    raise RuntimeError(f"at agent start failed: {err.strip()}")
        wanted = set(names)
        seen: dict[str, str] = {}

        def running() -> bool:
            seen.clear()
            seen.update((n, s) for n, s in self.states().items() if n in wanted)
            return wanted <= set(seen) and all(s not in STARTING for s in seen.values())

        try:
            wait_until(running, timeout=60 + len(names), what="every agent to run", every=0.3)
        except RuntimeError as error:
            late = {n: seen.get(n, "not in the daemon") for n in names}
            late = {n: s for n, s in late.items() if s in STARTING or n not in seen}
            raise RuntimeError(f"{error}; still {late}") from None
        return time.monotonic() - began

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.at("daemon", "stop", timeout=60)
        with contextlib.suppress(RuntimeError):
            wait_until(lambda: self.daemon_pid() is None, 10, "the daemon to stop")
        for pid in pids_naming(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


# ---- the daemon's socket -----------------------------------------------------------------------


class Socket:
    """One connection to a town's daemon, for the few figures the CLI cannot time finely.

    Speaks the typed protocol (`DaemonClient.call(Request)`) when the code under test has
    it, else the older `request(op, **args)`; replies come back as plain dicts either way.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.typed = hasattr(client, "call")

    @classmethod
    async def open(cls, root: Path) -> Socket:
        from tundra_tui.daemon.client import DaemonClient
        from tundra_tui.town import Town

        return cls(await DaemonClient.connect(Town(root)))

    async def ask(self, op: str, **args: Any) -> dict[str, Any]:
        if self.typed:
            import msgspec

            from tundra_tui.daemon.protocol import REQUESTS

            reply = await self.client.call(REQUESTS[op](**args))
            answer: dict[str, Any] = msgspec.to_builtins(reply)
            return answer
        if isinstance(args.get("data"), bytes):
            args["data"] = base64.b64encode(args["data"]).decode()
        result = await self.client.request(op, **args)
        return result if isinstance(result, dict) else {"result": result}

    async def close(self) -> None:
        await self.client.close()


# ---- tmux --------------------------------------------------------------------------------------


class TmuxServer:
    """A private tmux server (no user config, no status line) on its own socket."""

    def __init__(self, tag: str, width: int, height: int) -> None:
        self.socket = f"b10-{tag}-{os.getpid()}"
        self.width, self.height = width, height
        self.started = False

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=check,
            cwd=NEUTRAL_CWD,
        ).stdout

    def new_session(self, session: str, command: str, window: str = "w0") -> None:
        """The first session also starts the server, sized before its program runs."""
        prefix: list[str] = []
        if not self.started:
            size = f"{self.width}x{self.height}"
            prefix = [
                "start-server", ";", "set-option", "-g", "default-size", size, ";",
                "set-option", "-g", "status", "off", ";",
                "set-option", "-g", "history-limit", "2000", ";",
            ]  # fmt: skip
            self.started = True
        self.run(
            *prefix, "new-session", "-d", "-s", session, "-n", window,
            "-c", NEUTRAL_CWD, "-x", str(self.width), "-y", str(self.height), command,
        )  # fmt: skip

    def new_window(self, session: str, window: str, command: str) -> None:
        self.run("new-window", "-d", "-t", f"{session}:", "-n", window, "-c", NEUTRAL_CWD, command)

    def pid(self) -> int:
        return int(self.run("display-message", "-p", "#{pid}").strip())

    def pane_pid(self, target: str) -> int:
        return int(self.run("display-message", "-p", "-t", target, "#{pane_pid}").strip())

    def control(self, session: str) -> TmuxControl:
        return TmuxControl(self, session)

    def close(self) -> None:
        self.run("kill-server", check=False)
        # A killed tmux server leaves its socket file behind.
        tmpdir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (tmpdir / self.socket).unlink(missing_ok=True)


class TmuxControl:
    """A persistent control-mode client: commands without a tmux process per command.

    It attaches to a session of its own, so it neither resizes nor receives the output
    of the panes it queries; `command()` returns the lines between `%begin` and `%end`.
    """

    def __init__(self, server: TmuxServer, session: str) -> None:
        server.new_session(session, "sleep 86400")
        argv = [
            "tmux", "-L", server.socket, "-f", "/dev/null", "-C",
            "attach", "-f", "ignore-size,no-output", "-t", session,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.fd = self.process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = b""
        # The attach answers with blocks of its own, which may come after a first command's:
        # let them come, then skip blocks until our marker's.
        while select.select([self.fd], [], [], 0.3)[0]:
            if not os.read(self.fd, 65536):
                raise RuntimeError("the tmux control client exited")
        self.stdin.write(b"display-message -p b10-sync\n")
        self.stdin.flush()
        deadline = time.monotonic() + 10
        while self._block(deadline) != ["b10-sync"]:
            pass

    def _block(self, deadline: float) -> list[str]:
        """The next command's output lines (RuntimeError on %error)."""
        while not self._line(deadline).startswith("%begin"):
            pass
        out: list[str] = []
        while True:
            text = self._line(deadline)
            if text.startswith("%end"):
                return out
            if text.startswith("%error"):
                raise RuntimeError(f"tmux: {' '.join(out)}")
            out.append(text)

    def _line(self, deadline: float) -> str:
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("the tmux control client did not answer")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise RuntimeError("the tmux control client exited")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace")

    def command(self, line: str, timeout: float = 10) -> list[str]:
        """Run one tmux command; its output lines (RuntimeError on %error)."""
        self.stdin.write(line.encode() + b"\n")
        self.stdin.flush()
        try:
            return self._block(time.monotonic() + timeout)
        except RuntimeError as error:
            raise RuntimeError(f"{line!r}: {error}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stdin.write(b"detach-client\n")
            self.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(2)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class TmuxApp:
    """A program in a tmux pane, started on `launch()`, watched through a control client.

    The pane's shell waits on `read` and then execs the program, so tmux's own start-up
    is not counted; `launch()` returns the time of the Enter that lets it go. Screens are
    read with `capture-pane` over the control client (no process per poll).
    """

    def __init__(
        self,
        server: TmuxServer,
        session: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        ctl: TmuxControl | None = None,
    ) -> None:
        self.server = server
        self.session = session
        settings = [f"{key}={value}" for key, value in (env or {}).items()]
        command = shlex.join(
            [
                "env", "-u", "COLUMNS", "-u", "LINES", "-u", "TMUX",
                "TERM=xterm-256color", *settings, *argv,
            ]
        )  # fmt: skip
        server.new_session(session, f"read _ && exec {command}")
        self.pid = server.pane_pid(session)
        """The pane's shell, which becomes the program (exec keeps the pid)."""
        self.owns_ctl = ctl is None
        self.ctl = ctl or server.control(f"{session}-ctl")

    def launch(self) -> float:
        started = time.perf_counter()
        self.keys("Enter")
        return started

    def screen(self) -> str:
        return "\n".join(self.ctl.command(f"capture-pane -p -t {self.session}"))

    def keys(self, *keys: str) -> None:
        self.ctl.command(f"send-keys -t {self.session} " + " ".join(keys))

    def type(self, text: str) -> None:
        """Literal text (letters and digits only: it is not quoted)."""
        self.ctl.command(f"send-keys -t {self.session} -l {text}")

    def until(
        self, check: Callable[[str], bool], timeout: float, what: str, every: float = 0.002
    ) -> float:
        """Poll the screen; the perf_counter time of the capture that passed."""
        deadline = time.perf_counter() + timeout
        while True:
            polled = time.perf_counter()
            screen = self.screen()
            if check(screen):
                return time.perf_counter()
            if polled > deadline:
                raise NotShown(f"{what} not on screen after {timeout:g} s", screen)
            time.sleep(max(0.0, every - (time.perf_counter() - polled)))

    def quit(self, key: str = "q", timeout: float = 10) -> None:
        with contextlib.suppress(RuntimeError):
            self.keys(key)
        deadline = time.monotonic() + timeout
        while pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def close(self) -> None:
        if self.owns_ctl:
            self.ctl.close()


class NotShown(RuntimeError):
    """A screen never showed what was waited for; `screen` is the last one captured."""

    def __init__(self, message: str, screen: str) -> None:
        super().__init__(message)
        self.screen = screen


def showing(*texts: str) -> Callable[[str], bool]:
    return lambda screen: all(text in screen for text in texts)


# ---- a terminal of our own ---------------------------------------------------------------------


class Terminal:
    """A program in a PTY we hold, its output emulated here (pyte) to see what it shows.

    For clients whose output is small (one agent's screen, a tmux client on a quiet
    window), so emulating it costs this process little. Timing is exact: the time a key
    is written to the PTY and the time the read that made it visible returned.
    """

    def __init__(
        self,
        argv: Sequence[str],
        width: int,
        height: int,
        env: dict[str, str],
        cwd: str | Path = "/tmp",
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        child_env = {**env, "TERM": "xterm-256color"}
        for name in ("COLUMNS", "LINES", "TMUX"):
            child_env.pop(name, None)
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=child_env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            close_fds=True,
            cwd=cwd,
        )
        os.close(slave)
        os.set_blocking(self.master, False)
        self.screen = pyte.Screen(width, height)
        self.stream = pyte.ByteStream(self.screen)
        self.received = 0

    def pump(self, until: float) -> float:
        """Read and emulate until perf_counter `until`; the time of the last read (0 if none)."""
        last = 0.0
        while True:
            left = until - time.perf_counter()
            ready, _, _ = select.select([self.master], [], [], max(0.0, left))
            if ready:
                last = self._read() or last
            elif left <= 0:
                return last

    def _read(self) -> float:
        try:
            data = os.read(self.master, 65536)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EIO):
                return 0.0
            raise
        now = time.perf_counter()
        self.received += len(data)
        self.stream.feed(data)
        return now

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Read until `check()` holds; the perf_counter time of the read that made it so."""
        if check():
            return time.perf_counter()
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"timed out waiting for {what}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                at = self._read()
                if at and check():
                    return at
            if self.process.poll() is not None:
                raise RuntimeError(f"the program exited ({self.process.returncode}) before {what}")

    def quiet(self, gap: float, timeout: float) -> None:
        """Read until nothing has arrived for `gap` seconds (at most `timeout`)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.pump(time.perf_counter() + gap):
                return

    def write(self, data: bytes) -> float:
        started = time.perf_counter()
        os.write(self.master, data)
        return started

    def text(self, y: int) -> str:
        return self.screen.display[y]

    def contents(self) -> str:
        return "\n".join(self.screen.display)

    def char(self, y: int, x: int) -> str:
        return str(self.screen.buffer[y][x].data)

    @property
    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor.x, self.screen.cursor.y

    def close(self, detach: bytes = b"") -> None:
        if detach and self.process.poll() is None:
            with contextlib.suppress(OSError):
                os.write(self.master, detach)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.close(self.master)


def echo_latencies(
    term: Terminal, keys: int, gap: float, line_keys: int = 60, timeout: float = 5.0
) -> list[float]:
    """Milliseconds from each key written to `term` until the terminal shows its echo.

    The far end is `cat` (the kernel's line discipline echoes). Every `line_keys` keys,
    Ctrl-U wipes the line so the cursor comes back to the same row (nothing scrolls).
    A key that is never echoed within `timeout` raises, saying how far it got.
    """
    latencies: list[float] = []
    x, y = fresh_line(term)
    start_x = x
    for i in range(keys):
        if x - start_x >= line_keys:
            x, y = fresh_line(term)
        char = ALPHABET[i % len(ALPHABET)]
        sent = term.write(char.encode())
        try:
            seen = term.wait(
                lambda x=x, y=y, char=char: term.char(y, x) == char, timeout, f"echo of key {i}"
            )
        except RuntimeError as error:
            raise RuntimeError(f"{error} (after {len(latencies)} keys)") from None
        latencies.append((seen - sent) * 1000)
        x += 1
        term.pump(sent + gap)
    term.write(KILL_LINE)
    return latencies


def fresh_line(term: Terminal) -> tuple[int, int]:
    """Wipe the typed line; wait until the cursor's row is blank (only our keys were on it)."""
    term.write(KILL_LINE)

    def blank() -> bool:
        return not term.text(term.cursor[1]).strip()

    term.wait(blank, 10, "the line to be wiped")
    term.quiet(0.05, 2)
    return term.cursor
