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

# Per runtime that shows a `$ ` row: the characters after which its wrapper breaks a
# long word with the character kept (OpenCode breaks after `-` and `/`; Codex only at
# spaces). A break at a space drops the space; a word longer than the row is cut.
_BREAKS_AFTER: dict[str, str] = {"opencode": "-/", "codex": ""}


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
    subject = _command_in(body, _BREAKS_AFTER.get(runtime))
    return ("shell", subject) if subject else ("", "")


def _command_in(raw: list[str], breaks_after: str | None = None) -> str:
    """The command inside a block: `$ ` lines, else what sits between dashed rules, else all.

    `breaks_after` is None for a runtime whose `$ ` rows are read alone; else a command
    wrapped onto the rows under its `$ ` row is read whole (`_shell_commands`).
    """
    body = [_FRAME.sub("", line) for line in raw]
    if breaks_after is not None and any(_SHELL.match(line) for line in body):
        return "\n".join(_shell_commands(raw, breaks_after)).strip()
    shell = [m.group(1) for line in body if (m := _SHELL.match(line))]
    if shell:
        return "\n".join(shell).strip()
    rules = [i for i, line in enumerate(body) if _RULE.match(line)]
    if len(rules) >= 2:
        body = body[rules[0] + 1 : rules[1]]
    return "\n".join(line for line in body if line and not line.startswith("```")).strip()


def _shell_commands(raw: list[str], breaks_after: str) -> list[str]:
    """Each `$ ` row with the rows its command wrapped onto, joined as the CLI wrapped it.

    Geometry, from real screens (tests/fixtures/screens/long_command): OpenCode and Codex
    start a wrapped command's next rows at the column of its `$`, inside the frame; a
    row that is blank there (OpenCode's sidebar at 200 columns, drawn far right beside
    the box, a blank row, the frame alone) ends the command.

    Joining: a row broken at a space lost that space, so rows join with one space; a row
    ending in a character the CLI breaks after (`breaks_after`), or a word cut at the
    row's end (a row with no space that reaches the widest row of the command), joins
    with nothing. The subject then equals the command, except where the screen cannot
    tell: a space right after a break character at a row's end is lost; a row that is
    one spaceless word as wide as the widest row and was broken at a space loses that
    space; two or more spaces at a break read as one.
    """
    commands: list[str] = []
    i = 0
    while i < len(raw):
        text = _FRAME.sub("", raw[i])
        if not _SHELL.match(text):
            i += 1
            continue
        column = raw[i].index("$")
        rows = [raw[i].rstrip()]
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
            rows.append(row)
            i += 1
        widest = max(len(row) for row in rows)
        texts = [row[column:] for row in rows]
        texts[0] = _SHELL.match(texts[0]).group(1)  # type: ignore[union-attr]
        command = texts[0]
        for before, kept, text in zip(rows, texts, texts[1:], strict=False):
            cut = " " not in kept and len(before) >= widest
            breaks = bool(breaks_after) and kept.endswith(tuple(breaks_after))
            command += ("" if cut or breaks else " ") + text
        commands.append(command)
    return commands
