"""Token and cost samples, and the KPI snapshots taken from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
    role: str = ""
    session: str = ""
    """The runtime's own session or thread id."""
    dispatch_id: int | None = None
    """The attempt (dispatch) the sample is attributed to; None: no dispatch."""
    cache_write_1h_tokens: int = 0
    """The part of `cache_write_tokens` written to the 1-hour cache."""
    priced: bool = True
    """False: no price is known, `cost_usd` is 0 and means unknown."""
    price_source: str = ""
    logged_cost_usd: float | None = None
    """The CLI's own figure for this call, where it logged one (kept, never preferred)."""
    source_id: int | None = None
    """The followed log (`usage_sources`) it was read from."""
    provider: str = ""
    """The provider the CLI named (Aider's `openrouter/…`), so pricing again finds the same
    price as pricing at ingest; '' where the runtime implies it."""

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
    window_seconds: int = 0
    """The interval the `_window` counts cover."""
    done_window: int = 0
    failed_window: int = 0
    agents_by_state: Mapping[str, int] = field(default_factory=dict)
    burn_usd_hour: float = 0.0
    """Dollars per hour over the last three hours."""
    unpriced_tokens_today: int = 0
    burn_unpriced_tokens: int = 0
    """Tokens with no known price in the burn rate's three hours (the rate is then a floor)."""
