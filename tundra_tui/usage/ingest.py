"""One followed log into the store: read, attribute, price, record, in bounded steps.

Each step reads at most `max_bytes` of the source in a thread (the readers are plain
blocking I/O); then, in a thread too (a price lookup may run genai-prices), it puts the
agent, its role and the bead on its hook at the sample's time on every sample
(`domain.costs.attribute` over the agent's spans) and prices it by the sample's day
(`PriceBook`: an unknown model is unpriced, never $0); and it records the samples, the
CLI's own cost figures and the source's new cursor in one transaction: a crash between
steps re-reads from the cursor the store holds, and keys make a re-read count nothing
twice. Steps repeat until the reader has nothing complete left, so memory stays bounded
by one step however much was written.

`SpanIndex` is what attribution reads: the agent's dispatches (attempts) and hooks by hand
(a `bead.hook` with no dispatch, ending when the bead leaves the agent) that overlap the step's
samples in time (`Spans` reads them per step, by index: a name reused for months has
thousands of old dispatches, never read).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from tundra_tui.domain.clock import iso
from tundra_tui.domain.costs import Price, Span, attribute
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import Store
from tundra_tui.usage.records import READERS, Cursor, RawSample

MAX_BYTES = 16 << 20
DEFAULT_GRACE_SECONDS = 120.0


class PriceLookup(Protocol):
    """Prices by runtime, provider, model and the sample's time (`usage.price_book.PriceBook`)."""

    def price(self, runtime: str, provider: str, model: str, at: str) -> Price | None: ...


class SpanSource(Protocol):
    """Where a step's spans come from (`Spans`: read per window; a `SpanIndex`: itself)."""

    async def around(self, agent: str, since: str, until: str) -> SpanIndex: ...


