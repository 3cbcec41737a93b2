"""How `at agent list` and `at approvals` print, whoever got the rows: the daemon alone
(cli/quick.py) or the full command with the store (cli/agents.py, cli/daemon.py).

One printer for both paths keeps their output the same. The JSON branch imports only
json: what tables need for width and sanitizing (rich, shutil) is imported by the
branch that prints for people.
"""

from __future__ import annotations

from tundra_tui.output_json import dump_json

TYPE_CHECKING = False  # `typing` is not imported for this (see cli/__init__.py)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from tundra_tui.daemon.protocol import AgentRow, ApprovalInfo

INDENT = "    "
"""Where an approval's subject starts under its heading."""


def duration(seconds: float | None) -> str:
    """`4m07s` or `2h05m`; `-` when unknown."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


AGENT_FIELDS = (
    "name",
    "role",
    "runtime",
    "model",
    "state",
    "glyph",
    "pid",
    "holds",
    "command",
    "uptime",
)
"""What `at agent list --json` prints of each `AgentRow`, in this order."""
APPROVAL_FIELDS = (
    "id",
    "agent",
    "runtime",
    "status",
    "subject",
    "tool",
    "cwd",
    "source",
    "evidence",
    "created_at",
    "decided_at",
    "decided_by",
    "denied_shape",
)
"""`ApprovalInfo`'s fields, in its order: `at approvals --json` prints them all."""
WIRE_DEFAULTS: dict[str, object] = {
    "pid": None,
    "uptime": None,
    "role": "",
    "model": "",
    "command": "",
    "created_at": "",
    "decided_at": "",
    "decided_by": "",
    "denied_shape": "",
}
"""The defaults of those fields that have one: the wire may leave them out."""


def wire_entry(row: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A row as it came over the wire (JSON), as its struct's `names` with defaults filled
    in; tests/test_cli_fast.py holds these tables to the protocol's structs."""
    return {name: row[name] if name in row else WIRE_DEFAULTS[name] for name in names}


def agent_entry(row: AgentRow) -> dict[str, Any]:
    """One agent as `at agent list --json` prints it."""
    entry = {name: getattr(row, name) for name in AGENT_FIELDS}
    entry["holds"] = list(row.holds)
    return entry


def print_agents(rows: Sequence[AgentRow], as_json: bool) -> None:
    """The roster: JSON, a table, or how to add a first agent."""
    if as_json:
        dump_json([agent_entry(row) for row in rows])
        return
    if not rows:
        print("no agents: add one with `at agent add NAME --runtime RUNTIME`")
        return
    from tundra_tui.output import table

    table(
        ("", "NAME", "ROLE", "RUNTIME", "STATE", "PID", "UPTIME", "HOLDS", "MODEL"),
        [
            (
                r.glyph,
                r.name,
                r.role,
                r.runtime,
                r.state,
                r.pid or "-",
                duration(r.uptime),
                " ".join(f"#{i}" for i in r.holds) or "-",
                r.model or "-",
            )
            for r in rows
        ],
    )


def print_approvals(pending: Sequence[ApprovalInfo], as_json: bool) -> None:
    """Pending approvals, oldest first: every field as JSON, or each request made visible."""
    if as_json:
        import msgspec

        dump_json([msgspec.structs.asdict(a) for a in pending])
    elif pending:
        import shutil

        print("\n".join(approval_lines(pending, shutil.get_terminal_size().columns)))
    else:
        print("no approvals waiting")


def approval_lines(approvals: Sequence[ApprovalInfo], width: int) -> list[str]:
    """Approvals for people: a heading per request, then its whole subject, never cut.

    The subject is wrapped to `width` cells under a four-space indent with every hidden
    character made visible; a newline in it shows as `␤` at the end of its row, so joining
    the rows gives the exact command back.
    """
    lines: list[str] = []
    for approval in approvals:
        if lines:
            lines.append("")
        lines.append(_heading(approval))
        subject = approval.subject
        if not subject:
            lines.append(f"{INDENT}(no detail given)")
            continue
        lines += [INDENT + row for row in _wrap(subject, max(width - len(INDENT), 20))]
    return lines


def _heading(approval: ApprovalInfo) -> str:
    from tundra_tui.domain.sanitize import visible

    def shown(text: str) -> str:
        return visible(text, single_line=True)

    since = shown(approval.created_at)[11:19]
    parts = [
        f"#{approval.id}",
        shown(approval.agent),
        shown(approval.tool) or "-",
        f"from {shown(approval.source)}" if approval.source else "",
        f"since {since}" if since else "",
        f"in {shown(approval.cwd)}" if approval.cwd else "",
        f"⚠ {shown(approval.denied_shape)}" if approval.denied_shape else "",
    ]
    return "  ".join(part for part in parts if part)


def _wrap(text: str, width: int) -> list[str]:
    """Hard rows of at most `width` cells: a command's spaces are part of it, so nothing is
    dropped at a break the way word wrapping would."""
    from rich.cells import cell_len

    from tundra_tui.domain.sanitize import visible

    rows: list[str] = []
    segments = text.split("\n")
    for index, segment in enumerate(segments):
        shown = visible(segment).expandtabs(8)
        if index < len(segments) - 1:
            shown += "\u2424"
        row: list[str] = []
        used = 0
        for char in shown:
            cells = cell_len(char)
            if row and used + cells > width:
                rows.append("".join(row))
                row, used = [], 0
            row.append(char)
            used += cells
        rows.append("".join(row))
    return rows
