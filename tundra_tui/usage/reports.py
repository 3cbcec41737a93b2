"""What the Costs and Analytics tabs show, read from the store in a few indexed queries.

Everything is aggregated in SQL (a reload stays cheap with 100k usage samples); the
arithmetic on the aggregates lives in `usage.analysis`. Both readers take `now` so a
test or snapshot sees fixed windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tundra_tui.domain.beads import Bead
from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.domain.costs import AttemptCost, Brake, Cost, Verdict, pause_text
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.metrics import KpiSnapshot
from tundra_tui.domain.sanitize import visible
from tundra_tui.store import CostRow, Store
from tundra_tui.usage.analysis import (
    FORECAST_BASIS_DAYS,
    RECENT_HOURS,
    BudgetStatus,
    CycleStat,
    DailyForecast,
    Forecast,
    Heatmap,
    budget_status,
    burn_rate,
    cycle_stats,
    daily_forecast,
    daily_series,
    day_start,
    format_usd,
    heatmap,
    hours_today,
    insights,
    month_start,
    throughput,
)

if TYPE_CHECKING:
    from tundra_tui.config import LayeredConfig

GROUPS = ("agent", "model", "bead", "convoy", "role", "runtime", "day")
"""The Costs table's groupings, in the order `g` cycles them (and `at cost --by`)."""
COST_WINDOWS: tuple[tuple[str, int | None], ...] = (
    ("today", 0),
    ("7 days", 7),
    ("30 days", 30),
    ("all time", None),
)
"""The Costs table's windows: a label and how many days back (0 = since midnight)."""
CHART_DAYS = 30
"""Days of daily spend the Costs chart may show."""
ROW_LIMIT = 500
"""Groups read at most (a rollup by bead over a long history can be huge)."""
ACTIVITY_WINDOWS = (14, 28, 56)
"""The Analytics windows in days, whole weeks so each weekday counts equally."""
NO_COST = Cost(0.0)
"""Nothing spent (the default of a report's costs)."""


@dataclass(frozen=True, slots=True)
class CostReport:
    """Everything the Costs tab shows for one grouping and window."""

    rows: list[CostRow]
    window_cost: float
    window_input: int
    window_output: int
    window_cache: int
    today: BudgetStatus
    month: BudgetStatus
    month_end: BudgetStatus
    """The month's forecast total against the monthly budget."""
    burn_recent: float
    """$/hour over the last RECENT_HOURS hours."""
    burn_today: float
    """$/hour since midnight UTC."""
    forecast: Forecast
    daily: list[tuple[date, float]]
    """Spend per day over the last CHART_DAYS days, oldest first."""
    has_usage: bool
    """Whether any sample was ever recorded (an empty window is not an empty store)."""
    breakdown: CostBreakdown | None = None
    """The table's rows with their unpriced counts, and the footer's facts."""
    projection: ForecastReport | None = None
    """The forecast with its method and basis."""
    brake: Brake | None = None
    """Budgets, the override and paused accounts (None: not read)."""
    today_cost: Cost = NO_COST
    """Since midnight UTC, with its unpriced part (Today and the burn today are floors)."""
    recent_cost: Cost = NO_COST
    """The last RECENT_HOURS hours, with its unpriced part."""
    month_cost: Cost = NO_COST
    """Since the 1st of the month, with its unpriced part."""

    @property
    def forecast_complete(self) -> bool:
        """Whether the forecast's basis days were all priced (else it is a floor)."""
        return self.projection is None or self.projection.basis.complete


def window_since(now: datetime, days: int | None) -> str:
    """The stored timestamp a window starts at: midnight `days` days back, "" for all time."""
    if days is None:
        return ""
    return iso(day_start(now) - timedelta(days=max(0, days - 1)))


