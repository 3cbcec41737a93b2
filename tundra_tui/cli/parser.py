"""The argument parser: every `at` subcommand, its options, and the handler that runs it."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from tundra_tui import __version__
from tundra_tui.cli import (
    agents,
    beads,
    convoys,
    cost,
    daemon,
    detect,
    hooks,
    mail,
    polecats,
    refinery,
    reports,
    rules,
    settings,
    town,
    tui,
    up,
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other `at` failure."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _common(parser: argparse.ArgumentParser) -> None:
    """Options accepted before or after the subcommand; SUPPRESS keeps the outer value."""
    parser.add_argument(
        "--town",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the town directory (default: $TUNDRA_TOWN, else the nearest parent with tundra.toml)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks for errors",
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def build_parser() -> argparse.ArgumentParser:
    """Build the whole command tree."""
    root = _Parser(
        prog="at",
        description="auto-tundra: a control room for teams of AI coding agents.",
        epilog="Run `at COMMAND --help` for a command's options. With no command, `at status`.",
    )
    root.add_argument("--version", action="version", version=f"auto-tundra {__version__}")
    root.add_argument("--town", metavar="PATH", default=None, help=argparse.SUPPRESS)
    root.add_argument("--debug", action="store_true", default=False, help=argparse.SUPPRESS)
    _common_help = root.add_argument_group("global options")
    _common_help.description = (
        "--town PATH (or $TUNDRA_TOWN) picks a town; --debug shows tracebacks. "
        "Both work before or after the command."
    )
    commands = root.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    def command(
        group: argparse._SubParsersAction[_Parser], name: str, help_text: str, handler: object
    ) -> _Parser:
        parser = group.add_parser(name, help=help_text, description=help_text)
        _common(parser)
        parser.set_defaults(handler=handler)
        return parser

    def group(name: str, help_text: str) -> argparse._SubParsersAction[_Parser]:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        _common(parser)
        sub = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
        return sub

    # --- town --------------------------------------------------------------------------
    p = command(
        commands,
        "init",
        "create a town: tundra.toml and the .tundra state directory",
        town.cmd_init,
    )
    p.add_argument("path", nargs="?", default=".", help="directory (default: the current one)")
    p.add_argument("--name", help="the town's name (default: the directory's name)")

    p = command(
        commands, "status", "summarise agents, beads, convoys, mail and approvals", town.cmd_status
    )
    _json(p)

    p = command(
        commands,
        "doctor",
        "check Python, git, tmux, the database and agent binaries",
        town.cmd_doctor,
    )
    _json(p)

    p = command(commands, "events", "show the audit log of state changes", town.cmd_events)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--limit", "-n", type=int, default=30, help="how many recent events")
    p.add_argument("--bead", help="only events about this bead")
    p.add_argument("--agent", help="only events about this agent")
    p.add_argument("--kind", help="only events whose kind starts with this, e.g. bead.")
    _json(p)

    tui.add_parser(commands, _common)
    detect.add_parser(commands, _common)
    hooks.add_parser(commands, _common)
    daemon.add_parser(commands, _common)
    daemon.add_session_commands(commands, _common)
    polecats.add_parser(commands, _common)
    up.add_parser(commands, _common)
    refinery.add_parser(commands, _common)
    cost.add_parser(commands, _common)
    rules.add_parser(commands, _common)

    # --- config ------------------------------------------------------------------------
    settings.add_parser(commands, _common)

    # --- beads -------------------------------------------------------------------------
    bead = group("bead", "create, list and change beads (units of work)")
    p = command(bead, "add", "create a bead in the backlog", beads.cmd_add)
    p.add_argument("title")
    p.add_argument("-d", "--description", default="")
    p.add_argument("--lane", default=None, help="critical, standard or experimental")
    p.add_argument("-p", "--priority", type=int, default=None, help="0 (most urgent) to 4")
    p.add_argument("--label", action="append", default=[], help="a tag; repeatable")
    p.add_argument(
        "--blocked-by",
        action="append",
        default=[],
        metavar="BEAD",
        help="a bead that must be done first; repeatable",
    )
    _json(p)
    p = command(bead, "list", "list beads in queue order", beads.cmd_list)
    p.add_argument("--status")
    p.add_argument("--assignee")
    p.add_argument("--lane")
    p.add_argument("--label")
    p.add_argument("--search", "-s", help="text in the title or description")
    p.add_argument("--open", action="store_true", help="hide done and failed beads")
    p.add_argument("--limit", type=int)
    _json(p)
    p = command(bead, "show", "show one bead with its dependencies and history", beads.cmd_show)
    p.add_argument("bead")
    _json(p)
    p = command(
        bead, "edit", "change a bead's fields, or its status along a legal edge", beads.cmd_edit
    )
    p.add_argument("bead")
    p.add_argument("--title")
    p.add_argument("-d", "--description")
    p.add_argument("--lane")
    p.add_argument("-p", "--priority", type=int)
    p.add_argument("--branch")
    p.add_argument("--add-label", action="append", default=[])
    p.add_argument("--remove-label", action="append", default=[])
    p.add_argument("--status", help="move to this status through one legal transition")
    p.add_argument("--reason", default="", help="why (recorded with a status change)")
    _json(p)
    p = command(bead, "block", "make one bead wait for another", beads.cmd_block)
    p.add_argument("bead")
    p.add_argument("--by", required=True, metavar="BLOCKER", help="the bead to wait for")
    p.add_argument("--remove", action="store_true", help="remove the dependency instead")
    _json(p)
    p = command(
        bead, "ready", "list ready work: unblocked backlog beads in queue order", beads.cmd_ready
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--claim", metavar="AGENT", help="atomically hook the first ready bead to AGENT")
    _json(p)

    p = command(commands, "hook", "pin a bead to an agent (backlog -> hooked)", beads.cmd_hook)
    p.add_argument("bead")
    p.add_argument("agent")
    _json(p)
    p = command(
        commands,
        "sling",
        "hand a bead to an agent: started if stopped, the work prompt typed and checked",
        beads.cmd_sling,
    )
    p.add_argument("bead")
    p.add_argument("agent")
    _json(p)
    p = command(commands, "done", "close a bead as done, or failed with --fail", beads.cmd_done)
    p.add_argument("bead")
    p.add_argument("--fail", action="store_true")
    p.add_argument("--reason", default="")
    _json(p)
    reports.add_parser(commands, bead, _common)

    # --- convoys -----------------------------------------------------------------------
    convoy = group("convoy", "batches of beads that start together")
    p = command(convoy, "create", "create a pending convoy", convoys.cmd_create)
    p.add_argument("name")
    p.add_argument("-d", "--description", default="")
    _json(p)
    p = command(convoy, "add", "add beads to a convoy", convoys.cmd_add)
    p.add_argument("name")
    p.add_argument("beads", nargs="+", metavar="BEAD")
    _json(p)
    p = command(convoy, "start", "release a convoy's beads into ready work", convoys.cmd_start)
    p.add_argument("name")
    _json(p)
    p = command(convoy, "pause", "hold a convoy's beads back from ready work", convoys.cmd_pause)
    p.add_argument("name")
    _json(p)
    p = command(convoy, "list", "list convoys with progress", convoys.cmd_list)
    _json(p)
    p = command(convoy, "show", "show a convoy and its beads", convoys.cmd_show)
    p.add_argument("name")
    _json(p)

    # --- mail --------------------------------------------------------------------------
    mailbox = group("mail", "messages between agents and the operator")
    p = command(mailbox, "send", "send a message", mail.cmd_send)
    p.add_argument("to", metavar="TO", help="an agent name, or 'operator'")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--from", dest="sender", help="sender (default: $TUNDRA_ACTOR or operator)")
    p.add_argument("--subject", default="")
    p.add_argument("--urgent", action="store_true")
    _json(p)
    p = command(mailbox, "list", "list messages, newest first", mail.cmd_list)
    p.add_argument("--to", dest="recipient")
    p.add_argument("--from", dest="sender")
    p.add_argument("--unread", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    _json(p)
    p = command(mailbox, "read", "print a message and mark it read", mail.cmd_read)
    p.add_argument("id", type=int)
    _json(p)

    # --- agents ------------------------------------------------------------------------
    agent = group("agent", "the team in tundra.toml")
    p = command(agent, "add", "register an agent in tundra.toml", agents.cmd_add)
    p.add_argument("name")
    p.add_argument(
        "--runtime", required=True, help="claude, codex, gemini, opencode, aider, demo or custom"
    )
    p.add_argument(
        "--role",
        default="crew",
        help="mayor, deacon, witness, refinery, polecat or crew (default crew)",
    )
    p.add_argument("--model", default="")
    _json(p)
    p = command(agent, "list", "list agents with their state", agents.cmd_list)
    _json(p)
    p = command(agent, "remove", "remove an agent from tundra.toml", agents.cmd_remove)
    p.add_argument("name")
    daemon.add_agent_commands(agent, _common)

    return root
