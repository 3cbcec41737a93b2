"""The agent operations: start, stop, type into, look at and list agents.

Each handler takes its typed request and the caller and returns a typed reply;
refusals are TundraErrors with a one-line reason. Trust checks are the gate's,
approvals the book's: these only use them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tundra_tui.config import LayeredConfig, command_trust_problem, load_config
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.channels import ExplainOps, with_channels
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.handover import ENDED, target_only
from tundra_tui.daemon.leases import WorktreeLeases
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.metrics import cpu_seconds, rss_kib
from tundra_tui.daemon.peers import HOOK_SECRET_ENV
from tundra_tui.daemon.protocol import (
    AgentList,
    AgentRow,
    Agents,
    Delivered,
    Done,
    Explain,
    History,
    HistoryReply,
    Record,
    Recorded,
    Request,
    Resize,
    Restart,
    Restarted,
    Screen,
    ScreenText,
    SendKeys,
    SendText,
    Sent,
    Spawn,
    Spawned,
    Stop,
    Stopped,
)
from tundra_tui.daemon.recorder import record
from tundra_tui.daemon.roster import Roster
from tundra_tui.daemon.supervision import Supervision
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.daemon.writer import StoreWriter
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.session.detect import Detected
from tundra_tui.session.host import SessionHost
from tundra_tui.session.launch import agent_config
from tundra_tui.store import Store
from tundra_tui.town import Town

ACTOR = "daemon"
MAX_HISTORY_PAGE = 1000
"""Scrollback lines one `history` request may ask for."""


class AgentOps:
    """Handlers for the agent operations, over the host and the daemon's other parts."""

    def __init__(
        self,
        *,
        town: Town,
        host: SessionHost,
        store: Store,
        writer: StoreWriter,
        book: ApprovalBook,
        gate: Gate,
        leases: WorktreeLeases,
        supervision: Supervision,
        log: DaemonLog,
        sync_roster: Callable[[LayeredConfig], None],
        own: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.town = town
        self.host = host
        self.store = store
        self.writer = writer
        self.book = book
        self.gate = gate
        self.leases = leases
        self.supervision = supervision
        self.log = log
        self._sync_roster = sync_roster
        self.roster = Roster(town, store)
        self._own = own
        self.typed: Callable[[str], None] = lambda name: None
        """Told of keys sent to an agent (the fan-out sends that agent's echo at once)."""

    def handlers(self) -> dict[type[Request], Handler]:
        return {
            Agents: self.agents,
            Spawn: self.spawn,
            Stop: self.stop,
            Restart: self.restart,
            SendText: self.send_text,
            SendKeys: self.send_keys,
            Resize: self.resize,
            Screen: self.screen,
            History: self.history,
            Record: self.record,
            Explain: ExplainOps(self.host).explain,
        }

    # ---- looking -----------------------------------------------------------------------------

    async def agents(self, request: Agents, caller: Caller) -> AgentList:
        now = time.monotonic()
        # `at agent list` prints no process figures: /proc is not read for it (two files
        # per agent, the larger part of answering a town of sixty).
        figures = not request.roster
        sessions = [
            AgentRow(
                name=s.name,
                state=s.state.value,
                glyph=s.state.glyph,
                runtime=s.adapter.runtime.value,
                pid=s.pid,
                uptime=now - s.started_at if s.pid else None,
                exit=s.exit_status.describe() if s.exit_status else None,
                rss_kib=rss_kib(s.pid) if figures else None,
                cpu_seconds=cpu_seconds(s.pid) if figures else None,
                trouble=s.trouble,
                shown=s.shown,
            )
            for s in self.host.sessions()
        ]
        return AgentList(agents=await self.roster.rows(sessions) if request.roster else sessions)

    async def screen(self, request: Screen, caller: Caller) -> ScreenText:
        name = request.name
        try:
            session = self.host.session(name)
        except NotFound:
            # Not running here (stopped, or lost with a previous daemon): the stored screen.
            agent = await self.store.agents.get(name)
            return ScreenText(
                lines=(await self.store.agents.last_screen(name)).splitlines(),
                cursor=(0, 0),
                title="",
                state=agent.state.value,
                stored=True,
            )
        emulator = session.emulator
        return ScreenText(
            lines=[emulator.line_text(y) for y in range(emulator.rows)],
            cursor=emulator.cursor,
            title=emulator.title,
            state=session.state.value,
        )

    async def history(self, request: History, caller: Caller) -> HistoryReply:
        """Scrollback lines as styled runs; `start` < 0 counts back from the newest."""
        emulator = self.host.session(request.name).emulator
        total = emulator.scrollback_size
        count = max(0, min(request.count, MAX_HISTORY_PAGE))
        start = request.start if request.start >= 0 else max(0, total + request.start)
        start = min(start, total)
        lines = [[tuple(run) for run in line] for line in emulator.scrollback_lines(start, count)]
        dropped = emulator.scrollback_dropped
        return HistoryReply(total=total, start=start, lines=lines, dropped=dropped)  # type: ignore[arg-type]

    async def record(self, request: Record, caller: Caller) -> Recorded:
        """The flight recorder: the agent's screen and verdict, with the operator's label."""
        self.gate.operator_only(caller, "record", "recordings are made by the operator")
        session = self.host.session(request.name)
        label = Detected(request.label) if request.label else None
        try:
            path, held = await record(session, label, self.town.state_dir)
        except OSError as error:
            raise TundraError(f"cannot write the recording: {error}") from None
        verdict = held.verdict
        rule = verdict.evidence.rule if verdict.evidence else ""
        self.log.info("agent.recorded", agent=request.name, path=str(path))
        return Recorded(
            path=str(path), state=verdict.state.value, rule=rule, label=held.label.value
        )

    # ---- starting and stopping ---------------------------------------------------------------

    async def spawn(self, request: Spawn, caller: Caller) -> Spawned:
        """A start by hand (`at agent start`, the TUI): `at up` brings it back after this."""
        spawned = await self.start_agent(
            request.name,
            bead=request.bead,
            task=request.task,
            caller=caller,
            cwd=Path(request.cwd) if request.cwd else None,
        )
        await self.store.agents.set_wanted(request.name, True)
        return spawned

    async def start_agent(
        self,
        name: str,
        *,
        bead: int | None = None,
        task: str | None = None,
        caller: Caller | None = None,
        cwd: Path | None = None,
        base: str = "HEAD",
    ) -> Spawned:
        """Start a configured agent: trust checked, roster synced, its worktree leased (or
        `cwd`, a worktree the hand-over placed), a fresh hook secret. A `task` is typed at
        its first idle prompt, gated as input from `caller` (the daemon's own when None).
        Dispatch and `at up` call this with no caller."""
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
        if cwd is None and spec.worktree:
            cwd = await self.leases.lease(name, bead, base=base)
        launch = agent_config(
            spec,
            self.town,
            runtime_settings=settings,
            cwd=cwd or Path(self.town.root),
            scrollback=int(config.get("ui.terminal_scrollback_lines")),
            bead=bead,
        )
        launch = await with_channels(launch)  # Codex's hooks where its version has them
        secret = self.gate.new_secret(name)
        launch = dataclasses.replace(
            launch,
            launch=dataclasses.replace(
                launch.launch, env={**launch.launch.env, HOOK_SECRET_ENV: secret}
            ),
        )
        self.supervision.started_by_hand(name)
        state = await self.host.start(launch)
        self.gate.started(name, secret)
        if task and task.strip():
            # Typed like any input from this caller: an agent's spawn gets an agent's gate.
            if caller is not None:
                gate = self.gate.input(caller, name, raw=False)
            else:
                gate = target_only(self.host, self.book, name)
            self._own(self._deliver_when_idle(name, task, gate))
        return Spawned(name=name, state=state.value, cwd=str(launch.launch.cwd))

    async def _deliver_when_idle(
        self, name: str, text: str, gate: Callable[[], None] | None, timeout: float = 120.0
    ) -> None:
        """Give a freshly started agent its first task once it is at its prompt."""
        session = self.host.session(name)
        # An agent that stops first ends the wait (a daemon stopping waits for this task).
        await session.wait_for(lambda state: state is AgentState.IDLE or state in ENDED, timeout)
        if session.state is AgentState.IDLE:
            delivery = await self.host.send_text(name, text, gate=gate)
            data = {"delivered": delivery.delivered, "chars": len(text)}
            self.writer.submit(
                f"{name} task",
                lambda: self.store.events.record("agent.task", actor=ACTOR, agent=name, data=data),
            )

    async def stop(self, request: Stop, caller: Caller) -> Stopped:
        """A stop by hand: `at up` leaves the agent stopped after this."""
        await self.store.agents.set_wanted(request.name, False)
        by = (
            "operator" if not self.gate.inside(caller) else self.gate.agent_of(caller) or "an agent"
        )
        status = await self.host.stop(request.name, request.grace, by=by)
        return Stopped(exit=status.describe() if status else None)

    async def restart(self, request: Restart, caller: Caller) -> Restarted:
        state = await self.host.restart(request.name)
        return Restarted(state=state.value)

    # ---- input -------------------------------------------------------------------------------

    async def send_text(self, request: SendText, caller: Caller) -> Delivered:
        gate = self.gate.input(caller, request.name, raw=False)
        delivery = await self.host.send_text(request.name, request.text, gate=gate)
        return Delivered(
            delivered=delivery.delivered, attempts=delivery.attempts, evidence=delivery.evidence
        )

    async def send_keys(self, request: SendKeys, caller: Caller) -> Sent:
        self.gate.input(caller, request.name, raw=True)
        self.host.send_keys(request.name, request.data)
        self.typed(request.name)
        self.book.operator_typed(request.name, request.data)
        return Sent(sent=len(request.data))

    async def resize(self, request: Resize, caller: Caller) -> Done:
        # A terminal made small enough cuts a prompt off the screen it is read from.
        self.gate.operator_only(
            caller, "resize", "agents' terminals are sized by the operator, not from an agent"
        )
        self.host.resize(request.name, request.columns, request.rows)
        return Done()
