"""Reading OpenCode's SQLite database (`opencode/opencode.db`), strictly read-only.

It is the operator's live database: it is opened `mode=ro` with `query_only`, never
`immutable` (another process writes it), and a locked or foreign database gives no samples,
never an error that stops the daemon. A source is one session (`<db>#<session id>`); its
assistant messages are read once complete (`time.completed` set), in (completed, id) order
after the cursor, and keyed `opencode:<message id>`. `tokens.input` is the uncached input;
reasoning is output; `cost` is OpenCode's own figure (research/real-agents.md §7).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from tundra_tui.usage.jsonl import count, text, unix_time
from tundra_tui.usage.records import Cursor, RawSample, ReadResult

RUNTIME: Final = "opencode"
NEEDED: Final = {
    "session": {"id", "directory", "time_created"},
    "message": {"id", "session_id", "data"},
}
"""The columns we read; a database without them is not one we know (one warning, no samples)."""
BUSY_MS: Final = 200

_ROWS = """
WITH m AS (
    SELECT id, CASE WHEN json_valid(data) THEN data ELSE '{}' END AS d
    FROM message WHERE session_id = ?
)
SELECT id,
       json_extract(d, '$.time.completed') AS completed,
       json_extract(d, '$.providerID'), json_extract(d, '$.modelID'), json_extract(d, '$.cost'),
       json_extract(d, '$.tokens.input'), json_extract(d, '$.tokens.output'),
       json_extract(d, '$.tokens.reasoning'),
       json_extract(d, '$.tokens.cache.read'), json_extract(d, '$.tokens.cache.write')
FROM m
WHERE json_extract(d, '$.role') = 'assistant' AND completed IS NOT NULL
  AND (completed > ? OR (completed = ? AND id > ?))
ORDER BY completed, id
LIMIT ?
"""


def source_path(db: Path | str, session: str) -> str:
    """The source name of one session: `<db>#<session id>`."""
    return f"{db}#{session}"


def split_source(path: Path | str) -> tuple[Path, str]:
    """`<db>#<session id>` back into its parts."""
    db, _, session = str(path).rpartition("#")
    return Path(db), session


def connect(db: Path) -> sqlite3.Connection:
    """A read-only connection that can write nothing, not even a journal."""
    uri = f"file:{quote(str(db))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_MS / 1000, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def known_schema(conn: sqlite3.Connection) -> bool:
    """Whether the tables and columns we read are there (probed with `PRAGMA table_info`)."""
    for table, columns in NEEDED.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not columns <= have:
            return False
    return True


def sessions(db: Path, cwd: str, since_ms: int, until_ms: int | None) -> list[str]:
    """The sessions started in `cwd` within the window (ms since the epoch), oldest first; []
    if the database cannot be read or is not OpenCode's."""
    try:
        conn = connect(db)
    except sqlite3.Error:
        return []
    try:
        if not known_schema(conn):
            return []
        rows = conn.execute(
            "SELECT id FROM session WHERE directory = ? AND time_created >= ?"
            " AND time_created <= ? ORDER BY time_created, id",
            (cwd, since_ms, until_ms if until_ms is not None else 2**62),
        ).fetchall()
        return [str(row[0]) for row in rows]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def session_info(db: Path, session: str) -> dict[str, object] | None:
    """A session's `directory` and `time_created` (ms), or None if it cannot be read."""
    try:
        conn = connect(db)
    except sqlite3.Error:
        return None
    try:
        if not known_schema(conn):
            return None
        row = conn.execute(
            "SELECT directory, time_created FROM session WHERE id = ?", (session,)
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return {"directory": row[0], "time_created": row[1]} if row else None


class OpenCodeReader:
    """One OpenCode session's completed answers, after the cursor's (completed, id)."""

    runtime = RUNTIME

    def read(self, path: Path, cursor: Cursor, *, max_bytes: int = 16 << 20) -> ReadResult:
        """New completed assistant messages; `offset` counts the rows read so far."""
        db, session = split_source(path)
        limit = max(max_bytes // 1024, 1)
        try:
            conn = connect(db)
        except sqlite3.Error:
            return ReadResult([], [], cursor, 0, None, True)  # missing or locked: try later
        try:
            if not known_schema(conn):
                return ReadResult([], [], cursor, 1, 0, True)
            completed = int(cursor.state.get("completed", "0") or 0)
            after = cursor.state.get("after", "")
            rows = conn.execute(_ROWS, (session, completed, completed, after, limit)).fetchall()
        except (sqlite3.Error, ValueError):
            return ReadResult([], [], cursor, 0, None, True)
        finally:
            conn.close()
        samples: list[RawSample] = []
        bad = 0
        for row in rows:
            sample = _sample(row, session)
            if sample is None:
                bad += 1
            elif sample.input or sample.output or sample.cache_read or sample.cache_write:
                samples.append(sample)
        if rows:
            last = rows[-1]
            state = {**cursor.state, "completed": str(int(last[1])), "after": str(last[0])}
            cursor = replace(cursor, offset=cursor.offset + len(rows), state=state)
        return ReadResult(samples, [], cursor, bad, None, len(rows) < limit)


def _sample(row: tuple[Any, ...], session: str) -> RawSample | None:
    message_id, completed, provider, model, cost, *tokens = row
    at = unix_time(completed)
    counts = [count(value) for value in tokens]
    if at is None or not isinstance(message_id, str) or None in counts:
        return None
    uncached, output, reasoning, cache_read, cache_write = (c or 0 for c in counts)
    logged = None
    if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < 1e9:
        logged = float(cost)
    return RawSample(
        at=at,
        runtime=RUNTIME,
        provider=text(provider),
        model=text(model),
        session=session,
        source_key=f"opencode:{message_id[:200]}",
        input=uncached,
        output=output + reasoning,
        cache_read=cache_read,
        cache_write=cache_write,
        logged_cost_usd=logged,
    )
