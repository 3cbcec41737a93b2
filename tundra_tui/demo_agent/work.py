"""What the demo agent does with a hand-over: a bead's work, or a batch of mail.

The daemon types hand-overs in the format of `domain.handover`. For a work prompt the demo
agent does real, small work in its worktree through its shell, as a coding agent would: it
reads the bead with `at bead show`, writes `beads/<id>.md`, commits it, and reports with
`at submit` (asking the operator's approval at its `--approval-rate`). For mail it answers
each message briefly with `at mail send`, never answering an answer, so two demo agents never
write to each other forever.

Rework comes from the refinery, as mail (`rework #12: gate`) or as a note on a bead given back
to backlog. The agent then rebases its branch onto the target (resolving a conflict only in
`CHANGELOG.md`, the one file two beads share on purpose), fixes its file and resubmits. A
first submission never rebases: that keeps the demo's conflicting pair deterministic. Labels
script the story: `demo-gate-fails-once` and `demo-gate-fails-always` leave a `TODO` line the
demo repository's test refuses, `demo-changelog` adds a line to `CHANGELOG.md`.

Everything it runs goes through `Hands.shell`, so it shows on screen like any command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tundra_tui.domain.handover import MailLine, parse_rework

GIT_EMAIL_DOMAIN = "demo.invalid"
"""The agent's env carries no git identity; commits name the agent at a domain that cannot
exist (RFC 2606)."""
SILENT_SENDERS = frozenset({"witness", "daemon", "refinery"})
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
REFINERY = "refinery"
"""The sender of rework mail and the author of rework notes."""
FAILS_ONCE = "demo-gate-fails-once"
"""Label: the bead's file keeps a `TODO` line until a gate rework says to fix it."""
FAILS_ALWAYS = "demo-gate-fails-always"
"""Label: the bead's file always keeps a `TODO` line (its merge is escalated)."""
CHANGELOG_LABEL = "demo-changelog"
"""Label: the bead adds `- #id title` to `CHANGELOG.md` (two such beads conflict)."""
CHANGELOG = "CHANGELOG.md"
TODO_LINE = "TODO: finish this before it merges"
MAX_REBASE_STOPS = 5
"""Conflicted commits resolved in one rebase before the agent gives up."""


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


def git_identity(agent: str) -> str:
    """`-c` options naming the agent: its env carries no git identity."""
    who = shlex.quote(f"user.name={agent}")
    email = shlex.quote(f"user.email={agent}@{GIT_EMAIL_DOMAIN}")
    return f"-c {who} -c {email}"


def commit_command(
    bead_id: int, title: str, agent: str, extra: Sequence[str] = (), *, amend: bool = False
) -> str:
    """Stage the bead's file (and `extra` paths) and commit unless nothing changed (a
    re-dispatch after a crash finds its commit already made), with an explicit identity.

    With `amend` (a rework) a fix goes into the bead's own commit when that is the branch's
    last one, so the work lands as one commit whatever the refinery sent back."""
    paths = " ".join(shlex.quote(p) for p in (bead_path(bead_id), *extra))
    subject = f"bead #{bead_id}: {title}"
    message = shlex.quote(subject)
    commit = f"git {git_identity(agent)} commit -q -m {message}"
    if amend:
        commit = (
            f'if [ "$(git log -1 --format=%s)" = {message} ]; '
            f"then git {git_identity(agent)} commit -q --amend --no-edit; else {commit}; fi"
        )
    return f"git add {paths} && {{ git diff --cached --quiet -- {paths} || {{ {commit}; }}; }}"


def rebase_command(target: str, agent: str) -> str:
    """Rebase the checked-out branch onto the target (a rework; never a first submission)."""
    return f"git {git_identity(agent)} -c rebase.autoStash=false rebase -q {shlex.quote(target)}"


def continue_command(agent: str) -> str:
    return f"GIT_EDITOR=true git {git_identity(agent)} rebase --continue"


