"""`at up`, `at down` and `at dispatch pause|resume|status`: the town as a whole.

`at up` starts the daemon (if needed), marks the town up, starts the agents marked to
start or brought back, and lets dispatch run; it is idempotent, and after a reboot it
brings back what was running. `at down` stops every agent and the daemon and keeps
all state. Pausing dispatch is a switch in the store, so it works with no daemon (the
daemon flips it when one runs, and every client hears of it), and once `at dispatch
pause` returns nothing more is claimed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import msgspec

from tundra_tui.cli.context import Context
from tundra_tui.cli.daemon import STOP_TIMEOUT_S, cmd_stop, fields
from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable, start_daemon
from tundra_tui.daemon.protocol import (
    DispatchControl,
    DispatchQuery,
    DispatchStatus,
    Down,
    DownReply,
    Up,
    UpReply,
    WaitingRow,
)
from tundra_tui.domain.dispatch import WaitReason
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, key_values, table


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at up`, `at down` and `at dispatch …`."""
    up = commands.add_parser(
        "up",
        help="start the town: the daemon, the agents marked to start, and dispatch",
        description="Start the daemon if needed, start every agent marked `start = true` "
        "(or started by hand before), and let dispatch hand ready beads to agents. "
        "Running it again starts nothing new.",
    )
    common(up)
    up.add_argument("--json", action="store_true", help="print JSON")
    up.set_defaults(handler=cmd_up)
    down = commands.add_parser(
        "down",
        help="stop every agent and the daemon; all state is kept",
        description="Stop dispatch, every agent and the daemon. Beads, mail and which "
        "agents to bring back are kept for the next `at up`.",
    )
    common(down)
    down.add_argument("--json", action="store_true", help="print JSON")
    down.add_argument(
        "--wait",
        type=float,
        default=STOP_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the daemon to exit (default {STOP_TIMEOUT_S:g})",
    )
    down.set_defaults(handler=cmd_down)
    dispatch = commands.add_parser("dispatch", help="the daemon handing ready beads to agents")
    common(dispatch)
    sub = dispatch.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    pause = sub.add_parser("pause", help="claim no more beads until resumed")
    common(pause)
    pause.add_argument("--reason", default="", help="why (shown by `at dispatch status`)")
    pause.set_defaults(handler=cmd_pause)
    resume = sub.add_parser("resume", help="let dispatch claim beads again")
    common(resume)
    resume.set_defaults(handler=cmd_resume)
    status = sub.add_parser(
        "status", help="open dispatches, and each ready bead not dispatched with the reason"
    )
    common(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)


