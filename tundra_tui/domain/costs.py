"""What money means in the town: prices, totals that may hold unpriced usage, budgets and
their brake, rate-limit pauses, and which bead a sample belongs to.

Pure and standard library only: the demo agent imports `Price` through `usage.pricing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from tundra_tui.domain.beads import BeadStatus

_MTOK = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """Dollars per million tokens. A tier `(start, price)` prices the whole count once the
    call's total input exceeds `start` (genai-prices' rule: gpt-5.5 is $5, $10 above 272k)."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()

    def at(self, total_input: int) -> float:
        """The $/MTok that applies to a call whose total input (cache included) is given."""
        price = self.base
        for start, tier_price in self.tiers:
            if total_input > start:
                price = tier_price
        return price


@dataclass(frozen=True, slots=True)
class Price:
    """One model's prices and where they came from (named beside every figure)."""

    source: str
    """"genai-prices 0.2.5", "config" or "auto-tundra demo table"."""
    model_id: str
    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    cache_write_1h: Rate | None = None

    def cost(
        self, *, input: int, output: int, cache_read: int, cache_write: int, cache_write_1h: int
    ) -> float:
        """Dollars for one call. `input` is uncached input; `cache_write` includes the 1-hour
        writes. As in genai-prices, a cache rate that is absent leaves its tokens priced at
        the parent's rate (input; cache_write for the 1-hour writes)."""
        total_input = input + cache_read + cache_write
        plain_input = input
        dollars = 0.0
        if self.cache_read is not None:
            dollars += cache_read * self.cache_read.at(total_input)
        else:
            plain_input += cache_read
        write_rate = self.cache_write
        if write_rate is None:
            plain_input += cache_write
        else:
            hour = min(cache_write_1h, cache_write)
            if self.cache_write_1h is not None:
                dollars += hour * self.cache_write_1h.at(total_input)
                dollars += (cache_write - hour) * write_rate.at(total_input)
            else:
                dollars += cache_write * write_rate.at(total_input)
        dollars += plain_input * self.input.at(total_input)
        dollars += output * self.output.at(total_input)
        return dollars / _MTOK


def _tokens_text(tokens: int) -> str:
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}M"
    if tokens >= 1_000:
        return f"{tokens / 1_000:.1f}k"
    return str(tokens)


@dataclass(frozen=True, slots=True)
class Cost:
    """A dollar total that may include usage with no known price: that usage is counted in
    tokens and flagged, never shown as $0."""

    usd: float
    unpriced_samples: int = 0
    unpriced_tokens: int = 0
    sources: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every sample in the total was priced."""
        return self.unpriced_samples == 0

    def __add__(self, other: Cost) -> Cost:
        sources = self.sources + tuple(s for s in other.sources if s not in self.sources)
        return Cost(
            self.usd + other.usd,
            self.unpriced_samples + other.unpriced_samples,
            self.unpriced_tokens + other.unpriced_tokens,
            sources,
        )

    def text(self) -> str:
        """ "$1.23", "$1.23 + unpriced (4.1k tok)" or "unknown (unpriced)"."""
        if self.complete:
            return f"${self.usd:,.2f}"
        if self.usd == 0:
            return "unknown (unpriced)"
        return f"${self.usd:,.2f} + unpriced ({_tokens_text(self.unpriced_tokens)} tok)"


class BrakeLevel(StrEnum):
    """How close a budget is to spent: warn at `costs.warn_percent`, stop at 100%."""

    OK = "ok"
    WARN = "warn"
    STOP = "stop"


_SCOPE_WORDS = {"day": "today", "month": "this month"}


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One budget and what was spent against it (priced spend only)."""

    kind: Literal["day", "month", "convoy"]
    name: str
    convoy_id: int | None
    spent: Cost
    budget_usd: float
    key: str
    """The config key that raises it."""
    warn_percent: int = 80

    @property
    def percent(self) -> float:
        """Spent as a percentage of the budget (0 when there is no budget)."""
        if self.budget_usd <= 0:
            return 0.0
        return self.spent.usd / self.budget_usd * 100

    @property
    def level(self) -> BrakeLevel:
        if self.budget_usd <= 0:
            return BrakeLevel.OK
        if self.percent >= 100:
            return BrakeLevel.STOP
        if self.percent >= self.warn_percent:
            return BrakeLevel.WARN
        return BrakeLevel.OK


