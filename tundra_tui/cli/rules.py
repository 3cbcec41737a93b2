"""`at rules`: the operator's always-allow rules for approvals, listed, added and revoked.

A rule is made from a pending request (`at rules add ID`, like `at approve ID`): that
agent's requests with exactly the same words are approved by the daemon from then on.
The deny-list (`rm -rf /`, credentials, force pushes…) is never always-allowed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import msgspec

from tundra_tui.cli.context import Context
from tundra_tui.cli.daemon import call_daemon
from tundra_tui.daemon.protocol import RuleAdd, RuleInfo, RuleList, RuleRevoke, Rules
from tundra_tui.domain.sanitize import visible
from tundra_tui.output import dump_json, table


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register `at rules [list|add ID|revoke ID]`."""
    rules = commands.add_parser(
        "rules", help="always-allow rules for approvals: list (default), add ID, revoke ID"
    )
    common(rules)
    rules.add_argument("--json", action="store_true", help="print JSON")
    rules.set_defaults(handler=cmd_list)
    sub = rules.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="the live rules, oldest first")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)
    for name, handler, text in (
        ("add", cmd_add, "always allow the command of pending approval ID for its agent"),
        ("revoke", cmd_revoke, "revoke rule ID: its command waits for you again"),
    ):
        parser = sub.add_parser(name, help=text, description=text)
        common(parser)
        parser.add_argument("id", type=int)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(handler=handler)


def _line(rule: RuleInfo) -> str:
    tool = visible(rule.tool, single_line=True)
    return f"rule {rule.id}: {visible(rule.agent, single_line=True)} {tool}".rstrip()


async def cmd_list(ctx: Context) -> int:
    """The live rules, each with its agent and exact command made visible."""
    listed: RuleList = await call_daemon(ctx, Rules())
    if ctx.json:
        dump_json([msgspec.structs.asdict(rule) for rule in listed.rules])
    elif not listed.rules:
        print("no rules: every request waits for you (`at rules add ID` makes one)")
    else:
        table(
            ["id", "agent", "tool", "command", "by", "since"],
            (
                [
                    rule.id,
                    visible(rule.agent, single_line=True),
                    visible(rule.tool, single_line=True),
                    visible(rule.subject, single_line=True),
                    visible(rule.created_by, single_line=True),
                    rule.created_at[:19],
                ]
                for rule in listed.rules
            ),
            flex=3,
        )
    return 0


async def cmd_add(ctx: Context) -> int:
    """A rule from a pending request; the request is approved too."""
    rule: RuleInfo = await call_daemon(ctx, RuleAdd(id=ctx.args.id, actor=ctx.actor))
    if ctx.json:
        dump_json(msgspec.structs.asdict(rule))
    else:
        print(f"{_line(rule)} always allowed: {visible(rule.subject, single_line=True)}")
    return 0


async def cmd_revoke(ctx: Context) -> int:
    """Revoke a rule by its id."""
    rule: RuleInfo = await call_daemon(ctx, RuleRevoke(id=ctx.args.id, actor=ctx.actor))
    if ctx.json:
        dump_json(msgspec.structs.asdict(rule))
    else:
        print(f"{_line(rule)} revoked: {visible(rule.subject, single_line=True)}")
    return 0
