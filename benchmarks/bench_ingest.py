"""Ingest throughput and memory on 1 GB of Claude Code JSONL, and `at cost` on a year (on demand).

    .venv/bin/python benchmarks/bench_ingest.py [--gb 1.0] [--agents 10] [--days 365]
                                                [--calls-per-day 1500] [--skip-year]

1. Writes a Claude Code projects log of `--gb` GB shaped like the real one (research
   real-agents.md §3): per turn a prompt, an answer as two lines (text + tool_use, same
   message and request id, same usage), a tool result of lognormal size (median about 2 KB,
   capped at 64 KB), then the closing answer; about 30% of lines are assistant lines.
2. Ingests it cold with the daemon's own `ingest_source` into a temporary town (a real store,
   the real price book): wall time, MB/s, samples/s, and peak RSS (a 50 ms VmRSS sampler plus
   `ru_maxrss`).
3. Appends 1 MB and times the incremental run from the stored cursor.
4. Synthesises a year of 10 agents (about 1,500 calls per agent per day, 5.5M rows, up to
   now): the first `--measured` rows with `record_batch` in 50k batches (its rate is a figure),
   the rest inserted in bulk with the hourly rollup rebuilt by the migration's own statement
   (the same database, minutes sooner). Then times `at cost`, `at cost --by bead --since 30d`
   and `at cost forecast` as subprocesses (median of 3).

It prints a markdown table and asserts nothing: the figures go into docs/costs.md. It loads
both cores for minutes: nobody should run timed tests meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tundra_tui.domain.clock import iso  # noqa: E402
from tundra_tui.domain.metrics import UsageSample  # noqa: E402
from tundra_tui.store import Store, open_store, schema  # noqa: E402
from tundra_tui.store.usage import UsageSource  # noqa: E402
from tundra_tui.town import Town, init_town  # noqa: E402

MB = 1 << 20
SESSION = "5b0c2a9e-0d1f-4e3a-9b8c-7d6e5f4a3b2c"
CWD = "/home/dev/project"
MODELS = ("claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5")


# ---- the log ---------------------------------------------------------------------------------


def _blob(seed: int) -> str:
    """Text to cut content from: words, code and JSON-escaped newlines, as logs hold."""
    rng = random.Random(seed)
    words = [
        "def",
        "return",
        "self",
        "import",
        "value",
        "file",
        "path",
        "error",
        "test",
        "line",
        "data",
        "the",
        "a",
        "of",
        "to",
        "in",
    ]
    parts = []
    for _ in range(40_000):
        parts.append(rng.choice(words))
        if rng.random() < 0.08:
            parts.append("\\n    ")
    return " ".join(parts)


def claude_lines(seed: int, start: datetime) -> Iterator[str]:
    """An endless Claude Code session log, one JSON line at a time (compact, as written)."""
    rng = random.Random(seed)
    blob = _blob(seed)
    moment = start
    turn = 0

    def text(size: int) -> str:
        at = rng.randrange(0, len(blob) - size - 1)
        return blob[at : at + size].rstrip("\\")  # never cut an escape in half

    def stamp() -> str:
        nonlocal moment
        moment += timedelta(milliseconds=rng.randrange(200, 9000))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def common(kind: str, uuid: str) -> str:
        return (
            f'{{"parentUuid":"p{uuid}","isSidechain":false,"userType":"external","cwd":"{CWD}",'
            f'"sessionId":"{SESSION}","version":"2.1.330","gitBranch":"main","type":"{kind}"'
        )

    def assistant(n: int, block: str, model: str, usage: tuple[int, int, int, int]) -> str:
        inp, out, read, write = usage
        return (
            f'{common("assistant", f"a{turn}-{n}")},"timestamp":"{stamp()}",'
            f'"requestId":"req_{seed}_{turn}_{n // 2}","requestedModel":"{model}",'
            f'"uuid":"a{turn}-{n}","message":{{"id":"msg_{seed}_{turn}_{n // 2}",'
            f'"type":"message","model":"{model}","role":"assistant","content":[{block}],'
            f'"stop_reason":"tool_use","stop_sequence":null,"usage":{{"input_tokens":{inp},'
            f'"cache_creation_input_tokens":{write},"cache_read_input_tokens":{read},'
            f'"output_tokens":{out},"output_tokens_details":{{"thinking_tokens":0}},'
            f'"server_tool_use":{{"web_search_requests":0,"web_fetch_requests":0}},'
            f'"service_tier":"standard","cache_creation":{{"ephemeral_1h_input_tokens":0,'
            f'"ephemeral_5m_input_tokens":{write}}}}}}}}}'
        )

    while True:
        turn += 1
        model = MODELS[turn % 7 % 3]
        yield (
            f'{common("user", f"u{turn}")},"message":{{"role":"user","content":'
            f'"{text(rng.randrange(40, 800))}"}},"uuid":"u{turn}","timestamp":"{stamp()}"}}'
        )
        for call in range(rng.randrange(1, 4)):
            usage = (
                rng.randrange(1, 3000),
                rng.randrange(20, 900),
                rng.randrange(0, 60000),
                rng.randrange(0, 4000),
            )
            text_block = f'{{"type":"text","text":"{text(rng.randrange(60, 1200))}"}}'
            tool_block = (
                f'{{"type":"tool_use","id":"toolu_{turn}_{call}","name":"Bash",'
                f'"input":{{"command":"{text(rng.randrange(10, 200))}","description":"run"}}}}'
            )
            yield assistant(2 * call, text_block, model, usage)
            yield assistant(2 * call + 1, tool_block, model, usage)
            yield (
                f'{{"type":"progress","data":{{"type":"hook_progress","hookEvent":"PostToolUse",'
                f'"hookName":"PostToolUse:Bash","command":"at hook-event"}},'
                f'"sessionId":"{SESSION}","toolUseID":"toolu_{turn}_{call}",'
                f'"timestamp":"{stamp()}","uuid":"g{turn}-{call}"}}'
            )
            yield (
                f'{{"type":"file-history-snapshot","messageId":"m{turn}-{call}","snapshot":'
                f'{{"messageId":"m{turn}-{call}","trackedFileBackups":{{}},'
                f'"timestamp":"{stamp()}"}},"isSnapshotUpdate":false}}'
            )
            size = min(int(rng.lognormvariate(7.6, 1.1)), 64 << 10)
            yield (
                f'{common("user", f"t{turn}-{call}")},"message":{{"role":"user","content":'
                f'[{{"tool_use_id":"toolu_{turn}_{call}","type":"tool_result",'
                f'"content":"{text(max(size, 10))}","is_error":false}}]}},'
                f'"uuid":"t{turn}-{call}","timestamp":"{stamp()}"}}'
            )
        if turn % 3 == 0:
            yield (
                f'{{"type":"system","subtype":"turn_duration","durationMs":9205,'
                f'"messageCount":13,"sessionId":"{SESSION}","timestamp":"{stamp()}"}}'
            )


def write_log(path: Path, size: int, seed: int, start: datetime) -> tuple[int, int]:
    """Append `size` bytes (whole lines) of the log to `path`; (lines, assistant lines)."""
    written = lines = assistants = 0
    with path.open("a", encoding="utf-8") as handle:
        buffer: list[str] = []
        for line in claude_lines(seed, start):
            buffer.append(line)
            written += len(line) + 1
            lines += 1
            assistants += line.startswith('{"parentUuid":"pa')
            if len(buffer) >= 2000:
                handle.write("\n".join(buffer) + "\n")
                buffer.clear()
            if written >= size:
                break
        if buffer:
            handle.write("\n".join(buffer) + "\n")
    return lines, assistants


# ---- memory ----------------------------------------------------------------------------------


class RssSampler:
    """Peak VmRSS of this process, sampled every 50 ms in a thread."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.peak_kb = self.now_kb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def now_kb() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, self.now_kb())


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- ingestion ---------------------------------------------------------------------------------


