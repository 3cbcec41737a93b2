"""`at cost`: spend by agent, model, bead, convoy, role, runtime or day; the forecast; one
bead's attempts and waste; budgets, the override and rate-limit pauses.

Everything reads the store (WAL), so it works with or without a daemon; the override and
clearing a pause are store writes a running daemon hears through its event tail. The
figures come from `usage.reports`, the same functions the Costs and Analytics tabs call.
Model names, sessions and titles come from logs and agents: each goes through `visible()`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.domain.beads import format_bead_id, parse_bead_id
from tundra_tui.domain.clock import iso, system_clock
from tundra_tui.domain.costs import Brake, Cost, pause_text
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.metrics import KpiSnapshot
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, table
from tundra_tui.usage.analysis import (
    compact_number,
    day_start,
    month_start,
    next_month_start,
    parse_window,
    share_percent,
)
from tundra_tui.usage.reports import (
    GROUPS,
    CostBreakdown,
    bead_cost,
    brake_json,
    brake_lines,
    brake_report,
    cost_table,
    forecast_report,
)

_NO_KEY = {"bead": "(no bead)", "convoy": "(no convoy)", "role": "(no role)"}
TITLE_WIDTH = 40


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at cost` and its subcommands."""
    text = "tokens and cost from the agents' own logs, by agent, model, bead, convoy, role or day"
    cost = commands.add_parser("cost", help=text, description=text)
    common(cost)
    cost.add_argument(
        "--by", choices=GROUPS, default="agent", help="what each row is (default: agent)"
    )
    cost.add_argument(
        "--since",
        default="today",
        metavar="W",
        help="today (default), yesterday, 7d, 30d, 2h, all, a date or an ISO time",
    )
    cost.add_argument("--until", default="", metavar="W", help="the same forms; default: now")
    cost.add_argument("--json", action="store_true", help="print JSON")
    cost.set_defaults(handler=cmd_cost)
    sub = cost.add_subparsers(title="subcommands", metavar="SUBCOMMAND")

    forecast = sub.add_parser("forecast", help="the 30-day forecast, with its method")
    common(forecast)
    forecast.add_argument("--json", action="store_true", help="print JSON")
    forecast.set_defaults(handler=cmd_forecast)

    bead = sub.add_parser("bead", help="one bead's attempts, tokens, cost and waste")
    common(bead)
    bead.add_argument("bead", help="bead id, e.g. 12 or #12")
    bead.add_argument("--json", action="store_true", help="print JSON")
    bead.set_defaults(handler=cmd_bead)

    budget = sub.add_parser("budget", help="budgets, the override and paused accounts")
    common(budget)
    budget.add_argument("--json", action="store_true", help="print JSON")
    budget.set_defaults(handler=cmd_budget)

    override = sub.add_parser(
        "override",
        help="let dispatch take new beads past a spent budget (to the end of the period)",
    )
    common(override)
    when = override.add_mutually_exclusive_group()
    when.add_argument("--until", metavar="TIME", help="an ISO time or date (UTC)")
    when.add_argument("--for", dest="duration", metavar="D", help="a span such as 2h or 1d")
    when.add_argument("--clear", action="store_true", help="end the override now")
    override.add_argument("--reason", default="", help="why (shown with the override)")
    override.add_argument("--json", action="store_true", help="print JSON")
    override.set_defaults(handler=cmd_override)

    limits = sub.add_parser("limits", help="accounts paused by a rate-limit screen")
    common(limits)
    limits.add_argument("action", nargs="?", choices=("clear",), help="clear ACCOUNT's pause")
    limits.add_argument("account", nargs="?", help="the account to clear")
    limits.add_argument("--json", action="store_true", help="print JSON")
    limits.set_defaults(handler=cmd_limits)


def _now(ctx: Context) -> datetime:
    clock = getattr(ctx, "clock", None)
    return clock() if callable(clock) else system_clock()


def _bound(text: str, now: datetime, flag: str) -> str:
    try:
        moment = parse_window(text, now)
    except ValueError as error:
        raise TundraError(f"{flag}: {error}") from None
    return "" if moment is None else iso(moment)


def _budgets(ctx: Context) -> tuple[float, float]:
    config = ctx.config()
    return (
        float(config.get("costs.daily_budget_usd") or 0.0),
        float(config.get("costs.monthly_budget_usd") or 0.0),
    )


# ---- at cost ---------------------------------------------------------------------------


async def cmd_cost(ctx: Context) -> int:
    a = ctx.args
    now = _now(ctx)
    since = _bound(a.since, now, "--since")
    until = _bound(a.until, now, "--until") if a.until else ""
    store = await ctx.store()
    report = await cost_table(store, by=a.by, since=since, until=until, limit=None)
    if ctx.json:
        dump_json(report.to_json())
        return 0
    print_breakdown(report)
    return 0


