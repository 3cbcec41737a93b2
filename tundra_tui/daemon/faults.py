"""Crash points for tests: the daemon kills itself at a named step of a hand-over.

`TUNDRA_FAULT=dispatch.slung at up` starts a daemon that dies with SIGKILL the first
time it reaches that point, as a power cut would, so tests can prove a restart loses
and duplicates nothing. Read once, when the daemon imports this module; agents never
see the variable (their environment is allow-listed). Unset, `hit` costs one compare.
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset(
    {
        "dispatch.claimed",
        "dispatch.slung",
        "dispatch.typed",
        "mail.typed",
        "refinery.started",
        "refinery.integrated",
        "refinery.gate",
        "refinery.verified",
        "refinery.advanced",
        "refinery.merged",
        "refinery.rejected",
    }
)
"""Where a hand-over, a mail delivery or a merge can be cut: after the claim, after the
sling, after the prompt was typed (before its receipt), after mail was typed; after a
merge attempt began, after its result was built (before the gates), while its first gate
runs, after it was verified, after the target moved (before the store knew), after it was
recorded merged (before cleanup), after a rejection (before the mail offer)."""

ARMED = os.environ.get("TUNDRA_FAULT", "")


def hit(point: str) -> None:
    """Die here, at once and without cleanup, if the daemon was started armed at `point`."""
    if ARMED and point == ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
