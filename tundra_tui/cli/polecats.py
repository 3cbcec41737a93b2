"""`at polecat spawn|list` and `at nudge`: one-step workers, and messages that interrupt."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.cli.daemon import call_daemon, fields
from tundra_tui.cli.mail import require_agent
from tundra_tui.config import add_agent, set_value
from tundra_tui.daemon.client import DaemonClient, DaemonUnavailable
from tundra_tui.daemon.protocol import (
    AgentList,
    Agents,
    Delivered,
    Nudge,
    Sling,
    SlingReply,
    Spawn,
    Spawned,
)
from tundra_tui.domain.agents import AgentState, Role, parse_runtime, validate_agent_name
from tundra_tui.domain.beads import Action, Bead, BeadStatus, parse_bead_id, transition
from tundra_tui.domain.errors import IllegalTransition, TundraError
from tundra_tui.domain.mail import OPERATOR, validate_body
from tundra_tui.domain.sanitize import visible
from tundra_tui.orchestra.worktrees import Worktrees
from tundra_tui.output import dump_json, table
from tundra_tui.store import Store


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at polecat …` and `at nudge`."""
    polecat = commands.add_parser("polecat", help="workers in their own git worktree")
    common(polecat)
    sub = polecat.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    spawn = sub.add_parser(
        "spawn",
        help="worktree + agent + start in one step",
        description="Register NAME as a polecat (if new), give it a worktree on "
        "polecat/NAME/BEAD, start it, and with --bead sling the bead to it and hand it the "
        "bead as its first task.",
    )
    common(spawn)
    spawn.add_argument("name")
    spawn.add_argument("--runtime", help="needed when NAME is new (claude, codex, …, demo)")
    spawn.add_argument("--bead", help="the bead to work on")
    spawn.add_argument("--json", action="store_true", help="print JSON")
    spawn.set_defaults(handler=cmd_spawn)
    listing = sub.add_parser("list", help="polecats with their worktrees and beads")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)
    nudge = commands.add_parser(
        "nudge", help="send an agent a short message now (interrupting its turn)"
    )
    common(nudge)
    nudge.add_argument("name")
    nudge.add_argument("-m", "--message", required=True)
    nudge.set_defaults(handler=cmd_nudge)


async def cmd_spawn(ctx: Context) -> int:
    """Check everything, then register, give a worktree, sling the bead and start, in that order.

    Every check the CLI can make comes before the first write, so a bad bead, name,
    runtime or a town outside git leaves tundra.toml and the store as they were.
    """
    a = ctx.args
    town = ctx.town()
    name = validate_agent_name(a.name)
    if name == OPERATOR:
        raise TundraError(f"{OPERATOR!r} is reserved for the human at the keyboard")
    bead_id = parse_bead_id(a.bead) if a.bead else None
    specs = ctx.config().agents()
    if name not in specs:
        if not a.runtime:
            raise TundraError(f"{name!r} is new: say which --runtime it runs")
        parse_runtime(a.runtime)
    elif specs[name].role is not Role.POLECAT:
        raise TundraError(f"{name!r} is a {specs[name].role.value}, not a polecat")
    store = await ctx.store()
    bead = await _slingable(store, bead_id, name) if bead_id is not None else None
    # A polecat always works in a worktree: the daemon needs the town to be in git.
    await asyncio.to_thread(Worktrees, town.root, town.worktrees_dir)
    if name not in specs:
        add_agent(town, name, runtime=a.runtime, role=Role.POLECAT.value)
        ctx.reload_config()
    if not _has_worktree(ctx, name):
        set_value(town, f"agents.{name}.worktree", "true", "project")
        ctx.reload_config()
    await ctx.sync_roster()
    if bead is not None:
        # The one verified hand-over dispatch and `at sling` use: worktree, start, prompt.
        return await _hand_over(ctx, store, bead, name)
    spawned: Spawned = await call_daemon(ctx, Spawn(name=name))
    if ctx.json:
        dump_json(fields(spawned))
    else:
        print(f"{name}: {spawned.state} in {visible(spawned.cwd, single_line=True)}")
    return 0


async def _hand_over(ctx: Context, store: Store, bead: Bead, name: str) -> int:
    """`Sling` the bead to the new polecat; print where it works, exit 1 if not taken."""
    reply: SlingReply = await call_daemon(ctx, Sling(bead=bead.id, agent=name, actor=ctx.actor))
    last = await store.dispatches.last_for_bead(bead.id)
    where = last.worktree if last is not None else ""
    if ctx.json:
        dump_json({**fields(reply), "cwd": where})
    elif reply.delivered:
        print(f"{name}: working on {bead.ref} in {visible(where, single_line=True)}")
    else:
        why = visible(reply.evidence, single_line=True)
        print(f"{name}: {bead.ref} was not handed over: {why}")
    return 0 if reply.delivered else 1