UNMERGED_COMMAND = "git diff --name-only --diff-filter=U"
ABORT_COMMAND = "git rebase --abort"


def changelog_line(bead_id: int, title: str) -> str:
    return f"- #{bead_id} {title.strip()}"


def with_line(text: str, line: str) -> str:
    """`text` with `line` as its last line, added once (a re-run changes nothing)."""
    lines = text.splitlines()
    return text if line in lines else "\n".join([*lines, line]) + "\n"


def wants_todo(labels: Sequence[str], rework: tuple[int, str] | None) -> bool:
    """Whether the bead's file keeps a `TODO` line (which the demo's gate refuses)."""
    if FAILS_ALWAYS in labels:
        return True
    return FAILS_ONCE in labels and (rework is None or rework[1] != "gate")


def submit_command(bead_id: int, summary: str) -> str:
    return f"at submit {bead_id} -m {shlex.quote(summary)}"


def fail_command(bead_id: int, reason: str) -> str:
    return f"at done {bead_id} --fail --reason {shlex.quote(reason)}"


def reply_command(to: str, subject: str, text: str) -> str:
    return f"at mail send {shlex.quote(to)} --subject {shlex.quote(subject)} -m {shlex.quote(text)}"


@dataclass(frozen=True)
class Card:
    """What the agent takes from `at bead show --json`."""

    title: str
    description: str
    labels: tuple[str, ...] = ()
    target: str = ""
    """The branch its work merges into (empty when the town names none)."""
    rework: tuple[int, str] | None = None
    """From the newest refinery note: why the bead came back through backlog."""


