"""The paper cuts a new user hit (findings 2026-12, "Tried as a new user would"), each pinned
through the real `at`, the real store and, where it takes one, a real daemon and PTY."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ptyprocess
import pytest
from at_cli import AT, at, daemon_town, dump, wait_for

from tundra_tui.domain.agents import AgentState, Role, Runtime
from tundra_tui.domain.beads import Action
from tundra_tui.store import RosterEntry, Store, open_store

OP = "operator"
ROSTER = [
    RosterEntry("alice", Role.POLECAT, Runtime.DEMO),
    RosterEntry("bob", Role.CREW, Runtime.DEMO),
]


def snapshot(town: Path) -> tuple[bytes, list[str]]:
    return (town / "tundra.toml").read_bytes(), dump(town / ".tundra" / "town.db")


def one_line_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("at: "), done.stderr
    assert fragment in lines[0], done.stderr


def agent_row(town: Path, name: str) -> dict[str, Any]:
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return next(row for row in rows if row["name"] == name)


@pytest.fixture
def town(town_dir: Path) -> Iterator[Path]:
    """A fresh town with agents m1 and c1 of its own (whatever sample `at init` writes); any
    daemon a command started is stopped afterwards."""
    for name in ("m1", "c1"):
        at(town_dir, "agent", "add", name, "--runtime", "demo")
    try:
        yield town_dir
    finally:
        at(town_dir, "daemon", "stop", check=False)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "town.db")
    try:
        await opened.agents.sync_roster(ROSTER, actor=OP)
        yield opened
    finally:
        await opened.close()


# ---- 1. errors that still wrote -------------------------------------------------------------


def test_polecat_spawn_with_a_missing_bead_writes_nothing(town: Path) -> None:
    before = snapshot(town)
    done = at(town, "polecat", "spawn", "pc9", "--runtime", "demo", "--bead", "999", check=False)
    one_line_error(done, "no bead #999")
    assert snapshot(town) == before


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--bead", "1"), "not inside a git work tree"),  # the town is not in git
        (("--bead", "2"), "blocked by #1"),
        (("--bead", "3"), "hooked to m1"),
    ],
)
def test_polecat_spawn_checks_everything_before_writing(
    town: Path, argv: tuple[str, ...], fragment: str
) -> None:
    at(town, "bead", "add", "first")
    at(town, "bead", "add", "second", "--blocked-by", "1")
    at(town, "bead", "add", "third")
    at(town, "hook", "3", "m1")
    before = snapshot(town)
    done = at(town, "polecat", "spawn", "pc9", "--runtime", "demo", *argv, check=False)
    one_line_error(done, fragment)
    assert snapshot(town) == before
    assert not town.joinpath(".tundra", "at.sock").exists(), "no daemon was started for it"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("nudge", "nobody", "-m", "hi"), "no agent 'nobody' in tundra.toml to nudge"),
        (("nudge", "operator", "-m", "hi"), "the operator has no terminal to nudge"),
    ],
)
def test_a_nudge_to_nobody_stores_nothing(town: Path, argv: tuple[str, ...], fragment: str) -> None:
    before = snapshot(town)
    one_line_error(at(town, *argv, check=False), fragment)
    assert snapshot(town) == before
    assert not town.joinpath(".tundra", "at.sock").exists(), "no daemon was started for it"


def test_a_nudge_for_a_stopped_agent_is_kept_as_mail_and_says_how_to_start_it(
    town: Path,
) -> None:
    done = at(town, "nudge", "m1", "-m", "wake up", check=False)
    assert done.returncode == 1, done
    assert "kept as mail for m1" in done.stdout
    assert "`at agent start m1`" in done.stdout
    (mail,) = json.loads(at(town, "mail", "list", "--json").stdout)
    assert (mail["recipient"], mail["read_at"]) == ("m1", "")
    assert not town.joinpath(".tundra", "at.sock").exists(), "a nudge never starts the daemon"


# ---- 2. a removed agent is gone -------------------------------------------------------------


async def test_an_agent_taken_out_while_it_runs_leaves_lists_at_once(store: Store) -> None:
    await store.agents.set_state("alice", AgentState.WORKING, actor=OP, pid=123)
    await store.agents.sync_roster(ROSTER[1:], actor=OP)
    assert [a.name for a in await store.agents.all()] == ["bob"]
    # The daemon still records what the running process does.
    stopped = await store.agents.set_state("alice", AgentState.STOPPED, actor=OP, last_screen="bye")
    assert stopped.state is AgentState.STOPPED
    assert [a.name for a in await store.agents.all()] == ["bob"]
    await store.agents.sync_roster(ROSTER[1:], actor=OP)  # nothing refers to it any more
    rows = await store.db.fetchall("SELECT name FROM agents")
    assert [row[0] for row in rows] == ["bob"]
    removed = await store.events.find(kind_prefix="agent.removed")
    assert [e.agent for e in removed] == ["alice"], "said once, when it left the roster"


async def test_an_agent_holding_work_leaves_lists_and_keeps_its_beads(store: Store) -> None:
    bead = await store.beads.add("work", actor=OP)
    await store.beads.sling(bead.id, "alice", actor=OP)
    await store.agents.sync_roster(ROSTER[1:], actor=OP)
    assert [a.name for a in await store.agents.all()] == ["bob"]
    assert await store.agents.held_beads("alice") == [bead.id]
    assert (await store.beads.get(bead.id)).assignee == "alice"
    await store.agents.sync_roster(ROSTER, actor=OP)  # added back: the same agent again
    assert [a.name for a in await store.agents.all()] == ["alice", "bob"]
    await store.beads.apply(bead.id, Action.DONE, actor=OP)
    await store.agents.sync_roster(ROSTER[1:], actor=OP)
    assert [row[0] for row in await store.db.fetchall("SELECT name FROM agents")] == ["bob"]


def test_an_agent_removed_by_hand_leaves_status_at_once(town: Path) -> None:
    at(town, "bead", "add", "work")
    at(town, "hook", "1", "c1")
    at(town, "bead", "edit", "1", "--status", "slung")
    count = json.loads(at(town, "status", "--json").stdout)["agent_count"]
    config = town / "tundra.toml"
    config.write_text(re.sub(r"\[agents\.c1\][^\[]*", "", config.read_text()))
    status = json.loads(at(town, "status", "--json").stdout)
    assert status["agent_count"] == count - 1
    listed = json.loads(at(town, "agent", "list", "--json").stdout)
    assert "c1" not in {row["name"] for row in listed}
    bead = json.loads(at(town, "bead", "show", "1", "--json").stdout)["bead"]
    assert (bead["status"], bead["assignee"]) == ("slung", "c1"), "its work is kept"


# ---- 3. no secret in the agents table -------------------------------------------------------

GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
ANTHROPIC = "sk-ant-" + "api03-abcdefghijklmnopqrstuvwxyz012345"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"


async def test_a_state_write_never_stores_a_token_from_the_screen(
    store: Store, tmp_path: Path
) -> None:
    screen = f"$ echo {GITHUB}\n{GITHUB}\nkey: {ANTHROPIC}\n{PEM}\n❯ "
    await store.agents.set_state(
        "alice",
        AgentState.IDLE,
        actor=OP,
        evidence={"rule": "idle", "matched": f"token {ANTHROPIC}", "lines": [GITHUB]},
        last_screen=screen,
    )
    kept = await store.agents.last_screen("alice")
    assert "[REDACTED:github]" in kept and "[REDACTED:anthropic]" in kept
    assert "[REDACTED:private-key]" in kept and kept.endswith("❯ ")
    files = [tmp_path / name for name in ("town.db", "town.db-wal")]
    raw = b"".join(path.read_bytes() for path in files if path.exists())
    for secret in (GITHUB, ANTHROPIC, "MIIEowIBAAKCAQEA"):
        assert secret.encode() not in raw
    (event,) = await store.events.find(kind_prefix="agent.state")
    assert event.data["evidence"]["matched"] == "token [REDACTED:anthropic]"
    assert event.data["evidence"]["lines"] == ["[REDACTED:github]"]


# ---- 4. the demo agent stays out of the user's Claude history --------------------------------


def test_a_demo_agent_in_a_town_logs_usage_in_the_town_not_in_home(private_home: Path) -> None:
    with daemon_town() as root:
        at(root, "agent", "start", "d1")
        wait_for(lambda: agent_row(root, "d1")["state"] == "idle")
        at(root, "send", "d1", "add a --verbose flag")
        log = root / ".tundra" / "usage" / "d1.jsonl"
        wait_for(lambda: log.exists() and '"cost-state"' in log.read_text(), timeout=40)
        at(root, "agent", "stop", "d1")
        kinds = {json.loads(line)["type"] for line in log.read_text().splitlines()}
    assert {"user", "assistant", "cost-state"} <= kinds
    assert not (private_home / ".claude").exists()


def test_a_demo_agent_outside_a_town_writes_no_usage_log(
    private_home: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNDRA_", "CLAUDE_"))}
    argv = [sys.executable, "-m", "tundra_tui.demo_agent", "--speed", "0", "--approval-rate", "0"]
    argv += ["--seed", "7", "--auto-task", "x"]
    agent = Terminal(argv, tmp_path, env)
    try:
        agent.expect(re.escape("[demo] idle"))
        agent.process.write(b"exit\r")
        agent.expect("Bye.")
        agent.process.wait()
    finally:
        agent.close()
    assert agent.process.exitstatus == 0
    assert list(private_home.iterdir()) == [], "nothing written into HOME"


# ---- 5. `at --json` is `at status --json` ----------------------------------------------------


def test_at_with_only_global_options_is_at_status(town: Path) -> None:
    expected = json.loads(at(town, "status", "--json").stdout)
    assert json.loads(at(town, "--json").stdout) == expected
    plain = subprocess.run([*AT, "--town", str(town)], capture_output=True, text=True, check=False)
    assert plain.returncode == 0 and plain.stdout == at(town, "status").stdout, plain.stderr
    done = subprocess.run([*AT, "--bogus"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr


# ---- 6. a delivered nudge is read ------------------------------------------------------------


def test_a_delivered_nudge_gets_its_read_receipt() -> None:
    with daemon_town() as root:
        at(root, "agent", "start", "d1")
        wait_for(lambda: agent_row(root, "d1")["state"] == "idle")
        assert "nudged d1" in at(root, "nudge", "d1", "-m", "also update the changelog").stdout
        (mail,) = json.loads(at(root, "mail", "list", "--json").stdout)
        assert mail["subject"] == "nudge" and mail["read_at"], mail
        assert json.loads(at(root, "mail", "list", "--unread", "--json").stdout) == []
        # The receipt of mail typed in (issue 11): `mail.delivered`, naming the message.
        (read,) = json.loads(at(root, "events", "--kind", "mail.delivered", "--json").stdout)
        assert (read["agent"], read["data"]["ids"]) == ("d1", [mail["id"]])


# ---- 7 and 8. attach: clear refusals, and a terminal restored on a hangup ---------------------


class Terminal:
    """A command in a real PTY, its output read against a deadline."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        env = {**(os.environ if env is None else env), "TERM": "xterm-256color"}
        self.process = ptyprocess.PtyProcess.spawn(
            argv, cwd=str(cwd), env=env, dimensions=(30, 100)
        )
        self.output = b""

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[bytes]:
        wanted = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while (found := wanted.search(self.output)) is None:
            assert time.monotonic() < deadline, f"{pattern!r} never came:\n{self.output!r}"
            ready, _, _ = select.select([self.process.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.process.fd, 65536)
                except OSError:  # the PTY closed: all was read
                    found = wanted.search(self.output)
                    assert found is not None, f"{pattern!r} never came:\n{self.output!r}"
                    return found
        return found

    def close(self) -> None:
        if self.process.isalive():
            self.process.terminate(force=True)


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_attach_restores_the_terminal_on_a_hangup_or_sigterm(signum: int) -> None:
    with daemon_town() as root:
        at(root, "agent", "start", "d1")
        wait_for(lambda: agent_row(root, "d1")["state"] == "idle")
        attach = " ".join([*AT, "--town", str(root), "session", "attach", "d1"])
        script = f"stty sane; {attach}; echo attach-exit=$?; stty -a; sleep 60"
        terminal = Terminal(["/bin/sh", "-c", script], root)
        try:
            terminal.expect("demo❯")
            (attach_pid,) = children(terminal.process.pid)
            os.kill(attach_pid, signum)
            terminal.expect(r"attach-exit=(\d+)")
            modes = terminal.expect(r"\n[^\n]*\bicanon\b[^\n]*").group(0).decode().split()
            tail = terminal.output.decode(errors="replace")
        finally:
            terminal.close()
    assert f"attach-exit={128 + signum}" in tail
    assert "icanon" in modes and "echo" in modes, f"the terminal was left raw: {modes}"
    assert "\x1b[?1049l" in tail, "the agent's screen is left"


def test_attach_to_a_stopped_or_unknown_agent_says_which_and_what_to_run(tmp_path: Path) -> None:
    with daemon_town() as root:
        for name, fragment in (
            ("d1", "agent 'd1' is stopped, not running: start it with `at agent start d1`"),
            ("zz", "no agent 'zz' in tundra.toml (see `at agent list`)"),
        ):
            argv = [*AT, "--town", str(root), "session", "attach", name]
            terminal = Terminal(argv, tmp_path)
            try:
                terminal.expect(re.escape(fragment))
                terminal.process.wait()
                assert terminal.process.exitstatus == 2
            finally:
                terminal.close()
        assert not root.joinpath(".tundra", "at.sock").exists(), "no daemon was started for it"


# ---- 9. small ones ----------------------------------------------------------------------------


def test_an_unknown_key_is_said_ignored_once(town: Path) -> None:
    with (town / "tundra.toml").open("a") as config:
        config.write("\n[ui]\ncolour = 'red'\n")
    done = at(town, "status")
    assert done.stderr.count("ignored") == 1, done.stderr
    assert done.stderr.rstrip().endswith("ui.colour: unknown key, ignored")


def test_doctor_says_a_missing_absolute_command_is_not_found(town: Path) -> None:
    with (town / "tundra.toml").open("a") as config:
        config.write(
            '\n[agents.ghost]\nrole = "crew"\nruntime = "custom"\ncommand = "/nowhere/agent-cli"\n'
            '\n[agents.plain]\nrole = "crew"\nruntime = "custom"\ncommand = "README.md"\n'
        )
    rows = json.loads(at(town, "doctor", "--json", check=False).stdout)
    details = {row["check"]: row["detail"] for row in rows}
    assert details["agent ghost"] == "custom: /nowhere/agent-cli not found"
    assert details["agent plain"] == "custom: README.md not found on PATH"