@dataclass(frozen=True, slots=True)
class AccountPause:
    """Dispatch to an account's agents waits until `until` (a rate-limit screen was shown).
    `shown` is the screen's raw text: sanitize it before showing it."""

    account: str
    runtime: str
    agent: str
    until: str
    shown: str = ""
    reset_parsed: bool = False
    since: str = ""


def _live(until: str, now: str) -> bool:
    return bool(until) and until > now


@dataclass(frozen=True, slots=True)
class Brake:
    """What the dispatcher consults before taking a new bead: budgets, the operator's
    override and the accounts paused by rate limits. Times are ISO UTC strings."""

    scopes: tuple[BudgetScope, ...] = ()
    override_until: str = ""
    override_reason: str = ""
    pauses: tuple[AccountPause, ...] = ()

    def overridden(self, now: str) -> bool:
        """True while the operator's override runs."""
        return _live(self.override_until, now)

    def town_stop(self, now: str) -> str | None:
        """Why no new bead is taken (a day or month budget spent, no live override), or None."""
        if self.overridden(now):
            return None
        for scope in self.scopes:
            if scope.kind != "convoy" and scope.level is BrakeLevel.STOP:
                return reason_text(scope)
        return None

    def convoy_stop(self, convoy_id: int | None, now: str) -> str | None:
        """Why no new bead of this convoy is taken (its budget spent), or None."""
        if convoy_id is None or self.overridden(now):
            return None
        for scope in self.scopes:
            if (
                scope.kind == "convoy"
                and scope.convoy_id == convoy_id
                and scope.level is BrakeLevel.STOP
            ):
                return reason_text(scope)
        return None

    def paused(self, account: str, now: str) -> AccountPause | None:
        """The live pause of an account, or None."""
        for pause in self.pauses:
            if pause.account == account and _live(pause.until, now):
                return pause
        return None

    def level(self, now: str) -> str:
        """ "ok", "warn", "stop" or "overridden" (a stop the override lifts)."""
        levels = {scope.level for scope in self.scopes}
        if BrakeLevel.STOP in levels:
            return "overridden" if self.overridden(now) else BrakeLevel.STOP.value
        if BrakeLevel.WARN in levels:
            return BrakeLevel.WARN.value
        return BrakeLevel.OK.value

    def town_level(self, now: str) -> str:
        """The level for the whole town ("ok", "warn", "stop" or "overridden"): a spent
        convoy holds only that convoy's beads, so it never makes the town's level "stop"; its
        stop lifted by the override still reads "overridden"."""
        town = replace(self, scopes=tuple(s for s in self.scopes if s.kind != "convoy"))
        level = town.level(now)
        if level in ("ok", "warn") and self.level(now) == "overridden":
            return "overridden"
        return level

    def convoys_stopped(self, now: str) -> list[str]:
        """The convoys whose budget is spent, with no override lifting it (raw names: pass
        them through `visible` before showing them)."""
        if self.overridden(now):
            return []
        return [s.name for s in self.scopes if s.kind == "convoy" and s.level is BrakeLevel.STOP]


@dataclass(frozen=True, slots=True)
class Span:
    """An agent held a bead from `start` to `end` ('' = still holds it): a dispatch, or a
    hook by hand (`dispatch_id` None)."""

    agent: str
    bead_id: int
    dispatch_id: int | None
    start: str
    end: str = ""


