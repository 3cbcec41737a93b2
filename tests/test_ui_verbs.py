"""Every action by name: the `:` palette's verbs against a real daemon and demo agents.
`sling` slings (checked with the `at` CLI), `agent stop` asks and then stops, `dispatch
pause` pauses (the store's flag), "agent NAME" selects that agent on the Agents tab, and
escape at any step sends nothing. A fast test checks that each verb names a real op: every
verb that changes the town is a daemon op (tests/test_daemon_writes.py shows other clients
hear of it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from at_cli import agent_state, at, git_town, until, wait_for
from live_room import control_room
from mail_town import rows
from textual.command import CommandList, CommandPalette

from tundra_tui.daemon.protocol import AnyRequest
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.modals.picker import PickerModal, TextModal, matches
from tundra_tui.ui.verbs import VERBS
from tundra_tui.ui.widgets.agent_list import AgentList
from tundra_tui.usage.reports import GROUPS

DEADLINE = 30.0


# ---- fast ---------------------------------------------------------------------------------------


def test_each_verb_is_a_daemon_op_or_only_shows_a_view() -> None:
    ops = set(get_args(AnyRequest))
    names = [verb.name for verb in VERBS]
    assert len(names) == len(set(names))
    for verb in VERBS:
        assert verb.op in ops or (verb.op is None and verb.via == "view"), verb.name
    assert {v.name for v in VERBS if v.op is None} == {f"cost by {g}" for g in GROUPS}
    wanted = {"sling", "hook", "submit", "done", "nudge", "mail", "convoy create"}
    wanted |= {"convoy start", "agent add", "agent start", "agent stop", "agent restart"}
    wanted |= {"dispatch pause", "dispatch resume", "refinery pause", "refinery resume"}
    wanted |= {"refinery retry", "cost by agent"}
    assert wanted <= set(names)


def test_the_picker_filter_matches_every_word_in_any_case() -> None:
    assert matches("#12  backlog  Fix the Parser", "parser #12")
    assert not matches("#12  backlog  Fix the Parser", "lexer")
    assert matches("anything", "")


# ---- against a daemon ---------------------------------------------------------------------------

pytestmark = pytest.mark.xdist_group("verbs")
"""One worker for the module's town and daemon."""


@pytest.fixture(scope="module")
def town() -> Iterator[Path]:
    crew = {"role": "crew", "runtime": "demo"}
    with git_town(agents={"d1": crew, "d2": crew}) as root:
        at(root, "agent", "start", "d1")
        wait_for(lambda: agent_state(root, "d1") == "idle")
        yield root


@pytest.fixture
async def app(town: Path) -> AsyncIterator[TundraApp]:
    async with control_room(town, approval_popup=False) as app:
        yield app


async def palette(app: TundraApp, pilot: Any, text: str) -> None:
    """Open the palette, type `text` and run the entry named exactly that."""
    await pilot.press("colon")
    await until(lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*text)
    listed = app.screen.query_one(CommandList)

    def found() -> int | None:
        for index in range(listed.option_count):
            if listed.get_option_at_index(index).hit.text == text:  # type: ignore[attr-defined]
                return index
        return None

    async def settled() -> bool:
        # Hits stream in and the list re-sorts: the highlight must still be ours after a pause.
        index = found()
        if index is None:
            return False
        listed.highlighted = index
        await pilot.pause()
        return found() == index == listed.highlighted

    await until(settled, what=f"{text!r} in the palette")
    await pilot.press("enter")


async def pick(app: TundraApp, pilot: Any, title: str, typed: str, count: int) -> None:
    """In the picker asking `title`, type `typed` (filtering) and pick the one match."""

    def asking() -> bool:
        screen = app.screen
        return isinstance(screen, PickerModal) and title in screen.title_text

    await until(asking, what=f"the picker {title!r}")
    picker = app.screen
    assert isinstance(picker, PickerModal)
    await pilot.press(*typed)
    await until(lambda: len(picker.shown) == count, what=f"{count} choices")
    await pilot.press("enter")
    await until(lambda: app.screen is not picker, what="the picker to close")


def bead_status(town: Path, bead: int) -> tuple[str, str]:
    data = json.loads(at(town, "bead", "show", str(bead), "--json").stdout)["bead"]
    return str(data["status"]), str(data.get("assignee") or "")


def slung(app: TundraApp, bead: int) -> bool:
    """The sling's one line came (the daemon answers once the work prompt was taken)."""
    said = [str(n.message) for n in app._notifications]
    return any(line.startswith((f"slung #{bead}", f"#{bead} was not", "sling:")) for line in said)