async def _slingable(store: Store, bead_id: int, agent: str) -> Bead:
    """The bead, if it can be slung to `agent` (or already is); else the reason it cannot.

    Asked before anything is written; the store checks the same again when it slings.
    """
    bead = await store.beads.get(bead_id)
    if bead.status is BeadStatus.SLUNG:
        holder = "it" if bead.assignee == agent else bead.assignee
        raise IllegalTransition(f"{bead.ref} is already slung to {holder}")
    if bead.status is BeadStatus.HOOKED and bead.assignee != agent:
        raise IllegalTransition(
            f"{bead.ref} is hooked to {bead.assignee}, not {agent}; "
            f"run `at sling {bead.id} {bead.assignee}` or unhook it first"
        )
    if bead.status in (BeadStatus.BACKLOG, BeadStatus.ESCALATED):
        transition(bead.status, Action.HOOK)  # hooking first is where blockers are checked
        blockers = await store.beads.blockers_of(bead_id)
        waiting = [b for b in blockers if b.status is not BeadStatus.DONE]
        if waiting:
            names = ", ".join(f"{b.ref} ({b.status.value})" for b in waiting)
            raise IllegalTransition(f"{bead.ref} is blocked by {names}")
        return bead
    transition(bead.status, Action.SLING)
    return bead


def _has_worktree(ctx: Context, name: str) -> bool:
    spec = ctx.config().agents().get(name)
    return bool(spec and spec.worktree)


async def cmd_list(ctx: Context) -> int:
    """Polecats: state, bead held, worktree."""
    store = await ctx.store()
    agents = {agent.name: agent for agent in await store.agents.all()}
    rows: list[dict[str, Any]] = []
    for name, spec in ctx.config().agents().items():
        if spec.role is not Role.POLECAT:
            continue
        agent = agents.get(name)
        held = await store.agents.held_beads(name)
        rows.append(
            {
                "name": name,
                "runtime": spec.runtime.value,
                "state": agent.state.value if agent else "stopped",
                "glyph": agent.state.glyph if agent else "-",
                "beads": held,
                "worktree": spec.worktree,
            }
        )
    if ctx.json:
        dump_json(rows)
    elif rows:
        table(
            ("", "NAME", "RUNTIME", "STATE", "BEADS", "WORKTREE"),
            [
                (
                    r["glyph"],
                    r["name"],
                    r["runtime"],
                    r["state"],
                    " ".join(f"#{b}" for b in r["beads"]) or "-",
                    "yes" if r["worktree"] else "no",
                )
                for r in rows
            ],
        )
    else:
        print("no polecats: `at polecat spawn NAME --runtime RUNTIME [--bead BEAD]`")
    return 0


async def cmd_nudge(ctx: Context) -> int:
    """Deliver a nudge into the agent's terminal now, as urgent mail with its receipt.

    An unknown name is refused before anything is stored. For a running agent the
    daemon stores the mail, reserves it and receipts it once typed (so delivery between
    turns never types it again); a stopped agent keeps the mail for later (exit 1).
    """
    name, text = ctx.args.name, ctx.args.message
    if name == OPERATOR:
        raise TundraError(
            f"the operator has no terminal to nudge; `at mail send {OPERATOR} -m TEXT` leaves mail"
        )
    require_agent(ctx, name, "to nudge")
    validate_body(text)
    client = await _daemon(ctx)
    try:
        state = await _session_state(client, name)
        if client is None or state is None or not state.is_live:
            store = await ctx.store()
            await store.mail.send(
                ctx.actor, name, text, actor=ctx.actor, subject="nudge", urgent=True
            )
            shown = state.value if state is not None else "not running"
            print(
                f"kept as mail for {name}: not typed in, it is {shown} "
                f"(start it with `at agent start {name}`)"
            )
            return 1
        result: Delivered = await client.call(Nudge(name=name, text=text))
    finally:
        if client is not None:
            await client.close()
    if result.delivered:
        print(f"nudged {name}")
        return 0
    print(f"kept as mail for {name}: not typed in, {visible(result.evidence)}")
    return 1


async def _daemon(ctx: Context) -> DaemonClient | None:
    """The running daemon, or None: a nudge for a stopped agent never starts one."""
    try:
        return await DaemonClient.connect(ctx.town())
    except DaemonUnavailable:
        return None


async def _session_state(client: DaemonClient | None, name: str) -> AgentState | None:
    """The state of `name`'s session in the daemon; None when it has none."""
    if client is None:
        return None
    listed: AgentList = await client.call(Agents())
    for session in listed.agents:
        if session.name == name:
            try:
                return AgentState(session.state)
            except ValueError:
                return AgentState.UNKNOWN
    return None
