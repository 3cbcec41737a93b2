"""One agent CLI in a pseudo-terminal, read on the event loop and stopped with its whole tree.

ptyprocess forks through `pty.fork()`, so the child is a session and process
group leader. It starts with default signal dispositions and dies with the
daemon (`_child_setup`). Stopping signals that group, anything still carrying
the agent's marker variable or holding its terminal, and everything its
containment holds (a cgroup, or the processes tracked for it; see
`session.containment`): `terminate(force=True)` alone leaves `setsid`/`nohup`
descendants running (research P8), and a cleared environment plus closed
descriptors escape the mark and the terminal (F6). With this process made a
child subreaper, such orphans are reparented here, where they are reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import secrets
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ptyprocess

from tundra_tui.domain.errors import TundraError
from tundra_tui.session.containment import AgentContainment, TownContainment
from tundra_tui.session.procs import (
    MARKER_ENV,
    Proc,
    carries_mark,
    proc_info,
    processes_with_marker,
    send,
)
from tundra_tui.session.seccomp import deny_terminal_injection

__all__ = [
    "MARKER_ENV",
    "AgentPty",
    "ExitStatus",
    "adopted_agent_processes",
    "become_subreaper",
    "carries_mark",
    "die_with_parent",
    "processes_holding",
    "processes_with_marker",
    "reap",
]

READ_CHUNK = 65536
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
_RESETTABLE = tuple(sig for sig in signal.valid_signals() if sig not in _UNCATCHABLE)
try:
    # Loaded here, before any fork: dlopen in a forked child of a threaded process can deadlock.
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None
_TRACKED: set[int] = set()
"""PIDs of agents whose exit status an AgentPty will collect; orphan reaping leaves them be."""


def become_subreaper() -> bool:
    """Ask Linux to reparent orphaned descendants to this process instead of init.

    Returns False where that is not possible (not Linux, or refused); stopping
    then relies on the process group and the environment marker alone.
    """
    try:
        return _LIBC is not None and bool(_LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except AttributeError:
        return False


def die_with_parent(parent: int) -> Callable[[], None]:
    """A pre-exec step: a clean signal state, and death (SIGKILL) when `parent` dies.

    The daemon ignores SIGHUP, and Python ignores SIGPIPE and SIGXFSZ; ignored
    dispositions and the signal mask survive exec, so without this a child
    shrugs off the hangup of its terminal and outlives a killed daemon (F5).
    PR_SET_PDEATHSIG makes the kernel SIGKILL the child when its parent dies.
    The kernel means the parent *thread*: the fork must happen on the thread
    that lives as long as the daemon (the event loop's), never in a worker
    thread that may exit while the child runs. Shared by agents and gates.
    """

    def setup() -> None:
        for sig in _RESETTABLE:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            # Our parent died between fork and prctl: the death signal will never come.
            os.kill(os.getpid(), signal.SIGKILL)

    return setup


def _child_setup(parent: int, join: Callable[[], None]) -> Callable[[], None]:
    """What the forked agent runs before exec: a clean signal state tied to our life.

    `die_with_parent` first (signals reset, PDEATHSIG). Then `join` moves the
    child into its cgroup, before exec, so not even its first fork can start
    outside. Last, a seccomp filter refuses TIOCSTI and TIOCLINUX to the agent
    and all it starts: nothing inside can push an answer into its own
    terminal's input.
    """
    tie = die_with_parent(parent)

    def setup() -> None:
        tie()
        join()
        deny_terminal_injection()

    return setup


def processes_holding(device: str) -> list[int]:
    """PIDs with `device` (e.g. /dev/pts/7) open: whatever still keeps the agent's PTY alive.

    Catches descendants that escaped both the process group (setsid) and the
    environment mark (a cleaned environment), but kept the terminal open.
    """
    found: list[int] = []
    if not device:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == device:
                    found.append(int(entry.name))
                    break
        except OSError:
            continue
    return found


def adopted_agent_processes() -> tuple[set[int], set[int]]:
    """(live, zombie) children of ours: live ones that carry some agent's mark, and zombies.

    Orphans of agents are reparented to us (the subreaper). A zombie's environment
    can no longer be read, so the live set is remembered between sweeps and only
    zombies seen alive with a mark are reaped (never a subprocess of ours).
    """
    me = os.getpid()
    live: set[int] = set()
    zombies: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:
                continue
            if fields[0] == "Z":
                zombies.add(int(entry.name))
            elif carries_mark(int(entry.name)):
                live.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return live, zombies


def reap(pids: set[int]) -> None:
    """Collect exit statuses of these PIDs if they are our exited children (adopted orphans).

    Only the agent's own descendants are reaped: waiting on anything else would
    steal the exit status of a subprocess some other code is waiting for.
    """
    for pid in pids - _TRACKED:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How the agent ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None

    def describe(self) -> str:
        """`exit 0`, `exit 3` or `killed by SIGKILL`."""
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exit {self.code}"


def _tty_of(pid: int) -> str:
    """The PTY slave a freshly spawned child has as its stdin, e.g. /dev/pts/7."""
    for _ in range(50):
        try:
            target = os.readlink(f"/proc/{pid}/fd/0")
        except OSError:
            return ""
        if target.startswith("/dev/pts/"):
            return target
        time.sleep(0.002)  # still between fork and login_tty
    return ""


class AgentPty:
    """A running CLI: write to it, resize it, read it on the loop, stop it and its tree."""

    def __init__(
        self, process: ptyprocess.PtyProcess, mark: str, containment: AgentContainment
    ) -> None:
        self._process = process
        self.mark = mark
        self.pid: int = process.pid
        self.fd: int = process.fd
        self.exit_status: ExitStatus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = bytearray()
        self._writing = False
        self._exited = asyncio.Event()
        self._descendants: set[int] = set()
        _TRACKED.add(self.pid)
        os.set_blocking(self.fd, False)
        self.device = _tty_of(self.pid)
        self.containment = containment
        """Where every process of this agent is kept: its cgroup, or its tracked set."""
        containment.adopt(self.pid, self.device)

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        columns: int = 120,
        rows: int = 40,
        containment: TownContainment | None = None,
    ) -> AgentPty:
        """Start `argv` in a new PTY of the given size, as its own session and group.

        Call it on the event loop's thread (see `_child_setup`): the agent dies
        with the thread that forked it. It is contained in `containment`, by
        default its town's (from `TUNDRA_TOWN` and `TUNDRA_AGENT` in `env`).
        """
        mark = secrets.token_hex(8)
        full_env = {**env, "TERM": "xterm-256color", MARKER_ENV: mark}
        town = containment if containment is not None else TownContainment.for_env(env)
        try:
            box = town.enter(env.get("TUNDRA_AGENT") or "agent", mark)
        except (OSError, TundraError) as error:
            raise TundraError(f"cannot prepare {argv[0]!r}'s containment: {error}") from error
        try:
            process = ptyprocess.PtyProcess.spawn(
                list(argv),
                cwd=str(cwd),
                env=full_env,
                dimensions=(rows, columns),
                preexec_fn=_child_setup(os.getpid(), box.join),
            )
        except FileNotFoundError as error:
            box.abandon()
            where = "" if "/" in argv[0] else " on PATH"
            raise TundraError(f"cannot start {argv[0]!r}: not found{where}") from error
        except OSError as error:
            box.abandon()
            raise TundraError(f"cannot start {argv[0]!r}: {error.strerror or error}") from error
        return cls(process, mark, box)

    # ---- reading -----------------------------------------------------------------------------

    def attach(
        self,
        loop: asyncio.AbstractEventLoop,
        on_data: Callable[[bytes], None],
        on_exit: Callable[[ExitStatus], None],
    ) -> None:
        """Read the PTY from `loop` itself (no thread), calling back per chunk and once at exit."""
        self._loop = loop

        def readable() -> None:
            try:
                data = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno not in (errno.EIO, errno.EBADF):
                    raise
                data = b""
            if data:
                # A PTY hands out about 4 KiB a read: take what is buffered at once.
                chunks = [data]
                size = len(data)
                while size < READ_CHUNK:
                    try:
                        more = os.read(self.fd, READ_CHUNK - size)
                    except OSError:
                        break  # nothing more now, or EOF: the next call sees it
                    if not more:
                        break
                    chunks.append(more)
                    size += len(more)
                on_data(data if len(chunks) == 1 else b"".join(chunks))
                return
            loop.remove_reader(self.fd)
            loop.create_task(self._collect_exit(on_exit))

        loop.add_reader(self.fd, readable)

    async def _collect_exit(self, on_exit: Callable[[ExitStatus], None]) -> None:
        # EOF comes when the last holder closes the PTY; the process may live on a while
        # (it closed its terminal) or have died already. Poll without blocking the loop.
        delay = 0.01
        while self._process.isalive():
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        status = ExitStatus(self._process.exitstatus, self._process.signalstatus)
        self.exit_status = status
        self._close_fd()
        self._exited.set()
        on_exit(status)
        # What the agent left running (it dropped the terminal, or the PTY would still be
        # open) is stopped with it: nothing could stop it later, and a restart would run
        # beside it.
        self._descendants |= await self.containment.release()
        reap(self._descendants)

    async def wait(self) -> ExitStatus:
        """Wait until the agent has exited and been reaped."""
        await self._exited.wait()
        assert self.exit_status is not None
        return self.exit_status

    # ---- writing -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes for the agent; a child that stops reading never blocks the loop."""
        if self.exit_status is not None or not data:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        while self._pending:
            try:
                written = os.write(self.fd, self._pending)
            except BlockingIOError:
                written = 0
            except OSError:
                self._pending.clear()
                return
            del self._pending[:written]
            if written == 0:
                break
        want_writer = bool(self._pending) and self._loop is not None
        if want_writer and not self._writing:
            assert self._loop is not None
            self._loop.add_writer(self.fd, self._flush)
            self._writing = True
        elif not want_writer and self._writing:
            assert self._loop is not None
            self._loop.remove_writer(self.fd)
            self._writing = False

    def resize(self, columns: int, rows: int) -> None:
        """Set the PTY size; the kernel sends the agent SIGWINCH."""
        if self.exit_status is None:
            with contextlib.suppress(OSError):
                self._process.setwinsize(rows, columns)

    # ---- stopping ----------------------------------------------------------------------------

    def _scan(self) -> set[Proc]:
        """Processes tied to this agent outside its containment: its mark, or its terminal.

        The terminal test only holds while our master end is open: once it is
        closed the kernel may hand the same /dev/pts number to the next agent.
        """
        pids = set(processes_with_marker(self.mark))
        if not self._process.closed:
            pids |= set(processes_holding(self.device))
        found = {info for info in map(proc_info, pids) if info is not None and not info.zombie}
        return {info.proc for info in found}

    async def _tree(self) -> set[Proc]:
        """Every process of this agent now: its containment's, its mark's, its terminal's."""
        tree = await self.containment.members() | await asyncio.to_thread(self._scan)
        self._descendants |= {proc.pid for proc in tree}
        return tree

    def _signal(self, procs: set[Proc], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.exit_status is None:
                os.killpg(self.pid, sig)  # the group may hold processes that dropped the mark
        for proc in procs:
            send(proc, sig)

    async def stop(self, grace: float = 3.0) -> ExitStatus:
        """SIGHUP and SIGTERM to the whole tree, a bounded wait, then SIGKILL to what is left.

        Always returns within about `grace` + 10 seconds; the /proc scans run in a
        thread so twenty agents stopping at once do not stall the loop.
        """
        tree = await self._tree()
        self._signal(tree, signal.SIGHUP)
        self._signal(tree, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            tree = await self._tree()
            if not tree and not self._process.isalive():
                break
            await asyncio.sleep(0.1)
        for _ in range(5):
            tree = await self._tree()
            if not tree and not self._process.isalive():
                break
            self._signal(tree, signal.SIGKILL)
            await asyncio.sleep(0.1)
        if self._loop is None:
            # Never attached: nobody else collects its status.
            with contextlib.suppress(Exception):
                self._process.wait()
            self.exit_status = ExitStatus(self._process.exitstatus, self._process.signalstatus)
            self._close_fd()
            self._exited.set()
        try:
            status = await asyncio.wait_for(self.wait(), timeout=5.0)
        except TimeoutError:
            # Something outside our reach holds the terminal; report what we know.
            self._close_fd()
            status = ExitStatus(self._process.exitstatus, self._process.signalstatus)
            self.exit_status = status
            self._exited.set()
        self._descendants |= await self.containment.release()
        reap(self._descendants)
        return status

    def _close_fd(self) -> None:
        _TRACKED.discard(self.pid)
        self.containment.tty = 0  # the /dev/pts number is free for the next agent
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.fd)
            if self._writing:
                self._loop.remove_writer(self.fd)
                self._writing = False
        # Close the fd ourselves: ptyprocess.close() sleeps and may raise on the loop.
        with contextlib.suppress(OSError, ValueError):
            self._process.fileobj.close()
        self._process.closed = True
