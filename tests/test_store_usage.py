"""The cost store: the v6 migration, the hourly rollup the triggers keep, atomic ingestion
batches, windowed rollups, attempts and waste, pauses and the override."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tundra_tui.domain.costs import AccountPause, Cost, Verdict
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.metrics import KpiSnapshot, UsageSample
from tundra_tui.store import Store, open_store
from tundra_tui.store import db as db_module
from tundra_tui.store.schema import MIGRATIONS, SCHEMA_VERSION
from tundra_tui.usage.records import Cursor, LoggedCost

HOURLY_KEY = "hour, agent, role, runtime, model, bead_id, dispatch_id"
HOURLY_SUMS = (
    "samples, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, "
    "unpriced_samples, unpriced_tokens, logged_cost_usd, logged_samples"
)
RAW_GROUPED = (
    "SELECT substr(at, 1, 13), agent, role, runtime, model, coalesce(bead_id, 0), "
    "coalesce(dispatch_id, 0), count(*), sum(input_tokens), sum(output_tokens), "
    "sum(cache_read_tokens), sum(cache_write_tokens), sum(cost_usd), sum(1 - priced), "
    "sum(CASE WHEN priced THEN 0 ELSE input_tokens + output_tokens + cache_read_tokens "
    "+ cache_write_tokens END), coalesce(sum(logged_cost_usd), 0), count(logged_cost_usd) "
    "FROM metrics GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7"
)


def _sample(at: str, agent: str = "a", key: str = "", **fields: Any) -> UsageSample:
    return UsageSample(at=at, agent=agent, source_key=key, **fields)


def _rounded(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


async def _hourly_equals_raw(store: Store) -> None:
    hourly = await store.db.fetchall(
        f"SELECT {HOURLY_KEY}, {HOURLY_SUMS} FROM usage_hourly ORDER BY 1, 2, 3, 4, 5, 6, 7"
    )
    raw = await store.db.fetchall(RAW_GROUPED)
    assert _rounded(list(hourly)) == _rounded(list(raw))


async def test_v5_town_upgrades_dropping_legacy_claude_rows_and_filling_hourly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "town.db"
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:5])
        patch.setattr(db_module, "SCHEMA_VERSION", 5)
        store = await open_store(path)
        async with store.db.write() as conn:  # as a v5 build wrote them
            for key, cost in (("claude:msg1", 1.0), ("demo:1", 0.25), ("demo:2", 0.5)):
                await conn.execute(
                    "INSERT INTO metrics (at, agent, runtime, model, input_tokens, cost_usd, "
                    "source_key) VALUES ('2026-12-01T10:15:00.000000Z', 'a', 'demo', "
                    "'demo-sonnet', 10, ?, ?)",
                    (cost, key),
                )
        await store.close()
    store = await open_store(path)
    try:
        assert await store.db.schema_version() == SCHEMA_VERSION >= 6
        keys = [r[0] for r in await store.db.fetchall("SELECT source_key FROM metrics")]
        assert sorted(keys) == ["demo:1", "demo:2"]
        rows = await store.metrics.rollup("day")
        assert [(r.key, r.samples, r.input_tokens, r.cost_usd) for r in rows] == [
            ("2026-12-01", 2, 20, pytest.approx(0.75))
        ]
        await _hourly_equals_raw(store)
        assert await store.usage.price_book() == ""
        assert await store.usage.override() == ("", "")
    finally:
        await store.close()


async def test_v6_town_upgrades_keeping_its_kpi_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v7 gives a snapshot the unpriced part of its burn rate; the snapshots a v6 daemon
    took stay, read as having none."""
    path = tmp_path / "town.db"
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:6])
        patch.setattr(db_module, "SCHEMA_VERSION", 6)
        store = await open_store(path)
        async with store.db.write() as conn:  # as a v6 daemon wrote it
            await conn.execute(
                "INSERT INTO kpi_snapshots (at, beads_active, cost_today_usd, tokens_today, "
                "burn_usd_hour, unpriced_tokens_today) "
                "VALUES ('2026-12-01T10:15:00.000000Z', 2, 1.25, 900, 0.5, 40)"
            )
        await store.close()
    store = await open_store(path)
    try:
        assert await store.db.schema_version() == SCHEMA_VERSION >= 7
        old = await store.metrics.latest_snapshot()
        assert old is not None
        assert (old.beads_active, old.cost_today_usd, old.tokens_today) == (2, 1.25, 900)
        assert (old.burn_usd_hour, old.unpriced_tokens_today, old.burn_unpriced_tokens) == (
            0.5,
            40,
            0,
        )
        new = KpiSnapshot(at="2026-12-01T10:20:00.000000Z", burn_unpriced_tokens=77)
        await store.metrics.snapshot(new)
        assert await store.metrics.latest_snapshot() == new
    finally:
        await store.close()


