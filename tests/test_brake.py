"""The budget brake and rate-limit pauses on a real store, with no daemon: levels are
published once per change, a convoy's stop holds only its beads, an override lifts the stop
and keeps the warning, and a limit screen pauses its own account (never while working)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tundra_tui.daemon.brake import BrakePart, SessionView
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import AttentionEvent, Event
from tundra_tui.daemon.server import Daemon
from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.session.events import StateChanged, Trouble
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LIMIT_SCREEN = "done with #1\nClaude usage limit reached · resets in 2 minutes\ndemo❯"


@pytest.fixture
async def store(town_dir: Path) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path)
    try:
        yield opened
    finally:
        await opened.close()


class Part:
    """A brake part on the store, with what it published and every dispatch wake-up."""

    def __init__(self, town: Town, store: Store, log: DaemonLog) -> None:
        self.published: list[Event] = []
        self.woken: list[str] = []
        self.views: dict[str, SessionView] = {}
        self.now = NOW
        self.brake = BrakePart(
            store,
            town,
            self.published.append,
            log,
            lambda: self.now,
            self.woken.append,
            view=self.views.get,
        )

    def attention(self, kind: str) -> list[AttentionEvent]:
        return [e for e in self.published if isinstance(e, AttentionEvent) and e.kind == kind]


def config(town: Town, text: str) -> None:
    town.local_config_path.write_text(text)


async def spend(store: Store, key: str, usd: float, bead_id: int | None = None) -> None:
    at = iso(NOW - timedelta(hours=1))
    sample = UsageSample(at, "a", "demo", "demo-sonnet", bead_id, 10, 10, 0, 0, usd, key)
    await store.metrics.record([sample])


async def kinds(store: Store, prefix: str) -> list[str]:
    return [e.kind for e in await store.events.find(limit=200) if e.kind.startswith(prefix)]


async def test_warn_stop_and_resume_are_each_published_once(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    config(town, "[costs]\ndaily_budget_usd = 1.0\n")
    part = Part(town, store, log)
    await spend(store, "s1", 0.5)
    await part.brake.refresh()
    assert part.brake.state().level(iso(NOW)) == "ok"
    await spend(store, "s2", 0.35)  # 85%
    await part.brake.refresh()
    await part.brake.refresh()
    assert len(part.attention("budget warning")) == 1
    assert part.brake.state().town_stop(iso(NOW)) is None
    await spend(store, "s3", 0.2)  # 105%
    await part.brake.refresh()
    await part.brake.refresh()
    [stop] = part.attention("budget stop")
    assert stop.bell and stop.reason.startswith("budget: $1.05 of $1.00 today")
    assert "costs.daily_budget_usd" in (part.brake.state().town_stop(iso(NOW)) or "")
    assert [e.kind for e in part.brake.standing()] == ["budget stop"]
    config(town, "[costs]\ndaily_budget_usd = 2.0\n")  # the operator raises it
    woken = len(part.woken)
    await part.brake.refresh()
    await part.brake.refresh()
    assert part.brake.state().town_stop(iso(NOW)) is None
    assert len(part.woken) == woken + 1
    assert await kinds(store, "costs.") == ["costs.warn", "costs.stopped", "costs.resumed"]
    assert part.brake.standing() == []


async def test_a_spent_convoy_holds_only_its_own_beads(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    config(town, "[convoys.k]\nbudget_usd = 0.5\n[costs]\ndaily_budget_usd = 100.0\n")
    op = "operator"
    inside = await store.beads.add("in k", actor=op)
    outside = await store.beads.add("not in k", actor=op)
    convoy = await store.convoys.create("k", actor=op)
    await store.convoys.add("k", [inside.id], actor=op)
    await spend(store, "c1", 0.6, bead_id=inside.id)
    await spend(store, "c2", 5.0, bead_id=outside.id)  # not the convoy's
    part = Part(town, store, log)
    brake = await part.brake.refresh()
    now = iso(NOW)
    assert brake.town_stop(now) is None
    assert "convoys.k.budget_usd" in (brake.convoy_stop(convoy.id, now) or "")
    assert brake.convoy_stop(convoy.id + 1, now) is None
    assert [e.kind for e in part.published if isinstance(e, AttentionEvent)] == ["budget stop"]


async def test_an_override_lifts_the_stop_and_keeps_the_warning(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    config(town, "[costs]\ndaily_budget_usd = 1.0\n")
    await spend(store, "s1", 1.5)
    part = Part(town, store, log)
    await part.brake.refresh()
    assert part.brake.state().town_stop(iso(NOW)) is not None
    until = iso(NOW.replace(hour=23, minute=59))
    await store.usage.set_override(until, "release day", actor="operator")
    part.brake.on_events(await store.events.find(limit=5))  # as the tail hands it over
    await part.brake.refresh()
    brake = part.brake.state()
    assert brake.town_stop(iso(NOW)) is None
    assert brake.level(iso(NOW)) == "overridden"
    [standing] = part.brake.standing()
    assert standing.kind == "budget warning"
    assert "overridden until 23:59 UTC: release day" in standing.reason
    assert "costs.resumed" in await kinds(store, "costs.")


async def test_a_limit_screen_pauses_its_account_only(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    config(
        town,
        '[agents.a]\nruntime = "demo"\nrole = "crew"\naccount = "acct-a"\n'
        '[agents.b]\nruntime = "demo"\nrole = "crew"\naccount = "acct-b"\n'
        '[agents.c]\nruntime = "demo"\nrole = "crew"\naccount = "acct-c"\n',
    )
    await store.agents.sync_roster(
        [RosterEntry(n, Role.CREW, Runtime.DEMO) for n in "abc"], actor="operator"
    )
    part = Part(town, store, log)
    part.views["a"] = SessionView(AgentState.IDLE, "rate_limited", LIMIT_SCREEN, Runtime.DEMO)
    pause = await part.brake.pause("a")
    assert pause is not None and pause.account == "acct-a" and pause.reset_parsed
    left = parse_iso(pause.until) - NOW
    assert timedelta(minutes=1) < left <= timedelta(minutes=3)
    brake = part.brake.state()
    assert brake.paused("acct-a", iso(NOW)) is not None
    assert brake.paused("acct-b", iso(NOW)) is None
    assert [e.kind for e in part.brake.standing()] == ["rate limited"]
    assert part.attention("rate limited")[0].reason.startswith("rate limited: account acct-a")
    # No time on the screen: the default pause (costs.rate_limit_pause_seconds, 900 s).
    part.views["c"] = SessionView(AgentState.IDLE, "rate_limited", "rate limit", Runtime.DEMO)
    other = await part.brake.pause("c")
    assert other is not None and not other.reset_parsed
    assert parse_iso(other.until) - NOW == timedelta(seconds=900)
    assert "account.paused" in await kinds(store, "account.")


async def test_a_429_seen_while_working_does_not_pause(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    town = Town(town_dir)
    part = Part(town, store, log)
    code = "assert response.status == 429\n"
    part.views["a"] = SessionView(AgentState.WORKING, "rate_limited", code, Runtime.DEMO)
    part.brake.on_host(Trouble("a", "rate_limited", "assert response.status == 429"))
    part.brake.on_host(Trouble("a", "", ""))  # scrolled away while it worked
    part.views["a"] = SessionView(AgentState.IDLE, "", "demo❯", Runtime.DEMO)
    part.brake.on_host(StateChanged("a", AgentState.IDLE))
    await part.brake.drain()
    assert await store.usage.live_pauses(iso(NOW)) == []
    assert part.attention("rate limited") == []
    # The same screen seen while it is not working is a limit screen.
    part.views["a"] = SessionView(AgentState.IDLE, "rate_limited", LIMIT_SCREEN, Runtime.DEMO)
    part.brake.on_host(Trouble("a", "rate_limited", "usage limit reached"))
    await part.brake.drain()
    assert [p.account for p in await store.usage.live_pauses(iso(NOW))] == ["demo"]


async def test_a_429_still_in_code_when_the_turn_ends_does_not_pause(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    part = Part(Town(town_dir), store, log)
    diff = "+    assert resp.status_code == 429\n" + "".join(f"line {n}\n" for n in range(8))
    part.views["a"] = SessionView(AgentState.WORKING, "rate_limited", diff, Runtime.GEMINI)
    part.brake.on_host(Trouble("a", "rate_limited", "assert resp.status_code == 429"))
    screen = f"{diff}Turn done.\ndemo❯"  # the 429 is still shown, high on the screen
    part.views["a"] = SessionView(AgentState.IDLE, "rate_limited", screen, Runtime.GEMINI)
    part.brake.on_host(StateChanged("a", AgentState.IDLE))
    part.brake.on_host(Trouble("a", "rate_limited", "assert resp.status_code == 429"))
    await part.brake.drain()
    assert await store.usage.live_pauses(iso(NOW)) == []
    assert part.attention("rate limited") == []
    # The CLI's own message at the bottom of the same screen is a limit screen.
    limited = f"{diff}Quota exceeded: rate limit, retry in 2 minutes\ndemo❯"
    part.views["a"] = SessionView(AgentState.IDLE, "rate_limited", limited, Runtime.GEMINI)
    part.brake.on_host(StateChanged("a", AgentState.IDLE))
    await part.brake.drain()
    [pause] = await store.usage.live_pauses(iso(NOW))
    assert pause.shown.startswith("Quota exceeded") and pause.reset_parsed


async def test_a_pause_ends_at_its_time_and_only_a_new_limit_pauses_again(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    part = Part(Town(town_dir), store, log)
    part.views["a"] = SessionView(AgentState.IDLE, "rate_limited", LIMIT_SCREEN, Runtime.DEMO)
    part.brake.on_host(Trouble("a", "rate_limited", "usage limit reached"))
    await part.brake.drain()
    assert part.brake.state().paused("demo", iso(NOW)) is not None
    assert 0 < (part.brake.next_change() or 0) <= 150  # the dispatcher wakes then
    part.now = NOW + timedelta(minutes=3)
    woken = len(part.woken)
    await part.brake.refresh()
    assert part.brake.state().paused("demo", iso(part.now)) is None
    assert len(part.woken) == woken + 1
    assert "account.resumed" in await kinds(store, "account.")
    # Given work again, it stops with the same old limit line still shown: no new pause
    # (a stale "resets 3pm" would otherwise read as tomorrow, a 24 h pause).
    part.brake.on_host(StateChanged("a", AgentState.WORKING))
    part.brake.on_host(StateChanged("a", AgentState.IDLE))
    part.brake.on_host(Trouble("a", "rate_limited", "usage limit reached"))
    await part.brake.drain()
    assert part.brake.state().paused("demo", iso(part.now)) is None
    assert len(part.attention("rate limited")) == 1
    # A new limit message (another line) pauses again.
    again = "done with #2\nClaude usage limit reached · resets in 5 minutes\ndemo❯"
    part.views["a"] = SessionView(AgentState.IDLE, "rate_limited", again, Runtime.DEMO)
    part.brake.on_host(StateChanged("a", AgentState.WORKING))
    part.brake.on_host(StateChanged("a", AgentState.IDLE))
    await part.brake.drain()
    assert part.brake.state().paused("demo", iso(part.now)) is not None
    assert len(part.attention("rate limited")) == 2


async def test_a_lowered_budget_holds_before_dispatch_is_woken(
    town_dir: Path, store: Store, log: DaemonLog
) -> None:
    """`at config set costs.daily_budget_usd 1` with $5 spent: the dispatcher is woken only
    once the brake stops, so its very next pass claims nothing past the new budget."""
    town = Town(town_dir)
    now = datetime.now(UTC)
    sample = UsageSample(iso(now), "a", "demo", "demo-sonnet", None, 10, 10, 0, 0, 5.0, "s1")
    await store.metrics.record([sample])
    daemon = Daemon(town, store, log=log)
    await daemon.brake.refresh()
    assert daemon.brake.state().town_stop(iso(now)) is None
    config(town, "[costs]\ndaily_budget_usd = 1.0\n")
    daemon._config_changed()  # as the config watch calls it
    why = daemon.dispatcher._why
    deadline = asyncio.get_running_loop().time() + 10
    while "tundra.toml changed" not in why:
        assert asyncio.get_running_loop().time() < deadline, "dispatch was never woken"
        await asyncio.sleep(0)
    assert daemon.brake.state().town_stop(iso(now)) is not None
    await asyncio.gather(*daemon._tasks)
