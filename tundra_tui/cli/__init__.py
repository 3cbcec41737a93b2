"""The `at` command line (also installed as `tundra`, since POSIX already ships an `at`).

Every failure the user can fix is a TundraError: one line on stderr and exit
code 2, with the traceback only under `--debug`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import traceback
from collections.abc import Sequence

from tundra_tui.cli.context import Context
from tundra_tui.cli.parser import build_parser
from tundra_tui.domain.errors import TundraError

EXIT_USAGE = 2


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
    parser = build_parser()
    args = parser.parse_args(default_command(args_in))
    debug = bool(getattr(args, "debug", False))
    try:
        return asyncio.run(_run(Context(args)))
    except TundraError as error:
        _report(str(error), debug)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    except (OSError, sqlite3.Error) as error:
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
        traceback.print_exc()
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"at: {first_line}", file=sys.stderr)
