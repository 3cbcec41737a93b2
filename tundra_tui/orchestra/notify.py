"""Running the operator's `notify.command` (for example `notify-send`) when something waits.

The command is split with shlex and run without a shell, the title and body are
appended as two arguments, made visible first (they may quote an agent), and the
run is bounded by a timeout. Nothing here raises: a failure is returned as a
reason, which the witness records as an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex

from tundra_tui.domain.sanitize import visible

TIMEOUT = 10.0
MAX_ARG = 400


def argv(command: str, title: str, body: str) -> list[str]:
    """The program and its arguments: the command's own words, then TITLE and BODY."""
    words = shlex.split(command)
    return [
        *words,
        visible(title, single_line=True, limit=MAX_ARG),
        visible(body, single_line=True, limit=MAX_ARG),
    ]


async def run(command: str, title: str, body: str, *, timeout: float = TIMEOUT) -> str | None:
    """Run the notify command; None when it exited 0, else why it failed (never raises).

    An empty command is not a failure: notifying is optional.
    """
    if not command.strip():
        return None
    try:
        args = argv(command, title, body)
    except ValueError as error:
        return f"notify.command cannot be split: {error}"
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        return f"{args[0]}: {error.strerror or error}"
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return f"{args[0]} did not finish in {timeout:g}s"
    if process.returncode != 0:
        said = visible(stderr.decode("utf-8", "replace").strip(), single_line=True, limit=200)
        return f"{args[0]} exited {process.returncode}" + (f": {said}" if said else "")
    return None
