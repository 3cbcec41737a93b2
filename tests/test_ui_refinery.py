"""The refinery in the control room: the merge queue strip, the grade glyphs on cards, the
bead detail's Completion section and the strip's keys (Pilot tests on a real store)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Static
from ui_harness import FakeLink, PaneHarness, fixed_clock, make_services

from tundra_tui.daemon.protocol import (
    AttemptRow,
    GateRow,
    QueueRow,
    RefineryControl,
    RefineryQuery,
    RefineryStatus,
)
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action, Bead, BeadStatus, Grade
from tundra_tui.domain.kanban import GRADE_LEGEND
from tundra_tui.domain.refinery import (
    AttemptState,
    GateResult,
    MergeAttempt,
    Outcome,
    RefineryState,
    Strategy,
)
from tundra_tui.resources import stylesheets
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.modals.bead_detail import BeadDetail, BeadFacts
from tundra_tui.ui.panes.beads import BeadsPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.merge_queue import MergeQueue

OP = "operator"
SHA = "3f2a1bc9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f"
STAMP = (fixed_clock() - timedelta(seconds=3)).isoformat()


def attempt_row(bead: int, outcome: str, *, gates: bool = True, n: int = 1) -> AttemptRow:
    return AttemptRow(
        id=bead * 10 + n,
        bead=bead,
        title="t",
        n=n,
        state="closed" if outcome else "running",
        outcome=outcome,
        result_commit=SHA if outcome == "merged" else "",
        target="refs/heads/main",
        gates=[GateRow(command="pytest", ok=outcome != "gate_failed")] if gates else [],
    )


def status(state: RefineryState, **kw: object) -> RefineryStatus:
    fields: dict[str, object] = {"target": "main", "gates": ["pytest"]}
    fields |= kw
    return RefineryStatus(state=state.value, **fields)  # type: ignore[arg-type]


class StripApp(App[None]):
    CSS_PATH = stylesheets()

    def compose(self) -> ComposeResult:
        yield MergeQueue(now=fixed_clock, id="strip")


def lines(app: App[None], width: int = 120) -> list[str]:
    return [line.plain for line in app.query_one(MergeQueue).lines(width)]


async def test_the_strip_says_each_state_of_the_refinery() -> None:
    app = StripApp()
    async with app.run_test(size=(120, 10)) as pilot:
        strip = app.query_one(MergeQueue)
        assert lines(app) == ["Refinery …"]
        strip.show(
            status(
                RefineryState.MERGING,
                current=attempt_row(12, "", n=2),
                step="gate 1/1",
                step_since=STAMP,
                queue=[
                    QueueRow(bead=14, title="a", lane="standard", priority=2),
                    QueueRow(bead=15, title="b", lane="standard", priority=2, waiting="retry"),
                ],
                recent=[attempt_row(11, "merged"), attempt_row(9, "gate_failed")],
            )
        )
        await pilot.pause()
        assert lines(app) == [
            "Refinery merging #12 (attempt 2) · gate 1/1 3s │ queue #14 #15 │ "
            "✓ #11 3f2a1bc  ✗ #9 gate"
        ]
        # Too narrow for one line: the state and queue, then the results under them.
        narrow = lines(app, 50)
        assert len(narrow) == 2
        assert narrow[0].startswith("Refinery merging #12")
        assert narrow[1].strip() == "✓ #11 3f2a1bc  ✗ #9 gate"
        assert all(len(line) <= 50 for line in narrow)
        said = {
            RefineryState.IDLE: "Refinery idle │ queue empty",
            RefineryState.PAUSED: "Refinery paused: release day │ queue empty",
            RefineryState.DOWN: "Refinery town is down │ queue empty",
            RefineryState.DISABLED: "Refinery disabled: refinery.enabled = false │ queue empty",
            RefineryState.NEEDS_GATES: "Refinery needs gates: set refinery.gates │ queue empty",
            RefineryState.NO_TARGET: (
                "Refinery no target branch: set orchestra.target_branch │ queue empty"
            ),
            RefineryState.TARGET_RED: "Refinery target red: main 3f2a1bc │ queue empty",
            RefineryState.ERROR: "Refinery error: git \\x1b[31m␛[31m │ queue empty",
            RefineryState.OFFLINE: "Refinery daemon not running │ queue empty",
        }
        for state, line in said.items():
            detail = "git \\x1b[31m\x1b[31m" if state is RefineryState.ERROR else ""
            strip.show(
                status(
                    state,
                    paused=state is RefineryState.PAUSED,
                    pause_reason="release day",
                    target_commit=SHA,
                    detail=detail,
                )
            )
            await pilot.pause()
            assert lines(app) == [line], state
        assert set(said) | {RefineryState.MERGING} == set(RefineryState)
        strip.show(
            status(RefineryState.IDLE, gates=[], recent=[attempt_row(3, "merged", gates=False)])
        )
        assert lines(app) == ["Refinery idle (no gates) │ queue empty │ ○ #3 3f2a1bc"]
        many = [QueueRow(bead=n, title="q", lane="standard", priority=2) for n in range(20, 31)]
        strip.show(status(RefineryState.IDLE, queue=many))
        assert lines(app) == ["Refinery idle │ queue #20 #21 #22 #23 #24 #25 #26 #27 +3"]
        strip.show(status(RefineryState.IDLE, checkout_behind=True))
        assert lines(app)[0].endswith("your checkout is behind main: at refinery sync")


def gate(idx: int, ok: bool | None, tail: str = "", **kw: object) -> GateResult:
    return GateResult(idx=idx, command="python -m pytest -q", ok=ok, seconds=2.5, tail=tail, **kw)  # type: ignore[arg-type]


def attempt(n: int, outcome: Outcome, **kw: object) -> MergeAttempt:
    fields: dict[str, object] = {
        "id": n,
        "bead_id": 7,
        "n": n,
        "branch": "polecat/p1/7",
        "branch_tip": "b" * 40,
        "archive_ref": f"refs/tundra/archive/p1/7/{n}",
        "strategy": Strategy.REBASE,
        "target": "refs/heads/main",
        "target_before": "a" * 40,
        "started_at": "2026-11-20T14:0{n}:00.000000Z",
        "agent": "polecat-1",
        "state": AttemptState.CLOSED,
        "outcome": outcome,
    }
    fields |= kw
    return MergeAttempt(**fields)  # type: ignore[arg-type]


async def test_the_detail_shows_the_grade_and_its_evidence() -> None:
    bead = Bead(
        id=7,
        title="Add the parser",
        created_at="2026-11-20T14:00:00Z",
        updated_at="2026-11-20T14:05:00Z",
        status=BeadStatus.DONE,
        grade=Grade.MERGED,
        merged_commit=SHA,
        branch="polecat/p1/7",
    )
    red_tail = "".join(f"line {i}\n" for i in range(30)) + "FAILED \x1b[31mboom\x1b[0m [b]x[/b]\n"
    attempts = (
        attempt(
            1,
            Outcome.GATE_FAILED,
            counted=True,
            reason="gate 1 failed",
            gates=(gate(0, False, red_tail, exit_code=1),),
            commits=(("c" * 40, "Add the parser"),),
        ),
        attempt(2, Outcome.CONFLICT, counted=True, conflicts=("CHANGELOG.md", "a\x07b")),
        attempt(3, Outcome.INTERRUPTED, reason="the daemon restarted mid-merge"),
        attempt(
            4,
            Outcome.MERGED,
            result_commit=SHA,
            gates=(gate(0, True, exit_code=0),),
            commits=(("d" * 40, "Add the parser"), ("e" * 40, "Fix \x1b[2Jthe test")),
        ),
    )

    class DetailApp(App[None]):
        CSS_PATH = stylesheets()

        def on_mount(self) -> None:
            self.push_screen(BeadDetail(BeadFacts(bead=bead, attempts=attempts)))

    app = DetailApp()
    async with app.run_test(size=(110, 60)) as pilot:
        await pilot.pause()
        text = str(app.screen.query_one("#bead-detail-completion", Static).render())
        assert "merged: the target holds it" in text
        assert f"{SHA} on main  after 1 gate passed on it" in text
        assert "#1 gate failed" in text and "#2 conflict" in text and "#4 merged" in text
        # A reason the gate lines already say is not repeated; an interruption's is given.
        assert "gate 1 failed" not in text
        assert "#3 interrupted" in text and "the daemon restarted mid-merge" in text
        assert "✗ gate 1  python -m pytest -q  2.5s  exit 1" in text
        assert "✓ gate 1  python -m pytest -q  2.5s" in text
        assert "conflicts: CHANGELOG.md, a␇b" in text
        assert "→ 3f2a1bc" in text
        # The last red gate: 15 lines of its tail, made visible, never markup.
        assert "line 15" not in text and "line 16" in text
        assert "FAILED ␛[31mboom␛[0m [b]x[/b]" in text
        # The commits of the latest attempt that recorded some.
        assert "ddddddd Add the parser" in text and "eeeeeee Fix ␛[2Jthe test" in text
        assert "\x1b" not in text and "\x07" not in text


async def test_a_bead_done_by_hand_says_so() -> None:
    bead = Bead(id=8, title="x", created_at="", updated_at="", status=BeadStatus.DONE)

    class DetailApp(App[None]):
        CSS_PATH = stylesheets()

        def on_mount(self) -> None:
            self.push_screen(BeadDetail(BeadFacts(bead=bead)))

    app = DetailApp()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        text = str(app.screen.query_one("#bead-detail-completion", Static).render())
        assert "◌ done by hand: the refinery did not merge it" in text
        assert "no merge attempts" in text


# ---- the Beads pane on a real store ---------------------------------------------------------


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=fixed_clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def services(town_dir: Path, store: Store, link: FakeLink) -> Services:
    services = make_services(Town(town_dir), store, link)
    services.live.connected = True
    return services


async def settle(app: PaneHarness, pilot: Pilot[None]) -> None:
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_cards_strip_and_keys_on_the_beads_tab(
    services: Services, store: Store, link: FakeLink
) -> None:
    await store.agents.sync_roster(
        [RosterEntry(name, Role.POLECAT, Runtime.DEMO) for name in ("polecat-1", "polecat-2")],
        actor=OP,
    )
    beads = store.beads
    review = await beads.add("Refactor the parser", actor=OP)
    await beads.sling(review.id, "polecat-1", actor=OP)
    await beads.apply(review.id, Action.SUBMIT, actor=OP)
    merging = await beads.add("Port the cache", actor=OP)
    await beads.sling(merging.id, "polecat-2", actor=OP)
    await beads.apply(merging.id, Action.SUBMIT, actor=OP)
    by_hand = await beads.add("Ship notes", actor=OP)
    await beads.sling(by_hand.id, "polecat-1", actor=OP)
    await beads.apply(by_hand.id, Action.DONE, actor=OP)
    current = attempt_row(merging.id, "")
    live = status(
        RefineryState.MERGING,
        current=current,
        step="gate 1/1",
        step_since=STAMP,
        queue=[QueueRow(bead=review.id, title="r", lane="standard", priority=2)],
    )
    paused = status(RefineryState.PAUSED, paused=True, pause_reason="from the control room")
    link.answers[RefineryQuery] = live
    link.answers[RefineryControl] = lambda r: paused if r.verb == "pause" else live
    app = PaneHarness(lambda s: BeadsPane(s, id="pane-beads"), services)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        screen = "\n".join(line.text for line in app.screen._compositor.render_strips())
        assert f"#{review.id} " in screen
        assert re.search(rf"#{review.id} \S+P\d ◔", screen)  # submitted, in the queue
        assert re.search(rf"#{merging.id} \S+P\d ⟳", screen)  # the one being merged
        assert re.search(rf"#{by_hand.id} \S+P\d ◌", screen)  # done by hand
        assert f"Refinery merging #{merging.id} · gate 1/1 3s │ queue #{review.id}" in screen
        assert GRADE_LEGEND in screen  # at the strip's right: there is room at 160 columns
        pane = app.query_one(BeadsPane)
        await pilot.press("P")
        await settle(app, pilot)
        assert link.ops(RefineryControl)[-1].verb == "pause"
        assert pane.refinery is paused
        await pilot.press("P")
        await settle(app, pilot)
        assert link.ops(RefineryControl)[-1].verb == "resume"
        board = pane.board
        for col, column in enumerate(board.columns):
            for row, card in enumerate(column.beads):
                if card.id == review.id:
                    board.column, board.row = col, row
        await pilot.press("R")
        await settle(app, pilot)
        assert link.ops(RefineryControl)[-1] == RefineryControl(verb="retry", bead=review.id)


async def test_offline_the_strip_and_cards_come_from_the_store(
    services: Services, store: Store
) -> None:
    """No daemon: the strip reads the store (its state, the queue); a bead merged with no gates
    shows ○ and its detail lists the attempt read through `merges.for_bead`."""
    services.live.connected = False
    await store.agents.sync_roster([RosterEntry("polecat-1", Role.POLECAT, Runtime.DEMO)], actor=OP)
    beads = store.beads
    queued = await beads.add("Waits for its merge", actor=OP)
    await beads.sling(queued.id, "polecat-1", actor=OP)
    await beads.edit(queued.id, actor=OP, branch="polecat/polecat-1/1")
    await beads.apply(queued.id, Action.SUBMIT, actor=OP)
    landed = await beads.add("Merged with no gates", actor=OP)
    await beads.sling(landed.id, "polecat-1", actor=OP)
    await beads.edit(landed.id, actor=OP, branch="polecat/polecat-1/2")
    await beads.apply(landed.id, Action.SUBMIT, actor=OP)
    attempt = await store.merges.begin(
        landed.id,
        agent="polecat-1",
        branch="polecat/polecat-1/2",
        branch_tip="b" * 40,
        commits=[("b" * 40, "Merge me")],
        strategy=Strategy.REBASE,
        target="refs/heads/main",
        target_before="a" * 40,
        actor="refinery",
    )
    assert attempt is not None
    assert await store.merges.verified(attempt.id, result_commit=SHA, actor="refinery")
    await store.merges.merged(attempt.id, actor="refinery")
    app = PaneHarness(lambda s: BeadsPane(s, id="pane-beads"), services)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        screen = "\n".join(line.text for line in app.screen._compositor.render_strips())
        # The test town sets no gates: the store says so, with the queue.
        assert f"Refinery needs gates: set refinery.gates │ queue #{queued.id}" in screen
        assert re.search(rf"#{landed.id} \S+P\d ○", screen)  # the card, not the strip
        assert re.search(rf"#{queued.id} \S+P\d ◔", screen)
        pane = app.query_one(BeadsPane)
        board = pane.board
        for col, column in enumerate(board.columns):
            for row, card in enumerate(column.beads):
                if card.id == landed.id:
                    board.column, board.row = col, row
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, BeadDetail)
        text = str(app.screen.query_one("#bead-detail-completion", Static).render())
        assert f"{SHA} on main  ○ no gates" in text
        assert "#1 merged" in text and "no gates (refinery.gates = [])" in text
        assert "bbbbbbb Merge me" in text
