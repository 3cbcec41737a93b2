"""`at polecat spawn|list` and `at nudge`: one-step workers, and messages that interrupt."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.cli.daemon import call_daemon
from tundra_tui.config import add_agent, set_value
from tundra_tui.domain.agents import Role
from tundra_tui.domain.beads import BeadStatus, parse_bead_id
from tundra_tui.domain.errors import TundraError
from tundra_tui.output import dump_json, table


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
    """Register, give a worktree, sling the bead and start, in that order."""
    a = ctx.args
    town = ctx.town()
    bead_id = parse_bead_id(a.bead) if a.bead else None
    specs = ctx.config().agents()
    if a.name not in specs:
        if not a.runtime:
            raise TundraError(f"{a.name!r} is new: say which --runtime it runs")
        add_agent(town, a.name, runtime=a.runtime, role=Role.POLECAT.value)
    elif specs[a.name].role is not Role.POLECAT:
        raise TundraError(f"{a.name!r} is a {specs[a.name].role.value}, not a polecat")
    ctx.reload_config()
    if not _has_worktree(ctx, a.name):
        set_value(town, f"agents.{a.name}.worktree", "true", "project")
        ctx.reload_config()
    store = await ctx.store()
    task = ""
    if bead_id is not None:
        bead = await store.beads.get(bead_id)
        if bead.status is not BeadStatus.SLUNG or bead.assignee != a.name:
            bead = await store.beads.sling(bead_id, a.name, actor=ctx.actor)
        await store.beads.edit(bead_id, actor=ctx.actor, branch=f"polecat/{a.name}/{bead_id}")
        task = f"Work on bead {bead.ref}: {bead.title}"
        if bead.description:
            task += f"\n\n{bead.description}"
    result = await call_daemon(ctx, "spawn", name=a.name, bead=bead_id, task=task)
    if ctx.json:
        dump_json(result)
    else:
        print(f"{a.name}: {result['state']} in {result['cwd']}")
    return 0


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
    """Record the nudge as urgent mail, then deliver it into the agent's terminal now."""
    store = await ctx.store()
    await store.mail.send(
        ctx.actor, ctx.args.name, ctx.args.message, actor=ctx.actor, subject="nudge", urgent=True
    )
    result = await call_daemon(ctx, "nudge", name=ctx.args.name, text=ctx.args.message)
    if result["delivered"]:
        print(f"nudged {ctx.args.name}")
        return 0
    print(f"kept as mail for {ctx.args.name}: not typed in, {result['reason']}")
    return 1
