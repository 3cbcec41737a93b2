"""The daemon's socket: connections, frames, and requests answered as they finish.

Each request runs as its own task, so a slow `stop`, `spawn` or `approve` never
holds up a key sent after it on the same connection. Input to one agent
(`Request.input_to`) goes through that agent's lane, one request after another
in arrival order, whichever connection it came on. A request without an id is
answered with nothing (keys are sent that way). A connection that has subscribed
keeps sending requests; its events are written by its own pump, from a bounded
queue (see `fanout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tundra_tui.daemon.fanout import FanOut, Subscriber
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.peers import Peer, peer_of
from tundra_tui.daemon.protocol import (
    Done,
    Hook,
    ProtocolError,
    Reply,
    Request,
    Show,
    Subscribe,
    Subscribed,
    decode,
    error_frame,
    reply_frame,
)
from tundra_tui.domain.errors import TundraError

IN_FLIGHT = 64
"""Requests one connection may have running at once; past that its reader waits."""
MAX_REQUEST = 1024 * 1024
"""The longest request line read; what a client sends beyond twice this waits in its
socket, not in our memory (events to clients may be longer: `protocol.MAX_LINE`)."""


@dataclass(eq=False)
class Caller:
    """Who sent a request: its connection's peer, and whether it runs inside an agent
    (worked out once per connection: keystrokes come many a second)."""

    peer: Peer
    inside: bool | None = None
    subscriber: Subscriber | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


Serve = Callable[[Request, Caller], Awaitable[Reply]]
Handler = Callable[[Any, Caller], Awaitable[Reply]]
"""One operation's handler: its typed request and the caller, to its typed reply."""


