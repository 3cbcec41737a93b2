"""One agent CLI in a pseudo-terminal, read on the event loop and stopped with its whole tree.

ptyprocess forks through `pty.fork()`, so the child is a session and process
group leader. Stopping signals that group, and then anything still carrying the
agent's marker variable in its environment: `terminate(force=True)` alone leaves
`setsid`/`nohup` descendants running (research P8). With this process made a
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ptyprocess

from tundra_tui.domain.errors import TundraError

MARKER_ENV = "TUNDRA_AGENT_TOKEN"
"""Every agent's environment carries a unique token, so its descendants can be found."""
READ_CHUNK = 65536
_PR_SET_CHILD_SUBREAPER = 36
_TRACKED: set[int] = set()
"""PIDs of agents whose exit status an AgentPty will collect; orphan reaping leaves them be."""


def become_subreaper() -> bool:
    """Ask Linux to reparent orphaned descendants to this process instead of init.

    Returns False where that is not possible (not Linux, or refused); stopping
    then relies on the process group and the environment marker alone.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def processes_with_marker(token: str) -> list[int]:
    """PIDs whose environment holds `MARKER_ENV=token` (readable for our own processes)."""
    needle = f"{MARKER_ENV}={token}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def reap_orphans() -> None:
    """Collect exited children that no AgentPty waits for: orphans reparented to us."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in _TRACKED:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and int(fields[1]) == me:
            with contextlib.suppress(ChildProcessError):
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


class AgentPty:
    """A running CLI: write to it, resize it, read it on the loop, stop it and its tree."""

    def __init__(self, process: ptyprocess.PtyProcess, token: str) -> None:
        self._process = process
        self.token = token
        self.pid: int = process.pid
        self.fd: int = process.fd
        self.exit_status: ExitStatus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = bytearray()
        self._writing = False
        self._exited = asyncio.Event()
        _TRACKED.add(self.pid)
        os.set_blocking(self.fd, False)

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        columns: int = 120,
        rows: int = 40,
    ) -> AgentPty:
        """Start `argv` in a new PTY of the given size, as its own session and group."""
        token = secrets.token_hex(8)
        full_env = {**env, "TERM": "xterm-256color", MARKER_ENV: token}
        try:
            process = ptyprocess.PtyProcess.spawn(
                list(argv), cwd=str(cwd), env=full_env, dimensions=(rows, columns)
            )
        except FileNotFoundError as error:
            raise TundraError(f"cannot start {argv[0]!r}: not found on PATH") from error
        except OSError as error:
            raise TundraError(f"cannot start {argv[0]!r}: {error.strerror or error}") from error
        return cls(process, token)

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
                on_data(data)
                return
            loop.remove_reader(self.fd)
            loop.create_task(self._collect_exit(on_exit))

        loop.add_reader(self.fd, readable)

    async def _collect_exit(self, on_exit: Callable[[ExitStatus], None]) -> None:
        # EOF arrives as the child closes the PTY; its status may take a moment longer.
        for _ in range(500):
            if not self._process.isalive():
                break
            await asyncio.sleep(0.01)
        status = ExitStatus(self._process.exitstatus, self._process.signalstatus)
        self.exit_status = status
        self._close_fd()
        self._exited.set()
        on_exit(status)

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

    def interrupt(self) -> None:
        """Ctrl-C, as a user would press it."""
        self.write(b"\x03")

    # ---- stopping ----------------------------------------------------------------------------

    def signal_tree(self, sig: int) -> None:
        """Signal the agent's process group and every process carrying its marker."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for pid in processes_with_marker(self.token):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    async def stop(self, grace: float = 3.0) -> ExitStatus:
        """SIGHUP and SIGTERM to the whole tree, a bounded wait, then SIGKILL to what is left."""
        self.signal_tree(signal.SIGHUP)
        self.signal_tree(signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            if self.exit_status is not None and not processes_with_marker(self.token):
                break
            if self._loop is None and not self._process.isalive():
                break
            await asyncio.sleep(0.05)
        for _ in range(3):
            survivors = processes_with_marker(self.token)
            if not survivors and not self._process.isalive():
                break
            self.signal_tree(signal.SIGKILL)
            await asyncio.sleep(0.05)
        if self._loop is None:
            # Never attached: nobody else will reap it.
            with contextlib.suppress(Exception):
                self._process.wait()
            self.exit_status = ExitStatus(self._process.exitstatus, self._process.signalstatus)
            self._close_fd()
            self._exited.set()
        status = await self.wait()
        reap_orphans()
        return status

    def _close_fd(self) -> None:
        _TRACKED.discard(self.pid)
        if self._loop is not None and self._writing:
            self._loop.remove_writer(self.fd)
            self._writing = False
        with contextlib.suppress(OSError):
            self._process.close(force=False)
