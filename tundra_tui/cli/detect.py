"""`at detect`: classify agent screens read as JSON lines on stdin; needs no town.

A filter, so the detector can be checked against captures, recordings or a live
`tmux capture-pane` without a daemon: one JSON line out per JSON line in, flushed
at once, and a bad line yields an error line instead of ending the stream.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tundra_tui.cli.context import Context
from tundra_tui.domain.agents import Runtime
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.detect import detect_screen

HELP = "classify agent screens: JSON lines {agent, screen} in, {state, evidence} out"


def add_parser(
    commands: argparse._SubParsersAction[Any],
    common: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Register `at detect [--agent RUNTIME]`; `common` adds the shared --town/--debug options."""
    parser = commands.add_parser("detect", help=HELP, description=HELP)
    if common is not None:
        common(parser)
    parser.add_argument(
        "--agent",
        metavar="RUNTIME",
        choices=[runtime.value for runtime in Runtime],
        help='the runtime for lines without an "agent" field: '
        + ", ".join(runtime.value for runtime in Runtime),
    )
    parser.set_defaults(handler=cmd_detect)


async def cmd_detect(ctx: Context) -> int:
    """Read stdin to its end, writing one result line per input line."""
    for line in detect_lines(sys.stdin, default_agent=getattr(ctx.args, "agent", None)):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


def detect_lines(lines_in: Iterable[str], default_agent: str | None = None) -> Iterator[str]:
    """Yield one JSON result per non-blank input line; never raises on bad input."""
    for raw in lines_in:
        if raw.strip():
            yield json.dumps(_detect_one(raw, default_agent), ensure_ascii=True)


def _detect_one(raw: str, default_agent: str | None) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except ValueError as error:
        return _error(f"malformed JSON: {error}")
    if not isinstance(item, dict):
        return _error('expected a JSON object {"agent": ..., "screen": ...}')
    agent = item.get("agent") or default_agent
    if not isinstance(agent, str):
        return _error('no runtime: give --agent or an "agent" field')
    screen = item.get("screen")
    if not isinstance(screen, str):
        return _error('"screen" must be a string (the screen text, with newlines)')
    try:
        detection = detect_screen(agent, screen.splitlines())
    except TundraError as error:
        return _error(str(error))
    return detection.to_dict()


def _error(message: str) -> dict[str, Any]:
    return {"state": "unknown", "error": message}
