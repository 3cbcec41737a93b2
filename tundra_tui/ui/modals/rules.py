"""The always-allow rules, from the inbox (`R`): each agent's exact commands the daemon
approves by itself; `x` revokes the highlighted one after a confirmation naming it.

Rules live in the daemon (`at rules` lists the same); every command shown here is made
visible first and never read as markup.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tundra_tui.daemon.protocol import RuleInfo, RuleList, RuleRevoke, Rules
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.sanitize import visible
from tundra_tui.ui.modals.confirm import ConfirmModal
from tundra_tui.ui.services import Services
from tundra_tui.ui.widgets.nav_table import Column, NavTable

MAX_ROWS_SHOWN = 20
"""Lines of the rules table at most (its header included); more scroll."""
COLUMNS = (
    Column("rule"),
    Column("agent"),
    Column("tool"),
    Column("command", flex=True),
    Column("by"),
)


CHUNK = 100
"""A command in a confirmation is shown whole, this many cells a line."""


def command_lines(command: str) -> list[str]:
    """The whole command made visible, cut into lines for a confirmation (never shortened:
    the operator confirms exactly these words)."""
    shown = visible(command, single_line=True) or "(no detail given)"
    return [shown[start : start + CHUNK] for start in range(0, len(shown), CHUNK)]


def _first_line(error: TundraError) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return visible(text, single_line=True, limit=300)


class RulesModal(ModalScreen[None]):
    """The live rules, oldest first; `x` revokes one, Esc goes back to the inbox."""

    DEFAULT_CSS = """
    RulesModal {
        align: center middle;
    }
    RulesModal > #rules-box {
        width: 95%;
        max-width: 160;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    RulesModal #rules-title { text-style: bold; }
    RulesModal #rules-table { height: auto; max-height: 20; }
    RulesModal #rules-empty { height: auto; color: $foreground-muted; }
    RulesModal #rules-keys { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "Next rule", id="rules-down", show=False),
        Binding("k,up", "move(-1)", "Previous rule", id="rules-up", show=False),
        Binding("x", "revoke", "Revoke", id="rules-revoke"),
        Binding("escape", "close", "Close", id="rules-close"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__(classes="inbox-modal")
        self.services = services
        self.rules: dict[int, RuleInfo] = {}
        self.loaded = False
        """True once the daemon has answered (tests wait on it)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="rules-box"):
            yield Static(Text("Always-allow rules"), id="rules-title")
            yield NavTable(id="rules-table")
            yield Static(Text("Loading…"), id="rules-empty")
            yield Static(
                Text.assemble(
                    ("j/k", "bold"), " move  ", ("x", "bold"), " revoke  ", ("Esc", "bold"), " back"
                ),
                id="rules-keys",
            )

    def on_mount(self) -> None:
        self.query_one(NavTable).focus()
        self.load()

    @work(exclusive=True, group="rules-load", exit_on_error=False)
    async def load(self) -> None:
        """The rules as the daemon holds them."""
        try:
            listed: RuleList = await self.services.link.call(Rules())
        except TundraError as error:
            self.query_one("#rules-empty", Static).update(Text(_first_line(error)))
            return
        self.rules = {rule.id: rule for rule in listed.rules}
        self.loaded = True
        self._draw()

    def _draw(self) -> None:
        rows = [
            (
                str(rule.id),
                [
                    Text(str(rule.id)),
                    Text(visible(rule.agent, single_line=True, limit=24)),
                    Text(visible(rule.tool, single_line=True, limit=16) or "-"),
                    Text(visible(rule.subject, single_line=True)),
                    Text(visible(rule.created_by, single_line=True, limit=16)),
                ],
            )
            for rule in sorted(self.rules.values(), key=lambda r: r.id)
        ]
        table = self.query_one(NavTable)
        table.fill(COLUMNS, rows)
        table.display = bool(rows)
        # As tall as its rows and header: `height: auto` stayed 0 when the rows came after
        # the first layout (the daemon answers later).
        table.styles.height = min(len(rows) + 1, MAX_ROWS_SHOWN)
        empty = self.query_one("#rules-empty", Static)
        empty.display = not rows
        empty.update(Text("No rules: every request waits for you (A in the inbox adds one)."))

    @property
    def current(self) -> RuleInfo | None:
        key = self.query_one(NavTable).current_key
        return self.rules.get(int(key)) if key is not None else None

    def action_move(self, step: int) -> None:
        table = self.query_one(NavTable)
        if step > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def action_revoke(self) -> None:
        """After a confirmation naming the agent and the exact command, revoke the rule."""
        rule = self.current
        if rule is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.revoke(rule)

        agent = visible(rule.agent, single_line=True, limit=24)
        self.app.push_screen(
            ConfirmModal(
                f"Revoke rule {rule.id}? {agent}'s command will wait for you again.",
                command_lines(rule.subject),
                yes="Revoke",
            ),
            answered,
        )

    @work(group="rules-revoke", exit_on_error=False)
    async def revoke(self, rule: RuleInfo) -> None:
        try:
            await self.services.link.call(RuleRevoke(id=rule.id, actor=self.services.actor))
        except TundraError as error:
            self.notify(f"rule {rule.id}: {_first_line(error)}", severity="error")
            return
        self.notify(f"rule {rule.id} revoked", timeout=3)
        self.rules.pop(rule.id, None)
        self._draw()

    def action_close(self) -> None:
        self.dismiss(None)
