"""The page check (`PRAGMA quick_check`) of a file changed since its last clean check runs
before the process's first write, not at open, for the CLI: a reader cannot spread damage,
and a running daemon changes the file all the time, so every `at cost` on a big town paid a
full read of it (most of `at cost`'s 1.2 s on a 250 MB year). A writer still never writes
beside damage. Counted by the check's own record (`town.db.checked`), never timed."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.at_cli import AT
from tests.test_private import damage_a_middle_page, digest, fill
from tundra_tui.store.db import DamagedDatabase, open_database
from tundra_tui.town import init_town


def changed_by_another_writer(path: Path) -> None:
    """What a running daemon does: a write, checkpointed into the main file."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("INSERT INTO kpi_snapshots (at) VALUES ('2026-12-07T00:00:00.000000Z')")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def test_a_deferred_check_runs_before_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    await fill(path)  # created here: never checked
    db = await open_database(path, allow_damaged=True, check_on_write=True)
    try:
        row = await db.fetchone("SELECT count(*) FROM beads")
        assert row is not None and row[0] == 300
        assert not db.checked_pages  # reads pay nothing
        async with db.write() as conn:
            await conn.execute("UPDATE beads SET priority = 1 WHERE id = 1")
        assert db.checked_pages and db.damage == ""
    finally:
        await db.close()


async def test_a_damaged_file_is_still_refused_for_writes(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    await fill(path)
    damage_a_middle_page(path)
    before = digest(path)
    db = await open_database(path, allow_damaged=True, check_on_write=True)
    try:
        assert await db.schema_version() > 0  # still readable
        for _ in range(2):  # the first write runs the check, and every later one is refused
            with pytest.raises(DamagedDatabase, match="is damaged") as refused:
                async with db.write() as conn:
                    await conn.execute("DELETE FROM beads")
            assert str(refused.value) == db.damage
            assert db.damage.startswith(f"{path} is damaged (")
    finally:
        await db.close()
    assert digest(path) == before


def test_at_cost_on_a_file_a_daemon_changed_runs_no_check_and_a_write_does(
    tmp_path: Path,
) -> None:
    town, _ = init_town(tmp_path / "town")
    checked = town.db_path.with_name(town.db_path.name + ".checked")

    def at(*argv: str) -> None:
        done = subprocess.run(
            [*AT, "--town", str(town.root), *argv], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

    at("bead", "add", "first")  # the roster synced, a bead: the file's first writes
    changed_by_another_writer(town.db_path)
    record = checked.read_text() if checked.exists() else ""
    at("cost")
    at("cost", "--by", "bead")
    assert (checked.read_text() if checked.exists() else "") == record  # no check ran
    at("bead", "add", "second")
    assert checked.read_text() not in ("", record)  # the check ran before the write
