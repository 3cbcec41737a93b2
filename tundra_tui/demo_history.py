"""Two weeks of invented history for the demo town, written through the store's repositories.

Everything is placed relative to one moment and drawn from a fixed-seed RNG, so the same moment
gives the same database. Writes are queued with their simulated time and replayed in time
order with the store's clock set to each, so event ids follow time as in a real town, and
every change leaves the same events a real one would.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from tundra_tui.demo_story import (
    BEADS,
    COMMANDS,
    CONVOYS,
    DISPATCHED,
    HABITS,
    MAIL,
    OPERATOR,
    RISKY,
    WITNESS,
    StoryBead,
)
from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.approvals import ApprovalSource, ApprovalStatus
from tundra_tui.domain.beads import Action, BeadStatus
from tundra_tui.domain.clock import iso
from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store import RosterEntry, Store
from tundra_tui.town import Town
from tundra_tui.usage.pricing import price_for

HISTORY_DAYS = 13
"""Days of history before today (today is partly filled too, up to the moment)."""
SEED = 20261120
DAEMON = "daemon"
KPI_EVERY = timedelta(hours=3)
DEMO_PRICE_SOURCE = "auto-tundra demo table"
"""What priced the history's calls (the daemon names the same table for live demo calls)."""
BURN_HOURS = 3


class SimClock:
    """The store's clock while seeding: each write is stamped with the moment set here."""

    def __init__(self, now: datetime) -> None:
        self.start = now
        """The real moment the history leads up to."""
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class _Timeline:
    """Store writes at simulated moments, replayed in time order."""

    now: datetime
    ops: list[tuple[datetime, int, Callable[[], Awaitable[Any]]]] = field(default_factory=list)
    windows: list[tuple[datetime, datetime]] = field(init=False)
    """Weekday working hours (08-18 UTC) of the history up to now, latest first."""

    def __post_init__(self) -> None:
        today = _midnight(self.now)
        self.windows = []
        for back in range(HISTORY_DAYS + 1):
            day = today - timedelta(days=back)
            start, end = day + timedelta(hours=8), min(day + timedelta(hours=18), self.now)
            if day.weekday() < 5 and end > start:
                self.windows.append((start, end))

    def days_ago(self, days: float) -> datetime:
        """The story's `days` ago (of HISTORY_DAYS + 1) mapped onto working hours: order is kept
        and work happens at work, whatever the time of day the history ends at."""
        left = sum((end - start for start, end in self.windows), timedelta())
        left *= days / (HISTORY_DAYS + 1)
        for start, end in self.windows:
            if left <= end - start:
                return (end - left).replace(microsecond=0)
            left -= end - start
        return self.windows[-1][0]

    def at(self, when: datetime, op: Callable[[], Awaitable[Any]]) -> None:
        self.ops.append((min(when, self.now), len(self.ops), op))

    async def run(self, clock: SimClock) -> None:
        for when, _, op in sorted(self.ops, key=lambda entry: entry[:2]):
            clock.now = when
            await op()
        clock.now = self.now


async def seed_history(
    store: Store, town: Town, roster: list[RosterEntry], clock: SimClock
) -> None:
    """Fill an empty store with the demo town's past, ending at `clock.start`."""
    rng = random.Random(SEED)
    line = _Timeline(clock.start)
    models = {entry.name: entry.model for entry in roster}
    line.at(
        line.now - timedelta(days=HISTORY_DAYS + 1),
        partial(store.agents.sync_roster, roster, actor=OPERATOR),
    )
    bead_ids = _plan_beads(store, line)
    _plan_convoys(store, line, bead_ids)
    _plan_mail(store, line, bead_ids)
    roles = {entry.name: entry.role.value for entry in roster}
    samples: list[UsageSample] = []
    for name in models:
        samples += _plan_work(
            store, line, rng, name, models[name], roles[name], str(town.root), bead_ids
        )
    await store.metrics.record(samples)
    moment = line.now - timedelta(days=HISTORY_DAYS)
    while moment < line.now:
        line.at(moment, partial(_snapshot, store, moment))
        moment += KPI_EVERY
    await line.run(clock)


def _plan_beads(store: Store, line: _Timeline) -> dict[str, int]:
    """Queue every bead's creation and moves; ids follow creation time in a fresh store."""
    ordered = sorted(BEADS, key=lambda bead: -bead.created)
    ids = {bead.key: number for number, bead in enumerate(ordered, start=1)}
    for bead in ordered:
        line.at(line.days_ago(bead.created), partial(_create, store, bead, ids))
        for days, action in bead.steps:
            line.at(line.days_ago(days), partial(_move, store, bead, ids[bead.key], action))
    return ids


