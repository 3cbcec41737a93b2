"""The daemon's budget brake and rate-limit pauses: what dispatch may not start, and why.

A controller's rule, not an agent's: spend is read from the hourly rollup (a few rows,
never a scan of the samples), kept as one cached `Brake` that the dispatcher reads
synchronously on every pass. `refresh` runs after each batch of usage, on a config
change, on an override or a cleared pause written by any process (the store tail), when
a pause or an override ends, and once a minute (a new UTC day). Only a change of level
is published: 80% (`costs.warn_percent`) is a warning in the attention list, 100% stops
new beads (running work finishes) with a bell, and a raise, a new day or an override
resumes dispatch.

A rate-limit screen pauses the agent's account (`config.account_of`): seen while the agent
is not working and in the bottom `LIMIT_LINES` non-empty lines, where a CLI prints its own
message (a `429` in code higher up, or scrolling past while it works, is not a limit
screen), its reset time is parsed from those lines where shown
(`usage.limits.parse_reset`), else the pause lasts `costs.rate_limit_pause_seconds`. The
line that made a pause is remembered per account when the pause ends: the same old line
still on screen does not pause again (a stale "resets 3pm" would read as tomorrow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tundra_tui.config import LayeredConfig, account_of, load_config
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import AttentionEvent, BudgetRow, ChangedEvent, Event, PauseRow
from tundra_tui.domain.agents import AgentState, Runtime
from tundra_tui.domain.clock import Clock, iso, system_clock
from tundra_tui.domain.costs import (
    AccountPause,
    Brake,
    BrakeLevel,
    BudgetScope,
    pause_text,
    reason_text,
)
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.events import Event as StoredEvent
from tundra_tui.session.events import HostEvent, StateChanged, Trouble
from tundra_tui.store import Store
from tundra_tui.town import Town

ACTOR = "daemon"
COSTS_AGENT = "costs"
"""The name budget attention is filed under (it is no agent's)."""
RESET_MARGIN = timedelta(seconds=30)
"""A parsed reset time is a minute's precision at best: wait a little past it."""
RECHECK_SECONDS = 60.0
"""At most this long between refreshes (a new UTC day ends a day's stop)."""
DEFAULT_PAUSE_SECONDS = 900.0
LIMIT_LINES = 6
"""A limit message counts only in this many non-empty lines at the bottom of the screen."""
_REFRESHING = (
    "costs.override",
    "costs.override_cleared",
    "account.cleared",
    "account.paused",
    "account.resumed",
)
"""Store events (from `at cost …` in any process) that change the brake."""


@dataclass(frozen=True, slots=True)
class SessionView:
    """What the brake needs of a live agent to judge a rate-limit screen."""

    state: AgentState
    trouble: str
    screen: str
    runtime: Runtime


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def read_brake(store: Store, config: LayeredConfig, now: datetime) -> Brake:
    """The brake as the store says it is at `now` (a pure read: `at cost budget` shares it)."""
    now = now.astimezone(UTC)
    warn = int(config.get("costs.warn_percent") or 80)
    scopes: list[BudgetScope] = []
    day = float(config.get("costs.daily_budget_usd") or 0.0)
    if day > 0:
        spent = await store.metrics.cost(since=iso(_midnight(now)), until="")
        scopes.append(BudgetScope("day", "today", None, spent, day, "costs.daily_budget_usd", warn))
    month = float(config.get("costs.monthly_budget_usd") or 0.0)
    if month > 0:
        spent = await store.metrics.cost(since=iso(_midnight(now).replace(day=1)), until="")
        scopes.append(
            BudgetScope("month", "this month", None, spent, month, "costs.monthly_budget_usd", warn)
        )
    budgets = _convoy_budgets(config)
    if budgets:
        ids = {c.name: c.id for c in await store.convoys.all()}
        for name, budget in sorted(budgets.items()):
            convoy_id = ids.get(name)
            if convoy_id is None or budget <= 0:
                continue
            spent = await store.metrics.cost(since="", until="", convoy_id=convoy_id)
            key = f"convoys.{name}.budget_usd"
            scopes.append(BudgetScope("convoy", name, convoy_id, spent, budget, key, warn))
    until, reason = await store.usage.override()
    pauses = await store.usage.live_pauses(iso(now))
    return Brake(
        scopes=tuple(scopes),
        override_until=until,
        override_reason=reason,
        pauses=tuple(pauses),
    )


def budget_rows(brake: Brake, now: str) -> list[BudgetRow]:
    """The brake's budgets as `at dispatch status` shows them (an override's stop is a warning)."""
    overridden = brake.overridden(now)
    rows = []
    for scope in brake.scopes:
        level = effective(scope, overridden)
        text = reason_text(scope) if level is BrakeLevel.STOP else ""
        if level is BrakeLevel.WARN:
            text = _warning_text(scope, brake)
        rows.append(
            BudgetRow(
                scope=scope.kind,
                name=scope.name,
                spent_usd=round(scope.spent.usd, 6),
                budget_usd=scope.budget_usd,
                percent=round(scope.percent, 1),
                level=level.value,
                unpriced_tokens=scope.spent.unpriced_tokens,
                key=scope.key,
                text=text,
            )
        )
    return rows


def pause_rows(brake: Brake, now: str) -> list[PauseRow]:
    """The live rate-limit pauses, with their countdown in words."""
    return [
        PauseRow(
            account=p.account,
            runtime=p.runtime,
            agent=p.agent,
            until=p.until,
            shown=p.shown,
            parsed=p.reset_parsed,
            text=pause_text(p, now),
        )
        for p in brake.pauses
        if brake.paused(p.account, now) is p
    ]


def budgeted(config: LayeredConfig) -> bool:
    """Whether any budget is set (a day's, a month's or a convoy's)."""
    day = float(config.get("costs.daily_budget_usd") or 0.0)
    month = float(config.get("costs.monthly_budget_usd") or 0.0)
    return day > 0 or month > 0 or any(b > 0 for b in _convoy_budgets(config).values())


def _convoy_budgets(config: LayeredConfig) -> dict[str, float]:
    table: Any = config.get("convoys") or {}
    out: dict[str, float] = {}
    if isinstance(table, dict):
        for name, leaf in table.items():
            if isinstance(leaf, dict) and leaf.get("budget_usd") is not None:
                out[str(name)] = float(leaf["budget_usd"])
    return out


def effective(scope: BudgetScope, overridden: bool) -> BrakeLevel:
    """A scope's level as dispatch sees it: an override turns a stop into a warning."""
    level = scope.level
    if level is BrakeLevel.STOP and overridden:
        return BrakeLevel.WARN
    return level


def scope_id(scope: BudgetScope) -> str:
    return f"{scope.kind}:{scope.name}"


def _warning_text(scope: BudgetScope, brake: Brake) -> str:
    if scope.level is BrakeLevel.STOP and brake.override_until:
        until = brake.override_until[11:16]
        reason = f": {brake.override_reason}" if brake.override_reason else ""
        return f"over budget; overridden until {until} UTC{reason} ({reason_text(scope)})"
    least = "" if scope.spent.complete else "at least "
    return (
        f"{scope.percent:.0f}% of the budget: {least}${scope.spent.usd:,.2f} of "
        f"${scope.budget_usd:,.2f} {scope.name} ({scope.key})"
    )


class BrakePart:
    """Keeps the cached `Brake`, publishes its changes, and pauses rate-limited accounts."""

    def __init__(
        self,
        store: Store,
        town: Town,
        publish: Callable[[Event], None],
        log: DaemonLog,
        clock: Clock = system_clock,
        wake_dispatch: Callable[[str], None] = lambda why: None,
        *,
        view: Callable[[str], SessionView | None] = lambda agent: None,
        own: Callable[[Awaitable[Any]], None] | None = None,
        config: Callable[[], LayeredConfig] | None = None,
    ) -> None:
        """`view` shows a live agent's state and screen; `own` runs a task the daemon owns."""
        self.store = store
        self.town = town
        self.publish = publish
        self.log = log
        self.clock = clock
        self.wake_dispatch = wake_dispatch
        self.view = view
        self._own = own or (lambda coroutine: self._spawn(coroutine))
        self.config = config or (lambda: load_config(town))
        self._brake = Brake()
        self._levels: dict[str, BrakeLevel] = {}
        self._live_pauses: set[str] = set()
        self._provisional: dict[str, AccountPause] = {}
        """Pauses decided but not yet stored (held in the cached brake meanwhile)."""
        self._paused_for: set[str] = set()
        """Agents whose current rate-limit screen has paused their account already."""
        self._ended: dict[str, str] = {}
        """Per account, the screen line of its last pause that ended (not a new limit)."""
        self.flush: Callable[[], Awaitable[object]] | None = None
        """Reads the agents' usage logs to their end now (the usage watcher's `ingest`)."""
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refreshes = 0

    # ---- reading ---------------------------------------------------------------------------

    def state(self) -> Brake:
        """The brake as last refreshed (no store read: the dispatcher calls it every pass)."""
        return self._brake

    async def verdict(self, config: LayeredConfig | None = None) -> Brake:
        """The brake judged afresh for a claim: the usage logs read to their end first,
        then the budgets. A turn's spend is logged with its submit, and the watcher reads
        at its own pace: a pass right after the submit would claim one bead past the
        budget on the cache. A town with no budget (or a live override) reads nothing;
        `config` is the one the caller read already."""
        try:
            config = config or self.config()
        except TundraError as error:
            self.log.warning("costs.brake_unread", error=error)
            return self._brake
        if not budgeted(config) or self._brake.overridden(iso(self.clock())):
            return self._brake
        if self.flush is not None:
            await self.flush()  # a refusal is the watcher's to log; the cache then stands
        return await self.refresh()

    def standing(self) -> list[Event]:
        """Attention still true, for a new client's snapshot: warnings, stops, pauses."""
        now = iso(self.clock())
        brake = self._brake
        events: list[Event] = []
        for scope in brake.scopes:
            event = self._attention(scope, effective(scope, brake.overridden(now)), brake)
            if event is not None:
                events.append(event)
        for pause in brake.pauses:
            if brake.paused(pause.account, now) is pause:
                events.append(
                    AttentionEvent(
                        agent=pause.agent, kind="rate limited", reason=pause_text(pause, now)
                    )
                )
        return events

    def next_change(self) -> float | None:
        """Seconds until a pause or the override ends (the dispatcher wakes then), or None."""
        now = self.clock()
        ends = [p.until for p in self._brake.pauses]
        if self._brake.override_until:
            ends.append(self._brake.override_until)
        seconds = [s for s in (_seconds_to(end, now) for end in ends) if s is not None]
        return min(seconds, default=None)

    # ---- refreshing ------------------------------------------------------------------------

    async def refresh(self) -> Brake:
        """Read the brake again; publish what changed (levels, pauses ending)."""
        async with self._lock:
            self.refreshes += 1
            moment = self.clock()
            now = iso(moment)
            try:
                config = self.config()
                brake = await read_brake(self.store, config, moment)
            except TundraError as error:
                self.log.warning("costs.brake_unread", error=error)
                return self._brake
            before = self._brake
            woke = False
            for pause in await self._expired(now):
                self.log.info("account.resumed", account=pause.account, agent=pause.agent)
                self._paused_for.discard(pause.agent)  # a new limit line pauses again
                self._ended[pause.account] = pause.shown
                woke = True
            if woke:
                brake = await read_brake(self.store, config, moment)
            for pause in list(self._provisional.values()):
                brake = _with_pause(brake, pause)  # being stored: still held meanwhile
            self._brake = brake
            woke = await self._levels_changed(brake, now) or woke
            live = {p.account for p in brake.pauses if brake.paused(p.account, now) is p}
            changed = live != self._live_pauses or before != brake
            self._live_pauses = live
            if changed:
                self.publish(ChangedEvent(what="brake"))
            if woke:
                self.wake_dispatch("budget or pause changed")
            self._wake.set()
            return brake

    async def _levels_changed(self, brake: Brake, now: str) -> bool:
        """Publish each scope whose level moved; True if dispatch should look again."""
        overridden = brake.overridden(now)
        levels = {scope_id(s): effective(s, overridden) for s in brake.scopes}
        woke = False
        for scope in brake.scopes:
            key = scope_id(scope)
            old = self._levels.get(key, BrakeLevel.OK)
            new = levels[key]
            if new is old:
                continue
            data = {
                "scope": key,
                "spent": round(scope.spent.usd, 6),
                "budget": scope.budget_usd,
                "key": scope.key,
            }
            if new is BrakeLevel.STOP:
                await self._record("costs.stopped", data)
                self.log.warning("costs.stopped", **data)
                woke = True
            elif old is BrakeLevel.STOP:
                await self._record("costs.resumed", data)
                self.log.info("costs.resumed", **data)
                woke = True
            elif new is BrakeLevel.WARN:
                await self._record("costs.warn", data)
                self.log.info("costs.warn", **data)
            if new is not BrakeLevel.OK and (new is BrakeLevel.STOP or old is BrakeLevel.OK):
                event = self._attention(scope, new, brake)
                if event is not None:
                    self.publish(event)
        for key, old in self._levels.items():
            if key not in levels and old is BrakeLevel.STOP:  # the budget was unset
                await self._record("costs.resumed", {"scope": key})
                woke = True
        self._levels = levels
        return woke

    def _attention(
        self, scope: BudgetScope, level: BrakeLevel, brake: Brake
    ) -> AttentionEvent | None:
        if level is BrakeLevel.STOP:
            return AttentionEvent(
                agent=COSTS_AGENT, kind="budget stop", reason=reason_text(scope), bell=True
            )
        if level is BrakeLevel.WARN:
            return AttentionEvent(
                agent=COSTS_AGENT, kind="budget warning", reason=_warning_text(scope, brake)
            )
        return None

    async def _expired(self, now: str) -> list[AccountPause]:
        """Pauses whose time is up: each ends with an `account.resumed` event."""
        ended = []
        try:
            for pause in await self.store.usage.expired_pauses(now):
                if await self.store.usage.clear_pause(
                    pause.account, actor=ACTOR, kind="account.resumed"
                ):
                    ended.append(pause)
        except TundraError as error:
            self.log.warning("account.not_resumed", error=error)
        return ended

    async def _record(self, kind: str, data: dict[str, Any]) -> None:
        try:
            await self.store.events.record(kind, actor=ACTOR, data=data)
        except TundraError as error:
            self.log.warning("costs.event_unrecorded", error=error, kind=kind)

    def request(self) -> None:
        """Ask for a refresh soon (from synchronous callers: events, the config watch)."""
        self._own(self.refresh())

    async def run(self, stopped: asyncio.Event) -> None:
        """Refresh when a pause or the override ends, and at least once a minute."""
        while not stopped.is_set():
            wait = RECHECK_SECONDS
            ends = self.next_change()
            if ends is not None:
                wait = min(wait, ends + 0.05)
            self._wake.clear()
            halt = asyncio.ensure_future(stopped.wait())
            woken = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({halt, woken}, timeout=wait, return_when="FIRST_COMPLETED")
            halt.cancel()
            woken.cancel()
            if stopped.is_set():
                return
            if not self._wake.is_set():
                await self.refresh()

    # ---- what it hears ---------------------------------------------------------------------

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """An override, a cleared pause (maybe from `at cost` in another process)."""
        if any(e.kind.startswith(_REFRESHING) for e in events):
            self.request()

    def on_host(self, event: HostEvent) -> None:
        """A rate-limit screen: pause its account once the agent is not working."""
        if isinstance(event, Trouble):
            self._paused_for.discard(event.agent)
            if event.kind != "rate_limited":
                return
            view = self.view(event.agent)
            if view is not None and view.state is AgentState.WORKING:
                return  # judged when it stops working (below)
            self._limited(event.agent)
        elif isinstance(event, StateChanged) and event.state is not AgentState.WORKING:
            # Stopped working with a limit on screen: it counts only at the bottom (where
            # the CLI prints it) and only if it is not the line of a pause that ended.
            if not event.state.is_live:
                return
            view = self.view(event.agent)
            if view is not None and view.trouble == "rate_limited":
                self._limited(event.agent)

    def _limited(self, agent: str) -> None:
        """Pause at once in the cached brake (a dispatch pass woken by the same screen's idle
        state must not hand the agent work), then store it."""
        if agent in self._paused_for:
            return
        pause = self._decide(agent, fresh=True)
        if pause is not None:
            self._paused_for.add(agent)
            self._own(self._store_pause(pause))

    async def pause(self, agent: str) -> AccountPause | None:
        """Pause the account of an agent that shows a rate-limit screen (None if it is gone)."""
        pause = self._decide(agent)
        if pause is None:
            return None
        return await self._store_pause(pause)

    def _decide(self, agent: str, *, fresh: bool = False) -> AccountPause | None:
        """The pause an agent's limit screen asks for, applied to the cached brake now.

        `fresh`: only a limit line at the bottom of the screen that is not the line of the
        account's pause that ended (None otherwise)."""
        view = self.view(agent)
        if view is None:
            return None
        try:
            config = self.config()
        except TundraError as error:
            self.log.warning("account.not_paused", error=error, agent=agent)
            return None
        spec = config.agents().get(agent)
        runtime = spec.runtime if spec is not None else view.runtime
        account = account_of(config, agent, runtime)
        moment = self.clock()
        reset, shown = _parse_reset(_bottom(view.screen), moment)
        if fresh and (not shown or self._ended.get(account) == shown):
            return None
        if reset is not None:
            until = reset + RESET_MARGIN
        else:
            seconds = float(config.get("costs.rate_limit_pause_seconds") or DEFAULT_PAUSE_SECONDS)
            until = moment + timedelta(seconds=seconds)
        existing = self._brake.paused(account, iso(moment))
        until_text = iso(until)
        if existing is not None and existing.until > until_text:
            until_text = existing.until
        pause = AccountPause(
            account=account,
            runtime=runtime.value,
            agent=agent,
            until=until_text,
            shown=shown,
            reset_parsed=reset is not None,
            since=iso(moment),
        )
        self._provisional[account] = pause
        self._brake = _with_pause(self._brake, pause)
        return pause

    async def _store_pause(self, pause: AccountPause) -> AccountPause | None:
        try:
            await self.store.usage.pause_account(pause)
        except TundraError as error:
            self.log.warning("account.not_paused", error=error, account=pause.account)
            return None
        finally:
            self._provisional.pop(pause.account, None)
        now = iso(self.clock())
        self.log.info("account.paused", account=pause.account, agent=pause.agent, until=pause.until)
        self.publish(
            AttentionEvent(agent=pause.agent, kind="rate limited", reason=pause_text(pause, now))
        )
        await self.refresh()
        self.wake_dispatch(f"account {pause.account} paused")
        return pause

    async def drain(self) -> None:
        """Wait for the pauses and refreshes this part started itself (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _with_pause(brake: Brake, pause: AccountPause) -> Brake:
    others = tuple(p for p in brake.pauses if p.account != pause.account)
    return replace(brake, pauses=(*others, pause))


def _bottom(screen: str) -> str:
    """The last `LIMIT_LINES` non-empty lines of a screen."""
    return "\n".join([line for line in screen.splitlines() if line.strip()][-LIMIT_LINES:])


def _parse_reset(screen: str, moment: datetime) -> tuple[datetime | None, str]:
    """The reset time a limit screen shows (in local time where it names no zone)."""
    from tundra_tui.usage.limits import parse_reset

    tz = datetime.now().astimezone().tzinfo or UTC
    return parse_reset(screen, moment, tz)


def _seconds_to(at: str, now: datetime) -> float | None:
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    left = (moment - now).total_seconds()
    return left if left > 0 else None
