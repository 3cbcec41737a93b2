"""The Sessions tab: merging the daemon's sessions with the roster (plain tests), and the pane."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from textual.app import App
from ui_harness import FakeLink, PaneHarness, make_services, refusing
from ui_seed import StepClock, daemon_agents, seed

from tundra_tui.config import set_value
from tundra_tui.daemon.metrics import cpu_seconds
from tundra_tui.daemon.protocol import AgentList, AgentRow, Agents
from tundra_tui.domain.agents import Agent, AgentState, Role, Runtime
from tundra_tui.domain.session_rows import CpuMeter, session_rows
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.live import Change
from tundra_tui.ui.panes.sessions import SessionsPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import NavTable

# ---- plain rules --------------------------------------------------------------------------------


def test_cpu_seconds_of_a_live_and_a_missing_process() -> None:
    mine = cpu_seconds(os.getpid())
    assert mine is not None and mine > 0
    assert cpu_seconds(None) is None
    assert cpu_seconds(2**22 + 12345) is None  # above pid_max: never a process


def test_cpu_meter_needs_a_second_reading_and_forgets_a_restart() -> None:
    meter = CpuMeter()
    assert meter.sample("a", 1, 10.0, 100.0) is None
    assert meter.sample("a", 1, 11.0, 102.0) == 50.0
    assert meter.sample("a", 1, 11.0, 102.0) == 50.0  # the same reading shown again
    assert meter.sample("a", 2, 0.5, 1.0) is None  # a new process
    assert meter.sample("a", None, None, None) is None
    assert meter.sample("a", 2, 1.0, 2.0) is None  # forgotten once it stopped


def test_rows_merge_the_daemon_with_the_roster() -> None:
    stored = [
        Agent("mayor", Role.MAYOR, Runtime.CLAUDE, AgentState.WORKING),
        Agent("crew-1", Role.CREW, Runtime.AIDER, AgentState.FAILED, exit_status=2),
    ]
    daemon = [
        AgentRow(name="mayor", state="idle", glyph="○", runtime="claude", pid=7, uptime=10.0,
                 cpu_seconds=1.0, rss_kib=2048, trouble="[red]stalled\x1b"),
        AgentRow(name="ghost", state="bogus", glyph="?", runtime=""),
    ]  # fmt: skip
    rows = session_rows(daemon, stored, {"mayor": 1200}, CpuMeter())
    assert [(r.name, r.state, r.running) for r in rows] == [
        ("crew-1", AgentState.FAILED, False),
        ("ghost", AgentState.UNKNOWN, False),
        ("mayor", AgentState.IDLE, True),
    ]
    mayor = rows[2]
    assert (mayor.pid, mayor.rss_kib, mayor.tokens, mayor.cpu) == (7, 2048, 1200, None)
    assert mayor.note == "[red]stalled␛"
    assert rows[0].note == "exit 2" and rows[0].pid is None
    assert rows[1].pid is None and rows[1].runtime == "?"


def test_a_stopped_agent_shows_no_exit_code() -> None:
    stored = [Agent("crew-1", Role.CREW, Runtime.AIDER, AgentState.STOPPED, exit_status=129)]
    (row,) = session_rows([], stored, {}, CpuMeter())
    assert row.note == "", "a stop asked for ends the process by a signal on purpose"


# ---- the pane -----------------------------------------------------------------------------------


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=StepClock())
    await seed(opened)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def link() -> FakeLink:
    fake = FakeLink()
    fake.answers[Agents] = AgentList(agents=daemon_agents())
    return fake


@pytest.fixture
def services(town_dir: Path, store: Store, link: FakeLink) -> Services:
    return make_services(Town(town_dir), store, link)


def harness(services: Services) -> PaneHarness:
    return PaneHarness(lambda s: SessionsPane(s, id="pane-sessions"), services)


def screen_text(app: App[Any]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def rows_of(app: App[Any], table_id: str) -> list[list[str]]:
    table = app.query_one(f"#{table_id}", NavTable)
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_sessions_show_process_figures_at_80x24(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        rows = rows_of(pilot.app, "sessions-table")
        assert rows == [
            ["X", "crew-1", "aider", "-", "-", "-", "-", "-", "exit 1"],
            ["!", "deacon", "codex", "4243", "-", "300 MiB", "1m05s", "137k", "stalled"],
            ["@", "mayor", "claude", "4242", "-", "812 MiB", "1h02m", "63.0k", "working"],
            ["-", "polecat-1", "demo", "-", "-", "-", "-", "-", "stopped"],
        ]
        text = screen_text(pilot.app)
        assert "2 running of 4" in text and "Timeline · every agent" in text
        assert all(len(line) <= 80 for line in text.splitlines())


async def test_cpu_percent_from_the_second_poll(services: Services, link: FakeLink) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        link.answers[Agents] = AgentList(
            agents=daemon_agents(cpu=13.0, uptime=3731.0, rss_kib=900 * 1024)
        )
        pilot.app.query_one(SessionsPane).poll()
        await settle(pilot)
        mayor = rows_of(pilot.app, "sessions-table")[2]
        assert mayor[4:7] == ["50%", "900 MiB", "1h02m"]


async def test_wide_layout_shows_state_and_hostile_text_literally(
    services: Services, link: FakeLink, store: Store
) -> None:
    mayor, deacon = daemon_agents()
    hostile = msgspec.structs.replace(deacon, trouble="[bold]stuck[/bold]\x1b[2J")
    link.answers[Agents] = AgentList(agents=[mayor, hostile])
    await store.events.record("agent.hook", actor="mayor", agent="mayor", data={"event": "[b]x"})
    async with harness(services).run_test(size=(250, 70)) as pilot:
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "awaiting_approval" in text
        assert "[bold]stuck[/bold]␛[2J" in text
        assert "mayor hook [b]x" in text
        assert "created #1 “Fix [bold]login[/bold] bug”" in text
        assert "started convoy alpha" in text


async def test_a_refusing_daemon_shows_stored_states_and_one_notice(
    services: Services, link: FakeLink
) -> None:
    link.answers[Agents] = refusing("daemon is down")
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.query_one(SessionsPane).poll()
        await settle(pilot)
        rows = rows_of(pilot.app, "sessions-table")
        assert [(r[0], r[1], r[3]) for r in rows] == [
            ("X", "crew-1", "-"),
            ("*", "deacon", "-"),
            ("@", "mayor", "-"),
            ("-", "polecat-1", "-"),
        ]
        notes = [n.message for n in pilot.app._notifications]
        assert notes == ["sessions: daemon is down; showing stored states"]
        assert "daemon: daemon is down · stored states" in screen_text(pilot.app)


async def test_enter_narrows_the_timeline_and_a_widens_it(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one("#sessions-table", NavTable)
        table.focus()
        await pilot.press("j")  # deacon
        assert table.cursor_row == 1
        await pilot.press("enter")
        await settle(pilot)
        pane = app.query_one(SessionsPane)
        assert pane.agent == "deacon"
        assert "Timeline · deacon" in screen_text(app)
        whats = [row[1] for row in rows_of(app, "sessions-timeline")]
        assert whats[-3:] == [
            "operator hooked #2 to deacon",
            "operator slung #2 to deacon",
            "operator submitted #2 for review",
        ]
        assert "operator done #1" not in whats
        await pilot.press("k", "enter")
        await settle(pilot)
        assert table.cursor_row == 0 and pane.agent == "crew-1"
        await pilot.press("a")
        await settle(pilot)
        assert pane.agent is None
        assert "operator done #1" in [row[1] for row in rows_of(app, "sessions-timeline")]


async def test_enter_twice_returns_to_every_agent(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.query_one("#sessions-table", NavTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(SessionsPane).agent == "crew-1"
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(SessionsPane).agent is None


async def test_search_filters_the_table_and_the_timeline(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.query_one(SessionsPane).search("POLECAT")
        await pilot.pause()
        assert [row[1] for row in rows_of(pilot.app, "sessions-table")] == ["polecat-1"]
        whats = [row[1] for row in rows_of(pilot.app, "sessions-timeline")]
        assert "operator hooked #3 to polecat-1" in whats and "operator done #1" not in whats


async def test_polls_on_a_timer_only_while_shown(
    town_dir: Path, store: Store, link: FakeLink
) -> None:
    set_value(Town(town_dir), "ui.refresh_interval_ms", "50", "local")
    services = make_services(Town(town_dir), store, link)
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = len(link.ops(Agents))
        for _ in range(100):  # at least two more polls, whatever the machine's load
            if len(link.ops(Agents)) >= before + 2:
                break
            await pilot.pause(0.05)
        assert len(link.ops(Agents)) >= before + 2
        pane = pilot.app.query_one(SessionsPane)
        pane.display = False
        await pilot.pause(0.1)
        hidden = len(link.ops(Agents))
        await pilot.pause(0.3)
        pane.live_changed(Change("state", "mayor"))
        await settle(pilot)
        assert len(link.ops(Agents)) == hidden


async def test_state_changes_poll_and_screens_do_not(services: Services, link: FakeLink) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pane = pilot.app.query_one(SessionsPane)
        before = len(link.ops(Agents))
        pane.live_changed(Change("screen", "mayor"))
        await settle(pilot)
        assert len(link.ops(Agents)) == before
        pane.live_changed(Change("exited", "mayor"))
        await settle(pilot)
        assert len(link.ops(Agents)) == before + 1
