"""Only the operator approves, through the real `at` and a real daemon, against a hostile
agent (tests/helpers/asker_agent.py) whose own children try to answer for it."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import (
    agent_state,
    asker_config,
    asker_town,
    at,
    daemon_town,
    pending_approvals,
    wait_for,
)

AT_INSIDE = f"{sys.executable} -m tundra_tui"
"""How the agent's children run `at` (the agent's PATH need not hold our virtualenv)."""


APPROVAL = r"Allow command\? .*\[y/n\]\Z"
CONFIG = asker_config("evil", APPROVAL)


@pytest.fixture
def town() -> Iterator[Path]:
    with asker_town("evil", APPROVAL) as root:
        yield root


def _state(town: Path) -> str:
    return agent_state(town, "evil")


def _attack(town: Path, name: str, script: str) -> Path:
    """A script the agent runs in the background; it writes its exit code to NAME.rc."""
    (town / f"{name}.sh").write_text(f"{script}\necho $? > {name}.rc\n")
    return town / f"{name}.rc"


def test_the_agents_own_child_cannot_type_its_answer(town: Path) -> None:
    """F2: `at send <itself> y` from inside the agent while its prompt waits."""
    rc = _attack(
        town,
        "send",
        f"until {AT_INSIDE} approvals --json | grep -q evil; do sleep 0.1; done\n"
        f"{AT_INSIDE} send evil y",
    )
    at(town, "send", "evil", "bg sh send.sh ; ask touch forged.txt")
    wait_for(rc.exists)
    assert rc.read_text().strip() == "2"
    assert "approval is pending" in (town / "bg.log").read_text()
    assert not (town / "forged.txt").exists()
    (waiting,) = pending_approvals(town)
    assert waiting["agent"] == "evil"
    assert not (town / "keys.log").exists(), "no key reached the agent"
    at(town, "deny", str(waiting["id"]))
    wait_for(lambda: (town / "keys.log").exists())
    assert (town / "keys.log").read_text() == "n"


def test_raw_keys_from_inside_an_agent_are_always_refused(town: Path) -> None:
    """F2: the raw `send_keys` op written straight to the socket, with nothing pending."""
    probe = (
        "import json, socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect('.tundra/at.sock')\n"
        'request = {"v": 2, "id": 1, "req": {"op": "send_keys", "name": "evil", "data": "eQ=="}}\n'
        "s.sendall((json.dumps(request) + '\\n').encode())\n"
        "print(s.makefile().readline())\n"
    )
    (town / "raw.py").write_text(probe)
    rc = _attack(town, "raw", f"{sys.executable} raw.py > raw.out")
    at(town, "send", "evil", "bg sh raw.sh")
    wait_for(rc.exists)
    reply = json.loads((town / "raw.out").read_text())
    assert "ok" not in reply and "keys from inside an agent" in reply["error"]
    assert not (town / "keys.log").exists()


def test_the_operators_own_send_still_works(town: Path) -> None:
    at(town, "send", "evil", "ask touch mine.txt")
    wait_for(lambda: len(pending_approvals(town)) == 1)
    (waiting,) = pending_approvals(town)
    assert waiting["subject"] == "Allow command? touch mine.txt [y/n]"
    at(town, "approve", str(waiting["id"]))
    wait_for(lambda: (town / "mine.txt").exists())
    assert (town / "keys.log").read_text() == "y"


def test_a_request_made_while_the_database_is_locked_is_shown_and_kept(town: Path) -> None:
    """F7: the request was never recorded and the agent waited at `!` forever. Now the
    daemon shows it at once, says its writes are waiting, and writes it when it can."""
    (town / ".tundra" / "local.toml").write_text("[store]\nbusy_timeout_ms = 200\n")
    at(town, "daemon", "stop")
    at(town, "agent", "start", "evil")
    wait_for(lambda: _state(town) == "idle")
    blocker = sqlite3.connect(town / ".tundra" / "town.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        at(town, "send", "evil", "ask touch kept.txt")
        wait_for(lambda: len(pending_approvals(town)) == 1)
        status = json.loads(at(town, "daemon", "status", "--json").stdout)
        wait_for(
            lambda: (
                "locked"
                in json.loads(at(town, "daemon", "status", "--json").stdout).get("store_error", "")
            )
        )
        assert status["approvals"] == 1
        assert blocker.execute("SELECT COUNT(*) FROM approvals").fetchone() == (0,)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    def stored() -> list[tuple[int, str]]:
        with sqlite3.connect(town / ".tundra" / "town.db") as db:
            return list(db.execute("SELECT id, status FROM approvals"))

    (waiting,) = pending_approvals(town)
    wait_for(lambda: stored() == [(waiting["id"], "pending")])
    at(town, "approve", str(waiting["id"]))
    wait_for(lambda: (town / "kept.txt").exists())
    wait_for(lambda: stored() == [(waiting["id"], "approved")])


def test_an_agent_command_from_a_file_others_can_write_is_refused() -> None:
    """F11: another local user rewrote an agent's command in a 0666 tundra.toml, and the
    operator's next `at agent start` ran it as the operator, with no warning."""
    with daemon_town(demo_agent=False) as root:
        config = root / "tundra.toml"
        with config.open("a") as handle:
            handle.write(CONFIG)
        config.chmod(0o666)
        refused = at(root, "agent", "start", "evil", check=False)
        assert refused.returncode == 2
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "evil" in refused.stderr and "tundra.toml" in refused.stderr
        assert _state(root) != "idle"
        config.chmod(0o644)
        at(root, "agent", "start", "evil")
        wait_for(lambda: _state(root) == "idle")


