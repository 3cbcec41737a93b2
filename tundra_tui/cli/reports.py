"""`at submit`, `at bead note`, and the reporting half of `at done --fail` and `at mail send`.

Inside an agent (its terminal sets `TUNDRA_AGENT`) these go to the town's daemon,
which names the agent by its process ancestry and checks the bead is on its hook; with
no daemon running, an agent's report is an error rather than an unchecked write. The
operator's go through the daemon when it runs (same checks, and every client hears of
the change), else straight to the store.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable
from tundra_tui.daemon.protocol import BeadChanged, MailSend, MailSent, Report, Request
from tundra_tui.domain.beads import parse_bead_id
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.output import dump_json, table
from tundra_tui.session.procs import MARKER_ENV

_VERBS = {"submit": "submitted", "fail": "failed", "note": "noted on"}


def add_parser(
    commands: argparse._SubParsersAction[Any],
    bead: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at submit` and `at bead note`."""
    text = "submit a bead on your hook for review (its branch needs a commit, its tree clean)"
    submit_cmd = commands.add_parser("submit", help=text, description=text)
    common(submit_cmd)
    submit_cmd.add_argument(
        "bead", nargs="?", help="the bead (default: the one on your hook, inside an agent)"
    )
    submit_cmd.add_argument("-m", "--message", default="", help="a summary of the work")
    submit_cmd.add_argument("--json", action="store_true", help="print JSON")
    submit_cmd.set_defaults(handler=cmd_submit)
    text = "keep a note on a bead (it stays with the bead when it changes hands)"
    note_cmd = bead.add_parser("note", help=text, description=text)
    common(note_cmd)
    note_cmd.add_argument("bead")
    note_cmd.add_argument("-m", "--message", required=True)
    note_cmd.add_argument("--json", action="store_true", help="print JSON")
    note_cmd.set_defaults(handler=cmd_note)


def inside_agent(ctx: Context) -> bool:
    """Whether this `at` runs in an agent's terminal, by what the agent was started with.
    Only the route depends on it: the daemon names the agent by process ancestry."""
    return bool(ctx.env.get("TUNDRA_AGENT") or ctx.env.get(MARKER_ENV))


def refuse_inside(ctx: Context, why: str) -> None:
    """Refuse an operator's command run from an agent's terminal, in one line saying why.

    For the commands that write the store or the configuration straight from the CLI
    (hooking, moving and claiming beads, dispatch and convoy flags, config): run by an
    agent they would go around the daemon, which decides who works on what. This is a
    usability guard read from the environment (`TUNDRA_AGENT` or the mark), which an
    agent could unset; the real boundary is the daemon's check by process ancestry on
    everything that goes through it (reports, the board, config requests)."""
    if inside_agent(ctx):
        raise TundraError(f"refused: {why}")


REPORT_HINT = "report with `at submit` or `at done N --fail --reason WHY`"
"""What an agent does instead, for the refusals' messages."""


async def cmd_submit(ctx: Context) -> int:
    bead = parse_bead_id(ctx.args.bead) if ctx.args.bead else None
    return await _report(ctx, Report(kind="submit", bead=bead, text=ctx.args.message))


async def cmd_note(ctx: Context) -> int:
    bead = parse_bead_id(ctx.args.bead)
    return await _report(ctx, Report(kind="note", bead=bead, text=ctx.args.message))


async def cmd_fail(ctx: Context) -> int:
    """`at done N --fail --reason WHY`."""
    bead = parse_bead_id(ctx.args.bead)
    return await _report(ctx, Report(kind="fail", bead=bead, text=ctx.args.reason))


def refuse_done(ctx: Context) -> None:
    """Agents never mark their own work done: review does."""
    if inside_agent(ctx):
        raise TundraError(
            "agents report with `at submit` (or `at done N --fail --reason WHY`); "
            "a bead is marked done after review"
        )


async def send_mail(ctx: Context) -> int | None:
    """`at mail send` through the daemon; None when the operator's goes to the store
    directly (no daemon)."""
    a = ctx.args
    inside = inside_agent(ctx)
    if inside and a.sender and a.sender != ctx.env.get("TUNDRA_AGENT"):
        raise TundraError("refused: an agent sends mail only as itself (drop --from)")
    request = MailSend(
        to=a.to, body=a.message, subject=a.subject, urgent=a.urgent, sender=a.sender or ""
    )
    sent: MailSent | None = await ask_daemon(ctx, request, required=inside)
    if sent is None:
        return None
    if ctx.json:
        store = await ctx.store()
        dump_json(await store.mail.get(sent.id))
    else:
        print(f"sent message {sent.id} to {sent.to}")
    return 0


async def ask_daemon(ctx: Context, request: Request, *, required: bool) -> Any:
    """The daemon's reply to `request`; None if no daemon runs and it is not `required`."""
    try:
        client = await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        if required:
            raise TundraError(
                "no daemon is running for this town: an agent's reports go through it "
                "(the operator starts it with `at up`)"
            ) from None
        return None
    try:
        return await client.call(request)
    finally:
        await client.close()


async def _report(ctx: Context, request: Report) -> int:
    inside = inside_agent(ctx)
    changed: BeadChanged | None = await ask_daemon(ctx, request, required=inside)
    if changed is None:
        changed = await _direct(ctx, request)
    verb = _VERBS[request.kind]
    if ctx.json:
        if inside:
            dump_json({"id": changed.id, "status": changed.status, "assignee": changed.assignee})
        else:
            store = await ctx.store()
            dump_json(await store.beads.get(changed.id))
    else:
        holder = f" ({changed.assignee})" if changed.assignee else ""
        table((), [(f"{verb} {changed.ref}", changed.status + holder)])
    return 0


async def _direct(ctx: Context, request: Report) -> BeadChanged:
    """The operator's report with no daemon running: the same steps, on the store."""
    # Here, not at the top: the daemon's reports module pulls in the session layer and
    # pyte (about 250 ms of CPU on this machine), which every other command would pay.
    from tundra_tui.daemon.reports import fail, note, submit

    if request.bead is None:
        raise TundraError("name the bead to report on (only an agent has a bead of its own)")
    store = await ctx.store()
    bead = await store.beads.get(request.bead)
    author = ctx.actor or OPERATOR
    if request.kind == "note":
        await note(store, bead.id, author, request.text)
    elif request.kind == "submit":
        bead = await submit(store, ctx.town(), ctx.config(), bead, author, request.text)
    else:
        bead = await fail(store, ctx.config(), bead, author, request.text)
    return BeadChanged(id=bead.id, ref=bead.ref, status=bead.status.value, assignee=bead.assignee)