class Transport:
    """Listens on the town's socket and answers typed requests with `serve`."""

    def __init__(
        self,
        *,
        serve: Serve,
        fanout: FanOut,
        log: DaemonLog,
        refused: Callable[[Peer], None],
        queue_depth: Callable[[], int],
    ) -> None:
        self._serve = serve
        self._fanout = fanout
        self._log = log
        self._refused = refused
        self._queue_depth = queue_depth
        self._server: asyncio.AbstractServer | None = None
        self._lanes: dict[str, asyncio.Lock] = {}
        self.connections = 0

    async def listen(self, path: Path) -> None:
        self._server = await asyncio.start_unix_server(
            self._client, path=str(path), limit=MAX_REQUEST
        )
        os.chmod(path, 0o600)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    # ---- one connection ----------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        caller: Caller | None = None
        pump: asyncio.Task[None] | None = None
        self.connections += 1
        try:
            peer = peer_of(writer)
            # Only the user who owns the town may talk to its daemon.
            if peer.uid is not None and peer.uid != os.getuid():
                writer.write(error_frame(None, "permission denied"))
                self._refused(peer)
                return
            caller = Caller(peer)
            slots = asyncio.Semaphore(IN_FLIGHT)
            while line := await reader.readline():
                try:
                    frame = decode(line)
                    if frame.req is None:
                        raise ProtocolError("a client sends requests only")
                except ProtocolError as error:
                    writer.write(error_frame(None, str(error)))
                    await writer.drain()
                    return
                request: Request = frame.req
                # Another client's turn between lines: one that sends a flood of requests
                # does not hold the loop while its buffered lines are parsed.
                await asyncio.sleep(0)
                if isinstance(request, Subscribe | Show):
                    # Answered here, in order with the lines around them. The reply is
                    # drained before the next line is read: a client that never reads its
                    # replies stops being read, rather than growing our buffer.
                    answer = self._inline(caller, request, frame.id, writer)
                    if answer is not None:
                        writer.write(answer)
                    if isinstance(request, Subscribe) and caller.subscriber is not None:
                        pump = pump or self._pump(caller.subscriber, writer)
                    await writer.drain()
                    continue
                await slots.acquire()
                task = asyncio.ensure_future(self._answer(request, frame.id, caller, writer))
                caller.tasks.add(task)
                task.add_done_callback(caller.tasks.discard)
                task.add_done_callback(lambda _task: slots.release())
        except ValueError:
            # A line past MAX_REQUEST: say so once, then hang up (its end cannot be found).
            with contextlib.suppress(ConnectionError):
                writer.write(error_frame(None, f"a request exceeds {MAX_REQUEST} bytes"))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-line; nothing of ours depends on it
        finally:
            self.connections -= 1
            if caller is not None:
                # A hook waiting for the operator is closed at once when its process goes
                # away (killed, or timed out by its agent); other requests run to the end.
                for task in list(caller.tasks):
                    if getattr(task, "hook", False):
                        task.cancel()
                if caller.subscriber is not None:
                    self._fanout.remove(caller.subscriber)
            if pump is not None:
                pump.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _inline(
        self,
        caller: Caller,
        request: Subscribe | Show,
        request_id: int | None,
        writer: asyncio.StreamWriter,
    ) -> bytes | None:
        """Subscribe or Show, handled in line order; the reply line (None if unwanted)."""
        if isinstance(request, Show):
            if caller.subscriber is None:
                return error_frame(request_id, "subscribe before showing screens")
            self._fanout.show(caller.subscriber, request.agents, request.glance)
            return None if request_id is None else reply_frame(request_id, Done())
        if caller.subscriber is not None:
            return error_frame(request_id, "this connection is subscribed")
        subscriber = Subscriber(
            agents=frozenset(request.agents) if request.agents is not None else None,
            depth=self._queue_depth(),
            shown=frozenset(request.show),
            glance=frozenset(request.glance) & frozenset(request.show),
        )
        caller.subscriber = subscriber
        writer.write(reply_frame(request_id, Subscribed()))
        for line in self._fanout.add(subscriber):
            writer.write(line)
        return None

    def _pump(self, subscriber: Subscriber, writer: asyncio.StreamWriter) -> asyncio.Task[None]:
        return asyncio.ensure_future(self._pump_or_hang_up(subscriber, writer))

    async def _pump_or_hang_up(self, subscriber: Subscriber, writer: asyncio.StreamWriter) -> None:
        """Copy events to the connection. If that fails for a reason of ours, the failure is
        logged and the connection closed: a client whose stream stopped silently would show
        a frozen town; one that is hung up on reconnects and gets a fresh snapshot."""
        try:
            await self._fanout.pump(subscriber, writer.write, writer.drain)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            self._log.exception("subscriber.failed", op="subscribe")
            writer.close()

    async def _answer(
        self,
        request: Request,
        request_id: int | None,
        caller: Caller,
        writer: asyncio.StreamWriter,
    ) -> None:
        if isinstance(request, Hook):
            task = asyncio.current_task()
            if task is not None:
                task.hook = True  # type: ignore[attr-defined]
        lane = self._lane(request) if type(request).input_to else None
        if lane is None:
            line = await self._run(request, request_id, caller)
        else:
            async with lane:
                line = await self._run(request, request_id, caller)
            self._release_lane(request)
        if line is not None and not writer.is_closing():
            writer.write(line)
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def _run(self, request: Request, request_id: int | None, caller: Caller) -> bytes | None:
        """Serve one request; every failure is one error line (for a caller who wants a
        reply) and one log line."""
        op = type(request).__struct_config__.tag
        agent = getattr(request, "name", None)
        started = time.monotonic()
        try:
            reply = await self._serve(request, caller)
        except TundraError as error:
            self._log.warning(op=op, agent=agent, error=error, duration_ms=_ms(started))
            return None if request_id is None else error_frame(request_id, str(error))
        except (KeyError, TypeError, ValueError) as error:
            # A malformed argument is the caller's mistake: say so, keep the connection.
            self._log.warning(op=op, agent=agent, error=error, duration_ms=_ms(started))
            return (
                None if request_id is None else error_frame(request_id, f"bad request: {error!r}")
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._log.exception(op=op, agent=agent, duration_ms=_ms(started))
            return (
                None
                if request_id is None
                else error_frame(request_id, f"internal error: {error!r}")
            )
        if not type(request).quiet:
            self._log.info(op=op, agent=agent, duration_ms=_ms(started))
        return None if request_id is None else reply_frame(request_id, reply)

    def _lane(self, request: Request) -> asyncio.Lock:
        name = str(getattr(request, "name", ""))
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = asyncio.Lock()
        return lane

    def _release_lane(self, request: Request) -> None:
        """Forget an idle lane, so names a client made up do not pile up."""
        name = str(getattr(request, "name", ""))
        lane = self._lanes.get(name)
        if lane is not None and not lane.locked() and not getattr(lane, "_waiters", None):
            del self._lanes[name]


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
