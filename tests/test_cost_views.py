"""What the cost views compute without a store: `--since` words, the forecast from full
days, a card's cost label and the title bar's budget and pause marks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tundra_tui.domain.costs import AccountPause, Brake, BudgetScope, Cost
from tundra_tui.domain.kanban import cost_label
from tundra_tui.ui.widgets.title_bar import brake_marks
from tundra_tui.usage.analysis import daily_forecast, parse_window, sparkline


def test_window_words() -> None:
    now = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
    midnight = datetime(2026, 12, 7, tzinfo=UTC)
    assert parse_window("today", now) == midnight
    assert parse_window("yesterday", now) == midnight - timedelta(days=1)
    assert parse_window("7d", now) == now - timedelta(days=7)
    assert parse_window("2h", now) == now - timedelta(hours=2)
    assert parse_window("all", now) is None
    assert parse_window("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_window("2026-12-01T10:00", now) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="use today, yesterday"):
        parse_window("soon", now)


def test_forecast_from_full_days() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)  # 24.5 days left in December
    f = daily_forecast([9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], now, month_spent=10.0)
    assert f.basis_days == 7 and f.mean == pytest.approx(4.0)  # the first day is beyond 7
    assert f.next_30 == pytest.approx(120.0)
    assert f.month_end == pytest.approx(10.0 + 4.0 * 24.5)
    assert "N = min(7, days with data)" in f.method
    assert daily_forecast([], now, month_spent=0.0).basis_days == 0


def test_card_labels_never_show_unpriced_as_zero() -> None:
    assert cost_label(None) == ""
    assert cost_label(Cost(0.0)) == ""
    assert cost_label(Cost(0.42)) == "$0.42"
    assert cost_label(Cost(0.0, unpriced_samples=2, unpriced_tokens=900)) == "$?"
    assert cost_label(Cost(0.42, unpriced_samples=1, unpriced_tokens=10)) == "$0.42+?"


def test_title_bar_marks() -> None:
    now = "2026-12-07T12:00:00.000000Z"

    def scope(spent: float, budget: float = 10.0) -> BudgetScope:
        return BudgetScope("day", "today", None, Cost(spent), budget, "costs.daily_budget_usd")

    assert brake_marks(Brake(scopes=(scope(1.0),)), now) == ""
    assert brake_marks(Brake(scopes=(scope(8.4),)), now) == "$ 84% today"
    floor = BudgetScope(
        "day", "today", None, Cost(8.4, 1, 500), 10.0, "costs.daily_budget_usd"
    )  # unpriced usage beside $8.40: the percent is a floor
    assert brake_marks(Brake(scopes=(floor,)), now) == "$ ≥84% today"
    assert brake_marks(Brake(scopes=(scope(10.5),)), now) == "$ STOP"
    overridden = Brake(scopes=(scope(10.5),), override_until="2026-12-07T23:59:59.999999Z")
    assert brake_marks(overridden, now) == "$ override"
    pause = AccountPause("claude", "claude", "polecat-2", "2026-12-07T12:11:30.000000Z")
    over = AccountPause("codex", "codex", "crew-1", "2026-12-07T11:00:00.000000Z")
    assert brake_marks(Brake(pauses=(pause, over)), now) == "⏸ claude 12m"


def test_sparkline_scales_to_its_peak() -> None:
    assert sparkline([0.0, 1.0, 2.0, 4.0], 10) == "▁▃▅█"
    assert sparkline([0.0, 0.0], 10) == "▁▁"
    assert sparkline([1.0, 2.0, 3.0], 2) == "▆█"
    assert sparkline([], 5) == ""
