"""The fan-out on its own: who gets which event, shown agents, and resync of a slow reader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tests.at_cli import until
from tundra_tui.daemon.fanout import FanOut, Subscriber
from tundra_tui.daemon.protocol import (
    Event,
    ScreenEvent,
    Snapshot,
    StateEvent,
    decode,
)


class Town:
    """Screens and shown-flags as the daemon would give them."""

    def __init__(self) -> None:
        self.shown: dict[str, bool] = {}
        self.glanced: dict[str, bool] = {}
        self.told = 0
        self.screens_built = 0

    def screen(self, agent: str, rows: Iterable[int] | None) -> ScreenEvent | None:
        self.screens_built += 1
        wanted = range(3) if rows is None else rows
        return ScreenEvent(
            agent=agent,
            rows={y: [(f"{agent}{y}", "", "", False, False, False, False)] for y in wanted},
            cursor=(0, 0),
            size=(10, 3),
            full=rows is None,
        )

    def snapshot(self, subscriber: Subscriber, resync: bool) -> list[Event]:
        return [
            Snapshot(resync=resync, agents=["a"]),
            StateEvent(agent="a", state="idle", glyph="○"),
        ]

    def fanout(self) -> FanOut:
        return FanOut(
            screen=self.screen,
            snapshot=self.snapshot,
            set_shown=self.set_shown,
        )

    def set_shown(self, agent: str, shown: bool, glance: bool) -> None:
        self.shown[agent] = shown
        self.glanced[agent] = glance
        self.told += 1


def drain(subscriber: Subscriber) -> list[Event]:
    events = []
    while not subscriber.queue.empty():
        line = subscriber.queue.get_nowait()
        if line:
            event = decode(line).ev
            assert event is not None
            events.append(event)
    return events


async def settle() -> None:
    """Let the frame timer (due at once: the frame budget is full) run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_screens_go_only_to_subscribers_that_show_the_agent() -> None:
    town = Town()
    fanout = town.fanout()
    watching, blind = Subscriber(agents=None, shown=frozenset({"a"})), Subscriber(agents=None)
    fanout.add(watching)
    fanout.add(blind)
    assert town.shown == {"a": True}
    built = town.screens_built  # the whole screen in `watching`'s first snapshot
    drain(watching)
    fanout.screen_changed("a", {1})
    fanout.screen_changed("b", {1})  # nobody shows b: not even built
    await settle()
    got = drain(watching)
    assert [type(e) for e in got] == [ScreenEvent] and got[0].agent == "a"  # type: ignore[attr-defined]
    assert drain(blind) == []
    assert town.screens_built == built + 1


async def test_a_newly_shown_agent_gets_a_whole_screen_then_deltas() -> None:
    town = Town()
    fanout = town.fanout()
    subscriber = Subscriber(agents=None)
    fanout.add(subscriber)
    fanout.show(subscriber, ["a"])
    await settle()
    first = drain(subscriber)
    assert len(first) == 1 and first[0].full  # type: ignore[attr-defined]
    fanout.screen_changed("a", {2})
    await settle()
    (delta,) = drain(subscriber)
    assert not delta.full and set(delta.rows) == {2}  # type: ignore[attr-defined]
    fanout.show(subscriber, [])
    assert town.shown == {"a": False}


async def test_events_are_encoded_once_for_every_subscriber() -> None:
    town = Town()
    fanout = town.fanout()
    subscribers = [Subscriber(agents=None) for _ in range(3)] + [Subscriber(agents=frozenset())]
    for subscriber in subscribers:
        fanout.add(subscriber)
    fanout.publish(StateEvent(agent="a", state="working", glyph="●"), "a")
    lines = [s.queue.get_nowait() for s in subscribers[:3]]
    assert lines[0] is lines[1] is lines[2]  # the same bytes object, made once
    assert subscribers[3].queue.empty()  # subscribed to no agent


async def test_a_subscriber_that_falls_behind_is_cut_to_a_fresh_snapshot() -> None:
    town = Town()
    fanout = town.fanout()
    slow = Subscriber(agents=None, depth=4, shown=frozenset({"a"}))
    fanout.add(slow)
    for index in range(20):
        fanout.publish(StateEvent(agent="a", state="working", glyph=str(index)), "a")
    assert fanout.resyncs == 1 and slow.behind
    written: list[bytes] = []

    async def drain_writes() -> None:
        return None

    pump = asyncio.ensure_future(fanout.pump(slow, written.append, drain_writes))
    await settle()
    pump.cancel()
    events = [decode(line).ev for line in written]
    assert isinstance(events[0], Snapshot) and events[0].resync
    assert any(isinstance(e, StateEvent) for e in events)
    assert any(isinstance(e, ScreenEvent) and e.full for e in events)
    assert not slow.behind


