"""Attribution reads only the spans a batch's samples overlap in time: a polecat name
reused for months has many old dispatches, and none of them is read for today's spend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_daemon_usage import answer, append

from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.usage import UsageWatcher, usage_dir
from tundra_tui.domain.agents import Role, Runtime
from tundra_tui.domain.beads import Action
from tundra_tui.domain.clock import iso
from tundra_tui.domain.dispatch import DispatchKind
from tundra_tui.store import RosterEntry, Store, open_store
from tundra_tui.town import Town

OLD = 40
"""Old dispatches of the same name, months before the spend."""
OP = "operator"


class Clock:
    """The store's clock, moved by hand (dispatches made months ago)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
async def store(town_dir: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(Town(town_dir).db_path, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


async def test_only_the_spans_overlapping_the_samples_are_read(
    town_dir: Path, store: Store, clock: Clock, log: DaemonLog
) -> None:
    town = Town(town_dir)
    await store.agents.sync_roster([RosterEntry("polecat-1", Role.POLECAT, Runtime.DEMO)], actor=OP)
    await store.flags.set_up(True, actor=OP)
    old = await store.beads.add("worked on for months", actor=OP)
    last = None
    for _ in range(OLD):
        last = await store.dispatches.claim(
            old.id, "polecat-1", kind=DispatchKind.POLECAT, actor=OP
        )
        assert last is not None
        clock.moment += timedelta(days=4)
        await store.dispatches.give_back(last.id, reason="returned", actor=OP)
    assert last is not None
    ended = clock.moment  # the last old dispatch closed now
    clock.moment += timedelta(minutes=10)
    new = await store.beads.add("today's", actor=OP)
    current = await store.dispatches.claim(new.id, "polecat-1", kind=DispatchKind.POLECAT, actor=OP)
    assert current is not None
    logs = usage_dir(town)
    # The turn that ran past the last old dispatch's end (grace), then today's bead.
    append(logs / "polecat-1.jsonl", answer("m1", at=iso(ended + timedelta(seconds=30))))
    append(logs / "polecat-1.jsonl", answer("m2", at=iso(clock.moment + timedelta(minutes=1))))
    watcher = UsageWatcher(town, store, [].append, log)
    assert await watcher.ingest()
    rows = await store.db.fetchall("SELECT source_key, bead_id, dispatch_id FROM metrics")
    got = {str(key).split(":")[1]: (bead, dispatch) for key, bead, dispatch in rows}
    assert got == {"m1": (old.id, last.id), "m2": (new.id, current.id)}
    # The last old dispatch (its end within the grace) and today's: not the other 39.
    assert watcher.spans.read == 2


async def test_a_hook_by_hand_lasts_past_a_note_until_the_bead_leaves_the_agent(
    town_dir: Path, store: Store, clock: Clock, log: DaemonLog
) -> None:
    """Hooked by hand, then a note (the agent's own `at bead note`): later spend is still
    the bead's; once unhooked (and past the grace), spend is no bead's."""
    town = Town(town_dir)
    await store.agents.sync_roster([RosterEntry("crew-1", Role.CREW, Runtime.DEMO)], actor=OP)
    bead = await store.beads.add("by hand", actor=OP)
    await store.beads.apply(bead.id, Action.HOOK, actor=OP, agent="crew-1")
    hooked = clock.moment
    clock.moment += timedelta(minutes=1)
    await store.notes.add(bead.id, "crew-1", "halfway there", actor="crew-1")
    clock.moment += timedelta(minutes=30)
    await store.beads.apply(bead.id, Action.UNHOOK, actor=OP)
    unhooked = clock.moment
    logs = usage_dir(town)
    append(logs / "crew-1.jsonl", answer("m1", at=iso(hooked + timedelta(seconds=10))))
    append(logs / "crew-1.jsonl", answer("m2", at=iso(hooked + timedelta(minutes=20))))
    append(logs / "crew-1.jsonl", answer("m3", at=iso(unhooked + timedelta(minutes=10))))
    watcher = UsageWatcher(town, store, [].append, log)
    assert await watcher.ingest()
    rows = await store.db.fetchall("SELECT source_key, bead_id FROM metrics")
    got = {str(key).split(":")[1]: bead_id for key, bead_id in rows}
    assert got == {"m1": bead.id, "m2": bead.id, "m3": None}
