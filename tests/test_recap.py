""" "While you were away": the recap from hand-built events, from a real store, its lines,
and in the control room (a new `at tui`, and a return after `ui.away_minutes`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from recap_seed import T0, Clock, away_story
from textual.pilot import Pilot
from ui_harness import FIXED_NOW, FakeLink, make_services

from tundra_tui.domain.clock import iso
from tundra_tui.domain.costs import Cost
from tundra_tui.domain.events import Event
from tundra_tui.domain.mail import OPERATOR, Mail
from tundra_tui.domain.recap import WAITING, build_recap, worth_recapping
from tundra_tui.store import Store, open_store
from tundra_tui.store.recap import RecapRepo
from tundra_tui.town import Town
from tundra_tui.ui.app import TundraApp
from tundra_tui.ui.away import Presence
from tundra_tui.ui.panes.dashboard import DashboardPane
from tundra_tui.ui.widgets.recap import RecapPanel, recap_lines

HOSTILE = "[bold red]pwn[/] \x1b[2Jwiped"


def at(minutes: float) -> str:
    return iso(T0 + timedelta(minutes=minutes))


def ev(n: int, minutes: float, kind: str, **kw: Any) -> Event:
    return Event(id=n, at=at(minutes), actor=kw.pop("actor", "daemon"), kind=kind, **kw)


# ---- the recap from hand-built events -----------------------------------------------------------


def test_an_empty_window_says_nothing() -> None:
    recap = build_recap([], since=at(0), until=at(60))
    assert recap.empty
    assert recap.seconds == 3600
    # Events outside the window do not count, and neither do working/idle changes.
    outside = [
        ev(1, -5, "bead.fail", bead_id=1, data={"to": "failed"}),
        ev(2, 61, "bead.done", bead_id=2, data={"to": "done"}),
        ev(3, 10, "agent.state", agent="a", data={"from": "idle", "to": "working"}),
    ]
    assert build_recap(outside, since=at(0), until=at(60)).empty
    assert not build_recap([], since=at(0), until=at(60), spend=Cost(0.0, 1, 500)).empty
    assert worth_recapping(T0, T0 + timedelta(minutes=1))
    assert not worth_recapping(T0, T0 + timedelta(seconds=59))
    assert not worth_recapping(None, T0)


def test_beads_are_counted_by_their_last_move_in_the_window() -> None:
    events = [
        ev(1, 1, "bead.done", bead_id=1, data={"to": "done", "merged_commit": "abc"}),
        ev(2, 2, "bead.done", bead_id=2, data={"to": "done"}),
        ev(3, 3, "bead.fail", bead_id=3, data={"to": "failed", "reason": "tests broke"}),
        ev(4, 4, "bead.escalate", bead_id=4, data={"to": "escalated", "reason": "stuck"}),
        # Failed, then reopened: no longer a failure to report.
        ev(5, 5, "bead.fail", bead_id=5, data={"to": "failed"}),
        ev(6, 6, "bead.reopen", bead_id=5, data={"to": "backlog"}),
        # Escalated, retried and merged: reported as merged only.
        ev(7, 7, "bead.escalate", bead_id=6, data={"to": "escalated"}),
        ev(8, 8, "bead.retry", bead_id=6, data={"to": "review"}),
        ev(9, 9, "bead.done", bead_id=6, data={"to": "done", "merged_commit": "def"}),
        ev(10, 10, "bead.note", bead_id=3, data={"excerpt": "x"}),  # no move
    ]
    titles = {1: "One", 2: "Two", 3: "Three", 4: "Four", 6: "Six"}
    recap = build_recap(events, since=at(0), until=at(60), titles=titles)
    assert [(b.bead_id, b.title, b.merged) for b in recap.done] == [
        (6, "Six", True),
        (2, "Two", False),
        (1, "One", True),
    ]
    assert recap.merged == 2
    assert [(b.bead_id, b.reason) for b in recap.failed] == [(3, "tests broke")]
    assert [(b.bead_id, b.reason) for b in recap.escalated] == [(4, "stuck")]


def test_approvals_wait_until_answered_or_until_the_end_of_the_window() -> None:
    asked = {"tool": "Bash", "subject": "git push", "source": "hook"}
    events = [
        ev(1, 10, "approval.requested", agent="p1", data={"id": 7, **asked}),
        ev(2, 22, "approval.approved", agent="p1", actor=OPERATOR, data={"id": 7}),
        ev(3, 30, "approval.requested", agent="p2", data={"id": 8, "subject": "rm x"}),
        ev(4, 50, "approval.requested", agent="p3", data={"id": 9, "subject": "ls"}),
        ev(5, 51, "approval.denied", agent="p3", data={"id": 9}),
        # Opened before the window: not one of its requests, even if answered inside.
        ev(6, 55, "approval.expired", agent="p4", data={"id": 3}),
    ]
    recap = build_recap(events, since=at(0), until=at(60))
    assert [(a.approval_id, a.waited_s, a.outcome) for a in recap.approvals] == [
        (8, 1800.0, WAITING),
        (7, 720.0, "approved"),
        (9, 60.0, "denied"),
    ]
    assert recap.still_waiting == 1
    assert recap.approvals[1].tool == "Bash"


def test_agents_that_crashed_died_stalled_or_were_stopped() -> None:
    events = [
        ev(1, 1, "agent.crashed", agent="p1", data={"restart": True, "reason": "exit 1"}),
        ev(2, 2, "agent.crashed", agent="p1", data={"restart": False, "reason": "too many"}),
        ev(3, 3, "agent.state", agent="p1", data={"from": "working", "to": "failed"}),
        ev(4, 4, "witness.stalled", agent="p2", data={"reason": "no output for 10 min"}),
        ev(5, 5, "agent.state", agent="c1", actor=OPERATOR, data={"to": "stopped"}),
        ev(6, 6, "agent.state", agent="p3", data={"from": "working", "to": "exited"}),
        ev(7, 7, "witness.agent_died", agent="p4", bead_id=3),
        # `at down` stops them all: the operator's doing, not news.
        ev(8, 8, "town.down", actor=OPERATOR),
        ev(9, 8, "agent.state", agent="p5", data={"from": "idle", "to": "stopped"}),
        ev(10, 9, "town.up", actor=OPERATOR),
        ev(11, 10, "agent.state", agent="p6", data={"from": "working", "to": "stopped"}),
    ]
    recap = build_recap(events, since=at(0), until=at(60))
    got = [(a.agent, a.crashes, a.died, a.stalled, a.stopped_by) for a in recap.agents]
    assert got == [
        ("p1", 2, True, 0, ""),
        ("p4", 0, True, 0, ""),
        ("p2", 0, False, 1, ""),
        ("c1", 0, False, 0, OPERATOR),
        ("p6", 0, False, 0, "daemon"),
    ]
    assert recap.agents[0].reason == "too many"
    lines = [line.plain for line in recap_lines(recap, roomy=True)]
    assert lines[0] == "Agents 5 agents to look at  (3 of 5 below)"
    assert lines[1] == "  p1 crashed 2×, gave up: too many"
    compact = recap_lines(recap, roomy=False)[0].plain
    assert compact.endswith("p2 stalled · c1 stopped by you +1")


def test_only_the_operators_unread_mail_of_the_window() -> None:
    def mail(n: int, to: str, minutes: float, read: str = "") -> Mail:
        return Mail(n, "mayor", to, "body", subject=f"s{n}", created_at=at(minutes), read_at=read)

    box = [
        mail(1, OPERATOR, 5),
        mail(2, OPERATOR, 6, read=at(7)),
        mail(3, "polecat-1", 8),
        mail(4, OPERATOR, -1),
        mail(5, OPERATOR, 59),
    ]
    recap = build_recap([], since=at(0), until=at(60), mail=box)
    assert [m.mail_id for m in recap.mail] == [1, 5]


def test_lines_count_first_and_never_read_markup() -> None:
    events = [
        ev(1, 1, "bead.done", bead_id=1, data={"to": "done", "merged_commit": "abc"}),
        ev(2, 2, "bead.fail", bead_id=2, data={"to": "failed", "reason": HOSTILE}),
        ev(3, 3, "approval.requested", agent="p1", data={"id": 1, "subject": HOSTILE}),
    ]
    titles = {1: HOSTILE, 2: "Two"}
    recap = build_recap(events, since=at(0), until=at(90), titles=titles, spend=Cost(4.5))
    compact = [line.plain for line in recap_lines(recap, roomy=False)]
    assert compact[0].startswith("Beads ✓ 1 merged  ✗ 1 failed — #2 Two (")
    assert "[bold red]pwn[/]" in compact[0] and "\x1b" not in compact[0]
    assert compact[1].startswith("1 approval waited up to 1h27m, 1 still waiting · $4.50 spent")
    roomy = [line.plain for line in recap_lines(recap, roomy=True)]
    assert roomy[1].startswith("  #2 Two (")
    assert roomy[2].startswith("  #1 [bold red]pwn[/] ")
    assert "p1 waited 1h27m" in roomy[4] and "(still waits)" in roomy[4]
    assert all("\x1b" not in line and "\n" not in line for line in roomy)


def test_presence_returns_only_after_the_away_minutes() -> None:
    presence = Presence()
    presence.start(T0)
    assert presence.input(T0 + timedelta(minutes=29), 30) is None
    assert presence.input(T0 + timedelta(minutes=58), 30) is None  # 29 min since the last
    assert presence.input(T0 + timedelta(minutes=89), 30) == T0 + timedelta(minutes=58)
    assert presence.input(T0 + timedelta(minutes=300), 0) is None  # 0 turns it off
    assert presence.due(T0)
    assert not presence.due(T0 + timedelta(seconds=59))
    assert presence.due(T0 + timedelta(seconds=60))


# ---- from a real store --------------------------------------------------------------------------


@pytest.fixture
async def clocked(town_dir: Path) -> AsyncIterator[tuple[Store, Clock]]:
    clock = Clock(T0 - timedelta(hours=1))
    async with await open_store(Town(town_dir).db_path, clock=clock) as store:
        yield store, clock


async def test_the_store_reads_the_window(clocked: tuple[Store, Clock]) -> None:
    store, clock = clocked
    await away_story(store, clock)
    repo = RecapRepo(store.db)
    recap = await repo.read(iso(T0), iso(FIXED_NOW))
    assert [(b.title, b.merged) for b in recap.done] == [("Ship the [b]login[/b] page", False)]
    assert [(b.title, b.reason) for b in recap.failed] == [("Flaky gate", "gate red")]
    assert [(a.agent, a.waited_s, a.outcome) for a in recap.approvals] == [
        ("polecat-2", 140 * 60.0, WAITING),
        ("polecat-1", 12 * 60.0, "approved"),
    ]
    assert recap.spend == Cost(3.25)
    assert [(a.agent, a.crashes) for a in recap.agents] == [("polecat-2", 1)]
    assert [(m.sender, m.subject) for m in recap.mail] == [("mayor", "Need you")]
    # The bisection finds the window's first event, whatever ids before it hold.
    last = await store.events.last_id()
    assert await repo.first_id(iso(FIXED_NOW + timedelta(days=1))) == last + 1
    assert await repo.first_id("") == 1
    empty = await repo.read(iso(FIXED_NOW), iso(FIXED_NOW + timedelta(hours=1)))
    assert empty.empty


# ---- in the control room ------------------------------------------------------------------------


DEADLINE = 20.0


async def until(pilot: Pilot[None], check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def panel_of(app: TundraApp) -> RecapPanel:
    pane = app.pane("dashboard")
    assert isinstance(pane, DashboardPane)
    return pane.query_one(RecapPanel)


async def test_a_new_control_room_leads_with_the_recap(
    town_dir: Path, clocked: tuple[Store, Clock]
) -> None:
    store, clock = clocked
    await away_story(store, clock)
    services = make_services(Town(town_dir), store, FakeLink())
    services.clock = clock
    app = TundraApp(services, watch_files=False, clock_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: panel_of(app).display, "the recap")
        panel = panel_of(app)
        assert panel.border_title == "While you were away (3h00m, since 11:30)"
        lines = panel.lines()
        assert lines[0].startswith("Beads ✓ 1 done  ✗ 1 failed — #3 Flaky gate (gate red)")
        assert lines[1].startswith("2 approvals waited up to 2h20m, 1 still waiting · $3.25 sp")
        assert lines[2].startswith("Agents 1 agent to look at — polecat-2 crashed")
        assert lines[3].startswith("Mail 1 unread for you — from mayor “Need you”")
        assert app.focused is not None and not isinstance(app.focused, RecapPanel)
        region = panel.region
        assert region.width == 80 and region.height == 6  # four lines and the border
        # `x` dismisses it; the operator's presence reached the store with the first key.
        await pilot.press("x")
        await until(pilot, lambda: not panel_of(app).display, "the recap to go")
        assert await store.flags.operator_seen() == iso(FIXED_NOW)
        # Quitting notes the time too (the next input would be a minute away).
        clock.now = FIXED_NOW + timedelta(seconds=30)
        await pilot.press("q")
    assert await store.flags.operator_seen() == iso(clock.now)


async def test_a_return_after_the_away_minutes_recaps_the_absence(
    town_dir: Path, clocked: tuple[Store, Clock]
) -> None:
    store, clock = clocked
    clock.now = FIXED_NOW
    services = make_services(Town(town_dir), store, FakeLink())
    services.clock = clock
    app = TundraApp(services, watch_files=False, clock_interval=0)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app._welcomed, "the welcome")
        assert not panel_of(app).display  # never seen before: nothing to recap
        await pilot.press("r")
        clock.now = FIXED_NOW + timedelta(minutes=28)
        await store.mail.send("mayor", OPERATOR, "one", actor="mayor", subject="Early")
        clock.now = FIXED_NOW + timedelta(minutes=29)
        await pilot.press("r")  # 29 minutes: not away
        await pilot.press("3")  # on the Beads tab
        await until(pilot, lambda: not app.first_shows and not app._reloading, "the Beads tab")
        await pilot.pause()
        focused = app.focused
        assert focused is not None
        clock.now = FIXED_NOW + timedelta(minutes=40)
        await store.mail.send("mayor", OPERATOR, "two", actor="mayor", subject="Late")
        await pilot.pause()
        assert not panel_of(app).display
        clock.now = FIXED_NOW + timedelta(minutes=70)
        await pilot.press("r")  # 41 minutes since the last key: back
        await until(pilot, lambda: panel_of(app).recap is not None, "the recap")
        panel = panel_of(app)
        assert panel.border_title == "While you were away (41m00s, since 14:59)"
        assert panel.lines() == ["Mail 1 unread for you", "  from mayor “Late”"]  # roomy
        # Elsewhere a toast says so; the tab and the focus stay where the operator was.
        said = [n.message for n in app._notifications]
        assert (
            "While you were away: Mail 1 unread for you — from mayor “Late” (see the "
            "Dashboard)" in said
        )
        assert app.current_tab == "beads" and app.focused is focused
        await pilot.press("1")
        await until(pilot, lambda: panel_of(app).display, "the recap on the Dashboard")
        assert await store.flags.operator_seen() == iso(clock.now)
        # A click is input too: away again, back with a click, a new recap replaces it.
        clock.now = FIXED_NOW + timedelta(minutes=90)
        await store.mail.send("witness", OPERATOR, "three", actor="witness", subject="Later")
        clock.now = FIXED_NOW + timedelta(minutes=120)
        await pilot.click("#title-bar", offset=(1, 0))
        await until(pilot, lambda: "Later" in " ".join(panel_of(app).lines()), "the new recap")
        assert panel_of(app).lines() == ["Mail 1 unread for you", "  from witness “Later”"]


@pytest.fixture
def away_off(town_dir: Path) -> None:
    from tundra_tui.cli import main

    assert main(["config", "set", "ui.away_minutes", "0", "--layer", "local"]) == 0


async def test_away_minutes_zero_turns_the_recap_off(
    away_off: None, town_dir: Path, clocked: tuple[Store, Clock]
) -> None:
    store, clock = clocked
    await away_story(store, clock)
    services = make_services(Town(town_dir), store, FakeLink())
    services.clock = clock
    app = TundraApp(services, watch_files=False, clock_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app._welcomed, "the welcome")
        await pilot.press("r")
        clock.now = FIXED_NOW + timedelta(hours=2)
        await pilot.press("r")
        await pilot.pause()
        assert not panel_of(app).display
        assert await store.flags.operator_seen() == iso(clock.now)  # still noted


def test_roomy_lists_three_items_a_subject_and_says_how_many_more() -> None:
    events = [ev(n, n, "bead.done", bead_id=n, data={"to": "done"}) for n in range(1, 6)]
    events += [ev(10 + n, 10 + n, "witness.stalled", agent=f"p{n}") for n in range(1, 5)]
    recap = build_recap(events, since=at(0), until=at(60), titles={3: "Three"})
    roomy = [line.plain for line in recap_lines(recap, roomy=True)]
    assert roomy == [
        "Beads ✓ 5 done  (3 of 5 below)",
        "  #5",
        "  #4",
        "  #3 Three",
        "Agents 4 agents to look at  (3 of 4 below)",
        "  p1 stalled",
        "  p2 stalled",
        "  p3 stalled",
    ]
    # Four subjects at most: sixteen lines, within the panel's 18 rows with its border.
    assert len(recap_lines(recap, roomy=False)) == 2


async def test_a_long_absence_recaps_the_last_week(
    town_dir: Path, clocked: tuple[Store, Clock]
) -> None:
    store, clock = clocked
    clock.now = FIXED_NOW - timedelta(days=10)
    await store.flags.set_operator_seen(iso(clock.now))
    clock.now = FIXED_NOW - timedelta(days=9)
    await store.mail.send("mayor", OPERATOR, "old", actor="mayor", subject="Old news")
    clock.now = FIXED_NOW - timedelta(days=2)
    await store.mail.send("mayor", OPERATOR, "new", actor="mayor", subject="This week")
    clock.now = FIXED_NOW
    services = make_services(Town(town_dir), store, FakeLink())
    services.clock = clock
    app = TundraApp(services, watch_files=False, clock_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: panel_of(app).display, "the recap")
        panel = panel_of(app)
        assert panel.border_title == "While you were away (10d00h; the last 7 days)"
        assert panel.lines() == ["Mail 1 unread for you — from mayor “This week”"]
