"""The Costs tab: spend by agent, model, bead, convoy or day, burn rate, forecast and budgets.

Figures come from `usage.reports.cost_report` (SQL aggregates plus pure arithmetic); this
module only lays them out. Budget warnings say what they mean in words, so they read
without colour.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Label, Static

from tundra_tui.config import LayeredConfig, load_config
from tundra_tui.domain.beads import format_bead_id
from tundra_tui.domain.clock import iso
from tundra_tui.domain.costs import Cost
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.store import CostRow
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.bar_chart import BarChart
from tundra_tui.ui.widgets.cost_table import CostTable, share_bar
from tundra_tui.usage.analysis import (
    FORECAST_DAYS,
    RECENT_HOURS,
    WEEKDAYS,
    BudgetLevel,
    BudgetStatus,
    compact_number,
    format_usd,
    share_percent,
)
from tundra_tui.usage.reports import (
    CHART_DAYS,
    COST_WINDOWS,
    GROUPS,
    CostReport,
    brake_lines,
    cost_report,
)

ROOMY = (110, 30)
"""Width and height from which the daily spend chart is shown beside the summary."""
_NUMBER_WIDTHS = (("In", 7), ("Cache", 7), ("Out", 7), ("Cost", 10), ("Share", 6))
COST_WIDTH_MAX = 30
"""The widest the cost column grows to (an unpriced total's text)."""
_LEVEL_CLASSES = {BudgetLevel.NEAR: "-near", BudgetLevel.OVER: "-over"}
_NO_KEY = {"bead": "(no bead)", "convoy": "(no convoy)", "role": "(no role)"}


def _days(amount: float) -> str:
    return "1 day" if amount == 1 else f"{amount:g} days"


class CostsPane(Pane):
    """Summary and alerts on top, the grouping selector, then one row per group."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "cycle_group", "Group by", id="costs-group"),
        Binding("w", "cycle_window", "Window", id="costs-window"),
    ]
    SHOWS: ClassVar[frozenset[str]] = frozenset({"usage", "config", "beads", "brake"})
    """Spend (recorded by the daemon's usage watcher), budgets, bead titles, the brake."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.group = GROUPS[0]
        """What the table groups by (`g` cycles it)."""
        self.window = 2
        """Index into COST_WINDOWS (`w` cycles it); 30 days to begin with."""
        self.report: CostReport | None = None
        self.filter = ""
        self._config_error = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="costs-top"):
            with Vertical(id="costs-summary"):
                for name in ("today", "month", "burn", "forecast", "alert-day", "alert-month"):
                    yield Label(id=f"costs-{name}", markup=False)
                yield Static(id="costs-brake", markup=False)
            with Vertical(id="costs-chart-box"):
                yield Label(
                    f"Spend per day, last {CHART_DAYS} days (UTC)",
                    classes="costs-title",
                    markup=False,
                )
                yield BarChart(format_value=format_usd, id="costs-daily")
        yield Static(id="costs-selector", markup=False)
        yield CostTable(id="costs-table")
        yield Static(id="costs-empty", markup=False)
        yield Static(id="costs-footnote", markup=False)

    # ---- data --------------------------------------------------------------------------

    def _budgets(self, config: LayeredConfig | None, problem: str) -> tuple[float, float]:
        try:
            if config is None:
                raise TundraError(problem)
            budgets = (
                float(config.get("costs.daily_budget_usd") or 0.0),
                float(config.get("costs.monthly_budget_usd") or 0.0),
            )
        except TundraError as error:
            # Said once per distinct problem: the watcher may reload this pane often.
            if str(error) != self._config_error:
                self._config_error = str(error)
                self.notify(f"budgets ignored: {error}", severity="error")
            return 0.0, 0.0
        self._config_error = ""
        return budgets

    async def reload(self) -> None:
        """Read the rollup for the current grouping and window, and the figures around it."""
        # tundra.toml read afresh, as the brake does: `at config set` in a shell changes a
        # budget without this client hearing of it.
        config: LayeredConfig | None = None
        problem = ""
        try:
            config = await asyncio.to_thread(load_config, self.services.town)
        except TundraError as error:
            problem = str(error)
        daily, monthly = self._budgets(config, problem)
        try:
            self.report = await cost_report(
                self.services.store,
                self.services.now(),
                group=self.group,
                days=COST_WINDOWS[self.window][1],
                daily_budget=daily,
                monthly_budget=monthly,
                # The brake reads the same budgets: not while they cannot be read.
                config=None if self._config_error else config,
            )
        except TundraError as error:
            self.notify(str(error), severity="error")
            return
        self._show()

    def search(self, text: str) -> None:
        """Show only the groups whose name contains `text`."""
        self.filter = text.strip()
        self._show()

    async def action_cycle_group(self) -> None:
        """Group by the next of agent, model, bead, convoy and day."""
        self.group = GROUPS[(GROUPS.index(self.group) + 1) % len(GROUPS)]
        await self.reload()

    async def action_cycle_window(self) -> None:
        """Cover the next window: today, 7 days, 30 days, all time."""
        self.window = (self.window + 1) % len(COST_WINDOWS)
        await self.reload()

    def on_resize(self, event: Resize) -> None:
        width, height = event.size
        self.set_class(width >= ROOMY[0] and height >= ROOMY[1], "-roomy")
        self._fill_table()

    # ---- drawing -----------------------------------------------------------------------

    def _show(self) -> None:
        report = self.report
        if report is None or not self.is_mounted:
            return
        self._show_summary(report)
        self._show_selector(report)
        self._fill_table()
        chart = self.query_one(BarChart)
        chart.empty_text = "no spend in the last 30 days"
        chart.set_data([(f"{day.day:02d}", cost) for day, cost in report.daily])
        self.query_one("#costs-footnote", Static).update(self._footnote(report))

    def _show_summary(self, report: CostReport) -> None:
        # Unpriced usage is never $0: spent amounts read as the table does (`Cost.text`),
        # and what is derived from them (percentages, rates, the forecast) as a floor.
        today, month, month_end = report.today, report.month, report.month_end
        today_text = self._budget_text("Today", today, "daily", report.today_cost)
        self._line("today", today_text, today.level)
        month_text = self._budget_text("Month", month, "monthly", report.month_cost)
        month_text += f" · forecast {_floor(month_end.spent, month_end.complete)}"
        if month_end.level is not BudgetLevel.NONE:
            month_text += f" ({month_end.percent:.0f}%)"  # "at least" is said just before
        alert, level = _month_alert(month, month_end)
        self._line("month", month_text, level)
        recent_rate = _floor(report.burn_recent, report.recent_cost.complete)
        today_rate = _floor(report.burn_today, report.today_cost.complete)
        self._line(
            "burn",
            f"Burn    {recent_rate}/h last {RECENT_HOURS} h · {today_rate}/h today",
        )
        ahead, complete = report.forecast, report.forecast_complete
        per_day = f"at {format_usd(ahead.daily_average)}/day"
        if not complete:
            per_day = f"(at least {format_usd(ahead.daily_average)}/day)"
        self._line(
            "forecast",
            f"Next {FORECAST_DAYS} days ≈ {_floor(ahead.next_days, complete)} {per_day}",
        )
        self._line("alert-day", _day_alert(today), today.level)
        self._line("alert-month", alert, level)
        brake = self.query_one("#costs-brake", Static)
        # The day and month are the lines above: convoys, the override and pauses, if any.
        lines: list[str] = []
        if report.brake is not None:
            rest = tuple(scope for scope in report.brake.scopes if scope.kind == "convoy")
            others = replace(report.brake, scopes=rest)
            lines = brake_lines(others, iso(self.services.now()), quiet=True)
        brake.update(Text("\n".join(lines)))
        brake.display = bool(lines)

    def _line(self, name: str, text: str, level: BudgetLevel = BudgetLevel.OK) -> None:
        label = self.query_one(f"#costs-{name}", Label)
        label.update(Text(text))
        label.display = bool(text)
        for state, css in _LEVEL_CLASSES.items():
            label.set_class(level is state, css)

    @staticmethod
    def _budget_text(name: str, status: BudgetStatus, period: str, cost: Cost) -> str:
        spent = _money(cost)
        if status.level is BudgetLevel.NONE:
            return f"{name:<7} {spent} (no {period} budget)"
        budget = format_usd(status.budget)
        # The spent amount already says "+ unpriced": the percent is of the priced part.
        return f"{name:<7} {spent} of {budget} budget ({status.percent:.0f}%)"

    def _show_selector(self, report: CostReport) -> None:
        line = Text("Group ", style="bold")
        for group in GROUPS:
            line.append(f" {group} ", style="reverse bold" if group == self.group else "")
        line.append("  Window ", style="bold")
        line.append(f" {COST_WINDOWS[self.window][0]} ", style="reverse bold")
        line.append(f"  {format_usd(report.window_cost)} total")
        if self.filter:
            line.append("  filter: ")
            line.append(visible(self.filter, single_line=True, limit=20))
        self.query_one("#costs-selector", Static).update(line)

    def _fill_table(self) -> None:
        report = self.report
        if report is None or not self.is_mounted:
            return
        table = self.query_one(CostTable)
        # The table's own width less its scrollbar; before the first layout, the pane's.
        width = table.scrollable_content_region.width or (self.size.width or 80) - 4
        key_width = 18 if width < 100 else 30
        padding = 2 * table.cell_padding * (len(_NUMBER_WIDTHS) + 2)
        # The cost column grows to show "$1.23 + unpriced (4.1k tok)" whole: never cut to "$1.2".
        whole = report.breakdown.total_cost if report.breakdown else Cost(report.window_cost)
        texts = [_money(_cost(row)) for row in report.rows] + [_money(whole)]
        widths = dict(_NUMBER_WIDTHS)
        widths["Cost"] = max(widths["Cost"], min(COST_WIDTH_MAX, max(map(len, texts))))
        fixed = key_width + sum(widths.values()) + padding
        bar_width = max(4, min(60, width - fixed))
        rows = [(self._key_text(row), row) for row in report.rows]
        if self.group == "day":
            rows.reverse()
        if self.filter:
            needle = self.filter.casefold()
            rows = [(key, row) for key, row in rows if needle in key.casefold()]
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_column(Text(self.group.capitalize()), width=key_width, key="key")
        for title, column_width in widths.items():
            table.add_column(Text(title, justify="right"), width=column_width, key=title)
        table.add_column(Text(""), width=bar_width, key="bar")
        for key, row in rows:
            share = share_percent(row.cost_usd, report.window_cost)
            table.add_row(
                Text(visible(key, single_line=True, limit=key_width)),
                *_numbers(row.input_tokens, row.cache_tokens, row.output_tokens, _cost(row)),
                Text(f"{share:.1f}%", justify="right"),
                Text(share_bar(share, bar_width), style=table.bar_style),
            )
        if rows:
            total = (report.window_input, report.window_cache, report.window_output)
            table.add_row(
                Text("Total", style="bold"),
                *_numbers(*total, whole, style="bold"),
                Text("100%" if report.window_cost else "", justify="right", style="bold"),
                Text(""),
            )
            table.move_cursor(row=min(cursor, len(rows)), animate=False)
        # The table stays (shrunk to its header) so it keeps focus and the pane's keys.
        self.set_class(not rows, "-empty")
        empty = self.query_one("#costs-empty", Static)
        empty.update(self._empty_text(report) if not rows else "")
        empty.display = not rows

    def _key_text(self, row: CostRow) -> str:
        if not row.key:
            return _NO_KEY.get(self.group, "(none)")
        if self.group == "bead":
            return f"{format_bead_id(int(row.key))} {row.label}"
        if self.group == "day":
            return f"{row.key} {WEEKDAYS[date.fromisoformat(row.key).weekday()]}"
        return row.key

    def _empty_text(self, report: CostReport) -> str:
        if not report.has_usage:
            return (
                "No usage recorded yet. Spend appears here once agents report token usage "
                "(the demo agent does)."
            )
        if self.filter and report.rows:
            return f"No {self.group} matches the search."
        return f"No usage in the window ({COST_WINDOWS[self.window][0]}): press w to widen it."

    @staticmethod
    def _footnote(report: CostReport) -> str:
        if not report.has_usage:
            return "Burn rate and forecast appear once usage is recorded."
        lines = report.breakdown.footer() if report.breakdown else []
        if report.projection is not None:
            lines.append(f"Forecast: {report.projection.forecast.method}.")
        lines.append(f"Burn: last {RECENT_HOURS} h, and since midnight UTC.")
        return "\n".join(visible(line, single_line=True) for line in lines)


def _cost(row: CostRow) -> Cost:
    return Cost(row.cost_usd, row.unpriced_samples, row.unpriced_tokens)


def _money(cost: Cost) -> str:
    """`Cost.text` where usage is unpriced (never $0), else dollars as the tab writes them."""
    return cost.text() if not cost.complete else format_usd(cost.usd)


def _numbers(inp: int, cache: int, out: int, cost: Cost, style: str = "") -> list[Text]:
    """Token counts, then the cost (unpriced usage never reads as $0)."""
    cells = [compact_number(inp), compact_number(cache), compact_number(out), _money(cost)]
    return [Text(cell, justify="right", style=style) for cell in cells]


def _floor(usd: float, complete: bool) -> str:
    """Dollars, "at least" when unpriced usage is left out of them."""
    return format_usd(usd) if complete else f"at least {format_usd(usd)}"


def _percent(status: BudgetStatus) -> str:
    """ "84%", or "at least 84%" when unpriced usage is left out of the spend."""
    return f"{'' if status.complete else 'at least '}{status.percent:.0f}%"


def _day_alert(today: BudgetStatus) -> str:
    if today.level is BudgetLevel.OVER:
        return (
            f"✖ OVER the daily budget: {_floor(today.spent, today.complete)} of "
            f"{format_usd(today.budget)} ({_percent(today)})"
        )
    if today.level is BudgetLevel.NEAR:
        return f"▲ Near the daily budget: {_percent(today)} of {format_usd(today.budget)}"
    return ""


def _month_alert(month: BudgetStatus, month_end: BudgetStatus) -> tuple[str, BudgetLevel]:
    budget = format_usd(month.budget)
    if month.level is BudgetLevel.OVER:
        return (
            f"✖ OVER the monthly budget: {_floor(month.spent, month.complete)} of {budget} "
            f"({_percent(month)})",
            BudgetLevel.OVER,
        )
    if month.level is BudgetLevel.NEAR:
        return f"▲ Near the monthly budget: {_percent(month)} of {budget}", BudgetLevel.NEAR
    if month_end.level is BudgetLevel.OVER:
        return (
            f"▲ Forecast to pass the monthly budget: {_floor(month_end.spent, month_end.complete)}"
            f" of {budget} by month-end ({_percent(month_end)})",
            BudgetLevel.NEAR,
        )
    if month_end.level is BudgetLevel.NEAR:
        return (
            f"▲ Forecast near the monthly budget: {_percent(month_end)} of {budget} by month-end",
            BudgetLevel.NEAR,
        )
    return "", BudgetLevel.OK
