"""Who takes which ready bead (pure policy): the mayor's choice, made by code.

The dispatcher gathers the facts (ready beads in queue order, every configured or
live agent, capacity, the town's flags) and acts on the answer; nothing here reads
a clock, a file or the store, so each rule is tested exactly. For each ready bead,
in queue order, the first that fits wins:

1. an idle crew agent whose lanes take the bead's lane (and that works in a clean
   worktree it can switch);
2. the polecat that last held the bead, with its worktree, if clean and free
   (a re-dispatch picks up the branch where it stopped);
3. an idle live polecat with no work, the bead's runtime and a clean worktree
   (reused in place, no new process);
4. within capacity, a stopped configured polecat with the bead's runtime, else a
   new `polecat-N`;
5. otherwise the bead waits for capacity.

The budget brake (`domain.costs.Brake`, cached by the daemon) holds new beads: a spent
day or month budget holds all of them, a spent convoy budget only that convoy's. An
agent whose account is paused by a rate-limit screen is passed over, and so is a new
polecat of a runtime whose account is paused; a bead left with only such choices waits
as `RATE_LIMITED`.

`waiting_reasons` says why beads not dispatched wait, with or without a daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Bead, BeadStatus, Lane, format_bead_id
from tundra_tui.domain.convoys import Convoy, ConvoyStatus
from tundra_tui.domain.costs import AccountPause, Brake, pause_text
from tundra_tui.domain.dispatch import DispatchKind, WaitReason

POLECAT_PREFIX = "polecat-"
"""New polecats are named `polecat-N`, N the smallest number no agent uses."""

How = Literal["crew", "previous", "reuse", "start", "new"]
NO_BRAKE = Brake()
"""No budget set and no account paused: nothing held."""


def runtime_account(_agent: str, runtime: Runtime) -> str:
    """The default account: the runtime's name (`config.account_of` reads the settings)."""
    return runtime.value


