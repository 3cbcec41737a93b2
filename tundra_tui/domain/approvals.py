"""Approvals: an agent's pending request for a decision only the operator may make."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tundra_tui.domain.errors import IllegalTransition


class ApprovalSource(StrEnum):
    """Where the request was seen: a structured hook, or the emulated screen."""

    HOOK = "hook"
    SCREEN = "screen"


class ApprovalStatus(StrEnum):
    """Pending until the operator answers; expired when the agent moved on unanswered."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


def decide(status: ApprovalStatus, answer: ApprovalStatus) -> ApprovalStatus:
    """Answer a request. Only a pending request can be answered, and only once."""
    if answer is ApprovalStatus.PENDING:
        raise IllegalTransition("an answer must approve, deny or expire the request")
    if status is not ApprovalStatus.PENDING:
        raise IllegalTransition(f"this request was already {status.value}")
    return answer


@dataclass(frozen=True, slots=True)
class Approval:
    """A request: which agent wants to run what, where, and the evidence it was seen by."""

    id: int
    agent: str
    runtime: str
    subject: str
    source: ApprovalSource
    tool: str = ""
    cwd: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    status: ApprovalStatus = ApprovalStatus.PENDING
    created_at: str = ""
    decided_at: str = ""
    decided_by: str = ""
