"""The audit log: every state change, who made it, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One append-only record. `kind` is dotted, e.g. `bead.hook` or `agent.state`."""

    id: int
    at: str
    actor: str
    kind: str
    bead_id: int | None = None
    agent: str = ""
    convoy_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
