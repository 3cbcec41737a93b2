"""Dispatch: the daemon takes ready beads and hands them to agents, by itself.

Deterministic code, not an agent's judgement: the facts (the town's flags, the budget,
capacity, ready beads in queue order, every agent) go to the pure planner
(`orchestra.plan`), and each assignment is claimed in one transaction, then handed
over (`daemon.handover`) as a task of its own that wakes the dispatcher when it ends.
Passes run one at a time and are driven by events: a bead becoming ready or moving,
a convoy started, the town's switches, an agent turning idle or exiting, a hand-over
ending. The tail's safety re-read is the only poll. Polecats the dispatcher started
are retired once idle with no work for `orchestra.polecat_retire_seconds`, or at
once when a bead waits for the slot one of them holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tundra_tui.config import LayeredConfig, add_agent, load_config
from tundra_tui.daemon import faults
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.handover import Handover
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import (
    ChangedEvent,
    DispatchRow,
    DispatchStatus,
    Event,
    WaitingRow,
)
from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Bead, BeadStatus, Lane
from tundra_tui.domain.dispatch import Dispatch, DispatchKind, WaitReason
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.orchestra.plan import (
    Assignment,
    Capacity,
    PriorWork,
    Waiting,
    Worker,
    plan,
    waiting_reasons,
)
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.session.events import Exited, HostEvent, StateChanged
from tundra_tui.session.host import SessionHost
from tundra_tui.store import RosterEntry, Store
from tundra_tui.store.flags import TownFlags
from tundra_tui.town import Town

ACTOR = "daemon"
READY_LIMIT = 200
"""Ready beads read per pass (more wait for the next: capacity is far below this)."""
RETRY_SECONDS = (5.0, 30.0, 120.0)
"""How long a bead whose hand-over failed is held back: after the 1st, 2nd, 3rd+ failure."""
AGENT_HOLD_SECONDS = 30.0
"""How long an agent that failed a hand-over is not offered another bead."""
_WAKING = ("bead.", "convoy.", "town.", "dispatch.paused", "dispatch.resumed", "agent.added")


@dataclass
class _InFlight:
    dispatch: Dispatch
    assignment: Assignment
    task: asyncio.Task[Any] | None = None


@dataclass
class _Facts:
    """What a pass (or `status`) plans with."""

    config: LayeredConfig
    flags: TownFlags
    budget_ok: bool
    ready: list[Bead]
    workers: list[Worker]
    capacity: Capacity
    previous: dict[int, PriorWork]
    held: dict[int, str]
    open: list[Dispatch] = field(default_factory=list)


class Dispatcher:
    """Plans and claims; the hand-overs run as owned tasks (see the module docstring)."""

    def __init__(
        self,
        town: Town,
        store: Store,
        host: SessionHost,
        book: ApprovalBook,
        handover: Handover,
        publish: Callable[[Event], None],
        log: DaemonLog,
        own: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.town = town
        self.store = store
        self.host = host
        self.book = book
        self.handover = handover
        self.publish = publish
        self.log = log
        self._own = own
        self._wake = asyncio.Event()
        self._why: list[str] = []
        self._inflight: dict[str, _InFlight] = {}
        """Hand-overs running now, by agent."""
        self._started: set[str] = set()
        """Polecats this dispatcher started (it retires them; supervision leaves them)."""
        self._holding: dict[str, str] = {}
        """Polecats the store says hold an open dispatch, by agent (refreshed each pass)."""
        self._bead_hold: dict[int, tuple[float, str, int]] = {}
        """Beads held back after a failed hand-over: (until, reason, failures)."""
        self._agent_hold: dict[str, float] = {}
        self._retiring: set[str] = set()
        self._idle_seen: set[str] = set()
        """Agents the last pass's facts showed idle with no work."""
        self.passes = 0

    # ---- what wakes it ---------------------------------------------------------------------

    def wake(self, why: str) -> None:
        """Ask for a pass soon; calls before it starts are one pass."""
        self._why.append(why)
        self._wake.set()

    def on_host(self, event: HostEvent) -> None:
        if isinstance(event, StateChanged) and event.state is AgentState.IDLE:
            self.wake(f"{event.agent} idle")
        elif isinstance(event, Exited):
            self.wake(f"{event.agent} exited")

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        for event in events:
            if event.kind.startswith(_WAKING):
                self.wake(event.kind)
                return

    def owns(self, agent: str) -> bool:
        """Whether a polecat's life is the dispatcher's (supervision does not restart it:
        a dead polecat's bead goes back and is dispatched again)."""
        flight = self._inflight.get(agent)
        return (
            agent in self._started
            or self._holding.get(agent) == DispatchKind.POLECAT.value
            or (flight is not None and flight.assignment.kind is DispatchKind.POLECAT)
        )

    def retiring(self, agent: str) -> bool:
        """The dispatcher (or a failed hand-over) is stopping this agent on purpose."""
        return agent in self._retiring or agent in self.handover.stopping

    # ---- running ---------------------------------------------------------------------------

    async def recover(self) -> list[Dispatch]:
        """At start, before anything else: the last daemon's agents died with it, so every
        open dispatch is given back (branch and notes kept), to be dispatched again."""
        unlocked = await self.handover.leases.unlock_stale()
        if unlocked:
            self.log.info("worktrees.unlocked", paths=[str(p) for p in unlocked])
        returned = await self.store.dispatches.recover(reason="daemon restarted", actor=ACTOR)
        for dispatch in returned:
            self.log.info("dispatch.recovered", agent=dispatch.agent, bead=dispatch.bead_id)
        if returned:
            self.publish(ChangedEvent(what="beads", ids=[d.bead_id for d in returned]))
        return returned

    async def run(self, stopped: asyncio.Event) -> None:
        """One pass per wake-up (and when a retirement or a hold falls due) until stopped."""
        self.wake("start")
        halt = asyncio.ensure_future(stopped.wait())
        try:
            while not stopped.is_set():
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {woken, halt}, timeout=self._next_due(), return_when="FIRST_COMPLETED"
                )
                woken.cancel()
                if stopped.is_set():
                    break
                self._wake.clear()
                self._why.clear()
                try:
                    await self._pass()
                except TundraError as error:
                    self.log.warning("dispatch.pass_failed", error=error)
                except Exception as error:  # a bug or a sick store must not end dispatch
                    self.log.exception("dispatch.pass_crashed", error=error)
                    await asyncio.sleep(1.0)
        finally:
            halt.cancel()
            for flight in list(self._inflight.values()):
                if flight.task is not None:
                    flight.task.cancel()

    def _next_due(self) -> float | None:
        """Seconds to the next retirement or hold that ends, or None (wait for a wake)."""
        now = time.monotonic()
        due = [until for until, _, _ in self._bead_hold.values()]
        due += list(self._agent_hold.values())
        due += [at for _, at in self._retire_times(now)]
        if not due:
            return None
        return max(0.05, min(due) - now)

    # ---- a pass ----------------------------------------------------------------------------

    async def _pass(self) -> None:
        self.passes += 1
        facts = await self._facts()
        assignments, waiting = plan(
            facts.ready,
            facts.workers,
            facts.capacity,
            runtime_for=lambda bead: _runtime_for(facts.config, bead),
            flags=facts.flags,
            budget_ok=facts.budget_ok,
            previous=facts.previous,
            held=facts.held,
        )
        for assignment in assignments:
            await self._start(assignment, facts.config)
        # After the claims: a polecat reused this pass is in flight, never retired.
        await self._retire(now=any(w.reason is WaitReason.CAPACITY for w in waiting))

    async def _start(self, assignment: Assignment, config: LayeredConfig) -> None:
        """Claim one bead for its agent (one transaction), then hand it over in a task."""
        agent = assignment.agent
        if assignment.how == "new":
            try:
                await self._new_polecat(agent, assignment.runtime)
            except TundraError as error:
                self.log.warning("polecat.not_added", agent=agent, error=error)
                return
        dispatch = await self.store.dispatches.claim(
            assignment.bead.id, agent, kind=assignment.kind, actor=ACTOR
        )
        if dispatch is None:
            return  # not ready any more, paused, or the agent took other work meanwhile
        faults.hit("dispatch.claimed")
        self.publish(ChangedEvent(what="beads", ids=[dispatch.bead_id]))
        self.publish(ChangedEvent(what="dispatch", ids=[dispatch.bead_id]))
        self.log.info("dispatch.claimed", agent=agent, bead=dispatch.bead_id, how=assignment.how)
        if assignment.kind is DispatchKind.POLECAT:
            self._started.add(agent)
        flight = _InFlight(dispatch, assignment)
        self._inflight[agent] = flight
        flight.task = asyncio.ensure_future(self._hand_over(flight))
        self._own(flight.task)

    async def _hand_over(self, flight: _InFlight) -> None:
        dispatch, assignment = flight.dispatch, flight.assignment
        try:
            spec = load_config(self.town).agents().get(dispatch.agent)
            if spec is None:
                await self.store.dispatches.give_back(
                    dispatch.id, reason=f"{dispatch.agent} left the team", actor=ACTOR
                )
                return
            result = await self.handover.run(dispatch, assignment.bead, spec)
            if not result.delivered:
                self._hold(dispatch.bead_id, dispatch.agent, result.evidence)
        finally:
            self._inflight.pop(dispatch.agent, None)
            self.wake(f"hand-over of #{dispatch.bead_id} ended")

    def _hold(self, bead_id: int, agent: str, reason: str) -> None:
        now = time.monotonic()
        _, _, failures = self._bead_hold.get(bead_id, (0.0, "", 0))
        delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
        self._bead_hold[bead_id] = (now + delay, reason, failures + 1)
        self._agent_hold[agent] = now + AGENT_HOLD_SECONDS

    async def _new_polecat(self, name: str, runtime: Runtime) -> None:
        """A polecat dispatch made: in the local layer (tundra.toml stays the user's), on the
        roster before it is claimed for (the claim checks it is an agent)."""
        await asyncio.to_thread(
            add_agent,
            self.town,
            name,
            runtime=runtime.value,
            role=Role.POLECAT.value,
            layer="local",
            worktree=True,
        )
        config = load_config(self.town)
        await self.store.agents.sync_roster(_roster(config), actor=ACTOR)
        self.log.info("polecat.added", agent=name, runtime=runtime.value)

    # ---- retiring --------------------------------------------------------------------------

    def _retire_times(self, now: float) -> list[tuple[str, float]]:
        """Idle polecats of ours with no work, and when each is due to be retired."""
        out = []
        for name in self._started:
            if name in self._holding or name in self._inflight or name in self._retiring:
                continue
            with contextlib.suppress(TundraError):
                session = self.host.session(name)
                if session.pid is not None and session.state is AgentState.IDLE:
                    out.append((name, session.state_since + self._retire_after))
        return out

    _retire_after = 60.0

    async def _retire(self, *, now: bool) -> None:
        """Retire polecats idle past their time; with `now` (a bead waits for a slot), also
        those the planner saw idle and could not use (another runtime, a dirty worktree).
        One that turned idle during the pass is left for the next pass to reuse."""
        clock = time.monotonic()
        for name, due in self._retire_times(clock):
            if (now and name in self._idle_seen) or due <= clock:
                self._retiring.add(name)
                self._own(self._stop(name, "no work" if not now else "its slot is needed"))

    async def _stop(self, name: str, reason: str) -> None:
        try:
            await self.store.events.record(
                "polecat.retired", actor=ACTOR, agent=name, data={"reason": reason}
            )
            await self.host.stop(name)
            self.log.info("polecat.retired", agent=name, reason=reason)
        finally:
            self._retiring.discard(name)
            self._started.discard(name)
            self.wake(f"{name} retired")

    # ---- the facts -------------------------------------------------------------------------

    async def _facts(self) -> _Facts:
        config = load_config(self.town)
        self._retire_after = float(config.get("orchestra.polecat_retire_seconds"))
        flags = await self.store.flags.get()
        budget_ok = await self._budget_ok(config)
        open_dispatches = await self.store.dispatches.open()
        self._holding = {d.agent: d.kind.value for d in open_dispatches}
        ready = await self.store.beads.ready(limit=READY_LIMIT)
        holders = {
            b.assignee
            for status in (BeadStatus.HOOKED, BeadStatus.SLUNG)
            for b in await self.store.beads.find(status=status)
        }
        specs = config.agents()
        now = time.monotonic()
        self._bead_hold = {b: v for b, v in self._bead_hold.items() if v[0] > now or v[2] > 0}
        held = {
            b: f"{r} (tried again in {until - now:.0f} s)"
            for b, (until, r, _) in self._bead_hold.items()
            if until > now
        }
        self._agent_hold = {a: t for a, t in self._agent_hold.items() if t > now}
        busy = set(self._holding) | holders | set(self._inflight) | set(self._agent_hold)
        busy |= self._retiring
        previous: dict[int, PriorWork] = {}
        for bead in ready:
            if bead.branch:
                last = await self.store.dispatches.last_for_bead(bead.id)
                if last is not None and last.worktree:
                    clean = await self._clean_path(last.worktree)
                    previous[bead.id] = PriorWork(last.agent, last.worktree, last.branch, clean)
                    if not clean:
                        # Its branch is in a dirty worktree, left as it is: another agent
                        # goes on from that branch's tip on a branch of its own.
                        busy.add(last.agent)
        workers: list[Worker] = []
        candidates: list[tuple[int, Worker]] = []
        for name, spec in specs.items():
            session = self._session(name)
            state = session.state if session is not None and _running(session.state) else None
            worker = Worker(
                name=name,
                role=spec.role,
                runtime=spec.runtime,
                lanes=spec.lanes,
                state=state,
                # A running agent can switch only the worktree it runs in; a stopped
                # polecat always gets one.
                has_worktree=(
                    self.handover.leases.held(name) is not None
                    if state is not None
                    else spec.worktree or spec.role is Role.POLECAT
                ),
                busy=name in busy,
            )
            if state is AgentState.IDLE and not worker.busy and worker.has_worktree:
                candidates.append((len(workers), worker))
            workers.append(worker)
        # git status costs a process each: only when there is a bead to place.
        for index, worker in candidates if ready else []:
            workers[index] = _with_clean(
                worker, await self._clean(self.handover.leases.held(worker.name))
            )
        # Polecats count from what runs and what the store says is being handed over, not
        # from this dispatcher's memory alone: one claimed for but not started yet counts.
        live = {w.name for w in workers if w.role is Role.POLECAT and w.state is not None}
        live |= {name for name in self._started if self._session(name) is not None}
        claimed = {d.agent for d in open_dispatches if d.kind is DispatchKind.POLECAT}
        claimed |= {f.dispatch.agent for f in self._inflight.values() if f.assignment.starts}
        self._idle_seen = {w.name for w in workers if w.idle and not w.busy}
        capacity = Capacity(
            polecats_live=len(live),
            polecats_starting=len(claimed - live),
            max_polecats=int(config.get("orchestra.max_polecats")),
            ptys_live=self.host.live_count() + len(self.host.queued()),
            max_ptys=int(config.get("general.max_ptys")),
        )
        return _Facts(
            config, flags, budget_ok, ready, workers, capacity, previous, held, open_dispatches
        )

    def _session(self, name: str) -> Any:
        with contextlib.suppress(TundraError):
            session = self.host.session(name)
            if _running(session.state) or session.pid is not None:
                return session
        return None

    async def _clean(self, path: Any) -> bool:
        if path is None:
            return True
        return await self._clean_path(str(path))

    async def _clean_path(self, path: str) -> bool:
        """Whether a worktree has nothing uncommitted (False if it cannot be read)."""

        def check() -> bool:
            return Worktrees(self.town.root, self.town.worktrees_dir).clean(Path(path))

        try:
            return await asyncio.to_thread(check)
        except TundraError:
            return False

    async def _budget_ok(self, config: LayeredConfig) -> bool:
        """Spending is under `costs.daily_budget_usd` and `costs.monthly_budget_usd` (0: none)."""
        now = datetime.now(UTC)
        limits = (
            (float(config.get("costs.daily_budget_usd") or 0.0), now.strftime("%Y-%m-%dT00:00:00")),
            (
                float(config.get("costs.monthly_budget_usd") or 0.0),
                now.strftime("%Y-%m-01T00:00:00"),
            ),
        )
        for limit, since in limits:
            if limit > 0 and await self.store.metrics.total_cost(since=since) >= limit:
                return False
        return True

    # ---- status ----------------------------------------------------------------------------

    async def status(self) -> DispatchStatus:
        """What `at dispatch status` shows: the switches, capacity, open dispatches, and
        each backlog bead not dispatched with its reason."""
        facts = await self._facts()
        _, planned = plan(
            facts.ready,
            facts.workers,
            facts.capacity,
            runtime_for=lambda bead: _runtime_for(facts.config, bead),
            flags=facts.flags,
            budget_ok=facts.budget_ok,
            previous=facts.previous,
            held=facts.held,
        )
        waiting = await not_ready_reasons(self.store, facts.flags, facts.capacity, facts.budget_ok)
        waiting += planned
        order = {
            b.id: n for n, b in enumerate(await self.store.beads.find(status=BeadStatus.BACKLOG))
        }
        waiting.sort(key=lambda w: order.get(w.bead, len(order)))
        return DispatchStatus(
            up=facts.flags.up,
            paused=facts.flags.paused,
            pause_reason=facts.flags.pause_reason,
            polecats=facts.capacity.polecats_live,
            max_polecats=facts.capacity.max_polecats,
            ptys=facts.capacity.ptys_live,
            max_ptys=facts.capacity.max_ptys,
            active=[
                DispatchRow(
                    bead=d.bead_id,
                    agent=d.agent,
                    kind=d.kind.value,
                    state=d.state.value,
                    branch=d.branch,
                    since=d.claimed_at,
                )
                for d in facts.open
            ],
            waiting=[_row(w) for w in waiting],
        )


