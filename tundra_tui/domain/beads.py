"""Beads: units of work, their lanes and priorities, and the state machine they move through."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from tundra_tui.domain.errors import IllegalTransition, TundraError

MAX_TITLE = 500
MAX_DESCRIPTION = 64 * 1024
MAX_LABEL = 64
PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 0, 4, 2


class BeadStatus(StrEnum):
    """Where a bead is in its life. Failed and escalated sit beside the kanban's five columns."""

    BACKLOG = "backlog"
    HOOKED = "hooked"
    SLUNG = "slung"
    REVIEW = "review"
    DONE = "done"
    FAILED = "failed"
    ESCALATED = "escalated"

    @property
    def is_finished(self) -> bool:
        """Only a done bead unblocks the beads that depend on it."""
        return self is BeadStatus.DONE

    @property
    def is_open(self) -> bool:
        """Open beads still need work: neither done nor failed."""
        return self not in (BeadStatus.DONE, BeadStatus.FAILED)


KANBAN_COLUMNS: tuple[BeadStatus, ...] = (
    BeadStatus.BACKLOG,
    BeadStatus.HOOKED,
    BeadStatus.SLUNG,
    BeadStatus.REVIEW,
    BeadStatus.DONE,
)


class Lane(StrEnum):
    """Scheduling lanes; every critical bead is offered before any standard one."""

    CRITICAL = "critical"
    STANDARD = "standard"
    EXPERIMENTAL = "experimental"

    @property
    def rank(self) -> int:
        """Sort rank: lower runs first. The store's generated `lane_rank` column must agree."""
        return _LANE_RANK[self]

    @property
    def glyph(self) -> str:
        """A one-character lane marker for cards and tables."""
        return _LANE_GLYPH[self]


_LANE_RANK = {Lane.CRITICAL: 0, Lane.STANDARD: 1, Lane.EXPERIMENTAL: 2}
_LANE_GLYPH = {Lane.CRITICAL: "▲", Lane.STANDARD: "■", Lane.EXPERIMENTAL: "◇"}


class Action(StrEnum):
    """The verbs that move a bead. Each names one edge of the state machine."""

    HOOK = "hook"
    UNHOOK = "unhook"
    SLING = "sling"
    SUBMIT = "submit"
    DONE = "done"
    REWORK = "rework"
    FAIL = "fail"
    ESCALATE = "escalate"
    REOPEN = "reopen"
    RETURN = "return"
    """Give an unfinished bead back to backlog (a dispatch that did not take, a dead
    agent): the branch and notes stay, so the next agent picks up where it stopped."""
    RETRY = "retry"
    """Bring an escalated bead back to review so the refinery tries its merge again."""

    @property
    def phrase(self) -> str:
        """The verb as it reads in a sentence: "cannot mark done a backlog bead"."""
        return _PHRASES.get(self, self.value)


_PHRASES = {
    Action.DONE: "mark done",
    Action.FAIL: "mark failed",
    Action.SUBMIT: "submit for review",
    Action.REWORK: "send back for rework",
    Action.RETURN: "return to backlog",
    Action.RETRY: "retry the merge of",
}

_B, _H, _S, _R, _D, _F, _E = (
    BeadStatus.BACKLOG,
    BeadStatus.HOOKED,
    BeadStatus.SLUNG,
    BeadStatus.REVIEW,
    BeadStatus.DONE,
    BeadStatus.FAILED,
    BeadStatus.ESCALATED,
)

TRANSITIONS: Mapping[tuple[BeadStatus, Action], BeadStatus] = {
    (_B, Action.HOOK): _H,
    (_E, Action.HOOK): _H,
    (_H, Action.UNHOOK): _B,
    (_H, Action.SLING): _S,
    (_S, Action.SUBMIT): _R,
    (_S, Action.DONE): _D,
    (_R, Action.DONE): _D,
    (_R, Action.REWORK): _S,
    (_H, Action.FAIL): _F,
    (_S, Action.FAIL): _F,
    (_R, Action.FAIL): _F,
    (_B, Action.ESCALATE): _E,
    (_H, Action.ESCALATE): _E,
    (_S, Action.ESCALATE): _E,
    (_R, Action.ESCALATE): _E,
    (_D, Action.REOPEN): _B,
    (_F, Action.REOPEN): _B,
    (_E, Action.REOPEN): _B,
    (_S, Action.RETURN): _B,
    (_H, Action.RETURN): _B,
    (_R, Action.RETURN): _B,
    (_E, Action.RETRY): _R,
}
"""Every legal move. Anything absent is refused with a reason naming the legal verbs."""


