"""The flight recorder's question: what does this agent's screen really show?

Opened from the Agents tab (`d`) when the state shown looks wrong. It names the agent,
the state detected and the rule that decided it, and takes the right state as one key;
the pane then asks the daemon to record the screen with that label (the daemon writes
every recording, so the TUI and `at detect --record` share one path). Everything shown
from the agent goes through the sanitizer, never markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tundra_tui.domain.sanitize import visible

MATCHED_CHARS = 120
"""Characters of the matched text shown (it is one line, from the agent's screen)."""
CHOICES = (
    ("i", "idle", "idle: at its prompt, waiting for a task"),
    ("w", "working", "working: busy on a turn"),
    ("a", "awaiting_approval", "awaiting approval: asking to run or change something"),
    ("u", "unknown", "unknown: none of these (a dialog, an error, a blank screen)"),
)
_CHANNELS = {"hook": "the agent's hook", "notify": "its notify report", "screen": "the screen"}


def decided_by(evidence: Mapping[str, Any]) -> str:
    """Which channel decided the state, and the versions its rule was written for."""
    source = str(evidence.get("source") or "")
    if not evidence.get("rule"):
        return "Decided by: nothing (no rule matched)"
    channel = _CHANNELS.get(source, visible(source, single_line=True, limit=20))
    versions = visible(str(evidence.get("versions") or ""), single_line=True, limit=60)
    return f"Decided by: {channel}" + (f", for {versions}" if versions else "")


class RecordModal(ModalScreen[str | None]):
    """Ask the right state for `agent`'s screen; dismisses with the label, None if cancelled."""

    DEFAULT_CSS = """
    RecordModal {
        align: center middle;
        background: $background 60%;
    }
    RecordModal > #record-dialog {
        width: 80%;
        max-width: 90;
        height: auto;
        border: round $accent;
        background: $panel;
        padding: 0 1;
    }
    RecordModal #record-title {
        text-style: bold;
        margin-bottom: 1;
    }
    RecordModal #record-choices {
        margin-top: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "choose('idle')", "Record as idle", id="record-idle"),
        Binding("w", "choose('working')", "Record as working", id="record-working"),
        Binding(
            "a", "choose('awaiting_approval')", "Record as awaiting approval", id="record-approval"
        ),
        Binding("u", "choose('unknown')", "Record as unknown", id="record-unknown"),
        Binding("escape", "choose(None)", "Cancel", id="record-cancel"),
    ]

    def __init__(self, agent: str, state: str, evidence: Mapping[str, Any]) -> None:
        super().__init__(classes="record-modal")
        self.agent = agent
        self.state = state
        self.evidence = dict(evidence)

    def compose(self) -> ComposeResult:
        name = visible(self.agent, single_line=True, limit=64)
        rule = visible(str(self.evidence.get("rule") or ""), single_line=True, limit=80)
        source = visible(str(self.evidence.get("source") or ""), single_line=True, limit=20)
        why = f" by {rule} ({source})" if rule else " (no evidence was reported)"
        matched = visible(
            str(self.evidence.get("matched") or ""), single_line=True, limit=MATCHED_CHARS
        )
        state = visible(self.state, single_line=True, limit=40)
        with Vertical(id="record-dialog"):
            yield Static(Content(f"Record {name}'s screen"), id="record-title")
            yield Static(Content(f"Detected: {state}{why}"), id="record-verdict")
            yield Static(Content(decided_by(self.evidence)), id="record-channel")
            if matched:
                yield Static(Content(f"Matched: {matched}"), id="record-matched")
            choices = "\n".join(f"{key}  {text}" for key, _, text in CHOICES)
            yield Static(
                Content(f"What does the screen really show?\n{choices}\nesc  cancel"),
                id="record-choices",
            )

    def action_choose(self, label: str | None) -> None:
        """Close with the operator's label (None: nothing is recorded)."""
        self.dismiss(label)
