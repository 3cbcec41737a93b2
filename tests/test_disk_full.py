"""A full disk is a one-line error, and what was committed before stays intact.

The disk is a 1 MiB tmpfs mounted in a private user and mount namespace
(`unshare -Urm`), so no privileges are needed and nothing outside changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
set -u
mount -t tmpfs -o size=1m tmpfs "$MNT" || exit 99
at() { "$PY" -m tundra_tui --town "$MNT/town" "$@"; }
"$PY" -m tundra_tui init "$MNT/town" >/dev/null || exit 98
desc=$(head -c 60000 /dev/zero | tr '\0' 'x')
n=0
while [ $n -lt 100 ]; do
    at bead add "bead $n" -d "$desc" >/dev/null 2>"$OUT/err"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "failed-at=$n rc=$rc" > "$OUT/result"
        break
    fi
    n=$((n + 1))
done
at bead list --json > "$OUT/list.json" 2>"$OUT/list.err"
"$PY" -c "$CHECK" "$MNT/town/.tundra/town.db" > "$OUT/integrity"
"""


CHECK = (
    "import sqlite3, sys; "
    "print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])"
)


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-Urm", "true"], capture_output=True, check=False, timeout=10
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unshare_works(), reason="needs unprivileged user namespaces (unshare -Urm)"
)
def test_full_disk_is_a_clean_error_and_keeps_committed_beads(tmp_path: Path) -> None:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    env = {
        "MNT": str(mount_point),
        "OUT": str(out),
        "PY": sys.executable,
        "CHECK": CHECK,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["unshare", "-Urm", "bash", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = (out / "result").read_text()
    assert "rc=2" in result, result
    failed_at = int(result.split("failed-at=")[1].split()[0])
    assert failed_at > 0, "some beads must fit before the disk fills"
    err = (out / "err").read_text().strip().splitlines()
    assert len(err) == 1 and "full" in err[0] and "Traceback" not in err[0], err
    assert (out / "integrity").read_text().strip() == "ok"
    titles = [bead["title"] for bead in json.loads((out / "list.json").read_text())]
    assert titles == [f"bead {n}" for n in range(failed_at)], "every acknowledged bead is kept"
