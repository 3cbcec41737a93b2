"""`at agent list` and `at approvals` answered by the daemon alone, without the full CLI.

Scripts and agents ask these two again and again, and the full path (argparse of every
command, asyncio, the store, tundra.toml validated with tomlkit) costs several times
the answer itself. When a daemon runs it already knows the answer, so these commands
are recognised here from `argv` and asked over a blocking socket (daemon/oneshot.py).

Anything else, including every spelling argparse would reject or treat specially
(abbreviated options, `--help`, a stray argument), and a town with no daemon, goes
to the full CLI, which prints the same output from the store.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` is not imported for this (see cli/__init__.py)
if TYPE_CHECKING:
    from collections.abc import Sequence

AGENT_LIST = ("agent", "list")
APPROVALS = ("approvals",)
_QUESTIONS = frozenset({AGENT_LIST, APPROVALS})
_PREFIXES = frozenset({("agent",), *_QUESTIONS})


class Question:
    """A command this module answers, with the root options given to it."""

    __slots__ = ("debug", "json", "town", "words")

    def __init__(self, words: tuple[str, ...], town: str | None, debug: bool, json: bool) -> None:
        self.words = words
        self.town = town
        self.debug = debug
        self.json = json


def parse(argv: Sequence[str]) -> Question | None:
    """The question `argv` asks, or None when it is not exactly one of ours.

    Accepted as argparse accepts them: `--town PATH`, `--town=PATH` and `--debug`
    anywhere (the last `--town` wins), `--json` after the command.
    """
    words: tuple[str, ...] = ()
    town: str | None = None
    debug = as_json = False
    args = iter(argv)
    for arg in args:
        if arg == "--town":
            value = next(args, None)
            if value is None or value.startswith("-"):
                return None
            town = value
        elif arg.startswith("--town="):
            town = arg.removeprefix("--town=")
        elif arg == "--debug":
            debug = True
        elif arg == "--json" and words in _QUESTIONS:
            as_json = True
        elif arg.startswith("-") or (*words, arg) not in _PREFIXES:
            return None
        else:
            words = (*words, arg)
    return Question(words, town, debug, as_json) if words in _QUESTIONS else None


def version_only(argv: Sequence[str]) -> bool:
    """True for one `--version` among root options only (`at --town T --version`), which
    argparse answers with the version and nothing else."""
    seen = False
    args = iter(argv)
    for arg in args:
        if arg == "--version" and not seen:
            seen = True
        elif arg == "--town":
            value = next(args, None)
            if value is None or value.startswith("-"):
                return False
        elif arg != "--debug" and not arg.startswith("--town="):
            return False
    return seen


TUI_FLAGS = {"--demo": "demo", "--no-watch": "no_watch", "--debug": "debug"}


def tui_options(argv: Sequence[str]) -> dict[str, object] | None:
    """`at tui`'s options when `argv` is plainly that command, else None.

    The control room's first frame should not wait for argparse to import and build
    every other command (a fifth of it). Accepted: `tui` once, `--demo`, `--no-watch`,
    `--debug` and `--town` in both spellings, anywhere, as argparse takes them; any
    other spelling goes to the full CLI, which parses (or refuses) it the usual way.
    """
    options: dict[str, object] = {"town": None, "demo": False, "no_watch": False, "debug": False}
    seen = False
    args = iter(argv)
    for arg in args:
        if arg == "tui" and not seen:
            seen = True
        elif arg == "--town":
            value = next(args, None)
            if value is None or value.startswith("-"):
                return None
            options["town"] = value
        elif arg.startswith("--town="):
            options["town"] = arg.removeprefix("--town=")
        elif arg in TUI_FLAGS and (seen or arg == "--debug"):
            options[TUI_FLAGS[arg]] = True
        else:
            return None
    return options if seen else None


def answer(question: Question) -> int | None:
    """Print the daemon's answer and return the exit code; None when no daemon answered
    (or no town was found) and the full CLI should run the command instead.

    A refusal from the daemon is raised as its one-line TundraError.
    """
    from tundra_tui.domain.errors import TundraError
    from tundra_tui.town import find_town

    try:
        town = find_town(question.town)
    except TundraError:
        return None  # the full CLI says why, in its own words
    if question.json:
        return _answer_json(question, str(town.socket_path))
    from tundra_tui.cli.listing import print_agents, print_approvals
    from tundra_tui.daemon.oneshot import NoAnswer, ask
    from tundra_tui.daemon.protocol import AgentList, Agents, Approvals

    request = Agents(roster=True) if question.words == AGENT_LIST else Approvals()
    try:
        reply = ask(town, request)
    except NoAnswer:
        return None
    if isinstance(reply, AgentList):
        print_agents(reply.agents, question.json)
    else:
        print_approvals(reply.approvals, question.json)
    return 0


def _answer_json(question: Question, socket_path: str) -> int | None:
    """`--json`: the reply's fields copied out, by the json module alone (see oneshot)."""
    from tundra_tui.cli.listing import AGENT_FIELDS, APPROVAL_FIELDS, wire_entry
    from tundra_tui.daemon.oneshot import NoAnswer, ask_json
    from tundra_tui.output_json import dump_plain_json

    try:
        if question.words == AGENT_LIST:
            reply = ask_json(socket_path, "agents", {"roster": True}, "agents")
            dump_plain_json([wire_entry(row, AGENT_FIELDS) for row in reply["agents"]])
        else:
            reply = ask_json(socket_path, "approvals", {}, "approvals")
            dump_plain_json([wire_entry(row, APPROVAL_FIELDS) for row in reply["approvals"]])
    except NoAnswer:
        return None
    return 0