async def cost_report(
    store: Store,
    now: datetime,
    *,
    group: str,
    days: int | None,
    daily_budget: float = 0.0,
    monthly_budget: float = 0.0,
    config: LayeredConfig | None = None,
) -> CostReport:
    """Read the rollup for `group` over the window and the figures around it (the same
    `cost_table` and `forecast_report` as `at cost`; the brake too when `config` is given)."""
    metrics = store.metrics
    since = window_since(now, days)
    breakdown = await cost_table(store, by=group, since=since)
    chart_since = window_since(now, CHART_DAYS)
    chart_days = await metrics.rollup("day", since=chart_since)
    # Costs, not floats: unpriced usage makes a figure a floor, and the tab says so.
    today = await metrics.cost(since=iso(day_start(now)))
    recent = await metrics.cost(since=iso(now - timedelta(hours=RECENT_HOURS)))
    month = await metrics.cost(since=iso(month_start(now)))
    first = await metrics.first_at()
    projection = await forecast_report(
        store, now, daily_budget=daily_budget, monthly_budget=monthly_budget
    )
    ahead = projection.forecast
    brake = await brake_report(store, config, now) if config is not None else None
    total = breakdown.total
    month_end_complete = month.complete and projection.basis.complete
    return CostReport(
        rows=breakdown.rows,
        window_cost=total.cost_usd,
        window_input=total.input_tokens,
        window_output=total.output_tokens,
        window_cache=total.cache_read_tokens + total.cache_write_tokens,
        today=budget_status(today.usd, daily_budget, complete=today.complete),
        month=budget_status(ahead.month_spent, monthly_budget, complete=month.complete),
        month_end=budget_status(ahead.month_end, monthly_budget, complete=month_end_complete),
        burn_recent=burn_rate(recent.usd, RECENT_HOURS),
        burn_today=burn_rate(today.usd, hours_today(now)),
        forecast=Forecast(ahead.mean, ahead.basis_days, ahead.next_30, ahead.month_end),
        daily=daily_series(
            {date.fromisoformat(row.key): row.cost_usd for row in chart_days},
            day_start(now).date(),
            CHART_DAYS,
        ),
        has_usage=bool(first),
        breakdown=breakdown,
        projection=projection,
        brake=brake,
        today_cost=today,
        recent_cost=recent,
        month_cost=month,
    )


@dataclass(frozen=True, slots=True)
class ActivityReport:
    """Everything the Analytics tab shows for one window."""

    days: int
    activity: Heatmap
    """Usage samples plus events per weekday and hour."""
    spend: Heatmap
    """Dollars per weekday and hour."""
    done: list[tuple[date, float]]
    """Beads finished per day, oldest first."""
    cycles: list[CycleStat]
    """Cycle times per week, oldest first."""
    insights: list[str]
    kpi: KpiSnapshot | None = None
    """The daemon's latest KPI snapshot (None: none taken yet)."""
    burn: tuple[float, ...] = ()
    """`burn_usd_hour` of each snapshot in the window, oldest first."""
    cost_today: tuple[float, ...] = ()
    """`cost_today_usd` of each snapshot in the window, oldest first."""
    burn_unpriced: tuple[int, ...] = ()
    """`burn_unpriced_tokens` of each snapshot (not 0: that rate is a floor)."""
    today_unpriced: tuple[int, ...] = ()
    """`unpriced_tokens_today` of each snapshot (not 0: that day's cost is a floor)."""


SNAPSHOT_LIMIT = 2000
"""Snapshots read for the sparklines (a week at the default 5 minutes)."""


