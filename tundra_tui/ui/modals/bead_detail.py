"""The bead detail modal: every field, the description, dependencies and history, read-only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tundra_tui.domain.beads import Bead
from tundra_tui.domain.events import Event
from tundra_tui.domain.kanban import describe_event, short_time
from tundra_tui.domain.sanitize import visible


@dataclass(frozen=True, slots=True)
class BeadFacts:
    """Everything the modal shows, read by the pane before it opens (attributes down)."""

    bead: Bead
    blockers: Sequence[Bead] = ()
    dependents: Sequence[Bead] = ()
    history: Sequence[Event] = ()


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


def _history(events: Iterable[Event]) -> Text:
    lines = [
        Text.assemble(
            (f"{short_time(event.at)} ", "bold"),
            f"{_one(event.actor)}: ",
            _one(describe_event(event)),
        )
        for event in events
    ]
    return Text("\n").join(lines) if lines else Text("no events")


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
                yield Static(Text("Blocked by"), classes="bead-detail-section")
                yield Static(_beads(facts.blockers, "nothing"), id="bead-detail-blockers")
                yield Static(Text("Blocks"), classes="bead-detail-section")
                yield Static(_beads(facts.dependents, "nothing"), id="bead-detail-dependents")
                yield Static(Text("History"), classes="bead-detail-section")
                yield Static(_history(facts.history), id="bead-detail-history")
            yield Static(Text("j/k scroll   Esc close"), id="bead-detail-keys")

    def on_mount(self) -> None:
        self.query_one("#bead-detail-body", VerticalScroll).focus()

    def action_scroll(self, lines: int) -> None:
        """Scroll the body by `lines`."""
        body = self.query_one("#bead-detail-body", VerticalScroll)
        body.scroll_relative(y=lines, animate=False)