def test_a_socket_handed_on_by_a_peer_that_exited_cannot_approve(town: Path) -> None:
    """SO_PEERCRED names the process that connected; a child of the agent connects, exits,
    and its parent speaks on the socket. An ancestry that cannot be read is an agent's."""
    attack = (
        "import json, os, socket, subprocess, sys, time\n"
        "while True:\n"
        "    out = subprocess.run([sys.executable, '-m', 'tundra_tui', 'approvals', '--json'],\n"
        "                         capture_output=True, text=True).stdout\n"
        "    pending = json.loads(out or '[]')\n"
        "    if pending:\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    s.connect('.tundra/at.sock')\n"
        "    os._exit(0)\n"
        "os.waitpid(child, 0)\n"
        "request = {'v': 2, 'id': 1, 'req': {'op': 'approve', 'id': pending[0]['id']}}\n"
        "s.sendall((json.dumps(request) + '\\n').encode())\n"
        "open('handed.out', 'w').write(s.makefile().readline())\n"
    )
    (town / "handed.py").write_text(attack)
    rc = _attack(town, "handed", f"{sys.executable} handed.py")
    at(town, "send", "evil", "bg sh handed.sh ; ask touch handed.txt")
    wait_for(rc.exists)
    reply = json.loads((town / "handed.out").read_text())
    assert "ok" not in reply and "operator" in reply["error"]
    assert not (town / "handed.txt").exists()
    assert len(pending_approvals(town)) == 1


def test_the_agents_child_cannot_push_an_answer_into_its_terminal(town: Path) -> None:
    """TIOCSTI puts bytes in a terminal's input as if typed: the agent's child pushed `y`
    into its own PTY while the prompt waited, and the command ran."""
    probe = (
        "import fcntl, json, os, subprocess, sys, termios, time\n"
        "while not json.loads(subprocess.run([sys.executable, '-m', 'tundra_tui', 'approvals',\n"
        "        '--json'], capture_output=True, text=True).stdout or '[]'):\n"
        "    time.sleep(0.1)\n"
        "fd = os.open('/dev/tty', os.O_RDWR)\n"
        "try:\n"
        "    fcntl.ioctl(fd, termios.TIOCSTI, b'y')\n"
        "    open('sti.out', 'w').write('injected')\n"
        "except OSError as error:\n"
        "    open('sti.out', 'w').write(f'refused {error.errno}')\n"
    )
    (town / "sti.py").write_text(probe)
    rc = _attack(town, "sti", f"{sys.executable} sti.py")
    at(town, "send", "evil", "bg sh sti.sh ; ask touch stolen.txt")
    wait_for(rc.exists)
    assert (town / "sti.out").read_text() == "refused 1"
    assert not (town / "stolen.txt").exists() and not (town / "keys.log").exists()
    assert len(pending_approvals(town)) == 1