async def activity_report(store: Store, now: datetime, *, days: int) -> ActivityReport:
    """Read the heatmaps, throughput, cycle times and KPI snapshots of the `days` days
    ending today."""
    since = window_since(now, days)
    cells = await store.metrics.by_hour(since=since) + await store.events.by_hour(since=since)
    activity = heatmap((cell.weekday, cell.hour, cell.count) for cell in cells)
    spend = heatmap((cell.weekday, cell.hour, cell.cost_usd) for cell in cells)
    finished = await store.beads.finished_since(since)
    today = day_start(now).date()
    done = throughput((stamp for stamp, _ in finished), today, days)
    cycles = cycle_stats(finished, today, max(1, days // 7))
    latest = await store.metrics.latest_snapshot()
    snapshots = await store.metrics.snapshots(since=since, limit=SNAPSHOT_LIMIT)
    return ActivityReport(
        days,
        activity,
        spend,
        done,
        cycles,
        insights(activity, done, cycles),
        latest,
        tuple(snap.burn_usd_hour for snap in snapshots),
        tuple(snap.cost_today_usd for snap in snapshots),
        tuple(snap.burn_unpriced_tokens for snap in snapshots),
        tuple(snap.unpriced_tokens_today for snap in snapshots),
    )


# ---- `at cost` and the tabs' shared figures -------------------------------------------


@dataclass(frozen=True, slots=True)
class UnpricedModel:
    """A model no price table knows: its tokens are counted, its cost is unknown."""

    runtime: str
    model: str
    tokens: int


@dataclass(frozen=True, slots=True)
class LoggedPair:
    """A CLI's own figure for a session beside ours (shown where they differ)."""

    runtime: str
    session: str
    agent: str
    cli_cost_usd: float
    our_cost_usd: float

    @property
    def differs(self) -> bool:
        """More than 1% apart (either way)."""
        big = max(abs(self.cli_cost_usd), abs(self.our_cost_usd))
        return big > 0 and abs(self.cli_cost_usd - self.our_cost_usd) > 0.01 * big


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """`at cost` and the Costs table: one row per group, the total and the footer's facts."""

    by: str
    since: str
    until: str
    rows: list[CostRow]
    total: CostRow
    """Every sample in the window (a row list cut at ROW_LIMIT still has the full total)."""
    total_cost: Cost
    unpriced: list[UnpricedModel]
    no_bead: Cost
    no_bead_samples: int
    logged: list[LoggedPair]
    sources: list[tuple[str, int]]
    """The price tables that priced the window's calls, with how many calls each."""

    def cost_of(self, row: CostRow) -> Cost:
        """A row's dollars as a `Cost`, so unpriced usage is never shown as $0."""
        return Cost(row.cost_usd, row.unpriced_samples, row.unpriced_tokens)

    def footer(self) -> list[str]:
        """The plain-text lines under the table: sources, unpriced models, no-bead spend,
        and CLI figures that disagree with ours."""
        lines: list[str] = []
        if self.sources:
            named = "; ".join(f"{source} ({_calls(count)})" for source, count in self.sources)
            lines.append(f"Priced with {named}.")
        for model in self.unpriced:
            lines.append(
                f"Unpriced: {model.runtime} model {model.model!r} ({model.tokens:,} tokens): "
                f'set its price in [costs.prices."{model.model}"] (input and output, $/MTok).'
            )
        if self.no_bead_samples:
            lines.append(
                f"No bead on the hook: {self.no_bead.text()} over {_calls(self.no_bead_samples)} "
                "(shown on its own, never spread over beads)."
            )
        for pair in self.logged:
            if not pair.differs:
                continue
            who = f"{pair.runtime} session {pair.session[:12] or '(none)'} ({pair.agent})"
            ours = (
                f"our table says ${pair.our_cost_usd:,.4f}"
                if pair.our_cost_usd
                else "our tables have no price for its model"
            )
            lines.append(f"{who}: the CLI logged ${pair.cli_cost_usd:,.4f}, {ours}.")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The `at cost --json` document (docs/costs.md names each field)."""
        total = _row_json(self.total, self.total_cost)
        total.pop("key")
        total.pop("label")
        total["price_sources"] = [source for source, _ in self.sources]
        return {
            "since": self.since,
            "until": self.until,
            "by": self.by,
            "rows": [_row_json(row, self.cost_of(row)) for row in self.rows],
            "total": total,
            "unpriced_models": [
                {"runtime": m.runtime, "model": m.model, "tokens": m.tokens} for m in self.unpriced
            ],
            "logged": [
                {
                    "runtime": p.runtime,
                    "session": p.session,
                    "agent": p.agent,
                    "cli_cost_usd": p.cli_cost_usd,
                    "our_cost_usd": p.our_cost_usd,
                }
                for p in self.logged
            ],
            "no_bead": {"cost_usd": self.no_bead.usd, "samples": self.no_bead_samples},
        }


def _calls(count: int) -> str:
    return f"{count:,} call" + ("" if count == 1 else "s")


def _row_json(row: CostRow, cost: Cost) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "samples": row.samples,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "cost_usd": row.cost_usd,
        "priced": cost.complete,
        "unpriced_samples": row.unpriced_samples,
        "unpriced_tokens": row.unpriced_tokens,
        "logged_cost_usd": row.logged_cost_usd,
    }


async def cost_table(
    store: Store, *, by: str, since: str = "", until: str = "", limit: int | None = ROW_LIMIT
) -> CostBreakdown:
    """Spend grouped `by` over [since, until) (stored timestamps, "" = unbounded), with the
    footer's facts: the same figures for `at cost` and the Costs tab."""
    if by not in GROUPS:
        raise TundraError(f"cannot group costs by {by!r}: use one of {', '.join(GROUPS)}")
    metrics = store.metrics
    rows = await metrics.rollup(by, since=since, until=until, limit=limit)
    total = await metrics.totals(since=since, until=until)
    unpriced = [
        UnpricedModel(runtime, model, tokens)
        for runtime, model, tokens in await metrics.unpriced_models(since=since, until=until)
    ]
    no_bead, no_bead_samples = await metrics.no_bead(since=since, until=until)
    logged = [
        LoggedPair(p.runtime, p.session, p.agent, p.cli_cost_usd, p.our_cost_usd)
        for p in await metrics.logged(since=since, until=until)
    ]
    sources = await metrics.price_sources(since=since, until=until)
    return CostBreakdown(
        by,
        since,
        until,
        rows,
        total,
        total.cost,
        unpriced,
        no_bead,
        no_bead_samples,
        logged,
        [(source, count) for source, count in sources if source],
    )


@dataclass(frozen=True, slots=True)
class BeadCost:
    """One bead's attempts and what each spent: kept, waste, and what is still open."""

    bead: Bead
    convoy: str
    attempts: list[AttemptCost]
    kept: Cost
    waste: Cost
    open: Cost
    refinery_attempts: int

    @property
    def total(self) -> Cost:
        return self.kept + self.waste + self.open

    def to_json(self) -> dict[str, Any]:
        return {
            "bead": self.bead.id,
            "title": self.bead.title,
            "status": self.bead.status.value,
            "convoy": self.convoy,
            "attempts": [
                {
                    "dispatch_id": a.dispatch_id,
                    "agent": a.agent,
                    "role": a.role,
                    "start": a.start,
                    "end": a.end,
                    "outcome": a.outcome,
                    "verdict": a.verdict.value,
                    "input_tokens": a.input,
                    "output_tokens": a.output,
                    "cache_read_tokens": a.cache_read,
                    "cache_write_tokens": a.cache_write,
                    **_cost_json(a.cost),
                }
                for a in self.attempts
            ],
            "kept": _cost_json(self.kept),
            "waste": _cost_json(self.waste),
            "open": _cost_json(self.open),
            "total": _cost_json(self.total),
            "refinery_attempts": self.refinery_attempts,
        }


def _cost_json(cost: Cost) -> dict[str, Any]:
    return {
        "cost_usd": cost.usd,
        "priced": cost.complete,
        "unpriced_samples": cost.unpriced_samples,
        "unpriced_tokens": cost.unpriced_tokens,
    }


async def bead_cost(store: Store, bead_id: int) -> BeadCost:
    """A bead's attempts (dispatches and hooks by hand) with their verdicts and spend."""
    bead = await store.beads.get(bead_id)
    convoy = ""
    if bead.convoy_id is not None:
        convoy = (await store.convoys.get(bead.convoy_id)).name
    attempts = await store.metrics.bead_attempts(bead_id)
    kept = waste = opened = Cost(0.0)
    for attempt in attempts:
        if attempt.verdict is Verdict.KEPT:
            kept += attempt.cost
        elif attempt.verdict is Verdict.WASTE:
            waste += attempt.cost
        else:
            opened += attempt.cost
    merges = await store.merges.for_bead(bead_id)
    return BeadCost(bead, convoy, attempts, kept, waste, opened, len(merges))


@dataclass(frozen=True, slots=True)
class ForecastReport:
    """`at cost forecast`: the projection, its method and the budgets it meets."""

    forecast: DailyForecast
    basis: Cost
    """What the basis days cost (unpriced usage there makes the forecast a floor)."""
    monthly_budget: float
    daily_budget: float

    def lines(self) -> list[str]:
        f = self.forecast
        floor = "" if self.basis.complete else "at least "
        if f.basis_days == 0:
            lines = ["No full day of usage yet: the forecast starts after the first UTC day."]
        else:
            lines = [
                f"Next 30 days: {floor}{format_usd(f.next_30)} "
                f"(mean {format_usd(f.mean)}/day over the last {f.basis_days} full "
                f"day{'s' if f.basis_days != 1 else ''})",
                f"Month-end: {floor}{format_usd(f.month_end)} "
                f"({format_usd(f.month_spent)} spent + {f.days_left:.1f} days left)",
            ]
        if self.monthly_budget > 0 and f.basis_days:
            percent = 100 * f.month_end / self.monthly_budget
            verdict = "over" if percent >= 100 else "within"
            lines.append(
                f"Monthly budget {format_usd(self.monthly_budget)}: month-end is {percent:.0f}% "
                f"({verdict}; costs.monthly_budget_usd)"
            )
        if self.daily_budget > 0 and f.basis_days:
            lines.append(
                f"Daily budget {format_usd(self.daily_budget)}: the mean day is "
                f"{100 * f.mean / self.daily_budget:.0f}% of it"
            )
        if not self.basis.complete:
            lines.append(
                f"Unpriced usage in the basis ({self.basis.unpriced_tokens:,} tokens) is not "
                "counted: the figures are a floor."
            )
        lines.append(f"Method: {f.method}.")
        return lines

    def to_json(self) -> dict[str, Any]:
        f = self.forecast
        return {
            "method": f.method,
            "basis_days": f.basis_days,
            "mean_daily_usd": f.mean,
            "next_30_days_usd": f.next_30,
            "month_spent_usd": f.month_spent,
            "month_end_usd": f.month_end,
            "days_left": f.days_left,
            "monthly_budget_usd": self.monthly_budget,
            "daily_budget_usd": self.daily_budget,
            "basis": _cost_json(self.basis),
        }


async def forecast_report(
    store: Store, now: datetime, *, daily_budget: float = 0.0, monthly_budget: float = 0.0
) -> ForecastReport:
    """The 30-day forecast from the last full UTC days (today excluded)."""
    metrics = store.metrics
    today = day_start(now)
    first = await metrics.first_at()
    full_days: list[float] = []
    basis_since = today
    if first:
        first_day = day_start(parse_iso(first))
        count = min(FORECAST_BASIS_DAYS, (today - first_day).days)
        basis_since = today - timedelta(days=count)
        rows = await metrics.rollup("day", since=iso(basis_since), until=iso(today))
        spent = {date.fromisoformat(row.key): row.cost_usd for row in rows}
        full_days = [
            value for _, value in daily_series(spent, (today - timedelta(days=1)).date(), count)
        ]
    basis = await metrics.cost(since=iso(basis_since), until=iso(today))
    month = await metrics.cost(since=iso(month_start(now)))
    return ForecastReport(
        daily_forecast(full_days, now, month_spent=month.usd),
        basis,
        monthly_budget,
        daily_budget,
    )


async def brake_report(store: Store, config: LayeredConfig, now: datetime) -> Brake:
    """Budgets, the override and live pauses as the daemon's brake reads them (a pure read
    of the store, so `at cost budget` works with no daemon)."""
    from tundra_tui.daemon.brake import read_brake  # the daemon package, only when asked

    return await read_brake(store, config, now)


def brake_json(brake: Brake, now: str) -> dict[str, Any]:
    """The brake as `at cost budget --json` and `at status --json` show it."""
    return {
        "level": brake.level(now),
        "budgets": [
            {
                "scope": s.kind,
                "name": s.name,
                "spent_usd": s.spent.usd,
                "budget_usd": s.budget_usd,
                "percent": round(s.percent, 1),
                "level": s.level.value,
                "unpriced_tokens": s.spent.unpriced_tokens,
                "key": s.key,
            }
            for s in brake.scopes
        ],
        "override_until": brake.override_until if brake.overridden(now) else "",
        "override_reason": brake.override_reason if brake.overridden(now) else "",
        "pauses": [
            {
                "account": p.account,
                "runtime": p.runtime,
                "agent": p.agent,
                "until": p.until,
                "shown": p.shown,
                "parsed": p.reset_parsed,
                "text": pause_text(p, now),
            }
            for p in brake.pauses
            if brake.paused(p.account, now) is p
        ],
    }


def brake_lines(brake: Brake, now: str, *, quiet: bool = False) -> list[str]:
    """Budget and pause lines in words (`at cost budget`, the Costs tab); `quiet` leaves out
    budgets that are ok."""
    lines: list[str] = []
    for scope in brake.scopes:
        if quiet and scope.level.value == "ok":
            continue
        least = "" if scope.spent.complete else "at least "
        name = visible(scope.name, single_line=True, limit=40)
        where = {"day": "today", "month": "this month"}.get(scope.kind, f"convoy {name}")
        mark = {"warn": "▲ ", "stop": "✖ "}.get(scope.level.value, "")
        lines.append(
            f"{mark}budget {where}: {least}${scope.spent.usd:,.2f} of ${scope.budget_usd:,.2f} "
            f"({scope.percent:.0f}%, {scope.level.value}; {scope.key})"
        )
    if brake.overridden(now):
        reason = visible(brake.override_reason, single_line=True)
        lines.append(
            f"override until {brake.override_until[:16].replace('T', ' ')} UTC"
            + (f": {reason}" if reason else "")
        )
    for pause in brake.pauses:
        if brake.paused(pause.account, now) is pause:
            lines.append(visible(pause_text(pause, now), single_line=True))
    return lines