async def _create(store: Store, bead: StoryBead, ids: dict[str, int]) -> None:
    made = await store.beads.add(
        bead.title,
        actor=bead.by,
        lane=bead.lane,
        priority=bead.priority,
        labels=bead.labels,
        blocked_by=[ids[key] for key in bead.blocked_by],
    )
    if made.id != ids[bead.key]:
        raise RuntimeError(f"demo history expected bead #{ids[bead.key]}, got #{made.id}")


async def _move(store: Store, bead: StoryBead, bead_id: int, action: Action) -> None:
    """Who moves a bead is who could: dispatch hooks and slings to polecats and crew, the
    operator to anyone else; agents submit and fail; the operator closes or sends back a
    review; the witness escalates."""
    if action in (Action.HOOK, Action.SLING):
        actor = DAEMON if bead.assignee in DISPATCHED else OPERATOR
    elif action in (Action.DONE, Action.REWORK):
        actor = OPERATOR
    elif action is Action.ESCALATE:
        actor = WITNESS
    else:
        actor = bead.assignee
    reason = bead.reason if action in (Action.FAIL, Action.ESCALATE) else ""
    await store.beads.apply(bead_id, action, actor=actor, agent=bead.assignee, reason=reason)


def _plan_convoys(store: Store, line: _Timeline, ids: dict[str, int]) -> None:
    for name, description, created, members, started in CONVOYS:
        when = line.days_ago(created)
        line.at(when, partial(store.convoys.create, name, actor=OPERATOR, description=description))
        beads = [ids[key] for key in members]
        line.at(when, partial(store.convoys.add, name, beads, actor=OPERATOR))
        if started is not None:
            line.at(line.days_ago(started), partial(store.convoys.start, name, actor=OPERATOR))


def _plan_mail(store: Store, line: _Timeline, ids: dict[str, int]) -> None:
    """Queue the messages; `{key}` in a subject or body becomes that bead's `#id`."""
    refs = {key: f"#{number}" for key, number in ids.items()}
    for days, sender, recipient, subject_template, body_template, urgent, read in MAIL:
        subject, body = subject_template.format_map(refs), body_template.format_map(refs)
        sent = line.days_ago(days)
        cell: list[int] = []
        line.at(sent, partial(_send, store, cell, sender, recipient, subject, body, urgent))
        if read:
            line.at(sent + timedelta(minutes=25), partial(_read, store, cell, recipient))


async def _send(
    store: Store, cell: list[int], sender: str, to: str, subject: str, body: str, urgent: bool
) -> None:
    mail = await store.mail.send(sender, to, body, actor=sender, subject=subject, urgent=urgent)
    cell.append(mail.id)


async def _read(store: Store, cell: list[int], recipient: str) -> None:
    await store.mail.read(cell[0], actor=recipient)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _blocks(rng: random.Random, now: datetime) -> Iterator[list[tuple[datetime, datetime]]]:
    """Per day, the spells an agent works: several on weekdays, rarely one at a weekend."""
    today = _midnight(now)
    for back in range(HISTORY_DAYS, -1, -1):
        day = today - timedelta(days=back)
        weekday = day.weekday() < 5
        count = rng.randint(2, 4) if weekday else int(rng.random() < 0.3)
        hour = rng.uniform(8.0, 10.0)
        spells: list[tuple[datetime, datetime]] = []
        for _ in range(count):
            start = day + timedelta(hours=hour)
            end = start + timedelta(hours=rng.uniform(0.5, 2.5))
            hour += (end - start).total_seconds() / 3600 + rng.uniform(0.3, 1.5)
            end = min(end, now - timedelta(minutes=2))
            if end > start:
                spells.append((start, end))
        yield spells


def _plan_work(
    store: Store,
    line: _Timeline,
    rng: random.Random,
    agent: str,
    model: str,
    role: str,
    cwd: str,
    ids: dict[str, int],
) -> list[UsageSample]:
    """Queue an agent's state changes and approvals; return the model calls it made.

    Calls stop at midnight UTC: today's spend is the live demo's own, so the demo town's
    daily budget warns and stops on what you watch it spend. A model outside the demo
    price table (`demo-mystery`) is recorded unpriced, as the daemon records it."""
    habit = HABITS[agent]
    price, known = price_for(model)
    priced = known and model.startswith("demo-")
    today = _midnight(line.now)
    samples: list[UsageSample] = []
    state = partial(store.agents.set_state, agent, actor=DAEMON)
    for spells in _blocks(rng, line.now):
        for number, (start, end) in enumerate(spells):
            line.at(start, partial(state, AgentState.WORKING))
            if rng.random() < habit.approvals:
                _plan_approval(store, line, rng, agent, cwd, start + (end - start) / 2, end)
            when = start + timedelta(minutes=rng.uniform(1.0, 4.0))
            while when < min(end, today):
                tokens = (
                    rng.randint(50, 2500),
                    rng.randint(*habit.output),
                    rng.randint(300, 6000),
                    rng.randint(8_000, 90_000),
                )
                samples.append(
                    UsageSample(
                        at=iso(when),
                        agent=agent,
                        model=model,
                        runtime="demo",
                        bead_id=_held(agent, line.now - when, ids),
                        input_tokens=tokens[0],
                        output_tokens=tokens[1],
                        cache_write_tokens=tokens[2],
                        cache_read_tokens=tokens[3],
                        cost_usd=round(price.cost(*tokens), 8) if priced else 0.0,
                        source_key=f"demo:{agent}:{len(samples)}",
                        role=role,
                        priced=priced,
                        price_source=DEMO_PRICE_SOURCE if priced else "",
                    )
                )
                when += timedelta(minutes=rng.uniform(*habit.pace))
            line.at(end, partial(state, AgentState.IDLE))
            if number == len(spells) - 1:
                stop = min(end + timedelta(minutes=5), line.now - timedelta(seconds=30))
                line.at(stop, partial(state, AgentState.STOPPED))
    return samples