async def test_viewers_are_counted_across_subscribers() -> None:
    town = Town()
    fanout = town.fanout()
    one, two = Subscriber(agents=None), Subscriber(agents=None)
    fanout.add(one)
    fanout.add(two)
    fanout.show(one, ["a"])
    fanout.show(two, ["a", "b"])
    assert town.shown == {"a": True, "b": True}
    fanout.remove(two)
    assert town.shown == {"a": True, "b": False}
    fanout.remove(one)
    assert town.shown == {"a": False, "b": False}


async def test_an_agent_only_glanced_at_by_every_client_is_told_as_glanced() -> None:
    """A tile behind a grabbed one is glanced at; one client showing it fully outweighs any
    number that glance, and the host hears only of changes."""
    town = Town()
    fanout = town.fanout()
    one, two = Subscriber(agents=None), Subscriber(agents=None)
    fanout.add(one)
    fanout.add(two)
    fanout.show(one, ["a", "b"], glance=["a", "b", "elsewhere"])
    assert (town.shown, town.glanced) == ({"a": True, "b": True}, {"a": True, "b": True})
    fanout.show(two, ["a"])
    assert town.glanced == {"a": False, "b": True}
    told = town.told
    fanout.show(two, ["a"])  # nothing changed: nothing told
    assert town.told == told
    fanout.remove(two)
    assert town.glanced == {"a": True, "b": True}
    fanout.show(one, ["a", "b"])  # released: both watched again
    assert (town.shown, town.glanced) == ({"a": True, "b": True}, {"a": False, "b": False})
    fanout.remove(one)
    assert town.shown == {"a": False, "b": False}


async def test_a_frame_after_a_quiet_spell_is_written_without_waiting_for_the_loop() -> None:
    """A key's echo: its frame reaches an idle connection in the same callback; a stream
    of frames goes through the queue and is drained, in order."""
    town = Town()
    fanout = town.fanout()
    subscriber = Subscriber(agents=None, shown=frozenset({"a"}))
    fanout.add(subscriber)
    drain(subscriber)
    written: list[bytes] = []
    drains = 0

    async def drained() -> None:
        nonlocal drains
        drains += 1

    pump = asyncio.ensure_future(fanout.pump(subscriber, written.append, drained))
    try:
        await settle()
        assert subscriber.idle_write is not None
        fanout.screen_changed("a", {1})
        assert len(written) == 1, "written at once, not at the next loop turn"
        await settle()
        assert drains >= 1
        for row in (0, 1, 2, 0, 1, 2):
            fanout.screen_changed("a", {row})
            await settle()
        await until(lambda: len(written) >= 4, timeout=2.0)
        lines = [line for chunk in written for line in chunk.splitlines(keepends=True)]
        rows = [decode(line).ev.rows for line in lines]  # type: ignore[union-attr]
        assert all(line.endswith(b"\n") and line != b"\n" for line in lines)
        assert list(rows[0]) == [1]
    finally:
        pump.cancel()


async def test_events_published_together_go_out_in_one_write() -> None:
    """An approval and its agent's state are published in one callback: they reach the
    reader in one write, so it never sees one without the other (a contract test once
    read the approval alone, in a write of its own)."""
    town = Town()
    fanout = town.fanout()
    subscriber = Subscriber(agents=None, shown=frozenset())
    fanout.add(subscriber)
    drain(subscriber)
    written: list[bytes] = []

    async def drained() -> None:
        pass

    pump = asyncio.ensure_future(fanout.pump(subscriber, written.append, drained))
    try:
        await settle()
        fanout.publish(StateEvent(agent="a", state="awaiting_approval", glyph="!"), "a")
        fanout.publish(StateEvent(agent="b", state="idle", glyph="○"), "b")
        await until(lambda: bool(written), timeout=2.0)
        await settle()
        assert len(written) == 1
        events = [decode(line).ev for line in written[0].splitlines(keepends=True)]
        assert [(e.agent, e.state) for e in events] == [  # type: ignore[union-attr]
            ("a", "awaiting_approval"),
            ("b", "idle"),
        ]
    finally:
        pump.cancel()


async def test_an_agent_being_typed_into_skips_the_shared_frame_budget() -> None:
    """Once floods have spent the frame budget, a key's echo still goes out at once."""
    town = Town()
    fanout = town.fanout()
    subscriber = Subscriber(agents=None, shown=frozenset({"flood", "typed"}))
    fanout.add(subscriber)
    drain(subscriber)
    for row in range(5):  # the burst is spent; later frames wait for the bucket
        fanout.screen_changed("flood", {row})
    drain(subscriber)
    fanout.screen_changed("typed", {0})
    assert drain(subscriber) == [], "an ordinary change waits for the next frame"
    fanout.typed("typed")
    fanout.screen_changed("typed", {1})
    (echo,) = drain(subscriber)
    assert echo.agent == "typed" and set(echo.rows) == {0, 1}  # type: ignore[attr-defined]
    fanout.screen_changed("typed", {2})  # within 1/TYPED_RATE: the shared frame takes it
    assert drain(subscriber) == []
