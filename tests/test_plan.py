"""The dispatch planner (pure): every branch of its order and every waiting reason."""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Bead, BeadStatus, Lane
from tundra_tui.domain.convoys import Convoy, ConvoyStatus
from tundra_tui.domain.costs import AccountPause, Brake, BudgetScope, Cost
from tundra_tui.domain.dispatch import DispatchKind, WaitReason
from tundra_tui.orchestra.plan import (
    Capacity,
    PriorWork,
    Worker,
    new_polecat_name,
    plan,
    waiting_reasons,
)

IDLE = AgentState.IDLE
WORKING = AgentState.WORKING


@dataclass(frozen=True)
class Flags:
    up: bool = True
    paused: bool = False
    pause_reason: str = ""


UP = Flags()
NOW = "2026-12-07T12:00:00"
SPENT = Brake(
    scopes=(
        BudgetScope(
            kind="day",
            name="today",
            convoy_id=None,
            spent=Cost(usd=41.2),
            budget_usd=40.0,
            key="costs.daily_budget_usd",
            warn_percent=80,
        ),
    )
)


def convoy_spent(convoy_id: int) -> Brake:
    scope = BudgetScope(
        kind="convoy",
        name="k",
        convoy_id=convoy_id,
        spent=Cost(usd=5.0),
        budget_usd=5.0,
        key="convoys.k.budget_usd",
        warn_percent=80,
    )
    return Brake(scopes=(scope,))


def paused(*accounts: str) -> Brake:
    return Brake(
        pauses=tuple(
            AccountPause(
                account=a,
                runtime=a,
                agent="x",
                until="2026-12-07T12:12:00",
                shown="usage limit reached",
                reset_parsed=True,
                since="2026-12-07T11:59:00",
            )
            for a in accounts
        )
    )


def bead(n: int, lane: Lane = Lane.STANDARD, **kw: object) -> Bead:
    return Bead(id=n, title=f"bead {n}", lane=lane, **kw)  # type: ignore[arg-type]


def cap(
    live: int = 0, starting: int = 0, most: int = 3, ptys: int = 0, max_ptys: int = 20
) -> Capacity:
    return Capacity(live, starting, most, ptys, max_ptys)


def polecat(name: str, state: AgentState | None = None, **kw: object) -> Worker:
    kw.setdefault("runtime", Runtime.DEMO)
    kw.setdefault("has_worktree", True)
    return Worker(name, Role.POLECAT, state=state, **kw)  # type: ignore[arg-type]


def crew(
    name: str, lanes: tuple[Lane, ...], state: AgentState | None = IDLE, **kw: object
) -> Worker:
    kw.setdefault("has_worktree", True)
    return Worker(name, Role.CREW, Runtime.CLAUDE, lanes, state=state, **kw)  # type: ignore[arg-type]


def demo(_: Bead) -> Runtime:
    return Runtime.DEMO


