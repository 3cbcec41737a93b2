"""The Mail view: the operator's conversations with each agent, and agents' mail to each other.

Opened with `M` (full screen, over any tab). Left: one thread per pair of parties, newest
first; `●` marks a thread with mail to the operator that is unread. Right: the highlighted
thread's messages, oldest first, each with its receipt as the store records it:

- to an agent: `⧗ pending` until the daemon's mailroom hands it over at the agent's next
  turn boundary (typed between turns, never into a waiting approval); `✓ delivered` once the
  agent took that input (the mailroom sets `delivered_at`, and `read_at` with it);
  `✓ read` when the agent read it with `at mail read` without a delivery.
- to the operator: `● unread` until opened here (Enter) or read with `at mail read`.

`c` composes (to an agent on the roster, mayors first), `r` replies on an operator thread
(agent-to-agent threads are read-only); both send through the daemon's `MailSend`, the op
`at mail send` uses. Subjects and bodies are written by agents: shown through `visible`,
never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Select, Static, TextArea

from tundra_tui.daemon.protocol import MailRead, MailSend, MailSent
from tundra_tui.domain.agents import Role
from tundra_tui.domain.clock import iso
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.mail import OPERATOR, Mail, validate_body, validate_subject
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import Column, NavTable

LIMIT = 500
"""Newest messages read per load (older ones stay in `at mail list`)."""
CHANGES = frozenset({"mail", "events", "store"})
"""Changes (as the app names them) that can bring mail or receipts."""

COLUMNS = (
    Column(" ", width=1),
    Column("thread", flex=True),
    Column("msgs"),
    Column("last"),
)


@dataclass
class Thread:
    """The messages between two parties, oldest first."""

    key: str
    parties: tuple[str, str]
    messages: list[Mail] = field(default_factory=list)

    @property
    def mine(self) -> bool:
        """A conversation of the operator's (one it may reply on)."""
        return OPERATOR in self.parties

    @property
    def other(self) -> str:
        """Who the operator talks to on this thread."""
        a, b = self.parties
        return b if a == OPERATOR else a

    @property
    def unread(self) -> int:
        """Mail to the operator not read yet."""
        return sum(1 for m in self.messages if m.recipient == OPERATOR and not m.is_read)

    @property
    def pending(self) -> int:
        """Mail to an agent waiting for its next turn boundary."""
        return sum(1 for m in self.messages if is_pending(m))

    @property
    def label(self) -> str:
        if self.mine:
            return self.other
        return f"{self.parties[0]} ↔ {self.parties[1]}"


def is_pending(mail: Mail) -> bool:
    """Mail to an agent that no turn boundary has handed over (nor was read) yet."""
    return mail.recipient != OPERATOR and not mail.read_at and not mail.delivered_at


def threads(mails: Sequence[Mail]) -> list[Thread]:
    """Messages grouped by their pair of parties; the thread with the newest message first."""
    found: dict[str, Thread] = {}
    for mail in sorted(mails, key=lambda m: m.id):
        a, b = sorted((mail.sender, mail.recipient))
        if OPERATOR in (a, b):
            key = b if a == OPERATOR else a
            parties = (OPERATOR, key)
        else:
            key, parties = f"{a}|{b}", (a, b)
        found.setdefault(key, Thread(key, parties)).messages.append(mail)
    return sorted(found.values(), key=lambda t: t.messages[-1].id, reverse=True)


