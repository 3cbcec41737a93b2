"""Dispatch: the daemon takes ready beads and hands them to agents, by itself.

Deterministic code, not an agent's judgement: the facts (the town's flags, the budget
brake as the daemon's brake part last read it, judged afresh before a pass claims when a
budget is set, capacity, ready beads in queue order,
every agent) go to the pure planner (`orchestra.plan`), and each assignment is claimed
in one transaction, then handed over (`daemon.handover`) as a task of its own that wakes
the dispatcher when it ends. Passes run one at a time and are driven by events: a bead
becoming ready or moving, a convoy started, the town's switches, an agent turning idle
or exiting, a hand-over ending, tundra.toml changed, the brake's level or pauses
changing. `daemon.patrol_interval_seconds` caps every wait (the safety tick: a worktree
committed wakes nothing else; a rate-limit pause or an override that ends is a wake-up
of its own), and a pass that failed is tried again after a short back-off. Polecats the
dispatcher started (or handed a slung bead) are retired once idle with no work for
`orchestra.polecat_retire_seconds`, or at once when a bead waits for the slot one of
them holds.
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

from tundra_tui.config import LayeredConfig, account_of, add_agent, load_config
from tundra_tui.daemon import faults
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.brake import BrakePart, budget_rows, pause_rows
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
from tundra_tui.domain.clock import iso
from tundra_tui.domain.costs import Brake
from tundra_tui.domain.dispatch import Dispatch, DispatchKind, WaitReason
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.orchestra.plan import (
    NO_BRAKE,
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
PASS_RETRY_SECONDS = (1.0, 2.0, 5.0)
"""How long after a failed pass the next one runs: after the 1st, 2nd, 3rd+ failure in a row."""
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
    brake: Brake
    now: str
    """The wall-clock moment (ISO UTC) the brake is judged at."""
    ready: list[Bead]
    workers: list[Worker]
    capacity: Capacity
    previous: dict[int, PriorWork]
    held: dict[int, str]
    open: list[Dispatch] = field(default_factory=list)
    holding: dict[str, str] = field(default_factory=dict)
    """Agents holding an open dispatch, with its kind."""
    idle_seen: set[str] = field(default_factory=set)
    """Agents idle with no work, that the plan could not use."""
    review_held: set[str] = field(default_factory=set)
    """Agents whose bead is in review while the refinery holds them for its verdict."""
    retire_after: float = 60.0
    patrol: float = 60.0


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
        self._bead_hold: dict[int, tuple[float, str]] = {}
        """Beads held back after a failed hand-over, until a time: (until, reason)."""
        self._failures: dict[int, int] = {}
        """Failed hand-overs of a bead in a row (the hold grows with it); reset when the
        bead is delivered or leaves the ready queue."""
        self._agent_hold: dict[str, float] = {}
        self._retiring: set[str] = set()
        self._retire_after = 60.0
        self._patrol = 60.0
        """`daemon.patrol_interval_seconds`: no wait is longer (the safety tick)."""
        self._pass_failures = 0
        self._retry_at: float | None = None
        """When a failed pass is tried again."""
        self.passes = 0
        self.holds_review: Callable[[], bool] = lambda: False
        """The refinery says agents of beads in review wait for its verdict (set by the
        daemon); they are busy and never retired meanwhile."""
        self._review_held: set[str] = set()
        self.brake: BrakePart | None = None
        """The daemon's budget brake and rate-limit pauses (read from its cache, never
        summed per pass); None: nothing is held."""

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

    def adopt(self, agent: str) -> None:
        """A polecat handed a bead by `at sling`: its life is the dispatcher's too (retired
        when idle with no work, not restarted by supervision)."""
        self._started.add(agent)

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
                why = self._why[:3] or ["timer"]
                self._why.clear()
                self._retry_at = None
                try:
                    await self._pass(why)
                    self._pass_failures = 0
                except TundraError as error:
                    self.log.warning("dispatch.pass_failed", error=error)
                    self._failed_pass()
                except Exception as error:  # a bug or a sick store must not end dispatch
                    self.log.exception("dispatch.pass_crashed", error=error)
                    self._failed_pass()
        finally:
            halt.cancel()
            for flight in list(self._inflight.values()):
                if flight.task is not None:
                    flight.task.cancel()

    def _failed_pass(self) -> None:
        """Try a failed pass again soon, backing off while it keeps failing."""
        delay = PASS_RETRY_SECONDS[min(self._pass_failures, len(PASS_RETRY_SECONDS) - 1)]
        self._pass_failures += 1
        self._retry_at = time.monotonic() + delay

    def _next_due(self) -> float:
        """Seconds to the next retirement, hold that ends or retry, at most the patrol
        interval. Holds that ended were dropped by the last pass, which saw them end."""
        now = time.monotonic()
        due = [until for until, _ in self._bead_hold.values()]
        due += list(self._agent_hold.values())
        due += [at for _, at in self._retire_times(now)]
        if self._retry_at is not None:
            due.append(self._retry_at)
        if self.brake is not None:
            ends = self.brake.next_change()
            if ends is not None:
                due.append(now + max(0.0, ends))
        return min(self._patrol, max(0.05, min(due, default=now + self._patrol) - now))

    # ---- a pass ----------------------------------------------------------------------------

    async def _pass(self, why: list[str]) -> None:
        self.passes += 1
        self.log.debug("dispatch.pass", n=self.passes, why=why)
        now = time.monotonic()
        # Holds that ended go now, so the wait after this pass is not cut short by them.
        self._bead_hold = {b: v for b, v in self._bead_hold.items() if v[0] > now}
        self._agent_hold = {a: t for a, t in self._agent_hold.items() if t > now}
        facts = await self._facts()
        self._holding = facts.holding
        self._review_held = facts.review_held
        self._retire_after = facts.retire_after
        self._patrol = facts.patrol
        # A bead no longer waiting (closed, taken by hand, blocked again) starts afresh.
        waiting_ids = {b.id for b in facts.ready} | set(self._bead_hold)
        self._failures = {b: n for b, n in self._failures.items() if b in waiting_ids}
        assignments, waiting = plan(
            facts.ready,
            facts.workers,
            facts.capacity,
            runtime_for=lambda bead: _runtime_for(facts.config, bead),
            flags=facts.flags,
            brake=facts.brake,
            now=facts.now,
            account_of=lambda agent, runtime: account_of(facts.config, agent, runtime),
            previous=facts.previous,
            held=facts.held,
        )
        if assignments and self.brake is not None:
            # The spend of a turn that just ended may not be read yet: read it, then judge.
            await self.brake.verdict(facts.config)
        for assignment in assignments:
            stop = self._braked(assignment.bead)
            if stop is not None:
                self.log.info("dispatch.braked", agent=assignment.agent, bead=assignment.bead.id)
                continue
            await self._start(assignment, facts.config)
        # After the claims: a polecat reused this pass is in flight, never retired.
        await self._retire(
            facts.idle_seen, now=any(w.reason is WaitReason.CAPACITY for w in waiting)
        )

    def _braked(self, bead: Bead) -> str | None:
        """Why the brake holds `bead` now (the cache as last refreshed, right before its
        claim: a refresh may land while a pass claims), or None."""
        if self.brake is None:
            return None
        brake = self.brake.state()
        now = iso(datetime.now(UTC))
        return brake.town_stop(now) or brake.convoy_stop(bead.convoy_id, now)

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
        """Hand over in a task; whatever fails here, the claim is given back, never left
        open with no agent working on it."""
        dispatch, assignment = flight.dispatch, flight.assignment
        try:
            spec = load_config(self.town).agents().get(dispatch.agent)
            if spec is None:
                await self.store.dispatches.give_back(
                    dispatch.id, reason=f"{dispatch.agent} left the team", actor=ACTOR
                )
                self._changed(dispatch.bead_id)
                return
            result = await self.handover.run(dispatch, assignment.bead, spec)
            if result.delivered:
                self._failures.pop(dispatch.bead_id, None)
            else:
                self._hold(dispatch.bead_id, dispatch.agent, result.evidence)
        except Exception as error:  # the claim must not stay open with nobody on it
            reason = f"hand-over failed: {error}" if str(error) else type(error).__name__
            self.log.exception("dispatch.hand_over_failed", agent=dispatch.agent, error=error)
            try:
                await self.store.dispatches.give_back(dispatch.id, reason=reason, actor=ACTOR)
            except Exception as again:  # the store is sick: the next daemon's recover
                self.log.exception("dispatch.give_back_failed", agent=dispatch.agent, error=again)
            self._changed(dispatch.bead_id)
            self._hold(dispatch.bead_id, dispatch.agent, reason)
        finally:
            self._inflight.pop(dispatch.agent, None)
            self.wake(f"hand-over of #{dispatch.bead_id} ended")

    def _changed(self, bead_id: int) -> None:
        self.publish(ChangedEvent(what="beads", ids=[bead_id]))
        self.publish(ChangedEvent(what="dispatch", ids=[bead_id]))

    def _hold(self, bead_id: int, agent: str, reason: str) -> None:
        now = time.monotonic()
        failures = self._failures.get(bead_id, 0)
        delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
        self._failures[bead_id] = failures + 1
        self._bead_hold[bead_id] = (now + delay, reason)
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
            if name in self._review_held:
                continue
            with contextlib.suppress(TundraError):
                session = self.host.session(name)
                if session.pid is not None and session.state is AgentState.IDLE:
                    out.append((name, session.state_since + self._retire_after))
        return out

    async def _retire(self, idle_seen: set[str], *, now: bool) -> None:
        """Retire polecats idle past their time; with `now` (a bead waits for a slot), also
        those the planner saw idle and could not use (another runtime, a dirty worktree).
        One that turned idle during the pass is left for the next pass to reuse, and one
        given work during the pass (`at sling` claims while the pass awaits) is kept: the
        store is asked again right before."""
        clock = time.monotonic()
        due_now = [
            name
            for name, due in self._retire_times(clock)
            if (now and name in idle_seen) or due <= clock
        ]
        if not due_now:
            return
        holding = {d.agent for d in await self.store.dispatches.open()}
        for name in due_now:
            if name in holding or name in self._inflight or name in self._retiring:
                continue
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
        """Reads only: `status` calls it too, during a pass, and must change nothing."""
        config = load_config(self.town)
        flags = await self.store.flags.get()
        brake = self.brake.state() if self.brake is not None else NO_BRAKE
        open_dispatches = await self.store.dispatches.open()
        holding = {d.agent: d.kind.value for d in open_dispatches}
        ready = await self.store.beads.ready(limit=READY_LIMIT)
        holders = {
            b.assignee
            for status in (BeadStatus.HOOKED, BeadStatus.SLUNG)
            for b in await self.store.beads.find(status=status)
        }
        review_held: set[str] = set()
        if self.holds_review():
            review = await self.store.beads.find(status=BeadStatus.REVIEW)
            # Only beads the refinery will take (a branch): one with none waits for no verdict.
            review_held = {b.assignee for b in review if b.assignee and b.branch}
            holders |= review_held
        specs = config.agents()
        now = time.monotonic()
        held = {
            b: f"{r} (tried again in {until - now:.0f} s)"
            for b, (until, r) in self._bead_hold.items()
            if until > now
        }
        agent_held = {a for a, t in self._agent_hold.items() if t > now}
        busy = set(holding) | holders | set(self._inflight) | agent_held
        # Being retired, or stopped after a failed hand-over: not free to take work.
        busy |= self._retiring | self.handover.stopping
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
        # Every open dispatch of a polecat counts, `at sling`'s as well as dispatch's.
        claimed = {
            d.agent
            for d in open_dispatches
            if d.kind is DispatchKind.POLECAT
            or (d.agent in specs and specs[d.agent].role is Role.POLECAT)
        }
        claimed |= {f.dispatch.agent for f in self._inflight.values() if f.assignment.starts}
        idle_seen = {w.name for w in workers if w.idle and not w.busy}
        capacity = Capacity(
            polecats_live=len(live),
            polecats_starting=len(claimed - live),
            max_polecats=int(config.get("orchestra.max_polecats")),
            ptys_live=self.host.live_count() + len(self.host.queued()),
            max_ptys=int(config.get("general.max_ptys")),
        )
        return _Facts(
            config,
            flags,
            brake,
            iso(datetime.now(UTC)),
            ready,
            workers,
            capacity,
            previous,
            held,
            open_dispatches,
            holding=holding,
            idle_seen=idle_seen,
            review_held=review_held,
            retire_after=float(config.get("orchestra.polecat_retire_seconds")),
            patrol=float(config.get("daemon.patrol_interval_seconds")),
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
            brake=facts.brake,
            now=facts.now,
            account_of=lambda agent, runtime: account_of(facts.config, agent, runtime),
            previous=facts.previous,
            held=facts.held,
        )
        waiting = await not_ready_reasons(
            self.store, facts.flags, facts.capacity, facts.brake, facts.now
        )
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
            budgets=budget_rows(facts.brake, facts.now),
            pauses=pause_rows(facts.brake, facts.now),
            override_until=facts.brake.override_until if facts.brake.overridden(facts.now) else "",
            override_reason=facts.brake.override_reason
            if facts.brake.overridden(facts.now)
            else "",
        )


def _row(waiting: Waiting) -> WaitingRow:
    return WaitingRow(
        bead=waiting.bead, title=waiting.title, reason=waiting.reason.value, detail=waiting.detail
    )


async def not_ready_reasons(
    store: Store,
    flags: TownFlags,
    capacity: Capacity,
    brake: Brake | bool = NO_BRAKE,
    now: str = "",
) -> list[Waiting]:
    """Why each backlog bead that is not ready waits (blocked, convoy not started); the
    brake does not change those (a bool is the old budget flag, ignored)."""
    if isinstance(brake, bool):
        brake = NO_BRAKE
    beads = await store.beads.find()
    status = {b.id: b.status for b in beads}
    backlog = [b for b in beads if b.status is BeadStatus.BACKLOG]
    blockers = {
        b.id: [x for x in b.blocked_by if status.get(x) is not BeadStatus.DONE and x in status]
        for b in backlog
    }
    convoys = {c.id: c for c in await store.convoys.all()}
    reasons = waiting_reasons(backlog, blockers, convoys, flags, capacity, brake, now)
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