def said(app: TundraApp, line: str) -> bool:
    """The verb's one line (said once the daemon answered)."""
    return any(str(n.message) == line for n in app._notifications)


def started(app: TundraApp, name: str) -> bool:
    agent = app.services.live.agents.get(name)
    return agent is not None and agent.state.value == "idle"


async def test_sling_picks_a_bead_and_an_agent_and_escape_sends_nothing(
    town: Path, app: TundraApp
) -> None:
    out = await asyncio.to_thread(at, town, "bead", "add", "palette [b]work[/b]", "--json")
    bead = int(json.loads(out.stdout)["id"])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: started(app, "d1"), DEADLINE, what="d1 idle")
        # Escape at the bead, then at the agent: nothing is sent.
        await palette(app, pilot, "sling")
        await until(lambda: isinstance(app.screen, PickerModal), what="the bead picker")
        picker = app.screen
        assert isinstance(picker, PickerModal)
        assert any("palette [b]work[/b]" in label for _, label in picker.choices)
        await pilot.press("escape")
        await palette(app, pilot, "sling")
        await pick(app, pilot, "which bead", "palette", 1)
        await until(lambda: isinstance(app.screen, PickerModal), what="the agent picker")
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, PickerModal), what="the picker to close")
        assert bead_status(town, bead) == ("backlog", "")
        # Then all the way.
        await palette(app, pilot, "sling")
        await pick(app, pilot, "which bead", "palette", 1)
        await pick(app, pilot, "which agent", "d1 idle", 1)
        await until(lambda: slung(app, bead), DEADLINE, what="the sling's notice")
        said = [str(n.message) for n in app._notifications]
        assert any(line.startswith(f"slung #{bead} to d1") for line in said), said
        assert bead_status(town, bead)[1] == "d1"


