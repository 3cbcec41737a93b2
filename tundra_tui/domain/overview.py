"""The town at a glance: what the Dashboard's cards, agent list and attention list say.

Pure: the pane reads the store and the live model and hands the pieces in, so
every number and phrase here is unit tested without a terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tundra_tui.domain.agents import Agent, AgentState
from tundra_tui.domain.beads import BeadStatus
from tundra_tui.domain.context_window import context_percent
from tundra_tui.domain.convoys import Convoy, ConvoyStatus
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.domain.readout import change, money, tokens
from tundra_tui.domain.sanitize import visible

DOWN_STATES = (AgentState.QUEUED, AgentState.STOPPED, AgentState.EXITED, AgentState.FAILED)
_TROUBLED = (AgentState.FAILED, AgentState.LOST)
_SUBJECT_LIMIT = 120


class LiveStatus(Protocol):
    """What the daemon last said about one agent (the live model's AgentLive fits)."""

    state: AgentState
    trouble: str
    exit: str


class Waiting(Protocol):
    """A pending approval as the live model holds it."""

    @property
    def id(self) -> int: ...
    @property
    def agent(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def subject(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent with its current state: the daemon's word when connected, else the store's."""

    name: str
    state: AgentState
    runtime: str
    model: str = ""
    trouble: str = ""
    exit: str = ""
    context: float | None = None
    """Percent of the context window the latest call used; None when unknowable."""
    bead: int | None = None
    """The bead it holds (hooked or slung to it), if any."""
    cost: float | None = None
    """What it spent today (priced samples); None when it has no sample today."""


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """Something the operator should look at: a waiting approval or an agent in trouble."""

    glyph: str
    agent: str
    text: str
    approval_id: int | None = None


@dataclass(frozen=True, slots=True)
class CardText:
    """A KPI card: a headline value, lines beside and below it, and an optional bar."""

    value: str
    lines: tuple[str, ...] = ()
    progress: float | None = None


def agent_views(
    stored: Iterable[Agent],
    live: Mapping[str, LiveStatus],
    *,
    connected: bool,
    latest: Mapping[str, UsageSample] | None = None,
    beads: Mapping[str, int] | None = None,
    costs: Mapping[str, float] | None = None,
) -> list[AgentView]:
    """Merge the roster with the daemon's states (the store's last state when disconnected),
    each agent's held bead (`beads`: agent to bead id) and today's spend (`costs`)."""
    latest, beads, costs = latest or {}, beads or {}, costs or {}
    views = []
    for agent in stored:
        status = live.get(agent.name) if connected else None
        state = status.state if status is not None else agent.state
        exit_text = status.exit if status is not None else ""
        if not exit_text and agent.exit_status not in (None, 0) and not state.is_live:
            exit_text = f"exit {agent.exit_status}"
        views.append(
            AgentView(
                name=visible(agent.name, single_line=True),
                state=state,
                runtime=agent.runtime.value,
                model=visible(agent.model, single_line=True, limit=40),
                trouble=status.trouble if status is not None else "",
                exit=exit_text,
                context=context_percent(latest.get(agent.name), agent.model),
                bead=beads.get(agent.name),
                cost=costs.get(agent.name),
            )
        )
    return views


def active(views: Iterable[AgentView]) -> list[AgentView]:
    """Agents with a process running, awaiting approval first, then by name."""
    order = {AgentState.AWAITING_APPROVAL: 0, AgentState.WORKING: 1}
    running = [v for v in views if v.state.is_live]
    return sorted(running, key=lambda v: (order.get(v.state, 2), v.name))


def attention(approvals: Iterable[Waiting], views: Iterable[AgentView]) -> list[AttentionItem]:
    """Waiting approvals (oldest first), then failed, lost or troubled agents."""
    items = [
        AttentionItem(
            glyph=AgentState.AWAITING_APPROVAL.glyph,
            agent=visible(a.agent, single_line=True),
            text=visible(
                f"{a.tool}: {a.subject}" if a.tool else a.subject,
                single_line=True,
                limit=_SUBJECT_LIMIT,
            ),
            approval_id=a.id,
        )
        for a in sorted(approvals, key=lambda a: a.id)
    ]
    for view in views:
        bad_exit = view.state is AgentState.EXITED and view.exit not in ("", "exit 0")
        if view.state in _TROUBLED or bad_exit or view.trouble:
            detail = [view.state.value]
            if view.exit:
                detail.append(view.exit)
            if view.trouble:
                detail.append(f"trouble: {view.trouble}")
            text = visible(", ".join(detail), single_line=True)
            items.append(AttentionItem(glyph=view.state.glyph, agent=view.name, text=text))
    return items


def agent_card(views: Sequence[AgentView], *, wide: bool) -> CardText:
    """Agents by state: `@3 *1 !1 ?0`, and how many are down."""
    tally = Counter(view.state for view in views)
    glyphs = (
        AgentState.WORKING,
        AgentState.IDLE,
        AgentState.AWAITING_APPROVAL,
        AgentState.UNKNOWN,
    )
    down = {state: tally[state] for state in (*DOWN_STATES, AgentState.LOST) if tally[state]}
    down_total = sum(down.values())
    if wide:
        names = {AgentState.AWAITING_APPROVAL: "awaiting"}
        states = "  ".join(f"{s.glyph}{tally[s]} {names.get(s, s.value)}" for s in glyphs)
        parts = ", ".join(f"{n} {s.value}" for s, n in down.items())
        return CardText(
            str(len(views)),
            ("agents", states, f"{down_total} down: {parts}" if down else "none down"),
        )
    states = " ".join(f"{s.glyph}{tally[s]}" for s in glyphs)
    return CardText(str(len(views)), (states, f"{down_total} down" if down else "none down"))


def bead_card(counts: Mapping[BeadStatus, int], *, wide: bool) -> CardText:
    """Beads per status: every status when wide, grouped when narrow."""
    total = sum(counts.values())
    done = counts.get(BeadStatus.DONE, 0)
    if wide:
        first = (BeadStatus.BACKLOG, BeadStatus.HOOKED, BeadStatus.SLUNG, BeadStatus.REVIEW)
        last = (BeadStatus.DONE, BeadStatus.FAILED, BeadStatus.ESCALATED)
        return CardText(
            str(total),
            (
                f"beads  {done} done",
                "  ".join(f"{s.value} {counts.get(s, 0)}" for s in first),
                "  ".join(f"{s.value} {counts.get(s, 0)}" for s in last),
            ),
        )
    wip = sum(counts.get(s, 0) for s in (BeadStatus.HOOKED, BeadStatus.SLUNG, BeadStatus.REVIEW))
    bad = counts.get(BeadStatus.FAILED, 0) + counts.get(BeadStatus.ESCALATED, 0)
    todo = counts.get(BeadStatus.BACKLOG, 0)
    return CardText(str(total), (f"{done} done {bad} ✗", f"{todo} todo {wip} wip"))


def convoy_card(convoys: Sequence[Convoy], *, wide: bool) -> CardText:
    """Convoys with the share of their beads done, as a number and a bar."""
    total = sum(c.progress.total for c in convoys)
    done = sum(c.progress.done for c in convoys)
    fraction = done / total if total else 0.0
    share = f"{done * 100 // total}%" if total else "-"
    if wide:
        statuses = Counter(c.status for c in convoys)
        line = "  ".join(f"{statuses[s]} {s.value}" for s in ConvoyStatus)
        return CardText(
            str(len(convoys)),
            (f"convoys  {share} done ({done}/{total} beads)", line),
            fraction if total else None,
        )
    return CardText(str(len(convoys)), (f"{share} {done}/{total}",), fraction if total else None)


@dataclass(frozen=True, slots=True)
class Spend:
    """Dollars today so far, yesterday up to the same time, yesterday in all, and today's tokens."""

    today: float = 0.0
    yesterday_so_far: float = 0.0
    yesterday: float = 0.0
    tokens_today: int = 0


def cost_card(spend: Spend, clock: str, *, wide: bool) -> CardText:
    """Spend today against yesterday at the same time of day (`clock`, e.g. `14:30`)."""
    delta = change(spend.today, spend.yesterday_so_far)
    if wide:
        compared = (
            f"{delta} vs yesterday by {clock}"
            if spend.yesterday_so_far > 0
            else f"nothing spent yesterday by {clock}"
        )
        return CardText(
            money(spend.today),
            (
                f"today  {compared}",
                f"yesterday {money(spend.yesterday_so_far)} by {clock}, "
                f"{money(spend.yesterday)} all day",
                f"tokens today {tokens(spend.tokens_today)}",
            ),
        )
    return CardText(money(spend.today), (delta, f"vs {money(spend.yesterday_so_far)} yday"))
