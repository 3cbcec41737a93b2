"""The bead detail's timeline, from a real store: the bead's own events (dispatched, nudged,
submitted, gated, merged), the approvals its agent asked while holding it (and not after),
and its cost; newest last, one line each with a time, hostile text shown literally."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Static
from ui_harness import FakeLink, PaneHarness, make_services
from ui_seed import StepClock

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.approvals import ApprovalSource
from tundra_tui.domain.beads import Action
from tundra_tui.domain.dispatch import DispatchKind
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.domain.refinery import GateResult, Strategy
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.modals.bead_detail import BeadDetail
from tundra_tui.ui.panes.beads import BeadsPane
from tundra_tui.ui.widgets.kanban_board import KanbanBoard

OP = "operator"
HOSTILE_REASON = "[bold red]all green[/] \x1b[2J"
HOSTILE_COMMAND = "[link=x]rm -rf build[/link]"


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=StepClock())
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_timeline_lists_the_beads_life_in_order_and_hostile_text_literally(
    town_dir: Path, store: Store
) -> None:
    await store.agents.sync_roster([RosterEntry("p1", Role.POLECAT, Runtime.DEMO)], actor=OP)
    bead = await store.beads.add("Timeline me", actor=OP)
    dispatch = await store.dispatches.claim(
        bead.id, "p1", kind=DispatchKind.POLECAT, actor="daemon", manual=True
    )
    assert dispatch is not None
    await store.dispatches.slung(dispatch.id, branch="polecat/p1/1", worktree="/w", actor="daemon")
    await store.approvals.request(
        agent="p1", runtime="demo", subject=HOSTILE_COMMAND, source=ApprovalSource.HOOK, actor="p1"
    )
    await store.dispatches.nudged(dispatch.id, actor="witness", reason="quiet")
    await store.beads.apply(bead.id, Action.SUBMIT, actor="p1", reason=HOSTILE_REASON)
    attempt = await store.merges.begin(
        bead.id,
        agent="p1",
        branch="polecat/p1/1",
        branch_tip="b" * 40,
        commits=[("b" * 40, "work")],
        strategy=Strategy.REBASE,
        target="refs/heads/main",
        target_before="a" * 40,
        actor="refinery",
    )
    assert attempt is not None
    gate = GateResult(idx=0, command="pytest -q", ok=True, exit_code=0, seconds=1.5)
    await store.merges.gate_finished(attempt.id, gate, actor="refinery")
    assert await store.merges.verified(attempt.id, result_commit="c" * 40, actor="refinery")
    await store.merges.merged(attempt.id, actor="refinery")
    # After the bead is done, p1's requests are about other work.
    await store.approvals.request(
        agent="p1", runtime="demo", subject="later-command", source=ApprovalSource.HOOK, actor="p1"
    )
    await store.metrics.record(
        [
            UsageSample(
                at="2026-11-20T12:00:00.000000Z",
                agent="p1",
                model="demo-sonnet",
                runtime="demo",
                bead_id=bead.id,
                input_tokens=1000,
                output_tokens=200,
                cost_usd=0.42,
                priced=True,
                role="polecat",
                source_key="k",
            )
        ]
    )
    app = PaneHarness(
        lambda s: BeadsPane(s, id="pane-beads"), make_services(Town(town_dir), store, FakeLink())
    )
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        board = app.query_one(KanbanBoard)
        for col, column in enumerate(board.columns):
            for row, card in enumerate(column.beads):
                if card.id == bead.id:
                    board.column, board.row = col, row
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, BeadDetail)
        timeline = str(app.screen.query_one("#bead-detail-history", Static).render())
    lines = timeline.splitlines()
    assert all(line[:4] == "2026" for line in lines), lines  # each with its time

    def at(words: str) -> int:
        return next((i for i, line in enumerate(lines) if words in line), -1)

    steps = [
        "created",
        "dispatched #1 to p1",
        f"asks:  {HOSTILE_COMMAND}",
        "reminded p1",
        f"submit slung → review @p1 ({HOSTILE_REASON.replace(chr(27), '␛')})",
        "gate 1 ✓",
        "merged #1 into main",
        "cost: p1 spent $0.42",
    ]
    found = [at(step) for step in steps]
    assert found == sorted(found) and -1 not in found, (found, lines)
    assert "later-command" not in timeline
    assert [line[:16] for line in lines] == sorted(line[:16] for line in lines)
