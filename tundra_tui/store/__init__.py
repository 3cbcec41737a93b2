"""SQLite storage through aiosqlite. The only package that contains SQL."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from tundra_tui.domain.clock import Clock, system_clock
from tundra_tui.store.agents import AgentRepo, RosterEntry
from tundra_tui.store.approvals import ApprovalRepo
from tundra_tui.store.beads import BeadRepo, KanbanColumn
from tundra_tui.store.convoys import ConvoyRepo
from tundra_tui.store.db import (
    DamagedDatabase,
    Database,
    FutureSchema,
    StoreError,
    StoreLocked,
    open_database,
)
from tundra_tui.store.dispatches import DispatchRepo
from tundra_tui.store.events import EventRepo
from tundra_tui.store.flags import FlagRepo, TownFlags
from tundra_tui.store.mail import MailRepo
from tundra_tui.store.merges import MergeRepo
from tundra_tui.store.metrics import CostRow, MetricsRepo
from tundra_tui.store.notes import NoteRepo
from tundra_tui.store.rules import RuleRepo
from tundra_tui.store.usage import AgentRun, UsageRepo, UsageSource

__all__ = [
    "AgentRun",
    "CostRow",
    "DamagedDatabase",
    "FutureSchema",
    "KanbanColumn",
    "RosterEntry",
    "Store",
    "StoreError",
    "StoreLocked",
    "TownFlags",
    "UsageRepo",
    "UsageSource",
    "open_store",
]


class Store:
    """The town database and one repository per table family."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.beads = BeadRepo(db)
        self.agents = AgentRepo(db)
        self.convoys = ConvoyRepo(db)
        self.mail = MailRepo(db)
        self.events = EventRepo(db)
        self.metrics = MetricsRepo(db)
        self.approvals = ApprovalRepo(db)
        self.rules = RuleRepo(db)
        self.dispatches = DispatchRepo(db, self.beads)
        self.notes = NoteRepo(db)
        self.flags = FlagRepo(db)
        self.merges = MergeRepo(db, self.beads)
        self.usage = UsageRepo(db)

    async def close(self) -> None:
        """Close the connection."""
        await self.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_store(
    path: Path,
    *,
    busy_timeout_ms: int = 5000,
    synchronous: str = "normal",
    clock: Clock = system_clock,
    create: bool = True,
    allow_damaged: bool = False,
    check_on_write: bool = False,
) -> Store:
    """Open and migrate the database at `path` and wrap it in a Store.

    A file that fails `quick_check` is refused, or with `allow_damaged` opened for
    reading only (every write then fails with the same one line). `check_on_write` leaves
    the check to the first write: a process that only reads never pays it."""
    db = await open_database(
        path,
        busy_timeout_ms=busy_timeout_ms,
        synchronous=synchronous,
        clock=clock,
        create=create,
        allow_damaged=allow_damaged,
        check_on_write=check_on_write,
    )
    return Store(db)