def read_card(lines: list[str], bead_id: int) -> Card | None:
    """The bead as `at bead show --json` printed it, or None if that is not what it is."""
    try:
        data = json.loads("\n".join(lines))
        bead = data["bead"]
        notes = [n for n in data.get("notes") or [] if n.get("author") == REFINERY]
        newest = max(notes, key=lambda n: int(n.get("id") or 0)) if notes else None
        rework = parse_rework(str(newest.get("body") or "")) if newest else None
        return Card(
            title=str(bead["title"]),
            description=str(bead.get("description") or ""),
            labels=tuple(str(label) for label in bead.get("labels") or ()),
            target=str(data.get("target") or ""),
            rework=rework if rework is not None and rework[0] == bead_id else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


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


def reworks(messages: list[MailLine]) -> list[tuple[int, str]]:
    """(bead, kind) of each rework mail from the refinery, in order, once per bead."""
    found: dict[int, str] = {}
    for message in messages:
        if message.sender == REFINERY and (rework := parse_rework(message.subject)):
            found[rework[0]] = rework[1]
    return list(found.items())


def reminders(messages: list[MailLine]) -> list[int]:
    """Beads a witness reminder says are still ours to report on, in order, once each."""
    found: list[int] = []
    for message in messages:
        if message.sender == "witness":
            for match in _REMINDER.finditer(message.body):
                if int(match.group(1)) not in found:
                    found.append(int(match.group(1)))
    return found


def do_bead(hands: Hands, bead_id: int, rework: tuple[int, str] | None = None) -> None:
    """Read the bead, write `beads/<id>.md` (and its changelog line), commit, and report with
    `at submit`. A rework (from mail, else from the bead's newest refinery note) first
    rebases the branch onto the target."""
    show = f"at bead show {bead_id} --json"
    hands.say(f"I'll read bead #{bead_id} first.", [tool("Bash", command=show)])
    status, lines = hands.shell(show, shown=SHOWN_JSON_LINES)
    card = read_card(lines, bead_id) if status == 0 else None
    if card is None:
        hands.say(f"I cannot read bead #{bead_id}, so I stop here.", [])
        return
    rework = rework or card.rework
    if rework is not None and card.target and not _rebase(hands, bead_id, card, rework[1]):
        return
    path = bead_path(bead_id)
    text = bead_file(bead_id, card.title, card.description)
    if wants_todo(card.labels, rework):
        text += f"\n{TODO_LINE}\n"
    hands.say(
        f"I'll write {path} with the bead's title and description.", [tool("Write", file_path=path)]
    )
    extra = [CHANGELOG] if CHANGELOG_LABEL in card.labels else []
    try:
        _write(path, text)
        if extra:
            _write(CHANGELOG, with_line(_read(CHANGELOG), changelog_line(bead_id, card.title)))
    except OSError as error:
        reason = f"cannot write {path}: {error.strerror or error}"
        hands.show(f"  ✗  {reason}")
        _fail(hands, bead_id, reason)
        return
    hands.show(f"  ⎿  Wrote {len(text.splitlines())} lines to {path}")
    commit = commit_command(bead_id, card.title, hands.name, extra, amend=rework is not None)
    hands.say("Committing it on this branch.", [tool("Bash", command=commit)])
    status, lines = hands.shell(commit, shown=5)
    if status != 0:
        _fail(hands, bead_id, f"git commit failed: {(lines or ['no output'])[-1]}")
        return
    summary = f"wrote {path}" if rework is None else f"rebased onto {card.target}, fixed {path}"
    submit = submit_command(bead_id, summary)
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


def _read(path: str) -> str:
    target = Path(path)
    return target.read_text(encoding="utf-8") if target.exists() else ""


def _write(path: str, text: str) -> None:
    """Write `text` to `path` (relative to the worktree) unless it holds it already."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def _rebase(hands: Hands, bead_id: int, card: Card, kind: str) -> bool:
    """Bring the branch up to date with the target; resolve conflicts in CHANGELOG.md only
    (the target's text plus our line). Anything else: abort, report the failure, False."""
    rebase = rebase_command(card.target, hands.name)
    why = "conflicts with" if kind == "conflict" else "failed a gate on"
    hands.say(
        f"The refinery says #{bead_id} {why} {card.target}; I'll rebase onto it first.",
        [tool("Bash", command=rebase)],
    )
    status, _ = hands.shell(rebase, shown=5)
    for _ in range(MAX_REBASE_STOPS):
        if status == 0:
            return True
        _, unmerged = hands.shell(UNMERGED_COMMAND, shown=5)
        conflicts = [line.strip() for line in unmerged if line.strip()]
        if conflicts != [CHANGELOG]:
            hands.shell(ABORT_COMMAND, shown=2)
            listed = ", ".join(conflicts) or "no file listed"
            _fail(hands, bead_id, f"rebase onto {card.target} conflicts in {listed}")
            return False
        show = f"git show HEAD:{CHANGELOG}"
        hands.say(
            f"Only {CHANGELOG} conflicts: I'll keep {card.target}'s lines and add mine.",
            [tool("Bash", command=show)],
        )
        status, theirs = hands.shell(show, shown=2)
        base = "\n".join(theirs) + "\n" if status == 0 and theirs else ""
        try:
            _write(CHANGELOG, with_line(base, changelog_line(bead_id, card.title)))
        except OSError as error:
            hands.shell(ABORT_COMMAND, shown=2)
            _fail(hands, bead_id, f"cannot write {CHANGELOG}: {error.strerror or error}")
            return False
        status, _ = hands.shell(f"git add {CHANGELOG} && {continue_command(hands.name)}", shown=5)
    hands.shell(ABORT_COMMAND, shown=2)
    _fail(hands, bead_id, f"rebase onto {card.target} stopped {MAX_REBASE_STOPS} times")
    return False


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
    """Answer each message worth it in one line; rework what the refinery sent back; take up
    a bead a reminder names again."""
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
    reworked = reworks(messages)
    for bead_id, kind in reworked:
        do_bead(hands, bead_id, rework=(bead_id, kind))
    for bead_id in reminders(messages):
        if bead_id not in dict(reworked):
            do_bead(hands, bead_id)
