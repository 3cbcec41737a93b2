"""Reading a JSONL log another program is still writing: incrementally, from a stored cursor.

A file is known by device, inode and its first bytes, so a log that was truncated, rotated or
replaced is read again from the start (with fresh reader state). Only complete lines are
parsed: a last line still being written is left for the next read, and the cursor stays before
it. An over-long line is skipped, even across reads (`Cursor.skipping`). A line the parser
cannot make sense of is counted as bad, never raised about. The file is opened read-only and
non-blocking (a FIFO planted in a log directory cannot hang us) and never written: these are
often the operator's own files. Plain blocking I/O: call from a thread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from tundra_tui.domain.clock import iso
from tundra_tui.usage.records import Cursor, LoggedCost, RawSample, ReadResult

HEAD_BYTES: Final = 512
"""Enough of a file's start to tell two logs apart (its first line's ids and time)."""
MAX_LINE_BYTES: Final = 4 << 20
"""Longer lines are skipped unparsed: usage lines are far shorter, tool results may not be."""
CHUNK_BYTES: Final = 4 << 20
"""How much is read per `pread`: bounded memory whatever was written since the last read."""


class Bad:
    """What a parser returns for a line it cannot make sense of (counted, then skipped)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BAD"


BAD: Final = Bad()

Parsed = RawSample | LoggedCost | Bad | None
Parse = Callable[[bytes, dict[str, str], int], Parsed]
"""`parse(line, state, offset)`: one complete line (no newline) at byte `offset`. `state` is the
reader's own mutable state for this file (strings only: it is stored as JSON with the cursor)."""


def open_log(path: Path) -> int | None:
    """A read-only descriptor on a regular file, or None (missing, unreadable, not a file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of a log (b'' if it cannot be read): what `sources.belongs` needs."""
    fd = open_log(path)
    if fd is None:
        return b""
    try:
        return os.pread(fd, size, 0)
    except OSError:
        return b""
    finally:
        os.close(fd)


def read_jsonl(
    path: Path,
    cursor: Cursor,
    parse: Parse,
    *,
    max_bytes: int = 16 << 20,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ReadResult:
    """What the complete lines after `cursor` say, and the cursor past them.

    Reads at most about `max_bytes` (whole lines; one over-long line may exceed it); `eof` says
    nothing complete is left. Samples are deduplicated by key within the read, keeping the one
    with the most output (Claude Code logs one answer over several lines, its output counted up
    to the last); the store does the same across reads. A file that cannot be opened gives an
    empty result and the cursor unchanged, so nothing is lost.
    """
    fd = open_log(path)
    if fd is None:
        return ReadResult([], [], cursor, 0, None, True)
    try:
        info = os.fstat(fd)
        if not _same_file(fd, info, cursor):
            cursor = Cursor(device=info.st_dev, inode=info.st_ino)
        state = dict(cursor.state)
        offset, skipping = cursor.offset, cursor.skipping
        samples: dict[str, RawSample] = {}
        logged: list[LoggedCost] = []
        bad = 0
        first_bad: int | None = None
        eof = False
        read = 0
        chunk = max(CHUNK_BYTES, max_line_bytes + 1)
        while True:
            if offset >= info.st_size:
                eof = True
                break
            if read >= max_bytes:
                break
            data = os.pread(fd, min(info.st_size - offset, chunk), offset)
            if not data:
                eof = True
                break
            start = 0
            if skipping:
                newline = data.find(b"\n")
                if newline < 0:
                    offset += len(data)
                    read += len(data)
                    continue
                start, skipping = newline + 1, False
            budget = max_bytes - read
            while (newline := data.find(b"\n", start)) >= 0:
                if newline - start <= max_line_bytes:
                    line = data[start:newline].strip()
                    found: Parsed
                    if not line:
                        found = None
                    elif line[:1] != b"{" or line[-1:] != b"}":
                        found = BAD  # not even a JSON object: garbage, or a torn write
                    else:
                        found = parse(line, state, offset + start)
                    if found is BAD:
                        bad += 1
                        if first_bad is None:
                            first_bad = offset + start
                    elif isinstance(found, RawSample):
                        kept = samples.get(found.source_key)
                        if kept is None or found.output > kept.output:
                            samples[found.source_key] = found  # a streamed answer grows
                    elif isinstance(found, LoggedCost):
                        logged.append(found)
                start = newline + 1
                if start >= budget:
                    break  # enough for this read: the rest of the chunk is read next time
            else:
                if len(data) - start > max_line_bytes:
                    start, skipping = len(data), True
            offset += start
            read += start
            if start == 0:
                eof = True  # only a line still being written is left
                break
        head = cursor.head
        if len(head) < HEAD_BYTES and offset > len(head):
            head = os.pread(fd, min(HEAD_BYTES, offset), 0)
        new = replace(
            cursor,
            offset=offset,
            head=head,
            skipping=skipping,
            state=state,
            device=info.st_dev,
            inode=info.st_ino,
        )
        return ReadResult(list(samples.values()), logged, new, bad, first_bad, eof)
    except OSError:
        return ReadResult([], [], cursor, 0, None, True)
    finally:
        os.close(fd)


def _same_file(fd: int, info: os.stat_result, cursor: Cursor) -> bool:
    """Whether the cursor still describes this file: same identity, not shorter, same start."""
    if cursor.offset == 0 and not cursor.skipping:
        return (cursor.device, cursor.inode) in ((0, 0), (info.st_dev, info.st_ino))
    if (info.st_dev, info.st_ino) != (cursor.device, cursor.inode):
        return False
    if info.st_size < cursor.offset:
        return False
    return not cursor.head or os.pread(fd, len(cursor.head), 0) == cursor.head


MAX_TOKENS: Final = 10**9
"""More tokens than any call can use: such a count is corrupt (and would overflow SQLite)."""
MAX_TEXT: Final = 200
"""Model names and ids longer than this are corrupt (or hostile); they are cut or refused."""


def timestamp(value: object) -> str | None:
    """A log's ISO time in the store's sortable UTC form (naive: UTC); None if not one."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return iso(moment)
    except (ValueError, OverflowError):
        return None


def unix_time(value: object) -> str | None:
    """Seconds (or milliseconds, if too large for seconds) since the epoch, in the store form."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if seconds > 1e11:
        seconds /= 1000
    try:
        return iso(datetime.fromtimestamp(seconds, UTC))
    except (ValueError, OverflowError, OSError):
        return None


def count(value: object) -> int | None:
    """A sane token count (None and absent count as 0); None if it is anything else."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        return None
    return value


def text(value: object) -> str:
    """A short string field as written (cut to `MAX_TEXT`), or ''."""
    return value[:MAX_TEXT] if isinstance(value, str) else ""
