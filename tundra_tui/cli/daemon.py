"""`at daemon start|stop|status|run`, and the agent commands that go through the daemon."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from typing import Any

import msgspec

from tundra_tui.cli.attach import cmd_attach
from tundra_tui.cli.context import Context
from tundra_tui.cli.listing import approval_lines, duration, print_approvals
from tundra_tui.daemon.client import (
    DaemonClient,
    DaemonUnavailable,
    clear_stopped,
    connect_or_start,
    daemon_pid,
    mark_stopped,
    start_daemon,
    stopped_by_operator,
)
from tundra_tui.daemon.log import last_error, log_path, stderr_path, summary
from tundra_tui.daemon.protocol import (
    AgentRow,
    Agents,
    ApprovalInfo,
    ApprovalList,
    Approvals,
    Approve,
    Delivered,
    Deny,
    Request,
    Restart,
    Restarted,
    Screen,
    ScreenText,
    SendText,
    Shutdown,
    Spawn,
    Spawned,
    Status,
    StatusReply,
    Stop,
    Stopped,
)
from tundra_tui.domain.errors import NotFound, TundraError
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
        if name == "stop":
            parser.add_argument(
                "--wait",
                type=float,
                default=STOP_TIMEOUT_S,
                metavar="SECONDS",
                help=f"how long to wait for it to exit (default {STOP_TIMEOUT_S:g})",
            )
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
    sessions = (await call_daemon(ctx, Agents())).agents
    if ctx.json:
        dump_json([fields(s) for s in sessions])
    elif sessions:
        table(
            ("", "NAME", "RUNTIME", "STATE", "PID", "UPTIME", "RSS", "NOTE"),
            [
                (
                    s.glyph,
                    s.name,
                    s.runtime,
                    s.state,
                    s.pid or "-",
                    duration(s.uptime),
                    f"{s.rss_kib // 1024} MiB" if s.rss_kib else "-",
                    s.trouble or s.exit or "",
                )
                for s in sessions
            ],
        )
    else:
        print("no sessions: start one with `at agent start NAME`")
    return 0


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
    """Ask the daemon to stop its agents and exit; wait, and say what really happened.

    The marker goes down first: an open `at tui` that sees its connection drop must find it
    and leave the daemon stopped rather than start it again.
    """
    town = ctx.town()
    mark_stopped(town)
    pid = daemon_pid(town)
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        client = None
    if client is None and pid is None:
        _say(ctx, {"stopped": False, "running": False}, "no daemon is running")
        return 0
    wait = max(float(ctx.args.wait), 0.0)
    deadline = time.monotonic() + wait
    agents: int | None = None
    if client is not None:
        try:
            async with asyncio.timeout(wait):
                agents = (await client.call(Shutdown())).stopping
        except (DaemonUnavailable, TimeoutError):
            pass  # on its way out already, or stuck: either way, see whether it goes
        finally:
            await client.close()
    elif pid is not None and pid > 0:
        # It holds the town's lock but does not answer (starting, or stuck): SIGTERM is the
        # same request.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    while (still := daemon_pid(town)) is not None:
        if time.monotonic() >= deadline:
            shown = still if still > 0 else "unknown"
            _say(
                ctx,
                {"stopped": False, "running": True, "pid": still, "waited_s": wait},
                f"the daemon (pid {shown}) is still running {wait:g} s after it was "
                f"asked to stop; see {log_path(town)}. Wait with `at daemon status`, or end it "
                f"with `kill -KILL {shown}`",
            )
            return 1
        await asyncio.sleep(0.05)
    count = "" if agents is None else f"; it stopped {_agents(agents)}"
    _say(ctx, {"stopped": True, "pid": pid, "agents": agents}, f"daemon stopped{count}")
    return 0


def _agents(count: int) -> str:
    return f"{count} agent" if count == 1 else f"{count} agents"


def _say(ctx: Context, data: dict[str, Any], text: str) -> None:
    if ctx.json:
        dump_json(data)
    else:
        print(text)


async def cmd_status(ctx: Context) -> int:
    """Report on the daemon, its log and the last error in it; exit 1 when none runs."""
    town = ctx.town()
    error = last_error(log_path(town))
    stderr = stderr_path(town)
    stray = stderr.stat().st_size if stderr.exists() else 0
    files: list[tuple[str, object]] = [("log", log_path(town))]
    if stray:
        files.append(("stderr", f"{stderr} ({stray} bytes)"))
    if error is not None:
        files.append(("last error", summary(error)))
    logs = {
        "log": str(log_path(town)),
        "stderr": str(stderr) if stray else None,
        "last_error": error,
    }
    try:
        client = await DaemonClient.connect(town)
        try:
            status: StatusReply = await client.call(Status())
        finally:
            await client.close()
    except DaemonUnavailable:
        # Also a daemon that dies between the connect and its answer: it is not running.
        if ctx.json:
            dump_json({"running": False, "stopped_by_operator": stopped_by_operator(town), **logs})
        else:
            why = " (stopped by `at daemon stop`)" if stopped_by_operator(town) else ""
            print(f"no daemon is running for {town.root}{why}")
            key_values(files)
        return 1
    if ctx.json:
        dump_json({"running": True, **fields(status), **logs})
    else:
        key_values(
            [
                ("daemon", f"running (pid {status.pid}, version {status.version})"),
                ("uptime", f"{status.uptime:.0f} s"),
                ("agents", f"{status.live} live, {len(status.queued)} queued"),
                ("clients", status.subscribers),
                ("approvals", f"{status.approvals} waiting"),
                *_store_line(status),
                *files,
            ]
        )
    return 0


def _store_line(status: StatusReply) -> list[tuple[str, str]]:
    """Writes the daemon keeps for a database that cannot take them now, and why."""
    if not status.store_error:
        return []
    pending = status.pending_writes
    reason = visible(status.store_error, single_line=True)
    return [("store", f"{pending} writes waiting (kept, retried): {reason}")]


async def cmd_run(ctx: Context) -> int:
    """The daemon itself, in the foreground (a start on purpose: forget `at daemon stop`)."""
    town = ctx.town()
    ctx.config()
    clear_stopped(town)
    from tundra_tui.daemon.main import run_daemon  # the whole daemon: only for `daemon run`

    return await run_daemon(town)


async def cmd_peek(ctx: Context) -> int:
    """Print an agent's screen as the daemon sees it (control characters made visible)."""
    name = ctx.args.name
    if name not in ctx.config().agents():
        # Maybe still live from before tundra.toml changed; else an unknown name, said so.
        await _live_row(ctx, name)
    screen: ScreenText
    daemon = True
    try:
        client = await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        # No daemon, so nothing runs: the last screen is in the store, and peeking is no
        # reason to start a daemon the operator may have stopped.
        store = await ctx.store()
        agent = await store.agents.get(name)
        lines = (await store.agents.last_screen(name)).splitlines()
        screen = ScreenText(
            lines=lines, cursor=(0, 0), title="", state=agent.state.value, stored=True
        )
        daemon = False
    else:
        try:
            screen = await client.call(Screen(name=name))
        finally:
            await client.close()
    if ctx.json:
        dump_json({**fields(screen), **({} if daemon else {"daemon": False})})
        return 0
    if not daemon:
        print(f"({name} is not running (no daemon); its last recorded screen:)")
    elif screen.stored:
        print(f"({name} is {screen.state}; its last recorded screen:)")
    lines = [visible(line, single_line=True).rstrip() for line in screen.lines]
    while lines and not lines[-1]:
        lines.pop()
    print("\n".join(lines))
    return 0