class Flags(Protocol):
    """The town's dispatch switches as the store keeps them (`store.flags.TownFlags`)."""

    @property
    def up(self) -> bool: ...

    @property
    def paused(self) -> bool: ...

    @property
    def pause_reason(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Worker:
    """An agent that could take work: configured in the town, or live in the daemon."""

    name: str
    role: Role
    runtime: Runtime
    lanes: tuple[Lane, ...] = ()
    state: AgentState | None = None
    """Its published state while its process runs; None when it is not running."""
    has_worktree: bool = False
    """It works in a worktree of its own (`worktree = true`), so a branch can be switched."""
    busy: bool = False
    """It holds work already (an open dispatch, a hooked or slung bead) or is held back."""
    clean: bool = True
    """Its worktree has no uncommitted changes (true when it has none yet)."""

    @property
    def live(self) -> bool:
        return self.state is not None and self.state.is_live

    @property
    def idle(self) -> bool:
        return self.state is AgentState.IDLE


@dataclass(frozen=True, slots=True)
class Capacity:
    """How many polecats and terminals run, are being started, and may run."""

    polecats_live: int
    polecats_starting: int
    max_polecats: int
    ptys_live: int
    max_ptys: int

    @property
    def free(self) -> int:
        """Polecats that may still be started: both limits count."""
        polecats = self.max_polecats - self.polecats_live - self.polecats_starting
        ptys = self.max_ptys - self.ptys_live - self.polecats_starting
        return max(0, min(polecats, ptys))


@dataclass(frozen=True, slots=True)
class PriorWork:
    """The last dispatch of a bead that came back: who had it, where, and in what state."""

    agent: str
    worktree: str = ""
    branch: str = ""
    clean: bool = True


@dataclass(frozen=True, slots=True)
class Assignment:
    """One bead to one agent, and how the agent gets there."""

    bead: Bead
    agent: str
    kind: DispatchKind
    how: How
    runtime: Runtime
    worktree: str = ""
    """The worktree to take back (a re-dispatch), else empty: the hand-over finds one."""
    starts: bool = False
    """The agent must be started (it takes a polecat slot and a terminal)."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A bead that is not dispatched now, and why."""

    bead: int
    title: str
    reason: WaitReason
    detail: str = ""


def plan(
    ready: Sequence[Bead],
    workers: Iterable[Worker],
    capacity: Capacity,
    *,
    runtime_for: Callable[[Bead], Runtime],
    flags: Flags,
    brake: Brake = NO_BRAKE,
    now: str = "",
    account_of: Callable[[str, Runtime], str] = runtime_account,
    previous: Mapping[int, PriorWork] | None = None,
    held: Mapping[int, str] | None = None,
) -> tuple[list[Assignment], list[Waiting]]:
    """Assign ready beads (in queue order) to agents; the rest wait with their reason.

    `held` names beads the dispatcher holds back for now (a hand-over of it just
    failed), with the reason: they wait as `RETRY`. `now` (ISO UTC) is the moment the
    brake's stops, override and pauses are judged at; `account_of(agent, runtime)`
    names the account an agent bills (a rate-limit pause holds every agent on it).
    """
    previous = previous or {}
    held = held or {}
    stop = _town_reason(flags, brake, now)
    if stop is not None:
        reason, detail = stop
        return [], [Waiting(b.id, b.title, reason, detail) for b in ready]
    by_name = {w.name: w for w in workers}
    taken: set[str] = set()
    free = capacity.free
    started = 0
    names = set(by_name)
    assignments: list[Assignment] = []
    waiting: list[Waiting] = []
    for bead in ready:
        if bead.id in held:
            waiting.append(Waiting(bead.id, bead.title, WaitReason.RETRY, held[bead.id]))
            continue
        convoy_stop = brake.convoy_stop(bead.convoy_id, now) if bead.convoy_id else None
        if convoy_stop is not None:
            waiting.append(Waiting(bead.id, bead.title, WaitReason.BUDGET, convoy_stop))
            continue
        runtime = runtime_for(bead)

        def paused(agent: str, runtime: Runtime) -> AccountPause | None:
            return brake.paused(account_of(agent, runtime), now)

        skipped: list[AccountPause] = []
        choice = _choose(
            bead, runtime, by_name, taken, free, previous.get(bead.id), names, paused, skipped
        )
        if choice is None:
            if skipped:
                detail = pause_text(skipped[0], now)
                waiting.append(Waiting(bead.id, bead.title, WaitReason.RATE_LIMITED, detail))
            else:
                waiting.append(
                    Waiting(bead.id, bead.title, WaitReason.CAPACITY, _full(capacity, started))
                )
            continue
        taken.add(choice.agent)
        names.add(choice.agent)
        if choice.starts:
            free -= 1
            started += 1
        assignments.append(choice)
    return assignments, waiting


def _full(capacity: Capacity, started: int) -> str:
    """Which limit is reached: terminals (`general.max_ptys`) or polecats."""
    if capacity.max_ptys - capacity.ptys_live - capacity.polecats_starting - started <= 0:
        return f"all {capacity.max_ptys} terminals are in use (general.max_ptys)"
    return f"{capacity.max_polecats} polecats at most (orchestra.max_polecats)"


def _town_reason(flags: Flags, brake: Brake, now: str) -> tuple[WaitReason, str] | None:
    if not flags.up:
        return WaitReason.DOWN, "start it with `at up`"
    if flags.paused:
        return WaitReason.PAUSED, flags.pause_reason
    stop = brake.town_stop(now)
    if stop is not None:
        return WaitReason.BUDGET, stop
    return None


Paused = Callable[[str, Runtime], AccountPause | None]


def _choose(
    bead: Bead,
    runtime: Runtime,
    workers: Mapping[str, Worker],
    taken: set[str],
    free: int,
    prior: PriorWork | None,
    names: set[str],
    paused: Paused,
    skipped: list[AccountPause],
) -> Assignment | None:
    """The first choice that fits (see the module docstring); a choice that would fit but
    for its account's pause is passed over and noted in `skipped`."""

    def available(w: Worker) -> bool:
        return w.name not in taken and not w.busy

    def unpaused(name: str, runtime: Runtime) -> bool:
        pause = paused(name, runtime)
        if pause is not None:
            skipped.append(pause)
        return pause is None

    ordered = sorted(workers.values(), key=lambda w: _name_key(w.name))
    for w in ordered:
        if (
            w.role is Role.CREW
            and available(w)
            and w.idle
            and w.has_worktree
            and w.clean
            and bead.lane in w.lanes
            and unpaused(w.name, w.runtime)
        ):
            return Assignment(bead, w.name, DispatchKind.CREW, "crew", w.runtime)
    if prior is not None and prior.clean:
        last = workers.get(prior.agent)
        if (
            last is not None
            and last.role is Role.POLECAT
            and available(last)
            and last.runtime is runtime
            and (last.idle or (not last.live and _startable(last) and free > 0))
            and unpaused(last.name, runtime)
        ):
            return Assignment(
                bead,
                last.name,
                DispatchKind.POLECAT,
                "previous",
                runtime,
                worktree=prior.worktree,
                starts=not last.live,
            )
    for w in ordered:
        if (
            _polecat_for(w, runtime)
            and available(w)
            and w.idle
            and w.has_worktree
            and w.clean
            and unpaused(w.name, runtime)
        ):
            return Assignment(bead, w.name, DispatchKind.POLECAT, "reuse", runtime)
    if free <= 0:
        return None
    for w in ordered:
        if (
            _polecat_for(w, runtime)
            and available(w)
            and not w.live
            and _startable(w)
            and unpaused(w.name, runtime)
        ):
            return Assignment(bead, w.name, DispatchKind.POLECAT, "start", runtime, starts=True)
    name = new_polecat_name(names)
    if not unpaused(name, runtime):
        return None
    return Assignment(bead, name, DispatchKind.POLECAT, "new", runtime, starts=True)


def _polecat_for(worker: Worker, runtime: Runtime) -> bool:
    return worker.role is Role.POLECAT and worker.runtime is runtime


def _startable(worker: Worker) -> bool:
    """A stopped polecat may be started unless it is queued for a terminal already."""
    return worker.state is not AgentState.QUEUED


def new_polecat_name(names: Iterable[str]) -> str:
    """`polecat-N` with the smallest N >= 1 that no agent is called."""
    used = set(names)
    n = 1
    while f"{POLECAT_PREFIX}{n}" in used:
        n += 1
    return f"{POLECAT_PREFIX}{n}"


def _name_key(name: str) -> tuple[str, int, str]:
    """`polecat-2` before `polecat-10`: names ending in a number sort by that number."""
    stem, _, number = name.rpartition("-")
    if stem and number.isdigit():
        return stem, int(number), name
    return name, -1, name


def waiting_reasons(
    backlog: Iterable[Bead],
    open_blockers: Mapping[int, Sequence[int]],
    convoys: Mapping[int, Convoy],
    flags: Flags,
    capacity: Capacity,
    brake: Brake = NO_BRAKE,
    now: str = "",
) -> list[Waiting]:
    """Why each backlog bead is not dispatched, in queue order.

    A bead with open blockers is `BLOCKED`; one in a convoy not started, `CONVOY`.
    A ready bead waits for the town (down, paused, budget), or for its convoy's budget,
    else for capacity when none is free; a ready bead with capacity free is about to be
    taken, and is not listed (the daemon's planner names the few that wait for a
    matching agent, or for an account's rate limit).
    """
    stop = _town_reason(flags, brake, now)
    out: list[Waiting] = []
    for bead in backlog:
        if bead.status is not BeadStatus.BACKLOG:
            continue
        blockers = list(open_blockers.get(bead.id, ()))
        if blockers:
            detail = "waits for " + ", ".join(format_bead_id(b) for b in blockers)
            out.append(Waiting(bead.id, bead.title, WaitReason.BLOCKED, detail))
            continue
        convoy = convoys.get(bead.convoy_id) if bead.convoy_id is not None else None
        if bead.convoy_id is not None and (
            convoy is None or convoy.status is not ConvoyStatus.ACTIVE
        ):
            state = convoy.status.value if convoy is not None else "missing"
            name = convoy.name if convoy is not None else str(bead.convoy_id)
            detail = f"convoy {name} is {state}: `at convoy start {name}`"
            out.append(Waiting(bead.id, bead.title, WaitReason.CONVOY, detail))
            continue
        convoy_stop = brake.convoy_stop(bead.convoy_id, now) if bead.convoy_id else None
        if stop is not None:
            out.append(Waiting(bead.id, bead.title, stop[0], stop[1]))
        elif convoy_stop is not None:
            out.append(Waiting(bead.id, bead.title, WaitReason.BUDGET, convoy_stop))
        elif capacity.free <= 0:
            out.append(Waiting(bead.id, bead.title, WaitReason.CAPACITY, _full(capacity, 0)))
    return out
