"""`at daemon stop|status`, `at approvals|approve|deny`, `at send|peek` through the real `at`
and real daemons: each says what is true, whole."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from at_cli import AT, at, daemon_town, wait_for
from rich.cells import cell_len

from tundra_tui.cli.daemon import approval_lines
from tundra_tui.daemon.client import daemon_pid, stopped_marker
from tundra_tui.daemon.log import DaemonLog
from tundra_tui.daemon.protocol import ApprovalInfo
from tundra_tui.town import find_town

LONG = "echo " + "A" * 300 + " TAIL-OF-THE-COMMAND"


@pytest.fixture
def town() -> Iterator[Path]:
    with daemon_town() as root:
        yield root


def idle(town: Path, name: str = "d1") -> bool:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return any(row["name"] == name and row["state"] == "idle" for row in rows)


def test_stop_says_how_many_agents_it_stopped_and_leaves_the_marker(town: Path) -> None:
    found = find_town(town)
    at(town, "agent", "start", "d1")
    wait_for(lambda: idle(town))
    done = at(town, "daemon", "stop")
    assert done.stdout.strip() == "daemon stopped; it stopped 1 agent"
    assert daemon_pid(found) is None
    assert stopped_marker(found).exists()
    assert "(stopped by `at daemon stop`)" in at(town, "daemon", "status", check=False).stdout
    assert at(town, "daemon", "stop").stdout.strip() == "no daemon is running"
    at(town, "daemon", "start")
    assert not stopped_marker(found).exists(), "a start on purpose forgets the stop"


def test_stop_of_a_daemon_that_does_not_exit_says_so_and_fails(town: Path) -> None:
    found = find_town(town)
    at(town, "daemon", "start")
    pid = daemon_pid(found)
    assert pid
    os.kill(pid, signal.SIGSTOP)  # stuck: it accepts the request but never acts on it
    try:
        done = at(town, "daemon", "stop", "--wait", "1", check=False)
        assert done.returncode == 1
        assert f"the daemon (pid {pid}) is still running 1 s after it was asked" in done.stdout
        assert f"kill -KILL {pid}" in done.stdout
        assert "daemon stopped" not in done.stdout
        stuck = json.loads(at(town, "daemon", "stop", "--wait", "0", "--json", check=False).stdout)
        assert stuck == {"stopped": False, "running": True, "pid": pid, "waited_s": 0.0}
    finally:
        os.kill(pid, signal.SIGCONT)
    # Once it runs again it carries out the stop it was asked for, though the asker left.
    wait_for(lambda: at(town, "daemon", "status", check=False).returncode == 1)
    assert at(town, "daemon", "stop").stdout.startswith("no daemon is running")
    assert daemon_pid(found) is None


def test_status_shows_the_log_and_its_last_error(town: Path) -> None:
    found = find_town(town)
    at(town, "daemon", "start")
    log = DaemonLog.open(found)  # as the daemon writes it
    log.error(op="spawn", agent="d1", error="runtime exited at once (exit 127)")
    log.info("agent.started", agent="d2")
    log.close()
    shown = at(town, "daemon", "status").stdout
    assert f"log         {found.logs_dir / 'daemon.log'}" in shown
    assert "last error  " in shown and "spawn d1: runtime exited at once (exit 127)" in shown
    status = json.loads(at(town, "daemon", "status", "--json").stdout)
    assert status["last_error"]["error"] == "runtime exited at once (exit 127)"
    assert status["log"] == str(found.logs_dir / "daemon.log")


def test_status_of_a_daemon_that_dies_before_it_answers_says_not_running(town: Path) -> None:
    """A daemon killed between the client's connect and its answer still gets JSON."""
    found = find_town(town)
    found.socket_path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(found.socket_path))
        listener.listen(4)
        hang_up = threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True)
        hang_up.start()
        done = at(town, "daemon", "status", "--json", check=False)
        hang_up.join(timeout=10)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["running"] is False
    found.socket_path.unlink()


