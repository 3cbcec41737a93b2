"""Talking to the town's daemon, and starting it when nobody has (like tmux)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tundra_tui.daemon.log import log_path, open_private, stderr_path
from tundra_tui.daemon.protocol import MAX_LINE, decode, encode
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town, ensure_state_dir

START_TIMEOUT_S = 15.0
MAX_SOCKET_PATH = 104
"""sun_path holds 108 bytes on Linux (104 on the BSDs): longer town paths cannot host a socket."""


class DaemonUnavailable(TundraError):
    """No daemon answers on the town's socket."""


class DaemonStopped(DaemonUnavailable):
    """No daemon, because the operator stopped it: nothing should start it unasked."""


def lock_path(town: Town) -> Path:
    """Held (flock) by the running daemon for its whole life: one daemon per town."""
    return town.state_dir / "daemon.lock"


STOPPED_MESSAGE = "the daemon was stopped by `at daemon stop`"
STDERR_KEEP = 1024 * 1024
"""Bytes of daemon.stderr kept across starts; beyond that the old one moves to .1."""


def stopped_marker(town: Town) -> Path:
    """Present while the operator wants the daemon down: left by `at daemon stop`, removed by
    any start made on purpose, so an open `at tui` knows not to start it again by itself."""
    return town.state_dir / "daemon.stopped"


def mark_stopped(town: Town) -> None:
    """Record that the operator stopped the daemon (before asking it to stop, so a client
    that sees the connection drop already finds the marker)."""
    ensure_state_dir(town)
    os.close(open_private(stopped_marker(town), os.O_WRONLY))


def clear_stopped(town: Town) -> None:
    """Forget `at daemon stop`: the daemon is being started on purpose."""
    stopped_marker(town).unlink(missing_ok=True)


def stopped_by_operator(town: Town) -> bool:
    """True while the last word on the daemon was `at daemon stop`."""
    return stopped_marker(town).exists()


def daemon_pid(town: Town) -> int | None:
    """The pid of the daemon holding the town's lock, or None when none does."""
    path = lock_path(town)
    if not path.exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class DaemonClient:
    """One connection to the daemon; requests are answered in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next_id = 0

    @classmethod
    async def connect(cls, town: Town) -> DaemonClient:
        """Connect to a running daemon or raise DaemonUnavailable."""
        path = town.socket_path
        if len(str(path)) > MAX_SOCKET_PATH:
            raise TundraError(f"the town path is too long for a Unix socket: {path}")
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE)
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise DaemonUnavailable(f"no daemon is running for {town.root}") from error
        return cls(reader, writer)

    async def request(self, op: str, **args: Any) -> Any:
        """Send one operation and return its result, or raise its error as a TundraError."""
        self._next_id += 1
        request_id = self._next_id
        self._writer.write(encode({"id": request_id, "op": op, "args": args}))
        await self._writer.drain()
        reply = await self._read()
        # A caller cancelled after sending (a replaced UI worker) leaves its answer unread:
        # skip it, or every later request on this connection would get the one before's.
        while isinstance(reply.get("id"), int) and 0 < reply["id"] < request_id:
            reply = await self._read()
        if not reply.get("ok"):
            raise TundraError(str(reply.get("error", "the daemon refused the request")))
        return reply.get("result")

    async def _read(self) -> dict[str, Any]:
        line = await self._reader.readline()
        if not line:
            raise DaemonUnavailable("the daemon closed the connection")
        return decode(line)

    async def subscribe(
        self, agents: list[str] | None = None, *, screens: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Turn this connection into an event stream (states, approvals, screen rows)."""
        await self.request("subscribe", agents=agents, screens=screens)
        while True:
            yield await self._read()

    async def close(self) -> None:
        """Close the connection; the daemon and its agents carry on."""
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def start_daemon(town: Town) -> int:
    """Start the town's daemon detached from this terminal and wait until it answers.

    Every caller starts it on purpose, so an earlier `at daemon stop` is forgotten. The
    daemon writes its own JSON log; what it prints anyway (a crash's traceback) goes to
    daemon.stderr, kept apart so the log stays one object per line.
    """
    ensure_state_dir(town)
    town.logs_dir.mkdir(mode=0o700, exist_ok=True)
    clear_stopped(town)
    running = daemon_pid(town)
    if running is not None:
        return running
    stderr = _open_stderr(town)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "tundra_tui", "--town", str(town.root), "daemon", "run"],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
            cwd=str(town.root),
        )
    finally:
        os.close(stderr)
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(DaemonUnavailable):
            client = await DaemonClient.connect(town)
            try:
                result = await client.request("ping")
            finally:
                await client.close()
            return int(result["pid"])
        await asyncio.sleep(0.05)
    raise TundraError(
        f"the daemon did not start within {START_TIMEOUT_S:g} s; "
        f"see {log_path(town)} and {stderr_path(town)}"
    )


def _open_stderr(town: Town) -> int:
    """daemon.stderr for appending (0600), moved aside first once it has grown past a bound."""
    path = stderr_path(town)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > STDERR_KEEP:
            path.replace(path.with_name(path.name + ".1"))
    return open_private(path, os.O_WRONLY | os.O_APPEND)


async def connect_or_start(town: Town) -> DaemonClient:
    """A connection to the town's daemon, starting one first if none is running."""
    try:
        return await DaemonClient.connect(town)
    except DaemonUnavailable:
        await start_daemon(town)
        return await DaemonClient.connect(town)


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
