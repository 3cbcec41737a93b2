"""The Dashboard's "While you were away" panel: a `Recap` in a few lines.

Compact (a short screen): one line per subject, counts first, so a cut line still says
how many. Roomy (a tall one): each subject's line, then its first items on lines of their
own. Titles, subjects, names and reasons were written by agents: each is made visible and
cut to one line, and every line is assembled as `Content`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from textual.content import Content
from textual.widget import Widget

from tundra_tui.domain.beads import format_bead_id
from tundra_tui.domain.clock import parse_iso
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.domain.readout import duration
from tundra_tui.domain.sanitize import visible

if TYPE_CHECKING:
    # Imported where a recap is drawn: the panel is composed with every first frame, and
    # the recap's dataclasses are needed only once there is one to show.
    from tundra_tui.domain.recap import AgentItem, ApprovalItem, BeadItem, MailItem, Recap

ROOMY_HEIGHT = 40
"""Screen rows from which the panel lists items under each subject."""
ITEMS = 3
"""Items listed under a subject when roomy (four subjects and their heads: 16 lines)."""
INLINE = 4
"""Items named on a compact line (the line is cut to the width anyway)."""

Piece = str | tuple[str, str]


def _v(text: str, limit: int = 60) -> str:
    return visible(text, single_line=True, limit=limit)


def _line(*pieces: Piece) -> Content:
    return Content.assemble(*pieces)


def _bead(item: BeadItem) -> str:
    title = _v(item.title, 48) if item.title else ""
    text = f"{format_bead_id(item.bead_id)} {title}".rstrip()
    if item.reason:
        text += f" ({_v(item.reason, 40)})"
    return text


def _approval(item: ApprovalItem) -> str:
    what = _v(f"{item.tool} {item.subject}".strip(), 50)
    from tundra_tui.domain.recap import WAITING

    verdict = "still waits" if item.outcome == WAITING else item.outcome
    return f"{_v(item.agent, 24)} waited {duration(item.waited_s)}: {what} ({verdict})"


def _agent(item: AgentItem) -> str:
    parts = []
    if item.crashes:
        parts.append("crashed" if item.crashes == 1 else f"crashed {item.crashes}×")
    if item.died:
        parts.append("died" if not item.crashes else "gave up")
    if item.stalled:
        parts.append("stalled" if item.stalled == 1 else f"stalled {item.stalled}×")
    if item.stopped_by:
        # The daemon stops what someone asked it to stop: naming it says nothing.
        by = {"?": "", "daemon": "", OPERATOR: " by you"}.get(item.stopped_by)
        parts.append(f"stopped{f' by {_v(item.stopped_by, 24)}' if by is None else by}")
    text = f"{_v(item.agent, 24)} {', '.join(parts)}"
    return f"{text}: {_v(item.reason, 40)}" if item.reason and item.died_or_crashed else text


def _mail(item: MailItem) -> str:
    subject = f" “{_v(item.subject, 48)}”" if item.subject else ""
    return f"{'urgent ' if item.urgent else ''}from {_v(item.sender, 24)}{subject}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _bead_counts(recap: Recap) -> list[Piece]:
    pieces: list[Piece] = []
    done, merged = len(recap.done), recap.merged
    if done:
        word = "merged" if merged == done else f"done ({merged} merged)" if merged else "done"
        pieces.append((f"✓ {done} {word}", "$success"))
    if recap.failed:
        pieces += ["  " if pieces else "", (f"✗ {len(recap.failed)} failed", "bold $error")]
    if recap.escalated:
        pieces += ["  " if pieces else "", (f"⚑ {len(recap.escalated)} escalated", "bold $warning")]
    return pieces


def _approval_head(recap: Recap) -> list[Piece]:
    if not recap.approvals:
        return []
    longest = recap.approvals[0].waited_s
    head: list[Piece] = [
        (f"{_plural(len(recap.approvals), 'approval')}", "bold"),
        f" waited up to {duration(longest)}",
    ]
    if recap.still_waiting:
        head += [", ", (f"{recap.still_waiting} still waiting", "bold $warning")]
    return head


def _spend(recap: Recap) -> list[Piece]:
    if recap.spend.usd <= 0 and recap.spend.complete:
        return []
    return [(recap.spend.text(), "bold $accent"), " spent"]


def _subjects(recap: Recap) -> list[tuple[list[Piece], list[str]]]:
    """Each subject with something to say: its head (counts) and its items, most urgent
    first."""
    subjects: list[tuple[list[Piece], list[str]]] = []
    beads = _bead_counts(recap)
    if beads:
        items = [*recap.failed, *recap.escalated, *recap.done]
        subjects.append((["Beads ", *beads], [_bead(i) for i in items]))
    money, approvals = _spend(recap), _approval_head(recap)
    if money or approvals:
        # The requests first: a cut line keeps how many still wait, and loses the money.
        head = [*approvals, (" · " if money and approvals else "", "dim"), *money]
        subjects.append((head, [_approval(i) for i in recap.approvals]))
    if recap.agents:
        troubled = sum(1 for a in recap.agents if a.died_or_crashed or a.stalled)
        tone = "bold $error" if troubled else "bold"
        head = [("Agents ", tone), _plural(len(recap.agents), "agent") + " to look at"]
        subjects.append((head, [_agent(a) for a in recap.agents]))
    if recap.mail:
        head = [("Mail ", "bold"), f"{len(recap.mail)} unread for you"]
        subjects.append((head, [_mail(m) for m in recap.mail]))
    return subjects


def recap_lines(recap: Recap, *, roomy: bool) -> list[Content]:
    """The panel's lines (without its border)."""
    lines: list[Content] = []
    for head, items in _subjects(recap):
        if roomy:
            shown = items[:ITEMS]
            # How many are left out goes on the head: a long last item would cut it off.
            more = f"  ({len(shown)} of {len(items)} below)" if len(items) > len(shown) else ""
            lines.append(_line(*head, (more, "dim")))
            lines += [_line("  ", item) for item in shown]
        else:
            named = " · ".join(items[:INLINE])
            more = f" +{len(items) - INLINE}" if len(items) > INLINE else ""
            lines.append(_line(*head, (" — " if named else "", "dim"), named, (more, "dim")))
    return lines


