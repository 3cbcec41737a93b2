"""Convoys: named batches of beads that start together and report progress as one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tundra_tui.domain.beads import BeadStatus, Grade
from tundra_tui.domain.errors import IllegalTransition, TundraError

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


class ConvoyStatus(StrEnum):
    """A convoy is pending until started; its beads are held back from ready work until then."""

    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


_CONVOY_MOVES = {
    ("start", ConvoyStatus.PENDING): ConvoyStatus.ACTIVE,
    ("start", ConvoyStatus.PAUSED): ConvoyStatus.ACTIVE,
    ("pause", ConvoyStatus.ACTIVE): ConvoyStatus.PAUSED,
    ("complete", ConvoyStatus.ACTIVE): ConvoyStatus.COMPLETED,
    ("reopen", ConvoyStatus.COMPLETED): ConvoyStatus.ACTIVE,
}


def convoy_transition(status: ConvoyStatus, verb: str) -> ConvoyStatus:
    """Move a convoy by `verb` (start, pause, complete, reopen) or raise saying why not."""
    target = _CONVOY_MOVES.get((verb, status))
    if target is None:
        raise IllegalTransition(f"cannot {verb} a convoy that is {status.value}")
    return target


def validate_convoy_name(name: str) -> str:
    """Convoy names are used on the command line, so keep them to one safe word."""
    if not _NAME_RE.fullmatch(name):
        raise TundraError(
            f"invalid convoy name {name!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return name


@dataclass(frozen=True, slots=True)
class ConvoyProgress:
    """Counts of a convoy's beads; `fraction` is done over total (failed beads do not count).
    `submitted`, `verified` and `merged` count beads by their grade (the refinery's evidence):
    a done bead the operator closed by hand is done but not merged (and counts in none of
    them: submitted and verified count only beads not yet done)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    submitted: int = 0
    verified: int = 0
    merged: int = 0

    @property
    def fraction(self) -> float:
        """Share of beads done, 0.0 for an empty convoy."""
        return self.done / self.total if self.total else 0.0

    @property
    def percent(self) -> int:
        """Whole percent done, rounded down so 100 means every bead is done."""
        return (self.done * 100) // self.total if self.total else 0

    @property
    def is_complete(self) -> bool:
        """A convoy is complete when it has beads and all of them are done."""
        return self.total > 0 and self.done == self.total


def convoy_progress(rows: Iterable[tuple[BeadStatus, Grade] | BeadStatus]) -> ConvoyProgress:
    """Summarise the (status, grade) of a convoy's beads (a bare status has no grade)."""
    total = done = failed = in_flight = 0
    grades = dict.fromkeys(Grade, 0)
    for row in rows:
        status, grade = row if isinstance(row, tuple) else (row, Grade.NONE)
        if status is not BeadStatus.DONE or grade is Grade.MERGED:
            grades[grade] += 1
        total += 1
        if status is BeadStatus.DONE:
            done += 1
        elif status is BeadStatus.FAILED:
            failed += 1
        elif status in (BeadStatus.HOOKED, BeadStatus.SLUNG, BeadStatus.REVIEW):
            in_flight += 1
    return ConvoyProgress(
        total=total,
        done=done,
        failed=failed,
        in_flight=in_flight,
        submitted=grades[Grade.SUBMITTED],
        verified=grades[Grade.VERIFIED],
        merged=grades[Grade.MERGED],
    )


def grade_summary(progress: ConvoyProgress) -> str:
    """Progress by evidence: "3 merged · 1 verified · 1 in review / 6" ("" for no beads).
    Done beads without a merge (closed by hand) are counted as "done by hand"."""
    if not progress.total:
        return ""
    by_hand = max(0, progress.done - progress.merged)
    parts = [
        f"{n} {label}"
        for n, label in (
            (progress.merged, "merged"),
            (by_hand, "done by hand"),
            (progress.verified, "verified"),
            (progress.submitted, "in review"),
            (progress.failed, "failed"),
        )
        if n
    ]
    return f"{' · '.join(parts) or 'none finished'} / {progress.total}"


@dataclass(frozen=True, slots=True)
class Convoy:
    """A batch of beads with a status and the progress of its members."""

    id: int
    name: str
    status: ConvoyStatus = ConvoyStatus.PENDING
    description: str = ""
    created_at: str = ""
    started_at: str = ""
    completed_at: str = ""
    progress: ConvoyProgress = ConvoyProgress()
    bead_ids: tuple[int, ...] = ()
