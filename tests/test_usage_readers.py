"""The usage readers of every runtime, on fixtures in each CLI's logged format, and whose log
is whose (`usage.sources`): incremental reads, crashes, half-written lines, garbage, Claude's
duplicates and resumes, Codex forks, Gemini rewrites, OpenCode read-only, Aider's own cost."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tundra_tui.config import load_config
from tundra_tui.demo_agent.usage import UsageLog
from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import open_store
from tundra_tui.store.usage import AgentRun
from tundra_tui.town import init_town
from tundra_tui.usage import opencode, sources
from tundra_tui.usage.aider import AiderReader
from tundra_tui.usage.claude import ClaudeReader
from tundra_tui.usage.claude import parse as claude_parse
from tundra_tui.usage.codex import CodexReader
from tundra_tui.usage.gemini import GeminiReader
from tundra_tui.usage.jsonl import read_head, read_jsonl
from tundra_tui.usage.opencode import OpenCodeReader
from tundra_tui.usage.price_book import PriceBook
from tundra_tui.usage.records import READERS, Cursor, RawSample, Reader, ReadResult

FIXTURES = Path(__file__).parent / "fixtures" / "usage"
CWD = "/work/proj"


@dataclass(frozen=True)
class Case:
    runtime: str
    reader: Reader
    fixture: str
    keys: int
    tokens: tuple[int, int, int]
    """Input (uncached), output and cache read over the fixture."""


JSONL = [
    Case("claude", ClaudeReader(), "claude/session.jsonl", 3, (25426, 203, 0)),
    Case("demo", ClaudeReader("demo"), "claude/session.jsonl", 3, (25426, 203, 0)),
    Case("codex", CodexReader(), "codex/parent.jsonl", 2, (7246, 113, 6500)),
    Case("gemini", GeminiReader(), "gemini/session.jsonl", 3, (19297, 92, 6000)),
    Case("aider", AiderReader(), "aider/analytics.jsonl", 2, (4720, 28, 0)),
]


def copy(tmp_path: Path, fixture: str) -> Path:
    target = tmp_path / Path(fixture).name
    shutil.copyfile(FIXTURES / fixture, target)
    return target


def read_all(reader: Reader, path: Path, cursor: Cursor | None = None, **kw: int) -> ReadResult:
    """Read to the end in bounded steps, as the daemon does; merged into one result."""
    cursor = cursor or Cursor()
    samples: dict[str, RawSample] = {}
    logged, bad = [], 0
    while True:
        result = reader.read(path, cursor, **kw)
        for sample in result.samples:
            samples.setdefault(sample.source_key, sample)
        logged.extend(result.logged)
        bad += result.bad_lines
        cursor = result.cursor
        if result.eof:
            return ReadResult(list(samples.values()), logged, cursor, bad, None, True)


def totals(samples: list[RawSample]) -> tuple[int, int, int]:
    return (
        sum(s.input for s in samples),
        sum(s.output for s in samples),
        sum(s.cache_read for s in samples),
    )


# ---- every line-based runtime --------------------------------------------------------------


@pytest.mark.parametrize("case", JSONL, ids=[c.runtime for c in JSONL])
def test_a_full_read_and_two_halves_give_the_same_samples(case: Case, tmp_path: Path) -> None:
    full = read_all(case.reader, FIXTURES / case.fixture)
    assert len(full.samples) == case.keys and totals(full.samples) == case.tokens
    assert {s.runtime for s in full.samples} == {case.runtime}
    assert full.bad_lines == 0 and full.cursor.offset == (FIXTURES / case.fixture).stat().st_size
    data = (FIXTURES / case.fixture).read_bytes()
    log = tmp_path / "log.jsonl"
    log.write_bytes(data[: len(data) // 2])  # cut mid-line
    first = read_all(case.reader, log)
    assert first.cursor.offset == data.rfind(b"\n", 0, len(data) // 2) + 1
    with log.open("ab") as handle:
        handle.write(data[len(data) // 2 :])
    rest = read_all(case.reader, log, first.cursor)
    assert not {s.source_key for s in first.samples} & {s.source_key for s in rest.samples}
    whole = read_all(case.reader, log)  # the same file read at once (Aider keys by its path)
    assert sorted(first.samples + rest.samples, key=str) == sorted(whole.samples, key=str)
    assert totals(whole.samples) == case.tokens and len(whole.samples) == case.keys


@pytest.mark.parametrize("case", JSONL, ids=[c.runtime for c in JSONL])
def test_a_crash_mid_file_rereads_the_same_keys_from_the_old_cursor(
    case: Case, tmp_path: Path
) -> None:
    log = copy(tmp_path, case.fixture)
    step = case.reader.read(log, Cursor(), max_bytes=1)  # one line, then stop
    assert not step.eof and 0 < step.cursor.offset < log.stat().st_size
    once = read_all(case.reader, log, step.cursor)
    # The daemon died before committing `once`: the stored cursor is still `step`'s.
    again = read_all(case.reader, log, step.cursor)
    assert sorted(once.samples, key=str) == sorted(again.samples, key=str)
    assert once.cursor == again.cursor


@pytest.mark.parametrize("case", JSONL, ids=[c.runtime for c in JSONL])
def test_a_half_written_last_line_is_read_once_when_complete(case: Case, tmp_path: Path) -> None:
    data = (FIXTURES / case.fixture).read_bytes()
    lines = data.splitlines(keepends=True)
    usage_line = last_usage_line(case, lines, tmp_path)
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(lines[:usage_line]) + lines[usage_line][:-9])
    before = read_all(case.reader, log)
    assert before.bad_lines == 0 and before.cursor.offset == len(b"".join(lines[:usage_line]))
    with log.open("ab") as handle:
        handle.write(lines[usage_line][-9:])
    after = read_all(case.reader, log, before.cursor)
    assert len(after.samples) == 1 and after.cursor.offset == log.stat().st_size
    assert read_all(case.reader, log, after.cursor).samples == []


def last_usage_line(case: Case, lines: list[bytes], tmp_path: Path) -> int:
    """The index of the last line that adds a sample (read in context, as state matters)."""
    probe = tmp_path / "probe.jsonl"
    counts = []
    for end in range(len(lines) + 1):
        probe.write_bytes(b"".join(lines[:end]))
        counts.append(len(read_all(case.reader, probe).samples))
    return max(i for i in range(len(lines)) if counts[i + 1] > counts[i])


@pytest.mark.parametrize("case", JSONL, ids=[c.runtime for c in JSONL])
def test_garbage_lines_are_counted_and_skipped(case: Case, tmp_path: Path) -> None:
    lines = (FIXTURES / case.fixture).read_bytes().splitlines(keepends=True)
    garbage = [
        b'{"type":"assistant","message":{"id":"m","usage":{"input_tokens":-1}}, "oops\n',
        b"\xff\xfe not json at all, gemini token_count message_send assistant\n",
        b'{"type":"token_usage_record","payload":{"usage":{"input_tokens":"many"}}}\n',
    ]
    mixed = lines[:2] + garbage + lines[2:]
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(mixed))
    result = read_all(case.reader, log)
    assert result.bad_lines >= 2
    first = case.reader.read(log, Cursor())
    assert first.first_bad_offset is not None and first.first_bad_offset >= len(b"".join(lines[:2]))
    clean = read_all(case.reader, FIXTURES / case.fixture)

    def calls(found: ReadResult) -> list[tuple[str, str, int, int]]:
        # Aider's keys hold byte offsets, which the garbage moved; the calls are the same.
        return sorted((s.at, s.model, s.input, s.output) for s in found.samples)

    assert calls(result) == calls(clean)


def test_a_replaced_or_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    reader = ClaudeReader()
    log = copy(tmp_path, "claude/session.jsonl")
    done = read_all(reader, log)
    fresh = tmp_path / "fresh.jsonl"
    shutil.copyfile(FIXTURES / "unpriced.jsonl", fresh)
    os.replace(fresh, log)  # a new file under the same name
    again = read_all(reader, log, done.cursor)
    assert [s.model for s in again.samples] == ["fake-model"]
    log.write_bytes(b"")  # truncated in place
    assert read_all(reader, log, again.cursor).cursor.offset == 0


def test_a_missing_or_unreadable_source_keeps_its_cursor(tmp_path: Path) -> None:
    cursor = Cursor(offset=10, device=1, inode=2, head=b"x")
    result = ClaudeReader().read(tmp_path / "gone.jsonl", cursor)
    assert result.cursor == cursor and result.eof and not result.samples
    os.mkfifo(tmp_path / "fifo.jsonl")
    assert ClaudeReader().read(tmp_path / "fifo.jsonl", Cursor()).samples == []


def test_every_runtime_has_a_reader() -> None:
    assert set(READERS) == {"claude", "demo", "codex", "gemini", "aider", "opencode"}
    assert all(READERS[name].runtime == name for name in READERS)


# ---- per format -----------------------------------------------------------------------------


def test_claude_duplicates_and_a_resumed_copy_give_one_sample_per_answer() -> None:
    reader = ClaudeReader()
    session = read_all(reader, FIXTURES / "claude/session.jsonl")
    resumed = read_all(reader, FIXTURES / "claude/resumed.jsonl")
    keys = [s.source_key for s in session.samples + resumed.samples]
    assert set(keys) == {
        "claude:msg_01:req_01",
        "claude:msg_02:req_02",
        "claude:msg_03:req_03",
        "claude:msg_04:req_04",
    }
    assert "<synthetic>" not in {s.model for s in session.samples}
    copied = next(s for s in resumed.samples if s.source_key == "claude:msg_01:req_01")
    assert copied == next(s for s in session.samples if s.source_key == copied.source_key)
    new = next(s for s in resumed.samples if s.source_key == "claude:msg_04:req_04")
    assert (new.input, new.output, new.cache_read, new.cache_write, new.cache_write_1h) == (
        200,
        30,
        4000,
        300,
        100,
    )
    assert (new.provider, new.session) == ("anthropic", "7e1f0a9b-2c3d-4e5f-9a0b-c1d2e3f4a5b6")
    assert [(c.cost_usd, c.unknown_model) for c in session.logged] == [
        (0.042232, False),
        (0.105764, False),
    ]
    assert session.logged[-1].session == "36d0562f-1b2c-4d3e-8f90-a1b2c3d4e5f6"


def test_a_streamed_claude_answer_keeps_its_final_output() -> None:
    """Claude Code logs one answer as several lines with the same ids, output counted up to
    the last line (review 13 #1): the read keeps the grown figure, not the first."""
    (sample,) = read_all(ClaudeReader(), FIXTURES / "claude/streamed.jsonl").samples
    assert (sample.source_key, sample.input, sample.output) == ("claude:msg_1:req_1", 2, 611)


async def test_a_streamed_claude_answer_read_in_two_steps_is_stored_with_its_final_output(
    tmp_path: Path,
) -> None:
    log = copy(tmp_path, "claude/streamed.jsonl")
    first = ClaudeReader().read(log, Cursor(), max_bytes=1)  # the first line only
    assert [s.output for s in first.samples] == [1] and not first.eof
    rest = ClaudeReader().read(log, first.cursor)
    assert rest.eof and [s.output for s in rest.samples] == [611]
    store = await open_store(tmp_path / "town.db")
    try:
        for result in (first, rest):
            await store.metrics.record(
                UsageSample(
                    at=s.at,
                    agent="a",
                    source_key=s.source_key,
                    input_tokens=s.input,
                    output_tokens=s.output,
                )
                for s in result.samples
            )
        rows = await store.db.fetchall("SELECT output_tokens FROM metrics")
        assert [tuple(r) for r in rows] == [(611,)]
    finally:
        await store.close()


def test_a_codex_fork_counts_its_replayed_parent_once() -> None:
    parent = read_all(CodexReader(), FIXTURES / "codex/parent.jsonl")
    fork = read_all(CodexReader(), FIXTURES / "codex/fork.jsonl")
    by_key = {s.source_key: s for s in parent.samples}
    for sample in fork.samples:
        by_key.setdefault(sample.source_key, sample)
    assert set(by_key) == {"codex:resp_a1", "codex:resp_a2", "codex:resp_b1"}
    replayed = [s for s in fork.samples if s.source_key in {"codex:resp_a1", "codex:resp_a2"}]
    assert sorted(replayed, key=str) == sorted(parent.samples, key=str)  # same ids, same times
    own = by_key["codex:resp_b1"]
    assert (own.input, own.cache_read, own.output) == (2000, 7000, 70)
    assert own.model == "gpt-5.5-codex" and own.provider == "openai"
    assert fork.cursor.state["session"] == "01a20113-0000-7000-8000-00000000000b"
    assert sum(s.input + s.cache_read for s in by_key.values()) == 22746  # the thread's total


def test_a_codex_rollout_without_records_falls_back_to_token_counts() -> None:
    legacy = read_all(CodexReader(), FIXTURES / "codex/legacy.jsonl")
    assert totals(legacy.samples) == (7246, 113, 6500) and legacy.bad_lines == 0


def test_a_rewritten_gemini_message_is_one_sample() -> None:
    result = read_all(GeminiReader(), FIXTURES / "gemini/session.jsonl")
    session = "5c1e7a2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
    assert sorted(s.source_key for s in result.samples) == [
        f"gemini:{session}:dd56f963-000{n}" for n in (1, 2, 3)
    ]
    tool = next(s for s in result.samples if s.source_key.endswith("0002"))
    assert (tool.input, tool.cache_read, tool.output) == (2405, 6000, 32)  # tool in, thoughts out
    assert (tool.provider, tool.model) == ("google", "gemini-3.8-flash")


def test_aider_carries_its_own_cost_per_call() -> None:
    result = read_all(AiderReader(), FIXTURES / "aider/analytics.jsonl")
    assert [s.logged_cost_usd for s in result.samples] == [0.007764, 0.006836]
    first = result.samples[0]
    assert (first.provider, first.model, first.at) == (
        "openai",
        "fake",
        "2026-11-22T02:17:46.000000Z",
    )
    log = FIXTURES / "aider/analytics.jsonl"
    name = hashlib.sha1(os.path.abspath(log).encode()).hexdigest()[:12]
    assert [s.source_key.rsplit(":", 1)[0] for s in result.samples] == [f"aider:{name}"] * 2
    assert {s.session for s in result.samples} == {name}


def test_two_aider_logs_with_the_same_lines_give_distinct_keys(tmp_path: Path) -> None:
    """Two agents started in the same second write the same first lines (review 13 #3): a
    call is keyed by its log's path, so neither agent's calls are dropped as the other's."""
    keys = []
    for name in ("aider-a.jsonl", "aider-b.jsonl"):
        log = tmp_path / name
        shutil.copyfile(FIXTURES / "aider/analytics.jsonl", log)
        keys.append({s.source_key for s in read_all(AiderReader(), log).samples})
    assert len(keys[0]) == len(keys[1]) == 2 and not keys[0] & keys[1]


def test_an_unpriced_model_is_read_as_written(tmp_path: Path) -> None:
    result = read_all(ClaudeReader(), FIXTURES / "unpriced.jsonl")
    (sample,) = result.samples
    assert (sample.model, sample.provider, sample.input, sample.output) == (
        "fake-model",
        "anthropic",
        1200,
        34,
    )
    assert sample.logged_cost_usd is None
    assert [c.unknown_model for c in result.logged] == [True]
    # No override or demo price names it (genai-prices does not know it either: test_pricing).
    book = PriceBook.from_config(load_config(init_town(tmp_path / "t")[0]), None)
    assert book.price(sample.runtime, sample.provider, sample.model, sample.at) is None


# ---- OpenCode: a database, read-only ----------------------------------------------------------


def opencode_db(tmp_path: Path) -> Path:
    db = tmp_path / "share" / "opencode" / "opencode.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript((FIXTURES / "opencode/schema.sql").read_text())
    conn.executescript((FIXTURES / "opencode/rows.sql").read_text())
    conn.close()
    return db


def untouched(db: Path, before: tuple[bytes, int]) -> bool:
    """The database's bytes and mtime are as they were, and nothing went to its WAL (SQLite
    itself creates an empty -wal and -shm beside a quiescent WAL database it reads)."""
    wal = db.with_name(db.name + "-wal")
    empty_wal = not wal.exists() or wal.stat().st_size == 0
    return (db.read_bytes(), db.stat().st_mtime_ns) == before and empty_wal


def test_opencode_reads_completed_answers_once_and_writes_nothing(tmp_path: Path) -> None:
    db = opencode_db(tmp_path)
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    source = Path(opencode.source_path(db, "ses_dfeeddda9ffe"))
    reader = OpenCodeReader()
    first = read_all(reader, source)
    assert totals(first.samples) == (7550, 139, 0)
    assert sum(s.logged_cost_usd or 0 for s in first.samples) == pytest.approx(0.0247)
    assert {s.source_key for s in first.samples} == {"opencode:msg_a1", "opencode:msg_a2"}
    assert {(s.provider, s.model) for s in first.samples} == {("fake", "fake-model")}
    # OpenCode's own session totals count `tokens.input` as we do: uncached, apart from cache.
    conn = sqlite3.connect(db)
    session = conn.execute(
        "SELECT tokens_input, tokens_output, tokens_cache_read, tokens_cache_write, cost"
        " FROM session WHERE id = 'ses_dfeeddda9ffe'"
    ).fetchone()
    conn.close()
    assert session[:4] == (7550, 139, 0, 0) and session[4] == pytest.approx(0.0247)
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert untouched(db, before)  # mode=ro and query_only: not a byte, not a timestamp
    assert read_all(reader, source, first.cursor).samples == []
    # The streaming answer completes (OpenCode writes its row again).
    writer = sqlite3.connect(db)
    writer.execute(
        "UPDATE message SET data = json_set(data, '$.time.completed', 1795313813000,"
        " '$.tokens.input', 300, '$.tokens.output', 5, '$.tokens.reasoning', 2) WHERE id = 'msg_a3'"
    )
    writer.commit()
    writer.close()
    later = read_all(reader, source, first.cursor)
    assert [(s.source_key, s.input, s.output) for s in later.samples] == [
        ("opencode:msg_a3", 300, 7)
    ]
    assert read_all(reader, source, later.cursor).samples == []


def test_opencode_refuses_a_database_that_is_not_its(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE message (x); CREATE TABLE session (y);")
    result = OpenCodeReader().read(Path(opencode.source_path(other, "s")), Cursor())
    assert (result.samples, result.bad_lines, result.eof) == ([], 1, True)
    missing = OpenCodeReader().read(Path(opencode.source_path(tmp_path / "no.db", "s")), Cursor())
    assert missing.samples == [] and missing.bad_lines == 0
    assert not (tmp_path / "no.db").exists()


# ---- whose log is whose ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """An `agent_runs` row as `sources` reads it."""

    id: int
    agent: str
    runtime: str
    cwd: str = CWD
    session_hint: str = ""
    started_at: str = "2026-11-22T02:25:50.000000Z"
    ended_at: str = ""


def test_log_roots_follow_the_agents_own_environment() -> None:
    env = {"HOME": "/home/u", "CLAUDE_CONFIG_DIR": "/cfg/claude"}
    assert sources.log_roots("claude", env, CWD) == {"claude": "/cfg/claude"}
    assert sources.log_roots("codex", env, CWD) == {"codex": "/home/u/.codex"}
    assert sources.log_roots("gemini", env, CWD) == {"gemini": "/home/u/.gemini"}
    assert sources.log_roots("opencode", {"HOME": "/h", "XDG_DATA_HOME": "d"}, CWD) == {
        "opencode": f"{CWD}/d/opencode/opencode.db"
    }
    assert sources.log_roots("aider", env, CWD) == {} and sources.log_roots("claude", {}, CWD) == {}
    argv = ["claude", "--settings", "s.json", "--session-id", "abc"]
    assert sources.session_hint("claude", argv) == "abc"
    assert sources.session_hint("aider", ["aider", "--analytics-log=/a/l.jsonl"]) == "/a/l.jsonl"


def test_codex_and_gemini_logs_go_to_the_run_by_cwd_and_window(tmp_path: Path) -> None:
    root = tmp_path / ".codex"
    day = root / "sessions" / "2026" / "11" / "22"
    day.mkdir(parents=True)
    log = day / "rollout-2026-11-22T02-25-53-01a20113.jsonl"
    shutil.copyfile(FIXTURES / "codex/parent.jsonl", log)
    mine = Run(1, "a", "codex", ended_at="2026-11-22T02:30:00.000000Z")
    elsewhere = Run(2, "b", "codex", cwd="/other")
    later = Run(3, "c", "codex", started_at="2026-11-22T02:26:10.000000Z")
    runs = [mine, elsewhere, later]
    found = sources.candidates(mine, {"codex": str(root)}, "2026-11-22T02:25:50.000000Z")
    assert found == [log]
    head = sources.source_head("codex", log)
    assert [sources.belongs(r, runs, log, head) for r in runs] == [True, False, False]
    # Two agents in one cwd: the run that started last before the log's first line wins.
    earlier = Run(4, "d", "codex", started_at="2026-11-22T02:20:00.000000Z")
    assert not sources.belongs(earlier, [*runs, earlier], log, head)
    assert sources.belongs(earlier, [earlier, elsewhere], log, head)
    # The operator's own session in another directory matches no run: never read.
    operator = tmp_path / "rollout-op.jsonl"
    operator.write_bytes(
        log.read_bytes().replace(b'"cwd":"/work/proj"', b'"cwd":"/home/op/code"', 1)
    )
    op_head = sources.source_head("codex", operator)
    assert not any(sources.belongs(r, runs, operator, op_head) for r in runs)
    shutil.move(operator, day / "rollout-op.jsonl")
    roots = {"codex": str(root)}
    assert sources.discover(mine, runs, roots, mine.started_at) == [str(log)]
    assert sources.discover(elsewhere, runs, roots, mine.started_at) == []

    chats = tmp_path / ".gemini" / "tmp" / "proj" / "chats"
    chats.mkdir(parents=True)
    chat = chats / "session-2026-11-22T02-21-5c1e7a2b.jsonl"
    shutil.copyfile(FIXTURES / "gemini/session.jsonl", chat)
    gem = Run(5, "g", "gemini", started_at="2026-11-22T02:21:08.000000Z")
    assert hashlib.sha256(CWD.encode()).hexdigest() in read_head(chat).decode()
    assert sources.belongs(gem, [gem], chat, sources.source_head("gemini", chat))
    moved = Run(6, "g", "gemini", cwd="/work/other", started_at=gem.started_at)
    assert not sources.belongs(moved, [moved], chat, sources.source_head("gemini", chat))


def test_claude_logs_go_by_our_session_id_and_a_resume_by_cwd(tmp_path: Path) -> None:
    projects = tmp_path / ".claude" / "projects" / "-work-proj"
    projects.mkdir(parents=True)
    ours = projects / "36d0562f-1b2c-4d3e-8f90-a1b2c3d4e5f6.jsonl"
    shutil.copyfile(FIXTURES / "claude/session.jsonl", ours)
    resumed = projects / "7e1f0a9b-2c3d-4e5f-9a0b-c1d2e3f4a5b6.jsonl"
    shutil.copyfile(FIXTURES / "claude/resumed.jsonl", resumed)
    started = "2026-11-22T02:25:50.000000Z"
    with_id = Run(1, "a", "claude", session_hint=ours.stem, started_at=started)
    resumer = Run(2, "b", "claude", started_at=started)
    runs = [with_id, resumer]
    roots = {"claude": str(tmp_path / ".claude")}
    assert sources.candidates(with_id, roots, started) == [ours]
    odd = Run(9, "z", "claude", session_hint="../*", started_at=started)
    assert sources.candidates(odd, roots, started) == []
    assert sources.belongs(with_id, runs, ours, b"")
    assert not sources.belongs(with_id, runs, resumed, b"")
    # A resume has no id of ours: a file in its cwd written while it runs is its own, unless
    # another run's id names it.
    os.utime(resumed, (1795320000, 1795320000))  # 03:40 UTC: while the run is open
    run_now = Run(2, "b", "claude", started_at="2026-11-22T00:00:00.000000Z")
    assert sources.belongs(run_now, [with_id, run_now], resumed, read_head(resumed, 1 << 16))
    assert not sources.belongs(run_now, [with_id, run_now], ours, read_head(ours, 1 << 16))
    elsewhere = Run(3, "c", "claude", cwd="/home/op", started_at=run_now.started_at)
    assert not sources.belongs(elsewhere, [elsewhere], resumed, read_head(resumed, 1 << 16))


def test_claude_subagent_transcripts_are_the_runs_of_their_parent_session(
    tmp_path: Path,
) -> None:
    """Claude Code writes each subagent to `projects/<slug>/<session>/subagents/agent-*.jsonl`
    (review 13 #2): they are the parent session's run's, found with or without a hint."""
    root = tmp_path / ".claude"
    project = root / "projects" / "-work-proj"
    hint = "36d0562f-1b2c-4d3e-8f90-a1b2c3d4e5f6"
    parent = project / f"{hint}.jsonl"
    direct = project / hint / "subagents" / "agent-a1b2c3.jsonl"
    deeper = project / hint / "subagents" / "nested" / "agent-d4e5f6.jsonl"
    other = project / "7e1f0a9b-2c3d-4e5f-9a0b-c1d2e3f4a5b6" / "subagents" / "agent-x.jsonl"
    for path in (parent, direct, deeper, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / "claude/session.jsonl", path)
    started = "2026-11-22T02:25:50.000000Z"
    run = Run(1, "a", "claude", session_hint=hint, started_at=started)
    roots = {"claude": str(root)}
    assert sources.discover(run, [run], roots, started) == [
        str(p) for p in (parent, direct, deeper)
    ]
    stranger = Run(2, "b", "claude", session_hint="0000-none", started_at=started)
    assert not sources.belongs(stranger, [run, stranger], direct, b"")
    # No hint (a resume): the subagents are candidates, and one named by another run's hint
    # is that run's, never the resumer's.
    resumer = Run(3, "c", "claude", started_at="2000-01-01T00:00:00.000000Z")
    found = sources.candidates(resumer, roots, resumer.started_at)
    assert {direct, deeper, other} <= set(found) and len(found) == len(set(found))
    assert sources.belongs(resumer, [resumer], other, read_head(other, 1 << 16))
    assert not sources.belongs(resumer, [run, resumer], direct, read_head(direct, 1 << 16))


def test_the_stores_runs_are_what_sources_reads() -> None:
    stored = AgentRun(
        id=7,
        agent="a",
        runtime="codex",
        role="crew",
        account="codex",
        cwd=CWD,
        pid=12,
        roots={"codex": "/h/.codex"},
        session_hint="",
        started_at="2026-11-22T02:25:50.000000Z",
    )
    head = (FIXTURES / "codex/parent.jsonl").read_bytes()[:4096]
    assert sources.belongs(stored, [stored], FIXTURES / "codex/parent.jsonl", head)


def test_aider_and_opencode_sources_are_the_runs_own(tmp_path: Path) -> None:
    log = tmp_path / "aider-1.jsonl"
    shutil.copyfile(FIXTURES / "aider/analytics.jsonl", log)
    run = Run(1, "a", "aider", session_hint=str(log))
    assert sources.candidates(run, {}, run.started_at) == [log]
    assert sources.belongs(run, [run], log, b"")
    assert not sources.belongs(Run(2, "b", "aider", session_hint="/x.jsonl"), [run], log, b"")
    db = opencode_db(tmp_path)
    oc = Run(3, "o", "opencode", started_at="2026-11-22T02:16:38.000000Z")
    found = sources.candidates(oc, {"opencode": str(db)}, oc.started_at)
    assert found == [opencode.source_path(db, "ses_dfeeddda9ffe")]
    assert sources.belongs(oc, [oc], found[0], sources.source_head("opencode", found[0]))
    other = opencode.source_path(db, "ses_other")
    assert not sources.belongs(oc, [oc], other, sources.source_head("opencode", other))


def test_the_demo_agents_log_reads_back_with_its_own_cost(tmp_path: Path) -> None:
    path = tmp_path / "crew-1.jsonl"
    log = UsageLog(path, "0b4d1a6e-2f0c-4c1e-9a55-3f2f6c1d7e01", "demo-opus", "/w", "0.1.0")
    log.user("fix it")
    log.call([{"type": "text", "text": "ok"}, {"type": "tool_use", "name": "Bash"}], "x", {}, 5)
    log.call([{"type": "text", "text": "done"}], "end_turn", {}, 5)
    log.turn_end(10, 3)
    result = read_all(READERS["demo"], path)
    assert len(result.samples) == 2 and {s.runtime for s in result.samples} == {"demo"}
    assert all(
        s.source_key.count(":") == 2 and not s.source_key.endswith(":") for s in result.samples
    )
    assert [c.cost_usd for c in result.logged] == [pytest.approx(log.cost, abs=1e-6)]


def claude_answer(message: str) -> str:
    usage = {"input_tokens": 10, "output_tokens": 5}
    record = {
        "type": "assistant",
        "timestamp": "2026-11-20T10:00:00.000Z",
        "requestId": "r",
        "message": {"id": message, "model": "claude-opus-5-5", "usage": usage},
    }
    return json.dumps(record, separators=(",", ":"))


def test_over_long_lines_are_skipped_even_across_reads(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"

    def read(cursor: Cursor) -> ReadResult:
        return read_jsonl(log, cursor, claude_parse, max_line_bytes=1000)

    log.write_text(claude_answer("m1") + "\n" + "x" * 5000 + "\n" + claude_answer("m2") + "\n")
    first = read(Cursor())
    assert [s.source_key for s in first.samples] == ["claude:m1:r", "claude:m2:r"]
    with log.open("a") as handle:
        handle.write("y" * 3000)  # an over-long line still being written
    second = read(first.cursor)
    assert second.samples == [] and second.cursor.skipping
    with log.open("a") as handle:
        handle.write("y" * 3000 + "\n" + claude_answer("m3") + "\n")
    third = read(second.cursor)
    assert [s.source_key for s in third.samples] == ["claude:m3:r"] and third.bad_lines == 0


def test_a_log_rewritten_in_place_past_the_old_offset_is_read_from_the_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.jsonl"
    log.write_text(claude_answer("m1") + "\n")
    first = read_jsonl(log, Cursor(), claude_parse)
    with log.open("r+") as handle:  # the same inode, longer, a different start
        handle.write(claude_answer("m5") + "\n" + claude_answer("m6") + "\n")
    again = read_jsonl(log, first.cursor, claude_parse)
    assert [s.source_key for s in again.samples] == ["claude:m5:r", "claude:m6:r"]
