""" "While you were away": what happened in the town between two instants, from its events.

The operator's job is attention: on coming back they want what finished, what failed,
what waited for them, what it cost and who needs a look. All of it is in the audit log
(plus the spend and the operator's unread mail), so the recap is a pure function of those
rows: the same store gives the same recap, and no model is asked anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tundra_tui.domain.costs import Cost
from tundra_tui.domain.events import Event
from tundra_tui.domain.mail import OPERATOR, Mail

MIN_AWAY_S = 60.0
"""A window shorter than this is no absence: nothing is recapped."""
LONGEST = timedelta(days=7)
"""The most a recap covers: after a longer absence, the last week (a month of a busy town's
log takes seconds to read, and is old news)."""

OUTCOMES = ("done", "failed", "escalated")
"""The bead statuses a recap lists (a bead's last move in the window decides)."""

DIED_STATES = frozenset({"failed", "lost"})
"""`agent.state` targets that mean the process ended abnormally (EXITED is a normal exit)."""

RESOLVED = {
    "approval.approved": "approved",
    "approval.denied": "denied",
    "approval.expired": "expired",
}
WAITING = "waiting"
"""An approval's outcome while nobody has answered it by the end of the window."""


@dataclass(frozen=True, slots=True)
class BeadItem:
    """A bead whose last move in the window took it to `status` (one of OUTCOMES)."""

    bead_id: int
    title: str
    status: str
    merged: bool = False
    """Done by the refinery's merge (the event carries the merged commit)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalItem:
    """A request opened in the window and how long it waited (until answered, or until
    the end of the window when it still waits)."""

    approval_id: int
    agent: str
    tool: str
    subject: str
    waited_s: float
    outcome: str
    """approved, denied, expired, or WAITING."""


@dataclass(frozen=True, slots=True)
class AgentItem:
    """An agent that crashed or died, stalled, or was stopped in the window."""

    agent: str
    crashes: int = 0
    died: bool = False
    """Left failed or lost (the supervisor gave up, or the process vanished)."""
    stalled: int = 0
    stopped_by: str = ""
    """Who stopped it ('' when nobody did)."""
    reason: str = ""

    @property
    def died_or_crashed(self) -> bool:
        return self.died or self.crashes > 0


@dataclass(frozen=True, slots=True)
class MailItem:
    """Unread mail to the operator that arrived in the window."""

    mail_id: int
    sender: str
    subject: str
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class Recap:
    """What happened in [since, until). Lists are complete; a view shows the first few."""

    since: str
    until: str
    done: tuple[BeadItem, ...] = ()
    failed: tuple[BeadItem, ...] = ()
    escalated: tuple[BeadItem, ...] = ()
    approvals: tuple[ApprovalItem, ...] = ()
    """Longest wait first."""
    spend: Cost = field(default_factory=lambda: Cost(0.0))
    agents: tuple[AgentItem, ...] = ()
    """Crashed or died first, then stalled, then stopped."""
    mail: tuple[MailItem, ...] = ()
    left: str = ""
    """When the operator left, if that was before `since` (the window was cut to LONGEST)."""

    @property
    def seconds(self) -> float:
        """How long the operator was away."""
        return span(self.since, self.until)

    @property
    def merged(self) -> int:
        """Done beads the refinery merged."""
        return sum(1 for item in self.done if item.merged)

    @property
    def still_waiting(self) -> int:
        return sum(1 for item in self.approvals if item.outcome == WAITING)

    @property
    def empty(self) -> bool:
        """Nothing worth saying: no outcome, request, spend, agent trouble or mail."""
        spent = self.spend.usd > 0 or not self.spend.complete
        lists = (self.done, self.failed, self.escalated, self.approvals, self.agents, self.mail)
        return not spent and not any(lists)


def span(since: str, until: str) -> float:
    """Seconds between two store timestamps (0 when either cannot be read). Read with
    `fromisoformat`, a hundred times faster than `parse_iso`'s strptime: a week away can
    hold thousands of requests."""
    try:
        later, earlier = datetime.fromisoformat(until), datetime.fromisoformat(since)
        return max((later - earlier).total_seconds(), 0.0)
    except (ValueError, TypeError):
        return 0.0


def worth_recapping(since: datetime | None, until: datetime) -> bool:
    """Whether an absence from `since` to `until` is long enough to recap."""
    return since is not None and (until - since).total_seconds() >= MIN_AWAY_S


def recap_start(since: datetime, until: datetime) -> datetime:
    """Where the recap of an absence from `since` starts: there, or LONGEST before `until`."""
    return max(since, until - LONGEST)


def bead_ids(events: Iterable[Event]) -> set[int]:
    """The beads whose titles a recap of these events needs."""
    return {e.bead_id for e in events if e.kind.startswith("bead.") and e.bead_id is not None}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _beads(events: list[Event], titles: Mapping[int, str]) -> dict[str, list[BeadItem]]:
    last: dict[int, Event] = {}
    for event in events:
        if event.kind.startswith("bead.") and event.bead_id is not None and "to" in event.data:
            last[event.bead_id] = event  # a later move (reopen, retry) replaces an outcome
    out: dict[str, list[BeadItem]] = {status: [] for status in OUTCOMES}
    for bead_id, event in sorted(last.items(), key=lambda item: item[1].id, reverse=True):
        status = _text(event.data.get("to"))
        if status in out:
            merged = status == "done" and bool(event.data.get("merged_commit"))
            reason = "" if status == "done" else _text(event.data.get("reason"))
            out[status].append(
                BeadItem(bead_id, titles.get(bead_id, ""), status, merged=merged, reason=reason)
            )
    return out


def _approvals(events: list[Event], until: str) -> list[ApprovalItem]:
    opened: dict[int, Event] = {}
    closed: dict[int, Event] = {}
    for event in events:
        approval_id = event.data.get("id")
        if not isinstance(approval_id, int):
            continue
        if event.kind == "approval.requested":
            opened.setdefault(approval_id, event)
        elif event.kind in RESOLVED:
            closed.setdefault(approval_id, event)
    items = []
    for approval_id, asked in opened.items():
        answer = closed.get(approval_id)
        outcome = RESOLVED[answer.kind] if answer is not None else WAITING
        waited = span(asked.at, answer.at if answer is not None else until)
        data = asked.data
        items.append(
            ApprovalItem(
                approval_id,
                asked.agent,
                _text(data.get("tool")),
                _text(data.get("subject")),
                waited,
                outcome,
            )
        )
    items.sort(key=lambda item: (-item.waited_s, item.approval_id))
    return items


@dataclass(slots=True)
class _Seen:
    crashes: int = 0
    died: bool = False
    stalled: int = 0
    stopped_by: str = ""
    reason: str = ""


def _agents(events: list[Event]) -> list[AgentItem]:
    found: dict[str, _Seen] = {}
    going_down = False
    for event in events:
        if event.kind in ("town.down", "town.up"):
            going_down = event.kind == "town.down"
        if not event.agent:
            continue
        data, kind = event.data, event.kind
        if going_down and kind == "agent.state" and data.get("to") == "stopped":
            continue  # `at down` stops every agent: the operator's doing, nothing to recap
        seen = found.get(event.agent) or _Seen()
        if kind == "agent.crashed":
            seen.crashes += 1
            seen.reason = _text(data.get("reason")) or seen.reason
        elif kind == "witness.agent_died" or (
            kind == "agent.state" and data.get("to") in DIED_STATES
        ):
            seen.died = True
        elif kind == "witness.stalled":
            seen.stalled += 1
            seen.reason = seen.reason or _text(data.get("reason"))
        elif kind == "agent.state" and data.get("to") == "stopped":
            seen.stopped_by = event.actor or "?"
        elif kind == "witness.agent_stopped":
            seen.stopped_by = seen.stopped_by or "?"
        else:
            continue
        found[event.agent] = seen
    items = [
        AgentItem(agent, s.crashes, s.died, s.stalled, s.stopped_by, s.reason)
        for agent, s in found.items()
    ]
    items.sort(key=lambda a: (not a.died_or_crashed, not a.stalled, a.agent))
    return items


def _mail(mail: Iterable[Mail], since: str, until: str) -> list[MailItem]:
    return [
        MailItem(m.id, m.sender, m.subject, m.urgent)
        for m in sorted(mail, key=lambda m: m.id)
        if m.recipient == OPERATOR and not m.is_read and since <= m.created_at < until
    ]


def build_recap(
    events: Iterable[Event],
    *,
    since: str,
    until: str,
    spend: Cost | None = None,
    titles: Mapping[int, str] | None = None,
    mail: Iterable[Mail] = (),
) -> Recap:
    """The recap of [since, until) from the events (any order; others are ignored), the
    spend in that window, bead titles by id, and mail (the operator's unread ones count)."""
    inside = sorted((e for e in events if since <= e.at < until), key=lambda e: e.id)
    beads = _beads(inside, titles or {})
    return Recap(
        since=since,
        until=until,
        done=tuple(beads["done"]),
        failed=tuple(beads["failed"]),
        escalated=tuple(beads["escalated"]),
        approvals=tuple(_approvals(inside, until)),
        spend=spend if spend is not None else Cost(0.0),
        agents=tuple(_agents(inside)),
        mail=tuple(_mail(mail, since, until)),
    )
