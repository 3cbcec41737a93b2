"""Issue 11 review: the dispatcher does not spin after a failed hand-over, wakes on a
config change (not only on stored events), and owns the polecats `at sling` hands work.

Real daemons in git towns; the daemon's log has one `dispatch.pass` line per pass, which
is how the tests count passes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from at_cli import at, wait_for
from test_dispatch import (
    DEADLINE,
    add_bead,
    configure,
    delivered,
    kinds_of,
    lazy_polecats,
    town_with,
    waiting,
)


def passes(town: Path) -> list[dict[str, Any]]:
    """The dispatcher's passes so far, from the daemon's log."""
    log = town / ".tundra" / "logs" / "daemon.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in lines if r.get("event") == "dispatch.pass"]


def test_a_failed_hand_over_does_not_make_the_dispatcher_spin() -> None:
    # The polecat exits at once: its hand-over fails and the bead is held back 5 s.
    with town_with(daemon={"patrol_interval_seconds": 3600}) as town:
        configure(town, runtimes={"demo": {"command": f"{sys.executable} -c pass", "args": []}})
        bead = add_bead(town, "never taken")
        at(town, "up")
        wait_for(lambda: "dispatch.failed" in kinds_of(town), DEADLINE)
        at(town, "dispatch", "pause")  # no second attempt: only the hold's end is due
        wait_for(lambda: waiting(town).get(bead) == "paused", DEADLINE)
        # The hold ends (5 s after the failure): one pass for it, then the dispatcher rests.
        wait_for(lambda: any(p["data"]["why"] == ["timer"] for p in passes(town)), DEADLINE)
        before = len(passes(town))
        time.sleep(1.0)  # an observation window, not a synchronisation
        assert len(passes(town)) - before <= 2, passes(town)[-5:]


def test_raising_max_polecats_with_config_set_dispatches_at_once() -> None:
    # The safety tick is an hour away: only the change of tundra.toml can wake dispatch.
    with town_with(daemon={"patrol_interval_seconds": 3600}, orchestra={"max_polecats": 1}) as town:
        lazy_polecats(town)
        first, second = add_bead(town, "one"), add_bead(town, "two")
        at(town, "up")
        wait_for(lambda: first in delivered(town), DEADLINE)
        wait_for(lambda: waiting(town) == {second: "no capacity"}, DEADLINE)
        at(town, "config", "set", "orchestra.max_polecats", "2")
        wait_for(lambda: second in delivered(town), DEADLINE)


def test_a_polecat_given_work_by_sling_is_retired_when_idle() -> None:
    demo = ["--speed", "0", "--approval-rate", "0", "--seed", "1"]
    with town_with(
        orchestra={"polecat_retire_seconds": 1.0},
        agents={"pc": {"role": "polecat", "runtime": "demo", "args": demo}},
    ) as town:
        bead = add_bead(town, "write the notes")
        reply = json.loads(at(town, "sling", str(bead), "pc", "--json", timeout=DEADLINE).stdout)
        assert reply["delivered"], reply
        # The demo polecat submits; idle with no work, the dispatcher retires it.
        wait_for(lambda: "polecat.retired" in kinds_of(town), DEADLINE)
