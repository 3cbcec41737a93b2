"""Talking to the town's daemon, and starting it when nobody has (like tmux)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tundra_tui.daemon.log import log_path, open_private, stderr_path
from tundra_tui.daemon.protocol import (
    MAX_LINE,
    Event,
    Ping,
    ProtocolError,
    Reply,
    Request,
    Show,
    Subscribe,
    decode,
    request_frame,
)
from tundra_tui.domain.errors import TundraError
from tundra_tui.town import Town, ensure_state_dir

START_TIMEOUT_S = 15.0
MAX_SOCKET_PATH = 104
"""sun_path holds 108 bytes on Linux (104 on the BSDs): longer town paths cannot host a socket."""
EVENT_BACKLOG = 4096
"""Events queued for a subscriber that has not read them yet; beyond it, reading waits."""


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
    """One connection to the daemon, shared by every caller on it.

    Requests carry ids, so several can be in flight at once and their replies may come
    in any order: a reader task hands each reply to the caller waiting on its id, and
    queues events for `subscribe`. A slow `stop` therefore never holds up a key sent on
    the same connection. When the connection ends, every waiter gets the reason.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._events: deque[Event] = deque()
        self._event_ready = asyncio.Event()
        self._event_room = asyncio.Event()
        self._event_room.set()
        self._listening = False
        self._failure: TundraError | None = None
        self._said = ""
        """An error the daemon sent without an id (it hangs up next): the reason to give."""
        self.subscribed = False
        """Subscribe was answered: events flow on this connection."""
        self.shown: list[str] = []
        self.glanced: list[str] = []
        """The agents this connection last told the daemon it shows."""
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

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

    @property
    def closed(self) -> bool:
        """The connection ended (hung up, broken or closed): make a new one."""
        return self._failure is not None

    async def call(self, request: Request) -> Any:
        """Send one request and return its typed reply (`type(request).answer`).

        The daemon's refusal is raised as a TundraError with its one line; a connection
        that ends first raises DaemonUnavailable (or ProtocolError for a garbled line).
        """
        self._check()
        self._next_id += 1
        request_id = self._next_id
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            self._write(request_frame(request, request_id))
            await self._drain()
            reply = await waiter
        finally:
            # A caller cancelled meanwhile leaves no waiter: its late reply is dropped.
            self._waiting.pop(request_id, None)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # seen, so asyncio does not report it again as unheard
        if not isinstance(reply, type(request).answer):
            raise ProtocolError(
                f"the daemon answered {type(request).__name__} with {type(reply).__name__}"
            )
        return reply

    def send(self, request: Request) -> None:
        """Write a request without an id: the daemon sends no reply (keys, mostly).

        Requests written on one connection reach the daemon in the order written.
        """
        self._check()
        self._write(request_frame(request, None))

    async def subscribe(
        self, agents: list[str] | None = None, show: Sequence[str] = ()
    ) -> AsyncIterator[Event]:
        """Turn on events (every agent's when `agents` is None) and yield them as they come.

        `show` names the agents whose screens this connection shows (see `show`). Calls
        and sends go on working on this connection meanwhile.
        """
        await self.start_events(agents, show)
        async for event in self.events():
            yield event

    async def start_events(
        self, agents: list[str] | None = None, show: Sequence[str] = (), glance: Sequence[str] = ()
    ) -> None:
        """Send Subscribe and wait for its answer; events queue up for `events()` from now."""
        self._listening = True
        self.shown = list(show)
        self.glanced = list(glance)
        await self.call(Subscribe(agents=agents, show=list(show), glance=list(glance)))
        self.subscribed = True

    async def events(self) -> AsyncIterator[Event]:
        """The events of a subscribed connection, until it ends (then its reason is raised)."""
        try:
            while True:
                while not self._events:
                    if self._failure is not None:
                        raise _again(self._failure)
                    self._event_ready.clear()
                    await self._event_ready.wait()
                event = self._events.popleft()
                if len(self._events) < EVENT_BACKLOG:
                    self._event_room.set()
                yield event
        finally:
            # Nobody reads them any more: drop what comes, so replies never wait behind it.
            self._listening = False
            self._events.clear()
            self._event_room.set()

    async def show(self, agents: list[str], glance: Sequence[str] = ()) -> None:
        """Tell the daemon which agents' screens this connection shows now, and which of
        them only at a glance."""
        await self.call(Show(agents=list(agents), glance=list(glance)))
        self.shown = list(agents)
        self.glanced = list(glance)

    async def close(self) -> None:
        """Close the connection; the daemon and its agents carry on."""
        self._fail(DaemonUnavailable("the connection to the daemon was closed"))
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    # ---- the wire ------------------------------------------------------------------------

    def _check(self) -> None:
        if self._failure is not None:
            raise _again(self._failure)

    def _write(self, line: bytes) -> None:
        if self._writer.is_closing():
            self._fail(DaemonUnavailable("the daemon closed the connection"))
            self._check()
        self._writer.write(line)

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except OSError as error:
            self._fail(DaemonUnavailable(f"the connection to the daemon broke ({error})"))
            self._check()

    async def _read_loop(self) -> None:
        """Hand every reply to its caller and queue every event, until the line ends."""
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except ValueError:  # longer than the reader's limit: the stream is lost
                    raise ProtocolError(
                        f"a message from the daemon exceeds {MAX_LINE} bytes"
                    ) from None
                if not line:
                    reason = self._said or "the daemon closed the connection"
                    raise DaemonUnavailable(reason)
                frame = decode(line)
                if frame.ev is not None:
                    await self._queue(frame.ev)
                elif frame.id is None:
                    if frame.error is not None:
                        self._said = frame.error
                else:
                    self._answer(frame.id, frame.ok, frame.error)
        except TundraError as error:
            self._fail(error)
        except OSError as error:
            self._fail(DaemonUnavailable(f"the connection to the daemon broke ({error})"))

    def _answer(self, request_id: int, ok: Reply | None, error: str | None) -> None:
        waiter = self._waiting.pop(request_id, None)
        if waiter is None or waiter.done():
            return  # its caller gave up (cancelled or timed out)
        if error is not None:
            waiter.set_exception(TundraError(error))
        elif ok is not None:
            waiter.set_result(ok)
        else:
            waiter.set_exception(ProtocolError("the daemon's reply had neither ok nor error"))

    async def _queue(self, event: Event) -> None:
        """Queue an event for `events()`; a full queue holds the reading back, so a reader
        that falls behind shows as back-pressure to the daemon (which resyncs it)."""
        if not self._listening:
            return
        while len(self._events) >= EVENT_BACKLOG:
            self._event_room.clear()
            await self._event_room.wait()
            if not self._listening:
                return
        self._events.append(event)
        self._event_ready.set()

    def _fail(self, error: TundraError) -> None:
        """The connection is over: every waiter, and every later caller, gets `error`."""
        if self._failure is None:
            self._failure = error
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(_again(self._failure))
        self._event_ready.set()


def _again(error: TundraError) -> TundraError:
    """A fresh copy of a stored failure, so each raise gets its own traceback."""
    return type(error)(*error.args)


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
                pong = await client.call(Ping())
            finally:
                await client.close()
            return int(pong.pid)
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
