"""The approval inbox: every waiting request in one list, answered when the operator chooses.

Opened with `I` or a click on the title bar's counter, never by itself. Rows come and go
with the daemon's events (a request answered by `at approve` or another TUI leaves at once);
an answer goes to the daemon with the words the row showed, and the daemon applies it to
those words only. A row whose words appeared or changed while the inbox was open is armed
like the popup: `y`/`n` wait `arm_seconds` on it, so a key meant for the old row cannot
answer the new one.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tundra_tui.daemon.protocol import Approve, Deny, Request, RuleAdd
from tundra_tui.domain.beads import BeadStatus, format_bead_id
from tundra_tui.domain.clock import parse_iso
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.firewall import denied_shape
from tundra_tui.domain.readout import duration
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.live import PendingApproval
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import Column, NavTable

COLUMNS = (
    Column(" ", width=1),
    Column("agent"),
    Column("bead"),
    Column("from"),
    Column("waited"),
    Column("command", flex=True),
)
"""One row per request: selected mark, agent, its bead, hook or screen, wait, the command."""

AGENT_CHARS = 24
"""An agent's name is cut to this in its column (the detail below shows it whole)."""


def _row_words(approval: PendingApproval) -> tuple[str, str, str]:
    """What an answer applies to: the words, the tool and where they were read."""
    return approval.subject, approval.tool, approval.source


def waited(approval: PendingApproval, now: float) -> str:
    """How long the request has waited (`4m07s`); `-` when the daemon did not say."""
    if not approval.created_at:
        return "-"
    try:
        asked = parse_iso(approval.created_at).timestamp()
    except ValueError:
        return "-"
    return duration(max(0.0, now - asked))


