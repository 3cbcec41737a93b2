"""The kill -9 harness (research F1, P10): nothing acknowledged is ever lost.

A writer process adds beads and acknowledges each one on stdout after COMMIT. We
SIGKILL it at a random moment, then check that the file is intact and that every
acknowledged bead is there with its exact title, and repeat on the same database.
This is the promise DESIGN.md makes for WAL + synchronous=NORMAL + BEGIN IMMEDIATE.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import sys
from pathlib import Path

import pytest

from tundra_tui.store import open_store

REPO = Path(__file__).resolve().parents[1]
WRITER = REPO / "tests" / "helpers" / "durability_writer.py"
KILLS = int(os.environ.get("TUNDRA_DURABILITY_KILLS", "30"))
SEED = int(os.environ.get("TUNDRA_DURABILITY_SEED", "1010"))
DELAY_RANGE = (0.050, 0.400)
"""Seconds between the writer's first ack and the SIGKILL."""
FIRST_ACK_TIMEOUT = 30.0


def _writer_env() -> dict[str, str]:
    """The writer imports the checkout under test, whatever the venv was installed from."""
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


async def _run_and_kill(db: Path, round_no: int, delay: float, stderr_path: Path) -> bytes:
    """Start a writer, SIGKILL it `delay` s after its first ack, return all it printed."""
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WRITER),
            str(db),
            str(round_no),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=_writer_env(),
            umask=0o022,  # the usual umask, under which SQLite alone would make 0644 files
        )
    assert proc.stdout is not None
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), FIRST_ACK_TIMEOUT)
        if not first.endswith(b"\n"):
            await proc.wait()
            pytest.fail(
                f"round {round_no}: the writer exited ({proc.returncode}) before its first "
                f"ack:\n{stderr_path.read_text()}"
            )
        await asyncio.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest = await proc.stdout.read()
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"round {round_no}: the writer ended by itself ({proc.returncode}), not by the kill:\n"
        f"{stderr_path.read_text()}"
    )
    return first + rest


def parse_acks(output: bytes) -> dict[int, str]:
    """Map id -> title for every complete line; a half-printed last line is no ack."""
    lines = output.decode().split("\n")[:-1]
    acks: dict[int, str] = {}
    for line in lines:
        bead_id, title = line.split("\t", 1)
        acks[int(bead_id)] = title
    return acks


def test_parse_acks_ignores_a_half_printed_line() -> None:
    assert parse_acks(b"1\tround 0 bead 0 ab\n2\tround 0 be") == {1: "round 0 bead 0 ab"}
    assert parse_acks(b"") == {}


def _assert_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"{path.name} has mode {mode:04o}, expected 0600"


async def _verify(db: Path, acked: dict[int, str], round_no: int) -> None:
    """Integrity, every ack with its exact title, and no half-written bead."""
    store = await open_store(db, busy_timeout_ms=5000)
    try:
        assert await store.db.integrity_check() == "ok", f"round {round_no}"
        rows = await store.db.fetchall("SELECT id, title FROM beads")
        stored = {int(row[0]): str(row[1]) for row in rows}
        lost = {i: t for i, t in acked.items() if stored.get(i) != t}
        assert not lost, (
            f"round {round_no}: {len(lost)} acknowledged beads lost or changed "
            f"(seed {SEED}): {dict(list(lost.items())[:5])}"
        )
        # add() writes bead, label and event in one transaction: all three or none.
        torn = await store.db.fetchall(
            "SELECT b.id FROM beads b WHERE "
            "(SELECT count(*) FROM bead_labels l WHERE l.bead_id = b.id) != 1 "
            "OR (SELECT count(*) FROM events e WHERE e.bead_id = b.id "
            "    AND e.kind = 'bead.created') != 1 "
            "UNION ALL SELECT e.bead_id FROM events e WHERE e.kind = 'bead.created' "
            "AND NOT EXISTS (SELECT 1 FROM beads b WHERE b.id = e.bead_id)"
        )
        assert not torn, f"round {round_no}: half-written beads {[r[0] for r in torn]}"
    finally:
        await store.close()


@pytest.mark.slow
async def test_acknowledged_beads_survive_kill_9(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "town.db"
    acked: dict[int, str] = {}
    for round_no in range(KILLS):
        delay = rng.uniform(*DELAY_RANGE)
        output = await _run_and_kill(db, round_no, delay, tmp_path / "writer.err")
        new = parse_acks(output)
        assert new, f"round {round_no}: the writer acknowledged nothing"
        assert not new.keys() & acked.keys(), f"round {round_no}: an id was reused"
        # The killed writer leaves its WAL and SHM behind; they must be as private as the DB.
        for suffix in ("", "-wal", "-shm"):
            _assert_private(db.with_name(db.name + suffix))
        acked.update(new)
        await _verify(db, acked, round_no)
