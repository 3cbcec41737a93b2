"""Reading what an agent asks to run off its approval screen.

This is the fallback: an emulated screen is not a faithful copy of what the
agent asked (pyte drops text after some invisible characters, research P4), so
hooks are preferred where a runtime has them. What is read here is shown to
the operator as "from the screen", never trusted as the exact request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Per runtime: the line that opens the approval block, and the line that closes it.
_BLOCKS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "demo": (re.compile(r"^Allow this command\?"), re.compile(r"^❯ 1\. Yes")),
    "claude": (re.compile(r"^\s*Bash command"), re.compile(r"Do you want to proceed\?")),
    "codex": (
        re.compile(r"Would you like to run the following command\?"),
        re.compile(r"1\. Yes, proceed"),
    ),
    "gemini": (re.compile(r"Shell\b"), re.compile(r"Allow execution of")),
    "opencode": (re.compile(r"Permission required"), re.compile(r"Allow once")),
    "aider": (re.compile(r"$^"), re.compile(r"Run shell command\?")),
}
_FRAME = re.compile(r"^[\s│┃╹╻|╭╮╰╯─]*|[\s│┃╹╻|╭╮╰╯─]*$")
_RULE = re.compile(r"^[╌─┄┈-]{3,}$")
_SHELL = re.compile(r"^\$\s+(.*)$")
_FRAME_ONLY = re.compile(r"^[\s│┃╹╻|]*$")
_WRAPS_UNDER_DOLLAR = frozenset({"codex", "opencode"})
"""Runtimes whose `$ ` row continues, when the command is wider than the screen, on rows
starting at the `$` column (tests/fixtures/screens/long_command)."""


def extract_request(runtime: str, lines: Sequence[str]) -> tuple[str, str]:
    """(tool, subject) read from the approval block at the bottom of the screen.

    Returns ("", "") when no block is recognised; the caller then shows the
    detector's matched text instead.
    """
    opener, closer = _BLOCKS.get(runtime, (None, None))
    if opener is None or closer is None:
        return "", ""
    end = next((i for i in range(len(lines) - 1, -1, -1) if closer.search(lines[i])), None)
    if end is None:
        return "", ""
    if runtime == "aider":
        # Aider prints the command just above its question, with no frame or marker.
        body: list[str] = []
        for line in reversed(lines[:end]):
            if not line.strip():
                break
            body.insert(0, line)
    else:
        start = next((i for i in range(end - 1, -1, -1) if opener.search(lines[i])), None)
        if start is None:
            return "", ""
        body = list(lines[start + 1 : end])
    subject = _command_in(body, wraps=runtime in _WRAPS_UNDER_DOLLAR)
    return ("shell", subject) if subject else ("", "")


def _command_in(raw: list[str], *, wraps: bool = False) -> str:
    """The command inside a block: `$ ` lines, else what sits between dashed rules, else all.

    With `wraps`, a command wrapped onto the rows under its `$ ` row is read whole
    (`_shell_commands`); else each `$ ` row is read alone.
    """
    body = [_FRAME.sub("", line) for line in raw]
    if wraps and any(_SHELL.match(line) for line in body):
        return "\n".join(_shell_commands(raw)).strip()
    shell = [m.group(1) for line in body if (m := _SHELL.match(line))]
    if shell:
        return "\n".join(shell).strip()
    rules = [i for i, line in enumerate(body) if _RULE.match(line)]
    if len(rules) >= 2:
        body = body[rules[0] + 1 : rules[1]]
    return "\n".join(line for line in body if line and not line.startswith("```")).strip()


def _shell_commands(raw: list[str]) -> list[str]:
    """Each `$ ` row with the rows its command wrapped onto, one line per row.

    Geometry, from real screens (tests/fixtures/screens/long_command): OpenCode and Codex
    start a wrapped command's next rows at the column of its `$`, inside the frame; a
    row that is blank there (OpenCode's sidebar at 200 columns, drawn far right beside
    the box, a blank row, the frame alone) ends the command.

    The rows are kept as rows, never joined into words: a command that holds a newline
    is drawn the same way as one that wrapped, and `rm -rf ~/` over `tmp/cache` must not
    read as `rm -rf ~/tmp/cache` (to the operator, or to the deny-list). So the subject
    has every character the screen shows, in order, and a wrap reads as a newline, as
    for the runtimes whose command sits on rows of its own.
    """
    commands: list[str] = []
    i = 0
    while i < len(raw):
        text = _FRAME.sub("", raw[i])
        if not _SHELL.match(text):
            i += 1
            continue
        # From the row itself, not its frame-stripped text: a `|` ending a wrapped row is
        # the command's pipe, not a frame.
        column = raw[i].index("$")
        rows = [raw[i].rstrip()[column + 1 :].lstrip()]
        i += 1
        while i < len(raw):
            row = raw[i].rstrip()
            if (
                len(row) <= column
                or row[column].isspace()
                or not _FRAME_ONLY.match(row[:column])
                or _SHELL.match(_FRAME.sub("", row))
            ):
                break
            rows.append(row[column:])
            i += 1
        commands.append("\n".join(rows))
    return commands