async def cmd_up(ctx: Context) -> int:
    """Start the daemon if needed, then the town."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not start the town (the operator does)")
    town = ctx.town()
    ctx.config()
    await start_daemon(town)
    client = await DaemonClient.connect(town)
    try:
        reply: UpReply = await client.call(Up())
    finally:
        await client.close()
    if ctx.json:
        dump_json(fields(reply))
        return 1 if reply.failed else 0
    rows: list[tuple[str, object]] = [
        ("started", ", ".join(reply.started) or "-"),
        ("running", ", ".join(reply.running) or "-"),
    ]
    rows += [
        (f"failed {name}", visible(why, single_line=True)) for name, why in reply.failed.items()
    ]
    rows.append(("dispatch", visible(reply.dispatch, single_line=True)))
    key_values(rows)
    return 1 if reply.failed else 0


async def cmd_down(ctx: Context) -> int:
    """Stop every agent (the daemon says which), then the daemon; without one, mark the
    town down in the store so the next daemon does not dispatch before `at up`."""
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not stop the town (the operator does)")
    town = ctx.town()
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        store = await ctx.store()
        await store.flags.set_up(False, actor=ctx.actor)
        if not ctx.json:
            print("the town is down (no daemon was running)")
        else:
            dump_json({"stopped": [], "daemon": False})
        return 0
    try:
        reply: DownReply = await client.call(Down())
    finally:
        await client.close()
    if not ctx.json:
        print(f"stopped: {', '.join(reply.stopped) or 'no agent was running'}")
    code = await cmd_stop(ctx)
    return code


async def cmd_pause(ctx: Context) -> int:
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not pause dispatch (the operator does)")
    await _switch(ctx, DispatchControl(verb="pause", reason=ctx.args.reason))
    print("dispatch paused" + (f": {ctx.args.reason}" if ctx.args.reason else ""))
    return 0


async def cmd_resume(ctx: Context) -> int:
    from tundra_tui.cli.reports import refuse_inside

    refuse_inside(ctx, "agents do not resume dispatch (the operator does)")
    await _switch(ctx, DispatchControl(verb="resume"))
    print("dispatch resumed")
    return 0


async def _switch(ctx: Context, request: DispatchControl) -> None:
    """Through the daemon when it runs (every client hears of it); else the store's switch,
    which the next daemon reads."""
    from tundra_tui.cli.reports import ask_daemon

    if await ask_daemon(ctx, request, required=False) is None:
        store = await ctx.store()
        paused = request.verb == "pause"
        await store.flags.set_paused(paused, actor=ctx.actor, reason=request.reason)


async def cmd_status(ctx: Context) -> int:
    """The daemon's view when it runs; else the store's, where nothing is dispatched."""
    status = await _status(ctx)
    if ctx.json:
        dump_json({key: msgspec.to_builtins(value) for key, value in fields(status).items()})
        return 0
    paused = "paused" + (f": {status.pause_reason}" if status.pause_reason else "")
    if not status.up:
        state = "down (start it with `at up`)" + (f"; {paused}" if status.paused else "")
    elif status.paused:
        state = paused
    else:
        state = "running"
    key_values(
        [
            ("dispatch", visible(state, single_line=True)),
            ("polecats", f"{status.polecats} of {status.max_polecats}"),
            ("terminals", f"{status.ptys} of {status.max_ptys}"),
        ]
    )
    brake = budget_lines(status)
    if brake:
        print()
        for line in brake:
            print(line)
    if status.active:
        print()
        table(
            ("BEAD", "AGENT", "KIND", "STATE", "BRANCH", "SINCE"),
            [
                (f"#{d.bead}", d.agent, d.kind, d.state, d.branch or "-", d.since[:19])
                for d in status.active
            ],
        )
    if status.waiting:
        print()
        table(
            ("BEAD", "REASON", "DETAIL", "TITLE"),
            [(f"#{w.bead}", w.reason, w.detail or "-", w.title) for w in status.waiting],
            flex=3,
        )
    elif not status.active:
        print("\nno beads waiting")
    return 0


def budget_lines(status: DispatchStatus) -> list[str]:
    """The brake's budgets (warned or stopped) and the paused accounts, in words, above the
    waiting list: they say why beads wait before the list does."""
    lines = [
        visible(
            budget.text or f"budget {budget.scope} {budget.name}: {budget.level}", single_line=True
        )
        for budget in status.budgets
        if budget.level != "ok"
    ]
    if status.override_until:
        reason = visible(status.override_reason, single_line=True)
        lines.append(
            f"override until {status.override_until[:16].replace('T', ' ')} UTC"
            + (f": {reason}" if reason else "")
        )
    lines += [
        visible(pause.text or f"rate limited: account {pause.account}", single_line=True)
        for pause in status.pauses
    ]
    return lines


async def _status(ctx: Context) -> DispatchStatus:
    try:
        client = await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        return await _offline_status(ctx)
    try:
        status: DispatchStatus = await client.call(DispatchQuery())
        return status
    finally:
        await client.close()


async def _offline_status(ctx: Context) -> DispatchStatus:
    """With no daemon nothing is dispatched: every ready bead waits for the town."""
    from tundra_tui.daemon.dispatcher import not_ready_reasons
    from tundra_tui.orchestra.plan import Capacity
    from tundra_tui.store.flags import TownFlags

    store = await ctx.store()
    config = ctx.config()
    flags = await store.flags.get()
    capacity = Capacity(
        0, 0, int(config.get("orchestra.max_polecats")), 0, int(config.get("general.max_ptys"))
    )
    waiting = await not_ready_reasons(store, flags, capacity, True)
    down = TownFlags(up=False, paused=flags.paused, pause_reason=flags.pause_reason)
    rows = [
        WaitingRow(
            bead=b.id, title=b.title, reason=WaitReason.DOWN.value, detail="no daemon runs: `at up`"
        )
        for b in await store.beads.ready(limit=200)
    ]
    rows += [
        WaitingRow(bead=w.bead, title=w.title, reason=w.reason.value, detail=w.detail)
        for w in waiting
    ]
    order = {b.id: n for n, b in enumerate(await store.beads.find())}
    rows.sort(key=lambda r: order.get(r.bead, 0))
    # The brake as the daemon would read it: a spent budget or a pause says so with no daemon.
    from tundra_tui.daemon.brake import budget_rows, pause_rows, read_brake
    from tundra_tui.domain.clock import iso, system_clock

    moment = system_clock()
    brake = await read_brake(store, config, moment)
    now = iso(moment)
    return DispatchStatus(
        budgets=budget_rows(brake, now),
        pauses=pause_rows(brake, now),
        override_until=brake.override_until if brake.overridden(now) else "",
        override_reason=brake.override_reason if brake.overridden(now) else "",
        up=down.up,
        paused=down.paused,
        pause_reason=down.pause_reason,
        max_polecats=capacity.max_polecats,
        max_ptys=capacity.max_ptys,
        active=[],
        waiting=rows,
    )