def test_a_detached_daemons_stray_output_is_kept_apart_from_the_json_log(town: Path) -> None:
    found = find_town(town)
    # The daemon inherits this: Python then prints every import's timing to its stderr.
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    old = os.umask(0)
    try:
        subprocess.run([*AT, "--town", str(town), "daemon", "start"], env=env, check=True)
    finally:
        os.umask(old)
    stderr = found.logs_dir / "daemon.stderr"
    wait_for(lambda: stderr.exists() and "import time:" in stderr.read_text())
    assert stat.S_IMODE(stderr.stat().st_mode) == 0o600
    log = found.logs_dir / "daemon.log"
    if log.exists():
        for line in log.read_text().splitlines():
            assert isinstance(json.loads(line), dict), line
    assert "stderr" in at(town, "daemon", "status").stdout


def test_approvals_show_the_whole_command_wrapped_and_approve_prints_it(town: Path) -> None:
    at(town, "agent", "start", "d1")
    wait_for(lambda: idle(town))
    at(town, "send", "d1", f"RUN: {LONG}")
    wait_for(lambda: "TAIL-OF-THE-COMMAND" in at(town, "approvals", "--json").stdout)
    (pending,) = json.loads(at(town, "approvals", "--json").stdout)
    assert "TAIL-OF-THE-COMMAND" in pending["subject"] and pending["cwd"]
    narrow = {**os.environ, "COLUMNS": "60"}
    shown = subprocess.run(
        [*AT, "--town", str(town), "approvals"], env=narrow, capture_output=True, text=True
    ).stdout.splitlines()
    assert shown[0].startswith(f"#{pending['id']}  d1  ")
    assert all(len(row) <= 60 for row in shown[1:]), shown
    assert "…" not in "".join(shown)
    assert rejoin(shown[1:]) == pending["subject"]
    answered = subprocess.run(
        [*AT, "--town", str(town), "approve"], env=narrow, capture_output=True, text=True
    ).stdout.splitlines()
    assert answered[0] == "approving the oldest request:"
    assert rejoin(answered[2:-1]) == pending["subject"]
    assert answered[-1] == f"approval {pending['id']}: approved"


def rejoin(rows: list[str]) -> str:
    """The command back from its wrapped rows: indent off, `␤` is a newline."""
    assert all(row.startswith("    ") for row in rows), rows
    return "".join(row[4:] for row in rows).replace("\u2424", "\n")


def test_the_approval_layout_wraps_by_cells_and_shows_hidden_characters() -> None:
    subject = "printf '\x1b]0;x\x07'\t&& echo 漢字漢字漢字漢字 " + "B" * 30 + "\nrm -rf /tmp/x"
    approval = ApprovalInfo(id=7, agent="a\x1b[2J", runtime="claude", status="pending",
                            tool="Bash", source="hook", subject=subject, cwd="/w",
                            created_at="2026-12-01T10:11:12.000Z")  # fmt: skip
    second = msgspec.structs.replace(approval, id=8, subject="")
    rows = approval_lines([approval, second], width=24)
    assert rows[0] == "#7  a␛[2J  Bash  from hook  since 10:11:12  in /w"
    body = rows[1 : rows.index("")]
    assert all(cell_len(row) <= 24 for row in body), body
    assert "\x1b" not in "".join(rows) and "\x07" not in "".join(rows)
    assert body[-1] == "    rm -rf /tmp/x" and body[-2].endswith("␤")
    assert rows[-2:] == [
        "#8  a␛[2J  Bash  from hook  since 10:11:12  in /w",
        "    (no detail given)",
    ]


def test_send_and_peek_say_whether_an_agent_is_unknown_or_stopped(town: Path) -> None:
    found = find_town(town)
    for argv in (("send", "nobody", "hi"), ("peek", "nobody")):
        done = at(town, *argv, check=False)
        assert done.returncode == 2
        assert done.stderr.strip() == "at: no agent 'nobody' in tundra.toml (see `at agent list`)"
    done = at(town, "send", "d1", "hi", check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "at: d1 is not running (start it with `at agent start d1`)"
    assert daemon_pid(found) is None, "telling d1 is not running needs no daemon"
    peeked = at(town, "peek", "d1").stdout
    assert peeked.startswith("(d1 is not running (no daemon); its last recorded screen:)")
    assert daemon_pid(found) is None
    at(town, "daemon", "start")
    done = at(town, "send", "d1", "hi", check=False)
    assert done.stderr.strip() == "at: d1 is not running (start it with `at agent start d1`)"