class Grade(StrEnum):
    """How much evidence says a bead's work is finished: submitted by its agent, verified
    (the refinery's gates passed on the merged result), merged (the result is on the target).
    Empty when nothing was submitted, or the work went back to an agent."""

    NONE = ""
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    MERGED = "merged"


GRADE_AFTER: Mapping[Action, Grade] = {
    Action.SUBMIT: Grade.SUBMITTED,
    Action.RETRY: Grade.SUBMITTED,
    Action.HOOK: Grade.NONE,
    Action.UNHOOK: Grade.NONE,
    Action.REWORK: Grade.NONE,
    Action.RETURN: Grade.NONE,
    Action.REOPEN: Grade.NONE,
}
"""The grade a move leaves; an action absent here (done, escalate, fail, sling) keeps it.
Only the refinery (`MergeRepo`) sets verified and merged."""

ACTIONS_NEEDING_ASSIGNEE = frozenset({Action.HOOK})
ACTIONS_CLEARING_ASSIGNEE = frozenset({Action.UNHOOK, Action.REOPEN, Action.RETURN})


def allowed_actions(status: BeadStatus) -> list[Action]:
    """The verbs legal from `status`, in declaration order."""
    return [action for (src, action) in TRANSITIONS if src is status]


def transition(status: BeadStatus, action: Action) -> BeadStatus:
    """Apply `action` to a bead in `status`, or raise IllegalTransition saying why."""
    target = TRANSITIONS.get((status, action))
    if target is not None:
        return target
    legal = ", ".join(a.value for a in allowed_actions(status)) or "nothing"
    raise IllegalTransition(
        f"cannot {action.phrase} a bead that is {status.value} (from {status.value}: {legal})"
    )


def kanban_move(status: BeadStatus, step: int) -> Action:
    """The action that moves a card one kanban column left (-1) or right (+1).

    Only neighbouring columns joined by a legal edge qualify; failed and escalated
    cards leave the board through `reopen`, which lands them back in Backlog.
    """
    if status in (BeadStatus.FAILED, BeadStatus.ESCALATED) and step < 0:
        return Action.REOPEN
    if status not in KANBAN_COLUMNS:
        raise IllegalTransition(f"a {status.value} bead can only be reopened into backlog")
    index = KANBAN_COLUMNS.index(status) + step
    if not 0 <= index < len(KANBAN_COLUMNS):
        edge = "first" if index < 0 else "last"
        raise IllegalTransition(f"{status.value} is the {edge} column")
    target = KANBAN_COLUMNS[index]
    for (src, action), dst in TRANSITIONS.items():
        if src is status and dst is target:
            return action
    raise IllegalTransition(f"a bead cannot go from {status.value} to {target.value}")


def parse_status(value: str) -> BeadStatus:
    """Parse a status name, or raise listing the valid ones."""
    try:
        return BeadStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in BeadStatus)
        raise TundraError(f"unknown status {value!r}: expected one of {valid}") from None


def parse_lane(value: str) -> Lane:
    """Parse a lane name, or raise listing the valid ones."""
    try:
        return Lane(value)
    except ValueError:
        valid = ", ".join(lane.value for lane in Lane)
        raise TundraError(f"unknown lane {value!r}: expected one of {valid}") from None


_LINE_BREAKS = ("\n", "\r", "\u2028", "\u2029")


def validate_title(title: str) -> str:
    """Titles are one line of at most MAX_TITLE characters; surrounding blanks are dropped."""
    cleaned = title.strip()
    if not cleaned:
        raise TundraError("a bead needs a non-empty title")
    if any(mark in cleaned for mark in _LINE_BREAKS):
        raise TundraError("a title must be a single line (put detail in --description)")
    if len(cleaned) > MAX_TITLE:
        raise TundraError(f"title exceeds {MAX_TITLE} characters ({len(cleaned)})")
    return cleaned


