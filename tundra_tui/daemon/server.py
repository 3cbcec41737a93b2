"""The per-town daemon: owns every agent's PTY and answers clients on a Unix socket.

A PTY dies with the process holding its master end (research P7), so agents
live here, not in the UI or the CLI: clients come and go, agents stay. The
daemon is composed of parts, each with one job: the transport (socket, frames,
concurrency), the fan-out (events and screens to clients), the approval book,
the gate (trust), the store writer, supervision, worktree leases, the team
(tundra.toml), the relay (host events to store and clients), the agent and
approval operations, the board operations, the usage watcher, the store tail
(what other processes wrote), dispatch and its hand-overs, and the town
operations (`at up`, `at down`, `at sling`). Every state change is also written
to the store, so a daemon that is killed leaves enough behind for the next one
to report what it lost, and to give back the beads it was handing over.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from tundra_tui import __version__
from tundra_tui.config import load_config
from tundra_tui.daemon.asks import AskOps
from tundra_tui.daemon.board import BoardOps
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.brake import BrakePart, SessionView
from tundra_tui.daemon.dispatcher import Dispatcher
from tundra_tui.daemon.fanout import SUBSCRIBER_QUEUE, FanOut, Subscriber
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.handover import Handover
from tundra_tui.daemon.leases import WorktreeLeases
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.mailroom import Mailroom
from tundra_tui.daemon.ops import AgentOps
from tundra_tui.daemon.peers import Peer
from tundra_tui.daemon.protocol import (
    ApprovalEvent,
    ApprovalInfo,
    Event,
    Ping,
    Pong,
    RemovedEvent,
    Reply,
    Request,
    ScreenEvent,
    Shutdown,
    Snapshot,
    Status,
    StatusReply,
    Stopping,
    StoreEvent,
    TroubleEvent,
)
from tundra_tui.daemon.refinery import Refinery
from tundra_tui.daemon.relay import Relay, state_event
from tundra_tui.daemon.reports import ReportOps
from tundra_tui.daemon.supervision import Supervision
from tundra_tui.daemon.tail import StoreTail
from tundra_tui.daemon.team import Team
from tundra_tui.daemon.town_ops import TownOps
from tundra_tui.daemon.transport import Caller, Handler, Transport
from tundra_tui.daemon.usage import UsageWatcher
from tundra_tui.daemon.witness import Witness
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store
from tundra_tui.town import Town

ACTOR = "daemon"
_LIVE = (AgentState.WORKING, AgentState.IDLE, AgentState.AWAITING_APPROVAL, AgentState.UNKNOWN)
QUIET_BACKLOG = 1000
"""Queued writes past which audit events about refused callers go to the log only."""


class Daemon:
    """The parts, put together, and their life: start, serve, stop."""

    def __init__(self, town: Town, store: Store, *, log: DaemonLog | None = None) -> None:
        self.town = town
        self.store = store
        self.log = log if log is not None else DaemonLog.open(town)
        self.started_at = time.time()
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue_depth = SUBSCRIBER_QUEUE
        self.host = SessionHost(
            store, actor=ACTOR, watch=lambda task, what: self.log.watch(task, what=what)
        )
        self.writer = StoreWriter(on_change=self._store_stalled, on_dropped=self._write_dropped)
        self.book = ApprovalBook(self.host, store, self.writer, actor=ACTOR)
        self.gate = Gate(self.host, self.book, self._refused)
        self.fanout = FanOut(
            screen=self._screen_event,
            snapshot=self._snapshot,
            set_shown=lambda name, shown, glance: self.host.set_shown(name, shown, glance=glance),
        )
        self.transport = Transport(
            serve=self._serve,
            fanout=self.fanout,
            log=self.log,
            refused=self._peer_refused,
            queue_depth=lambda: self._queue_depth,
        )
        self.leases = WorktreeLeases(town)
        self.supervision = Supervision(self.host, store, self.writer, self.log)
        self.team = Team(town, self.host, store, self.writer, self.log, self._forgotten)
        self.relay = Relay(
            host=self.host,
            store=store,
            writer=self.writer,
            fanout=self.fanout,
            supervision=self.supervision,
            leases=self.leases,
            log=self.log,
            own=self._own,
            removed=self.team.removed,
        )
        self.brake = BrakePart(
            store,
            town,
            self.publish,
            self.log,
            wake_dispatch=lambda why: self.dispatcher.wake(why),
            view=self._session_view,
            own=self._own,
            config=lambda: load_config(town),
        )
        self.usage = UsageWatcher(
            town, store, self.publish, self.log, brake=self.brake, host=self.host
        )
        self.brake.flush = self.usage.ingest  # read the logs to their end before a claim
        self._handlers: dict[type[Request], Handler] = {
            Ping: self._ping,
            Status: self._status,
            Shutdown: self._shutdown,
        }
        self.agent_ops = AgentOps(
            town=town,
            host=self.host,
            store=store,
            writer=self.writer,
            book=self.book,
            gate=self.gate,
            leases=self.leases,
            supervision=self.supervision,
            log=self.log,
            sync_roster=self.team.sync,
            own=self._own,
        )
        self._handlers |= self.agent_ops.handlers()
        self.agent_ops.typed = self.fanout.typed
        self.tail = StoreTail(town, store, self.log)
        self.mailroom = Mailroom(
            store, self.host, self.book, self.publish, self.log, self._own, gate=self.gate
        )
        self.witness = Witness(
            store,
            self.host,
            self.book,
            self.publish,
            self.log,
            self._own,
            wake_dispatch=lambda why: self.dispatcher.wake(why),
            config=lambda: load_config(town),
            offer_mail=self.mailroom.offer,
            on_purpose=lambda agent: self.dispatcher.retiring(agent),
        )
        self._handlers |= self.mailroom.handlers()  # Nudge: mail typed now, with its receipt
        self._handlers |= AskOps(
            self.host, store, self.writer, self.book, self.gate, mailroom=self.mailroom
        ).handlers()
        self._handlers |= BoardOps(town, store, self.publish, self.gate).handlers()
        self._handlers |= ReportOps(town, store, self.gate, self.publish).handlers()
        self.handover = Handover(
            town=town,
            store=store,
            host=self.host,
            book=self.book,
            agents=self.agent_ops,
            leases=self.leases,
            log=self.log,
            publish=self.publish,
        )
        self.dispatcher = Dispatcher(
            town, store, self.host, self.book, self.handover, self.publish, self.log, self._own
        )
        self._handlers |= TownOps(
            town=town,
            store=store,
            host=self.host,
            gate=self.gate,
            agents=self.agent_ops,
            dispatcher=self.dispatcher,
            handover=self.handover,
            log=self.log,
            publish=self.publish,
        ).handlers()
        self.refinery = Refinery(
            town,
            store,
            self.host,
            self.leases,
            self.gate,
            self.publish,
            self.log,
            self._own,
            wake_dispatch=lambda why: self.dispatcher.wake(why),
            offer_mail=self.mailroom.offer,
            config=lambda: load_config(town),
        )
        self._handlers |= self.refinery.handlers()
        self.dispatcher.holds_review = self.refinery.holding
        self.dispatcher.brake = self.brake
        self.relay.owned = self.dispatcher.owns
        self.host.subscribe(self.relay.on_host)
        self.book.subscribe(self.relay.on_book)
        self.host.subscribe(self.dispatcher.on_host)
        self.tail.subscribe(self.dispatcher.on_events)
        self.team.changed = self._config_changed
        self.host.subscribe(self.refinery.on_host)
        self.tail.subscribe(self.refinery.on_events)
        self.host.subscribe(self.mailroom.on_host)
        self.host.subscribe(self.witness.on_host)
        self.book.subscribe(self.witness.on_book)
        self.tail.subscribe(self.mailroom.on_events)
        self.tail.subscribe(self.witness.on_events)
        self.host.subscribe(self.brake.on_host)
        self.host.subscribe(self.usage.on_host)
        self.tail.subscribe(self.brake.on_events)
        self.tail.subscribe(self.usage.on_events)

    @property
    def subscribers(self) -> set[Subscriber]:
        return self.fanout.subscribers

    # ---- start and stop ----------------------------------------------------------------------

    async def serve(self) -> None:
        """Reconcile the store, listen on the socket and run until asked to stop."""
        config = load_config(self.town)
        self.host.max_ptys = int(config.get("general.max_ptys"))
        self.supervision.limits = (
            int(config.get("daemon.restart_max")),
            float(config.get("daemon.restart_window_seconds")),
        )
        self._queue_depth = int(config.get("daemon.subscriber_queue"))
        self.log.watch(self.writer.start(), what="store writer")
        await self.book.load()
        self.team.sync(config)
        await self.mark_lost()
        # Before the tail, the witness and dispatch start: the last daemon's agents died
        # with it, so its open dispatches go back to backlog (branch and notes kept).
        await self.dispatcher.recover()
        # Then the refinery's: a merge cut mid-way is finished or given up, by the target ref.
        await self.refinery.recover()
        self.mailroom.configure(config)
        self.witness.configure(config)
        await self.mailroom.recover()
        await self.witness.start()
        # The last daemon's launches ended with it; the brake is read before dispatch runs.
        await self.usage.close_stale_runs()
        await self.brake.refresh()
        path = self.town.socket_path
        await self.transport.listen(path)
        self.log.info("daemon.listening", socket=str(path), agents=len(config.agents()))
        # What start-up built lives as long as the daemon: out of the collector's sight, a
        # full collection no longer walks it (one took 35 ms of the loop under a flood).
        gc.collect()
        gc.freeze()
        background = [
            self.log.watch(asyncio.ensure_future(self.host.reap_orphans()), what="reaper"),
            self.log.watch(asyncio.ensure_future(self.team.watch(self.stopped)), what="team"),
            self.log.watch(asyncio.ensure_future(self.usage.run(self.stopped)), what="usage"),
            self.log.watch(asyncio.ensure_future(self.brake.run(self.stopped)), what="brake"),
            self.log.watch(asyncio.ensure_future(self.tail.run(self.stopped)), what="tail"),
            self.log.watch(
                asyncio.ensure_future(self.dispatcher.run(self.stopped)), what="dispatcher"
            ),
            self.log.watch(asyncio.ensure_future(self.refinery.run(self.stopped)), what="refinery"),
        ]
        await self.stopped.wait()
        self.transport.close()
        for task in background:
            task.cancel()
        await self.host.close()
        # Let the last state writes (agents now stopped) reach the store before exiting.
        await asyncio.gather(*self._tasks, *background, return_exceptions=True)
        unwritten = await self.writer.close(timeout=5.0)
        if unwritten:
            self.log.error("store.unwritten", error=self.writer.error, writes=unwritten)
        with contextlib.suppress(OSError):
            path.unlink()

    async def mark_lost(self) -> None:
        """Agents the store believes alive were owned by a daemon that died: say so."""
        for agent in await self.store.agents.live():
            if agent.state in _LIVE:
                self.writer.submit(
                    f"{agent.name} lost",
                    lambda agent=agent: self.store.agents.set_state(  # type: ignore[misc]
                        agent.name,
                        AgentState.LOST,
                        actor=ACTOR,
                        pid=agent.pid,
                        evidence={
                            "source": "process",
                            "rule": "daemon.restarted",
                            "matched": f"was {agent.state.value} under a daemon that is gone",
                        },
                    ),
                )

    def _config_changed(self) -> None:
        """tundra.toml changed: dispatch and the refinery (gates, target) look again."""
        self.refinery.wake("tundra.toml changed")
        self.usage.config_changed()
        self._own(self._reread())

    async def _reread(self) -> None:
        """The brake first: a lowered or new budget must hold the very next dispatch pass."""
        try:
            await self.brake.refresh()
        finally:
            self.dispatcher.wake("tundra.toml changed")

    def _own(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.log.watch(task, what=getattr(coroutine, "__qualname__", "task"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- serving -----------------------------------------------------------------------------

    async def _serve(self, request: Request, caller: Caller) -> Reply:
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TundraError(f"this daemon does not serve {type(request).__name__}")
        return await handler(request, caller)

    async def _ping(self, request: Ping, caller: Caller) -> Pong:
        return Pong(pid=os.getpid(), version=__version__)

    async def _status(self, request: Status, caller: Caller) -> StatusReply:
        return StatusReply(
            pid=os.getpid(),
            version=__version__,
            uptime=time.time() - self.started_at,
            town=str(self.town.root),
            live=self.host.live_count(),
            queued=self.host.queued(),
            subscribers=len(self.fanout.subscribers),
            pending_writes=self.writer.pending,
            store_error=self.writer.error,
            approvals=len(self.book.pending()),
            connections=self.transport.connections,
            resyncs=self.fanout.resyncs,
        )

    async def _shutdown(self, request: Shutdown, caller: Caller) -> Stopping:
        stopping = self.host.live_count()
        # Set here, not after the reply: a client that hangs up first must not cancel it.
        self.stopped.set()
        return Stopping(stopping=stopping)

    # ---- what clients are told ---------------------------------------------------------------

    def publish(self, event: Event, agent: str | None = None) -> None:
        """Send an event to every client subscribed to `agent` (to all for None)."""
        self.fanout.publish(event, agent)

    def _screen_event(self, agent: str, rows: Iterable[int] | None) -> ScreenEvent | None:
        try:
            # As drawn: every feed is followed by ScreenChanged, so deltas catch up; the
            # fan-out never emulates on its own time.
            emulator = self.host.session(agent).drawn
        except NotFound:
            return None
        wanted = range(emulator.rows) if rows is None else sorted(rows)
        return ScreenEvent(
            agent=agent,
            rows={
                y: emulator.line_cells(y)  # type: ignore[misc]
                for y in wanted
                if 0 <= y < emulator.rows
            },
            cursor=emulator.cursor,
            size=(emulator.columns, emulator.rows),
            full=rows is None,
        )

    def _snapshot(self, subscriber: Subscriber, resync: bool) -> list[Event]:
        """Everything still true for a new or resynced subscriber (screens come from the
        fan-out): the marker naming every agent, each one's state and trouble, approvals
        still waiting, a store in trouble."""
        sessions = [s for s in self.host.sessions() if subscriber.wants(s.name)]
        events: list[Event] = [Snapshot(resync=resync, agents=[s.name for s in sessions])]
        for session in sessions:
            events.append(state_event(session.name, session.state, {}))
            if session.trouble:
                events.append(TroubleEvent(agent=session.name, kind=session.trouble))
        events += [
            ApprovalEvent(approval=ApprovalInfo.of(a))
            for a in self.book.pending()
            if subscriber.wants(a.agent)
        ]
        if self.writer.error:
            events.append(StoreEvent(pending=self.writer.pending, error=self.writer.error))
        events += self.refinery.standing()
        events += self.brake.standing()
        return events

    def _session_view(self, agent: str) -> SessionView | None:
        """What the brake needs of a live agent: its state, trouble and screen."""
        try:
            session = self.host.session(agent)
        except NotFound:
            return None
        return SessionView(
            state=session.state,
            trouble=session.trouble,
            screen="\n".join(session.screen_lines()),
            runtime=session.config.adapter.runtime,
        )

    def _forgotten(self, agent: str) -> None:
        self.supervision.forget(agent)
        self.gate.forget(agent)
        self.fanout.forget(agent)
        self.publish(RemovedEvent(agent=agent), agent)

    def _store_stalled(self, pending: int, error: str) -> None:
        """Writes are waiting on the store (or flow again): every client is told."""
        if error:
            self.log.warning("store.waiting", error=error, pending=pending)
        else:
            self.log.info("store.recovered")
        self.publish(StoreEvent(pending=pending, error=error))

    def _write_dropped(self, what: str, error: BaseException) -> None:
        self.log.error("store.write_failed", error=error, what=what)
        self._refused("daemon.write_failed", {"what": what, "error": str(error)[:500]})

    def _peer_refused(self, peer: Peer) -> None:
        data = {"pid": peer.pid, "uid": peer.uid}
        self.log.warning("peer.refused", **data)
        self._refused("daemon.peer_refused", data)

    def _refused(self, kind: str, data: Mapping[str, Any]) -> None:
        """An audit event about a refused caller. Each is a log line already; the store gets
        it too unless writes are piling up (a flood of refusals must not grow the queue)."""
        if self.writer.pending < QUIET_BACKLOG:
            kept = dict(data)
            self.writer.submit(kind, lambda: self.store.events.record(kind, actor=ACTOR, data=kept))
