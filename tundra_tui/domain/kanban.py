"""The kanban board's rules, apart from any screen.

Which column a bead sits in, what a filter matches, where the cursor lands after the
board changes, how a title is cut to fit a card, and how changing a bead's assignee
maps onto legal moves of the state machine. The Beads tab only draws what this says.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from tundra_tui.domain.activity import summarize
from tundra_tui.domain.beads import (
    PRIORITY_DEFAULT,
    Action,
    Bead,
    BeadStatus,
    Grade,
    Lane,
    format_bead_id,
)
from tundra_tui.domain.costs import Cost
from tundra_tui.domain.errors import IllegalTransition
from tundra_tui.domain.events import Event

BLOCKED_GLYPH = "⊘"
"""Marks a card whose bead waits on an unfinished blocker."""
STATUS_GLYPH: Mapping[BeadStatus, str] = {BeadStatus.FAILED: "✗", BeadStatus.ESCALATED: "⚑"}
"""Tells failed from escalated cards, which share the board's last column."""
ELLIPSIS = "…"

GRADE_GLYPH: Mapping[Grade, str] = {
    Grade.SUBMITTED: "◔",
    Grade.VERIFIED: "◑",
    Grade.MERGED: "●",
}
"""How much evidence a card's completion has: its agent submitted it, the refinery's gates
passed on the merged result, or the target holds it."""
UNGATED_GLYPH = "○"
"""Merged by the refinery with no gates run (the town set `refinery.gates = []`)."""
HAND_DONE_GLYPH = "◌"
"""Done, but not merged by the refinery: the operator closed it by hand."""
MERGING_GLYPH = "⟳"
"""The Review card the refinery is merging right now."""

LEGEND = (
    f"{Lane.CRITICAL.glyph} critical  {Lane.STANDARD.glyph} standard  "
    f"{Lane.EXPERIMENTAL.glyph} experimental  P0 most urgent … P4  {BLOCKED_GLYPH} blocked  "
    f"{STATUS_GLYPH[BeadStatus.FAILED]} failed  {STATUS_GLYPH[BeadStatus.ESCALATED]} escalated"
)
"""What the glyphs on a card mean, for the pane header and help."""
GRADE_LEGEND = (
    f"{GRADE_GLYPH[Grade.SUBMITTED]} submitted  {GRADE_GLYPH[Grade.VERIFIED]} verified  "
    f"{GRADE_GLYPH[Grade.MERGED]} merged  {UNGATED_GLYPH} merged, no gates  "
    f"{HAND_DONE_GLYPH} done by hand  {MERGING_GLYPH} merging"
)
"""What the completion glyphs mean (help, and the header when it is wide enough)."""


def cost_label(cost: Cost | None) -> str:
    """A card's spend: `$0.42`, `$?` (only unpriced usage) or `$0.42+?` (some unpriced);
    nothing for a bead with no usage on record. Unpriced usage is never shown as $0."""
    if cost is None or (cost.usd <= 0 and cost.complete):
        return ""
    if cost.usd <= 0:
        return "$?"
    amount = f"${cost.usd:.2f}" if cost.usd < 100 else f"${cost.usd:,.0f}"
    return amount if cost.complete else f"{amount}+?"


