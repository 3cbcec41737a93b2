"""What the demo agent does with a hand-over: a bead's work, or a batch of mail.

The daemon types hand-overs in the format of `domain.handover`. For a work prompt the demo
agent does real, small work in its worktree through its shell, as a coding agent would: it
reads the bead with `at bead show`, writes `beads/<id>.md`, commits it, and reports with
`at submit` (asking the operator's approval at its `--approval-rate`). For mail it answers
each message briefly with `at mail send`, never answering an answer, so two demo agents never
write to each other forever.

Everything it runs goes through `Hands.shell`, so it shows on screen like any command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any, Protocol

from tundra_tui.domain.handover import MailLine

GIT_EMAIL_DOMAIN = "demo.invalid"
"""The agent's env carries no git identity; commits name the agent at a domain that cannot
exist (RFC 2606)."""
SILENT_SENDERS = frozenset({"witness", "daemon"})
"""Senders whose mail is a notice, not a question: read, never answered."""
REPLIES = (
    "Thanks, noted.",
    "Got it, thanks.",
    "Understood; I will keep that in mind.",
)
SHOWN_JSON_LINES = 2
"""Rows of `at bead show --json` output shown: the agent reads it all, the operator needs
only to see that it ran."""
_REMINDER = re.compile(r"at submit (\d+)")


class Hands(Protocol):
    """What work needs from the agent: talk, run a command, ask approval."""

    @property
    def name(self) -> str:
        """The agent's name in its town (the sender of its mail, its commits' author)."""

    def say(self, text: str, tools: list[dict[str, Any]]) -> None:
        """One model call streaming `text`, with these tool uses."""

    def show(self, text: str) -> None:
        """One finished line on screen (made printable there)."""

    def shell(self, command: str, *, shown: int) -> tuple[int, list[str]]:
        """Run `command` with /bin/sh in the agent's directory: exit status and output lines."""

    def may_run(self, command: str) -> bool:
        """Whether the operator lets `command` run (asked at the agent's approval rate)."""


def tool(name: str, **arguments: str) -> dict[str, Any]:
    """A tool-use block for the usage log, as a model's answer carries it."""
    return {
        "type": "tool_use",
        "id": f"toolu_{uuid.uuid4().hex[:24]}",
        "name": name,
        "input": arguments,
    }