def _plan_approval(
    store: Store,
    line: _Timeline,
    rng: random.Random,
    agent: str,
    cwd: str,
    asked: datetime,
    end: datetime,
) -> None:
    """An approval prompt mid-spell, answered a few minutes later (risky commands denied)."""
    answered = asked + timedelta(minutes=rng.uniform(0.5, 8.0))
    if answered >= end:
        return
    subject = RISKY if rng.random() < 0.15 else rng.choice(COMMANDS)
    answer = ApprovalStatus.DENIED if subject == RISKY else ApprovalStatus.APPROVED
    cell: list[int] = []
    state = partial(store.agents.set_state, agent, actor=DAEMON)
    line.at(asked, partial(state, AgentState.AWAITING_APPROVAL))
    line.at(asked, partial(_ask, store, cell, agent, subject, cwd))
    line.at(answered, partial(_answer, store, cell, answer))
    line.at(answered, partial(state, AgentState.WORKING))


async def _ask(store: Store, cell: list[int], agent: str, subject: str, cwd: str) -> None:
    approval = await store.approvals.request(
        agent=agent,
        runtime="demo",
        subject=subject,
        source=ApprovalSource.SCREEN,
        actor=DAEMON,
        tool="Bash",
        cwd=cwd,
    )
    cell.append(approval.id)


async def _answer(store: Store, cell: list[int], answer: ApprovalStatus) -> None:
    await store.approvals.decide(cell[0], answer, actor=OPERATOR)


def _held(agent: str, ago: timedelta, ids: dict[str, int]) -> int | None:
    """The bead `agent` was working on `ago` before now, if any (the latest one hooked)."""
    days = ago.total_seconds() / 86400
    held: int | None = None
    for bead in BEADS:
        if bead.assignee != agent or not bead.steps:
            continue
        began = bead.steps[0][0]
        finished = bead.steps[-1][0] if bead.steps[-1][1] in _FINAL else 0.0
        if finished <= days <= began:
            held = ids[bead.key]
    return held


_FINAL = frozenset({Action.DONE, Action.FAIL, Action.ESCALATE})
_ACTIVE = (BeadStatus.HOOKED, BeadStatus.SLUNG, BeadStatus.REVIEW)


async def _snapshot(store: Store, moment: datetime) -> None:
    """A KPI snapshot as the daemon takes them, from what the store holds at `moment`."""
    counts = await store.beads.counts()
    states = [agent.state for agent in await store.agents.all()]
    convoys = await store.convoys.all()
    midnight = iso(_midnight(moment))
    until = iso(moment)
    days = await store.metrics.rollup("day", since=midnight, until=until)
    window = iso(moment - KPI_EVERY)
    recent = iso(moment - timedelta(hours=BURN_HOURS))
    burn = await store.metrics.total_cost(since=recent, until=until) / BURN_HOURS
    finished = await store.beads.finished_since(window)
    by_state = {state.value: states.count(state) for state in set(states)}
    await store.metrics.snapshot(
        KpiSnapshot(
            at=until,
            beads_active=sum(counts[s] for s in _ACTIVE),
            beads_done=counts[BeadStatus.DONE],
            beads_failed=counts[BeadStatus.FAILED],
            agents_active=states.count(AgentState.WORKING),
            agents_idle=states.count(AgentState.IDLE),
            agents_awaiting=states.count(AgentState.AWAITING_APPROVAL),
            convoys_active=sum(1 for c in convoys if c.status.value == "active"),
            cost_today_usd=round(await store.metrics.total_cost(since=midnight, until=until), 6),
            tokens_today=sum(row.input_tokens + row.output_tokens for row in days),
            window_seconds=int(KPI_EVERY.total_seconds()),
            done_window=sum(1 for stamp, _ in finished if stamp < until),
            agents_by_state=by_state,
            burn_usd_hour=round(burn, 6),
        )
    )