def grade_glyph(bead: Bead, *, merging: bool = False, ungated: bool = False) -> str:
    """The completion glyph for a card ("" for none): its evidence, never more than it has.

    A Done card the refinery did not merge (no `merged_commit`) is done by hand, whatever
    its grade says; a merged one that ran no gates says so. `merging` marks the Review
    card the refinery is working on.
    """
    if bead.status is BeadStatus.REVIEW and merging:
        return MERGING_GLYPH
    if bead.status is BeadStatus.DONE:
        if not bead.merged_commit:
            return HAND_DONE_GLYPH
        return UNGATED_GLYPH if ungated else GRADE_GLYPH[Grade.MERGED]
    return GRADE_GLYPH.get(bead.grade, "")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One board column: its titles (full and narrow) and the statuses it holds."""

    title: str
    short: str
    statuses: tuple[BeadStatus, ...]


BOARD: tuple[ColumnSpec, ...] = (
    ColumnSpec("Backlog", "Backlog", (BeadStatus.BACKLOG,)),
    ColumnSpec("Hooked", "Hooked", (BeadStatus.HOOKED,)),
    ColumnSpec("Slung", "Slung", (BeadStatus.SLUNG,)),
    ColumnSpec("Review", "Review", (BeadStatus.REVIEW,)),
    ColumnSpec("Done", "Done", (BeadStatus.DONE,)),
    ColumnSpec("Failed/Escalated", "Failed/Esc", (BeadStatus.FAILED, BeadStatus.ESCALATED)),
)
"""The five kanban columns, then failed and escalated beads together beside them."""


class ColumnSource(Protocol):
    """What the store's `KanbanColumn` provides: a status, its full count and loaded beads."""

    @property
    def status(self) -> BeadStatus: ...
    @property
    def count(self) -> int: ...
    @property
    def beads(self) -> Sequence[Bead]: ...


@dataclass(frozen=True, slots=True)
class BoardColumn:
    """A column as drawn: `count` is every bead in it, `beads` those loaded and matching."""

    spec: ColumnSpec
    count: int
    beads: tuple[Bead, ...]
    loaded: int
    """How many beads were loaded before filtering (at most the store's per-column limit)."""
    filtered: bool = False
    """Whether a filter chose `beads` (headers then show matches over the count)."""


def build_board(sources: Iterable[ColumnSource], query: str = "") -> list[BoardColumn]:
    """Group the store's columns into the board's, keeping only beads that match `query`."""
    by_status = {source.status: source for source in sources}
    board = []
    for spec in BOARD:
        parts = [by_status[s] for s in spec.statuses if s in by_status]
        loaded = [bead for part in parts for bead in part.beads]
        board.append(
            BoardColumn(
                spec=spec,
                count=sum(part.count for part in parts),
                beads=tuple(bead for bead in loaded if matches(bead, query)),
                loaded=len(loaded),
                filtered=bool(query.split()),
            )
        )
    return board


def matches(bead: Bead, query: str) -> bool:
    """True if every word of `query` appears in the bead's id, title, assignee or lane."""
    words = query.casefold().split()
    if not words:
        return True
    haystack = f"{bead.ref} {bead.title} @{bead.assignee} {bead.lane.value}".casefold()
    return all(word in haystack for word in words)


def place_cursor(
    columns: Sequence[Sequence[int]], bead_id: int | None, column: int, row: int
) -> tuple[int, int]:
    """Where the cursor goes when the board changes under it.

    It follows `bead_id` wherever the bead went; if the bead is gone (or filtered out),
    it stays in the same column at the nearest row that still exists.
    """
    if bead_id is not None:
        for index, ids in enumerate(columns):
            if bead_id in ids:
                return index, list(ids).index(bead_id)
    if not columns:
        return 0, 0
    column = min(max(column, 0), len(columns) - 1)
    return column, min(max(row, 0), max(len(columns[column]) - 1, 0))