def _clock(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


def _when(stamp: str, today: str) -> str:
    """`18:30` today, `12-06` before: the threads' column stays narrow."""
    return stamp[11:16] if stamp[:10] == today else stamp[5:10]


def receipt(mail: Mail) -> tuple[str, str]:
    """(mark, style) of a message's receipt, in the words the module docstring defines."""
    if mail.recipient == OPERATOR:
        if mail.read_at:
            return f"✓ read by you {_clock(mail.read_at)}", "green"
        return "● unread", "bold yellow"
    if mail.delivered_at:
        return f"✓ delivered {_clock(mail.delivered_at)} (taken at a turn boundary)", "green"
    if mail.read_at:
        return f"✓ read {_clock(mail.read_at)} (at mail read)", "green"
    who = visible(mail.recipient, single_line=True, limit=40)
    return f"⧗ pending: handed to {who} at its next turn boundary", "bold cyan"


def reply_subject(subject: str) -> str:
    """`re: X` for X, once (a reply to a reply stays `re: X`)."""
    base = subject
    while base.lower().startswith("re: "):
        base = base[4:]
    return f"re: {base}" if base else "re: your message"


@dataclass(frozen=True)
class Draft:
    to: str
    subject: str
    body: str


class MailCompose(ModalScreen[Draft | None]):
    """To (an agent on the roster), subject and body; dismisses with a checked draft."""

    DEFAULT_CSS = """
    MailCompose { align: center middle; }
    MailCompose > #mail-compose-box {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    MailCompose #mail-compose-body { height: 8; }
    MailCompose #mail-compose-error { color: $error; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="mail-compose-send"),
        Binding("escape", "cancel", "Cancel", id="mail-compose-cancel"),
    ]

    def __init__(self, recipients: Sequence[tuple[str, str]], to: str = "", subject: str = ""):
        """`recipients`: (name, how it is shown) pairs, in the order offered."""
        super().__init__()
        self.recipients = list(recipients)
        self.to = to
        self.subject = subject

    def compose(self) -> ComposeResult:
        names = [name for name, _ in self.recipients]
        with Vertical(id="mail-compose-box"):
            yield Static(Text("New message" if not self.to else "Reply"), id="mail-compose-title")
            yield Label("To")
            yield Select(
                [(Text(shown), name) for name, shown in self.recipients],
                value=self.to if self.to in names else (names[0] if names else Select.NULL),
                allow_blank=not names,
                id="mail-compose-to",
                compact=True,
            )
            yield Label("Subject")
            yield Input(self.subject, id="mail-compose-subject", compact=True)
            yield Label("Message")
            yield TextArea("", soft_wrap=True, id="mail-compose-body", compact=True)
            yield Static(Text(""), id="mail-compose-error")
            yield Static(Text("ctrl+s send   Tab next field   Esc cancel"))

    def on_mount(self) -> None:
        target = "#mail-compose-body" if self.to else "#mail-compose-subject"
        self.query_one(target).focus()

    @on(Input.Submitted, "#mail-compose-subject")
    def _subject_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#mail-compose-body", TextArea).focus()

    def action_send(self) -> None:
        """Check the draft and dismiss with it (the view sends it)."""
        to = self.query_one("#mail-compose-to", Select).value
        subject = self.query_one("#mail-compose-subject", Input).value
        body = self.query_one("#mail-compose-body", TextArea).text
        try:
            if not isinstance(to, str):
                raise TundraError("pick who the message is for")
            validate_subject(subject)
            validate_body(body)
        except TundraError as error:
            self.query_one("#mail-compose-error", Static).update(Text(str(error)))
            return
        self.dismiss(Draft(to=to, subject=subject, body=body))

    def action_cancel(self) -> None:
        """Close without sending."""
        self.dismiss(None)


class MailView(ModalScreen[None]):
    """Threads on the left, the highlighted one's messages and receipts on the right."""

    DEFAULT_CSS = """
    MailView { background: $background; }
    MailView > #mail-box { width: 100%; height: 100%; padding: 0 1; }
    MailView #mail-title { text-style: bold; height: 1; }
    MailView #mail-panes { height: 1fr; }
    MailView #mail-threads { width: 2fr; max-width: 48; height: 1fr; }
    MailView #mail-thread-box { width: 3fr; height: 1fr; border: round $panel; }
    MailView #mail-keys { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open (marks read)", id="mail-open"),
        Binding("c", "compose", "Compose", id="mail-compose"),
        Binding("r", "reply", "Reply", id="mail-reply"),
        Binding("escape", "close", "Close", id="mail-close"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.threads: list[Thread] = []
        self.unread = 0
        self.error = ""
        self._goto: str | None = None
        """A thread to put the cursor on once the next load shows it (a message just sent)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="mail-box"):
            yield Static(id="mail-title")
            with Horizontal(id="mail-panes"):
                yield NavTable(id="mail-threads")
                with VerticalScroll(id="mail-thread-box"):
                    yield Static(id="mail-thread")
            yield Static(
                Text.assemble(
                    ("j/k", "bold"),
                    " move  ",
                    ("Enter", "bold"),
                    " open (marks read)  ",
                    ("c", "bold"),
                    " compose  ",
                    ("r", "bold"),
                    " reply  ",
                    ("Esc", "bold"),
                    " close",
                ),
                id="mail-keys",
            )

    def on_mount(self) -> None:
        self.query_one(NavTable).focus()
        self.reload()

    def changed(self, whats: Sequence[str]) -> None:
        """The app heard of a change: mail or receipts may have moved."""
        if CHANGES.intersection(whats):
            self.reload()

    @work(exclusive=True, group="mail-load", exit_on_error=False)
    async def reload(self) -> None:
        """Read the newest mail and the operator's unread count, then redraw."""
        mail = self.services.store.mail
        try:
            found = await mail.find(limit=LIMIT)
            self.unread = await mail.unread_count(OPERATOR)
            self.error = ""
        except TundraError as error:
            self.error = visible(str(error), single_line=True, limit=200)
            found = []
        self.threads = threads(found)
        self._draw()

    @property
    def current(self) -> Thread | None:
        key = self.query_one(NavTable).current_key
        return next((t for t in self.threads if t.key == key), None)

    def _draw(self) -> None:
        rows: list[tuple[str, list[Text]]] = []
        today = iso(self.services.now())[:10]
        for thread in self.threads:
            mark = "●" if thread.unread else ("⧗" if thread.pending else "")
            label = visible(thread.label, single_line=True, limit=60)
            rows.append(
                (
                    thread.key,
                    [
                        Text(mark, style="bold yellow" if thread.unread else "cyan"),
                        Text(label, style="" if thread.mine else "dim"),
                        Text(str(len(thread.messages))),
                        Text(_when(thread.messages[-1].created_at, today)),
                    ],
                )
            )
        table = self.query_one(NavTable)
        table.fill(COLUMNS, rows)
        if self._goto is not None and any(key == self._goto for key, _ in rows):
            table.move_to(self._goto)
            self._goto = None
        title = Text.assemble(
            ("Mail", "bold"), f"  ·  {self.unread} unread for you  ·  {len(rows)} threads"
        )
        if self.error:
            title.append(f"  ·  {self.error}", style="red")
        self.query_one("#mail-title", Static).update(title)
        self._show(self.current)

    def _show(self, thread: Thread | None) -> None:
        body = self.query_one("#mail-thread", Static)
        if thread is None:
            body.update(Text("No mail yet: c composes a message to an agent."))
            return
        text = Text()
        for mail in thread.messages:
            mark, style = receipt(mail)
            sender = visible(mail.sender, single_line=True, limit=40)
            to = visible(mail.recipient, single_line=True, limit=40)
            text.append(f"#{mail.id}  {sender} → {to}  {_clock(mail.created_at)}", "bold")
            if mail.urgent:
                text.append("  urgent", "red")
            text.append("\n")
            text.append(mark, style)
            text.append("\n")
            subject = visible(mail.subject, single_line=True) or "(no subject)"
            text.append(subject, "italic")
            text.append("\n")
            text.append(visible(mail.body))
            text.append("\n\n")
        if not thread.mine:
            text.append("Agent-to-agent mail: read-only here.", "dim")
        body.update(text)
        box = self.query_one("#mail-thread-box", VerticalScroll)
        self.call_after_refresh(box.scroll_end, animate=False)  # the newest message

    @on(DataTable.RowHighlighted, "#mail-threads")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show(self.current)

    @on(DataTable.RowSelected, "#mail-threads")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    # ---- actions ---------------------------------------------------------------------------

    def action_open(self) -> None:
        """Show the highlighted thread and mark its mail to the operator read."""
        thread = self.current
        if thread is None:
            return
        self._show(thread)
        unread = [m.id for m in thread.messages if m.recipient == OPERATOR and not m.is_read]
        if unread:
            self.mark_read(unread)

    @work(group="mail-read", exit_on_error=False)
    async def mark_read(self, ids: list[int]) -> None:
        """Set the receipts through the daemon, so every control room hears of them (its
        `changed mail` reloads this view and the title bar's count)."""
        try:
            await self.services.link.call(MailRead(ids=ids))
        except TundraError as error:
            self.notify(
                f"not marked read: {visible(str(error), single_line=True, limit=200)}",
                severity="error",
            )
            self.reload()

    def recipients(self) -> list[tuple[str, str]]:
        """Agents on the roster, mayors first, as (name, shown)."""
        try:
            team = self.services.config.agents()
        except TundraError:
            return []
        mayors = [n for n, spec in team.items() if spec.role is Role.MAYOR]
        others = [n for n in team if n not in mayors]
        shown = [(n, f"{visible(n, single_line=True)} (mayor)") for n in mayors]
        return shown + [(n, visible(n, single_line=True)) for n in others]

    def action_compose(self) -> None:
        """Write a new message to an agent or the mayor."""
        self._open_compose(MailCompose(self.recipients()))

    def action_reply(self) -> None:
        """Reply on the highlighted thread (the operator's own threads only)."""
        thread = self.current
        if thread is None:
            return
        if not thread.mine:
            self.notify("agent-to-agent mail is read-only: c writes to one of them")
            return
        recipients = self.recipients()
        if thread.other not in {name for name, _ in recipients}:
            who = visible(thread.other, single_line=True, limit=40)
            self.notify(f"{who} is not an agent on the roster: no reply (c writes to one)")
            return
        last = thread.messages[-1].subject
        compose = MailCompose(recipients, to=thread.other, subject=reply_subject(last))
        self._open_compose(compose)

    def _open_compose(self, compose: MailCompose) -> None:
        def done(draft: Draft | None) -> None:
            if draft is not None:
                self.send(draft)

        self.app.push_screen(compose, done)

    @work(group="mail-send", exit_on_error=False)
    async def send(self, draft: Draft) -> None:
        """Through the daemon, as `at mail send` does: it delivers at a turn boundary."""
        request = MailSend(to=draft.to, subject=draft.subject, body=draft.body)
        try:
            sent: MailSent = await self.services.link.call(request)
        except TundraError as error:
            self.notify(
                f"mail not sent: {visible(str(error), single_line=True, limit=200)}",
                severity="error",
            )
            return
        to = visible(sent.to, single_line=True, limit=40)
        self.notify(f"message {sent.id} to {to}: delivered at its next turn boundary", timeout=3)
        self._goto = sent.to
        self.reload()

    def action_close(self) -> None:
        """Back to the tabs."""
        self.dismiss(None)
