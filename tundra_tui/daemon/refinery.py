"""The refinery: the daemon's merge queue. Beads in review are landed one at a time.

For each bead, in lane, priority and age order: archive the submitted tip, rebase (or
merge) a copy onto the target in the refinery's own worktree, run `refinery.gates`
there, record the verdict, then move the target with a compare-and-swap ref update.
Red or conflicting work goes back to its agent (mail while it waits in its worktree,
else through backlog with a note), and is escalated after `refinery.max_attempts`.

Serial on purpose: one attempt at a time, each step awaited, so the target can only
ever be the commit an attempt started from or the one it produced, and recovery after a
kill -9 reads which from the store and git alone (plan §1.7). Git and the gates run off
the loop (threads, subprocesses). Every wait is capped by the patrol interval, so a
target moved by hand or a config change is seen without any event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from tundra_tui.config import LayeredConfig, load_config
from tundra_tui.daemon import faults
from tundra_tui.daemon.gate import Gate
from tundra_tui.daemon.leases import WorktreeLeases
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import (
    AttentionEvent,
    ChangedEvent,
    Event,
    RefineryControl,
    RefineryQuery,
    RefineryStatus,
    Request,
)
from tundra_tui.daemon.refinery_status import LiveStep, read_status
from tundra_tui.daemon.transport import Caller, Handler
from tundra_tui.domain.agents import Role
from tundra_tui.domain.beads import Bead, BeadStatus
from tundra_tui.domain.clock import iso, system_clock
from tundra_tui.domain.dispatch import BRANCH_PREFIX, DispatchKind
from tundra_tui.domain.errors import NotFound, TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.domain.handover import rework_subject
from tundra_tui.domain.refinery import (
    CHECKOUT_BASE,
    AttemptState,
    Escalate,
    GateResult,
    MergeAttempt,
    Outcome,
    QueuedBead,
    RefineryState,
    Rework,
    Strategy,
    ToBacklog,
)
from tundra_tui.domain.sanitize import visible
from tundra_tui.orchestra import notices
from tundra_tui.orchestra.gates import gate_env, kill_marked, run_gate
from tundra_tui.orchestra.merge_queue import (
    rework_body,
    rework_kind,
    rework_path,
)
from tundra_tui.orchestra.refinery_git import RefineryGit
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.session.events import Exited, HostEvent
from tundra_tui.session.host import SessionHost
from tundra_tui.store import Store
from tundra_tui.town import Town

ACTOR = "refinery"
RETRY_SECONDS = (5.0, 30.0, 120.0)
"""How long a bead whose attempt ended in our own error is held back (1st, 2nd, 3rd+)."""
CYCLE_RETRY_SECONDS = (1.0, 5.0, 30.0)
"""How long after a failed cycle (git or the store failing outside an attempt) it retries."""
CLEANUP_WAIT_SECONDS = 5.0
"""How soon a worktree whose agent is still in it is looked at again."""
_WAKING = (
    "bead.submit",
    "bead.retry",
    "refinery.paused",
    "refinery.resumed",
    "refinery.retry",
    "town.up",
    "town.down",
    "polecat.retired",
    "dispatch.slung",
)
_CLEANUP_KINDS = ("polecat.retired", "dispatch.slung")
_MAX_REASON = 500


class _Stop(Exception):
    """Ends one attempt early; the verdict is already recorded."""


class Refinery:
    """The merge queue's loop, its recovery and its requests (see the module docstring)."""

    def __init__(
        self,
        town: Town,
        store: Store,
        host: SessionHost,
        leases: WorktreeLeases,
        gate: Gate,
        publish: Callable[[Event], None],
        log: DaemonLog,
        own: Callable[[Awaitable[Any]], None],
        *,
        wake_dispatch: Callable[[str], None],
        offer_mail: Callable[[str], None],
        config: Callable[[], LayeredConfig] | None = None,
    ) -> None:
        self.town = town
        self.store = store
        self.host = host
        self.leases = leases
        self.gate = gate
        self.publish = publish
        self.log = log
        self._own = own
        self.wake_dispatch = wake_dispatch
        self.offer_mail = offer_mail
        self._config = config or (lambda: load_config(town))
        base = town.state_dir / "refinery"
        self.git = RefineryGit(town.root, base / "work")
        self.logs_dir = base / "logs"
        self.town_key = hashlib.sha1(str(town.root).encode()).hexdigest()[:12]
        self._wake = asyncio.Event()
        self._why: list[str] = []
        self._live = LiveStep(RefineryState.IDLE)
        self._holding = False
        self._cleanup_due = True
        self._target_commit = ""
        """The target's commit when last looked at (for the status)."""
        self._cleanup_at: float | None = None
        """When skipped cleanups are looked at again (no event is sure to come)."""
        self._forget_red = False
        self._bead_hold: dict[int, tuple[float, str]] = {}
        """Beads held back after an attempt ended in our own error: (until, reason)."""
        self._errors: dict[int, int] = {}
        self._standing: dict[str, AttentionEvent] = {}
        """Attention still true (target red, needs gates), by key: late clients get it."""
        self._told: set[str] = set()
        """Attention keys already sent (each is said once)."""
        self._left: set[int] = set()
        """Attempts whose worktree cleanup was refused (said once)."""
        self._cycle_failures = 0
        self._retry_at: float | None = None

    # ---- what wakes it ---------------------------------------------------------------------

    def wake(self, why: str) -> None:
        """Ask for a cycle soon; calls before it starts are one cycle."""
        self._why.append(why)
        self._wake.set()

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        for event in events:
            if event.kind in _CLEANUP_KINDS:
                self._cleanup_due = True
            if event.kind == "refinery.retry":
                self._forget_red = True
            if event.kind in _WAKING:
                self.wake(event.kind)

    def on_host(self, event: HostEvent) -> None:
        if isinstance(event, Exited):
            self._cleanup_due = True
            self.wake(f"{event.agent} exited")

    def holding(self) -> bool:
        """Whether agents of beads in review wait for the verdict (the dispatcher keeps
        them): only while the refinery can actually merge (up, enabled, gates set, not
        paused, target green, no cycle in error backoff)."""
        return self._holding

    def standing(self) -> list[AttentionEvent]:
        """Attention still true, for a new client's snapshot."""
        return list(self._standing.values())

    # ---- recovery --------------------------------------------------------------------------

    async def recover(self) -> None:
        """At start, before the tail: kill gates a dead daemon left, remove its worktree,
        and settle each open attempt from the store and the target ref alone. A town that
        never ran a merge pays one query: gates only run inside the refinery's worktree,
        so without it (and with no open attempt) nothing can be left behind; it also pays
        one for escalations whose notice a kill may have cut (`_resend_escalations`)."""
        await self._resend_escalations()
        attempts = await self.store.merges.open()
        if not attempts and not os.path.lexists(self.git.workdir):
            return
        killed = await asyncio.to_thread(kill_marked, f"{self.town_key}:")
        if killed:
            self.log.info("refinery.gates_killed", pids=killed)
        try:
            await asyncio.to_thread(self.git.reset_workdir)
        except TundraError as error:
            self.log.warning("refinery.reset_failed", error=error)
        for attempt in attempts:
            try:
                await self._settle(attempt)
            except TundraError as error:
                self.log.warning("refinery.recover_failed", attempt=attempt.id, error=error)

    async def _resend_escalations(self) -> None:
        """Tell the mayor and operator about an escalation the last daemon recorded but
        died before announcing (killed right after `reject`): its `refinery.rejected`
        (path escalated) has no later `refinery.escalated`. Only escalated beads not yet
        tidied can be such (cleanup follows the notice)."""
        config: LayeredConfig | None = None
        for attempt in await self.store.merges.uncleaned():
            if attempt.outcome is Outcome.MERGED:
                continue
            said = await self.store.events.find(
                bead_id=attempt.bead_id, kind_prefix="refinery.", limit=50
            )
            last = next(
                (
                    e
                    for e in reversed(said)
                    if e.kind in ("refinery.rejected", "refinery.escalated")
                ),
                None,
            )
            if last is None or last.kind != "refinery.rejected":
                continue
            if last.data.get("path") != "escalated":
                continue
            try:
                bead = await self.store.beads.get(attempt.bead_id)
                if bead.status is not BeadStatus.ESCALATED:
                    continue
                config = config or self._config()
                counted = await self.store.merges.counted(bead.id)
                reason = f"{counted} attempt(s) failed; last: {last.data.get('reason', '')}"
                self.log.info("refinery.escalation_resent", bead=bead.id)
                await self._escalated(bead, config, reason)
            except TundraError as error:
                self.log.warning("refinery.resend_failed", bead=attempt.bead_id, error=error)

    async def _settle(
        self,
        attempt: MergeAttempt,
        outcome: Outcome = Outcome.INTERRUPTED,
        reason: str = "the daemon stopped mid-merge",
    ) -> None:
        """An attempt the last daemon left open: merged if the target holds its verified
        result (the CAS landed), else interrupted (not counted; the bead is queued again).
        Its archive ref is made if the cut came before it: every submitted tip is kept."""
        if attempt.branch_tip and attempt.archive_ref:
            with contextlib.suppress(TundraError):
                await asyncio.to_thread(self.git.archive, attempt.archive_ref, attempt.branch_tip)
        landed = False
        if attempt.state is AttemptState.MERGING and attempt.result_commit:
            now = await asyncio.to_thread(self.git.tip, attempt.target)
            landed = bool(now) and await asyncio.to_thread(
                self.git.is_ancestor, attempt.result_commit, now
            )
        if landed:
            bead = await self.store.merges.merged(attempt.id, actor=ACTOR)
            self.log.info("refinery.recovered_merged", attempt=attempt.id, bead=bead.id)
            self._cleanup_due = True
        else:
            await self.store.merges.close(
                attempt.id, outcome, reason=reason[:_MAX_REASON], actor=ACTOR
            )
            self.log.info("refinery.settled", attempt=attempt.id, outcome=outcome.value)
        self._changed(attempt.bead_id)

    # ---- running ---------------------------------------------------------------------------

    async def run(self, stopped: asyncio.Event) -> None:
        """One cycle per wake-up (or patrol tick) until stopped; a cycle drains the queue."""
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
                self._retry_at = None
                try:
                    await self._cycle(stopped)
                    self._cycle_failures = 0
                except TundraError as error:
                    self._failed_cycle(str(error))
                except Exception as error:  # a bug or a sick store must not end the refinery
                    self.log.exception("refinery.cycle_crashed", error=error)
                    self._failed_cycle(f"{type(error).__name__}: {error}")
        finally:
            halt.cancel()

    def _failed_cycle(self, reason: str) -> None:
        self.log.warning("refinery.cycle_failed", error=reason)
        self._set_holding(False)  # in backoff: no verdict is coming soon
        self._set_live(RefineryState.ERROR, reason)
        self._attention("refinery error", f"error:{reason}", reason, standing=False)
        delay = CYCLE_RETRY_SECONDS[min(self._cycle_failures, len(CYCLE_RETRY_SECONDS) - 1)]
        self._cycle_failures += 1
        self._retry_at = time.monotonic() + delay

    def _next_due(self) -> float:
        now = time.monotonic()
        patrol = self._patrol()
        due = [until for until, _ in self._bead_hold.values()]
        if self._retry_at is not None:
            due.append(self._retry_at)
        if self._cleanup_at is not None:
            due.append(self._cleanup_at)
        return min(patrol, max(0.05, min(due, default=now + patrol) - now))

    def _patrol(self) -> float:
        with contextlib.suppress(TundraError, ValueError, TypeError):
            return float(self._config().get("daemon.patrol_interval_seconds"))
        return 60.0

    async def _cycle(self, stopped: asyncio.Event) -> None:
        """Merge beads one by one while the refinery may and the queue has any."""
        # The loop is serial: an attempt still open here was left by a failure that escaped
        # its own handling. Settle it as recovery would, or its bead is never taken again.
        for stale in await self.store.merges.open():
            self.log.warning("refinery.stale_attempt", attempt=stale.id, bead=stale.bead_id)
            await self._settle(stale, Outcome.ERROR, "the attempt was left open by a failure")
        while not stopped.is_set():
            cleanup_at = self._cleanup_at
            if self._cleanup_due or (cleanup_at is not None and time.monotonic() >= cleanup_at):
                await self._cleanup()
            await self._caught_up()
            ready = await self._allowed()
            if ready is None:
                return
            config, gates, ref, t0 = ready
            green = not gates or await self._target_green(gates, config, ref, t0)
            # Agents wait for a verdict only when one can come: a red target frees them.
            self._set_holding(green)
            if not green:
                return
            queued = await self._next()
            if queued is None:
                self._set_live(RefineryState.IDLE)
                return
            await self._attempt(queued, config, gates, ref, t0)

    async def _allowed(self) -> tuple[LayeredConfig, list[str], str, str] | None:
        """(config, gates, target ref, target commit) when the refinery may merge now; else
        None with the state saying why (and agents are not held)."""
        config = self._config()
        flags = await self.store.flags.get()
        gates_value = config.get("refinery.gates")
        state, detail = RefineryState.IDLE, ""
        ref = t0 = ""
        if not config.get("refinery.enabled"):
            state = RefineryState.DISABLED
        elif not flags.up:
            state = RefineryState.DOWN
        elif gates_value is None:
            state = RefineryState.NEEDS_GATES
            detail = "set refinery.gates (a list of shell commands; [] for none)"
        elif not (configured := _configured_target(config)):
            # Never the checked-out branch by default: a `git switch` would move it.
            state = RefineryState.NO_TARGET
            detail = "set orchestra.target_branch (the branch the refinery lands work on)"
        else:
            try:
                ref, t0 = await asyncio.to_thread(self.git.resolve_target, configured)
            except TundraError as error:
                state, detail = RefineryState.NO_TARGET, str(error)
        if state is RefineryState.IDLE and flags.refinery_paused:
            state, detail = RefineryState.PAUSED, flags.refinery_pause_reason
        if state is not RefineryState.IDLE:
            self._set_holding(False)
        if state is RefineryState.NEEDS_GATES:
            waiting = await self.store.beads.find(status=BeadStatus.REVIEW)
            if waiting:
                self._attention(
                    "needs gates",
                    "needs-gates",
                    f"{len(waiting)} bead(s) in review wait: set refinery.gates",
                    standing=False,
                )
        else:
            self._standing.pop("needs-gates", None)
            self._told.discard("needs-gates")
        if state is not RefineryState.IDLE:
            self._set_live(state, detail)
            return None
        gates = [str(g) for g in gates_value]
        self._target_commit = t0
        return config, gates, ref, t0

    def _set_holding(self, holding: bool) -> None:
        if holding != self._holding:
            self._holding = holding
            self.wake_dispatch("refinery holding" if holding else "refinery released")

    async def _next(self) -> QueuedBead | None:
        now = time.monotonic()
        self._bead_hold = {b: v for b, v in self._bead_hold.items() if v[0] > now}
        for queued in await self.store.merges.queue(limit=len(self._bead_hold) + 1):
            if queued.bead.id not in self._bead_hold:
                return queued
        return None

    # ---- the target pre-check ----------------------------------------------------------------

    async def _target_green(
        self, gates: list[str], config: LayeredConfig, ref: str, t0: str
    ) -> bool:
        """Whether target commit `t0` passes the gates: known (a merge produced it, or it
        was checked), else checked now. Red blames nobody: no attempt is made."""
        if self._forget_red:
            self._forget_red = False
            await self.store.merges.forget_target(t0)
        await self._same_gates(gates)
        check = await self.store.merges.target_check(t0)
        if check is None:
            if not await self.store.merges.queue(limit=1):
                return True  # nothing to merge: no need to spend a gate run yet
            self._set_live(RefineryState.MERGING, f"checking {_short(ref)} at {t0[:7]}")
            green, detail = await self._check_target(gates, config, t0)
            check = await self.store.merges.record_target(
                t0, green=green, detail=detail, actor=ACTOR
            )
            self._changed()
        name = _short(ref)
        if check.green:
            self._standing.pop("target-red", None)
            return True
        reason = f"{name} at {t0[:7]} fails the gates; no bead is blamed: fix {name}"
        self._set_live(RefineryState.TARGET_RED, f"{name} {t0[:7]}")
        self._attention("target red", f"target-red:{t0}", reason, standing=True, key="target-red")
        return False

    async def _same_gates(self, gates: list[str]) -> None:
        """Forget every target verdict when `refinery.gates` changed since they were made
        (a new gate must be checked on the target, a fixed one must clear a red). The list
        the verdicts belong to is kept, hashed, beside the gate logs."""
        digest = hashlib.sha256(json.dumps(gates).encode()).hexdigest()
        path = self.logs_dir.parent / "gates.sha256"

        def known() -> str:
            with contextlib.suppress(OSError):
                return path.read_text().strip()
            return ""

        if await asyncio.to_thread(known) == digest:
            return
        await self.store.merges.forget_targets()

        def remember() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_suffix(".tmp")
            scratch.write_text(digest + "\n")
            scratch.replace(path)

        await asyncio.to_thread(remember)
        self.log.info("refinery.gates_changed", gates=len(gates))

    async def _check_target(
        self, gates: list[str], config: LayeredConfig, t0: str
    ) -> tuple[bool, str]:
        await asyncio.to_thread(self.git.prepare, t0)
        try:
            timeout = float(config.get("refinery.gate_timeout_seconds"))
            for idx, command in enumerate(gates):
                log_path = self.logs_dir / f"pre-{t0[:12]}-{idx}.log"
                run = await run_gate(
                    command,
                    cwd=self.git.workdir,
                    env=gate_env(os.environ, f"{self.town_key}:pre"),
                    timeout=timeout,
                    log_path=log_path,
                )
                if not run.ok:
                    detail = {
                        "idx": idx,
                        "command": command,
                        "exit": run.exit_code,
                        "timed_out": run.timed_out,
                        "seconds": round(run.seconds, 3),
                        "tail": run.tail[-2000:],
                    }
                    return False, json.dumps(detail)
            return True, ""
        finally:
            await self._reset_workdir()

    # ---- one attempt -------------------------------------------------------------------------

    async def _attempt(
        self, queued: QueuedBead, config: LayeredConfig, gates: list[str], ref: str, t0: str
    ) -> None:
        bead = queued.bead
        strategy = Strategy(str(config.get("refinery.strategy") or "rebase"))
        tip = await asyncio.to_thread(self.git.tip, f"refs/heads/{bead.branch}")
        commits = await asyncio.to_thread(self.git.commits, t0, tip) if tip else []
        attempt = await self.store.merges.begin(
            bead.id,
            agent=bead.assignee or "",
            branch=bead.branch,
            branch_tip=tip,
            commits=commits,
            strategy=strategy,
            target=ref,
            target_before=t0,
            actor=ACTOR,
        )
        if attempt is None:
            # It left review meanwhile: a short hold keeps a disagreement from spinning.
            self._bead_hold[bead.id] = (time.monotonic() + RETRY_SECONDS[0], "not in review")
            return
        faults.hit("refinery.started")
        self._step(attempt, "integrating")
        self._changed(bead.id)
        try:
            await self._land(attempt, bead, config, gates, tip)
        except _Stop:
            pass
        except TundraError as error:
            await self._error(attempt, str(error))
        except Exception as error:  # an OSError (a log, a pipe) or a bug: never left open
            self.log.exception("refinery.attempt_crashed", error=error, attempt=attempt.id)
            await self._error(attempt, f"{type(error).__name__}: {error}")
        finally:
            await self._reset_workdir()
            self._set_live(RefineryState.IDLE)

    async def _land(
        self,
        attempt: MergeAttempt,
        bead: Bead,
        config: LayeredConfig,
        gates: list[str],
        tip: str,
    ) -> None:
        t0, ref = attempt.target_before, attempt.target
        if bead.branch == _short(ref) or not bead.branch.startswith(f"{BRANCH_PREFIX}/"):
            # Never merge the target into itself, nor land (then delete) a branch that is
            # not an agent's: a person must look.
            why = "is the target" if bead.branch == _short(ref) else "is not an agent's"
            reason = (
                f"branch {_oneline(bead.branch, 120)} {why} (the refinery lands only"
                f" {BRANCH_PREFIX}/ branches): refused"
            )
            await self._reject(attempt, bead, config, Outcome.CONFLICT, reason, escalate=True)
            raise _Stop
        if not tip:
            await self._reject(attempt, bead, config, Outcome.CONFLICT, "branch gone")
            raise _Stop
        await asyncio.to_thread(self.git.archive, attempt.archive_ref, tip)
        await asyncio.to_thread(self.git.prepare, t0)
        message = f"Merge #{bead.id}: {_oneline(bead.title)} ({bead.branch})"
        made = await asyncio.to_thread(self.git.integrate, attempt.strategy, t0, tip, message)
        if not made.ok:
            if made.conflicts:
                paths = ", ".join(made.conflicts[:5])
                reason = f"conflicts with {_short(ref)} in {paths}"
            else:
                # Git refused without conflicting paths ("refusing to merge unrelated
                # histories"): counted like a conflict, or it would retry forever.
                said = made.detail or "no message"
                reason = f"git could not {attempt.strategy} onto {_short(ref)}: {said}"
            await self._reject(
                attempt,
                bead,
                config,
                Outcome.CONFLICT,
                reason,
                conflicts=made.conflicts,
                detail=made.detail,
            )
            raise _Stop
        result = made.result
        faults.hit("refinery.integrated")
        if result != t0:
            await self._gates(attempt, bead, config, gates)
        if not await self.store.merges.verified(attempt.id, result_commit=result, actor=ACTOR):
            self._changed(bead.id)
            raise _Stop  # the bead left review meanwhile: withdrawn
        faults.hit("refinery.verified")
        self._step(attempt, "advancing")
        self._changed(bead.id)
        behind = False
        if result != t0:
            behind = await asyncio.to_thread(self.git.main_checkout_on, ref)
            if behind:
                await asyncio.to_thread(self.git.mark_checkout_base, ref, t0)
            moved = await asyncio.to_thread(
                self.git.advance,
                ref,
                result,
                t0,
                f"auto-tundra refinery: #{bead.id} {_oneline(bead.title)}",
            )
            if moved == "moved":
                await self.store.merges.close(
                    attempt.id,
                    Outcome.TARGET_MOVED,
                    reason=f"{_short(ref)} moved during the attempt; trying again",
                    actor=ACTOR,
                )
                self._changed(bead.id)
                raise _Stop
        faults.hit("refinery.advanced")
        if behind:
            self._checkout_behind(ref)
        done = await self.store.merges.merged(attempt.id, actor=ACTOR)
        faults.hit("refinery.merged")
        self.log.info("refinery.merged", bead=bead.id, result=result, attempt=attempt.id)
        self._errors.pop(bead.id, None)
        self._changed(done.id)
        self.publish(ChangedEvent(what="beads", ids=[done.id]))
        self.wake_dispatch(f"#{done.id} merged")
        self._cleanup_due = True

    def _checkout_behind(self, ref: str) -> None:
        """The operator's checkout is on the target, which moved under it: say once how to
        catch up (its files still match the checkout-base commit; never commit there)."""
        name = _short(ref)
        base = f"{CHECKOUT_BASE}/{name}"
        self._attention(
            "checkout behind",
            "checkout-behind",
            f"your checkout on {name} is behind what the refinery merged; do not commit"
            f" there: run `at refinery sync` (or `git read-tree -m -u {base} {name}`"
            f" then `git update-ref -d {base}`)",
            standing=True,
        )

    async def _caught_up(self) -> None:
        """Say (again after a restart) or drop the checkout-behind notice, from git alone:
        the checkout-base ref exists while the operator's checkout is on the target."""
        name = await self._behind(self._config())
        if name:
            self._checkout_behind(f"refs/heads/{name}")
        elif "checkout-behind" in self._standing:
            self._standing.pop("checkout-behind", None)
            self._told.discard("checkout-behind")

    async def _behind(self, config: LayeredConfig) -> str:
        """The target's name when the operator's checkout is behind it, else ""."""
        name = _short(_configured_target(config))
        if not name:
            return ""

        def look() -> bool:
            if not self.git.tip(f"{CHECKOUT_BASE}/{name}"):
                return False
            return self.git.main_checkout_on(name)

        try:
            return name if await asyncio.to_thread(look) else ""
        except TundraError:
            return ""  # not a git repository (yet): nothing can be behind

    async def _gates(
        self, attempt: MergeAttempt, bead: Bead, config: LayeredConfig, gates: list[str]
    ) -> None:
        """Run the gates in order, stopping at the first red (then rejected)."""
        timeout = float(config.get("refinery.gate_timeout_seconds"))
        env = gate_env(os.environ, f"{self.town_key}:{attempt.id}")
        for idx, command in enumerate(gates):
            log_path = self.logs_dir / f"{attempt.id}-{idx}.log"
            await self.store.merges.gate_started(attempt.id, idx, command, log_path=str(log_path))
            self._step(attempt, f"gate {idx + 1}/{len(gates)} `{_oneline(command, 80)}`")
            self._changed(bead.id)
            started_at = iso(system_clock())

            def running(pid: int, first: bool = idx == 0) -> None:
                if first:
                    faults.hit("refinery.gate")

            run = await run_gate(
                command,
                cwd=self.git.workdir,
                env=env,
                timeout=timeout,
                log_path=log_path,
                started=running,
            )
            result = GateResult(
                idx=idx,
                command=command,
                ok=run.ok,
                exit_code=run.exit_code,
                timed_out=run.timed_out,
                seconds=run.seconds,
                tail=run.tail,
                log_path=str(log_path),
                started_at=started_at,
                finished_at=iso(system_clock()),
            )
            await self.store.merges.gate_finished(attempt.id, result, actor=ACTOR)
            self._changed(bead.id)
            if not run.ok:
                verdict = (
                    f"timed out after {run.seconds:.0f} s"
                    if run.timed_out
                    else f"exited {run.exit_code}"
                )
                reason = f"gate `{_oneline(command, 120)}` {verdict}"
                await self._reject(attempt, bead, config, Outcome.GATE_FAILED, reason, gate=result)
                raise _Stop

    async def _reject(
        self,
        attempt: MergeAttempt,
        bead: Bead,
        config: LayeredConfig,
        outcome: Outcome,
        reason: str,
        *,
        conflicts: Sequence[str] = (),
        gate: GateResult | None = None,
        detail: str = "",
        escalate: bool = False,
    ) -> None:
        """Send the bead back (mail or backlog) or escalate it (at once with `escalate`),
        in one store write."""
        kind = rework_kind(outcome)
        body = rework_body(
            kind,
            bead_id=bead.id,
            branch=bead.branch,
            target=attempt.target,
            conflicts=conflicts,
            gate=gate,
            detail=detail,
        )
        max_attempts = int(config.get("refinery.max_attempts"))
        then: Rework | ToBacklog | Escalate
        if escalate:
            then = Escalate(reason=reason)
        else:
            # Rework or escalate is decided by `reject`, counting inside its transaction
            # (an `at refinery retry` may have zeroed the count meanwhile).
            then = await self._rework_plan(bead, config, kind, body)
        rejected = await self.store.merges.reject(
            attempt.id,
            outcome,
            reason=reason[:_MAX_REASON],
            conflicts=conflicts,
            then=then,
            actor=ACTOR,
            max_attempts=max_attempts,
        )
        faults.hit("refinery.rejected")
        self.log.info("refinery.rejected", bead=bead.id, outcome=outcome.value, path=rejected.path)
        self._changed(bead.id)
        self.publish(ChangedEvent(what="beads", ids=[bead.id]))
        if rejected.path == "mail":
            self.publish(ChangedEvent(what="mail", ids=[]))
            self.offer_mail(bead.assignee or "")
        elif rejected.path == "escalated":
            if isinstance(then, Escalate):
                said = then.reason
            else:
                counted = await self.store.merges.counted(bead.id)
                said = f"{counted} attempt(s) failed; last: {reason}"
            await self._escalated(rejected.bead, config, said)
        self.wake_dispatch(f"#{bead.id} {rejected.path}")

    async def _rework_plan(
        self, bead: Bead, config: LayeredConfig, kind: str, body: str
    ) -> Rework | ToBacklog:
        """Path A when the agent waits live and free in the bead's worktree, else B."""
        agent = bead.assignee or ""
        live = free = there = False
        worktree: Path | None = None
        if agent:
            with contextlib.suppress(NotFound):
                session = self.host.session(agent)
                live = session.pid is not None and session.state.is_live
            free = all(d.agent != agent for d in await self.store.dispatches.open())
            held = self.leases.held(agent)
            if held is not None:
                holder = await asyncio.to_thread(self._holder, bead.branch)
                there = holder is not None and holder.resolve() == Path(held).resolve()
                worktree = held
        if rework_path(live, free, there) == "mail" and worktree is not None:
            spec = config.agents().get(agent)
            role = spec.role if spec is not None else Role.POLECAT
            return Rework(
                agent=agent,
                kind=DispatchKind.CREW if role is Role.CREW else DispatchKind.POLECAT,
                worktree=str(worktree),
                subject=rework_subject(bead.id, kind),
                body=body,
            )
        return ToBacklog(note=body)

    def _holder(self, branch: str) -> Path | None:
        with contextlib.suppress(TundraError):
            found = Worktrees(self.town.root, self.town.worktrees_dir).holding(branch)
            return found.path if found is not None else None
        return None

    async def _escalated(self, bead: Bead, config: LayeredConfig, reason: str) -> None:
        try:
            await notices.tell_mayor_and_operator(
                self.store, config, sender=ACTOR, bead=bead, kind="escalate", text=reason
            )
        except TundraError as error:
            self.log.warning("refinery.notice_failed", bead=bead.id, error=error)
        await self.store.events.record(
            "refinery.escalated", actor=ACTOR, bead_id=bead.id, data={"reason": reason}
        )
        self.publish(ChangedEvent(what="mail", ids=[]))
        self._attention(
            "escalated",
            f"escalated:{bead.id}:{time.monotonic()}",
            f"{bead.ref} escalated by the refinery: {reason}",
            standing=False,
            agent=bead.assignee or ACTOR,
            bead=bead.id,
            bell=True,
        )
        self._cleanup_due = True

    async def _error(self, attempt: MergeAttempt, reason: str) -> None:
        """Our own failure (git, a lock, the disk): close the attempt uncounted and hold
        the bead back a while; said once per distinct reason."""
        self.log.warning("refinery.attempt_error", attempt=attempt.id, error=reason)
        with contextlib.suppress(TundraError):
            current = await self.store.merges.get(attempt.id)
            if current.state is AttemptState.MERGING:
                # The target may hold the result already (the store failed after the
                # CAS): settle it as recovery would, never merge it twice.
                await self._settle(current, Outcome.ERROR, reason)
            elif current.is_open:
                await self.store.merges.close(
                    attempt.id, Outcome.ERROR, reason=reason[:_MAX_REASON], actor=ACTOR
                )
        failures = self._errors.get(attempt.bead_id, 0)
        self._errors[attempt.bead_id] = failures + 1
        delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
        self._bead_hold[attempt.bead_id] = (time.monotonic() + delay, reason)
        self._attention("refinery error", f"error:{reason}", reason, standing=False)
        self._changed(attempt.bead_id)

    # ---- cleanup -----------------------------------------------------------------------------

    async def _cleanup(self) -> None:
        """Tidy merged and escalated attempts: remove the agent's worktree when nobody is in
        it and it holds nothing new (never forced), then delete a merged branch by CAS."""
        self._cleanup_due = False
        self._cleanup_at = None
        attempts = await self.store.merges.uncleaned()
        if not attempts:
            return
        try:
            trees = await asyncio.to_thread(Worktrees, self.town.root, self.town.worktrees_dir)
        except TundraError:
            return
        again = []
        for attempt in attempts:
            try:
                verdict = await self._tidy(trees, attempt)
            except TundraError as error:
                self.log.warning("refinery.cleanup_failed", attempt=attempt.id, error=error)
                verdict = "left"
            if verdict != "done":
                again.append(CLEANUP_WAIT_SECONDS if verdict == "wait" else self._patrol())
        if again:
            # An agent still in its worktree (or a lock not yet lifted) is looked at again
            # soon; a dirty worktree once per patrol. No event is sure to say when.
            self._cleanup_at = time.monotonic() + min(again)

    async def _tidy(
        self, trees: Worktrees, attempt: MergeAttempt
    ) -> Literal["done", "wait", "left"]:
        """One attempt's tidying: done, wait (its agent is still there), or left (dirty)."""
        data: dict[str, object] = {"branch": attempt.branch}
        holder = await asyncio.to_thread(trees.holding, attempt.branch)
        if holder is not None:
            agent = holder.agent
            held = self.leases.held(agent) if agent else None
            if holder.locked or (held is not None and Path(held).resolve() == holder.path):
                return "wait"  # its agent still works there (it retires or moves on)
            keep = attempt.archive_ref if attempt.branch_tip else attempt.target
            try:
                await asyncio.to_thread(trees.retire, holder.path, keep=keep, target=attempt.target)
                data["worktree"] = str(holder.path)
            except TundraError as error:
                if attempt.id not in self._left:
                    self._left.add(attempt.id)
                    await self.store.events.record(
                        "refinery.cleanup_left",
                        actor=ACTOR,
                        bead_id=attempt.bead_id,
                        data={"path": str(holder.path), "reason": str(error)[:_MAX_REASON]},
                    )
                return "left"
        if attempt.outcome is Outcome.MERGED and attempt.branch_tip:
            deleted = await asyncio.to_thread(
                functools.partial(
                    self.git.delete_branch,
                    attempt.branch,
                    attempt.branch_tip,
                    target=attempt.target,
                )
            )
            data["branch_deleted"] = deleted
        await self.store.merges.cleaned(attempt.id, actor=ACTOR, data=data)
        return "done"

    async def _reset_workdir(self) -> None:
        try:
            await asyncio.to_thread(self.git.reset_workdir)
        except TundraError as error:
            self.log.warning("refinery.reset_failed", error=error)

    # ---- status and requests -----------------------------------------------------------------

    def _set_live(self, state: RefineryState, detail: str = "") -> None:
        if (state, detail) != (self._live.state, self._live.detail) or self._live.step:
            self._live = LiveStep(state, detail)
            self._changed()

    def _step(self, attempt: MergeAttempt, step: str) -> None:
        self._live = LiveStep(
            RefineryState.MERGING,
            f"#{attempt.bead_id} (attempt {attempt.n})",
            step,
            iso(system_clock()),
            attempt.id,
        )

    def _changed(self, bead_id: int | None = None) -> None:
        self.publish(ChangedEvent(what="refinery", ids=[bead_id] if bead_id else []))

    def _attention(
        self,
        kind: str,
        told_key: str,
        reason: str,
        *,
        standing: bool,
        key: str | None = None,
        agent: str = ACTOR,
        bead: int | None = None,
        bell: bool = False,
    ) -> None:
        """Say something to the operator once per `told_key`; `standing` keeps it for late
        clients until it stops being true."""
        if told_key in self._told:
            return
        self._told.add(told_key)
        event = AttentionEvent(
            agent=agent, kind=kind, reason=visible(reason, single_line=True), bead=bead, bell=bell
        )
        if standing:
            self._standing[key or told_key] = event
        self.publish(event)

    async def status(self, recent: int = 10) -> RefineryStatus:
        """`read_status` with the live step and the beads held back after an error."""
        config = self._config()
        status = await read_status(
            self.store, config, live=self._live, recent=recent, target=_configured_target(config)
        )
        status = msgspec.structs.replace(
            status,
            target_commit=status.target_commit or self._target_commit,
            checkout_behind=bool(await self._behind(config)),
        )
        if not self._bead_hold:
            return status
        now = time.monotonic()
        queue = []
        for row in status.queue:
            until, reason = self._bead_hold.get(row.bead, (0.0, ""))
            if until > now:
                waiting = f"retry in {until - now:.0f} s: {_oneline(reason, 200)}"
                row = msgspec.structs.replace(row, waiting=waiting)
            queue.append(row)
        return msgspec.structs.replace(status, queue=queue)

    def handlers(self) -> dict[type[Request], Handler]:
        return {RefineryQuery: self._query, RefineryControl: self._control}

    async def _query(self, request: RefineryQuery, caller: Caller) -> RefineryStatus:
        return await self.status(request.recent)

    async def _control(self, request: RefineryControl, caller: Caller) -> RefineryStatus:
        self.gate.operator_only(
            caller, "refinery_control", "refused: agents do not control the refinery"
        )
        actor = "operator"
        if request.verb == "pause":
            await self.store.flags.set_refinery_paused(True, actor=actor, reason=request.reason)
        elif request.verb == "resume":
            await self.store.flags.set_refinery_paused(False, actor=actor)
        else:
            if request.bead is None:
                raise TundraError("retry needs a bead")
            await self.store.merges.retry(request.bead, actor=actor)
            self._forget_red = True
            self._bead_hold.pop(request.bead, None)
            self._errors.pop(request.bead, None)
            self.publish(ChangedEvent(what="beads", ids=[request.bead]))
        self._changed(request.bead)
        self.wake(f"refinery {request.verb}")
        return await self.status()


def _configured_target(config: LayeredConfig) -> str:
    """`orchestra.target_branch`, or "" (the refinery then waits: no target)."""
    return str(config.get("orchestra.target_branch") or "").strip()


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _oneline(text: str, limit: int = 72) -> str:
    return visible(" ".join(text.split()), single_line=True, limit=limit)
