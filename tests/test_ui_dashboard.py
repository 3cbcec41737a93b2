"""The Dashboard: readouts, event summaries and overview rules (plain tests), and the pane."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from ui_harness import FIXED_NOW, FakeLink, PaneHarness, make_services
from ui_seed import ESCAPE_TITLE, HOSTILE_TITLE, StepClock, seed

from tundra_tui.domain.activity import byline, summarize
from tundra_tui.domain.agents import Agent, AgentState, Role, Runtime
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.clock import iso
from tundra_tui.domain.context_window import context_percent, context_window
from tundra_tui.domain.events import Event
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.domain.overview import (
    Spend,
    active,
    agent_card,
    agent_views,
    attention,
    bead_card,
    cost_card,
)
from tundra_tui.domain.readout import (
    bar,
    change,
    clock_time,
    cpu_percent,
    day_window,
    duration,
    memory,
    money,
    percent,
    tokens,
)
from tundra_tui.store import Store, open_store
from tundra_tui.town import Town
from tundra_tui.ui.live import AgentLive, Change, PendingApproval
from tundra_tui.ui.messages import OpenApproval
from tundra_tui.ui.panes.dashboard import DashboardPane
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import NavTable
from tundra_tui.ui.widgets.stat_card import StatCard

# ---- readouts -----------------------------------------------------------------------------------


def test_money_and_change_against_yesterday() -> None:
    assert money(47.2) == "$47.20"
    assert money(1234.5) == "$1,234.50"
    assert change(5.25, 4.0) == "+31%"
    assert change(3.0, 4.0) == "-25%"
    assert change(4.0, 4.0) == "±0%"
    assert change(1.0, 0.0) == "new"
    assert change(0.0, 0.0) == "-"


def test_durations_memory_tokens_and_percent() -> None:
    assert duration(None) == "-"
    assert duration(65) == "1m05s"
    assert duration(3725) == "1h02m"
    assert duration(2 * 86400 + 4 * 3600) == "2d04h"
    assert memory(None) == "-"
    assert memory(812 * 1024) == "812 MiB"
    assert memory(3 * 1024 * 1024 // 2) == "1.5 GiB"
    assert memory(900) == "900 KiB"
    assert tokens(None) == "-"
    assert (tokens(950), tokens(63_000), tokens(137_000), tokens(4_100_000)) == (
        "950",
        "63.0k",
        "137k",
        "4.1M",
    )
    assert percent(None) == "-"
    assert percent(24.6) == "25%"


def test_cpu_percent_needs_two_samples_of_one_process() -> None:
    assert cpu_percent(None, (10.0, 100.0)) is None
    assert cpu_percent((10.0, 100.0), (11.0, 102.0)) == 50.0
    assert cpu_percent((10.0, 100.0), (10.0, 100.0)) is None  # no time passed
    assert cpu_percent((10.0, 100.0), (1.0, 5.0)) is None  # restarted


def test_bar_day_window_and_clock_time() -> None:
    assert bar(0.25, 8) == ("██", "░░░░░░")
    assert bar(2.0, 4) == ("████", "")
    assert bar(0.5, 0) == ("", "")
    window = day_window(FIXED_NOW)
    assert (window.yesterday, window.today, window.tomorrow, window.a_day_ago) == (
        "2026-11-19T00:00:00.000000Z",
        "2026-11-20T00:00:00.000000Z",
        "2026-11-21T00:00:00.000000Z",
        "2026-11-19T14:30:00.000000Z",
    )
    assert clock_time(iso(FIXED_NOW.replace(hour=9, minute=5)), FIXED_NOW) == "09:05"
    assert clock_time(iso(FIXED_NOW - timedelta(days=1)), FIXED_NOW) == "11-19 14:30"
    assert clock_time(iso(FIXED_NOW - timedelta(days=1)), FIXED_NOW, short=True) == "11-19"
    assert clock_time("garbage", FIXED_NOW) == "-"


def test_context_use_only_for_known_models() -> None:
    assert context_window("claude-opus-4") == 200_000
    assert context_window("gpt-5-codex") == 272_000
    assert context_window("Gemini-2.5-pro") == 1_048_576
    assert context_window("llama") is None
    sample = UsageSample("t", "a", "claude-sonnet-4", input_tokens=40_000, cache_read_tokens=10_000)
    assert context_percent(sample) == 25.0
    assert context_percent(UsageSample("t", "a", "", input_tokens=50_000), "opus") == 25.0
    assert context_percent(UsageSample("t", "a", "mystery", input_tokens=5)) is None
    assert context_percent(None, "claude") is None


# ---- event summaries ----------------------------------------------------------------------------


def event(kind: str, data: Any = None, **kw: Any) -> Event:
    return Event(id=1, at="t", actor=kw.pop("actor", "operator"), kind=kind, data=data or {}, **kw)


def test_summaries_read_as_sentences() -> None:
    assert summarize(event("bead.hook", {"assignee": "mayor"}, bead_id=42)) == "hooked #42 to mayor"
    claimed = event("bead.hook", {"assignee": "p1", "claim": True}, bead_id=4, actor="p1")
    assert summarize(claimed) == "claimed #4"
    assert summarize(event("bead.done", bead_id=3)) == "done #3"
    assert summarize(event("bead.fail", {"reason": "boom"}, bead_id=3)) == "failed #3: boom"
    assert (
        summarize(event("agent.state", {"from": "idle", "to": "working"}, agent="mayor"))
        == "mayor idle → working"
    )
    assert summarize(event("convoy.start", convoy_id=2), {2: "beta"}) == "started convoy beta"
    assert summarize(event("convoy.pause", convoy_id=9)) == "paused convoy #9"
    assert summarize(event("mail.sent", {"from": "a", "to": "b", "urgent": True})) == (
        "urgent mail a → b"
    )
    assert summarize(event("weird.kind", {"k": 1})) == "weird.kind k=1"


def test_bylines_name_the_actor_unless_redundant() -> None:
    hooked = event("bead.hook", {"assignee": "mayor"}, bead_id=42)
    assert byline(hooked, summarize(hooked)) == "operator"
    state = event("agent.state", {"from": "idle", "to": "working"}, agent="mayor", actor="daemon")
    assert byline(state, summarize(state)) == ""
    asks = event("approval.requested", {"tool": "Bash", "subject": "ls"}, agent="p1", actor="p1")
    assert summarize(asks) == "p1 asks: Bash ls" and byline(asks, summarize(asks)) == ""
    assert byline(event("x", actor="[b]\x1b"), "") == "[b]␛"


def test_summaries_make_hostile_text_visible_and_survive_bad_data() -> None:
    created = event("bead.created", {"title": "[bold]x[/bold]\x1b[2J\nnext"}, bead_id=1)
    assert summarize(created) == "created #1 “[bold]x[/bold]␛[2J␤next”"
    broken = event("bead.hook", ["not", "a", "dict"], bead_id=1)
    assert summarize(broken) == "bead.hook"


# ---- overview rules -----------------------------------------------------------------------------


def roster() -> list[Agent]:
    return [
        Agent("mayor", Role.MAYOR, Runtime.CLAUDE, AgentState.WORKING, model="claude-opus-4"),
        Agent("deacon", Role.DEACON, Runtime.CODEX, AgentState.IDLE),
        Agent("crew-1", Role.CREW, Runtime.AIDER, AgentState.FAILED, exit_status=1),
        Agent("p1", Role.POLECAT, Runtime.DEMO, AgentState.STOPPED),
    ]


def test_states_come_from_the_daemon_only_when_connected() -> None:
    live = {"deacon": AgentLive("deacon", AgentState.AWAITING_APPROVAL, trouble="stalled")}
    offline = agent_views(roster(), live, connected=False)
    assert [v.state for v in offline][:2] == [AgentState.WORKING, AgentState.IDLE]
    online = agent_views(roster(), live, connected=True)
    assert online[1].state is AgentState.AWAITING_APPROVAL and online[1].trouble == "stalled"
    assert [v.name for v in active(online)] == ["deacon", "mayor"]
    assert online[2].exit == "exit 1"


def test_attention_lists_approvals_then_agents_in_trouble() -> None:
    live = {
        "deacon": AgentLive("deacon", AgentState.IDLE, trouble="stalled"),
        "p1": AgentLive("p1", AgentState.EXITED, exit="exit 3"),
    }
    views = agent_views(roster(), live, connected=True)
    waiting = [PendingApproval(9, "mayor", "rm -rf [b]/[/b]\x1b", "Bash", "hook")]
    items = attention(waiting, views)
    assert [(i.glyph, i.agent, i.text, i.approval_id) for i in items] == [
        ("!", "mayor", "Bash: rm -rf [b]/[/b]␛", 9),
        ("*", "deacon", "idle, trouble: stalled", None),
        ("X", "crew-1", "failed, exit 1", None),
        ("x", "p1", "exited, exit 3", None),
    ]


def test_cards_narrow_and_wide() -> None:
    views = agent_views(roster(), {}, connected=False)
    assert agent_card(views, wide=False).lines == ("@1 *1 !0 ?0", "2 down")
    assert agent_card(views, wide=True).lines[1:] == (
        "@1 working  *1 idle  !0 awaiting  ?0 unknown",
        "2 down: 1 stopped, 1 failed",
    )
    counts = dict.fromkeys(BeadStatus, 1)
    assert bead_card(counts, wide=False).lines == ("1 done 2 ✗", "1 todo 3 wip")
    assert bead_card(counts, wide=True).lines[2] == "done 1  failed 1  escalated 1"
    spend = Spend(today=5.25, yesterday_so_far=4.0, yesterday=9.5, tokens_today=1500)
    assert cost_card(spend, "14:30", wide=False).lines == ("+31%", "vs $4.00 yday")
    assert cost_card(spend, "14:30", wide=True).lines == (
        "today  +31% vs yesterday by 14:30",
        "yesterday $4.00 by 14:30, $9.50 all day",
        "tokens today 1.5k",
    )


# ---- the store's newest sample per agent ------------------------------------------------------


async def test_latest_sample_per_agent(store: Store) -> None:
    latest = await store.metrics.latest_by_agent()
    assert set(latest) == {"mayor", "deacon"}
    assert latest["mayor"].input_tokens == 50_000  # today's, not yesterday's
    assert latest["deacon"].model == "gpt-5-codex"


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
def services(town_dir: Path, store: Store) -> Services:
    services = make_services(Town(town_dir), store, FakeLink())
    services.live.connected = True
    services.live.agent("mayor").state = AgentState.WORKING
    services.live.approvals[7] = PendingApproval(
        7, "deacon", "rm -rf [bold]/tmp/x[/bold]\x1b[2J", "Bash", "hook"
    )
    return services


class Harness(PaneHarness):
    def on_open_approval(self, message: OpenApproval) -> None:
        self.posted.append(message)


def harness(services: Services) -> Harness:
    return Harness(lambda s: DashboardPane(s, id="pane-dashboard"), services)


def screen_text(app: App[Any]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def card(app: App[Any], name: str) -> str:
    return str(app.query_one(f"#card-{name}", StatCard).render())


async def test_cards_at_80x24(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app = pilot.app
        assert card(app, "agents") == "4  @1 *1 !0 ?0\n2 down"
        assert card(app, "beads") == "7  1 done 1 ✗\n4 todo 1 wip"
        assert card(app, "convoys").startswith("2  16% 1/6\n███")
        assert card(app, "cost") == "$5.25  +31%\nvs $4.00 yday"
        text = screen_text(app)
        assert "4  @1 *1 !0 ?0" in text and "$5.25  +31%" in text
        assert "Attention (2)" in text
        assert "!  deacon  Bash: rm -rf [bold]/tmp/x[/bold]␛[2J" in text
        assert "X  crew-1  failed, exit 1" in text
        agents = app.query_one("#dash-agents", NavTable)
        assert [[c.plain for c in agents.get_row_at(i)] for i in range(agents.row_count)] == [
            ["@", "mayor", "claude-opus-4", "25%"],
            ["*", "deacon", "gpt-5-codex", "50%"],
        ]
        assert re.search(r"│ @  mayor +claude-opus-4 +25% │", text)
        assert all(len(line) <= 80 for line in text.splitlines())


async def test_wide_cards_and_literal_titles_at_250x70(services: Services) -> None:
    async with harness(services).run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        text = screen_text(pilot.app)
        assert "@1 working  *1 idle  !0 awaiting  ?0 unknown" in text
        assert "backlog 4  hooked 0  slung 0  review 1" in text
        assert "done 1  failed 1  escalated 0" in text
        assert "yesterday $4.00 by 14:30, $4.00 all day" in text
        assert "tokens today 189k" in text
        assert "1 pending  1 active  0 paused  0 completed" in text
        assert f"created #1 “{HOSTILE_TITLE}”" in text
        assert "created #2 “Add ␛[31mred␛[0m tests”" in text
        assert ESCAPE_TITLE not in text


async def test_activity_is_newest_first(services: Services) -> None:
    async with harness(services).run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        table = pilot.app.query_one("#dash-activity", NavTable)
        first = [table.get_row_at(i)[1].plain for i in range(3)]
        assert first == [
            "operator failed #3: tests broke",
            "operator slung #3 to polecat-1",
            "operator hooked #3 to polecat-1",
        ]
        assert table.get_row_at(0)[0].plain == "12:55"


async def test_enter_opens_the_waiting_approval_and_j_k_move(services: Services) -> None:
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(DashboardPane)
        pane.focus_default()  # the app does this when the tab is shown
        await pilot.pause()
        table = app.query_one("#dash-attention", NavTable)
        assert table.has_focus
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("enter")  # on crew-1: falls back to the approval waiting
        await pilot.press("k")
        assert table.cursor_row == 0
        await pilot.press("enter")
        await pilot.pause()
        assert [m.approval_id for m in app.posted if isinstance(m, OpenApproval)] == [7, 7]


async def test_enter_with_nothing_waiting_says_so(services: Services) -> None:
    services.live.approvals.clear()
    app = harness(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one("#dash-attention", NavTable).focus()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert not app.posted
        assert [n.message for n in app._notifications] == ["no approval is waiting"]


async def test_live_events_redraw_without_reading_the_store(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = pilot.app.query_one(DashboardPane)
        services.live.agent("deacon").state = AgentState.AWAITING_APPROVAL
        pane.live_changed(Change("state", "deacon"))
        await _until(pilot, lambda: card(pilot.app, "agents").startswith("4  @1 *0 !1 ?0"))
        services.live.connected = False
        pane.live_changed(Change("link"))  # soon after: drawn once LIVE_GAP_S has passed
        await _until(pilot, lambda: card(pilot.app, "agents").startswith("4  @1 *1 !0 ?0"))


async def _until(pilot: Any, check: Any, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, "never drawn"
        await pilot.pause(0.02)


async def test_search_filters_agents_activity_and_attention(services: Services) -> None:
    async with harness(services).run_test(size=(250, 70)) as pilot:
        await pilot.pause()
        pane = pilot.app.query_one(DashboardPane)
        pane.search("Deacon")
        await pilot.pause()
        agents = pilot.app.query_one("#dash-agents", NavTable)
        assert [agents.get_row_at(i)[1].plain for i in range(agents.row_count)] == ["deacon"]
        activity = pilot.app.query_one("#dash-activity", NavTable)
        shown = [activity.get_row_at(i)[1].plain for i in range(activity.row_count)]
        assert "operator submitted #2 for review" in shown  # the event names deacon as its agent
        assert "operator slung #2 to deacon" in shown and "operator done #1" not in shown
        assert pilot.app.query_one("#dash-attention", NavTable).row_count == 1
        pane.search("")
        await pilot.pause()
        assert agents.row_count == 2


async def test_an_empty_town_and_a_theme_change(town_dir: Path) -> None:
    store = await open_store(Town(town_dir).db_path, clock=StepClock())
    try:
        app = harness(make_services(Town(town_dir), store))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert card(app, "cost") == "$0.00  -\nvs $0.00 yday"
            assert "nothing needs you" in screen_text(app)
            app.theme = "textual-light"
            await pilot.pause()
            assert "none running" in screen_text(app)
    finally:
        await store.close()


def test_days_and_clock_times_follow_the_local_zone() -> None:
    tokyo = FIXED_NOW.astimezone(timezone(timedelta(hours=9)))  # 23:30 there
    assert day_window(tokyo).today == "2026-11-19T15:00:00.000000Z"
    assert clock_time("2026-11-20T14:00:00.000000Z", tokyo) == "23:00"
    assert clock_time("2026-11-20T15:00:00.000000Z", tokyo, short=True) == "11-21"


async def test_growing_the_terminal_switches_to_the_wide_layout(services: Services) -> None:
    async with harness(services).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.resize_terminal(250, 70)
        await pilot.pause()
        assert card(pilot.app, "beads").splitlines()[1] == "backlog 4  hooked 0  slung 0  review 1"
        agents = pilot.app.query_one("#dash-agents", NavTable)
        assert [c.plain for c in agents.get_row_at(0)] == [
            "@",
            "mayor",
            "working",
            "claude",
            "claude-opus-4",
            "-",
            "25%",
            "$4.50",
        ]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert card(pilot.app, "beads") == "7  1 done 1 ✗\n4 todo 1 wip"


async def test_active_agents_use_the_width_at_160x48(services: Services, store: Store) -> None:
    bead = await store.beads.add("Held one", actor="operator")
    await store.beads.sling(bead.id, "deacon", actor="operator")
    async with harness(services).run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        agents = pilot.app.query_one("#dash-agents", NavTable)
        rows = {agents.get_row_at(i)[1].plain: agents.get_row_at(i) for i in range(2)}
        header = [str(column.label) for column in agents.columns.values()]
        assert header == ["", "Agent", "State", "Runtime", "Model", "Bead", "Ctx", "Today"]
        assert [c.plain for c in rows["deacon"]] == [
            "*",
            "deacon",
            "idle",
            "codex",
            "gpt-5-codex",
            f"#{bead.id}",
            "50%",
            "$0.75",
        ]
