"""The daemon's structured log: one safe JSON object per line, private, bounded, and the
place where failed tasks and the loop's unhandled errors end up."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import stat
from pathlib import Path
from typing import Any

from tundra_tui.daemon.log import DaemonLog, last_error, summary

TOKEN = "ghp_" + "a" * 36


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_line_has_the_named_fields_and_the_rest_under_data(log: DaemonLog) -> None:
    log.info("agent.started", agent="d1", pid=41)
    log.error(op="spawn", agent="d1", error="no such runtime", duration_ms=12.34567)
    started, failed = lines(log.path)
    assert started["level"] == "info" and started["event"] == "agent.started"
    assert started["agent"] == "d1" and started["data"] == {"pid": 41}
    assert started["time"].endswith("Z") and len(started["time"]) == len("2026-12-01T10:00:00.000Z")
    assert failed == {
        "time": failed["time"],
        "level": "error",
        "op": "spawn",
        "agent": "d1",
        "duration_ms": 12.346,
        "error": "no such runtime",
    }


def test_secrets_are_redacted_and_controls_cannot_reach_a_terminal(log: DaemonLog) -> None:
    hostile = f"\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\u2028{TOKEN}"
    log.warning("screen.odd", agent=f"a\x1b[31m {TOKEN}", row=hostile, nested={"k": [hostile]})
    raw = log.path.read_bytes()
    assert raw.count(b"\n") == 1, "one object, one line"
    assert TOKEN.encode() not in raw
    for byte in (b"\x1b", b"\x07", b"\xc2\x9b", "\u202e".encode(), "\u2028".encode()):
        assert byte not in raw
    (record,) = lines(log.path)
    assert record["data"]["row"] == hostile.replace(TOKEN, "[REDACTED:github]")
    assert record["data"]["nested"] == {"k": [record["data"]["row"]]}
    assert record["agent"] == "a\x1b[31m [REDACTED:github]"


def test_an_exception_is_its_type_message_and_place_never_its_locals(log: DaemonLog) -> None:
    def spawn() -> None:
        secret_local = f"token {TOKEN}"  # noqa: F841 - must never be written
        raise ValueError("runtime 'nope' is not known")

    try:
        spawn()
    except ValueError:
        log.exception(op="spawn", agent="d1")
    (record,) = lines(log.path)
    assert record["level"] == "error" and record["op"] == "spawn"
    assert record["error"] == "ValueError: runtime 'nope' is not known"
    assert record["data"]["where"].startswith("test_daemon_log.py:")
    assert record["data"]["where"].endswith(" in spawn")
    assert "secret_local" not in log.path.read_text() and "token" not in log.path.read_text()


def test_files_are_private_whatever_the_umask_and_rotation_is_bounded(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        log = DaemonLog(tmp_path / "daemon.log", max_bytes=2000, backups=2)
        for n in range(200):
            log.info("tick", n=n, pad="x" * 50)
        log.close()
    finally:
        os.umask(old)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["daemon.log", "daemon.log.1", "daemon.log.2"]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert path.stat().st_size <= 2000
        assert all(record["event"] == "tick" for record in lines(path))
    assert lines(tmp_path / "daemon.log")[-1]["data"]["n"] == 199


def test_lines_that_could_not_be_written_are_counted_in_the_next_one(tmp_path: Path) -> None:
    log = DaemonLog(tmp_path / "logs" / "daemon.log")  # its directory does not exist yet
    log.error("lost.one")
    log.error("lost.two")
    (tmp_path / "logs").mkdir()
    log.info("back")
    log.close()
    (record,) = lines(log.path)
    assert record["event"] == "back" and record["data"] == {"log_lines_lost": 2}


async def test_a_watched_task_that_dies_is_logged_and_never_unretrieved(log: DaemonLog) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:

        async def reaper() -> None:
            raise RuntimeError("waitpid failed")

        async def cancelled() -> None:
            await asyncio.Event().wait()

        failing = log.watch(asyncio.ensure_future(reaper()), what="reaper", agent="d1")
        quiet = log.watch(asyncio.ensure_future(cancelled()), what="idle")
        await asyncio.wait([failing])
        quiet.cancel()
        await asyncio.wait([quiet])
        await asyncio.sleep(0)  # done callbacks run on the next loop iteration
        del failing, quiet
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert unhandled == [], "asyncio was left to print the exception"
    (record,) = lines(log.path)
    assert record["event"] == "task.failed" and record["agent"] == "d1"
    assert record["error"] == "RuntimeError: waitpid failed"
    assert record["data"]["task"] == "reaper"


async def test_the_loop_handler_logs_what_asyncio_would_print(log: DaemonLog) -> None:
    loop = asyncio.get_running_loop()
    log.install(loop)
    try:
        future: asyncio.Future[None] = loop.create_future()
        future.set_exception(OSError("socket gone"))
        del future
        gc.collect()
        loop.call_exception_handler({"message": "a callback failed"})
    finally:
        loop.set_exception_handler(None)
    dropped, called = lines(log.path)
    assert dropped["event"] == "loop.exception" and dropped["error"] == "OSError: socket gone"
    assert dropped["data"]["message"] == "Future exception was never retrieved"
    assert called["error"] == "a callback failed"


def test_last_error_finds_the_newest_error_and_skips_free_text(log: DaemonLog) -> None:
    assert last_error(log.path) is None  # no file yet
    log.error(op="spawn", agent="d1", error="first")
    log.error(op="spawn", agent="d2", error="second")
    log.info("agent.started", agent="d3")
    log.close()
    with log.path.open("a") as file:
        file.write("Traceback (most recent call last): an old free-form line\n")
    record = last_error(log.path)
    assert record is not None and record["error"] == "second"
    assert summary(record) == f"{record['time']}  spawn d2: second"
