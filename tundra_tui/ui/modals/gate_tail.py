"""The merge in progress, live: each gate of the refinery's current attempt, and the tail
of the running gate's output as it prints.

The refinery writes each gate's output to a log file in the town and records the file's
path when the gate starts; the wire carries a gate's tail only once it has finished. So
this panel reads the attempt from the store and the end of the running gate's log file,
once a second. Everything shown is whatever the code under test printed: made visible,
never markup.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.refinery import GateResult, MergeAttempt
from tundra_tui.domain.sanitize import visible
from tundra_tui.store import Store

TAIL_BYTES = 16_384
"""Read at most this much of the end of a log (a gate may print megabytes)."""
TAIL_LINES = 200
"""Lines of output kept on screen."""
REFRESH_SECONDS = 1.0


def read_tail(path: str, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of `path` as text ("" if it is not there yet)."""
    if not path:
        return ""
    try:
        with Path(path).open("rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(size - limit, 0))
            return log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _verdict(gate: GateResult) -> tuple[str, str]:
    if gate.ok is None:
        return "running", "yellow"
    if gate.ok:
        return "✓ passed", "green"
    return ("✗ timed out" if gate.timed_out else f"✗ exit {gate.exit_code}"), "red"


def _gates(attempt: MergeAttempt) -> Text:
    lines = [
        Text.assemble(
            f"gate {gate.idx + 1}  ",
            (_verdict(gate)[0], _verdict(gate)[1]),
            "  ",
            (visible(gate.command, single_line=True, limit=80), "bold"),
        )
        for gate in attempt.gates
    ]
    return Text("\n").join(lines) if lines else Text("no gate started yet", "dim")


def _watched(attempt: MergeAttempt) -> GateResult | None:
    """The gate running now, else the last one that ran."""
    running = [gate for gate in attempt.gates if gate.ok is None]
    if running:
        return running[-1]
    return attempt.gates[-1] if attempt.gates else None


class GateTail(ModalScreen[None]):
    """Read-only and refreshed once a second while open; escape closes it."""

    DEFAULT_CSS = """
    GateTail {
        align: center middle;
        background: $background 60%;
    }
    GateTail > #gate-tail-box {
        width: 95%;
        height: 90%;
        border: round $accent;
        background: $panel;
        padding: 0 1;
    }
    GateTail #gate-tail-title { text-style: bold; text-wrap: nowrap; text-overflow: ellipsis; }
    GateTail #gate-tail-gates { height: auto; max-height: 8; }
    GateTail #gate-tail-body { height: 1fr; border-top: solid $primary-muted; }
    GateTail #gate-tail-keys { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="gate-tail-close"),
        Binding("j", "scroll(1)", "Scroll down", id="gate-tail-down", show=False),
        Binding("k", "scroll(-1)", "Scroll up", id="gate-tail-up", show=False),
    ]

    def __init__(self, store: Store, attempt_id: int) -> None:
        super().__init__()
        self.store = store
        self.attempt_id = attempt_id
        self.follow = True
        """Keep the newest output in view (until the operator scrolls up)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="gate-tail-box"):
            yield Static(id="gate-tail-title")
            yield Static(id="gate-tail-gates")
            with VerticalScroll(id="gate-tail-body"):
                yield Static(Text("reading…", "dim"), id="gate-tail-output")
            yield Static(Text("j/k scroll   Esc close"), id="gate-tail-keys")

    def on_mount(self) -> None:
        self.query_one("#gate-tail-body", VerticalScroll).focus()
        self._refresh()
        self.set_interval(REFRESH_SECONDS, self._refresh)

    def action_scroll(self, lines: int) -> None:
        """Scroll the output; scrolling up stops following, back at the end follows again."""
        body = self.query_one("#gate-tail-body", VerticalScroll)
        body.scroll_relative(y=lines, animate=False)
        self.follow = lines > 0 and body.scroll_y + lines >= body.max_scroll_y

    @work(exclusive=True, group="gate-tail", exit_on_error=False)
    async def _refresh(self) -> None:
        try:
            attempt = await self.store.merges.get(self.attempt_id)
        except TundraError as error:
            self.query_one("#gate-tail-title", Static).update(Text(str(error)))
            return
        gate = _watched(attempt)
        output = ""
        if gate is not None:
            output = gate.tail if gate.ok is not None and gate.tail else ""
            if not output:
                output = await asyncio.to_thread(read_tail, gate.log_path)
        state = attempt.outcome.value if attempt.outcome else attempt.state.value
        title = Text.assemble(
            f"Merging #{attempt.bead_id}, attempt {attempt.n} ",
            (f"({visible(state.replace('_', ' '), single_line=True)})", "dim"),
        )
        self.query_one("#gate-tail-title", Static).update(title)
        self.query_one("#gate-tail-gates", Static).update(_gates(attempt))
        lines = visible(output).rstrip("\n").split("\n")[-TAIL_LINES:] if output else []
        body = Text("\n".join(lines)) if lines else Text("no output yet", "dim")
        self.query_one("#gate-tail-output", Static).update(body)
        if self.follow:
            self.query_one("#gate-tail-body", VerticalScroll).scroll_end(animate=False)
