"""The rows a "while you were away" recap is built from: the window's events that can
matter to it, the titles of their beads, the spend and the operator's unread mail."""

from __future__ import annotations

import json
from datetime import timedelta

from tundra_tui.domain.clock import iso, parse_iso
from tundra_tui.domain.events import Event
from tundra_tui.domain.mail import OPERATOR
from tundra_tui.domain.recap import Recap, bead_ids, build_recap
from tundra_tui.store.db import Database
from tundra_tui.store.events import event_from_row
from tundra_tui.store.mail import _mail_from_row
from tundra_tui.store.metrics import MetricsRepo

SKEW = timedelta(minutes=10)
"""How far an event's time may lag its id (a request the daemon recorded late keeps the
time it was made): the search for the window's first event starts this much earlier."""

_WANTED = (
    "(kind LIKE 'bead.%' AND json_extract(data, '$.to') IS NOT NULL) "
    "OR kind IN ('approval.requested', 'approval.approved', 'approval.denied', "
    "'approval.expired', 'agent.crashed', 'witness.agent_died', 'witness.agent_stopped', "
    "'witness.stalled', 'town.up', 'town.down') "
    "OR (kind = 'agent.state' AND json_extract(data, '$.to') IN ('failed', 'lost', 'stopped'))"
)
"""Events a recap reads: bead moves, requests and answers, crashes, stalls and stops (not
the many working/idle changes), and the town going down and up (`at down` stops them all)."""


class RecapRepo:
    """Reads one window for `build_recap`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def first_id(self, at: str) -> int:
        """The id of the first event at or after `at` (ids grow with time), found by
        bisection on the primary key so a long log is not scanned; max id + 1 if none."""
        row = await self.db.fetchone(
            "SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM events"
        )
        lo, hi = (int(row[0]), int(row[1]) + 1) if row is not None else (1, 1)
        while lo < hi:
            mid = (lo + hi) // 2
            found = await self.db.fetchone(
                "SELECT id, at FROM events WHERE id >= ? ORDER BY id LIMIT 1", (mid,)
            )
            if found is None:
                hi = mid
            elif str(found[1]) < at:
                lo = int(found[0]) + 1
            else:
                hi = mid
        return lo

    async def events(self, since: str, until: str) -> list[Event]:
        """The window's events a recap reads, oldest first."""
        try:
            start = iso(parse_iso(since) - SKEW)
        except ValueError:
            start = since
        first = await self.first_id(start)
        rows = await self.db.fetchall(
            f"SELECT * FROM events WHERE id >= ? AND at >= ? AND at < ? AND ({_WANTED}) "
            "ORDER BY id",
            (first, since, until),
        )
        return [event_from_row(row) for row in rows]

    async def titles(self, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT id, title FROM beads WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(ids)),),
        )
        return {int(row[0]): str(row[1]) for row in rows}

    async def read(self, since: str, until: str) -> Recap:
        """The recap of [since, until)."""
        events = await self.events(since, until)
        titles = await self.titles(bead_ids(events))
        spend = await MetricsRepo(self.db).cost(since=since, until=until)
        rows = await self.db.fetchall(
            "SELECT * FROM mail WHERE recipient = ? AND read_at = '' AND created_at >= ? "
            "AND created_at < ? ORDER BY id",
            (OPERATOR, since, until),
        )
        mail = [_mail_from_row(row) for row in rows]
        return build_recap(events, since=since, until=until, spend=spend, titles=titles, mail=mail)
