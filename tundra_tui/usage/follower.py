"""Following directories of usage logs: each poll reads only the complete lines added since.

A file is remembered by device, inode, read offset and its first bytes, so a log that is
truncated, rotated or replaced is read again from the start; the store keys samples by
`source_key`, so reading a line twice never counts it twice. Lines still being written (no
newline yet) are left for a later poll. Reads are plain blocking file I/O: call `read` and
`poll` from a thread (`ingest` does), and from one owner at a time.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tundra_tui.domain.metrics import UsageSample
from tundra_tui.store import Store
from tundra_tui.town import Town
from tundra_tui.usage.claude import MAX_LINE_BYTES, RUNTIME, parse_lines

LOG_SUFFIX = ".jsonl"
HEAD_BYTES = 512
"""Enough of a file's start to reach its first line's uuid: what tells two logs apart."""


def usage_dir(town: Town) -> Path:
    """Where the town's agents write `<agent>.jsonl` (the demo agents of the demo town do)."""
    return town.state_dir / "usage"


@dataclass(frozen=True, slots=True)
class _Position:
    """How far one file has been read, and how to tell it is still the same file."""

    device: int
    inode: int
    offset: int = 0
    head: bytes = b""
    skipping: bool = False
    """Inside an over-long line: drop everything up to the next newline."""


@dataclass(frozen=True)
class Batch:
    """What one read found, and where every file would be once it is committed."""

    samples: list[UsageSample]
    positions: dict[Path, _Position] = field(repr=False)


class UsageFollower:
    """Follows `*.jsonl` logs directly inside `dirs`; a log's stem names its agent."""

    def __init__(
        self,
        dirs: Iterable[Path],
        *,
        runtimes: Mapping[str, str] | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.runtimes = dict(runtimes or {})
        """The runtime that writes each agent's log (`demo` for demo agents); else claude."""
        self.max_line_bytes = max_line_bytes
        self.chunk_bytes = 4 * max_line_bytes
        """A long log is read in chunks, each parsed before the next is read, so memory stays
        bounded however much was written since the last poll; several lines fit in each."""
        self._positions: dict[Path, _Position] = {}

    def poll(self) -> list[UsageSample]:
        """Read what is new and move past it."""
        batch = self.read()
        self.commit(batch)
        return batch.samples

    def read(self) -> Batch:
        """What is new since the last commit, without moving past it (so a failed store write
        loses nothing: read again)."""
        positions: dict[Path, _Position] = {}
        samples: list[UsageSample] = []
        for path in self._logs():
            found, position = self._read_file(path, self._positions.get(path))
            if position is not None:
                positions[path] = position
                samples.extend(found)
        return Batch(samples, positions)

    def commit(self, batch: Batch) -> None:
        """Move past what `batch` read; logs that disappeared are forgotten."""
        self._positions = dict(batch.positions)

    def _logs(self) -> list[Path]:
        found: list[Path] = []
        for directory in self.dirs:
            try:
                with os.scandir(directory) as entries:
                    found.extend(
                        Path(entry.path) for entry in entries if entry.name.endswith(LOG_SUFFIX)
                    )
            except OSError:
                continue  # not created yet, or unreadable: nothing to follow there
        return sorted(found)

    def _read_file(
        self, path: Path, known: _Position | None
    ) -> tuple[list[UsageSample], _Position | None]:
        """Samples in the new complete lines of one log (its stem names the agent) and its new
        position; None if it is not a readable regular file. O_NONBLOCK so that a FIFO planted
        in the directory cannot hang the open."""
        agent = path.stem
        runtime = self.runtimes.get(agent, RUNTIME)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return [], None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return [], None
            position = known
            if not self._same_file(fd, info, position):
                position = _Position(info.st_dev, info.st_ino)
            assert position is not None
            samples: dict[str, UsageSample] = {}
            while position.offset < info.st_size:
                before = position.offset
                data = os.pread(fd, min(info.st_size - before, self.chunk_bytes), before)
                lines, position = self._split(data, position)
                for sample in parse_lines(lines, agent=agent, runtime=runtime):
                    samples.setdefault(sample.source_key, sample)
                if position.offset == before:
                    break  # only a line still being written is left
            if len(position.head) < HEAD_BYTES:
                position = replace(position, head=os.pread(fd, min(HEAD_BYTES, position.offset), 0))
            return list(samples.values()), position
        except OSError:
            return [], known
        finally:
            os.close(fd)

    @staticmethod
    def _same_file(fd: int, info: os.stat_result, position: _Position | None) -> bool:
        if position is None or (info.st_dev, info.st_ino) != (position.device, position.inode):
            return False
        if info.st_size < position.offset:
            return False
        return not position.head or os.pread(fd, len(position.head), 0) == position.head

    def _split(self, data: bytes, position: _Position) -> tuple[list[bytes], _Position]:
        """Cut `data` into complete lines, dropping over-long ones; keep a partial tail unread."""
        start = 0
        skipping = position.skipping
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return [], replace(position, offset=position.offset + len(data))
            start, skipping = newline + 1, False
        lines: list[bytes] = []
        while (newline := data.find(b"\n", start)) >= 0:
            if newline - start <= self.max_line_bytes:
                lines.append(data[start:newline])
            start = newline + 1
        if len(data) - start > self.max_line_bytes:
            start, skipping = len(data), True
        return lines, replace(position, offset=position.offset + start, skipping=skipping)


async def ingest(store: Store, follower: UsageFollower) -> int:
    """Record what the follower finds new; returns how many samples the store did not have.

    The follower moves on only after the store has the samples, so a locked or full database
    means the same lines are read again next time.
    """
    batch = await asyncio.to_thread(follower.read)
    added = await store.metrics.record(batch.samples) if batch.samples else 0
    follower.commit(batch)
    return added
