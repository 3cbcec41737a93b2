"""The approval modal: one pending request, answered y/n only once armed; `A` always
allows its command for its agent, as the inbox's `A` does (never a deny-listed one)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Static

from tundra_tui.daemon.protocol import RuleAdd
from tundra_tui.domain.firewall import denied_shape
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.live import PendingApproval
from tundra_tui.ui.messages import DaemonRequest

SOURCES = {
    "hook": "reported by the agent's hook (structured request)",
    "screen": "read from the agent's screen (detected prompt)",
}


class ApprovalModal(ModalScreen[bool | None]):
    """Names the agent, shows the exact request with hidden characters made visible.

    It pops up by itself only while the operator is not typing (see `ui/popup_gate.py`).
    `y` and `n` do nothing until `arm_seconds` have passed, so keys typed for an agent
    just before the modal appeared cannot answer it. Escape decides later: the request
    stays pending (the inbox, `I`; Dashboard attention list, Agents tab). A deny-listed
    command is flagged ⚠ and cannot be always-allowed. Dismisses with True (approve),
    False (deny) or None (later, or always allowed: the daemon approves it with the rule).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Approve", id="approval-yes"),
        Binding("n", "answer(False)", "Deny", id="approval-no"),
        Binding("A", "always_allow", "Always allow for this agent", id="approval-always"),
        Binding("escape", "later", "Later", id="approval-later"),
        Binding("I", "inbox", "Later, and open the inbox", id="approval-inbox"),
    ]

    def __init__(
        self, approval: PendingApproval, *, arm_seconds: float = 0.6, actor: str = OPERATOR
    ) -> None:
        super().__init__()
        self.approval = approval
        self.actor = actor
        """Who a rule made here is recorded as (the control room's actor)."""
        self.confirming = False
        """`A` was pressed once: the keys line asks for a second `A`."""
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
            denied = Static(self._deny_line(), id="approval-denied")
            denied.display = bool(self.denied)
            yield denied
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
        denied = self.query_one("#approval-denied", Static)
        denied.update(self._deny_line())
        denied.display = bool(self.denied)
        self.confirming = False  # a question about the old words is not one about the new
        self.query_one("#approval-keys", Static).update(self._keys_line())
        self.refresh_bindings()
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

    @property
    def denied(self) -> str:
        """The deny-list's name for the command ("" if none): no rule may allow it."""
        return denied_shape(self.approval.subject)

    def _deny_line(self) -> Text:
        shape = self.denied
        return Text(f"⚠ deny-list: {shape} (never always-allowed)" if shape else "", "bold")

    def _keys_line(self) -> Text:
        if self.armed and self.confirming:
            who = visible(self.approval.agent, single_line=True, limit=24)
            return Text.assemble(
                f"Always allow this command for {who}?  ",
                ("A", "bold"),
                " yes, and approve it  ",
                ("Esc", "bold"),
                " back",
            )
        if self.armed:
            always = () if self.denied else (("A", "bold"), " always allow  ")
            return Text.assemble(
                ("y", "bold"),
                " approve  ",
                ("n", "bold"),
                " deny  ",
                *always,
                ("Esc", "bold"),
                " later  ",
                ("I", "bold"),
                " inbox",
            )
        return Text(
            f"keys arm in {self.arm_seconds:g} s ...   Esc later (it waits in the inbox: I)"
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("answer", "always_allow"):
            return self.armed
        return True

    def action_answer(self, approve: bool) -> None:
        if self.armed:
            self.dismiss(approve)

    def action_always_allow(self) -> None:
        """Always allow this command for this agent: the first `A` asks (on the keys line,
        naming the agent: the command is the one shown), the second makes the rule. The
        daemon keeps it and approves this request, in the words shown here."""
        if not self.armed:
            return
        if self.denied:  # as the inbox says it: the deny-list always wins
            self.notify(f"never always-allowed: the command {self.denied}", severity="warning")
            return
        if not self.confirming:
            self.confirming = True
            self.query_one("#approval-keys", Static).update(self._keys_line())
            return
        approval = self.approval
        request = RuleAdd(id=approval.id, actor=self.actor, seen=approval.subject)
        who = visible(approval.agent, single_line=True, limit=24)
        # The app sends it: this modal is gone before the answer comes.
        self.app.post_message(DaemonRequest(request, f"always allowed for {who}"))
        self.dismiss(None)

    def action_later(self) -> None:
        """Esc: back from the always-allow question, else decide later."""
        if self.confirming:
            self.confirming = False
            self.query_one("#approval-keys", Static).update(self._keys_line())
            return
        self.dismiss(None)

    def action_inbox(self) -> None:
        """Leave this one for later and see every waiting request in the inbox."""
        self.dismiss(None)
        self.app.call_later(self.app.run_action, "inbox")
