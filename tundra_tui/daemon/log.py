"""The daemon's structured log: one JSON object per line in `.tundra/logs/daemon.log`.

The daemon runs detached, so its log is the only witness of what went wrong: every
failure it meets is one line here (`time`, `level`, and `agent`, `event` or `op`,
`duration_ms`, `error`, `data` when they apply), read by `at daemon status` and by
people with `tail`/`jq`. Lines are written straight from the event loop: a short
append to a local file costs microseconds, and a thread would only add an owner to
shut down. Every string passes through `redact` (no token reaches the disk) and is
escaped by JSON, so a line cannot act on the terminal that shows it. The files are
0600 whatever the umask, and rotate by size so a noisy agent cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, TypeVar

from tundra_tui.domain.redact import redact
from tundra_tui.town import Town

MAX_BYTES = 5 * 1024 * 1024
"""Size at which daemon.log rotates to daemon.log.1."""
BACKUPS = 3
"""Rotated files kept (daemon.log.1 … .3): at most ~20 MiB of history."""
MAX_STRING = 4096
"""Characters kept of one string value; a whole screen does not belong in a log line."""
ERROR_LEVELS = frozenset({"error", "critical"})

_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What JSON leaves raw but a terminal may act on (DEL, C1 controls, bidi and line
separators); escaped as \\uXXXX, which is valid JSON inside a string."""

T = TypeVar("T")


def log_path(town: Town) -> Path:
    """The daemon's JSON-lines log."""
    return town.logs_dir / "daemon.log"


def stderr_path(town: Town) -> Path:
    """Where a detached daemon's stray output goes (a crash traceback), apart from the JSON."""
    return town.logs_dir / "daemon.stderr"