async def test_record_batch_keeps_samples_logged_costs_and_cursor_together(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "town.db")
    try:
        source = await store.usage.add_source(runtime="claude", agent="a", path="/logs/s.jsonl")
        assert source.cursor == Cursor() and isinstance(source.cursor, Cursor)
        again = await store.usage.add_source(runtime="claude", agent="b", path="/logs/s.jsonl")
        assert again.id == source.id and again.agent == "a"
        good = _sample("2026-12-01T10:00:00.000000Z", key="k1", input_tokens=5, cost_usd=0.1)
        # A value SQLite cannot store fails the batch after the good sample was inserted.
        bad = _sample("2026-12-01T10:00:01.000000Z", key="k2", input_tokens=object())
        moved = Cursor(offset=120, device=1, inode=2, head=b"{", state={"model": "x"})
        logged = LoggedCost("claude", "s1", 0.5, False, "2026-12-01T10:00:02.000000Z")
        with pytest.raises((TundraError, sqlite3.Error)):
            await store.metrics.record_batch(
                [good, bad], [logged], source_id=source.id, cursor=moved, bad_lines=3
            )
        # The failure rolled everything back: no sample, no figure, the old cursor.
        assert await store.db.fetchall("SELECT * FROM metrics") == []
        assert await store.db.fetchall("SELECT * FROM logged_costs") == []
        kept = await store.usage.source(source.id)
        assert kept is not None and kept.cursor == Cursor() and kept.bad_lines == 0
        added = await store.metrics.record_batch(
            [good, good], [logged], source_id=source.id, cursor=moved, bad_lines=3
        )
        assert added == 1
        kept = await store.usage.source(source.id)
        assert kept is not None and kept.cursor == moved and kept.bad_lines == 3
        pairs = await store.metrics.logged()
        assert [(p.session, p.agent, p.cli_cost_usd) for p in pairs] == [("s1", "a", 0.5)]
        # An older cumulative figure never replaces a newer one.
        old = LoggedCost("claude", "s1", 0.1, False, "2026-12-01T09:00:00.000000Z")
        await store.metrics.record_batch([], [old], source_id=source.id, cursor=moved)
        assert (await store.metrics.logged())[0].cli_cost_usd == 0.5
    finally:
        await store.close()


AGENTS = st.sampled_from(["a", "b"])
TIMES = st.sampled_from(
    [
        "2026-12-01T09:59:59.999999Z",
        "2026-12-01T10:00:00.000000Z",
        "2026-12-01T10:30:00.000000Z",
        "2026-12-01T11:05:00.000000Z",
        "2026-12-02T00:00:00.000000Z",
        "2026-12-02T13:45:10.500000Z",
    ]
)
SAMPLES = st.builds(
    lambda at, agent, model, bead, priced, tokens, cost, logged: UsageSample(
        at=at,
        agent=agent,
        model=model,
        runtime="claude",
        role="crew",
        bead_id=bead,
        dispatch_id=None if bead is None else bead * 10,
        input_tokens=tokens,
        output_tokens=tokens // 2,
        cache_read_tokens=tokens // 3,
        cost_usd=cost if priced else 0.0,
        priced=priced,
        logged_cost_usd=logged,
    ),
    TIMES,
    AGENTS,
    st.sampled_from(["m1", "m2"]),
    st.sampled_from([None, 1, 2]),
    st.booleans(),
    st.integers(0, 1000),
    st.floats(0, 5, allow_nan=False),
    st.one_of(st.none(), st.floats(0, 5, allow_nan=False)),
)
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["reprice", "unprice", "move", "delete"]),
        st.integers(0, 30),
        st.floats(0, 3),
    ),
    max_size=12,
)
WINDOWS = st.tuples(
    st.sampled_from(["", "2026-12-01T10:10:00.000000Z", "2026-12-01T10:00:00.000000Z"]),
    st.sampled_from(["", "2026-12-01T11:05:00.000000Z", "2026-12-02T13:00:00.000000Z"]),
)