async def test_agent_stop_asks_then_stops_and_escape_keeps_it(town: Path, app: TundraApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await until(lambda: "d1" in app.services.live.agents, DEADLINE, what="d1")
        await palette(app, pilot, "agent stop")
        await pick(app, pilot, "which agent", "d1", 1)
        await until(lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, ConfirmModal), what="no question")
        assert agent_state(town, "d1") != "stopped"
        await palette(app, pilot, "agent stop")
        await pick(app, pilot, "which agent", "d1", 1)
        await until(lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.press("y")
        await until(lambda: agent_state(town, "d1") == "stopped", DEADLINE, what="the stop")
    await asyncio.to_thread(at, town, "agent", "start", "d1")
    await asyncio.to_thread(wait_for, lambda: agent_state(town, "d1") == "idle")


async def test_dispatch_pause_and_resume(town: Path, app: TundraApp) -> None:
    def paused() -> str:
        return str(rows(town, "SELECT value FROM town_flags WHERE key = 'dispatch_paused'")[0][0])

    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await palette(app, pilot, "dispatch pause")
        await until(lambda: said(app, "dispatch paused"), what="the daemon's answer")
        assert paused() == "1"
        await palette(app, pilot, "dispatch resume")
        await until(lambda: said(app, "dispatch resumed"), what="the daemon's answer")
        assert paused() == "0"


async def test_agent_name_jumps_to_the_agents_tab_with_it_selected(
    town: Path, app: TundraApp
) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await palette(app, pilot, "agent d2")

        def selected() -> str | None:
            try:
                row = app.pane("agents").query_one(AgentList).selected
            except Exception:
                return None
            return row.name if row is not None else None

        await until(lambda: selected() == "d2", what="d2 selected")
        assert app.current_tab == "agents"


async def test_nudge_escape_sends_nothing_enter_nudges(town: Path, app: TundraApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: started(app, "d1"), DEADLINE, what="d1 idle")
        await palette(app, pilot, "nudge")
        await pick(app, pilot, "which agent", "d1", 1)
        await until(lambda: isinstance(app.screen, TextModal), what="the text")
        await pilot.press(*"hello", "escape")
        await until(lambda: not isinstance(app.screen, TextModal), what="no text")
        assert not any("nudged" in str(n.message) for n in app._notifications)
        await palette(app, pilot, "nudge")
        await pick(app, pilot, "which agent", "d1", 1)
        await answer(app, pilot, "what to say", "hello")

        def said() -> list[str]:
            return [str(n.message) for n in app._notifications]

        await until(lambda: any(line.startswith("nud") for line in said()), DEADLINE)
        assert said() == ["nudged d1"]


async def answer(app: TundraApp, pilot: Any, title: str, text: str) -> None:
    """In the text box asking `title`, type `text` and give it."""

    def asking() -> bool:
        screen = app.screen
        return isinstance(screen, TextModal) and title in screen.title_text

    await until(asking, what=f"the question {title!r}")
    box = app.screen
    await pilot.press(*text, "enter")
    await until(lambda: app.screen is not box, what="the text box to close")


async def test_hook_mail_and_the_refinery(town: Path, app: TundraApp) -> None:
    out = await asyncio.to_thread(at, town, "bead", "add", "to be hooked", "--json")
    bead = int(json.loads(out.stdout)["id"])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await palette(app, pilot, "hook")
        await pick(app, pilot, "which bead", "to be hooked", 1)
        await pick(app, pilot, "which agent", "d2", 1)
        await until(lambda: bead_status(town, bead) == ("hooked", "d2"), what="the hook")

        await palette(app, pilot, "mail")
        await pick(app, pilot, "which agent", "d2", 1)
        await answer(app, pilot, "subject", "hi")
        await answer(app, pilot, "message", "a word")
        sent = "SELECT sender, subject, body FROM mail WHERE recipient = 'd2'"
        await until(lambda: rows(town, sent) == [("operator", "hi", "a word")], what="the mail")

        flag = "SELECT value FROM town_flags WHERE key = 'refinery_paused'"
        await palette(app, pilot, "refinery pause")
        await until(lambda: rows(town, flag) == [("1",)], what="the refinery paused")
        await palette(app, pilot, "refinery resume")
        await until(lambda: rows(town, flag) == [("0",)], what="the refinery resumed")


async def test_convoy_create_and_start_and_agent_add(town: Path, app: TundraApp) -> None:
    out = await asyncio.to_thread(at, town, "bead", "add", "for the convoy", "--json")
    bead = int(json.loads(out.stdout)["id"])
    # Another bead, so that the picker still offers one (and "done") after the first pick.
    await asyncio.to_thread(at, town, "bead", "add", "left out")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await palette(app, pilot, "convoy create")
        await answer(app, pilot, "its name", "c1")
        await pick(app, pilot, "add which bead", "for the convoy", 1)
        await pick(app, pilot, "add which bead", "done: create", 1)
        await until(lambda: said(app, "created convoy c1 with 1 bead(s)"), what="the answer")
        convoy = "SELECT c.status, b.id FROM convoys c JOIN beads b ON b.convoy_id = c.id"
        assert rows(town, convoy) == [("pending", bead)]
        await palette(app, pilot, "convoy start")
        await pick(app, pilot, "which convoy", "c1", 1)
        await until(lambda: rows(town, convoy) == [("active", bead)], what="the start")

        await palette(app, pilot, "agent add")
        await answer(app, pilot, "its name", "d3")
        await pick(app, pilot, "which runtime", "demo", 1)
        await pick(app, pilot, "which role", "crew", 1)
        added_line = "added agent d3 (crew, demo) to tundra.toml"
        await until(lambda: said(app, added_line), what="the daemon's answer")
        assert "[agents.d3]" in (town / "tundra.toml").read_text()
        # The daemon's ChangedEvent("config") brought the new agent to the palette's roster.
        await until(lambda: "d3" in app.services.config.agents(), what="the config reloaded")
        added = json.loads((await asyncio.to_thread(at, town, "agent", "list", "--json")).stdout)
        assert {"name": "d3", "role": "crew", "runtime": "demo"}.items() <= next(
            row for row in added if row["name"] == "d3"
        ).items()


async def test_cost_views_show_the_costs_tab_grouped(town: Path, app: TundraApp) -> None:
    from tundra_tui.ui.panes.costs import CostsPane

    async with app.run_test(size=(120, 40)) as pilot:
        await palette(app, pilot, "cost by model")
        await until(lambda: app.current_tab == "costs", what="the Costs tab")
        pane = app.pane("costs")
        assert isinstance(pane, CostsPane)
        await until(lambda: pane.group == "model", what="grouped by model")


async def test_agent_start_then_restart_asks_first(town: Path, app: TundraApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.services.live.connected, DEADLINE, what="the daemon")
        await palette(app, pilot, "agent start")
        await pick(app, pilot, "which agent", "d2", 1)
        await until(lambda: started(app, "d2"), DEADLINE, what="d2 started")
        await palette(app, pilot, "agent restart")
        await pick(app, pilot, "which agent", "d2", 1)
        await until(lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.press("y")

        def restarted() -> bool:
            return any(str(n.message) == "restarted d2" for n in app._notifications)

        await until(restarted, DEADLINE, what="d2 restarted")  # said once the daemon did
    await asyncio.to_thread(at, town, "agent", "stop", "d2")