class Source(Protocol):
    """A followed log as the store keeps it (`usage_sources`)."""

    @property
    def id(self) -> int: ...

    @property
    def runtime(self) -> str: ...

    @property
    def agent(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def cursor(self) -> Cursor: ...


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one `ingest_source` recorded: new samples, garbage lines skipped, and whether
    the source is read to its end (False: the store refused, or there is more)."""

    added: int
    bad_lines: int
    eof: bool
    beads: frozenset[int] = frozenset()
    """The beads the new samples went to (a `usage` notice names them)."""
    cursor: Cursor | None = None


class SpanIndex:
    """The agents' spans on beads, for `attribute`; built once per batch of sources."""

    def __init__(self, spans: Iterable[Span], grace_seconds: float = DEFAULT_GRACE_SECONDS):
        self.grace_seconds = grace_seconds
        self._by_agent: dict[str, list[Span]] = defaultdict(list)
        for span in spans:
            self._by_agent[span.agent].append(span)

    async def around(self, agent: str, since: str, until: str) -> SpanIndex:
        """Itself: an index built beforehand serves any window."""
        return self

    def attribute(self, agent: str, at: str) -> Span | None:
        """The span a sample of `agent` at `at` belongs to, or None (no bead)."""
        spans = self._by_agent.get(agent)
        if not spans:
            return None
        return attribute(spans, agent, at, self.grace_seconds)

    def __len__(self) -> int:
        return sum(len(spans) for spans in self._by_agent.values())

    @classmethod
    async def load(
        cls,
        store: Store,
        agents: Iterable[str],
        since: str = "",
        until: str = "",
        *,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> SpanIndex:
        """The spans of `agents` that overlap [since − grace, until] ('' = open): their
        dispatches and their hooks by hand. Indexed reads on the store's connection (its
        thread): an agent's old dispatches are never read, however many a reused name has."""
        names = sorted(set(agents))
        if not names:
            return cls((), grace_seconds)
        # '0' sorts after '' (open) and before any time; '9' after any time.
        after = (_before(since, grace_seconds) if since else "") or "0"
        until = until or "9"
        spans: list[Span] = []
        for name in names:
            rows = await store.db.fetchall(
                "SELECT id, bead_id, agent, claimed_at, closed_at FROM dispatches "
                "INDEXED BY dispatches_by_agent WHERE agent = ? AND closed_at = '' "
                "AND claimed_at <= ? "
                "UNION ALL "
                "SELECT id, bead_id, agent, claimed_at, closed_at FROM dispatches "
                "INDEXED BY dispatches_by_agent WHERE agent = ? AND closed_at >= ? "
                "AND claimed_at <= ?",
                (name, until, name, after, until),
            )
            spans += [Span(str(r[2]), int(r[1]), int(r[0]), str(r[3]), str(r[4])) for r in rows]
            hooks = await store.db.fetchall(
                f"SELECT bead_id, agent, at, ended FROM ({_HAND_HOOKS}) "
                "WHERE ended = '' OR ended >= ?",
                (name, until, after),
            )
            spans += [Span(str(r[1]), int(r[0]), None, str(r[2]), str(r[3])) for r in hooks]
        return cls(spans, grace_seconds)


_HAND_HOOKS = (
    "SELECT e.bead_id AS bead_id, e.agent AS agent, e.at AS at, coalesce((SELECT min(n.at) "
    "FROM events n WHERE n.bead_id = e.bead_id AND n.id > e.id AND n.kind LIKE 'bead.%' "
    "AND json_valid(n.data) AND (json_extract(n.data, '$.to') NOT IN ('hooked', 'slung') "
    "OR json_extract(n.data, '$.assignee') != e.agent)), '') "
    "AS ended FROM events e INDEXED BY events_hooks_by_agent "
    "WHERE e.kind = 'bead.hook' AND e.agent = ? AND e.bead_id IS NOT NULL "
    "AND e.at <= ? "
    "AND (CASE WHEN json_valid(e.data) THEN json_extract(e.data, '$.dispatch') END) IS NULL"
)
"""An agent's hooks by hand (a dispatch's own hook is its dispatch's span), each with the
time it ended ('' = still holds it): the bead's first later move out of hooked or slung
(unhooked, submitted, done, failed, given back when its agent stopped), or to another
agent. A note or an edit moves nothing and ends nothing."""


def _before(at: str, seconds: float) -> str:
    """The ISO time `seconds` before `at` (the store's form); '' (no bound) if `at` is none."""
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment - timedelta(seconds=seconds))


class Spans:
    """Loads, for each step of a source, only the spans its samples' times overlap."""

    def __init__(self, store: Store, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self.store = store
        self.grace_seconds = grace_seconds
        self.read = 0
        """Spans read from the store so far (what attribution cost)."""

    async def around(self, agent: str, since: str, until: str) -> SpanIndex:
        index = await SpanIndex.load(
            self.store, (agent,), since, until, grace_seconds=self.grace_seconds
        )
        self.read += len(index)
        return index


def to_sample(
    raw: RawSample,
    *,
    agent: str,
    role: str,
    span: Span | None,
    book: PriceLookup,
    source_id: int | None,
) -> UsageSample:
    """A logged call as the store keeps it: attributed and priced (or flagged unpriced)."""
    price = book.price(raw.runtime, raw.provider, raw.model, raw.at)
    if price is not None:
        cost = price.cost(
            input=raw.input,
            output=raw.output,
            cache_read=raw.cache_read,
            cache_write=raw.cache_write,
            cache_write_1h=raw.cache_write_1h,
        )
    return UsageSample(
        at=raw.at,
        agent=agent,
        model=raw.model,
        runtime=raw.runtime,
        bead_id=span.bead_id if span is not None else None,
        input_tokens=raw.input,
        output_tokens=raw.output,
        cache_read_tokens=raw.cache_read,
        cache_write_tokens=raw.cache_write,
        cost_usd=round(cost, 9) if price is not None else 0.0,
        source_key=raw.source_key,
        role=role,
        session=raw.session,
        dispatch_id=span.dispatch_id if span is not None else None,
        cache_write_1h_tokens=raw.cache_write_1h,
        priced=price is not None,
        price_source=price.source if price is not None else "",
        logged_cost_usd=raw.logged_cost_usd,
        source_id=source_id,
        provider=raw.provider,
    )


def _samples(
    raws: Sequence[RawSample],
    index: SpanIndex,
    *,
    agent: str,
    role: str,
    book: PriceLookup,
    source_id: int,
) -> list[UsageSample]:
    """A step's calls attributed and priced (in a thread)."""
    return [
        to_sample(
            raw,
            agent=agent,
            role=role,
            span=index.attribute(agent, raw.at),
            book=book,
            source_id=source_id,
        )
        for raw in raws
    ]


async def ingest_source(
    store: Store,
    source: Source,
    *,
    book: PriceLookup,
    spans: SpanSource,
    role_of: Callable[[str], str],
    max_bytes: int = MAX_BYTES,
    not_before: str = "",
) -> IngestResult:
    """Read `source` from its stored cursor to its end into the store (see the module
    docstring). A store refusal raises (TundraError) after the steps already recorded.

    Calls logged before `not_before` (an ISO time) are read past, never recorded: a session
    the operator resumed or continued carries their earlier calls into the new log, at
    their own dates, and those are not this agent's spend."""
    reader = READERS.get(source.runtime)
    if reader is None:
        return IngestResult(0, 0, True, cursor=source.cursor)
    cursor = source.cursor
    added = 0
    bad = 0
    beads: set[int] = set()
    role = role_of(source.agent)
    path = Path(source.path)
    while True:
        result = await asyncio.to_thread(reader.read, path, cursor, max_bytes=max_bytes)
        samples: list[UsageSample] = []
        raws = [raw for raw in result.samples if not (not_before and raw.at < not_before)]
        index = SpanIndex(())
        if raws:
            times = [raw.at for raw in raws]
            index = await spans.around(source.agent, min(times), max(times))
        if raws:
            # In a thread: a model not priced yet today is looked up in genai-prices (a
            # millisecond or more each; the first use imports it), never on the loop.
            samples = await asyncio.to_thread(
                _samples, raws, index, agent=source.agent, role=role, book=book, source_id=source.id
            )
        moved = result.cursor != cursor
        if samples or result.logged or moved or result.bad_lines:
            added += await store.metrics.record_batch(
                samples,
                result.logged,
                source_id=source.id,
                cursor=result.cursor,
                bad_lines=result.bad_lines,
            )
        bad += result.bad_lines
        beads.update(s.bead_id for s in samples if s.bead_id is not None)
        cursor = result.cursor
        if result.eof or not moved:
            return IngestResult(added, bad, True, frozenset(beads), cursor)


def agents_of(sources: Sequence[Any]) -> set[str]:
    return {str(s.agent) for s in sources}
