"""`at daemon start|stop|status|run`, and the agent commands that go through the daemon."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.attach import cmd_attach
from tundra_tui.cli.context import Context
from tundra_tui.daemon.client import (
    DaemonClient,
    DaemonUnavailable,
    connect_or_start,
    daemon_pid,
    log_path,
    pid_alive,
    start_daemon,
)
from tundra_tui.daemon.main import run_daemon
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, key_values, table

STOP_TIMEOUT_S = 20.0


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at daemon …` and `at peek`."""
    daemon = commands.add_parser(
        "daemon", help="the per-town process that owns every agent's terminal"
    )
    common(daemon)
    sub = daemon.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    for name, handler, text in (
        ("start", cmd_start, "start the daemon (detached); a no-op if it runs"),
        ("stop", cmd_stop, "stop every agent and the daemon"),
        ("status", cmd_status, "is it running, since when, with how many agents"),
        ("run", cmd_run, "run the daemon in the foreground (what `start` launches)"),
    ):
        parser = sub.add_parser(name, help=text, description=text)
        common(parser)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(handler=handler)
    peek = commands.add_parser("peek", help="print an agent's current screen")
    common(peek)
    peek.add_argument("name")
    peek.add_argument("--json", action="store_true", help="print JSON")
    peek.set_defaults(handler=cmd_peek)

    send = commands.add_parser("send", help="type a prompt into an agent and check it was taken")
    common(send)
    send.add_argument("name")
    send.add_argument("text")
    send.add_argument("--json", action="store_true", help="print JSON")
    send.set_defaults(handler=cmd_send)

    approvals = commands.add_parser("approvals", help="list approvals waiting for an answer")
    common(approvals)
    approvals.add_argument("--json", action="store_true", help="print JSON")
    approvals.set_defaults(handler=cmd_approvals)
    for name, handler in (("approve", cmd_approve), ("deny", cmd_deny)):
        parser = commands.add_parser(name, help=f"{name} a request (default: the oldest)")
        common(parser)
        parser.add_argument("id", nargs="?", type=int)
        parser.set_defaults(handler=handler)


