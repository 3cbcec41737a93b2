"""The pure cost rules: attribution to the bead on the hook, verdicts for waste, totals that
carry unpriced usage, and the brake's levels and words."""

from __future__ import annotations

import pytest

from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.costs import (
    AccountPause,
    Brake,
    BrakeLevel,
    BudgetScope,
    Cost,
    Price,
    Rate,
    Span,
    Verdict,
    attribute,
    pause_text,
    reason_text,
    verdicts,
)

T0 = "2026-12-01T10:00:00.000000Z"
T1 = "2026-12-01T10:20:00.000000Z"
T2 = "2026-12-01T10:40:00.000000Z"


def at(minute: int, second: int = 0) -> str:
    return f"2026-12-01T{10 + minute // 60:02d}:{minute % 60:02d}:{second:02d}.000000Z"


def test_attribution_across_a_hand_over_with_grace_and_no_bead() -> None:
    spans = [
        Span("a", 5, 1, T0, T1),  # a held bead 5, returned it at T1
        Span("b", 5, 2, T2, ""),  # b took it over at T2 and still holds it
        Span("a", 6, 3, at(45), ""),
    ]
    assert attribute(spans, "a", at(5), 120) == spans[0]
    assert attribute(spans, "a", at(21, 30), 120) == spans[0]  # the submitting turn: grace
    assert attribute(spans, "a", at(25), 120) is None  # no bead: never spread
    assert attribute(spans, "b", at(30), 120) is None  # before b's span started
    assert attribute(spans, "b", at(50), 120) == spans[1]
    assert attribute(spans, "a", at(50), 120) == spans[2]
    assert attribute(spans, "a", "2026-12-01T10:05:00+00:00", 120) == spans[0]


def test_overlapping_spans_go_to_the_latest_start_then_the_larger_dispatch() -> None:
    hook = Span("a", 7, None, T0, "")  # hooked by hand, never unhooked
    later = Span("a", 8, 4, T1, "")
    assert attribute([hook, later], "a", at(30), 0) == later
    assert attribute([hook, later], "a", at(10), 0) == hook
    twin = Span("a", 9, 9, T1, "")
    assert attribute([later, twin], "a", at(30), 0) == twin


@pytest.mark.parametrize(
    ("status", "outcomes", "expected"),
    [
        (BeadStatus.DONE, ["returned", "submitted"], [Verdict.WASTE, Verdict.KEPT]),
        (
            BeadStatus.DONE,
            ["submitted", "delivered", "submitted"],
            [Verdict.WASTE, Verdict.WASTE, Verdict.KEPT],
        ),
        (BeadStatus.FAILED, ["submitted", "failed"], [Verdict.WASTE, Verdict.WASTE]),
        (BeadStatus.ESCALATED, ["submitted"], [Verdict.WASTE]),
        (BeadStatus.REVIEW, ["returned", "submitted"], [Verdict.WASTE, Verdict.PENDING]),
        (BeadStatus.SLUNG, ["submitted", ""], [Verdict.WASTE, Verdict.OPEN]),
        (BeadStatus.BACKLOG, ["returned"], [Verdict.WASTE]),
        (BeadStatus.DONE, [], []),
    ],
)
def test_verdicts(status: BeadStatus, outcomes: list[str], expected: list[Verdict]) -> None:
    assert verdicts(status, outcomes) == expected


def test_costs_say_when_they_hold_unpriced_usage() -> None:
    assert Cost(1.234).text() == "$1.23" and Cost(1.234).complete
    partial = Cost(1.23, unpriced_samples=2, unpriced_tokens=4100)
    assert partial.text() == "$1.23 + unpriced (4.1k tok)" and not partial.complete
    assert Cost(0.0, 1, 10).text() == "unknown (unpriced)"
    total = Cost(1.0, 0, 0, ("genai-prices 0.2.5",)) + Cost(2.0, 1, 5, ("config",))
    assert total == Cost(3.0, 1, 5, ("genai-prices 0.2.5", "config"))


def test_a_price_leaves_tokens_with_no_cache_rate_at_the_input_rate() -> None:
    full = Price("t", "m", Rate(2), Rate(10), Rate(0.2), Rate(2.5), Rate(4))
    assert full.cost(
        input=1_000_000,
        output=100_000,
        cache_read=1_000_000,
        cache_write=500_000,
        cache_write_1h=100_000,
    ) == pytest.approx(2 + 1 + 0.2 + 400_000 * 2.5 / 1e6 + 0.4)
    bare = Price("t", "m", Rate(2, ((1_000_000, 4),)), Rate(10))
    # No cache rates: cache tokens cost input; over 1M total input the tier prices all.
    assert bare.cost(
        input=600_000, output=0, cache_read=300_000, cache_write=200_000, cache_write_1h=0
    ) == pytest.approx(4.4)


def _day(spent: float, budget: float = 40.0, unpriced: int = 0) -> BudgetScope:
    cost = Cost(spent, unpriced_samples=unpriced, unpriced_tokens=unpriced * 100)
    return BudgetScope("day", "today", None, cost, budget, "costs.daily_budget_usd", 80)


def test_the_brake_warns_stops_and_is_overridden() -> None:
    now = "2026-12-01T12:00:00.000000Z"
    assert _day(10).level is BrakeLevel.OK and _day(32).level is BrakeLevel.WARN
    assert _day(40).level is BrakeLevel.STOP and _day(5, budget=0).level is BrakeLevel.OK
    assert Brake((_day(32),)).level(now) == "warn" and Brake((_day(32),)).town_stop(now) is None
    stopped = Brake((_day(41.2),))
    assert stopped.level(now) == "stop"
    assert stopped.town_stop(now) == (
        "budget: $41.20 of $40.00 today (costs.daily_budget_usd); "
        "raise it or run `at cost override`"
    )
    assert "at least $41.20" in reason_text(_day(41.2, unpriced=1))
    overridden = Brake((_day(41.2),), override_until="2026-12-01T23:59:59.000000Z")
    assert overridden.town_stop(now) is None and overridden.level(now) == "overridden"
    expired = Brake((_day(41.2),), override_until="2026-12-01T11:00:00.000000Z")
    assert expired.town_stop(now) is not None
    convoy = BudgetScope("convoy", "k", 3, Cost(6.0), 5.0, "convoys.k.budget_usd")
    brake = Brake((_day(1), convoy))
    assert brake.town_stop(now) is None and brake.convoy_stop(4, now) is None
    assert brake.convoy_stop(None, now) is None
    assert brake.convoy_stop(3, now) == (
        "budget: $6.00 of $5.00 for convoy k (convoys.k.budget_usd); "
        "raise it or run `at cost override`"
    )


def test_pauses_are_per_account_and_say_until_when() -> None:
    now = "2026-12-01T14:52:00.000000Z"
    pause = AccountPause(
        "claude", "claude", "polecat-2", "2026-12-01T15:04:00.000000Z", "resets 3:04pm", True, now
    )
    brake = Brake(pauses=(pause,))
    assert brake.paused("claude", now) == pause and brake.paused("acct-b", now) is None
    assert brake.paused("claude", "2026-12-01T15:04:00.000000Z") is None
    assert pause_text(pause, now) == (
        "rate limited: account claude until 15:04 UTC (in 12 min), shown by polecat-2"
    )
    guessed = AccountPause("a", "demo", "x", "2026-12-01T15:07:00.000000Z", "", False, now)
    assert "no reset time shown" in pause_text(guessed, now)
