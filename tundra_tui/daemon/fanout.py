"""Events to subscribed clients: each encoded once, screens only to those who show them.

A client says which agents' screens it shows (`Show`); only they get screen
events, batched to at most `FRAME_RATE` per second per agent, each message
encoded once for every client that gets it. An agent nobody shows is marked
hidden on the host, which then emulates it lazily. Every client's queue is
bounded: one that falls behind is cut to a fresh snapshot (like tmux), never
buffered without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from tundra_tui.daemon.protocol import Event, ScreenEvent, encode_event

FRAME_RATE = 30
"""Screen messages a second per agent and client, on average over any second."""
FRAME_BURST = 3
"""Frames that may go at once after a pause: a key's echo often comes in two or three
reads (the terminal's echo, then the program's redraw), and none of them should wait a
whole frame; a flood still averages `FRAME_RATE`."""
TYPED_WINDOW = 1.0
"""Seconds after a key was sent to an agent during which its screen changes skip the shared
frame budget: the echo of what the operator types never waits for a flood's frame."""
TYPED_RATE = 60.0
"""Frames a second at most for an agent being typed into, apart from the shared budget."""
SUBSCRIBER_QUEUE = 512
"""Lines a subscriber may fall behind by before its stream is cut to a fresh snapshot."""
_RESYNC = b""
"""Queued in place of everything a slow subscriber missed."""
_DRAIN = b"\n"
"""Queued after a line written straight to an idle connection: its writer drains it."""


