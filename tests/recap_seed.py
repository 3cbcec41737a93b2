""" "While you were away" seed: a town where things happened after the operator left at
T0 (three hours before FIXED_NOW), for the recap's tests and snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta

from ui_harness import FIXED_NOW

from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
from tundra_tui.domain.beads import Action
from tundra_tui.domain.clock import iso
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import RosterEntry, Store

T0 = FIXED_NOW - timedelta(hours=3)
"""The operator left here."""


class Clock:
    """The store's and the app's clock, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def away_story(store: Store, clock: Clock) -> None:
    """Before T0 some history; from T0 on, while the operator is away: polecat-1's bead is
    merged, polecat-2's fails, an approval waits 12 minutes, another still waits, polecat-2
    crashes, $3.25 is spent and the mayor writes to the operator."""
    roster = [
        RosterEntry("mayor", Role.MAYOR, Runtime.DEMO, "demo-sonnet"),
        RosterEntry("polecat-1", Role.POLECAT, Runtime.DEMO, "demo-sonnet"),
        RosterEntry("polecat-2", Role.POLECAT, Runtime.DEMO, "demo-sonnet"),
    ]
    await store.agents.sync_roster(roster, actor=OPERATOR)
    old = await store.beads.add("Old work", actor=OPERATOR)
    await store.beads.sling(old.id, "polecat-1", actor=OPERATOR)
    await store.beads.apply(old.id, Action.DONE, actor="polecat-1")  # before: not recapped
    a = await store.beads.add("Ship the [b]login[/b] page", actor=OPERATOR)
    b = await store.beads.add("Flaky gate", actor=OPERATOR)
    await store.beads.sling(a.id, "polecat-1", actor=OPERATOR)
    await store.beads.sling(b.id, "polecat-2", actor=OPERATOR)
    await store.flags.set_operator_seen(iso(T0))
    clock.now = T0 + timedelta(minutes=5)
    await store.beads.apply(a.id, Action.DONE, actor="polecat-1")
    first = await store.approvals.request(
        agent="polecat-1", runtime="demo", subject="git push", source=ApprovalSource.HOOK,
        actor="daemon", tool="Bash",
    )  # fmt: skip
    clock.now = T0 + timedelta(minutes=17)
    await store.approvals.decide(first.id, ApprovalStatus.APPROVED, actor=OPERATOR)
    await store.beads.apply(b.id, Action.FAIL, actor="polecat-2", reason="gate red")
    await store.events.record("agent.crashed", actor="daemon", agent="polecat-2",
                              data={"restart": True, "delay": 1, "reason": "exit 1"})  # fmt: skip
    await store.agents.set_state("polecat-2", AgentState.WORKING, actor="daemon")
    await store.metrics.record(
        [UsageSample(iso(clock.now), "polecat-1", "demo-sonnet", "demo", cost_usd=3.25,
                     source_key="s1")]
    )  # fmt: skip
    await store.mail.send("mayor", OPERATOR, "please look", actor="mayor", subject="Need you")
    clock.now = T0 + timedelta(minutes=40)
    await store.approvals.request(
        agent="polecat-2", runtime="demo", subject="rm -rf build", source=ApprovalSource.SCREEN,
        actor="daemon",
    )  # fmt: skip
    clock.now = FIXED_NOW