def run(ready, workers, capacity=None, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("flags", UP)
    kw.setdefault("now", NOW)
    kw.setdefault("runtime_for", demo)
    return plan(ready, workers, capacity or cap(), **kw)


def who(assignments) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    return [(a.bead.id, a.agent, a.how) for a in assignments]


def test_an_idle_crew_whose_lanes_take_the_bead_comes_first() -> None:
    workers = [crew("c1", (Lane.CRITICAL,)), polecat("p1", IDLE)]
    assigned, waiting = run([bead(1, Lane.CRITICAL), bead(2)], workers)
    assert who(assigned) == [(1, "c1", "crew"), (2, "p1", "reuse")]
    assert assigned[0].kind is DispatchKind.CREW
    assert assigned[1].kind is DispatchKind.POLECAT
    assert not assigned[0].starts and not assigned[1].starts
    assert waiting == []


def test_a_crew_is_skipped_when_busy_working_dirty_without_worktree_or_lane() -> None:
    lanes = (Lane.STANDARD,)
    for worker in (
        crew("c", lanes, busy=True),
        crew("c", lanes, WORKING),
        crew("c", lanes, None),
        crew("c", lanes, clean=False),
        crew("c", lanes, has_worktree=False),
        crew("c", (Lane.CRITICAL,)),
    ):
        assigned, _ = run([bead(1)], [worker])
        assert who(assigned) == [(1, "polecat-1", "new")], worker


def test_the_previous_polecat_takes_its_bead_back_with_its_worktree() -> None:
    workers = [polecat("p1", IDLE), polecat("p2", IDLE)]
    prior = {1: PriorWork("p2", "/w/p2-1", "polecat/p2/1", clean=True)}
    assigned, _ = run([bead(1)], workers, previous=prior)
    assert who(assigned) == [(1, "p2", "previous")]
    assert assigned[0].worktree == "/w/p2-1"
    assert not assigned[0].starts


def test_a_stopped_previous_polecat_is_started_within_capacity() -> None:
    prior = {1: PriorWork("p2", "/w/p2-1", clean=True)}
    assigned, _ = run([bead(1)], [polecat("p2")], previous=prior)
    assert who(assigned) == [(1, "p2", "previous")] and assigned[0].starts
    assigned, waiting = run([bead(1)], [polecat("p2")], cap(live=3), previous=prior)
    assert assigned == [] and [w.reason for w in waiting] == [WaitReason.CAPACITY]


def test_the_previous_polecat_is_passed_over_when_dirty_busy_or_other_runtime() -> None:
    for prior, worker in (
        (PriorWork("p2", clean=False), polecat("p2", IDLE)),
        (PriorWork("p2"), polecat("p2", IDLE, busy=True)),
        (PriorWork("p2"), polecat("p2", WORKING)),
        (PriorWork("p2"), polecat("p2", IDLE, runtime=Runtime.CLAUDE, has_worktree=False)),
    ):
        assigned, _ = run([bead(1)], [worker], previous={1: prior})
        assert assigned[0].how != "previous", (prior, worker)


def test_reuse_in_place_needs_idle_free_matching_and_clean() -> None:
    for worker in (
        polecat("p1", WORKING),
        polecat("p1", IDLE, busy=True),
        polecat("p1", IDLE, clean=False),
        polecat("p1", IDLE, runtime=Runtime.CLAUDE),
        polecat("p1", IDLE, has_worktree=False),
        polecat("p1", AgentState.AWAITING_APPROVAL),
    ):
        assigned, _ = run([bead(1)], [worker], cap(live=1))
        assert who(assigned) == [(1, "polecat-1", "new")], worker


def test_a_stopped_configured_polecat_of_the_runtime_is_started_before_a_new_one() -> None:
    workers = [
        polecat("gem", runtime=Runtime.GEMINI),
        polecat("p7"),
        polecat("p9", AgentState.QUEUED),
    ]
    assigned, _ = run([bead(1), bead(2)], workers)
    assert who(assigned) == [(1, "p7", "start"), (2, "polecat-1", "new")]
    assert all(a.starts for a in assigned)
    assert all(a.runtime is Runtime.DEMO for a in assigned)


def test_new_polecats_get_free_names_and_the_lane_runtime() -> None:
    workers = [
        polecat("polecat-1", WORKING, busy=True),
        Worker("polecat-3", Role.MAYOR, Runtime.DEMO),
    ]

    def lanes(b: Bead) -> Runtime:
        return Runtime.CODEX if b.lane is Lane.EXPERIMENTAL else Runtime.DEMO

    assigned, _ = run(
        [bead(1), bead(2, Lane.EXPERIMENTAL)], workers, cap(live=1), runtime_for=lanes
    )
    assert who(assigned) == [(1, "polecat-2", "new"), (2, "polecat-4", "new")]
    assert [a.runtime for a in assigned] == [Runtime.DEMO, Runtime.CODEX]
    assert new_polecat_name(["polecat-1", "polecat-2", "x"]) == "polecat-3"


def test_capacity_counts_live_starting_and_terminals() -> None:
    ready = [bead(1), bead(2), bead(3)]
    assigned, waiting = run(ready, [], cap(most=2))
    assert who(assigned) == [(1, "polecat-1", "new"), (2, "polecat-2", "new")]
    assert [(w.bead, w.reason) for w in waiting] == [(3, WaitReason.CAPACITY)]
    assigned, waiting = run(ready, [], cap(live=1, starting=1, most=3))
    assert len(assigned) == 1 and len(waiting) == 2
    assigned, waiting = run(ready, [], cap(most=5, ptys=19, max_ptys=20))
    assert len(assigned) == 1
    assert "terminals" in waiting[0].detail


def test_reuse_needs_no_capacity_and_one_worker_takes_one_bead() -> None:
    assigned, waiting = run([bead(1), bead(2)], [polecat("p1", IDLE)], cap(live=1, most=1))
    assert who(assigned) == [(1, "p1", "reuse")]
    assert [(w.bead, w.reason) for w in waiting] == [(2, WaitReason.CAPACITY)]


def test_the_town_stops_everything_down_paused_budget() -> None:
    ready = [bead(1), bead(2)]
    for flags, brake, reason in (
        (Flags(up=False), Brake(), WaitReason.DOWN),
        (Flags(paused=True, pause_reason="lunch"), Brake(), WaitReason.PAUSED),
        (UP, SPENT, WaitReason.BUDGET),
        (Flags(up=False, paused=True), SPENT, WaitReason.DOWN),
    ):
        assigned, waiting = run(ready, [polecat("p1", IDLE)], flags=flags, brake=brake)
        assert assigned == []
        assert [(w.bead, w.reason) for w in waiting] == [(1, reason), (2, reason)]
    _, waiting = run(ready, [], flags=Flags(paused=True, pause_reason="lunch"))
    assert waiting[0].detail == "lunch"
    _, waiting = run(ready, [], brake=SPENT)
    assert waiting[0].detail.startswith("budget: $41.20 of $40.00 today (costs.daily_budget_usd)")


def test_an_override_lifts_the_stop() -> None:
    brake = Brake(scopes=SPENT.scopes, override_until="2026-12-07T23:59:59", override_reason="r")
    assigned, waiting = run([bead(1)], [polecat("p1", IDLE)], brake=brake)
    assert who(assigned) == [(1, "p1", "reuse")]
    assert waiting == []


def test_a_spent_convoy_holds_only_its_beads() -> None:
    ready = [bead(1, convoy_id=7), bead(2), bead(3, convoy_id=8)]
    assigned, waiting = run(ready, [], brake=convoy_spent(7))
    assert who(assigned) == [(2, "polecat-1", "new"), (3, "polecat-2", "new")]
    assert [(w.bead, w.reason) for w in waiting] == [(1, WaitReason.BUDGET)]
    assert "convoys.k.budget_usd" in waiting[0].detail


def test_a_paused_account_skips_its_workers_and_new_polecats() -> None:
    claude_crew = crew("c1", (Lane.STANDARD,))  # bills the account "claude"
    workers = [claude_crew, polecat("p1", IDLE)]
    # The crew's account is paused: the bead goes to the idle demo polecat instead.
    assigned, waiting = run([bead(1)], workers, brake=paused("claude"))
    assert who(assigned) == [(1, "p1", "reuse")]
    # The demo account paused too: no one else, and no new polecat on it.
    assigned, waiting = run([bead(1), bead(2)], workers, brake=paused("claude", "demo"))
    assert assigned == []
    assert [(w.bead, w.reason) for w in waiting] == [
        (1, WaitReason.RATE_LIMITED),
        (2, WaitReason.RATE_LIMITED),
    ]
    assert waiting[0].detail.startswith("rate limited: account claude until 12:12 UTC")
    # Accounts are names from the settings: two crew on separate accounts of one runtime.
    accounts = {"c1": "acct-a", "c2": "acct-b"}
    two = [crew("c1", (Lane.STANDARD,)), crew("c2", (Lane.STANDARD,))]
    assigned, _ = run(
        [bead(1)], two, brake=paused("acct-a"), account_of=lambda a, r: accounts.get(a, r.value)
    )
    assert who(assigned) == [(1, "c2", "crew")]
    # Only new polecats' account paused: an idle crew still takes its lane's bead.
    assigned, waiting = run([bead(1), bead(2)], [claude_crew], brake=paused("demo"))
    assert who(assigned) == [(1, "c1", "crew")]
    assert [(w.bead, w.reason) for w in waiting] == [(2, WaitReason.RATE_LIMITED)]


def test_held_beads_wait_to_be_retried_and_others_go_ahead() -> None:
    assigned, waiting = run([bead(1), bead(2)], [], held={1: "agent never ready"})
    assert who(assigned) == [(2, "polecat-1", "new")]
    assert [(w.bead, w.reason, w.detail) for w in waiting] == [
        (1, WaitReason.RETRY, "agent never ready")
    ]


def test_waiting_reasons_name_blockers_convoys_and_the_town() -> None:
    convoys = {
        7: Convoy(7, "k", ConvoyStatus.PENDING),
        8: Convoy(8, "go", ConvoyStatus.ACTIVE),
    }
    backlog = [
        bead(1),
        bead(2),
        bead(3, convoy_id=7),
        bead(4, convoy_id=8),
        bead(5, status=BeadStatus.SLUNG),
    ]
    blockers = {2: [1]}
    reasons = waiting_reasons(backlog, blockers, convoys, UP, cap())
    assert [(w.bead, w.reason) for w in reasons] == [
        (2, WaitReason.BLOCKED),
        (3, WaitReason.CONVOY),
    ]
    assert reasons[0].detail == "waits for #1"
    assert "convoy k is pending" in reasons[1].detail
    full = waiting_reasons(backlog, blockers, convoys, UP, cap(live=3))
    assert [(w.bead, w.reason) for w in full] == [
        (1, WaitReason.CAPACITY),
        (2, WaitReason.BLOCKED),
        (3, WaitReason.CONVOY),
        (4, WaitReason.CAPACITY),
    ]
    for flags, brake, reason in (
        (Flags(up=False), Brake(), WaitReason.DOWN),
        (Flags(paused=True), Brake(), WaitReason.PAUSED),
        (UP, SPENT, WaitReason.BUDGET),
    ):
        got = waiting_reasons(backlog, blockers, convoys, flags, cap(), brake, NOW)
        assert [(w.bead, w.reason) for w in got] == [
            (1, reason),
            (2, WaitReason.BLOCKED),
            (3, WaitReason.CONVOY),
            (4, reason),
        ]