def _row(waiting: Waiting) -> WaitingRow:
    return WaitingRow(
        bead=waiting.bead, title=waiting.title, reason=waiting.reason.value, detail=waiting.detail
    )


async def not_ready_reasons(
    store: Store, flags: TownFlags, capacity: Capacity, budget_ok: bool
) -> list[Waiting]:
    """Why each backlog bead that is not ready waits (blocked, convoy not started)."""
    beads = await store.beads.find()
    status = {b.id: b.status for b in beads}
    backlog = [b for b in beads if b.status is BeadStatus.BACKLOG]
    blockers = {
        b.id: [x for x in b.blocked_by if status.get(x) is not BeadStatus.DONE and x in status]
        for b in backlog
    }
    convoys = {c.id: c for c in await store.convoys.all()}
    reasons = waiting_reasons(backlog, blockers, convoys, flags, capacity, budget_ok)
    return [w for w in reasons if w.reason.value in ("blocked", "convoy not started")]


def _running(state: AgentState) -> bool:
    return state.is_live or state is AgentState.QUEUED


def _with_clean(worker: Worker, clean: bool) -> Worker:
    return Worker(
        worker.name,
        worker.role,
        worker.runtime,
        worker.lanes,
        worker.state,
        worker.has_worktree,
        worker.busy,
        clean,
    )


def _runtime_for(config: LayeredConfig, bead: Bead) -> Runtime:
    """The lane's runtime (`orchestra.lanes.<lane>.runtime`), else `orchestra.polecat_runtime`."""
    lanes: dict[str, Any] = config.get("orchestra.lanes") or {}
    lane = lanes.get(Lane(bead.lane).value, {})
    runtime = lane.get("runtime") if isinstance(lane, dict) else None
    return Runtime(runtime or config.get("orchestra.polecat_runtime"))


def _roster(config: LayeredConfig) -> list[RosterEntry]:
    return [RosterEntry(s.name, s.role, s.runtime, s.model) for s in config.agents().values()]