def _key(report: CostBreakdown, key: str, label: str) -> str:
    if not key:
        return _NO_KEY.get(report.by, "(none)")
    if report.by == "bead":
        title = visible(label, single_line=True, limit=TITLE_WIDTH)
        return f"{format_bead_id(int(key))} {title}".rstrip()
    return visible(key, single_line=True, limit=TITLE_WIDTH)


def print_breakdown(report: CostBreakdown) -> None:
    """The table, its total and the footer, as `at cost` prints them."""
    window = f"since {report.since or 'the start'}" + (
        f" until {report.until}" if report.until else ""
    )
    if not report.total.samples:
        print(f"No usage recorded {window}.")
        return
    rows = []
    for row in report.rows:
        rows.append(
            (
                _key(report, row.key, row.label),
                row.samples,
                compact_number(row.input_tokens),
                compact_number(row.output_tokens),
                compact_number(row.cache_read_tokens),
                compact_number(row.cache_write_tokens),
                report.cost_of(row).text(),
                f"{share_percent(row.cost_usd, report.total.cost_usd):.1f}%",
            )
        )
    total = report.total
    rows.append(
        (
            "Total",
            total.samples,
            compact_number(total.input_tokens),
            compact_number(total.output_tokens),
            compact_number(total.cache_read_tokens),
            compact_number(total.cache_write_tokens),
            report.total_cost.text(),
            "100%" if total.cost_usd else "",
        )
    )
    header = (report.by, "calls", "input", "output", "cache read", "cache write", "cost", "share")
    print(f"Spend by {report.by}, {window} (UTC)")
    table(header, rows)
    for line in report.footer():
        print(visible(line, single_line=True))


# ---- at cost forecast ------------------------------------------------------------------


async def cmd_forecast(ctx: Context) -> int:
    daily, monthly = _budgets(ctx)
    store = await ctx.store()
    report = await forecast_report(store, _now(ctx), daily_budget=daily, monthly_budget=monthly)
    if ctx.json:
        dump_json(report.to_json())
    else:
        for line in report.lines():
            print(line)
    return 0


# ---- at cost bead N --------------------------------------------------------------------


async def cmd_bead(ctx: Context) -> int:
    bead_id = parse_bead_id(ctx.args.bead)
    store = await ctx.store()
    report = await bead_cost(store, bead_id)
    if ctx.json:
        dump_json(report.to_json())
        return 0
    bead = report.bead
    title = visible(bead.title, single_line=True, limit=60)
    convoy = f" · convoy {visible(report.convoy, single_line=True)}" if report.convoy else ""
    print(f"{bead.ref} {title} · {bead.status.value}{convoy}")
    if not report.attempts:
        print("No attempt on record (no dispatch and no hook by hand).")
    else:
        rows = [
            (
                a.dispatch_id if a.dispatch_id is not None else "hook",
                visible(a.agent, single_line=True),
                a.role,
                _span(a.start, a.end),
                a.outcome or "open",
                a.verdict.value,
                compact_number(a.input),
                compact_number(a.output),
                compact_number(a.cache_read + a.cache_write),
                a.cost.text(),
            )
            for a in report.attempts
        ]
        header = ("attempt", "agent", "role", "from-to", "outcome", "verdict", "in", "out")
        table((*header, "cache", "cost"), rows)
    print(f"Kept: {report.kept.text()} · waste: {report.waste.text()}", end="")
    print(
        f" · open: {report.open.text()}" if report.open.usd or report.open.unpriced_samples else ""
    )
    print(f"Refinery attempts: {report.refinery_attempts}")
    return 0


def _span(start: str, end: str) -> str:
    begin = start[5:16].replace("T", " ") if start else "?"
    if not end:
        return f"{begin}-now"
    return f"{begin}-{end[11:16] if end[:10] == start[:10] else end[5:16].replace('T', ' ')}"


# ---- at cost budget / override / limits ------------------------------------------------


async def cmd_budget(ctx: Context) -> int:
    store = await ctx.store()
    now = _now(ctx)
    brake = await brake_report(store, ctx.config(), now)
    if ctx.json:
        dump_json(brake_json(brake, iso(now)))
        return 0
    lines = brake_lines(brake, iso(now))
    if not brake.scopes:
        lines.insert(0, "No budget set (costs.daily_budget_usd, costs.monthly_budget_usd).")
    for line in lines:
        print(line)
    return 0


def _override_end(ctx: Context, brake: Brake, now: datetime) -> datetime:
    """`--until`, `--for`, else the end of the UTC day (of the month when only the month's
    budget is spent)."""
    a = ctx.args
    if a.until:
        moment = parse_window(a.until, now)
        if moment is None or moment <= now:
            raise TundraError("--until must be a time in the future")
        return moment
    if a.duration:
        start = parse_window(a.duration, now)
        if start is None or start >= now:
            raise TundraError("--for takes a span such as 2h or 1d")
        return now + (now - start)
    stopped = {s.kind for s in brake.scopes if s.level.value == "stop"}
    if stopped == {"month"}:
        return next_month_start(now) - timedelta(microseconds=1)
    return day_start(now) + timedelta(days=1) - timedelta(microseconds=1)


