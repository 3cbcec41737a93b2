"""The `at` command line (also installed as `tundra`, since POSIX already ships an `at`).

Every failure the user can fix is a TundraError: one line on stderr and exit
code 2, with the traceback only under `--debug`.
"""

from __future__ import annotations

import sys

from tundra_tui.cli import quick

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from tundra_tui.cli.context import Context

EXIT_USAGE = 2

# Everything else is imported when a command needs it (even `typing`, slow to import on a
# busy machine): `at agent list` and `at approvals` answered by a running daemon
# (cli/quick.py) and `at --version` import little more than this module, where the full
# CLI imports asyncio, the store, tomlkit and every command.


async def _run(ctx: Context) -> int:
    try:
        handler = ctx.args.handler
        result: int = await handler(ctx)
        return result
    finally:
        await ctx.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command, and map every user error to one line and exit 2."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if quick.version_only(args_in):
        from tundra_tui import __version__

        print(f"auto-tundra {__version__}")
        return 0
    question = quick.parse(args_in)
    if question is not None:
        answered = _guarded(lambda: quick.answer(question), question.debug)
        if answered is not None:
            return answered
    tui = quick.tui_options(args_in)
    if tui is not None:
        return _tui(tui)
    return _full(args_in)


def _tui(options: dict[str, object]) -> int:
    """`at tui` without building the parser (see quick.tui_options)."""
    import argparse

    from tundra_tui.cli.tui import cmd_tui

    return _execute(argparse.Namespace(handler=cmd_tui, **options))


def _full(args_in: list[str]) -> int:
    """The whole command tree: argparse, then the handler under asyncio."""
    from tundra_tui.cli.parser import build_parser

    return _execute(build_parser().parse_args(default_command(args_in)))


def _execute(args: Any) -> int:
    """Run the parsed command's handler under asyncio, its failures said in one line."""
    import asyncio
    import sqlite3

    from tundra_tui.cli.context import Context

    debug = bool(getattr(args, "debug", False))
    code = _guarded(lambda: asyncio.run(_run(Context(args))), debug, sqlite3.Error)
    return 1 if code is None else code


def _guarded(
    run: Callable[[], int | None], debug: bool, *store_errors: type[Exception]
) -> int | None:
    """`run()`, with every failure the user can act on said in one line (exit 2)."""
    from tundra_tui.domain.errors import TundraError

    unusable: tuple[type[Exception], ...] = (OSError, *store_errors)
    try:
        return run()
    except TundraError as error:
        _report(str(error), debug)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except unusable as error:
        _report(_describe_os_error(error), debug)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the last line of defence: still one line, still no data lost
        _report(f"internal error: {type(error).__name__}: {error} (rerun with --debug)", debug)
        return 1


_ROOT_FLAGS = frozenset({"--debug", "--json"})
_ROOT_VALUED = frozenset({"--town"})
_NO_COMMAND_NEEDED = frozenset({"-h", "--help", "--version"})


def default_command(argv: list[str]) -> list[str]:
    """`argv` with `status` put first when it names no command: plain `at` is `at status`,
    so `at --json` and `at --town PATH` are too (status accepts every option given here)."""
    rest = iter(argv)
    for arg in rest:
        if arg in _NO_COMMAND_NEEDED:
            return argv
        if arg in _ROOT_VALUED:
            next(rest, None)
        elif arg not in _ROOT_FLAGS and not arg.startswith("--town="):
            return argv
    return ["status", *argv]


def _describe_os_error(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return str(error) or type(error).__name__


def _report(message: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"at: {first_line}", file=sys.stderr)