@dataclass(eq=False)
class Subscriber:
    """One connection's event stream and the screens it shows."""

    agents: frozenset[str] | None
    depth: int = SUBSCRIBER_QUEUE
    shown: frozenset[str] = frozenset()
    glance: frozenset[str] = frozenset()
    """Of `shown`, the agents this client shows only at a glance (tiles behind the one being
    typed into): an agent nobody shows more than that is emulated and framed a few times a
    second (see `session.pump`)."""
    queue: asyncio.Queue[bytes] = field(init=False)
    behind: bool = False
    fresh: set[str] = field(default_factory=set)
    """Newly shown agents: they get a whole screen at the next frame, not a delta."""
    idle_write: Callable[[bytes], None] | None = None
    """Set while the connection's writer waits on an empty queue with nothing unsent: a
    line may be written straight away then, not a loop turn later (a key's echo)."""

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.depth)

    def wants(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents

    def shows(self, agent: str) -> bool:
        return agent in self.shown and self.wants(agent)


class FanOut:
    """Who is subscribed to what, and the one place events are encoded and queued."""

    def __init__(
        self,
        *,
        screen: Callable[[str, Iterable[int] | None], ScreenEvent | None],
        snapshot: Callable[[Subscriber, bool], list[Event]],
        set_shown: Callable[[str, bool, bool], None],
        rate: int = FRAME_RATE,
    ) -> None:
        self._screen = screen
        """The screen event of an agent's rows (all rows for None); None if it has no screen."""
        self._snapshot = snapshot
        self._set_shown = set_shown
        """Told `(agent, shown, glance)` when how an agent is shown changes."""
        self._rate = float(rate)
        self._tokens = float(FRAME_BURST)
        self.subscribers: set[Subscriber] = set()
        self._dirty: dict[str, set[int]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        """When the frame budget was last topped up (loop time)."""
        self._viewers: dict[str, int] = {}
        """Clients showing each agent."""
        self._watchers: dict[str, int] = {}
        """Clients showing each agent more than at a glance."""
        self._told: dict[str, bool] = {}
        """Each shown agent's glance flag as last told (absent: hidden)."""
        self._typed: dict[str, float] = {}
        """When each agent was last typed into (loop time)."""
        self._typed_frame: dict[str, float] = {}
        """When each typed-into agent's last frame of its own went out (loop time)."""
        self.resyncs = 0
        """Times a subscriber fell behind and was cut to a fresh snapshot."""

    # ---- subscribers -------------------------------------------------------------------------

    def add(self, subscriber: Subscriber) -> list[bytes]:
        """Register a subscriber; returns its first snapshot's lines, to write before events."""
        self.subscribers.add(subscriber)
        self._count(subscriber, +1)
        subscriber.fresh.clear()
        return self.snapshot_lines(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.discard(subscriber)
            self._count(subscriber, -1)

    def show(
        self, subscriber: Subscriber, agents: Iterable[str], glance: Iterable[str] = ()
    ) -> None:
        """The agents whose screens this subscriber shows from now on (`glance`: those of
        them it shows only at a glance)."""
        shown = frozenset(agents)
        counted = subscriber in self.subscribers
        if counted:
            self._count(subscriber, -1, tell=False)
        subscriber.fresh = (subscriber.fresh & shown) | (shown - subscriber.shown)
        before = subscriber.shown
        subscriber.shown = shown
        subscriber.glance = frozenset(glance) & shown
        if counted:
            self._count(subscriber, +1, tell=False)
            self._tell(before | shown)
        if subscriber.fresh:
            self._schedule()

    def shown_anywhere(self, agent: str) -> bool:
        return self._viewers.get(agent, 0) > 0

    def _count(self, subscriber: Subscriber, step: int, *, tell: bool = True) -> None:
        for agent in subscriber.shown:
            _bump(self._viewers, agent, step)
            if agent not in subscriber.glance:
                _bump(self._watchers, agent, step)
        if tell:
            self._tell(subscriber.shown)

    def _tell(self, agents: Iterable[str]) -> None:
        """Tell the host how each of `agents` is shown now, where that changed."""
        for agent in agents:
            shown = self._viewers.get(agent, 0) > 0
            glance = shown and not self._watchers.get(agent, 0)
            if self._told.get(agent) != (glance if shown else None):
                if shown:
                    self._told[agent] = glance
                else:
                    self._told.pop(agent, None)
                self._set_shown(agent, shown, glance)

    def snapshot_lines(self, subscriber: Subscriber, *, resync: bool = False) -> list[bytes]:
        """A snapshot marker, everything still true, and whole screens of what it shows."""
        lines = [encode_event(event) for event in self._snapshot(subscriber, resync)]
        for agent in sorted(subscriber.shown):
            if subscriber.wants(agent):
                event = self._screen(agent, None)
                if event is not None:
                    lines.append(encode_event(event))
        return lines

    # ---- events ------------------------------------------------------------------------------

    def publish(self, event: Event, agent: str | None = None) -> None:
        """Queue an event for every subscriber that wants `agent` (all of them for None)."""
        line: bytes | None = None
        for subscriber in list(self.subscribers):
            if agent is None or subscriber.wants(agent):
                line = line if line is not None else encode_event(event)
                self._offer(subscriber, line)

    def screen_changed(self, agent: str, rows: Iterable[int]) -> None:
        """Rows of `agent` changed: sent at the next frame to those who show it."""
        if not self.shown_anywhere(agent):
            return
        self._dirty.setdefault(agent, set()).update(rows)
        if not self._send_typed(agent):
            self._schedule()

    def typed(self, agent: str) -> None:
        """Keys were just sent to `agent`: its next screens go out at once (`TYPED_WINDOW`)."""
        self._typed[agent] = asyncio.get_running_loop().time()

    def _send_typed(self, agent: str) -> bool:
        """Send `agent`'s dirty rows now if it is being typed into and its own rate allows."""
        typed = self._typed.get(agent)
        if typed is None:
            return False
        now = asyncio.get_running_loop().time()
        if now - typed > TYPED_WINDOW:
            del self._typed[agent]
            self._typed_frame.pop(agent, None)
            return False
        if now - self._typed_frame.get(agent, -1.0) < 1.0 / TYPED_RATE:
            return False
        rows = self._dirty.pop(agent, set())
        viewers = [s for s in self.subscribers if s.shows(agent) and agent not in s.fresh]
        if viewers and (event := self._screen(agent, rows)) is not None:
            line = encode_event(event)
            for subscriber in viewers:
                self._offer(subscriber, line, direct=True)
        self._typed_frame[agent] = now
        return True

    def forget(self, agent: str) -> None:
        self._dirty.pop(agent, None)
        self._typed.pop(agent, None)
        self._typed_frame.pop(agent, None)

    def _schedule(self) -> None:
        """Send the next frame now if the budget allows (a token bucket), else when it does."""
        if self._flush is not None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._tokens = min(float(FRAME_BURST), self._tokens + (now - self._last_flush) * self._rate)
        self._last_flush = now
        if self._tokens >= FRAME_BURST - 1e-9:
            # After a quiet spell (a key's echo, mostly): now, not a loop turn later, where a
            # step of some hidden agent's emulation may be waiting first.
            self._send_frame()
            return
        delay = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate
        self._flush = loop.call_later(delay, self._send_frame)

    def _send_frame(self) -> None:
        self._flush = None
        now = asyncio.get_running_loop().time()
        self._tokens = min(float(FRAME_BURST), self._tokens + (now - self._last_flush) * self._rate)
        self._tokens -= 1.0
        self._last_flush = now
        dirty, self._dirty = self._dirty, {}
        for agent, rows in dirty.items():
            viewers = [s for s in self.subscribers if s.shows(agent) and agent not in s.fresh]
            if not viewers:
                continue
            event = self._screen(agent, rows)
            if event is None:
                continue
            line = encode_event(event)
            for subscriber in viewers:
                self._offer(subscriber, line, direct=True)
        for subscriber in list(self.subscribers):
            if not subscriber.fresh:
                continue
            for agent in sorted(subscriber.fresh):
                if subscriber.wants(agent) and (event := self._screen(agent, None)):
                    self._offer(subscriber, encode_event(event))
            subscriber.fresh.clear()

    def _offer(self, subscriber: Subscriber, line: bytes, *, direct: bool = False) -> None:
        """Queue `line` for the subscriber's writer; a screen frame (`direct`) is written at
        once to an idle connection. Other events keep to the queue, so events published
        together (an approval and its state) still go out in one write."""
        if subscriber.behind:
            return
        write = subscriber.idle_write
        if direct and write is not None and subscriber.queue.empty():
            subscriber.idle_write = None
            write(line)
            subscriber.queue.put_nowait(_DRAIN)
            return
        try:
            subscriber.queue.put_nowait(line)
        except asyncio.QueueFull:
            # Like tmux: drop what the reader missed and send it everything afresh instead.
            subscriber.behind = True
            self.resyncs += 1
            while not subscriber.queue.empty():
                subscriber.queue.get_nowait()
            subscriber.queue.put_nowait(_RESYNC)  # wakes the writer

    async def pump(
        self,
        subscriber: Subscriber,
        write: Callable[[bytes], None],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        """Copy the subscriber's queue to its connection until cancelled."""
        while True:
            if subscriber.queue.empty():
                subscriber.idle_write = write
            try:
                line = await subscriber.queue.get()
            finally:
                subscriber.idle_write = None
            if line == _DRAIN:
                pass  # written already, by `_offer`
            elif line == _RESYNC:
                subscriber.behind = False
                subscriber.fresh.clear()
                for fresh in self.snapshot_lines(subscriber, resync=True):
                    write(fresh)
            else:
                # What else is queued goes out in the same write: events published together
                # (an approval and its agent's state) reach the reader together.
                batch = [line]
                while not subscriber.queue.empty() and not subscriber.behind:
                    more = subscriber.queue.get_nowait()
                    if more == _RESYNC:
                        subscriber.queue.put_nowait(more)
                        break
                    if more != _DRAIN:
                        batch.append(more)
                write(batch[0] if len(batch) == 1 else b"".join(batch))
            await drain()


def _bump(counts: dict[str, int], agent: str, step: int) -> None:
    after = max(counts.get(agent, 0) + step, 0)
    if after:
        counts[agent] = after
    else:
        counts.pop(agent, None)
