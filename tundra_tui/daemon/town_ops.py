"""The town's operations: `at up`, `at down`, `at dispatch status|pause|resume` and
`at sling`.

`Up` marks the town up (dispatch may claim), starts the agents marked `start = true`
or brought back (`wanted`, started by hand before), each non-polecat with its role
prompt as its first task, and wakes dispatch; it is idempotent. `Down` marks the town
down first (no claim after it) and stops every agent, keeping all state. Pausing
dispatch is a switch in the store that every claim reads (`at dispatch pause` writes it
itself when no daemon runs); through the daemon every client hears of it. `Sling` is
the operator's hand-over of one bead to one agent, through the same verified path
dispatch uses; the daemon decides who works on what, so an agent cannot sling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tundra_tui.config import load_config
from tundra_tui.daemon.dispatcher import Dispatcher, _roster
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.handover import Handover, target_branch
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.ops import AgentOps
from tundra_tui.daemon.protocol import (
    ChangedEvent,
    DispatchControl,
    DispatchQuery,
    DispatchStatus,
    DispatchSwitched,
    Down,
    DownReply,
    Event,
    Request,
    Sling,
    SlingReply,
    Up,
    UpReply,
)
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.domain.agents import AgentState, Role
from tundra_tui.domain.dispatch import DispatchKind
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.orchestra.prompts import first_task, load_role_prompt
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store
from tundra_tui.town import Town

ACTOR = "daemon"
FIRST_TASK_ROLES = frozenset({Role.MAYOR, Role.WITNESS, Role.REFINERY, Role.CREW})
"""Roles given their role prompt as their first task when `at up` starts them."""


class TownOps:
    """Handlers for `Up`, `Down`, `DispatchQuery`, `DispatchControl` and `Sling`."""

    def __init__(
        self,
        *,
        town: Town,
        store: Store,
        host: SessionHost,
        gate: Gate,
        agents: AgentOps,
        dispatcher: Dispatcher,
        handover: Handover,
        log: DaemonLog,
        publish: Callable[[Event], None],
    ) -> None:
        self.town = town
        self.store = store
        self.host = host
        self.gate = gate
        self.agents = agents
        self.dispatcher = dispatcher
        self.handover = handover
        self.log = log
        self.publish = publish
        self._up_lock = asyncio.Lock()

    def handlers(self) -> dict[type[Request], Handler]:
        return {
            Up: self.up,
            Down: self.down,
            DispatchQuery: self.query,
            DispatchControl: self.control,
            Sling: self.sling,
        }

    async def up(self, request: Up, caller: Caller) -> UpReply:
        self.gate.operator_only(caller, "up", "the operator starts the town, not an agent")
        async with self._up_lock:  # two `at up` at once start each agent once
            config = load_config(self.town)
            await self.store.agents.sync_roster(_roster(config), actor=ACTOR)
            await self.store.flags.set_up(True, actor=caller_name(caller))
            wanted = set(await self.store.agents.wanted())
            started: list[str] = []
            running: list[str] = []
            failed: dict[str, str] = {}
            target = target_branch(self.town, config)
            for name, spec in config.agents().items():
                if spec.role is Role.POLECAT or not (spec.start or name in wanted):
                    continue
                if self.handover.live(name):
                    running.append(name)
                    continue
                try:
                    task = None
                    if spec.role in FIRST_TASK_ROLES:
                        template = load_role_prompt(self.town, config, spec.role)
                        task = first_task(template, agent=name, target=target)
                    await self.agents.start_agent(name, task=task)
                    started.append(name)
                except TundraError as error:
                    failed[name] = str(error)
                    self.log.warning("up.start_failed", agent=name, error=error)
            flags = await self.store.flags.get()
        self.dispatcher.wake("town up")
        dispatch = f"paused: {flags.pause_reason}" if flags.paused else "running"
        if flags.paused and not flags.pause_reason:
            dispatch = "paused"
        return UpReply(started=started, running=running, failed=failed, dispatch=dispatch)

    async def down(self, request: Down, caller: Caller) -> DownReply:
        self.gate.operator_only(caller, "down", "the operator stops the town, not an agent")
        # Down first: once it is stored no claim succeeds, so nothing starts behind us.
        await self.store.flags.set_up(False, actor=caller_name(caller))
        names = [s.name for s in self.host.sessions() if s.pid is not None]
        names += self.host.queued()
        await asyncio.gather(
            *(self.host.stop(name, request.grace, by="operator") for name in names),
            return_exceptions=True,
        )
        return DownReply(stopped=sorted(set(names)))

    async def query(self, request: DispatchQuery, caller: Caller) -> DispatchStatus:
        return await self.dispatcher.status()

    async def control(self, request: DispatchControl, caller: Caller) -> DispatchSwitched:
        """Pause or resume dispatch, as the operator; every client hears of it."""
        self.gate.operator_only(
            caller, "dispatch_control", "refused: agents do not pause or resume dispatch"
        )
        paused = request.verb == "pause"
        reason = request.reason if paused else ""
        changed = await self.store.flags.set_paused(
            paused, actor=caller_name(caller), reason=reason
        )
        self.publish(ChangedEvent(what="dispatch"))
        if not paused:
            self.dispatcher.wake("dispatch resumed")
        return DispatchSwitched(paused=paused, reason=reason, changed=changed)

    async def sling(self, request: Sling, caller: Caller) -> SlingReply:
        """Hand a bead to an agent now: claimed by hand (blockers still count), the agent
        started if stopped, the work prompt typed and verified; the reply says how it went."""
        self.gate.operator_only(
            caller, "sling", "the daemon decides who works on what: an agent cannot sling"
        )
        config = load_config(self.town)
        spec = config.agents().get(request.agent)
        if spec is None:
            raise NotFound(f"no agent {request.agent!r} in tundra.toml (see `at agent list`)")
        await self.store.agents.sync_roster(_roster(config), actor=ACTOR)
        if self.dispatcher.retiring(request.agent):
            raise TundraError(f"{request.agent} is being stopped; sling again once it has")
        if self.handover.live(request.agent):
            state = self.host.session(request.agent).state
            if state is AgentState.AWAITING_APPROVAL:
                raise TundraError(f"{request.agent} is waiting for an approval; answer it first")
        dispatch = await self.store.dispatches.claim(
            request.bead, request.agent, kind=DispatchKind.SLING, actor=request.actor, manual=True
        )
        if dispatch is None:  # a manual claim raises saying why; this is only a guard
            raise TundraError(f"#{request.bead} could not be claimed for {request.agent}")
        if spec.role is Role.POLECAT:
            self.dispatcher.adopt(request.agent)  # retired when idle, not restarted
        self.dispatcher.wake("sling")
        bead = await self.store.beads.get(dispatch.bead_id)
        result = await self.handover.run(dispatch, bead, spec)
        return SlingReply(
            bead=dispatch.bead_id,
            agent=dispatch.agent,
            started=result.started,
            delivered=result.delivered,
            attempts=result.attempts,
            evidence=result.evidence,
        )


def caller_name(caller: Caller) -> str:
    """Who asked, for events: the operator (agents are refused before this)."""
    return "operator"
