"""Handing a claimed bead to its agent: worktree, start, ready, slung, prompt typed and taken.

One path for dispatch, `at sling` and `at polecat spawn --bead` (trap 6): the bead is
already hooked to the agent (the claim, one transaction). Then:

1. the worktree: the bead's branch where it is checked out and clean, else the agent's
   own worktree switched to it, else a new one from the target branch; a dirty one is
   left as it is and the work goes on from its branch's tip on a new branch;
2. the agent is started if it is not running;
3. it must come to its prompt (`orchestra.ready_timeout_seconds`);
4. the bead goes hooked → slung (second transaction), then
5. the work prompt is typed, under the agent's input lock and a gate that refuses
   while that agent waits on an approval, verified, up to `orchestra.prompt_attempts`;
6. the dispatch is marked delivered.

Any failure gives the bead back (backlog, branch and notes kept) with the reason, as
`dispatch.failed`, and stops a polecat that cannot take it. A crash between steps
leaves an open dispatch, which the next daemon's `recover` gives back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tundra_tui.config import AgentSpec, LayeredConfig, load_config
from tundra_tui.daemon import faults
from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.daemon.leases import WorktreeLeases, lock_reason
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ChangedEvent, Event
from tundra_tui.domain.agents import AgentState, Role
from tundra_tui.domain.beads import Bead
from tundra_tui.domain.dispatch import Dispatch, polecat_branch
from tundra_tui.domain.errors import TundraError
from tundra_tui.orchestra.branches import default_target
from tundra_tui.orchestra.prompts import load_role_prompt, work_prompt
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store
from tundra_tui.town import Town

if TYPE_CHECKING:
    from tundra_tui.daemon.ops import AgentOps

ENDED = frozenset({AgentState.STOPPED, AgentState.EXITED, AgentState.FAILED, AgentState.LOST})
"""States of an agent whose process is gone: waiting for its prompt is over."""

ACTOR = "daemon"


def target_only(host: SessionHost, book: ApprovalBook, agent: str) -> Callable[[], None]:
    """The gate for input the daemon makes itself (work prompts, mail): checked before each
    write, it refuses while that agent waits on an approval, by the book or on its screen.
    Unlike an agent's own input, other agents' pending approvals do not matter (trap 5)."""

    def check() -> None:
        pending = book.pending_for(agent)
        if pending is not None:
            raise TundraError(f"{agent} is waiting for an answer to approval {pending}")
        if host.session(agent).state is AgentState.AWAITING_APPROVAL:
            raise TundraError(f"{agent} is waiting for an approval")

    return check


def target_branch(town: Town, config: LayeredConfig) -> str:
    """`orchestra.target_branch`, else the main worktree's branch, else main or master."""
    return str(config.get("orchestra.target_branch") or "") or default_target(town.root) or "HEAD"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the agent works on the bead, and how that worktree was found."""

    path: Path
    branch: str
    how: str
    """kept (it is there already), reused (the bead's worktree), switched or created."""
    dirty_left: str = ""
    """A worktree of the bead's left alone because it has uncommitted changes."""


def place_worktree(
    trees: Worktrees,
    agent: str,
    bead_id: int,
    *,
    old_branch: str,
    target: str,
    current: Path | None,
) -> Placement:
    """Find or make the worktree `agent` works `bead_id` in (git work: run in a thread).

    `current` is the worktree of an agent that runs (it cannot move: it is switched);
    None for an agent about to start. `old_branch` is the bead's branch from an earlier
    dispatch: its work is resumed, in its own worktree when that is clean and free.
    """
    mine = polecat_branch(agent, bead_id)
    here = current.resolve() if current is not None else None
    dirty_left = ""
    for branch in dict.fromkeys(b for b in (old_branch, mine) if b):
        holder = trees.holding(branch)
        if holder is None:
            continue
        if here is not None and holder.path == here:
            return Placement(holder.path, branch, "kept")
        if holder.missing:
            continue
        if not trees.clean(holder.path):
            dirty_left = str(holder.path)
        elif here is None and not holder.locked:
            trees.lock(holder.path, lock_reason(agent))
            return Placement(holder.path, branch, "reused")
        elif here is None and holder.lock_reason == lock_reason(agent):
            # Still locked for this agent, which is not running (its exit's release is
            # on its way): its own worktree, taken back as it is.
            return Placement(holder.path, branch, "reused")
    old = bool(old_branch) and trees.holding(old_branch) is None and trees.has_branch(old_branch)
    if old:
        branch, base = old_branch, old_branch
    elif old_branch and trees.has_branch(old_branch):
        branch, base = mine, old_branch  # its worktree is dirty or busy: go on from its tip
    else:
        branch, base = mine, target
    if here is not None:
        switched = trees.switch(here, branch, base=base)
        return Placement(switched.path, branch, "switched", dirty_left)
    for own in trees.list():
        if own.agent == agent and not own.locked and not own.missing and trees.clean(own.path):
            switched = trees.switch(own.path, branch, base=base)
            trees.lock(switched.path, lock_reason(agent))
            return Placement(switched.path, branch, "switched", dirty_left)
    made = trees.create(agent, bead_id, base=old_branch if branch != mine else base)
    return Placement(made.path, made.branch, "created", dirty_left)


@dataclass(frozen=True, slots=True)
class HandoverResult:
    """How a hand-over ended: the prompt taken (with its evidence) or why not."""

    delivered: bool
    attempts: int = 0
    evidence: str = ""
    started: bool = False
    """The agent was started for it."""


class HandoverFailed(TundraError):
    """A step of the hand-over could not be done; the reason is the message."""


class Handover:
    """Runs hand-overs (see the module docstring); each is awaited by its caller."""

    def __init__(
        self,
        *,
        town: Town,
        store: Store,
        host: SessionHost,
        book: ApprovalBook,
        agents: AgentOps,
        leases: WorktreeLeases,
        log: DaemonLog,
        publish: Callable[[Event], None],
    ) -> None:
        self.town = town
        self.store = store
        self.host = host
        self.book = book
        self.agents = agents
        self.leases = leases
        self.log = log
        self.publish = publish
        self.stopping: set[str] = set()
        """Agents the hand-over stops itself after a failure (not a death to report)."""

    def live(self, agent: str) -> bool:
        with contextlib.suppress(TundraError):
            session = self.host.session(agent)
            return session.pid is not None or session.state is AgentState.QUEUED
        return False

    async def run(self, dispatch: Dispatch, bead: Bead, spec: AgentSpec) -> HandoverResult:
        """Hand `bead` (claimed by `dispatch`) to `spec`'s agent; never raises for a step
        that fails: the bead is given back and the result says why."""
        agent = dispatch.agent
        started = False
        attempts = 0
        try:
            config = load_config(self.town)
            target = target_branch(self.town, config)
            running = self.live(agent)
            placement = await self._place(spec, bead, target, running)
            if not running:
                await self.agents.start_agent(
                    agent, bead=bead.id, cwd=placement.path if placement else None
                )
                started = True
                if spec.role is Role.POLECAT:
                    await self._event("polecat.started", dispatch, {"runtime": spec.runtime})
            elif spec.role is Role.POLECAT:
                await self._event("polecat.reused", dispatch, {"runtime": spec.runtime})
            timeout = float(config.get("orchestra.ready_timeout_seconds"))
            await self._ready(agent, timeout)
            branch = placement.branch if placement is not None else ""
            role = Role.POLECAT if spec.role is Role.POLECAT else Role.CREW
            text = work_prompt(
                load_role_prompt(self.town, config, role),
                bead=bead,
                notes=await self.store.notes.for_bead(bead.id),
                agent=agent,
                branch=branch or "your current branch",
                target=target,
                max_chars=int(config.get("orchestra.prompt_max_chars")),
            )
            async with self.host.input_lock(agent):
                # Mail may have been typed while the prompt was built: its prompt again.
                await self._ready(agent, timeout)
                await self.store.dispatches.slung(
                    dispatch.id,
                    branch=branch,
                    worktree=str(placement.path) if placement else "",
                    actor=ACTOR,
                )
                self._changed(bead.id)
                faults.hit("dispatch.slung")
                delivery = await self.host.send_text(
                    agent,
                    text,
                    retries=max(int(config.get("orchestra.prompt_attempts")) - 1, 0),
                    gate=target_only(self.host, self.book, agent),
                )
                faults.hit("dispatch.typed")
            attempts = delivery.attempts
            if not delivery.delivered:
                raise HandoverFailed(f"the work prompt was not taken: {delivery.evidence}")
            await self.store.dispatches.delivered(
                dispatch.id, attempts=attempts, evidence=delivery.evidence, actor=ACTOR
            )
            self._changed(bead.id)
            self.log.info("dispatch.delivered", agent=agent, bead=bead.id, attempts=attempts)
            return HandoverResult(True, attempts, delivery.evidence, started)
        except (TundraError, OSError) as error:
            reason = str(error) or type(error).__name__
            await self._failed(dispatch, spec, reason, started)
            return HandoverResult(False, attempts, reason, started)
        except Exception as error:  # a bug: the bead must not stay hooked to nobody working
            self.log.exception("dispatch.crashed", agent=agent, error=error)
            reason = f"internal error: {type(error).__name__}: {error}"
            await self._failed(dispatch, spec, reason, started)
            return HandoverResult(False, attempts, reason, started)

    async def _place(
        self, spec: AgentSpec, bead: Bead, target: str, running: bool
    ) -> Placement | None:
        """The worktree, for an agent that works in one (every polecat does)."""
        agent = spec.name
        if not (spec.worktree or spec.role is Role.POLECAT):
            return None
        current = self.leases.held(agent) if running else None
        if running and current is None:
            raise HandoverFailed(f"{agent} runs outside a worktree of its own: stop it first")
        trees = await asyncio.to_thread(Worktrees, self.town.root, self.town.worktrees_dir)
        placement = await asyncio.to_thread(
            place_worktree,
            trees,
            agent,
            bead.id,
            old_branch=bead.branch,
            target=target,
            current=current,
        )
        if not running:
            self.leases.hold(agent, trees, placement.path)
        if placement.dirty_left:
            await self.store.events.record(
                "dispatch.worktree_dirty",
                actor=ACTOR,
                agent=agent,
                bead_id=bead.id,
                data={
                    "left": placement.dirty_left,
                    "branch": placement.branch,
                    "reason": "the bead's worktree has uncommitted changes: left as it is",
                },
            )
        return placement

    async def _ready(self, agent: str, timeout: float) -> None:
        session = self.host.session(agent)
        await session.wait_for(lambda state: state is AgentState.IDLE or state in ENDED, timeout)
        if session.state is not AgentState.IDLE:
            raise HandoverFailed(
                f"{agent} did not come to its prompt within {timeout:g} s "
                f"(it is {session.state.value})"
            )

    async def _failed(
        self, dispatch: Dispatch, spec: AgentSpec, reason: str, started: bool
    ) -> None:
        """Give the bead back, say why, and stop a polecat that could not take it."""
        agent = dispatch.agent
        self.log.warning("dispatch.failed", agent=agent, bead=dispatch.bead_id, error=reason)
        try:
            await self.store.dispatches.give_back(dispatch.id, reason=reason, actor=ACTOR)
            await self._event("dispatch.failed", dispatch, {"reason": reason[:500]})
        finally:
            self._changed(dispatch.bead_id)
            if spec.role is Role.POLECAT and self.live(agent):
                self.stopping.add(agent)
                try:
                    await self.host.stop(agent)
                except TundraError as error:
                    self.log.warning("polecat.stop_failed", agent=agent, error=error)
                finally:
                    self.stopping.discard(agent)
            elif not self.live(agent):
                await self.leases.release(agent)

    async def _event(self, kind: str, dispatch: Dispatch, data: dict[str, object]) -> None:
        await self.store.events.record(
            kind,
            actor=ACTOR,
            agent=dispatch.agent,
            bead_id=dispatch.bead_id,
            data={"dispatch": dispatch.id, **{k: str(v) for k, v in data.items()}},
        )

    def _changed(self, bead_id: int) -> None:
        self.publish(ChangedEvent(what="beads", ids=[bead_id]))
        self.publish(ChangedEvent(what="dispatch", ids=[bead_id]))
