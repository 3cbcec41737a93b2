"""The Analytics tab: when the town works (heatmap), how much it finishes, and how fast.

Figures come from `usage.reports.activity_report`; this module lays them out. Every
chart carries its meaning in characters as well as colour, so it reads in 16 colours
and in monochrome.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.widgets import Label, Static

from tundra_tui.domain.costs import Cost
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.metrics import KpiSnapshot
from tundra_tui.ui.panes.base import Pane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.bar_chart import BarChart
from tundra_tui.ui.widgets.heatmap_chart import HeatmapChart
from tundra_tui.ui.widgets.range_chart import RangeChart, RangeRow
from tundra_tui.usage.analysis import compact_number, format_usd, sparkline
from tundra_tui.usage.reports import ACTIVITY_WINDOWS, ActivityReport, activity_report

ROOMY = (110, 40)
"""Width and height from which the heatmap draws each weekday three lines tall."""
MEASURES = ("activity", "spend")
"""What the heatmap counts (`m` toggles): agent calls plus events, or dollars."""


class AnalyticsPane(Pane):
    """Heatmap and insights on top; throughput and cycle-time charts below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "cycle_window", "Window", id="analytics-window"),
        Binding("m", "toggle_measure", "Heatmap measure", id="analytics-measure"),
    ]
    SHOWS: ClassVar[frozenset[str]] = frozenset({"usage", "metrics", "beads", "convoys", "events"})
    """Spend and KPI snapshots (the daemon's usage watcher), finished beads, activity."""

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(services, id=id)
        self.window = 1
        """Index into ACTIVITY_WINDOWS (`w` cycles it); four weeks to begin with."""
        self.measure = MEASURES[0]
        self.report: ActivityReport | None = None

    def compose(self) -> ComposeResult:
        # One focusable scroller: it takes the pane's keys and scrolls on a short terminal.
        with VerticalScroll(id="analytics-body"):
            yield Static(id="analytics-kpi", markup=False)
            yield Static(id="analytics-spark", markup=False)
            with Horizontal(id="analytics-top"):
                with Vertical(id="analytics-heat-box"):
                    yield Label(id="analytics-heat-title", classes="analytics-title", markup=False)
                    yield HeatmapChart(id="analytics-heatmap")
                with Vertical(id="analytics-insights-box"):
                    yield Label("Insights", classes="analytics-title", markup=False)
                    yield Static(id="analytics-insights", markup=False)
            with Horizontal(id="analytics-bottom"):
                with Vertical(id="analytics-throughput-box"):
                    yield Label(
                        id="analytics-throughput-title", classes="analytics-title", markup=False
                    )
                    yield BarChart(format_value=lambda v: f"{v:.0f}", id="analytics-throughput")
                with Vertical(id="analytics-cycle-box"):
                    yield Label(
                        "Cycle time per week, hours (█ median ░ p90)",
                        classes="analytics-title",
                        markup=False,
                    )
                    yield RangeChart(id="analytics-cycle")

    async def reload(self) -> None:
        """Read the window's heatmap, throughput and cycle times."""
        try:
            self.report = await activity_report(
                self.services.store, self.services.now(), days=ACTIVITY_WINDOWS[self.window]
            )
        except TundraError as error:
            self.notify(str(error), severity="error")
            return
        self._show()

    async def action_cycle_window(self) -> None:
        """Look back over the next window: two, four or eight weeks."""
        self.window = (self.window + 1) % len(ACTIVITY_WINDOWS)
        await self.reload()

    def action_toggle_measure(self) -> None:
        """Colour the heatmap by activity or by spend."""
        self.measure = MEASURES[(MEASURES.index(self.measure) + 1) % len(MEASURES)]
        self._show()

    def on_resize(self, event: Resize) -> None:
        width, height = event.size
        self.set_class(width >= ROOMY[0] and height >= ROOMY[1], "-roomy")

    def _show_kpi(self, report: ActivityReport) -> None:
        """The latest KPI snapshot in one strip, and sparklines of burn and today's cost."""
        self.query_one("#analytics-kpi", Static).update(kpi_strip(report.kpi))
        spark = self.query_one("#analytics-spark", Static)
        width = max(10, min(60, (self.size.width or 80) - 40))
        lines = []
        if report.burn:
            # The lines plot priced dollars; a figure with unpriced usage beside it says so.
            peak = max(range(len(report.burn)), key=lambda i: report.burn[i])
            lines.append(
                f"Burn $/h      {sparkline(report.burn, width)}  "
                f"now {_least(report.burn_unpriced, -1)}{format_usd(report.burn[-1])}/h, "
                f"peak {_least(report.burn_unpriced, peak)}{format_usd(report.burn[peak])}/h"
            )
            unpriced = report.today_unpriced[-1] if report.today_unpriced else 0
            lines.append(
                f"Cost today    {sparkline(report.cost_today, width)}  "
                f"now {_spent(report.cost_today[-1], unpriced)}"
            )
        spark.update(Text("\n".join(lines)))
        spark.display = bool(lines)

    def _show(self) -> None:
        report = self.report
        if report is None or not self.is_mounted:
            return
        self._show_kpi(report)
        days = report.days
        heat = self.query_one(HeatmapChart)
        if self.measure == "spend":
            title = f"Spend by hour, UTC, last {days} days"
            heat.format_value = format_usd
            heat.heat = report.spend
        else:
            title = f"Activity (agent calls + events) by hour, UTC, last {days} days"
            heat.format_value = compact_number
            heat.heat = report.activity
        heat.empty_text = f"No {self.measure} recorded in the last {days} days."
        heat.refresh()
        self.query_one("#analytics-heat-title", Label).update(Text(title))

        insights = "\n".join(report.insights) or (
            f"Nothing to report yet: no activity or finished beads in the last {days} days."
        )
        self.query_one("#analytics-insights", Static).update(Text(insights))

        total = sum(count for _, count in report.done)
        self.query_one("#analytics-throughput-title", Label).update(
            Text(f"Beads done per day: {total:.0f} in the last {days} days")
        )
        chart = self.query_one(BarChart)
        chart.empty_text = f"No beads finished in the last {days} days."
        chart.set_data([(f"{day.day:02d}", count) for day, count in report.done])

        cycle = self.query_one(RangeChart)
        cycle.empty_text = f"No beads finished in the last {days} days."
        cycle.set_rows(
            [
                RangeRow(
                    f"{stat.start:%m-%d}",
                    stat.median,
                    stat.p90,
                    f"{stat.median:.1f}/{stat.p90:.1f}" if stat.count else "-",
                )
                for stat in report.cycles
            ]
        )