def cell_width(text: str) -> int:
    """Terminal cells `text` takes: wide East Asian characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def fit(text: str, width: int) -> str:
    """`text` cut to `width` cells, ending in an ellipsis when something was dropped."""
    if width <= 0:
        return ""
    if cell_width(text) <= width:
        return text
    out = ""
    for char in text:
        if cell_width(out + char) > width - 1:
            break
        out += char
    return out + ELLIPSIS


def wrap_words(text: str, width: int, max_lines: int) -> list[str]:
    """Wrap `text` on word boundaries into at most `max_lines` lines of `width` cells.

    When it does not fit, the last line ends in an ellipsis after the last whole word
    that fits; a word wider than a line is split across lines.
    """
    if width <= 0 or max_lines <= 0:
        return []
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if cell_width(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        chunks = _chunks(word, width)
        lines.extend(chunks[:-1])
        current = chunks[-1]
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    last = kept[-1]
    while " " in last and cell_width(last + ELLIPSIS) > width:
        last = last.rsplit(" ", 1)[0]
    # fit() keeps what fits of a single too-long word and still ends it in the ellipsis.
    kept[-1] = fit(last + ELLIPSIS, width)
    return kept


def _chunks(word: str, width: int) -> list[str]:
    """Split one word into pieces of at most `width` cells."""
    chunks = [""]
    for char in word:
        if chunks[-1] and cell_width(chunks[-1] + char) > width:
            chunks.append("")
        chunks[-1] += char
    return chunks


@dataclass(frozen=True, slots=True)
class BeadDraft:
    """What the bead form returns: the fields an operator may set directly."""

    title: str
    description: str = ""
    lane: Lane = Lane.STANDARD
    priority: int = PRIORITY_DEFAULT
    assignee: str = ""


class BeadEdits(TypedDict, total=False):
    """Keyword arguments for `BeadRepo.edit`: only the fields that change."""

    title: str
    description: str
    lane: Lane
    priority: int


def draft_edits(bead: Bead, draft: BeadDraft) -> BeadEdits:
    """The `BeadRepo.edit` arguments for the fields the draft changes (empty if none)."""
    changes: BeadEdits = {}
    if draft.title.strip() != bead.title:
        changes["title"] = draft.title
    if draft.description != bead.description:
        changes["description"] = draft.description
    if draft.lane is not bead.lane:
        changes["lane"] = draft.lane
    if draft.priority != bead.priority:
        changes["priority"] = draft.priority
    return changes


ASSIGNABLE = frozenset({BeadStatus.BACKLOG, BeadStatus.HOOKED, BeadStatus.ESCALATED})
"""Statuses in which the operator may pick or change the agent holding a bead."""


def reassignment(status: BeadStatus, current: str, wanted: str) -> list[tuple[Action, str]]:
    """The moves that give a bead in `status` the assignee `wanted` (agent "" for none).

    Picking an agent for an open bead hooks it; changing a hooked bead's agent unhooks
    then hooks; once slung the holder is fixed. Raises IllegalTransition saying why.
    """
    if wanted == current:
        return []
    if status is BeadStatus.HOOKED:
        unhook = (Action.UNHOOK, "")
        return [unhook, (Action.HOOK, wanted)] if wanted else [unhook]
    if status in (BeadStatus.BACKLOG, BeadStatus.ESCALATED) and wanted:
        return [(Action.HOOK, wanted)]
    if status is BeadStatus.ESCALATED:
        raise IllegalTransition("an escalated bead keeps its agent until it is reopened or hooked")
    raise IllegalTransition(f"the agent of a {status.value} bead cannot change")


def short_time(stamp: str) -> str:
    """`2026-11-20T14:02:07.000000Z` as `2026-11-20 14:02`; empty stays empty."""
    return stamp[:16].replace("T", " ")


def describe_event(event: Event) -> str:
    """One line for a bead's history: the verb, where it moved and for whom. Events of
    other families (dispatch, refinery, mail) read as the activity feed says them."""
    if not event.kind.startswith("bead."):
        return summarize(event)
    data = event.data
    kind = event.kind.removeprefix("bead.")
    parts = [kind]
    if "from" in data and "to" in data:
        parts.append(f"{data['from']} → {data['to']}")
    if kind == "edited":
        fields = sorted(data.get("after", {}))
        labels = [f"+{x}" for x in data.get("labels_added", [])]
        labels += [f"-{x}" for x in data.get("labels_removed", [])]
        parts.append(", ".join([*fields, *labels]) or "no change")
    if kind in ("blocked", "unblocked") and "blocker" in data:
        parts.append(f"by {format_bead_id(int(data['blocker']))}")
    if data.get("assignee"):
        parts.append(f"@{data['assignee']}")
    if data.get("reason"):
        parts.append(f"({data['reason']})")
    return " ".join(str(part) for part in parts)