def _python_rollup(rows: list[Any], since: str, until: str) -> dict[str, tuple[Any, ...]]:
    groups: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0, 0])
    for at, agent, tokens, cost, priced, all_tokens in rows:
        if at < since or (until and at >= until):
            continue
        g = groups[agent]
        g[0] += 1
        g[1] += tokens
        g[3] += cost
        g[4] += 0 if priced else 1
        g[5] += 0 if priced else all_tokens
    return {k: (v[0], v[1], round(v[3], 6), v[4], v[5]) for k, v in groups.items()}


def test_hourly_rollup_equals_the_raw_samples_after_any_writes(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(open_store(tmp_path / "town.db"))
    counter = iter(range(10**9))

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(SAMPLES, max_size=25), EDITS, WINDOWS)
    def check(samples: list[UsageSample], edits: list[Any], window: tuple[str, str]) -> None:
        async def run() -> None:
            async with store.db.write() as conn:
                await conn.execute("DELETE FROM metrics")
            keyed = [
                UsageSample(**{**_fields(s), "source_key": f"k{next(counter)}"}) for s in samples
            ]
            await store.metrics.record(keyed)
            ids = [r[0] for r in await store.db.fetchall("SELECT id FROM metrics ORDER BY id")]
            for kind, pick, value in edits:
                if not ids:
                    break
                row_id = ids[pick % len(ids)]
                if kind == "reprice":
                    await store.metrics.reprice([(row_id, value, True, "genai-prices 0.2.5")])
                elif kind == "unprice":
                    await store.metrics.reprice([(row_id, 0.0, False, "")])
                else:
                    async with store.db.write() as conn:
                        if kind == "move":
                            await conn.execute(
                                "UPDATE metrics SET bead_id = ?, dispatch_id = NULL WHERE id = ?",
                                (None if value < 1 else int(value), row_id),
                            )
                        else:
                            await conn.execute("DELETE FROM metrics WHERE id = ?", (row_id,))
                            ids.remove(row_id)
            await _hourly_equals_raw(store)
            since, until = window
            raw = await store.db.fetchall(
                "SELECT at, agent, input_tokens, cost_usd, priced, input_tokens + output_tokens "
                "+ cache_read_tokens + cache_write_tokens FROM metrics"
            )
            expected = _python_rollup(list(raw), since, until)
            rolled = await store.metrics.rollup("agent", since=since, until=until)
            got = {
                r.key: (
                    r.samples,
                    r.input_tokens,
                    round(r.cost_usd, 6),
                    r.unpriced_samples,
                    r.unpriced_tokens,
                )
                for r in rolled
            }
            assert got == expected
            total = await store.metrics.cost(since=since, until=until)
            assert total.usd == pytest.approx(sum(v[2] for v in expected.values()), abs=1e-6)
            assert total.unpriced_tokens == sum(v[4] for v in expected.values())

        loop.run_until_complete(run())

    try:
        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def _fields(sample: UsageSample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in UsageSample.__dataclass_fields__}


async def _bead(store: Store, title: str, status: str, convoy: int | None = None) -> int:
    async with store.db.write() as conn:
        cursor = await conn.execute(
            "INSERT INTO beads (title, status, convoy_id, created_at, updated_at) "
            "VALUES (?, ?, ?, '', '')",
            (title, status, convoy),
        )
        return int(cursor.lastrowid or 0)


async def _dispatch(store: Store, bead: int, agent: str, start: str, end: str, outcome: str) -> int:
    async with store.db.write() as conn:
        cursor = await conn.execute(
            "INSERT INTO dispatches (bead_id, agent, kind, state, outcome, ready_at, claimed_at, "
            "closed_at) VALUES (?, ?, 'crew', ?, ?, ?, ?, ?)",
            (bead, agent, "closed" if end else "claimed", outcome, start, start, end),
        )
        return int(cursor.lastrowid or 0)