async def _source(store: Store, path: Path) -> UsageSource:
    """The stored source for `path` (its cursor as the store holds it)."""
    for source in await store.usage.sources():
        if source.path == str(path):
            return source
    raise LookupError(path)


async def ingest(store: Store, town: Town, path: Path) -> tuple[int, float, int]:
    """One `ingest_source` run over `path` from its stored cursor: (added, seconds, bad)."""
    from tundra_tui.config import load_config
    from tundra_tui.usage.ingest import SpanIndex, ingest_source
    from tundra_tui.usage.price_book import PriceBook
    from tundra_tui.usage.price_table import GenaiTable

    book = PriceBook.from_config(load_config(town), GenaiTable())
    source = await _source(store, path)
    started = time.perf_counter()
    result = await ingest_source(
        store, source, book=book, spans=SpanIndex(()), role_of=lambda _agent: "crew"
    )
    return result.added, time.perf_counter() - started, result.bad_lines


async def bench_log(gb: float, work: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    town, _ = init_town(work / "town")
    log = work / "projects" / "-home-dev-project" / f"{SESSION}.jsonl"
    log.parent.mkdir(parents=True)
    size = int(gb * 1024 * MB)
    started = time.perf_counter()
    lines, assistants = write_log(log, size, seed=1, start=datetime(2026, 1, 5, tzinfo=UTC))
    written = log.stat().st_size
    rows.append(
        (
            "log written",
            f"{written / MB:,.0f} MB, {lines:,} lines, "
            f"{assistants / lines:.0%} assistant, in {time.perf_counter() - started:.1f} s",
        )
    )
    store = await open_store(town.db_path)
    try:
        await store.usage.add_source(runtime="claude", agent="crew-1", path=str(log))
        with RssSampler() as rss:
            before_kb = rss.now_kb()
            added, seconds, bad = await ingest(store, town, log)
        rows.append(
            (
                "cold ingest",
                f"{seconds:.1f} s, {written / MB / seconds:,.0f} MB/s, "
                f"{added / seconds:,.0f} samples/s ({added:,} samples, {bad} bad lines)",
            )
        )
        rows.append(
            (
                "RSS while ingesting",
                f"peak {rss.peak_kb / 1024:,.0f} MB (from "
                f"{before_kb / 1024:,.0f} MB before; ru_maxrss {max_rss_mb():,.0f} MB)",
            )
        )
        more = write_log(log, MB, seed=2, start=datetime(2026, 1, 9, tzinfo=UTC))
        added, seconds, bad = await ingest(store, town, log)
        rows.append(
            (
                "+1 MB incremental",
                f"{seconds * 1000:,.0f} ms ({more[0]:,} lines, "
                f"{added:,} new samples, {bad} bad lines)",
            )
        )
        added, seconds, _ = await ingest(store, town, log)
        rows.append(("nothing new", f"{seconds * 1000:,.1f} ms ({added} samples)"))
    finally:
        await store.close()
    return rows


# ---- a year of history -------------------------------------------------------------------------


def year_rows(agents: int, days: int, per_day: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """`per_day` calls per agent per day over `days` days up to now, in the working hours,
    each on one of 40 beads a month, as `metrics` rows (`YEAR_COLUMNS` order)."""
    rng = random.Random(seed)
    now = iso(datetime.now(UTC))
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days - 1)
    for day in range(days):
        date = (start + timedelta(days=day)).strftime("%Y-%m-%d")
        for agent in range(agents):
            name = f"crew-{agent + 1}"
            model = MODELS[agent % 3]
            for call in range(per_day):
                second = rng.randrange(8 * 3600, 20 * 3600)
                hour, minute = divmod(second // 60, 60)
                at = f"{date}T{hour:02d}:{minute:02d}:{second % 60:02d}.000000Z"
                if at > now:
                    continue  # today's calls so far only
                bead = (day // 30) * 40 + rng.randrange(40) + 1
                inp, out, read = (
                    rng.randrange(1, 3000),
                    rng.randrange(20, 900),
                    rng.randrange(60000),
                )
                cost = (inp * 3 + out * 15 + read * 0.3) / 1e6
                key = f"bench:{name}:{day}:{call}"
                yield (
                    at,
                    name,
                    model,
                    "claude",
                    bead,
                    inp,
                    out,
                    read,
                    0,
                    cost,
                    key,
                    "crew",
                    "",
                    None,
                    0,
                    1,
                    "bench",
                    None,
                    None,
                )


def as_sample(row: tuple[Any, ...]) -> UsageSample:
    at, agent, model, runtime, bead, inp, out, read, write, cost, key, role = row[:12]
    return UsageSample(
        at=at,
        agent=agent,
        model=model,
        runtime=runtime,
        bead_id=bead,
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cost_usd=cost,
        source_key=key,
        role=role,
        priced=True,
        price_source="bench",
    )


YEAR_COLUMNS = (
    "at, agent, model, runtime, bead_id, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_tokens, cost_usd, source_key, role, session, dispatch_id, "
    "cache_write_1h_tokens, priced, price_source, logged_cost_usd, source_id"
)
"""The columns of `year_rows` (the store's others keep their defaults)."""
_HOURLY_FILL = re.compile(r"INSERT INTO usage_hourly \(hour[^;]*?SELECT substr\(at[^;]*;", re.S)


def bulk_insert(db: Path, rows: Iterator[tuple[Any, ...]]) -> int:
    """The rest of the year straight into `metrics` with the hourly trigger off, then the
    hourly rollup rebuilt with the migration's own statement and the trigger put back: the
    same database `record_batch` would leave, minutes sooner (this database only)."""
    conn = sqlite3.connect(db)
    trigger = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'metrics_hourly_insert'"
    ).fetchone()[0]
    fill = _HOURLY_FILL.search(schema._V6)
    assert fill is not None, "the v6 migration's hourly fill was not found"
    conn.execute("DROP TRIGGER metrics_hourly_insert")
    total = 0
    insert = f"INSERT OR IGNORE INTO metrics ({YEAR_COLUMNS}) VALUES ({', '.join('?' * 19)})"
    while chunk := list(itertools.islice(rows, 200_000)):
        with conn:
            total += conn.executemany(insert, chunk).rowcount
    with conn:
        conn.execute("DELETE FROM usage_hourly")
        conn.execute(fill.group(0))
        conn.execute(trigger)
    conn.close()
    return total


async def fill_year(
    town: Town, agents: int, days: int, per_day: int, measured: int
) -> tuple[int, float, float]:
    """The year's rows: the first `measured` through `record_batch` in 50k batches (its
    rate is a figure), the rest in bulk. (rows, record_batch rows/s, seconds in all)."""
    rows = year_rows(agents, days, per_day, seed=3)
    store = await open_store(town.db_path)
    started = time.perf_counter()
    total = 0
    try:
        while total < measured and (
            batch := [as_sample(r) for r in itertools.islice(rows, min(50_000, measured - total))]
        ):
            total += await store.metrics.record_batch(
                batch, [], source_id=None, cursor=None, bad_lines=0
            )
    finally:
        await store.close()
    rate = total / (time.perf_counter() - started)
    total += await asyncio.to_thread(bulk_insert, town.db_path, rows)
    return total, rate, time.perf_counter() - started


def time_cli(town: Town, *argv: str, runs: int = 3) -> tuple[float, str]:
    """Median wall time of `at ARGV` as a subprocess in the town, and its last line."""
    at = Path(sys.executable).with_name("at")
    times = []
    last = ""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [str(at), *argv],
            cwd=town.root,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "TUNDRA_TOWN": str(town.root)},
        )
        times.append(time.perf_counter() - started)
        lines = (done.stdout or done.stderr).strip().splitlines()
        last = lines[-1][:80] if lines else f"exit {done.returncode}"
    return statistics.median(times), last