def shell_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The agent's environment with our own `at` first on PATH: `/usr/bin/at` is POSIX at(1),
    and the `at` that belongs with this demo agent sits next to its Python."""
    env = dict(os.environ if environ is None else environ)
    here = str(Path(sys.executable).parent)
    parts = env.get("PATH", "").split(os.pathsep)
    if (Path(here) / "at").exists() and parts[:1] != [here]:
        env["PATH"] = os.pathsep.join([here, *(p for p in parts if p and p != here)])
    return env


def bead_path(bead_id: int) -> str:
    return f"beads/{bead_id}.md"


def bead_file(bead_id: int, title: str, description: str) -> str:
    """What the demo writes for a bead: its title as a heading and its description."""
    body = description.strip() or "(no description)"
    return f"# #{bead_id}: {title.strip()}\n\n{body}\n"


def commit_command(bead_id: int, title: str, agent: str) -> str:
    """Stage the bead's file and commit it unless nothing changed (a re-dispatch after a
    crash finds its commit already made), with an explicit identity."""
    path = bead_path(bead_id)
    message = shlex.quote(f"bead #{bead_id}: {title}")
    who = shlex.quote(f"user.name={agent}")
    email = shlex.quote(f"user.email={agent}@{GIT_EMAIL_DOMAIN}")
    return (
        f"git add {path} && {{ git diff --cached --quiet -- {path} || "
        f"git -c {who} -c {email} commit -q -m {message}; }}"
    )


def submit_command(bead_id: int, summary: str) -> str:
    return f"at submit {bead_id} -m {shlex.quote(summary)}"


def fail_command(bead_id: int, reason: str) -> str:
    return f"at done {bead_id} --fail --reason {shlex.quote(reason)}"


def reply_command(to: str, subject: str, text: str) -> str:
    return f"at mail send {shlex.quote(to)} --subject {shlex.quote(subject)} -m {shlex.quote(text)}"


def read_bead(lines: list[str]) -> tuple[str, str] | None:
    """Title and description from `at bead show --json` output, or None if it is not that."""
    try:
        data = json.loads("\n".join(lines))
        bead = data["bead"]
        return str(bead["title"]), str(bead.get("description") or "")
    except (ValueError, KeyError, TypeError):
        return None


def is_answer(subject: str) -> bool:
    return subject.strip().casefold().startswith("re:")


def to_answer(messages: list[MailLine], me: str) -> list[MailLine]:
    """The messages worth a reply: not notices, not answers, not from ourselves."""
    return [
        m
        for m in messages
        if m.sender not in SILENT_SENDERS and m.sender != me and not is_answer(m.subject)
    ]


def reminders(messages: list[MailLine]) -> list[int]:
    """Beads a witness reminder says are still ours to report on, in order, once each."""
    found: list[int] = []
    for message in messages:
        if message.sender == "witness":
            for match in _REMINDER.finditer(message.body):
                if int(match.group(1)) not in found:
                    found.append(int(match.group(1)))
    return found


def do_bead(hands: Hands, bead_id: int) -> None:
    """Read the bead, write `beads/<id>.md`, commit it, and report with `at submit`."""
    show = f"at bead show {bead_id} --json"
    hands.say(f"I'll read bead #{bead_id} first.", [tool("Bash", command=show)])
    status, lines = hands.shell(show, shown=SHOWN_JSON_LINES)
    bead = read_bead(lines) if status == 0 else None
    if bead is None:
        hands.say(f"I cannot read bead #{bead_id}, so I stop here.", [])
        return
    title, description = bead
    path = bead_path(bead_id)
    text = bead_file(bead_id, title, description)
    hands.say(
        f"I'll write {path} with the bead's title and description.", [tool("Write", file_path=path)]
    )
    try:
        target = Path(path)
        target.parent.mkdir(exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    except OSError as error:
        reason = f"cannot write {path}: {error.strerror or error}"
        hands.show(f"  ✗  {reason}")
        _fail(hands, bead_id, reason)
        return
    hands.show(f"  ⎿  Wrote {len(text.splitlines())} lines to {path}")
    commit = commit_command(bead_id, title, hands.name)
    hands.say("Committing it on this branch.", [tool("Bash", command=commit)])
    status, lines = hands.shell(commit, shown=5)
    if status != 0:
        _fail(hands, bead_id, f"git commit failed: {(lines or ['no output'])[-1]}")
        return
    submit = submit_command(bead_id, f"wrote {path}")
    hands.say(f"Reporting #{bead_id} for review.", [tool("Bash", command=submit)])
    if not hands.may_run(submit):
        hands.show("Denied by operator.")
        return
    status, lines = hands.shell(submit, shown=5)
    if status == 0:
        hands.say(f"Done: #{bead_id} is submitted for review.", [])
        return
    refusal = (lines or [f"exit status {status}"])[-1]
    _fail(hands, bead_id, f"at submit refused: {refusal}")


REASON_CHARS = 160
"""A failure reason is one short line; the whole output is on the agent's screen."""


def _fail(hands: Hands, bead_id: int, reason: str) -> None:
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 1] + "…"
    command = fail_command(bead_id, reason)
    hands.say(f"I cannot finish #{bead_id}; I'll report why.", [tool("Bash", command=command)])
    hands.shell(command, shown=5)


def is_role_prompt(task: str, name: str) -> bool:
    """Whether `task` is this agent's role prompt, which `at up` gives as its first task
    (the shipped prompts start `You are NAME, the ...`)."""
    return task.startswith(f"You are {name}, ")


def acknowledge(hands: Hands) -> None:
    """Take the role prompt in, and do nothing the prompt did not ask for: the work comes
    as beads and mail, typed between turns."""
    hands.say(f"Understood: I am {hands.name}. I'll wait at my prompt for beads and mail.", [])


def answer_mail(hands: Hands, messages: list[MailLine]) -> None:
    """Answer each message worth it in one line; take up a bead a reminder names again."""
    count = len(messages)
    senders = sorted({m.sender for m in messages})
    plural = "message" if count == 1 else "messages"
    hands.say(f"{count} new {plural}, from {', '.join(senders)}.", [])
    for message in to_answer(messages, hands.name):
        subject = f"re: {message.subject or 'your message'}"
        text = REPLIES[message.id % len(REPLIES)]
        command = reply_command(message.sender, subject, text)
        hands.say(f"Replying to {message.sender}.", [tool("Bash", command=command)])
        hands.shell(command, shown=2)
    for bead_id in reminders(messages):
        do_bead(hands, bead_id)