class InboxModal(ModalScreen[None]):
    """The waiting requests, oldest first; `y`/`n` answer the highlighted one, space selects,
    `Y`/`N` answer the selected ones after a confirmation listing exactly them."""

    DEFAULT_CSS = """
    InboxModal {
        align: center middle;
    }
    InboxModal > #inbox-box {
        width: 95%;
        max-width: 160;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    InboxModal #inbox-title { text-style: bold; color: $warning; }
    InboxModal #inbox-table { height: auto; max-height: 20; }
    InboxModal #inbox-empty { height: auto; color: $foreground-muted; }
    InboxModal #inbox-detail-box {
        height: auto;
        max-height: 8;
        border: round $panel;
    }
    InboxModal #inbox-keys { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "Next request", id="inbox-down", show=False),
        Binding("k,up", "move(-1)", "Previous request", id="inbox-up", show=False),
        Binding("y", "answer(True)", "Approve", id="inbox-approve"),
        Binding("n", "answer(False)", "Deny", id="inbox-deny"),
        Binding("space", "pick", "Select", id="inbox-select"),
        Binding("Y", "answer_selected(True)", "Approve selected", id="inbox-approve-selected"),
        Binding("N", "answer_selected(False)", "Deny selected", id="inbox-deny-selected"),
        Binding("A", "always_allow", "Always allow", id="inbox-always-allow"),
        Binding("R", "rules", "Rules", id="inbox-rules"),
        Binding("escape", "close", "Close", id="inbox-close"),
    ]

    def __init__(self, services: Services, *, arm_seconds: float = 0.6) -> None:
        super().__init__(classes="inbox-modal")  # see-through: styles/confirm.tcss
        self.services = services
        self.arm_seconds = arm_seconds
        self.shown: dict[int, PendingApproval] = {}
        """The requests as the rows show them (an answer carries these words)."""
        self.selected: set[int] = set()
        self._changed_at: dict[int, float] = {}
        """When a row's words appeared or changed after opening (monotonic): it arms then."""
        self._beads: dict[str, list[int]] = {}
        """Unfinished beads held by each agent, as the store last said."""
        self._sending: set[int] = set()
        """Requests whose answer is on its way (a second key sends nothing more)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="inbox-box"):
            yield Static(id="inbox-title")
            yield NavTable(id="inbox-table")
            yield Static(Text("Nothing is waiting."), id="inbox-empty")
            with VerticalScroll(id="inbox-detail-box"):
                yield Static(id="inbox-detail")
            yield Static(
                Text.assemble(
                    ("j/k", "bold"),
                    " move  ",
                    ("y", "bold"),
                    " approve  ",
                    ("n", "bold"),
                    " deny  ",
                    ("space", "bold"),
                    " select  ",
                    ("Y", "bold"),
                    "/",
                    ("N", "bold"),
                    " approve/deny selected  ",
                    ("A", "bold"),
                    " always allow  ",
                    ("R", "bold"),
                    " rules  ",
                    ("Esc", "bold"),
                    " close",
                ),
                id="inbox-keys",
            )

    def on_mount(self) -> None:
        for approval in self.services.live.approvals.values():
            self.shown[approval.id] = approval  # read before opening: armed at once
        self._draw()
        self.query_one(NavTable).focus()
        self.set_interval(1.0, self._draw)  # the waited column is live
        self.load_beads()

    # ---- rows ------------------------------------------------------------------------------

    def sync(self) -> None:
        """The daemon's word changed (a request came, changed words, or was answered)."""
        live = self.services.live.approvals
        now = time.monotonic()
        new_agent = False
        for approval_id in list(self.shown):
            if approval_id not in live:
                del self.shown[approval_id]
                self.selected.discard(approval_id)
                self._sending.discard(approval_id)
                self._changed_at.pop(approval_id, None)
        for approval_id, approval in live.items():
            before = self.shown.get(approval_id)
            if before is None or _row_words(before) != _row_words(approval):
                self._changed_at[approval_id] = now
                new_agent = new_agent or approval.agent not in self._beads
            self.shown[approval_id] = approval
        self._draw()
        if new_agent:
            self.load_beads()

    @work(exclusive=True, group="inbox-beads", exit_on_error=False)
    async def load_beads(self) -> None:
        """Each agent's unfinished beads, the one it works on (hooked or slung) first."""
        store = self.services.store
        try:
            held = (await store.agents.listing()).held
            working = [
                bead
                for status in (BeadStatus.HOOKED, BeadStatus.SLUNG)
                for bead in await store.beads.find(status=status)
            ]
        except TundraError:
            return  # the column says `-`; the request is what matters
        first = {bead.assignee: bead.id for bead in working}
        self._beads = {
            agent: sorted(ids, key=lambda i: (i != first.get(agent), i))
            for agent, ids in held.items()
        }
        self._draw()

    def _ordered(self) -> list[PendingApproval]:
        return sorted(self.shown.values(), key=lambda a: a.id)

    def _bead(self, agent: str) -> str:
        held = self._beads.get(agent, [])
        if not held:
            return "-"
        more = f" +{len(held) - 1}" if len(held) > 1 else ""
        return format_bead_id(held[0]) + more

    def _draw(self) -> None:
        table = self.query_one(NavTable)
        now = self.services.now().timestamp()
        rows: list[tuple[str, list[Text]]] = []
        for approval in self._ordered():
            mark = "…" if approval.id in self._sending else "✓" * (approval.id in self.selected)
            rows.append(
                (
                    str(approval.id),
                    [
                        Text(mark),
                        Text(visible(approval.agent, single_line=True, limit=AGENT_CHARS)),
                        Text(self._bead(approval.agent)),
                        Text(visible(approval.source, single_line=True, limit=8)),
                        Text(waited(approval, now)),
                        Text(
                            "⚠ " * bool(denied_shape(approval.subject))
                            + (visible(approval.subject, single_line=True) or "(no detail given)")
                        ),
                    ],
                )
            )
        table.fill(COLUMNS, rows)
        table.display = bool(rows)
        self.query_one("#inbox-empty").display = not rows
        self.query_one("#inbox-detail-box").display = bool(rows)
        count = len(rows)
        title = f"Approvals waiting: {count}"
        if self.selected:
            title += f"  ·  {len(self.selected)} selected"
        self.query_one("#inbox-title", Static).update(Text(title))
        self._show_detail()

    def _show_detail(self) -> None:
        approval = self.current
        if approval is None:
            return
        tool = visible(approval.tool, single_line=True) or "action"
        shape = denied_shape(approval.subject)
        warning = f"⚠ deny-list: {shape} (never always-allowed)\n" if shape else ""
        detail = Text.assemble(
            (visible(approval.agent, single_line=True), "bold"),
            f"  {tool}  #{approval.id}\n",
            (warning, "bold"),
            visible(approval.subject) or "(no detail given)",
        )
        self.query_one("#inbox-detail", Static).update(detail)

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    @property
    def current(self) -> PendingApproval | None:
        """The highlighted request."""
        key = self.query_one(NavTable).current_key
        return self.shown.get(int(key)) if key is not None else None

    def _armed(self, approval_id: int) -> bool:
        changed = self._changed_at.get(approval_id)
        return changed is None or time.monotonic() - changed >= self.arm_seconds

    # ---- keys ------------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        table = self.query_one(NavTable)
        if step > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def action_pick(self) -> None:
        """Select or unselect the highlighted request, then move on to the next."""
        approval = self.current
        if approval is None:
            return
        self.selected ^= {approval.id}
        self._draw()
        self.query_one(NavTable).action_cursor_down()

    def action_answer(self, approve: bool) -> None:
        """Answer the highlighted request, in the words its row shows."""
        approval = self.current
        if approval is None or approval.id in self._sending:
            return
        if not self._armed(approval.id):
            self.notify("that request just appeared or changed: read it, then answer")
            return
        self._send([approval], approve)

    def action_answer_selected(self, approve: bool) -> None:
        """After a confirmation listing exactly them, answer the selected requests."""
        listed = [a for a in self._ordered() if a.id in self.selected and a.id not in self._sending]
        if not listed:
            self.notify("nothing selected: space selects a request")
            return
        if not all(self._armed(a.id) for a in listed):
            self.notify("a selected request just appeared or changed: read it, then answer")
            return
        items = [
            f"{visible(a.agent, single_line=True, limit=AGENT_CHARS)} "
            f"({self._bead(a.agent)}): {visible(a.subject, single_line=True)}"
            for a in listed
        ]
        verb = "Approve" if approve else "Deny"
        plural = "s" if len(listed) > 1 else ""

        def answered(yes: bool | None) -> None:
            # Exactly what was listed, in the words listed: one that changed meanwhile is
            # refused by the daemon and stays; one answered elsewhere is already gone.
            if yes:
                self._send(listed, approve)

        question = f"{verb} {len(listed)} selected request{plural}?"
        self.app.push_screen(ConfirmModal(question, items, yes=f"{verb} {len(listed)}"), answered)

    def _send(self, approvals: list[PendingApproval], approve: bool) -> None:
        for approval in approvals:
            self._sending.add(approval.id)
            self.selected.discard(approval.id)
        self._draw()
        # The app's worker, not the inbox's: closing the inbox must not cancel an answer.
        self.app.run_worker(
            self.answer(approvals, approve), group="inbox-answers", exit_on_error=False
        )

    async def answer(self, approvals: list[PendingApproval], approve: bool) -> None:
        """Send the answers; the rows leave when the daemon says they are answered."""
        app, actor = self.app, self.services.actor
        for approval in approvals:
            request: Request = (
                Approve(id=approval.id, actor=actor, seen=approval.subject)
                if approve
                else Deny(id=approval.id, actor=actor, seen=approval.subject)
            )
            who = visible(approval.agent, single_line=True, limit=AGENT_CHARS)
            try:
                await self.services.link.call(request)
            except TundraError as error:
                self._sending.discard(approval.id)
                first = str(error).splitlines()[0] if str(error) else type(error).__name__
                line = visible(first, single_line=True, limit=300)
                app.notify(f"{who} #{approval.id}: {line}", severity="error")
                continue
            app.notify(f"{'approved' if approve else 'denied'}: {who} #{approval.id}", timeout=3)
        if self.is_mounted:
            self._draw()

    def action_always_allow(self) -> None:
        """After a confirmation naming the exact command, always allow it for this agent
        (the daemon keeps the rule and approves this request too); never a deny-listed one."""
        from tundra_tui.ui.modals.rules import command_lines

        approval = self.current
        if approval is None or approval.id in self._sending:
            return
        shape = denied_shape(approval.subject)
        if shape:
            self.notify(f"never always-allowed: the command {shape}", severity="warning")
            return
        if not self._armed(approval.id):
            self.notify("that request just appeared or changed: read it, then answer")
            return
        who = visible(approval.agent, single_line=True, limit=AGENT_CHARS)

        def answered(yes: bool | None) -> None:
            if yes:
                self._sending.add(approval.id)
                self.selected.discard(approval.id)
                self._draw()
                self.app.run_worker(
                    self.always_allow(approval), group="inbox-answers", exit_on_error=False
                )

        question = f"Always allow this command for {who}, and approve it now?"
        self.app.push_screen(
            ConfirmModal(question, command_lines(approval.subject), yes="Always allow"), answered
        )

    async def always_allow(self, approval: PendingApproval) -> None:
        """Ask the daemon for the rule, in the words the row showed."""
        app = self.app
        who = visible(approval.agent, single_line=True, limit=AGENT_CHARS)
        try:
            rule = await self.services.link.call(
                RuleAdd(id=approval.id, actor=self.services.actor, seen=approval.subject)
            )
        except TundraError as error:
            self._sending.discard(approval.id)
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            line = visible(first, single_line=True, limit=300)
            app.notify(f"{who} #{approval.id}: {line}", severity="error")
        else:
            app.notify(f"rule {rule.id}: always allowed for {who}", timeout=3)
        if self.is_mounted:
            self._draw()

    def action_rules(self) -> None:
        """The always-allow rules: listed, and revoked with `x`."""
        from tundra_tui.ui.modals.rules import RulesModal

        self.app.push_screen(RulesModal(self.services))

    def action_close(self) -> None:
        self.dismiss(None)