async def bench_year(
    agents: int, days: int, per_day: int, measured: int, work: Path
) -> list[tuple[str, str]]:
    town, _ = init_town(work / "year")
    rows, rate, seconds = await fill_year(town, agents, days, per_day, measured)
    size = town.db_path.stat().st_size
    out = [
        (
            "year synthesised",
            f"{rows:,} rows ({agents} agents x {days} days x {per_day}/day) "
            f"in {seconds:.0f} s; database {size / MB:,.0f} MB",
        ),
        ("`record_batch` rate", f"{rate:,.0f} rows/s (hourly trigger on; first {measured:,} rows)"),
    ]
    for argv in (("cost",), ("cost", "--by", "bead", "--since", "30d"), ("cost", "forecast")):
        median, last = time_cli(town, *argv)
        out.append((f"`at {' '.join(argv)}`", f"{median * 1000:,.0f} ms (median of 3; `{last}`)"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--calls-per-day", type=int, default=1500)
    parser.add_argument("--measured", type=int, default=300_000, help="rows via record_batch")
    parser.add_argument("--skip-log", action="store_true")
    parser.add_argument("--skip-year", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as temp:
        work = Path(temp)
        if not args.skip_log:
            rows += asyncio.run(bench_log(args.gb, work))
        if not args.skip_year:
            rows += asyncio.run(
                bench_year(args.agents, args.days, args.calls_per_day, args.measured, work)
            )
    print("\n| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(
        f"\n{os.cpu_count()} cores; Python {sys.version.split()[0]}; {datetime.now(UTC):%Y-%m-%d}"
    )


if __name__ == "__main__":
    main()