def _parse(at: str) -> datetime:
    text = at.replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def attribute(spans: Sequence[Span], agent: str, at: str, grace_seconds: float) -> Span | None:
    """The bead a sample of `agent` taken at `at` belongs to: the latest span of that agent
    that started at or before `at` and is still open, or ended no more than `grace_seconds`
    before it (the turn that ran `at submit` finishes after the hand-over). A tie goes to
    the larger dispatch id. None means spend with no bead, which is never spread."""
    when = _parse(at)
    best: Span | None = None
    for span in spans:
        if span.agent != agent or _parse(span.start) > when:
            continue
        if span.end and (when - _parse(span.end)).total_seconds() > grace_seconds:
            continue
        if best is None or _later(span, best):
            best = span
    return best


def _later(span: Span, other: Span) -> bool:
    a, b = _parse(span.start), _parse(other.start)
    if a != b:
        return a > b
    return (span.dispatch_id or 0) > (other.dispatch_id or 0)


class Verdict(StrEnum):
    """What an attempt at a bead came to, for waste."""

    KEPT = "kept"
    WASTE = "waste"
    OPEN = "in progress"
    PENDING = "in review"


def verdicts(bead_status: BeadStatus, outcomes: Sequence[str]) -> list[Verdict]:
    """One verdict per attempt (oldest first; outcome '' = still open). A done bead keeps its
    last submitted attempt and wastes the rest; a failed or escalated bead wastes them all;
    otherwise an open attempt is in progress, the last submitted one in review, and any other
    closed attempt waste."""
    n = len(outcomes)
    submitted = [i for i, outcome in enumerate(outcomes) if outcome == "submitted"]
    last_submitted = submitted[-1] if submitted else -1
    if bead_status is BeadStatus.DONE:
        if last_submitted < 0:
            # Merged with no submitted attempt on record: the newest attempt is the kept one.
            last_submitted = n - 1
        return [Verdict.KEPT if i == last_submitted else Verdict.WASTE for i in range(n)]
    if bead_status in (BeadStatus.FAILED, BeadStatus.ESCALATED):
        return [Verdict.WASTE] * n
    out: list[Verdict] = []
    for i, outcome in enumerate(outcomes):
        if outcome == "":
            out.append(Verdict.OPEN)
        elif i == last_submitted and not any(o == "" for o in outcomes[i + 1 :]):
            out.append(Verdict.PENDING)
        else:
            out.append(Verdict.WASTE)
    return out


@dataclass(frozen=True, slots=True)
class AttemptCost:
    """One attempt at a bead (a dispatch, or a hook by hand) and what it spent."""

    dispatch_id: int | None
    agent: str
    role: str
    start: str
    end: str
    outcome: str
    input: int
    output: int
    cache_read: int
    cache_write: int
    cost: Cost
    verdict: Verdict = Verdict.OPEN


def _money(usd: float) -> str:
    return f"${usd:,.2f}"


def reason_text(scope: BudgetScope) -> str:
    """Why dispatch holds, in words an operator can act on, e.g. "budget: $41.20 of $40.00
    today (costs.daily_budget_usd); raise it or run `at cost override`"."""
    where = _SCOPE_WORDS.get(scope.kind, f"for convoy {scope.name}")
    least = "" if scope.spent.complete else "at least "
    return (
        f"budget: {least}{_money(scope.spent.usd)} of {_money(scope.budget_usd)} {where} "
        f"({scope.key}); raise it or run `at cost override`"
    )


def pause_text(pause: AccountPause, now: str) -> str:
    """ "rate limited: account claude until 15:04 UTC (in 12 min), shown by polecat-2"."""
    until = _parse(pause.until)
    left = max(0.0, (until - _parse(now)).total_seconds())
    minutes = int((left + 59) // 60)
    span = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
    guess = "" if pause.reset_parsed else ", no reset time shown"
    return (
        f"rate limited: account {pause.account} until {until:%H:%M} UTC (in {span}){guess}, "
        f"shown by {pause.agent}"
    )


__all__ = [
    "AccountPause",
    "AttemptCost",
    "Brake",
    "BrakeLevel",
    "BudgetScope",
    "Cost",
    "Price",
    "Rate",
    "Span",
    "Verdict",
    "attribute",
    "pause_text",
    "reason_text",
    "verdicts",
]