async def test_attempts_waste_bead_costs_and_the_footer_facts(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "town.db")
    try:
        async with store.db.write() as conn:
            await conn.execute(
                "INSERT INTO convoys (name, created_at) VALUES ('k', '2026-12-01T00:00:00Z')"
            )
        done = await _bead(store, "reworked", "done", convoy=1)
        failed = await _bead(store, "given up", "failed", convoy=1)
        first = await _dispatch(store, done, "a", "T09", "T10", "returned")
        kept = await _dispatch(store, done, "b", "T10", "T11", "submitted")
        lost = await _dispatch(store, failed, "a", "T11", "T12", "failed")
        at = "2026-12-01T10:00:00.000000Z"
        await store.metrics.record(
            [
                _sample(
                    at, "a", "s1", bead_id=done, dispatch_id=first, input_tokens=10, cost_usd=1
                ),
                _sample(at, "b", "s2", bead_id=done, dispatch_id=kept, input_tokens=20, cost_usd=2),
                _sample(
                    at,
                    "b",
                    "s3",
                    bead_id=done,
                    dispatch_id=kept,
                    model="fake-model",
                    input_tokens=7,
                    priced=False,
                ),
                _sample(at, "a", "s4", bead_id=failed, dispatch_id=lost, cost_usd=4),
                _sample(
                    at, "a", "s5", runtime="codex", session="x", cost_usd=0.5, logged_cost_usd=0.6
                ),
            ]
        )
        attempts = await store.metrics.bead_attempts(done)
        assert [(a.agent, a.outcome, a.verdict, a.input) for a in attempts] == [
            ("a", "returned", Verdict.WASTE, 10),
            ("b", "submitted", Verdict.KEPT, 27),
        ]
        assert attempts[1].cost == Cost(2.0, 1, 7)
        assert [a.verdict for a in await store.metrics.bead_attempts(failed)] == [Verdict.WASTE]
        costs = await store.metrics.bead_costs([done, failed, 99])
        assert costs == {done: Cost(3.0, 1, 7), failed: Cost(4.0)}
        assert (await store.metrics.cost(convoy_id=1)).usd == pytest.approx(7.0)
        assert await store.metrics.unpriced_models() == [("", "fake-model", 7)]
        no_bead, samples = await store.metrics.no_bead()
        assert (no_bead.usd, samples) == (pytest.approx(0.5), 1)
        assert [
            (p.runtime, p.cli_cost_usd, p.our_cost_usd) for p in await store.metrics.logged()
        ] == [("codex", pytest.approx(0.6), pytest.approx(0.5))]
        by_bead = await store.metrics.rollup("bead")
        assert {(r.key, r.label) for r in by_bead} == {
            (str(done), "reworked"),
            (str(failed), "given up"),
            ("", ""),
        }
        by_convoy = {r.key: r.cost_usd for r in await store.metrics.rollup("convoy")}
        assert by_convoy == {"k": pytest.approx(7.0), "": pytest.approx(0.5)}
        assert {r.key for r in await store.metrics.rollup("role")} == {""}
        total = await store.metrics.totals()
        assert total.samples == 5 and total.logged_cost_usd == pytest.approx(0.6)
        kpi = KpiSnapshot(at=at, agents_by_state={"working": 2}, burn_usd_hour=1.5)
        await store.metrics.snapshot(kpi)
        assert await store.metrics.latest_snapshot() == kpi
        assert (await store.metrics.latest_by_agent())["b"].priced is False
    finally:
        await store.close()


