"""SQLite storage through aiosqlite. The only package that contains SQL."""

from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tundra_tui.domain.clock import Clock, system_clock
from tundra_tui.store.db import (
    DamagedDatabase,
    Database,
    FutureSchema,
    StoreError,
    StoreLocked,
    open_database,
)

if TYPE_CHECKING:
    from tundra_tui.store.agents import AgentRepo, RosterEntry
    from tundra_tui.store.approvals import ApprovalRepo
    from tundra_tui.store.beads import BeadRepo, KanbanColumn
    from tundra_tui.store.convoys import ConvoyRepo
    from tundra_tui.store.dispatches import DispatchRepo
    from tundra_tui.store.events import EventRepo
    from tundra_tui.store.flags import FlagRepo, TownFlags
    from tundra_tui.store.mail import MailRepo
    from tundra_tui.store.merges import MergeRepo
    from tundra_tui.store.metrics import CostRow, MetricsRepo
    from tundra_tui.store.notes import NoteRepo
    from tundra_tui.store.rules import RuleRepo
    from tundra_tui.store.usage import AgentRun, UsageRepo, UsageSource

# The repositories, and the names re-exported from them, are imported on first use: each
# imports its domain module's dataclasses, and creating those for all thirteen cost `at tui`
# about a tenth of its first frame's CPU (a dataclass compiles each of its methods).
_EXPORTS = {
    "AgentRun": "usage",
    "CostRow": "metrics",
    "KanbanColumn": "beads",
    "RosterEntry": "agents",
    "TownFlags": "flags",
    "UsageRepo": "usage",
    "UsageSource": "usage",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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

    @cached_property
    def beads(self) -> BeadRepo:
        from tundra_tui.store.beads import BeadRepo

        return BeadRepo(self.db)

    @cached_property
    def agents(self) -> AgentRepo:
        from tundra_tui.store.agents import AgentRepo

        return AgentRepo(self.db)

    @cached_property
    def convoys(self) -> ConvoyRepo:
        from tundra_tui.store.convoys import ConvoyRepo

        return ConvoyRepo(self.db)

    @cached_property
    def mail(self) -> MailRepo:
        from tundra_tui.store.mail import MailRepo

        return MailRepo(self.db)

    @cached_property
    def events(self) -> EventRepo:
        from tundra_tui.store.events import EventRepo

        return EventRepo(self.db)

    @cached_property
    def metrics(self) -> MetricsRepo:
        from tundra_tui.store.metrics import MetricsRepo

        return MetricsRepo(self.db)

    @cached_property
    def approvals(self) -> ApprovalRepo:
        from tundra_tui.store.approvals import ApprovalRepo

        return ApprovalRepo(self.db)

    @cached_property
    def rules(self) -> RuleRepo:
        from tundra_tui.store.rules import RuleRepo

        return RuleRepo(self.db)

    @cached_property
    def dispatches(self) -> DispatchRepo:
        from tundra_tui.store.dispatches import DispatchRepo

        return DispatchRepo(self.db, self.beads)

    @cached_property
    def notes(self) -> NoteRepo:
        from tundra_tui.store.notes import NoteRepo

        return NoteRepo(self.db)

    @cached_property
    def flags(self) -> FlagRepo:
        from tundra_tui.store.flags import FlagRepo

        return FlagRepo(self.db)

    @cached_property
    def merges(self) -> MergeRepo:
        from tundra_tui.store.merges import MergeRepo

        return MergeRepo(self.db, self.beads)

    @cached_property
    def usage(self) -> UsageRepo:
        from tundra_tui.store.usage import UsageRepo

        return UsageRepo(self.db)

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
