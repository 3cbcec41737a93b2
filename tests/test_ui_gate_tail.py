"""`o` on the Beads tab opens the merge in progress: the current attempt's gates and the
running gate's output read from its log as it grows (hostile output shown literally), then
the gate's stored tail once it has finished. With nothing merging, `o` says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from at_cli import until
from textual.widgets import Static
from ui_harness import FakeLink, PaneHarness, fixed_clock, make_services

from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action
from tundra_tui.domain.refinery import GateResult, Strategy
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.modals.gate_tail import GateTail
from tundra_tui.ui.panes.beads import BeadsPane

OP = "operator"


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=fixed_clock)
    try:
        yield opened
    finally:
        await opened.close()


def output(app: PaneHarness) -> str:
    return str(app.screen.query_one("#gate-tail-output", Static).render())


async def test_o_shows_the_running_gates_output_live_then_its_result(
    town_dir: Path, store: Store, tmp_path: Path
) -> None:
    await store.agents.sync_roster([RosterEntry("p1", Role.POLECAT, Runtime.DEMO)], actor=OP)
    bead = await store.beads.add("Merge me", actor=OP)
    await store.beads.sling(bead.id, "p1", actor=OP)
    await store.beads.edit(bead.id, actor=OP, branch="polecat/p1/1")
    await store.beads.apply(bead.id, Action.SUBMIT, actor=OP)
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
    log = tmp_path / "gate.log"
    log.write_text("collecting 3 items\n[bold]PASSED[/] \x1b[31mred\n")
    await store.merges.gate_started(attempt.id, 0, "pytest -q", log_path=str(log))
    app = PaneHarness(
        lambda s: BeadsPane(s, id="pane-beads"), make_services(Town(town_dir), store, FakeLink())
    )
    async with app.run_test(size=(120, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("o")
        await until(lambda: isinstance(app.screen, GateTail), what="the panel")
        await until(lambda: "collecting 3 items" in output(app), what="the log")
        assert "[bold]PASSED[/] ␛[31mred" in output(app)  # literally, escape made visible
        gates = str(app.screen.query_one("#gate-tail-gates", Static).render())
        assert "gate 1  running  pytest -q" in gates
        with log.open("a") as more:
            more.write("test_two PASSED\n")
        await until(lambda: "test_two PASSED" in output(app), what="the new line")
        result = GateResult(idx=0, command="pytest -q", ok=False, exit_code=1, tail="1 failed\n")
        await store.merges.gate_finished(attempt.id, result, actor="refinery")
        await until(lambda: output(app) == "1 failed", what="the stored tail")
        gates = str(app.screen.query_one("#gate-tail-gates", Static).render())
        assert "gate 1  ✗ exit 1  pytest -q" in gates
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, GateTail), what="closing")


async def test_o_with_nothing_merging_says_so(town_dir: Path, store: Store) -> None:
    app = PaneHarness(
        lambda s: BeadsPane(s, id="pane-beads"), make_services(Town(town_dir), store, FakeLink())
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("o")
        await pilot.pause()
        assert not isinstance(app.screen, GateTail)
        assert any("merging nothing" in n.message for n in app._notifications)