async def test_pauses_extend_only_clear_with_events_and_the_override(tmp_path: Path) -> None:
    store = await open_store(
        tmp_path / "town.db", clock=lambda: datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    )
    try:
        now = "2026-12-01T10:00:00.000000Z"
        later = "2026-12-01T10:30:00.000000Z"
        await store.usage.pause_account(
            AccountPause("acct", "claude", "p1", later, "limit · resets 10:30", True, now)
        )
        # A shorter pause shown meanwhile never shortens it.
        short = await store.usage.pause_account(
            account="acct", runtime="claude", agent="p2", until="2026-12-01T10:05:00.000000Z"
        )
        assert short.until == later
        assert [p.account for p in await store.usage.live_pauses(now)] == ["acct"]
        assert await store.usage.live_pauses(later) == []
        assert [p.account for p in await store.usage.expired_pauses(later)] == ["acct"]
        assert await store.usage.clear_pause("acct", actor="operator")
        assert not await store.usage.clear_pause("acct", actor="operator")
        assert await store.usage.live_pauses(now) == []
        await store.usage.set_override(later, "release day", actor="operator")
        assert await store.usage.override() == (later, "release day")
        await store.usage.set_override("", actor="operator")
        assert await store.usage.override() == ("", "")
        kinds = [e.kind for e in await store.events.find(limit=20)]
        for kind in (
            "account.paused",
            "account.cleared",
            "costs.override",
            "costs.override_cleared",
        ):
            assert kind in kinds
        run = await store.usage.run_started(
            agent="a",
            runtime="claude",
            role="crew",
            account="claude",
            cwd="/w",
            pid=7,
            roots={"claude": "/h/.claude"},
            session_hint="uuid",
            started_at=now,
        )
        assert await store.usage.open_runs() == [run]
        assert await store.usage.runs_between(later, "") == [run]
        assert await store.usage.end_open_runs(at=later) == 1
        assert await store.usage.open_runs() == []
        assert await store.usage.runs_between("2026-12-01T11:00:00.000000Z", "") == []
        assert [r.roots for r in await store.usage.runs_of("a")] == [{"claude": "/h/.claude"}]
    finally:
        await store.close()


def test_legacy_and_new_rows_share_one_unique_key_space(tmp_path: Path) -> None:
    """`source_key` stays the one idempotency key, across record and record_batch."""

    async def run() -> int:
        store = await open_store(tmp_path / "town.db")
        try:
            s = _sample("2026-12-01T10:00:00.000000Z", key="k")
            await store.metrics.record([s])
            return await store.metrics.record_batch([s], [], source_id=None, cursor=None)
        finally:
            await store.close()

    assert asyncio.run(run()) == 0
    conn = sqlite3.connect(tmp_path / "town.db")
    try:
        assert conn.execute("SELECT count(*) FROM usage_hourly").fetchone() == (1,)
    finally:
        conn.close()


async def test_a_call_logged_again_with_more_output_grows_and_never_shrinks(
    tmp_path: Path,
) -> None:
    """Claude Code writes one answer as several lines with the same ids, its output tokens
    counted up to the last: the stored call takes the grown figures (the hourly rollup
    follows) and keeps where it was attributed; a smaller copy changes nothing."""
    store = await open_store(tmp_path / "town.db")
    try:
        at = "2026-12-01T10:00:00.000000Z"
        first = _sample(at, key="claude:m1:r1", input_tokens=5, output_tokens=1, bead_id=7)
        grown = _sample(at, key="claude:m1:r1", input_tokens=5, output_tokens=611, cost_usd=0.2)
        assert await store.metrics.record([first]) == 1
        assert await store.metrics.record([grown]) == 1
        assert await store.metrics.record([first]) == 0
        rows = await store.db.fetchall("SELECT output_tokens, cost_usd, bead_id FROM metrics")
        assert [tuple(r) for r in rows] == [(611, 0.2, 7)]
        await _hourly_equals_raw(store)
    finally:
        await store.close()


async def test_a_sample_is_priced_again_with_the_provider_it_was_priced_with(
    tmp_path: Path,
) -> None:
    """Aider names the provider (`openrouter/anthropic/…`); pricing stored rows again (a new
    price table, an override edited) must ask for the same provider, or the call that was
    priced at ingest turns unpriced."""
    from tundra_tui.daemon.usage import _priced_again
    from tundra_tui.usage.ingest import to_sample
    from tundra_tui.usage.price_book import PriceBook
    from tundra_tui.usage.price_table import GenaiTable
    from tundra_tui.usage.records import RawSample

    book = PriceBook({}, GenaiTable())
    raw = RawSample(
        at="2026-12-01T10:00:00.000000Z",
        runtime="aider",
        provider="openrouter",
        model="anthropic/claude-sonnet-4.5",
        session="s",
        source_key="aider:x:1",
        input=4000,
        output=30,
    )
    sample = to_sample(raw, agent="a", role="crew", span=None, book=book, source_id=None)
    assert sample.priced and sample.provider == "openrouter"
    store = await open_store(tmp_path / "town.db")
    try:
        await store.metrics.record([sample])
        [row] = await store.metrics.reprice_groups()
        assert row.provider == "openrouter"
        [(_, cost, priced, _)] = _priced_again(book, [row])
        assert priced and cost == pytest.approx(sample.cost_usd)
    finally:
        await store.close()
