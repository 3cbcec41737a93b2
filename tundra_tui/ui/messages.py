"""App-wide messages: panes post these up; the app decides what happens."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tundra_tui.daemon.protocol import Request


@dataclass
class DaemonRequest(Message):
    """Ask the app to send one request to the daemon and report the outcome.

    `done` is shown as a notification on success; errors are shown as their one line.
    """

    request: Request
    done: str = ""


@dataclass
class OpenApproval(Message):
    """Show the approval modal for this request (it is queued if one is already open)."""

    approval_id: int


@dataclass
class RememberChoice(Message):
    """Keep a choice the operator made with a key (a `ui.*` setting) for the next start."""

    key: str
    value: str
