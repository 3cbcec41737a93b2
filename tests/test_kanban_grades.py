"""Completion grades on the board: which glyph a card earns, and convoy progress by grade."""

from __future__ import annotations

from dataclasses import replace

from tundra_tui.domain.beads import Bead, BeadStatus, Grade
from tundra_tui.domain.events import Event
from tundra_tui.domain.kanban import (
    GRADE_GLYPH,
    GRADE_LEGEND,
    HAND_DONE_GLYPH,
    MERGING_GLYPH,
    UNGATED_GLYPH,
    describe_event,
    grade_glyph,
)

BEAD = Bead(id=7, title="t", created_at="", updated_at="")


def bead(status: BeadStatus, grade: Grade = Grade.NONE, merged_commit: str = "") -> Bead:
    return replace(BEAD, status=status, grade=grade, merged_commit=merged_commit)


def test_a_card_shows_no_more_evidence_than_it_has() -> None:
    assert grade_glyph(bead(BeadStatus.BACKLOG)) == ""
    assert grade_glyph(bead(BeadStatus.SLUNG)) == ""
    assert grade_glyph(bead(BeadStatus.REVIEW, Grade.SUBMITTED)) == GRADE_GLYPH[Grade.SUBMITTED]
    assert grade_glyph(bead(BeadStatus.REVIEW, Grade.VERIFIED)) == GRADE_GLYPH[Grade.VERIFIED]
    merged = bead(BeadStatus.DONE, Grade.MERGED, "abc")
    assert grade_glyph(merged) == GRADE_GLYPH[Grade.MERGED] == "●"
    assert grade_glyph(merged, ungated=True) == UNGATED_GLYPH
    # Done by the operator's hand: whatever the grade says, no merged commit, no ●.
    assert grade_glyph(bead(BeadStatus.DONE, Grade.SUBMITTED)) == HAND_DONE_GLYPH
    assert grade_glyph(bead(BeadStatus.DONE, Grade.NONE)) == HAND_DONE_GLYPH
    # The refinery's current bead, and only while it is in review.
    review = bead(BeadStatus.REVIEW, Grade.SUBMITTED)
    assert grade_glyph(review, merging=True) == MERGING_GLYPH
    assert grade_glyph(merged, merging=True) == GRADE_GLYPH[Grade.MERGED]
    # An escalated bead keeps what its agent said.
    escalated = bead(BeadStatus.ESCALATED, Grade.SUBMITTED)
    assert grade_glyph(escalated) == GRADE_GLYPH[Grade.SUBMITTED]


def test_the_legend_names_every_completion_glyph() -> None:
    for glyph in (*GRADE_GLYPH.values(), UNGATED_GLYPH, HAND_DONE_GLYPH, MERGING_GLYPH):
        assert glyph in GRADE_LEGEND
    assert len(set(GRADE_GLYPH.values()) | {UNGATED_GLYPH, HAND_DONE_GLYPH, MERGING_GLYPH}) == 6


def test_a_beads_history_reads_other_families_as_the_feed_does() -> None:
    merged = Event(
        id=1,
        at="t",
        actor="refinery",
        kind="refinery.merged",
        data={"result": "3f2a1bc9d0", "target": "refs/heads/main"},
        bead_id=7,
    )
    assert describe_event(merged) == "merged #7 into main as 3f2a1bc"
    claimed = Event(
        id=2, at="t", actor="daemon", kind="dispatch.claimed", data={}, bead_id=7, agent="p1"
    )
    assert describe_event(claimed) == "dispatched #7 to p1"