async def _live_row(ctx: Context, name: str) -> AgentRow:
    """The daemon's session row of a running agent, or one line saying why there is none:
    a name tundra.toml does not know, or a known agent that is not running. Never starts
    the daemon: with none running, no agent is."""
    try:
        client = await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        rows: list[AgentRow] = []
    else:
        try:
            rows = (await client.call(Agents())).agents
        finally:
            await client.close()
    row = next((r for r in rows if r.name == name), None)
    if row is not None and row.pid:
        return row
    if row is None and name not in ctx.config().agents():
        raise NotFound(f"no agent {name!r} in tundra.toml (see `at agent list`)")
    ended = f", {row.exit}" if row is not None and row.exit else ""
    raise TundraError(f"{name} is not running{ended} (start it with `at agent start {name}`)")


async def call_daemon(ctx: Context, request: Request) -> Any:
    """One request to the town's daemon (started if none runs); its typed reply."""
    client = await connect_or_start(ctx.town())
    try:
        return await client.call(request)
    finally:
        await client.close()


def fields(reply: Any) -> dict[str, Any]:
    """A reply's fields for `--json`, every one of them (defaults too), without its tag."""
    return msgspec.structs.asdict(reply)


async def cmd_agent_start(ctx: Context) -> int:
    """Start an agent in the daemon (starting the daemon if needed)."""
    ctx.config()
    spawned: Spawned = await call_daemon(ctx, Spawn(name=ctx.args.name))
    print(f"{ctx.args.name}: {spawned.state}")
    return 0