async def cmd_override(ctx: Context) -> int:
    store = await ctx.store()
    now = _now(ctx)
    usage = store.usage
    if ctx.args.clear:
        await usage.set_override("", reason="", actor=ctx.actor)
        if ctx.json:
            dump_json({"override_until": "", "override_reason": ""})
        else:
            print("override cleared: spent budgets stop new beads again")
        return 0
    brake = await brake_report(store, ctx.config(), now)
    end = _override_end(ctx, brake, now)
    await usage.set_override(iso(end), reason=ctx.args.reason, actor=ctx.actor)
    if ctx.json:
        dump_json({"override_until": iso(end), "override_reason": ctx.args.reason})
    else:
        print(
            f"override until {end.astimezone(UTC):%Y-%m-%d %H:%M} UTC: dispatch takes new "
            "beads past spent budgets (the warnings stay)"
        )
    return 0


async def cmd_limits(ctx: Context) -> int:
    store = await ctx.store()
    now = _now(ctx)
    a = ctx.args
    if a.action == "clear":
        if not a.account:
            raise TundraError("name the account to clear: at cost limits clear ACCOUNT")
        cleared = await store.usage.clear_pause(a.account, actor=ctx.actor)
        if not cleared:
            raise TundraError(f"account {a.account!r} is not paused")
        print(f"cleared the pause on account {a.account}: dispatch to it resumes")
        return 0
    pauses = await store.usage.live_pauses(iso(now))
    if ctx.json:
        dump_json(
            [
                {
                    "account": p.account,
                    "runtime": p.runtime,
                    "agent": p.agent,
                    "until": p.until,
                    "shown": p.shown,
                    "parsed": p.reset_parsed,
                    "text": pause_text(p, iso(now)),
                }
                for p in pauses
            ]
        )
        return 0
    if not pauses:
        print("No account is paused.")
    for pause in pauses:
        print(visible(pause_text(pause, iso(now)), single_line=True))
    return 0


def cost_line(today: Cost, month: Cost, brake: Brake, now: str) -> str:
    """The one line `at status` prints about money."""
    marks = {"warn": " · budget warning", "stop": " · BUDGET STOP", "overridden": " · override"}
    mark = marks.get(brake.town_level(now), "")
    stopped = [visible(name, single_line=True, limit=40) for name in brake.convoys_stopped(now)]
    if stopped and "STOP" not in mark:  # only these convoys' beads wait; the town goes on
        mark += f" · convoy {', '.join(stopped)} stopped"
    return f"cost: today {today.text()} · month {month.text()}{mark}"


async def status_costs(ctx: Context) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """What `at status` says about money: the `costs` and `kpi` JSON, and its one line."""
    store = await ctx.store()
    now = _now(ctx)
    today = await store.metrics.cost(since=iso(day_start(now)))
    month = await store.metrics.cost(since=iso(month_start(now)))
    brake = await brake_report(store, ctx.config(), now)
    snapshot = await store.metrics.latest_snapshot()
    costs = {
        "today_usd": today.usd,
        "month_usd": month.usd,
        "unpriced_tokens_today": today.unpriced_tokens,
        "unpriced_tokens_month": month.unpriced_tokens,
        "brake": brake_json(brake, iso(now)),
    }
    kpi = None if snapshot is None else kpi_json(snapshot)
    return costs, kpi, cost_line(today, month, brake, iso(now))


def kpi_json(snapshot: KpiSnapshot) -> dict[str, Any]:
    """A KPI snapshot as JSON, every field by name."""
    return {
        "at": snapshot.at,
        "window_seconds": snapshot.window_seconds,
        "beads_active": snapshot.beads_active,
        "beads_done": snapshot.beads_done,
        "beads_failed": snapshot.beads_failed,
        "done_window": snapshot.done_window,
        "failed_window": snapshot.failed_window,
        "agents_active": snapshot.agents_active,
        "agents_idle": snapshot.agents_idle,
        "agents_awaiting": snapshot.agents_awaiting,
        "agents_by_state": dict(snapshot.agents_by_state),
        "convoys_active": snapshot.convoys_active,
        "cost_today_usd": snapshot.cost_today_usd,
        "tokens_today": snapshot.tokens_today,
        "unpriced_tokens_today": snapshot.unpriced_tokens_today,
        "burn_usd_hour": snapshot.burn_usd_hour,
        "burn_unpriced_tokens": snapshot.burn_unpriced_tokens,
    }