def add_session_commands(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`at session list` and `at session attach NAME`."""
    session = commands.add_parser("session", help="agents' terminal sessions in the daemon")
    common(session)
    sub = session.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="every session with state, pid, uptime and memory")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_session_list)
    attach = sub.add_parser(
        "attach",
        help="use an agent's terminal from yours; Ctrl-] detaches",
        description="Keys go straight to the agent; its screen is redrawn from the daemon's "
        "emulator (so its output cannot act on your terminal). Ctrl-] detaches.",
    )
    common(attach)
    attach.add_argument("name")
    attach.set_defaults(handler=cmd_attach)


async def cmd_session_list(ctx: Context) -> int:
    """The daemon's sessions: state glyph, runtime, pid, uptime, memory."""
    sessions = await call_daemon(ctx, "agents")
    if ctx.json:
        dump_json(sessions)
    elif sessions:
        table(
            ("", "NAME", "RUNTIME", "STATE", "PID", "UPTIME", "RSS", "NOTE"),
            [
                (
                    s["glyph"],
                    s["name"],
                    s["runtime"],
                    s["state"],
                    s["pid"] or "-",
                    duration(s["uptime"]),
                    f"{s['rss_kib'] // 1024} MiB" if s["rss_kib"] else "-",
                    s["trouble"] or s["exit"] or "",
                )
                for s in sessions
            ],
        )
    else:
        print("no sessions: start one with `at agent start NAME`")
    return 0


def duration(seconds: float | None) -> str:
    """`4m07s` or `2h05m`; `-` when unknown."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def add_agent_commands(
    agent: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`at agent start|stop|restart NAME`, which run agents in the daemon."""
    for name, handler, text in (
        ("start", cmd_agent_start, "start an agent (queued if every PTY slot is taken)"),
        ("stop", cmd_agent_stop, "stop an agent and everything it started"),
        ("restart", cmd_agent_restart, "stop and start an agent"),
    ):
        parser = agent.add_parser(name, help=text, description=text)
        common(parser)
        parser.add_argument("name")
        if name == "stop":
            parser.add_argument("--grace", type=float, default=3.0, help="seconds before SIGKILL")
        parser.set_defaults(handler=handler)


async def cmd_start(ctx: Context) -> int:
    """Start the daemon unless one runs."""
    town = ctx.town()
    ctx.config()
    pid = await start_daemon(town)
    if ctx.json:
        dump_json({"pid": pid})
    else:
        print(f"daemon running for {town.root} (pid {pid})")
    return 0


async def cmd_stop(ctx: Context) -> int:
    """Ask the daemon to stop its agents and exit; wait until it has."""
    town = ctx.town()
    pid = daemon_pid(town)
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        print("no daemon is running")
        return 0
    try:
        await client.request("shutdown")
    finally:
        await client.close()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid is not None and pid > 0 and pid_alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print("daemon stopped")
    return 0


async def cmd_status(ctx: Context) -> int:
    """Report on the daemon; exit 1 when none runs."""
    town = ctx.town()
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        if ctx.json:
            dump_json({"running": False})
        else:
            print(f"no daemon is running for {town.root}")
        return 1
    try:
        status = await client.request("status")
    finally:
        await client.close()
    if ctx.json:
        dump_json({"running": True, **status})
    else:
        key_values(
            [
                ("daemon", f"running (pid {status['pid']}, version {status['version']})"),
                ("uptime", f"{status['uptime']:.0f} s"),
                ("agents", f"{status['live']} live, {len(status['queued'])} queued"),
                ("clients", status["subscribers"]),
                ("log", log_path(town)),
            ]
        )
    return 0


async def cmd_run(ctx: Context) -> int:
    """The daemon itself, in the foreground."""
    town = ctx.town()
    ctx.config()
    return await run_daemon(town)


async def cmd_peek(ctx: Context) -> int:
    """Print an agent's screen as the daemon sees it (control characters made visible)."""
    client = await connect_or_start(ctx.town())
    try:
        screen = await client.request("screen", name=ctx.args.name)
    finally:
        await client.close()
    if ctx.json:
        dump_json(screen)
        return 0
    if screen.get("stored"):
        print(f"({ctx.args.name} is {screen['state']}; its last recorded screen:)")
    lines = [visible(line, single_line=True).rstrip() for line in screen["lines"]]
    while lines and not lines[-1]:
        lines.pop()
    print("\n".join(lines))
    return 0


async def call_daemon(ctx: Context, op: str, **args: Any) -> Any:
    client = await connect_or_start(ctx.town())
    try:
        return await client.request(op, **args)
    finally:
        await client.close()


async def cmd_agent_start(ctx: Context) -> int:
    """Start an agent in the daemon (starting the daemon if needed)."""
    ctx.config()
    result = await call_daemon(ctx, "spawn", name=ctx.args.name)
    print(f"{ctx.args.name}: {result['state']}")
    return 0


async def cmd_agent_stop(ctx: Context) -> int:
    """Stop an agent and everything it started."""
    result = await call_daemon(ctx, "stop", name=ctx.args.name, grace=ctx.args.grace)
    print(f"{ctx.args.name}: stopped ({result['exit'] or 'was queued'})")
    return 0


async def cmd_agent_restart(ctx: Context) -> int:
    """Stop and start an agent again."""
    result = await call_daemon(ctx, "restart", name=ctx.args.name)
    print(f"{ctx.args.name}: {result['state']}")
    return 0


async def cmd_send(ctx: Context) -> int:
    """Type a prompt into an agent the way a person would, and check it was taken."""
    result = await call_daemon(ctx, "send_text", name=ctx.args.name, text=ctx.args.text)
    if ctx.json:
        dump_json(result)
    elif result["delivered"]:
        print(f"delivered to {ctx.args.name}")
    else:
        print(f"{ctx.args.name} did not take the text: {result['evidence']}")
        return 1
    return 0


async def cmd_approvals(ctx: Context) -> int:
    """Pending approvals, oldest first, with the exact request made visible."""
    store = await ctx.store()
    pending = await store.approvals.pending()
    if ctx.json:
        dump_json(pending)
    elif pending:
        table(
            ("ID", "AGENT", "FROM", "TOOL", "REQUEST", "SINCE"),
            [
                (a.id, a.agent, a.source.value, a.tool or "-", a.subject, a.created_at[11:19])
                for a in pending
            ],
            flex=4,
        )
    else:
        print("no approvals waiting")
    return 0


async def _answer(ctx: Context, op: str) -> int:
    approval_id = ctx.args.id
    if approval_id is None:
        store = await ctx.store()
        pending = await store.approvals.pending()
        if not pending:
            print("no approvals waiting")
            return 1
        approval_id = pending[0].id
    result = await call_daemon(ctx, op, id=approval_id, actor=ctx.actor)
    print(f"approval {result['id']}: {result['status']}")
    return 0


async def cmd_approve(ctx: Context) -> int:
    """Approve a request (the oldest when no id is given)."""
    return await _answer(ctx, "approve")


async def cmd_deny(ctx: Context) -> int:
    """Deny a request (the oldest when no id is given)."""
    return await _answer(ctx, "deny")
