"""The bead detail modal: every field, the description, dependencies and timeline, read-only."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tundra_tui.domain.beads import Bead, BeadStatus, Grade
from tundra_tui.domain.events import Event
from tundra_tui.domain.kanban import (
    HAND_DONE_GLYPH,
    UNGATED_GLYPH,
    describe_event,
    grade_glyph,
    short_time,
)
from tundra_tui.domain.refinery import GateResult, MergeAttempt, Outcome, ungated
from tundra_tui.domain.sanitize import visible
from tundra_tui.usage.analysis import compact_number
from tundra_tui.usage.reports import BeadCost

TAIL_LINES = 15
"""Lines of the last red gate's output shown (the whole log is a file)."""


@dataclass(frozen=True, slots=True)
class BeadFacts:
    """Everything the modal shows, read by the pane before it opens (attributes down)."""

    bead: Bead
    blockers: Sequence[Bead] = ()
    dependents: Sequence[Bead] = ()
    history: Sequence[Event] = ()
    attempts: Sequence[MergeAttempt] = ()
    """The refinery's merge attempts on this bead, oldest first, with their gates."""
    spend: BeadCost | None = None
    """What each attempt (dispatch or hook by hand) spent, and the kept and waste totals."""
    approvals: Sequence[Event] = ()
    """Approval events of the agents that held the bead, while they held it (they carry
    no bead of their own)."""


def _one(text: str) -> str:
    return visible(text, single_line=True)


def _fields(bead: Bead) -> Text:
    rows = [
        ("status", bead.status.value),
        ("lane", f"{bead.lane.glyph} {bead.lane.value}"),
        ("priority", f"P{bead.priority}"),
        ("assignee", f"@{_one(bead.assignee)}" if bead.assignee else "nobody"),
        ("convoy", f"#{bead.convoy_id}" if bead.convoy_id is not None else "none"),
        ("branch", _one(bead.branch) or "none"),
        ("labels", " ".join(_one(label) for label in bead.labels) or "none"),
        ("created", short_time(bead.created_at)),
        ("updated", short_time(bead.updated_at)),
        ("hooked", short_time(bead.hooked_at) or "-"),
        ("slung", short_time(bead.slung_at) or "-"),
        ("done", short_time(bead.done_at) or "-"),
    ]
    return Text("\n").join(Text.assemble((f"{name:<9}", "bold"), value) for name, value in rows)


def _beads(beads: Iterable[Bead], empty: str) -> Text:
    lines = [
        Text.assemble(
            (f"{bead.ref} ", "bold"),
            f"{bead.status.value:<9} ",
            _one(bead.title),
        )
        for bead in beads
    ]
    return Text("\n").join(lines) if lines else Text(empty)


def _sha(commit: str) -> str:
    return _one(commit)[:7]


_GRADE_WORDS = {
    Grade.NONE: "none: not submitted (or sent back for rework since)",
    Grade.SUBMITTED: "submitted: its agent says it is finished",
    Grade.VERIFIED: "verified: the gates passed on the merged result",
    Grade.MERGED: "merged: the target holds it",
}


def _grade(bead: Bead, attempts: Sequence[MergeAttempt]) -> Text:
    """The grade in words, with the evidence that earns it (or what it lacks)."""
    last_merged = next((a for a in reversed(attempts) if a.outcome is Outcome.MERGED), None)
    no_gates = last_merged is not None and ungated(last_merged)
    glyph = grade_glyph(bead, ungated=no_gates)
    if bead.status is BeadStatus.DONE and not bead.merged_commit:
        words = "done by hand: the refinery did not merge it"
        glyph = HAND_DONE_GLYPH
    else:
        words = _GRADE_WORDS.get(bead.grade, _one(bead.grade))
    line = Text.assemble((f"{'grade':<9}", "bold"), f"{glyph} {words}".lstrip())
    if bead.merged_commit:
        target = last_merged.target.removeprefix("refs/heads/") if last_merged else ""
        on = f" on {_one(target)}" if target else ""
        if no_gates:
            proof = f"{UNGATED_GLYPH} no gates (refinery.gates = [])"
        elif last_merged is not None:
            count = len(last_merged.gates)
            proof = f"after {count} gate{'' if count == 1 else 's'} passed on it"
        else:
            proof = ""
        line.append("\n")
        line.append_text(
            Text.assemble(
                (f"{'merged':<9}", "bold"), f"{_one(bead.merged_commit)}{on}  ", (proof, "dim")
            )
        )
    return line


