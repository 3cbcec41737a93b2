"""Mail between agents and the operator, with read receipts."""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.domain.errors import TundraError

MAX_BODY = 1024 * 1024
MAX_SUBJECT = 200
OPERATOR = "operator"
"""The sender and recipient name that stands for the human at the keyboard."""


def validate_body(body: str) -> str:
    """Bodies are bounded so one message cannot bloat the store or a terminal."""
    if not body.strip():
        raise TundraError("a message needs a non-empty body (-m TEXT)")
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY:
        raise TundraError(f"message body exceeds {MAX_BODY} bytes")
    return body


def validate_subject(subject: str) -> str:
    """Subjects are one short line."""
    if len(subject) > MAX_SUBJECT:
        raise TundraError(f"subject exceeds {MAX_SUBJECT} characters")
    if "\n" in subject:
        raise TundraError("a subject must be a single line")
    return subject


@dataclass(frozen=True, slots=True)
class Mail:
    """One message. `read_at` is the read receipt: empty until the recipient reads it (or,
    for an agent, until the delivery between turns is taken, which sets both)."""

    id: int
    sender: str
    recipient: str
    body: str
    subject: str = ""
    urgent: bool = False
    created_at: str = ""
    read_at: str = ""
    delivered_at: str = ""
    """When it was typed into (or handed to) the recipient agent and taken; empty before."""

    @property
    def is_read(self) -> bool:
        """True once the recipient has read the message."""
        return bool(self.read_at)
