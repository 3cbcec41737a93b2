"""`L` on a Backlog card against a real daemon: it offers the agents (name, state, role) and
dispatch; a pick slings the bead as `at sling` does; escape or dispatch sends nothing.

One git town for the module (a demo crew agent `d1` at speed 0; dispatch paused, so only
the operator hands beads out); each test adds its own bead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from at_cli import at, git_town, until
from live_room import control_room
from textual.widgets import OptionList

from tundra_tui.domain.beads import BeadStatus
from tundra_tui.store import Store
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.modals.agent_pick import AgentPick
from tundra_tui.ui.panes.beads import BeadsPane
from tundra_tui.ui.widgets.kanban_board import KanbanBoard

DEADLINE = 30.0


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    with git_town(agents={"d1": {"role": "crew", "runtime": "demo"}}) as root:
        at(root, "dispatch", "pause")
        yield root


@pytest.fixture
async def app(town: Path) -> AsyncIterator[TundraApp]:
    async with control_room(town) as app:
        yield app


def bead_json(town: Path, bead_id: int) -> dict[str, object]:
    return dict(json.loads(at(town, "bead", "show", str(bead_id), "--json").stdout)["bead"])


async def add_bead(town: Path, title: str) -> int:
    done = await asyncio.to_thread(at, town, "bead", "add", title, "--json")
    return int(json.loads(done.stdout)["id"])


async def open_picker(app: TundraApp, pilot: object, bead_id: int) -> AgentPick:
    """Show the Beads tab, put the cursor on `bead_id`, press `L`; the picker opens."""
    await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
    await pilot.press("3")  # type: ignore[attr-defined]
    await until(lambda: isinstance(app.active_pane, BeadsPane), what="the Beads tab")
    board = app.active_pane.query_one(KanbanBoard)
    await until(
        lambda: bool(board.columns) and any(b.id == bead_id for b in board.columns[0].beads),
        what="the card",
    )
    board.focus()
    board.column, board.row = 0, [b.id for b in board.columns[0].beads].index(bead_id)
    board.action_cursor(0, 0)
    await pilot.press("L")  # type: ignore[attr-defined]
    await until(lambda: isinstance(app.screen, AgentPick), what="the picker")
    assert isinstance(app.screen, AgentPick)
    return app.screen


async def _moved(store: Store, bead_id: int) -> bool:
    return (await store.beads.get(bead_id)).status not in (BeadStatus.BACKLOG, BeadStatus.HOOKED)


def events_of(town: Path, bead_id: int) -> list[str]:
    rows = json.loads(at(town, "events", "--bead", str(bead_id), "--json").stdout)
    return [str(row["kind"]) for row in rows]


async def test_L_on_a_backlog_card_slings_it_to_the_picked_agent(
    town: Path, app: TundraApp
) -> None:
    bead_id = await add_bead(town, "Pick me [bold]up[/]")
    async with app.run_test(size=(120, 40)) as pilot:
        picker = await open_picker(app, pilot, bead_id)
        options = picker.query_one(OptionList)
        rows = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert rows[-1] == "let dispatch take it"
        d1 = next(i for i, row in enumerate(rows) if row.split()[0] == "d1")
        assert rows[d1].split()[1:] == ["stopped", "crew"], rows
        assert "Pick me [bold]up[/]" in str(picker.query_one("#agent-pick-title").render())
        await pilot.press(*["j"] * d1, "enter")
        await until(lambda: not isinstance(app.screen, AgentPick), what="the picker closing")
        store = app.services.store
        await until(
            lambda: _moved(store, bead_id),
            DEADLINE,
            what=f"the sling ({[n.message for n in app._notifications]})",
        )
        said = f"slung #{bead_id} to d1"
        await until(lambda: any(said in n.message for n in app._notifications), what="the note")
    # Slung to d1, which then works it: what its work comes to (submitted, or failed: CI
    # once saw a failure under load) is the demo agent's, not the picker's, to test.
    bead = bead_json(town, bead_id)
    told = json.loads(at(town, "events", "--bead", str(bead_id), "--json").stdout)
    story = [(row["kind"], row.get("data")) for row in told]  # a failure's reason, if any
    assert bead["assignee"] == "d1" and bead["status"] != "backlog", (bead, story)
    assert "bead.sling" in [kind for kind, _ in story], story


async def test_escape_and_dispatch_leave_the_bead_in_backlog(town: Path, app: TundraApp) -> None:
    bead_id = await add_bead(town, "Leave me be")
    before = await asyncio.to_thread(events_of, town, bead_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(app, pilot, bead_id)
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, AgentPick), what="the picker closing")
        picker = await open_picker(app, pilot, bead_id)
        await pilot.press("end", "enter")  # "let dispatch take it", the last row
        await until(lambda: app.screen is not picker, what="the picker closing")
        said = "stays in Backlog"
        await until(lambda: any(said in n.message for n in app._notifications), what="the note")
    bead = bead_json(town, bead_id)
    assert bead["status"] == "backlog" and not bead["assignee"]
    assert await asyncio.to_thread(events_of, town, bead_id) == before
