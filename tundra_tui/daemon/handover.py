"""Handing a bead to an agent: worktree, start, ready, slung, the prompt typed and taken.

One path for dispatch, `at sling` and `at polecat spawn --bead`.
"""

from __future__ import annotations

from collections.abc import Callable

from tundra_tui.daemon.book import ApprovalBook
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.errors import TundraError
from tundra_tui.session.host import SessionHost


def target_only(host: SessionHost, book: ApprovalBook, agent: str) -> Callable[[], None]:
    """The gate for input the daemon makes itself (work prompts, mail): checked before each
    write, it refuses while that agent waits on an approval, by the book or on its screen.
    Unlike an agent's own input, other agents' pending approvals do not matter (trap 5)."""

    def check() -> None:
        pending = book.pending_for(agent)
        if pending is not None:
            raise TundraError(f"{agent} is waiting for an answer to approval {pending}")
        if host.session(agent).state is AgentState.AWAITING_APPROVAL:
            raise TundraError(f"{agent} is waiting for an approval")

    return check
