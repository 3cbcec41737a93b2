"""The per-town daemon: owns every agent's PTY and answers clients on a Unix socket.

A PTY dies with the process holding its master end (research P7), so agents
live here, not in the UI or the CLI: clients come and go, agents stay. Every
state change is also written to the store, so a daemon that is killed leaves
enough behind for the next one to report what it lost.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from tundra_tui import __version__
from tundra_tui.config import command_trust_problem, load_config
from tundra_tui.daemon.book import ApprovalBook, BookEvent
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.peers import (
    HOOK_SECRET_ENV,
    Peer,
    inside,
    inside_an_agent,
    new_hook_secret,
    peer_of,
    secret_matches,
)
from tundra_tui.daemon.protocol import ProtocolError, decode, encode, parse_request
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.approvals import Approval
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.orchestra.supervisor import RestartPolicy
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.session.events import (
    ApprovalRequested,
    ApprovalResolved,
    Exited,
    HostEvent,
    ScreenChanged,
    StateChanged,
    Trouble,
)
from tundra_tui.session.hooks import (
    CODEX_NOTIFY,
    PERMISSION_EVENT,
    PERMISSION_TIMEOUT_S,
    permission_ask,
    state_payload,
)
from tundra_tui.session.host import SessionHost
from tundra_tui.session.launch import agent_config
from tundra_tui.store import RosterEntry, Store
from tundra_tui.town import Town

ACTOR = "daemon"
SUBSCRIBER_QUEUE = 512
"""Messages a subscriber may fall behind by before its stream is cut to a fresh screen."""
_RESYNC: dict[str, Any] = {"event": "resync"}
"""Queued in place of everything a slow subscriber missed."""
_LIVE = (AgentState.WORKING, AgentState.IDLE, AgentState.AWAITING_APPROVAL, AgentState.UNKNOWN)
_QUIET_OPS = frozenset({"ping", "status", "agents", "screen", "send_keys", "resize", "approvals"})
"""Operations too frequent (polls, keystrokes) to log when they succeed."""
QUIET_BACKLOG = 1000
"""Queued writes past which audit events about refused callers go to the log only."""
_UNKNOWN = Peer(None, None)
_CALLER: contextvars.ContextVar[Peer] = contextvars.ContextVar("caller", default=_UNKNOWN)
"""The peer of the connection whose request is being served (one task per connection)."""
_INSIDE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("inside", default=None)
"""Whether that peer runs inside an agent, once it has been worked out."""


@dataclass(eq=False)
class Subscriber:
    """One client's event stream, bounded: a slow reader is resynced, never buffered."""

    agents: frozenset[str] | None
    screens: bool
    depth: int = SUBSCRIBER_QUEUE
    queue: asyncio.Queue[dict[str, Any]] = field(init=False)
    behind: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.depth)

    def wants(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents


class Daemon:
    """The server side: the session host, the store, and every connected client."""

    def __init__(self, town: Town, store: Store, *, log: DaemonLog | None = None) -> None:
        self.town = town
        self.store = store
        self.log = log if log is not None else DaemonLog.open(town)
        self.host = SessionHost(
            store, actor=ACTOR, watch=lambda task, what: self.log.watch(task, what=what)
        )
        self.started_at = time.time()
        self.subscribers: set[Subscriber] = set()
        self.stopped = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._worktrees: dict[str, tuple[Worktrees, Path]] = {}
        self._policies: dict[str, RestartPolicy] = {}
        self._queue_depth = SUBSCRIBER_QUEUE
        self._restart_limits = (5, 300.0)
        self._hook_secrets: dict[str, str] = {}
        self.writer = StoreWriter(on_change=self._store_stalled, on_dropped=self._write_dropped)
        self.book = ApprovalBook(self.host, store, self.writer, actor=ACTOR)
        self.host.subscribe(self._on_host_event)
        self.book.subscribe(self._on_book_event)

    # ---- start and stop ----------------------------------------------------------------------

    async def serve(self) -> None:
        """Reconcile the store, listen on the socket and run until asked to stop."""
        config = load_config(self.town)
        self.host.max_ptys = int(config.get("general.max_ptys"))
        self._restart_limits = (
            int(config.get("daemon.restart_max")),
            float(config.get("daemon.restart_window_seconds")),
        )
        self._queue_depth = int(config.get("daemon.subscriber_queue"))
        self.log.watch(self.writer.start(), what="store writer")
        await self.book.load()
        self._sync_roster(config)
        await self.mark_lost()
        path = self.town.socket_path
        self._server = await asyncio.start_unix_server(self._client, path=str(path))
        os.chmod(path, 0o600)
        self.log.info("daemon.listening", socket=str(path), agents=len(config.agents()))
        reaper = self.log.watch(asyncio.ensure_future(self.host.reap_orphans()), what="reaper")
        watcher = self.log.watch(asyncio.ensure_future(self._watch_team()), what="team watcher")
        await self.stopped.wait()
        self._server.close()
        reaper.cancel()
        watcher.cancel()
        await self.host.close()
        # Let the last state writes (agents now stopped) reach the store before exiting.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        unwritten = await self.writer.close(timeout=5.0)
        if unwritten:
            self.log.error("store.unwritten", error=self.writer.error, writes=unwritten)
        with contextlib.suppress(OSError):
            path.unlink()

    def _sync_roster(self, config: Any) -> None:
        """Make the store's agent list follow tundra.toml (queued like every daemon write)."""
        roster = [RosterEntry(s.name, s.role, s.runtime, s.model) for s in config.agents().values()]
        self.writer.submit("roster", lambda: self.store.agents.sync_roster(roster, actor=ACTOR))

    async def _watch_team(self) -> None:
        """An agent added to (or removed from) tundra.toml is known at once, not at restart."""
        name = self.town.config_path.name

        def ours(_change: watchfiles.Change, path: str) -> bool:
            return Path(path).name == name

        async for _changes in watchfiles.awatch(
            self.town.root, watch_filter=ours, recursive=False, stop_event=self.stopped
        ):
            try:
                config = load_config(self.town)
            except TundraError as error:
                self.log.warning("team.unreadable", error=error)
                continue
            self._sync_roster(config)
            self._forget_removed(set(config.agents()))

    def _team(self) -> set[str] | None:
        """The agents tundra.toml names now; None while it cannot be read."""
        try:
            return set(load_config(self.town).agents())
        except TundraError:
            return None

    def _forget_removed(self, team: set[str]) -> None:
        """An agent taken out of tundra.toml leaves every list once it no longer runs."""
        for session in self.host.sessions():
            if session.name not in team and self.host.forget(session.name):
                self._policies.pop(session.name, None)
                self._hook_secrets.pop(session.name, None)
                self.log.info("agent.removed", agent=session.name)
                self._broadcast(session.name, {"event": "removed", "agent": session.name})

    def _store_stalled(self, pending: int, error: str) -> None:
        """Writes are waiting on the store (or flow again): every client is told."""
        if error:
            self.log.warning("store.waiting", error=error, pending=pending)
        else:
            self.log.info("store.recovered")
        message = {"event": "store", "pending": pending, "error": error}
        for subscriber in list(self.subscribers):
            self._offer(subscriber, message)

    def _write_dropped(self, what: str, error: BaseException) -> None:
        self.log.error("store.write_failed", error=error, what=what)
        self._own(
            self._record_quietly("daemon.write_failed", {"what": what, "error": str(error)[:500]})
        )

    async def _record_quietly(self, kind: str, data: dict[str, Any]) -> None:
        """An audit event about a refused caller. Each is a log line already; the store gets
        it too unless writes are piling up (a flood of refusals must not grow the queue)."""
        if self.writer.pending < QUIET_BACKLOG:
            self.writer.submit(kind, lambda: self.store.events.record(kind, actor=ACTOR, data=data))

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

    def _own(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.log.watch(task, what=getattr(coroutine, "__qualname__", "task"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- host events -------------------------------------------------------------------------

    def _on_host_event(self, event: HostEvent) -> None:
        if isinstance(event, StateChanged):
            self._record_state(event)
            self._broadcast(
                event.agent,
                {
                    "event": "state",
                    "agent": event.agent,
                    "state": event.state.value,
                    "glyph": event.state.glyph,
                    "evidence": event.evidence,
                },
            )
        elif isinstance(event, ScreenChanged):
            self._broadcast_screen(event)
        elif isinstance(event, Trouble):
            data = {"kind": event.kind or "cleared", "matched": event.matched}
            self.writer.submit(
                f"{event.agent} trouble",
                lambda: self.store.events.record(
                    "agent.trouble", actor=ACTOR, agent=event.agent, data=data
                ),
            )
            self._broadcast(
                event.agent,
                {
                    "event": "trouble",
                    "agent": event.agent,
                    "kind": event.kind,
                    "matched": event.matched,
                },
            )
        elif isinstance(event, Exited):
            status = self.host.session(event.agent).exit_status
            self.log.info("agent.exited", agent=event.agent, exit=status and status.describe())
            self._own(self._release_worktree(event.agent))
            team = self._team()
            removed = team is not None and event.agent not in team
            if self.host.session(event.agent).state is AgentState.FAILED and not removed:
                self._own(self._supervise(event.agent))  # a crash: not a stop, not `exit`
            self._broadcast(
                event.agent,
                {
                    "event": "exited",
                    "agent": event.agent,
                    "code": event.code,
                    "signal": event.signal,
                },
            )
            if removed:
                self._forget_removed(team or set())

    def _on_book_event(self, event: BookEvent) -> None:
        """Requests opened, upgraded or closed: one message each, to every client."""
        if isinstance(event, ApprovalRequested):
            approval = event.approval
            self.log.info(
                "approval.requested",
                agent=approval.agent,
                id=approval.id,
                source=approval.source.value,
                tool=approval.tool,
            )
            self._broadcast(event.approval.agent, approval_message(event.approval))
        elif isinstance(event, ApprovalResolved):
            approval = event.approval
            self.log.info(
                f"approval.{approval.status.value}",
                agent=approval.agent,
                id=approval.id,
                by=approval.decided_by,
            )
            self._broadcast(
                event.approval.agent,
                approval_message(event.approval, kind="approval_resolved"),
            )

    def _gate(self, target: str, *, raw: bool) -> Callable[[], None] | None:
        """Check input for `target` from the caller now; for an agent's input, also the
        check to repeat right before each write (a prompt may open while it is typed)."""
        from_agent = self._caller_inside()
        self.book.check_input(target, from_agent=from_agent, raw=raw)
        if not from_agent:
            return None
        return lambda: self.book.check_input(target, from_agent=True, raw=raw)

    def _caller_inside(self) -> bool:
        """Whether this connection's peer runs inside an agent, worked out once per
        connection (keystrokes come many a second). A process's ancestry only changes by
        its parent dying, which leaves it an orphan of ours: inside, as cached or not."""
        known = _INSIDE.get()
        if known is None:
            peer = _CALLER.get()
            known = inside_an_agent(peer.pid, (x.pid for x in self.host.sessions() if x.pid))
            _INSIDE.set(known)
        return known

    def _policy(self, name: str) -> RestartPolicy:
        if name not in self._policies:
            most, window = self._restart_limits
            self._policies[name] = RestartPolicy(max_restarts=most, window=window)
        return self._policies[name]

    async def _supervise(self, name: str) -> None:
        """A crashed agent is started again after a growing delay, or left failed, visibly."""
        session = self.host.session(name)
        status = session.exit_status
        decision = self._policy(name).exited(
            time.monotonic(),
            code=status.code if status else None,
            signal=status.signal if status else None,
        )
        data = {"restart": decision.restart, "delay": decision.delay, "reason": decision.reason}
        self.writer.submit(
            f"{name} crashed",
            lambda: self.store.events.record("agent.crashed", actor=ACTOR, agent=name, data=data),
        )
        if not decision.restart:
            self.log.error("agent.gave_up", agent=name, error=decision.reason)
            session.set_state(
                AgentState.FAILED,
                {"source": "supervisor", "rule": "supervisor.gave_up", "matched": decision.reason},
            )
            return
        await asyncio.sleep(decision.delay)
        current = self.host.session(name)
        if current is session and session.exit_status is not None:  # nobody restarted it
            self._policy(name).started(time.monotonic())
            with contextlib.suppress(TundraError):
                await self.host.start(session.config)

    def _record_state(self, event: StateChanged) -> None:
        try:
            session = self.host.session(event.agent)
        except NotFound:
            return
        exit_status = session.exit_status
        # Kept on every change, so a daemon that is killed leaves each agent's last
        # screen behind for the next one to show (the store redacts secrets in it). Read
        # when the write is made, so writes kept for a locked store hold no screen each.
        pid = session.pid
        self.writer.submit(
            f"{event.agent} {event.state.value}",
            lambda: self.store.agents.set_state(
                event.agent,
                event.state,
                actor=ACTOR,
                pid=pid,
                exit_status=exit_status.code if exit_status is not None else None,
                evidence=event.evidence,
                last_screen=session.emulator.text(),
            ),
        )

    def _broadcast(self, agent: str, message: dict[str, Any]) -> None:
        for subscriber in list(self.subscribers):
            if subscriber.wants(agent):
                self._offer(subscriber, message)

    def _broadcast_screen(self, event: ScreenChanged) -> None:
        interested = [s for s in self.subscribers if s.screens and s.wants(event.agent)]
        if not interested:
            return
        message = self._rows_message(event.agent, sorted(event.rows))
        for subscriber in interested:
            self._offer(subscriber, message)

    def _offer(self, subscriber: Subscriber, message: dict[str, Any]) -> None:
        if subscriber.behind:
            return
        try:
            subscriber.queue.put_nowait(message)
        except asyncio.QueueFull:
            # Like tmux: drop what the reader missed and send it a whole screen instead.
            subscriber.behind = True
            while not subscriber.queue.empty():
                subscriber.queue.get_nowait()
            subscriber.queue.put_nowait(_RESYNC)  # wakes the writer

    def _rows_message(self, agent: str, rows: list[int]) -> dict[str, Any]:
        emulator = self.host.session(agent).emulator
        return {
            "event": "screen",
            "agent": agent,
            "rows": {
                str(y): [list(run) for run in emulator.line_cells(y)]
                for y in rows
                if 0 <= y < emulator.rows
            },
            "cursor": list(emulator.cursor),
            "size": [emulator.columns, emulator.rows],
        }

    def full_screen(self, agent: str) -> dict[str, Any]:
        """Every row of an agent's screen, for a new or resynced subscriber."""
        emulator = self.host.session(agent).emulator
        message = self._rows_message(agent, list(range(emulator.rows)))
        message["full"] = True
        return message

    # ---- clients -----------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_of(writer)
            # Only the user who owns the town may talk to its daemon.
            if peer.uid is not None and peer.uid != os.getuid():
                writer.write(encode({"id": 0, "ok": False, "error": "permission denied"}))
                data = {"pid": peer.pid, "uid": peer.uid}
                self.log.warning("peer.refused", **data)
                self._own(self._record_quietly("daemon.peer_refused", data))
                return
            _CALLER.set(peer)
            _INSIDE.set(None)
            while line := await reader.readline():
                try:
                    request = parse_request(decode(line))
                except ProtocolError as error:
                    writer.write(encode({"id": 0, "ok": False, "error": str(error)}))
                    await writer.drain()
                    return
                if request.op == "subscribe":
                    await self._stream(request.id, request.args, reader, writer)
                    return
                if request.op == "hook":
                    answered = await self._serve_unless_hung_up(request, peer, reader)
                    if answered is None:
                        return
                    reply = answered
                else:
                    reply = await self._serve(request.id, request.op, request.args, peer)
                if request.op == "shutdown":
                    # Before the reply: a client that hangs up first must not cancel the stop.
                    self.stopped.set()
                writer.write(encode(reply))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away mid-line; nothing of ours depends on it
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, request_id: int, op: str, args: dict[str, Any], peer: Peer
    ) -> dict[str, Any]:
        """Run one operation; every failure is one reply line and one log line."""
        started = time.monotonic()
        agent = args.get("name") if isinstance(args.get("name"), str) else None
        try:
            if op in ("approve", "deny") and self._caller_inside():
                self.log.warning("approval.refused", op=op, pid=peer.pid)
                raise TundraError(
                    "approvals are answered by the operator, not from an agent's terminal"
                )
            result = await self._dispatch(op, args)
        except TundraError as error:
            self.log.warning(op=op, agent=agent, error=error, duration_ms=_ms(started))
            return {"id": request_id, "ok": False, "error": str(error)}
        except (KeyError, TypeError, ValueError) as error:
            # A malformed argument is the caller's mistake: say so, keep the connection.
            self.log.warning(op=op, agent=agent, error=error, duration_ms=_ms(started))
            return {"id": request_id, "ok": False, "error": f"bad request: {error!r}"}
        except Exception as error:
            self.log.exception(op=op, agent=agent, duration_ms=_ms(started))
            return {"id": request_id, "ok": False, "error": f"internal error: {error!r}"}
        if op not in _QUIET_OPS:
            self.log.info(op=op, agent=agent, duration_ms=_ms(started))
        return {"id": request_id, "ok": True, "result": result}

    async def _serve_unless_hung_up(
        self, request: Any, peer: Peer, reader: asyncio.StreamReader
    ) -> dict[str, Any] | None:
        """A hook waits here for the operator; if its process goes away (killed, timed out
        by its agent), its request is closed at once rather than an hour later. None when
        the caller hung up."""
        serving = asyncio.ensure_future(self._serve(request.id, request.op, request.args, peer))
        hung_up = asyncio.ensure_future(reader.read(1))
        done, _ = await asyncio.wait({serving, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        if serving in done:
            hung_up.cancel()
            return serving.result()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        return None

    async def _stream(
        self,
        request_id: int,
        args: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        names = args.get("agents")
        subscriber = Subscriber(
            agents=frozenset(names) if isinstance(names, list) else None,
            screens=bool(args.get("screens", False)),
            depth=self._queue_depth,
        )
        self.subscribers.add(subscriber)
        # A subscriber sends nothing more: reading EOF means it hung up, even when no
        # event would ever have been written to find that out.
        hung_up = asyncio.ensure_future(reader.read())
        try:
            writer.write(encode({"id": request_id, "ok": True, "result": "subscribed"}))
            writer.write(encode({"event": "snapshot"}))
            for message in self._snapshot(subscriber):
                writer.write(encode(message))
            await writer.drain()
            while True:
                getter = asyncio.ensure_future(subscriber.queue.get())
                done, _ = await asyncio.wait({getter, hung_up}, return_when=asyncio.FIRST_COMPLETED)
                if hung_up in done:
                    getter.cancel()
                    return
                message = getter.result()
                if message is _RESYNC:
                    subscriber.behind = False
                    # Each snapshot starts with a marker: a client drops what it held, even
                    # when two snapshots follow each other.
                    writer.write(encode({"event": "snapshot", "resync": True}))
                    for fresh in self._snapshot(subscriber):
                        writer.write(encode({**fresh, "resync": True}))
                else:
                    writer.write(encode(message))
                await writer.drain()
        finally:
            hung_up.cancel()
            self.subscribers.discard(subscriber)

    def _snapshot(self, subscriber: Subscriber) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for session in self.host.sessions():
            if not subscriber.wants(session.name):
                continue
            messages.append(
                {
                    "event": "state",
                    "agent": session.name,
                    "state": session.state.value,
                    "glyph": session.state.glyph,
                    "evidence": {},
                }
            )
            if subscriber.screens:
                messages.append(self.full_screen(session.name))
        # Approvals still waiting, so a client that was resynced misses none.
        messages += [approval_message(a) for a in self.book.pending() if subscriber.wants(a.agent)]
        if self.writer.error:
            messages.append(
                {"event": "store", "pending": self.writer.pending, "error": self.writer.error}
            )
        return messages

    async def _dispatch(self, op: str, args: dict[str, Any]) -> Any:
        handler: Callable[[dict[str, Any]], Awaitable[Any]] = getattr(self, f"op_{op}")
        return await handler(args)

    # ---- operations --------------------------------------------------------------------------

    async def op_ping(self, args: dict[str, Any]) -> Any:
        return {"pid": os.getpid(), "version": __version__}

    async def op_status(self, args: dict[str, Any]) -> Any:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime": time.time() - self.started_at,
            "town": str(self.town.root),
            "live": self.host.live_count(),
            "queued": self.host.queued(),
            "subscribers": len(self.subscribers),
            "pending_writes": self.writer.pending,
            "store_error": self.writer.error,
            "approvals": len(self.book.pending()),
        }

    async def op_approvals(self, args: dict[str, Any]) -> Any:
        """What is waiting for the operator, from the book itself: every client agrees."""
        return [approval_fields(a) for a in self.book.pending()]

    async def op_agents(self, args: dict[str, Any]) -> Any:
        now = time.monotonic()
        return [
            {
                "name": s.name,
                "state": s.state.value,
                "glyph": s.state.glyph,
                "runtime": s.adapter.runtime.value,
                "pid": s.pid,
                "uptime": now - s.started_at if s.pid else None,
                "exit": s.exit_status.describe() if s.exit_status else None,
                "rss_kib": _rss_kib(s.pid),
                "cpu_seconds": _cpu_seconds(s.pid),
                "trouble": s.trouble,
            }
            for s in self.host.sessions()
        ]

    async def op_spawn(self, args: dict[str, Any]) -> Any:
        name = _name(args)
        config = load_config(self.town)
        specs = config.agents()
        if name not in specs:
            raise NotFound(f"no agent {name!r} in tundra.toml (see `at agent list`)")
        spec = specs[name]
        # Whoever can write the file that names what an agent runs would run code as us.
        problem = command_trust_problem(config, name)
        if problem is not None:
            self.log.error("agent.refused", agent=name, error=problem)
            raise TundraError(problem)
        # Known to the store before its first state is written, even if it was added to
        # tundra.toml a moment ago.
        self._sync_roster(config)
        settings = config.get("runtimes").get(spec.runtime.value, {})
        launch = agent_config(
            spec,
            self.town,
            runtime_settings=settings,
            cwd=await self._workdir(name, spec.worktree, args, _bead(args)),
            scrollback=int(config.get("ui.terminal_scrollback_lines")),
        )
        secret = new_hook_secret()
        launch = dataclasses.replace(
            launch,
            launch=dataclasses.replace(
                launch.launch, env={**launch.launch.env, HOOK_SECRET_ENV: secret}
            ),
        )
        policy = self._policy(name)
        policy.reset()
        policy.started(time.monotonic())
        state = await self.host.start(launch)
        self._hook_secrets[name] = secret
        task = args.get("task")
        if isinstance(task, str) and task.strip():
            self._own(self._deliver_when_idle(name, task))
        return {"name": name, "state": state.value, "cwd": str(launch.launch.cwd)}

    async def _deliver_when_idle(self, name: str, text: str, timeout: float = 120.0) -> None:
        """Give a freshly started agent its first task once it is at its prompt."""
        session = self.host.session(name)
        if await session.wait_for(lambda state: state is AgentState.IDLE, timeout):
            delivery = await self.host.send_text(name, text)
            data = {"delivered": delivery.delivered, "chars": len(text)}
            self.writer.submit(
                f"{name} task",
                lambda: self.store.events.record("agent.task", actor=ACTOR, agent=name, data=data),
            )

    def _check_hook_caller(self, agent: str, args: dict[str, Any]) -> None:
        """A hook report speaks for one agent: it must come from inside that agent's own
        process tree and carry the secret that agent was started with."""
        try:
            session = self.host.session(agent)
        except NotFound:
            raise TundraError(f"agent {agent!r} is not running here") from None
        pty = session.pty
        caller = _CALLER.get()
        from_inside = pty is not None and inside(caller.pid, session.pid, pty.mark)
        expected = self._hook_secrets.get(agent, "")
        if not from_inside or not secret_matches(args.get("secret"), expected):
            data = {"agent": agent, "pid": caller.pid, "event": str(args.get("event", ""))[:100]}
            self._own(self._record_quietly("daemon.hook_refused", data))
            raise TundraError(f"refused: this hook report does not come from agent {agent!r}")

    async def op_hook(self, args: dict[str, Any]) -> Any:
        """An agent's hook reporting: state events return at once; a PermissionRequest
        waits here for the operator's answer (or the timeout, which denies)."""
        agent = _name(args)
        event = str(args.get("event", ""))
        payload = args.get("payload")
        if not isinstance(payload, dict):
            raise TundraError("a hook report needs a JSON object payload")
        self._check_hook_caller(agent, args)
        if event == CODEX_NOTIFY:
            used = self.host.codex_notify(agent, payload)
            data = {"type": str(payload.get("type", ""))[:100], "used": used}
            self.writer.submit(
                f"{agent} notify",
                lambda: self.store.events.record(
                    "agent.notify", actor=agent, agent=agent, data=data
                ),
            )
            return {"used": used}
        if event != PERMISSION_EVENT:
            kept = state_payload(event, payload)
            self.writer.submit(
                f"{agent} hook",
                lambda: self.store.events.record("agent.hook", actor=agent, agent=agent, data=kept),
            )
            self.host.hook_state(agent, event, payload)
            return {}
        ask = permission_ask(payload)
        evidence = {
            "source": "hook",
            "rule": "claude.hook.permission_request",
            "matched": f"{ask.tool}: {ask.subject[:200]}",
        }
        timeout = float(args.get("timeout", PERMISSION_TIMEOUT_S - 60))
        decided = await self.book.hook_request(agent, ask, evidence, timeout)
        allowed = decided.status.value == "approved"
        return {"allow": allowed, "status": decided.status.value}

    async def op_nudge(self, args: dict[str, Any]) -> Any:
        """Deliver a short message now: interrupt a working agent, never type over a prompt."""
        name = _name(args)
        text = str(args.get("text", ""))
        gate = self._gate(name, raw=False)
        session = self.host.session(name)
        if session.state is AgentState.AWAITING_APPROVAL:
            return {"delivered": False, "reason": "it is waiting for an approval"}
        if session.state is AgentState.WORKING:
            self.host.interrupt(name)
            await session.wait_for(lambda state: state is AgentState.IDLE, 10.0)
        if session.state is not AgentState.IDLE:
            return {"delivered": False, "reason": f"it is {session.state.value}"}
        delivery = await self.host.send_text(name, text, gate=gate)
        return {"delivered": delivery.delivered, "reason": delivery.evidence}

    async def _workdir(
        self, name: str, wants_worktree: bool, args: dict[str, Any], bead: int | None
    ) -> Path:
        """The agent's own locked worktree when it asks for one, else the given or town dir."""
        if not wants_worktree:
            return _cwd(args, self.town.root)
        worktrees = await asyncio.to_thread(Worktrees, self.town.root, self.town.worktrees_dir)
        mine = [
            w
            for w in await asyncio.to_thread(worktrees.list)
            if w.agent == name and w.bead_id == bead
        ]
        if mine:
            path = mine[0].path
            if not mine[0].locked:
                await asyncio.to_thread(worktrees.lock, path, _lock_reason(name))
        else:
            path = (await asyncio.to_thread(worktrees.create, name, bead)).path
        self._worktrees[name] = (worktrees, path)
        return path

    async def _release_worktree(self, name: str) -> None:
        """An agent that is no longer running no longer pins its worktree."""
        held = self._worktrees.pop(name, None)
        if held is not None:
            worktrees, path = held
            with contextlib.suppress(TundraError):
                await asyncio.to_thread(worktrees.unlock, path)

    async def op_stop(self, args: dict[str, Any]) -> Any:
        status = await self.host.stop(_name(args), float(args.get("grace", 3.0)))
        return {"exit": status.describe() if status else None}

    async def op_restart(self, args: dict[str, Any]) -> Any:
        state = await self.host.restart(_name(args))
        return {"state": state.value}

    async def op_send_text(self, args: dict[str, Any]) -> Any:
        name = _name(args)
        delivery = await self.host.send_text(
            name, str(args.get("text", "")), gate=self._gate(name, raw=False)
        )
        return {
            "delivered": delivery.delivered,
            "attempts": delivery.attempts,
            "evidence": delivery.evidence,
        }

    async def op_send_keys(self, args: dict[str, Any]) -> Any:
        data = base64.b64decode(str(args.get("data", "")), validate=True)
        name = _name(args)
        self._gate(name, raw=True)
        self.host.send_keys(name, data)
        self.book.operator_typed(name, data)
        return {"sent": len(data)}

    async def op_resize(self, args: dict[str, Any]) -> Any:
        # A terminal made small enough cuts a prompt off the screen it is read from.
        if self._caller_inside():
            raise TundraError("agents' terminals are sized by the operator, not from an agent")
        self.host.resize(_name(args), int(args["columns"]), int(args["rows"]))
        return {}

    async def op_approve(self, args: dict[str, Any]) -> Any:
        approval = await self.book.approve(_approval_id(args), actor=_actor(args), seen=_seen(args))
        return approval_fields(approval)

    async def op_deny(self, args: dict[str, Any]) -> Any:
        approval = await self.book.deny(_approval_id(args), actor=_actor(args), seen=_seen(args))
        return approval_fields(approval)

    async def op_screen(self, args: dict[str, Any]) -> Any:
        name = _name(args)
        try:
            session = self.host.session(name)
        except NotFound:
            # Not running here (stopped, or lost with a previous daemon): the stored screen.
            agent = await self.store.agents.get(name)
            return {
                "lines": (await self.store.agents.last_screen(name)).splitlines(),
                "cursor": [0, 0],
                "title": "",
                "state": agent.state.value,
                "stored": True,
            }
        emulator = session.emulator
        return {
            "lines": [emulator.line_text(y) for y in range(emulator.rows)],
            "cursor": list(emulator.cursor),
            "title": emulator.title,
            "state": session.state.value,
        }

    async def op_shutdown(self, args: dict[str, Any]) -> Any:
        return {"stopping": self.host.live_count()}


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def approval_fields(approval: Approval) -> dict[str, Any]:
    """One approval as every client reads it (the CLI, the TUI, `at approvals --json`)."""
    return {
        "id": approval.id,
        "agent": approval.agent,
        "runtime": approval.runtime,
        "status": approval.status.value,
        "subject": approval.subject,
        "tool": approval.tool,
        "cwd": approval.cwd,
        "source": approval.source.value,
        "evidence": approval.evidence,
        "created_at": approval.created_at,
        "decided_at": approval.decided_at,
        "decided_by": approval.decided_by,
    }


def approval_message(approval: Approval, *, kind: str = "approval") -> dict[str, Any]:
    """An `approval` (opened or upgraded in place) or `approval_resolved` event."""
    return {"event": kind, **approval_fields(approval)}


def _approval_id(args: dict[str, Any]) -> int:
    value = args.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TundraError("this operation needs an approval id (a number)")
    return value


def _seen(args: dict[str, Any]) -> str | None:
    """The subject the operator was shown, when the client says: an answer applies to it only."""
    seen = args.get("seen")
    return seen if isinstance(seen, str) else None


def _actor(args: dict[str, Any]) -> str:
    actor = args.get("actor")
    return actor if isinstance(actor, str) and actor else "operator"


def _name(args: dict[str, Any]) -> str:
    name = args.get("name")
    if not isinstance(name, str) or not name:
        raise TundraError("this operation needs an agent name")
    return name


def _bead(args: dict[str, Any]) -> int | None:
    bead = args.get("bead")
    return bead if isinstance(bead, int) else None


def _cwd(args: dict[str, Any], default: Path) -> Path:
    cwd = args.get("cwd")
    return Path(cwd) if isinstance(cwd, str) and cwd else Path(default)


def _cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time a process has used, from /proc (None once it is gone)."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _rss_kib(pid: int | None) -> int | None:
    """Resident memory of a process, from /proc (None once it is gone)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _lock_reason(agent: str) -> str:
    return f"auto-tundra: agent {agent} is running"
