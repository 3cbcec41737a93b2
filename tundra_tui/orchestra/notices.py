"""Telling the mayor and the operator when a bead leaves an agent's hands.

A bead that is submitted, fails or is escalated needs someone to act next (review it,
re-plan it, help the agent), and nobody is watching every agent: each such outcome is
mailed to every mayor of the team and to the operator, so it waits in their mailbox
(and, for a mayor, is delivered between its turns) until read. The subject names the
bead and the outcome; the body carries the agent's own words, which stay untrusted
text (stored as given, shown only through `visible`).
"""

from __future__ import annotations

from typing import Literal

from tundra_tui.config import LayeredConfig
from tundra_tui.domain.agents import Role
from tundra_tui.domain.beads import Bead
from tundra_tui.domain.mail import MAX_SUBJECT, OPERATOR, Mail
from tundra_tui.domain.sanitize import visible
from tundra_tui.store import Store

Outcome = Literal["submit", "fail", "escalate"]

_VERBS: dict[str, str] = {
    "submit": "submitted for review",
    "fail": "failed",
    "escalate": "escalated",
}
MAX_TEXT = 4000
"""How much of the agent's summary or reason a notice carries (the bead keeps the rest)."""


def notice(sender: str, bead: Bead, kind: Outcome, text: str) -> tuple[str, str]:
    """(subject, body) of the notice: one line naming the bead and what happened, then the
    summary or reason, if any."""
    verb = _VERBS[kind]
    title = visible(bead.title, single_line=True)
    subject = visible(f"{bead.ref} {verb}: {title}", single_line=True, limit=MAX_SUBJECT)
    body = f"{sender} {verb} {bead.ref} ({title})."
    if kind == "submit" and bead.branch:
        body += f" Branch: {bead.branch}."
    said = text.strip()
    if said:
        label = "summary" if kind == "submit" else "reason"
        body += f"\n{label}: {said[:MAX_TEXT]}"
    return subject, body


def recipients(config: LayeredConfig, sender: str) -> list[str]:
    """Every mayor on the roster, then the operator; never the sender itself."""
    mayors = [name for name, spec in config.agents().items() if spec.role is Role.MAYOR]
    return [r for r in (*mayors, OPERATOR) if r != sender]


async def tell_mayor_and_operator(
    store: Store,
    config: LayeredConfig,
    *,
    sender: str,
    bead: Bead,
    kind: Outcome,
    text: str = "",
    actor: str | None = None,
) -> list[Mail]:
    """Mail the notice of `bead`'s outcome from `sender` to every mayor and the operator;
    the messages stored, in order."""
    subject, body = notice(sender, bead, kind, text)
    return [
        await store.mail.send(sender, to, body, actor=actor or sender, subject=subject)
        for to in recipients(config, sender)
    ]