def recap_title(recap: Recap, now: datetime) -> str:
    """The border title: how long, and since when (a time today, or a date and time)."""
    try:
        since = parse_iso(recap.since).astimezone(now.tzinfo)
    except ValueError:
        return "While you were away"
    if recap.left:
        from tundra_tui.domain.recap import LONGEST, span

        away = duration(span(recap.left, recap.until))
        return f"While you were away ({away}; the last {LONGEST.days} days)"
    at = since.strftime("%H:%M") if since.date() == now.date() else since.strftime("%m-%d %H:%M")
    return f"While you were away ({duration(recap.seconds)}, since {at})"


class RecapPanel(Widget):
    """Shows one recap; hidden while there is none. It never takes focus."""

    DEFAULT_CSS = """
    RecapPanel {
        height: auto;
        max-height: 18;
        border: round $accent;
        border-title-color: $foreground;
        border-subtitle-color: $foreground-muted;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        display: none;
    }
    """

    can_focus = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.recap: Recap | None = None

    def show(self, recap: Recap | None, now: datetime, dismiss_key: str = "x") -> None:
        """Show `recap` (hide the panel for None or an empty one)."""
        self.recap = recap if recap is not None and not recap.empty else None
        self.display = self.recap is not None
        if self.recap is not None:
            self.border_title = recap_title(self.recap, now)
            self.border_subtitle = f"{dismiss_key} dismisses"
        self.refresh(layout=True)

    @property
    def roomy(self) -> bool:
        return self.app.size.height >= ROOMY_HEIGHT

    def render(self) -> Content:
        if self.recap is None:
            return Content("")
        return Content("\n").join(recap_lines(self.recap, roomy=self.roomy))

    def lines(self) -> Sequence[str]:
        """The plain text shown (for tests and the tmux end-to-end test's reading)."""
        if self.recap is None:
            return []
        return [line.plain for line in recap_lines(self.recap, roomy=self.roomy)]