def open_private(path: Path, flags: int) -> int:
    """Open (creating) `path` as 0600 whatever the umask; an existing file is tightened too."""
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class _PrivateRotatingFile(RotatingFileHandler):
    """A RotatingFileHandler whose files are 0600 and whose failures are counted, not printed.

    logging's default `handleError` prints a traceback to stderr on every failed write; on
    a full disk that would be one traceback per line. Lines that could not be written are
    counted instead, and the next line that gets through says how many were lost.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.dropped = 0
        # Opened on the first line, so a file that cannot be opened costs a count, not a start.
        super().__init__(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )

    def _open(self) -> TextIOWrapper:
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        return os.fdopen(fd, "a", encoding="utf-8")

    def handleError(self, record: logging.LogRecord) -> None:
        self.dropped += 1


class DaemonLog:
    """The daemon's log. Cheap to call from the event loop; never raises."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self._handler = _PrivateRotatingFile(path, max_bytes, backups)

    @classmethod
    def open(cls, town: Town, **limits: int) -> DaemonLog:
        """The town's daemon log, creating `.tundra/logs/` (0700) if needed."""
        town.logs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(log_path(town), **limits)

    # ---- lines ---------------------------------------------------------------------------------

    def debug(self, event: str | None = None, **fields: Any) -> None:
        """A detail worth keeping only while diagnosing."""
        self.write("debug", event, **fields)

    def info(self, event: str | None = None, **fields: Any) -> None:
        """Something that happened: `log.info("agent.started", agent="d1", pid=123)`."""
        self.write("info", event, **fields)

    def warning(self, event: str | None = None, **fields: Any) -> None:
        """Something wrong that the daemon worked around."""
        self.write("warning", event, **fields)

    def error(self, event: str | None = None, **fields: Any) -> None:
        """A failure: `log.error(op="spawn", agent="d1", error=exc, duration_ms=12.5)`."""
        self.write("error", event, **fields)

    def exception(
        self, event: str | None = None, *, error: BaseException | None = None, **fields: Any
    ) -> None:
        """An exception as one error line: its type, message and where it was raised (the
        innermost frame), never its locals. Inside `except`, `error` defaults to the one
        being handled."""
        caught = error if error is not None else sys.exception()
        where = _where(caught) if caught is not None else ""
        if where:
            fields.setdefault("where", where)
        self.write("error", event, error=caught, **fields)

    def write(
        self,
        level: str,
        event: str | None = None,
        *,
        op: str | None = None,
        agent: str | None = None,
        duration_ms: float | None = None,
        error: BaseException | str | None = None,
        **data: Any,
    ) -> None:
        """One line at `level`; anything beyond the named fields goes under `data`."""
        record: dict[str, Any] = {"time": _now(), "level": level}
        for key, value in (("event", event), ("op", op), ("agent", agent)):
            if value:
                record[key] = _clean(value)
        if duration_ms is not None:
            record["duration_ms"] = round(float(duration_ms), 3)
        if error is not None:
            record["error"] = _clean(describe(error) if isinstance(error, BaseException) else error)
        lost = self._handler.dropped
        if lost:
            data["log_lines_lost"] = lost
        if data:
            record["data"] = _clean(data)
        line = _UNSAFE.sub(_escape, json.dumps(record, ensure_ascii=False, allow_nan=False))
        self._handler.handle(logging.makeLogRecord({"msg": line}))
        if lost and self._handler.dropped == lost:  # this line got through and told of them
            self._handler.dropped = 0

    # ---- tasks and the loop --------------------------------------------------------------------

    def watch(
        self, task: asyncio.Future[T], *, what: str, agent: str | None = None
    ) -> asyncio.Future[T]:
        """Log the reason if `task` dies with an exception (and retrieve it, so asyncio never
        prints "Task exception was never retrieved"). Cancellation is a normal end."""

        def done(finished: asyncio.Future[T]) -> None:
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                self.exception("task.failed", error=error, agent=agent, task=what)

        task.add_done_callback(done)
        return task

    def on_loop_exception(
        self, loop: asyncio.AbstractEventLoop, context: Mapping[str, Any]
    ) -> None:
        """For `loop.set_exception_handler`: what asyncio would print to stderr, as one line."""
        error = context.get("exception")
        message = str(context.get("message") or "")
        if isinstance(error, BaseException):
            self.exception("loop.exception", error=error, message=message)
        else:
            self.error("loop.exception", error=message or "unknown error")

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the loop's unhandled exceptions here instead of stderr."""
        loop.set_exception_handler(self.on_loop_exception)

    def close(self) -> None:
        """Flush and close the file."""
        self._handler.close()


# ---- reading back ------------------------------------------------------------------------------


def last_error(path: Path, *, tail_bytes: int = 256 * 1024) -> dict[str, Any] | None:
    """The newest error line in the log (None if there is none in its last `tail_bytes`).

    Lines that are not JSON objects (an old town's free-form log) are skipped.
    """
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(size - tail_bytes, 0))
            chunk = file.read()
    except OSError:
        return None
    for raw in reversed(chunk.splitlines()):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ERROR_LEVELS:
            return record
    return None


def summary(record: Mapping[str, Any]) -> str:
    """One readable line for a log record: `time  op/event  agent: error`."""
    what = " ".join(str(record[key]) for key in ("event", "op") if isinstance(record.get(key), str))
    agent = record.get("agent")
    head = f"{what} {agent}" if isinstance(agent, str) and agent else what
    reason = record.get("error") or ""
    parts = [str(record.get("time", "")), f"{head}: {reason}" if head else str(reason)]
    return "  ".join(part for part in parts if part)


# ---- helpers -------------------------------------------------------------------------------------


def describe(error: BaseException) -> str:
    """`ValueError: bad thing`, or the type alone when the message is empty."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _where(error: BaseException) -> str:
    """`module.py:123 in function` of the innermost frame the exception passed through."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """A JSON-ready copy of `value` with every string redacted and cut to MAX_STRING."""
    if isinstance(value, str):
        text = redact(value)
        if len(text) > MAX_STRING:
            return f"{text[:MAX_STRING]}… ({len(text) - MAX_STRING} more characters)"
        return text
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, BaseException):
        return _clean(describe(value))
    if isinstance(value, Mapping):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    return _clean(str(value))


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"