async def cmd_agent_stop(ctx: Context) -> int:
    """Stop an agent and everything it started."""
    stopped: Stopped = await call_daemon(ctx, Stop(name=ctx.args.name, grace=ctx.args.grace))
    print(f"{ctx.args.name}: stopped ({stopped.exit or 'was queued'})")
    return 0


async def cmd_agent_restart(ctx: Context) -> int:
    """Stop and start an agent again."""
    restarted: Restarted = await call_daemon(ctx, Restart(name=ctx.args.name))
    print(f"{ctx.args.name}: {restarted.state}")
    return 0


async def cmd_send(ctx: Context) -> int:
    """Type a prompt into an agent the way a person would, and check it was taken."""
    await _live_row(ctx, ctx.args.name)
    result: Delivered = await call_daemon(ctx, SendText(name=ctx.args.name, text=ctx.args.text))
    if ctx.json:
        dump_json(fields(result))
    elif result.delivered:
        print(f"delivered to {ctx.args.name}")
    else:
        print(f"{ctx.args.name} did not take the text: {visible(result.evidence)}")
        return 1
    return 0


async def pending_approvals(ctx: Context) -> list[ApprovalInfo]:
    """Requests waiting for an answer, oldest first (`--json` prints their fields).

    The daemon's approval book is the one list every client shows (it holds requests
    the store may not have taken yet); with no daemon, nothing can answer a request,
    and the store's rows are all there is.
    """
    town = ctx.town()
    try:
        client = await DaemonClient.connect(town)
    except DaemonUnavailable:
        store = await ctx.store()
        return [ApprovalInfo.of(a) for a in await store.approvals.pending()]
    try:
        listed: ApprovalList = await client.call(Approvals())
        return listed.approvals
    finally:
        await client.close()


async def cmd_approvals(ctx: Context) -> int:
    """Pending approvals, oldest first, each with its whole request made visible."""
    print_approvals(await pending_approvals(ctx), ctx.json)
    return 0


async def _answer(ctx: Context, op: str) -> int:
    """Answer one request; without an id, the oldest, printed whole before it is answered."""
    approval_id = ctx.args.id
    if approval_id is None:
        pending = await pending_approvals(ctx)
        if not pending:
            print("no approvals waiting")
            return 1
        oldest = pending[0]
        approval_id = oldest.id
        verb = "approving" if op == "approve" else "denying"
        print(f"{verb} the oldest request:")
        print("\n".join(approval_lines([oldest], shutil.get_terminal_size().columns)))
    request = Approve if op == "approve" else Deny
    result: ApprovalInfo = await call_daemon(ctx, request(id=approval_id, actor=ctx.actor))
    print(f"approval {result.id}: {visible(result.status, single_line=True)}")
    return 0


async def cmd_approve(ctx: Context) -> int:
    """Approve a request (the oldest when no id is given)."""
    return await _answer(ctx, "approve")


async def cmd_deny(ctx: Context) -> int:
    """Deny a request (the oldest when no id is given)."""
    return await _answer(ctx, "deny")
