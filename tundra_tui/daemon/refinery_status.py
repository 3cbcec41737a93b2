"""The refinery's status as one reply, read from the store (and the daemon's live step).

Imports only the store, the domain and the protocol, so `at refinery status` builds the
same `RefineryStatus` with no daemon running (state OFFLINE, or what flags and config
say: paused, disabled, needs gates), and the daemon's refinery adds its live step.
"""

from __future__ import annotations

from dataclasses import dataclass

from tundra_tui.config import LayeredConfig
from tundra_tui.daemon.protocol import RefineryStatus
from tundra_tui.domain.refinery import RefineryState
from tundra_tui.store import Store


@dataclass(frozen=True, slots=True)
class LiveStep:
    """What the running refinery is doing now: its state and detail, the step of the
    current attempt (e.g. "gate 1/2 `pytest -q`") and since when, and which attempt."""

    state: RefineryState
    detail: str = ""
    step: str = ""
    step_since: str = ""
    attempt_id: int | None = None


async def read_status(
    store: Store,
    config: LayeredConfig,
    *,
    live: LiveStep | None = None,
    recent: int = 10,
    target: str | None = None,
) -> RefineryStatus:
    """The refinery's status. `live` None means no daemon: the state is what the flags and
    config say (disabled, paused, needs gates), else OFFLINE. `target` is the resolved
    target branch name (default: `orchestra.target_branch`)."""
    raise NotImplementedError