def _gate(gate: GateResult) -> Text:
    if gate.ok is None:
        verdict, style = "…", "dim"
    elif gate.ok:
        verdict, style = "✓", "green"
    else:
        verdict, style = "✗", "red"
    if gate.timed_out:
        how = "timed out"
    elif gate.exit_code is not None and not gate.ok:
        how = f"exit {gate.exit_code}"
    else:
        how = ""
    took = f"{gate.seconds:.1f}s" if gate.ok is not None else "cut or running"
    return Text.assemble(
        "    ",
        (verdict, style),
        f" gate {gate.idx + 1}  ",
        (_one(gate.command), "bold"),
        f"  {took}",
        f"  {how}" if how else "",
    )


def _attempt(attempt: MergeAttempt) -> Text:
    outcome = attempt.outcome.value.replace("_", " ") if attempt.outcome else attempt.state.value
    head = Text.assemble(
        (f"#{attempt.n} ", "bold"),
        (outcome, "green" if attempt.outcome is Outcome.MERGED else ""),
        f"  {short_time(attempt.started_at)}",
        f"  by {_one(attempt.agent)}" if attempt.agent else "",
        f"  {attempt.strategy.value}",
    )
    if attempt.result_commit:
        head.append(f"  → {_sha(attempt.result_commit)}")
    if attempt.counted:
        head.append("  (counts)", "dim")
    lines = [head]
    # The reason, unless the gate or conflict lines below already say it.
    said = (attempt.outcome is Outcome.GATE_FAILED and attempt.gates) or (
        attempt.outcome is Outcome.CONFLICT and attempt.conflicts
    )
    if attempt.reason and not said:
        lines.append(Text(f"    {_one(attempt.reason)}"))
    if attempt.conflicts:
        shown = ", ".join(_one(path) for path in attempt.conflicts)
        lines.append(Text.assemble("    conflicts: ", (shown, "bold")))
    lines.extend(_gate(gate) for gate in attempt.gates)
    if not attempt.gates and attempt.outcome is Outcome.MERGED:
        lines.append(Text("    no gates (refinery.gates = [])", "dim"))
    return Text("\n").join(lines)


def _red_tail(attempts: Sequence[MergeAttempt]) -> Text | None:
    """The end of the last red gate's output, made visible (it is whatever the code printed)."""
    for attempt in reversed(attempts):
        for gate in reversed(attempt.gates):
            if gate.ok is False and gate.tail:
                lines = visible(gate.tail).rstrip("\n").split("\n")[-TAIL_LINES:]
                title = f"attempt #{attempt.n}, gate {gate.idx + 1}: {_one(gate.command)}"
                return Text(title, "bold") + Text("\n") + Text("\n".join(lines))
    return None


def _commits(attempts: Sequence[MergeAttempt]) -> Text:
    latest = next((a for a in reversed(attempts) if a.commits), None)
    if latest is None:
        return Text("none recorded")
    return Text("\n").join(
        Text.assemble((f"{_sha(sha)} ", "bold"), _one(subject)) for sha, subject in latest.commits
    )


def _completion(bead: Bead, attempts: Sequence[MergeAttempt]) -> Text:
    """The grade and its evidence: each attempt with its gates and result, the last red
    gate's output, and the commits on the branch."""
    parts = [_grade(bead, attempts)]
    if attempts:
        parts.append(Text("attempts", "bold"))
        parts.extend(_attempt(attempt) for attempt in attempts)
    else:
        parts.append(Text("no merge attempts", "dim"))
    if (tail := _red_tail(attempts)) is not None:
        parts.append(Text("last red gate", "bold"))
        parts.append(tail)
    if attempts:
        parts.append(Text("commits on the branch", "bold"))
        parts.append(_commits(attempts))
    return Text("\n").join(parts)


_VERDICT_STYLE = {"kept": "green", "waste": "red"}


def _spend(spend: BeadCost | None) -> Text:
    """Each attempt's tokens and cost with its verdict, then kept and waste (the same figures
    as `at cost bead N`)."""
    if spend is None or not spend.attempts:
        return Text("no usage on record for this bead", "dim")
    lines = []
    for attempt in spend.attempts:
        tokens = attempt.input + attempt.output + attempt.cache_read + attempt.cache_write
        ref = f"#{attempt.dispatch_id}" if attempt.dispatch_id is not None else "hook"
        lines.append(
            Text.assemble(
                (f"{ref:<6}", "bold"),
                f"{_one(attempt.agent)} ",
                (f"{attempt.role} " if attempt.role else "", "dim"),
                f"{short_time(attempt.start)}  ",
                (attempt.verdict.value, _VERDICT_STYLE.get(attempt.verdict.value, "")),
                f"  {compact_number(tokens)} tok  {attempt.cost.text()}",
            )
        )
    total = Text.assemble(
        ("kept ", "bold"),
        spend.kept.text(),
        ("   waste ", "bold"),
        spend.waste.text(),
    )
    if spend.open.usd or spend.open.unpriced_samples:
        total.append_text(Text.assemble(("   open ", "bold"), spend.open.text()))
    lines.append(total)
    return Text("\n").join(lines)


