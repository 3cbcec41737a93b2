"""The refinery's pure rules: rework or escalate, by mail or through backlog, and what the
rework mail says.

Kept apart from the daemon so the rules read (and test) in one place without git, a store
or a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tundra_tui.domain.handover import rework_subject
from tundra_tui.domain.refinery import COUNTED, MAIL_TAIL_CHARS, GateResult, Outcome
from tundra_tui.domain.sanitize import visible

MAX_BODY_CHARS = 1200
"""A rework mail is typed into the agent's terminal: long enough for the gate's last lines,
short enough to read at a glance."""
_MAX_PATHS = 20


def decide(
    outcome: Outcome, counted_before: int, max_attempts: int
) -> Literal["rework", "escalate"]:
    """Escalate once this counted attempt reaches `max_attempts`, else send it back."""
    if outcome not in COUNTED:
        raise ValueError(f"{outcome!r} is not a counted outcome")
    return "escalate" if counted_before + 1 >= max(1, max_attempts) else "rework"


def rework_path(live: bool, free: bool, worktree_on_branch: bool) -> Literal["mail", "backlog"]:
    """Mail (path A) only to an agent that runs, holds no other work and still sits in the
    worktree with the bead's branch; anyone else gets it through backlog (path B)."""
    return "mail" if live and free and worktree_on_branch else "backlog"


def rework_kind(outcome: Outcome) -> Literal["conflict", "gate"]:
    """The rework kind a counted outcome gives (the mail subject's last word)."""
    if outcome is Outcome.CONFLICT:
        return "conflict"
    if outcome is Outcome.GATE_FAILED:
        return "gate"
    raise ValueError(f"{outcome!r} is not a counted outcome")


def rework_body(
    kind: str,
    *,
    bead_id: int,
    branch: str,
    target: str,
    conflicts: Sequence[str] = (),
    gate: GateResult | None = None,
    detail: str = "",
) -> str:
    """The rework mail (and backlog note): its first line is the rework subject, then what
    went wrong, then what to do. At most MAX_BODY_CHARS; agent text is made visible.
    `detail` is git's message when it failed without listing conflicting paths."""
    target = target.removeprefix("refs/heads/")
    subject = rework_subject(bead_id, kind)
    todo = (
        f"Rebase it onto {target} (`git rebase {target}`), resolve, commit,"
        f" then `at submit {bead_id} -m WHAT`."
    )
    if kind == "conflict":
        shown = [visible(p, single_line=True, limit=120) for p in conflicts[:_MAX_PATHS]]
        more = f" and {len(conflicts) - _MAX_PATHS} more" if len(conflicts) > _MAX_PATHS else ""
        paths = ", ".join(shown) + more if shown else "(no paths listed)"
        what = f"Your branch {branch} conflicts with {target} in: {paths}."
        if not shown and detail:
            said = visible(detail, single_line=True, limit=300)
            what = f"Git could not bring your branch {branch} onto {target}: {said}."
        return _cap(f"{subject}\n{what}\n{todo}", "")
    if gate is None:
        raise ValueError("a gate rework needs the failing gate")
    command = visible(gate.command, single_line=True, limit=200)
    if gate.timed_out:
        verdict = f"timed out after {gate.seconds:.0f} s"
    else:
        verdict = f"exited {gate.exit_code} after {gate.seconds:.1f} s"
    head = (
        f"{subject}\nThe gate `{command}` {verdict} on your branch {branch}"
        f" rebased onto {target}. Fix it, then: {todo}\nLast output:"
    )
    tail = visible(gate.tail[-MAIL_TAIL_CHARS:], single_line=True)
    return _cap(head, tail)


def _cap(head: str, tail: str) -> str:
    """Keep the head whole and the end of the tail (the error is usually last)."""
    if not tail:
        return head[:MAX_BODY_CHARS]
    room = MAX_BODY_CHARS - len(head) - 1
    if room <= 1:
        return head[:MAX_BODY_CHARS]
    if len(tail) > room:
        tail = "…" + tail[-(room - 1) :]
    return f"{head}\n{tail}"