def kpi_strip(kpi: KpiSnapshot | None) -> Text:
    """One line from the daemon's latest snapshot (it takes one every
    `daemon.kpi_snapshot_interval_seconds`)."""
    if kpi is None:
        return Text("KPI: no snapshot yet (the daemon takes one every few minutes while up).")
    minutes = max(1, round(kpi.window_seconds / 60)) if kpi.window_seconds else 0
    window = f" in the last {minutes} min" if minutes else ""
    states = " · ".join(f"{n} {state}" for state, n in sorted(kpi.agents_by_state.items()) if n)
    # Unpriced usage is never $0: "$4.00 + unpriced" or "unknown", with its tokens, and a
    # burn rate that leaves some out is "at least".
    tokens = f"{compact_number(kpi.tokens_today)} tok"
    if kpi.unpriced_tokens_today:
        money = f"{format_usd(kpi.cost_today_usd)} + unpriced" if kpi.cost_today_usd else "unknown"
        unpriced = compact_number(kpi.unpriced_tokens_today)
        cost = f"today {money} ({tokens}, {unpriced} unpriced)"
    else:
        cost = f"today {format_usd(kpi.cost_today_usd)} ({tokens})"
    least = "at least " if kpi.burn_unpriced_tokens else ""
    line = Text(f"KPI {kpi.at[11:16]} UTC  ", style="bold")
    line.append(
        f"beads {kpi.beads_active} active, {kpi.done_window} done, {kpi.failed_window} failed"
        f"{window} · agents {states or 'none'} · convoys {kpi.convoys_active} active · "
        f"{cost} · burn {least}{format_usd(kpi.burn_usd_hour)}/h",
        style="",
    )
    return line


def _spent(usd: float, unpriced_tokens: int) -> str:
    """ "$4.00", or with unpriced usage "$4.00 + unpriced (900 tok)" or "unknown (unpriced)"
    as the Costs tab says it (a snapshot keeps the unpriced tokens, not the calls)."""
    if not unpriced_tokens:
        return format_usd(usd)
    return Cost(usd, unpriced_samples=1, unpriced_tokens=unpriced_tokens).text()


def _least(unpriced: tuple[int, ...], index: int) -> str:
    """ "at least " when the snapshot at `index` left unpriced usage out of its figure."""
    return "at least " if unpriced and unpriced[index] else ""
