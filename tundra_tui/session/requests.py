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
    "aider": (re.compile(r"```|^\s*\$ "), re.compile(r"Run shell command\?")),
}
_FRAME = re.compile(r"^[\s│|╭╮╰╯─]*|[\s│|╭╮╰╯─]*$")
_PROMPT = re.compile(r"^\s*[$›>]\s+")


def extract_request(runtime: str, lines: Sequence[str]) -> tuple[str, str]:
    """(tool, subject) read from the approval block at the bottom of the screen.

    Returns ("", "") when no block is recognised; the caller then shows the
    detector's matched text instead.
    """
    opener, closer = _BLOCKS.get(runtime, (None, None))
    if opener is None or closer is None:
        return "", ""
    end = None
    for index in range(len(lines) - 1, -1, -1):
        if closer.search(lines[index]):
            end = index
            break
    if end is None:
        return "", ""
    start = None
    for index in range(end - 1, -1, -1):  # above the closer: Gemini's names "[Shell]"
        if opener.search(lines[index]):
            start = index
            break
    if start is None:
        return "", ""
    body = lines[start + 1 : end] if start != end else []
    if runtime == "aider":
        body = lines[start:end]
    cleaned = [_PROMPT.sub("", _FRAME.sub("", line)) for line in body]
    cleaned = [line for line in cleaned if line and not line.startswith("```")]
    subject = "\n".join(cleaned).strip()
    return ("shell", subject) if subject else ("", "")
