"""A seeded town for the Dashboard, Sessions and Convoys tests: every number below is known.

Agents: mayor (claude-opus-4, working), deacon (gpt-5-codex, idle), polecat-1 (demo-sonnet,
stopped), crew-1 (aider, failed with exit 1). Beads #1-#7: done, review, failed, and four in
backlog; two titles are hostile. Convoys: alpha (#1-#4, started), beta (#5, #6, pending).
Costs: $5.25 today, $4.00 yesterday. Store events are stamped one minute apart from 12:30.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ui_harness import FIXED_NOW

from tundra_tui.daemon.protocol import AgentRow
from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Action
from tundra_tui.domain.clock import iso
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import RosterEntry, Store

OP = "operator"
HOSTILE_TITLE = "Fix [bold]login[/bold] bug"
ESCAPE_TITLE = "Add \x1b[31mred\x1b[0m tests"


@dataclass
class StepClock:
    """The store's clock: one minute later on every read, from 12:30 on the fixed day."""

    now: datetime = FIXED_NOW - timedelta(hours=2)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


async def seed(store: Store) -> None:
    """Fill the store as the module docstring says."""
    await store.agents.sync_roster(
        [
            RosterEntry("mayor", Role.MAYOR, Runtime.CLAUDE, "claude-opus-4"),
            RosterEntry("deacon", Role.DEACON, Runtime.CODEX, "gpt-5-codex"),
            RosterEntry("polecat-1", Role.POLECAT, Runtime.DEMO, "demo-sonnet"),
            RosterEntry("crew-1", Role.CREW, Runtime.AIDER, ""),
        ],
        actor=OP,
    )
    await store.agents.set_state("mayor", AgentState.WORKING, actor="daemon", pid=101)
    await store.agents.set_state("deacon", AgentState.IDLE, actor="daemon", pid=102)
    await store.agents.set_state("crew-1", AgentState.FAILED, actor="daemon", exit_status=1)
    titles = [HOSTILE_TITLE, ESCAPE_TITLE, "Docs", "Refactor store", "Ship it", "Bench", "Extra"]
    beads = [await store.beads.add(title, actor=OP) for title in titles]
    await store.convoys.create("alpha", actor=OP, description="first [i]batch[/i]")
    await store.convoys.create("beta", actor=OP)
    await store.convoys.add("alpha", [b.id for b in beads[:4]], actor=OP)
    await store.convoys.add("beta", [beads[4].id, beads[5].id], actor=OP)
    await store.convoys.start("alpha", actor=OP)
    await store.beads.sling(beads[0].id, "mayor", actor=OP)
    await store.beads.apply(beads[0].id, Action.DONE, actor=OP)
    await store.beads.sling(beads[1].id, "deacon", actor=OP)
    await store.beads.apply(beads[1].id, Action.SUBMIT, actor=OP)
    await store.beads.sling(beads[2].id, "polecat-1", actor=OP)
    await store.beads.apply(beads[2].id, Action.FAIL, actor=OP, reason="tests broke")
    today = FIXED_NOW.replace(hour=9)
    yesterday = today - timedelta(days=1)
    await store.metrics.record(
        [
            UsageSample(
                iso(today), "mayor", "claude-opus-4", "claude", None, 50_000, 2_000, 0, 0, 4.50, "a"
            ),
            UsageSample(
                iso(today + timedelta(hours=1)),
                "deacon",
                "gpt-5-codex",
                "codex",
                None,
                136_000,
                1_000,
                0,
                0,
                0.75,
                "b",
            ),
            UsageSample(
                iso(yesterday),
                "mayor",
                "claude-opus-4",
                "claude",
                None,
                10_000,
                1_000,
                0,
                0,
                4.00,
                "c",
            ),
        ]
    )


def daemon_agents(
    cpu: float = 10.0, uptime: float = 3725.0, rss_kib: int = 812 * 1024
) -> list[AgentRow]:
    """The daemon's `agents` answer: mayor and deacon running."""
    return [
        AgentRow(name="mayor", state="working", glyph="@", runtime="claude", pid=4242,
                 uptime=uptime, rss_kib=rss_kib, cpu_seconds=cpu),
        AgentRow(name="deacon", state="awaiting_approval", glyph="!", runtime="codex", pid=4243,
                 uptime=65.0, rss_kib=300 * 1024, cpu_seconds=1.0, trouble="stalled"),
    ]  # fmt: skip
