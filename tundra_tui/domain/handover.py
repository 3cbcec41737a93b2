"""The wire format of what the daemon types into an agent: work and mail.

The daemon writes these lines and the demo agent reads them, so both sides share
this module. Each is one line (a terminal prompt takes one line), starts with a
tag an agent can recognise, and carries only sanitized text.

    [tundra work] bead #12: Title. <the rest of the work prompt>
    [tundra mail] 2 messages (reply: at mail send NAME -m TEXT) (#4 from mayor, re plan): hi
        (#5 from bob): ok                       (on the same line, after one space)

Inside mail fields a backslash, `(#` (which starts a message) and, in senders and
subjects, `)` and `,` are escaped with a backslash, so any body parses back whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tundra_tui.domain.sanitize import visible

WORK_TAG = "[tundra work]"
MAIL_TAG = "[tundra mail]"
MAIL_REPLY_HINT = "(reply: at mail send NAME -m TEXT)"

_WORK = re.compile(re.escape(WORK_TAG) + r" bead #(\d+):")
_START = re.compile(r"\(#(\d+) from ")
_ESCAPED = re.compile(r"\\(.)")
_CUT = "…"


def work_header(bead_id: int, title: str) -> str:
    """The first words of a work prompt: `[tundra work] bead #12: Title.`"""
    return f"{WORK_TAG} bead #{bead_id}: {visible(title, single_line=True)}."


def parse_work(line: str) -> int | None:
    """The bead id of a work prompt anywhere in `line` (a screen row may carry a prompt
    sign before it), or None. The first header wins: a title cannot forge another."""
    match = _WORK.search(line)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class MailLine:
    """One message as typed into an agent (its text already made visible)."""

    id: int
    sender: str
    subject: str
    body: str


def _escape(text: str, *, field: bool = False) -> str:
    out = visible(text, single_line=True).replace("\\", "\\\\").replace("(#", "(\\#")
    if field:
        out = out.replace(")", "\\)").replace(",", "\\,")
    return out


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: m.group(1), text)


def _part(msg: MailLine, body: str) -> str:
    subject = f", re {_escape(msg.subject, field=True)}" if msg.subject else ""
    return f"(#{msg.id} from {_escape(msg.sender, field=True)}{subject}): {body}"


def mail_text(msgs: Sequence[MailLine], *, limit: int) -> str:
    """Messages as one line with a header, at most about `limit` characters: when too
    long, each body gets an equal share of the room left and is cut with `…` (the whole
    text stays in `at mail`)."""
    count = f"{len(msgs)} message{'' if len(msgs) == 1 else 's'}"
    header = f"{MAIL_TAG} {count} {MAIL_REPLY_HINT}"
    bodies = [_escape(msg.body) for msg in msgs]
    full = " ".join([header, *(_part(m, b) for m, b in zip(msgs, bodies, strict=True))])
    if len(full) <= limit or not msgs:
        return full
    overhead = len(full) - sum(len(b) for b in bodies)
    share = max((limit - overhead) // len(msgs), 8)
    cut = [b if len(b) <= share else _trim(b, share) for b in bodies]
    return " ".join([header, *(_part(m, b) for m, b in zip(msgs, cut, strict=True))])


def _trim(body: str, size: int) -> str:
    kept = body[: max(size - 1, 0)]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]  # never leave half an escape before the cut mark
    return kept + _CUT


def parse_mail(line: str) -> list[MailLine]:
    """The messages of a mail line (anywhere in `line`), in order; [] if it is none."""
    at = line.find(MAIL_TAG)
    if at < 0:
        return []
    text = line[at:]
    starts = list(_START.finditer(text))
    out: list[MailLine] = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() - 1 if index + 1 < len(starts) else len(text)
        rest = text[match.end() : end]
        sender, rest = _field(rest)
        subject = ""
        if rest.startswith(", re "):
            subject, rest = _field(rest[len(", re ") :])
        if not rest.startswith("): "):
            continue  # not one of ours: skip rather than guess
        out.append(
            MailLine(
                id=int(match.group(1)),
                sender=_unescape(sender),
                subject=_unescape(subject),
                body=_unescape(rest[3:]),
            )
        )
    return out


def _field(text: str) -> tuple[str, str]:
    """Split an escaped sender or subject from what follows it (an unescaped `,` or `)`)."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char in ",)":
            break
        index += 1
    return text[:index], text[index:]


REWORK_KINDS = ("conflict", "gate")
"""Why the refinery sent work back: the branch conflicts with the target, or a gate failed."""

_REWORK = re.compile(r"rework #(\d+): (conflict|gate)\b")


def rework_subject(bead_id: int, kind: str) -> str:
    """The subject of a rework mail (and the first line of a rework note):
    `rework #12: conflict`. The refinery writes it and the demo agent parses it back."""
    if kind not in REWORK_KINDS:
        raise ValueError(f"unknown rework kind {kind!r}")
    return f"rework #{bead_id}: {kind}"


def parse_rework(text: str) -> tuple[int, str] | None:
    """(bead id, kind) of a rework subject or a note's first line, or None."""
    first = text.strip().split("\n", 1)[0]
    match = _REWORK.match(first)
    return (int(match.group(1)), match.group(2)) if match else None
