"""SQLite storage through aiosqlite. The only package that contains SQL."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

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


R = TypeVar("R")


class _Repo(Generic[R]):
    """A `Store` attribute that imports and makes its repository on first use (see
    `_EXPORTS` for why), then leaves it in the instance, where later reads find it."""

    def __init__(self, module: str, name: str, *, on_beads: bool = False) -> None:
        self._module = f"{__name__}.{module}"
        self._class = name
        self._on_beads = on_beads  # the repository also takes the bead repository
        self._attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, store: None, owner: type) -> _Repo[R]: ...
    @overload
    def __get__(self, store: Store, owner: type) -> R: ...
    def __get__(self, store: Store | None, owner: type) -> _Repo[R] | R:
        if store is None:
            return self
        made = getattr(importlib.import_module(self._module), self._class)
        repo: R = made(store.db, store.beads) if self._on_beads else made(store.db)
        store.__dict__[self._attribute] = repo
        return repo


class Store:
    """The town database and one repository per table family."""

    beads: _Repo[BeadRepo] = _Repo("beads", "BeadRepo")
    agents: _Repo[AgentRepo] = _Repo("agents", "AgentRepo")
    convoys: _Repo[ConvoyRepo] = _Repo("convoys", "ConvoyRepo")
    mail: _Repo[MailRepo] = _Repo("mail", "MailRepo")
    events: _Repo[EventRepo] = _Repo("events", "EventRepo")
    metrics: _Repo[MetricsRepo] = _Repo("metrics", "MetricsRepo")
    approvals: _Repo[ApprovalRepo] = _Repo("approvals", "ApprovalRepo")
    rules: _Repo[RuleRepo] = _Repo("rules", "RuleRepo")
    dispatches: _Repo[DispatchRepo] = _Repo("dispatches", "DispatchRepo", on_beads=True)
    notes: _Repo[NoteRepo] = _Repo("notes", "NoteRepo")
    flags: _Repo[FlagRepo] = _Repo("flags", "FlagRepo")
    merges: _Repo[MergeRepo] = _Repo("merges", "MergeRepo", on_beads=True)
    usage: _Repo[UsageRepo] = _Repo("usage", "UsageRepo")

    def __init__(self, db: Database) -> None:
        self.db = db

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
