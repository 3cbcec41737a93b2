"""Token and cost samples, and the KPI snapshots taken from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UsageSample:
    """Tokens and dollars spent by one agent call, as read from a usage log or recorded directly."""

    at: str
    agent: str
    model: str = ""
    runtime: str = ""
    bead_id: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    source_key: str = ""
    """A stable key for the log entry this came from, so re-reading a log never double-counts."""

    @property
    def total_tokens(self) -> int:
        """All tokens the call consumed."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True, slots=True)
class KpiSnapshot:
    """A point-in-time summary of the town, taken periodically for trends."""

    at: str
    beads_active: int = 0
    beads_done: int = 0
    beads_failed: int = 0
    agents_active: int = 0
    agents_idle: int = 0
    agents_awaiting: int = 0
    convoys_active: int = 0
    cost_today_usd: float = 0.0
    tokens_today: int = 0
