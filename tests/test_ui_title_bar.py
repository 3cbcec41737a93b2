"""The title bar's brake marks: a convoy's spent budget holds only that convoy's beads, so
it is named, never shown as the town's `$ STOP`; `at status` says the same in words."""

from __future__ import annotations

from tundra_tui.cli.cost import cost_line
from tundra_tui.domain.costs import Brake, BudgetScope, Cost
from tundra_tui.ui.widgets.title_bar import brake_marks

NOW = "2026-12-07T12:00:00.000000Z"
LATER = "2026-12-07T23:59:59.999999Z"


def day(spent: float) -> BudgetScope:
    return BudgetScope("day", "today", None, Cost(spent), 10.0, "costs.daily_budget_usd")


def convoy(name: str, spent: float, convoy_id: int = 1) -> BudgetScope:
    return BudgetScope("convoy", name, convoy_id, Cost(spent), 1.0, f"convoys.{name}.budget_usd")


def test_a_spent_convoy_is_named_and_the_town_is_not_stopped() -> None:
    assert brake_marks(Brake(scopes=(convoy("alpha", 1.5),)), NOW) == "$ STOP alpha"
    both = Brake(scopes=(day(8.4), convoy("alpha", 1.5)))
    assert brake_marks(both, NOW) == "$ STOP alpha  $ 84% today"
    three = Brake(scopes=(convoy("alpha", 2), convoy("beta", 3, 2), convoy("gamma", 1, 3)))
    assert brake_marks(three, NOW) == "$ STOP alpha +2"
    # A day spent stops the whole town: its convoys need no mark of their own.
    assert brake_marks(Brake(scopes=(day(10.5), convoy("alpha", 1.5))), NOW) == "$ STOP"
    lifted = Brake(scopes=(convoy("alpha", 1.5),), override_until=LATER)
    assert brake_marks(lifted, NOW) == "$ override"


def test_a_convoy_name_is_shown_literally_and_safely() -> None:
    name = "[bold]x\x1b[31m"
    marks = brake_marks(Brake(scopes=(convoy(name, 1.5),)), NOW)
    assert marks.startswith("$ STOP [bold]x") and "\x1b" not in marks


def test_status_line_says_which_convoy_stopped() -> None:
    line = cost_line(Cost(0.5), Cost(0.5), Brake(scopes=(convoy("alpha", 1.5),)), NOW)
    assert "BUDGET STOP" not in line and line.endswith(" · convoy alpha stopped")
    town = Brake(scopes=(day(10.5),))
    assert cost_line(Cost(10.5), Cost(10.5), town, NOW).endswith(" · BUDGET STOP")
