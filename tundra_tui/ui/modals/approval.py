"""The approval modal: one pending request, answered y/n only once armed."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Static

from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.live import PendingApproval

SOURCES = {
    "hook": "reported by the agent's hook (structured request)",
    "screen": "read from the agent's screen (detected prompt)",
}


class ApprovalModal(ModalScreen[bool | None]):
    """Names the agent, shows the exact request with hidden characters made visible.

    It pops up by itself only while the operator is not typing (see `ui/popup_gate.py`).
    `y` and `n` do nothing until `arm_seconds` have passed, so keys typed for an agent
    just before the modal appeared cannot answer it. Escape decides later: the request
    stays pending (the inbox, `I`; Dashboard attention list, Agents tab). Dismisses with
    True (approve), False (deny) or None (later).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Approve", id="approval-yes"),
        Binding("n", "answer(False)", "Deny", id="approval-no"),
        Binding("escape", "later", "Later", id="approval-later"),
        Binding("I", "inbox", "Later, and open the inbox", id="approval-inbox"),
    ]

    def __init__(self, approval: PendingApproval, *, arm_seconds: float = 0.6) -> None:
        super().__init__()
        self.approval = approval
        self.arm_seconds = arm_seconds
        self.armed = arm_seconds <= 0
        self._arming: Timer | None = None

    def compose(self) -> ComposeResult:
        approval = self.approval
        with Vertical(id="approval-box"):
            yield Static(
                Text.assemble(
                    ("Approval requested by ", ""),
                    (visible(approval.agent, single_line=True), "bold"),
                ),
                id="approval-title",
            )
            tool = visible(approval.tool, single_line=True) or "action"
            yield Static(Text(f"tool: {tool}"), id="approval-tool")
            source = SOURCES.get(approval.source, visible(approval.source, single_line=True))
            yield Static(Text(f"from: {source}"), id="approval-source")
            with VerticalScroll(id="approval-subject-box"):
                yield Static(
                    Text(visible(approval.subject) or "(no detail given)"), id="approval-subject"
                )
            yield Static(self._keys_line(), id="approval-keys")

    def on_mount(self) -> None:
        if not self.armed:
            self._arming = self.set_timer(self.arm_seconds, self._arm)

    def show(self, approval: PendingApproval) -> None:
        """The same request, now in other words (the agent's hook reported the prompt the
        screen showed): show the new words and arm again, so a `y` meant for the old
        text cannot answer the new one."""
        if approval == self.approval:
            return
        self.approval = approval
        tool = visible(approval.tool, single_line=True) or "action"
        self.query_one("#approval-tool", Static).update(Text(f"tool: {tool}"))
        source = SOURCES.get(approval.source, visible(approval.source, single_line=True))
        self.query_one("#approval-source", Static).update(Text(f"from: {source}"))
        self.query_one("#approval-subject", Static).update(
            Text(visible(approval.subject) or "(no detail given)")
        )
        if self.arm_seconds > 0:
            self.armed = False
            self.query_one("#approval-keys", Static).update(self._keys_line())
            self.refresh_bindings()
            if self._arming is not None:
                self._arming.stop()
            self._arming = self.set_timer(self.arm_seconds, self._arm)

    def _arm(self) -> None:
        self.armed = True
        self.query_one("#approval-keys", Static).update(self._keys_line())
        self.refresh_bindings()

    def _keys_line(self) -> Text:
        if self.armed:
            return Text.assemble(
                ("y", "bold"),
                " approve   ",
                ("n", "bold"),
                " deny   ",
                ("Esc", "bold"),
                " later (it waits in the inbox: ",
                ("I", "bold"),
                ")",
            )
        return Text(
            f"keys arm in {self.arm_seconds:g} s ...   Esc later (it waits in the inbox: I)"
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "answer":
            return self.armed
        return True

    def action_answer(self, approve: bool) -> None:
        if self.armed:
            self.dismiss(approve)

    def action_later(self) -> None:
        self.dismiss(None)

    def action_inbox(self) -> None:
        """Leave this one for later and see every waiting request in the inbox."""
        self.dismiss(None)
        self.app.call_later(self.app.run_action, "inbox")