def validate_description(text: str) -> str:
    """Descriptions may be long, but not unbounded."""
    if len(text) > MAX_DESCRIPTION:
        raise TundraError(f"description exceeds {MAX_DESCRIPTION} characters ({len(text)})")
    return text


def validate_priority(priority: int) -> int:
    """Priority 0 is the most urgent, as in P0."""
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise TundraError(
            f"priority must be between {PRIORITY_MIN} (most urgent) and {PRIORITY_MAX}, "
            f"got {priority}"
        )
    return priority


def validate_label(label: str) -> str:
    """Labels are short single words so they read well as tags."""
    cleaned = label.strip()
    if not cleaned or len(cleaned) > MAX_LABEL or any(c.isspace() for c in cleaned):
        raise TundraError(f"invalid label {label!r}: one word of at most {MAX_LABEL} characters")
    return cleaned


def parse_bead_id(text: str) -> int:
    """Accept `42`, `#42` or `bd-42` for bead 42."""
    raw = text.strip().removeprefix("#").removeprefix("bd-")
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:
        raise TundraError(f"invalid bead id {text!r}: expected a number such as 42 or #42")
    return int(raw)


def format_bead_id(bead_id: int) -> str:
    """The canonical display form of a bead id."""
    return f"#{bead_id}"


@dataclass(frozen=True, slots=True)
class Bead:
    """A unit of work. Timestamps are ISO-8601 UTC strings, empty until the event happens."""

    id: int
    title: str
    status: BeadStatus = BeadStatus.BACKLOG
    lane: Lane = Lane.STANDARD
    priority: int = PRIORITY_DEFAULT
    description: str = ""
    assignee: str = ""
    convoy_id: int | None = None
    branch: str = ""
    created_at: str = ""
    updated_at: str = ""
    hooked_at: str = ""
    slung_at: str = ""
    done_at: str = ""
    grade: Grade = Grade.NONE
    merged_commit: str = ""
    submitted_at: str = ""
    labels: tuple[str, ...] = ()
    blocked_by: tuple[int, ...] = field(default=())

    @property
    def ref(self) -> str:
        """The display id, e.g. `#42`."""
        return format_bead_id(self.id)


@dataclass(frozen=True, slots=True)
class BeadNote:
    """A note kept on a bead (by its agent or the operator): it survives hand-overs, so a
    re-dispatched bead's next agent reads what the last one learnt."""

    id: int
    bead_id: int
    author: str
    body: str
    created_at: str = ""


def ready_sort_key(bead: Bead) -> tuple[int, int, str, int]:
    """Ready work is offered by lane, then priority, then age (oldest first)."""
    return (bead.lane.rank, bead.priority, bead.created_at, bead.id)


def ready_work(
    beads: Iterable[Bead],
    *,
    active_convoys: frozenset[int] | None = None,
    limit: int | None = None,
) -> list[Bead]:
    """The reference definition of ready work, which the store's SQL must match.

    A bead is ready when it is in backlog, every bead that blocks it is done, and,
    if it belongs to a convoy, that convoy has been started.
    """
    by_id = {bead.id: bead for bead in beads}

    def unblocked(bead: Bead) -> bool:
        return all(
            blocker not in by_id or by_id[blocker].status.is_finished for blocker in bead.blocked_by
        )

    def convoy_open(bead: Bead) -> bool:
        return bead.convoy_id is None or (
            active_convoys is not None and bead.convoy_id in active_convoys
        )

    ready = sorted(
        (
            b
            for b in by_id.values()
            if b.status is BeadStatus.BACKLOG and unblocked(b) and convoy_open(b)
        ),
        key=ready_sort_key,
    )
    return ready if limit is None else ready[:limit]


def would_create_cycle(edges: Mapping[int, Iterable[int]], bead: int, blocker: int) -> bool:
    """True if making `blocker` block `bead` would close a loop.

    `edges` maps a bead to the beads that block it. A loop exists when `bead`
    already (transitively) blocks `blocker`, i.e. `blocker` can reach `bead`.
    """
    if bead == blocker:
        return True
    seen: set[int] = set()
    stack = [blocker]
    while stack:
        current = stack.pop()
        if current == bead:
            return True
        if current in seen:
            continue
        seen.add(current)
        stack.extend(edges.get(current, ()))
    return False