def _event_style(event: Event) -> str:
    """A gate's pass or fail, and a merge, in colour; every other step plain."""
    if event.kind == "refinery.gate":
        return "green" if event.data.get("ok") else "red"
    if event.kind == "refinery.merged":
        return "green"
    return ""


def _timeline(history: Iterable[Event], approvals: Iterable[Event], spend: BeadCost | None) -> Text:
    """Everything that happened to the bead, one line each with its time, newest last:
    its own events (dispatched, prompts, nudges, submits, gates, merge), the approvals its
    agents asked while they held it, and what each attempt spent (at the attempt's end)."""
    entries: list[tuple[str, int, Text]] = []
    for event in {e.id: e for e in [*history, *approvals]}.values():
        entries.append(
            (
                event.at,
                event.id,
                Text.assemble(
                    (f"{short_time(event.at)} ", "bold"),
                    f"{_one(event.actor)}: ",
                    (_one(describe_event(event)), _event_style(event)),
                ),
            )
        )
    for attempt in spend.attempts if spend is not None else ():
        if not attempt.cost.usd and attempt.cost.complete:
            continue
        at = attempt.end or max((e[0] for e in entries), default=attempt.start)
        so_far = "" if attempt.end else " so far"
        line = Text.assemble(
            (f"{short_time(at)} ", "bold"),
            f"cost: {_one(attempt.agent)} spent {attempt.cost.text()}{so_far} ",
            (f"({attempt.verdict.value})", _VERDICT_STYLE.get(attempt.verdict.value, "")),
        )
        entries.append((at, sys.maxsize, line))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return Text("\n").join(e[2] for e in entries) if entries else Text("no events")


class BeadDetail(ModalScreen[None]):
    """Read-only: changes go through the board's keys, so this modal cannot surprise anyone."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="bead-detail-close"),
        Binding("j", "scroll(1)", "Scroll down", id="bead-detail-down", show=False),
        Binding("k", "scroll(-1)", "Scroll up", id="bead-detail-up", show=False),
    ]

    def __init__(self, facts: BeadFacts) -> None:
        super().__init__()
        self.facts = facts

    def compose(self) -> ComposeResult:
        facts = self.facts
        bead = facts.bead
        with Vertical(id="bead-detail-box"):
            yield Static(
                Text.assemble((f"{bead.ref} ", "bold"), _one(bead.title)),
                id="bead-detail-title",
            )
            with VerticalScroll(id="bead-detail-body"):
                yield Static(_fields(bead), id="bead-detail-fields")
                yield Static(Text("Description"), classes="bead-detail-section")
                yield Static(
                    Text(visible(bead.description) or "no description"),
                    id="bead-detail-description",
                )
                yield Static(Text("Completion"), classes="bead-detail-section")
                yield Static(_completion(bead, facts.attempts), id="bead-detail-completion")
                yield Static(Text("Cost"), classes="bead-detail-section")
                yield Static(_spend(facts.spend), id="bead-detail-cost")
                yield Static(Text("Blocked by"), classes="bead-detail-section")
                yield Static(_beads(facts.blockers, "nothing"), id="bead-detail-blockers")
                yield Static(Text("Blocks"), classes="bead-detail-section")
                yield Static(_beads(facts.dependents, "nothing"), id="bead-detail-dependents")
                yield Static(Text("Timeline"), classes="bead-detail-section")
                yield Static(
                    _timeline(facts.history, facts.approvals, facts.spend),
                    id="bead-detail-history",
                )
            yield Static(Text("j/k scroll   Esc close"), id="bead-detail-keys")

    def on_mount(self) -> None:
        self.query_one("#bead-detail-body", VerticalScroll).focus()

    def action_scroll(self, lines: int) -> None:
        """Scroll the body by `lines`."""
        body = self.query_one("#bead-detail-body", VerticalScroll)
        body.scroll_relative(y=lines, animate=False)
