"""No process escapes: agents die with their daemon, and stops leave nothing of their tree.

Everything runs through the real `at`, real daemons and real processes. The
escaper (tests/helpers/escaper_agent.py) leaves a `setsid` + `env -i` child with
no terminal and a double-forked daemon with every descriptor closed: what F6
found surviving `at agent stop` and `at daemon stop`. Each such test runs twice:
with a cgroup per agent (skipped where this machine cannot make one) and with
cgroups forced off (`TUNDRA_NO_CGROUP=1`, the tracking fallback).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from at_cli import AT, wait_for

from tundra_tui.config import load_config
from tundra_tui.daemon.client import daemon_pid
from tundra_tui.session.containment import (
    NO_CGROUP_ENV,
    TownContainment,
    cgroup2_mount,
    own_cgroup,
)
from tundra_tui.session.launch import agent_config
from tundra_tui.town import Town, init_town

ESCAPER = Path(__file__).parent / "helpers" / "escaper_agent.py"
LOOP = "while true; do sleep 1; done"


def _cgroups_usable() -> bool:
    mount = cgroup2_mount()
    return mount is not None and os.access(mount / own_cgroup().lstrip("/"), os.W_OK)


MODES = [
    pytest.param(
        "cgroup",
        marks=pytest.mark.skipif(not _cgroups_usable(), reason="no writable cgroup2 here"),
    ),
    pytest.param("tracking"),
]


@dataclass
class CliTown:
    root: Path
    env: dict[str, str]

    @property
    def town(self) -> Town:
        return Town(self.root)

    def at(self, *argv: str) -> str:
        done = subprocess.run(
            [*AT, "--town", str(self.root), *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
            check=False,
        )
        assert done.returncode == 0, f"at {' '.join(argv)}: {done.stderr}"
        return done.stdout

    def pid_of(self, agent: str) -> int:
        rows = json.loads(self.at("agent", "list", "--json"))
        pid = next(row for row in rows if row["name"] == agent)["pid"]
        assert isinstance(pid, int)
        return pid

    def records(self, agent: str) -> list[dict[str, Any]]:
        folder = self.town.state_dir / "agents" / agent
        return [json.loads(path.read_text()) for path in folder.glob("containment-*.json")]

    def swept(self) -> list[dict[str, Any]]:
        """The daemon log's `agent.swept` lines."""
        lines = (self.town.logs_dir / "daemon.log").read_text().splitlines()
        return [line for line in map(json.loads, lines) if line.get("event") == "agent.swept"]


def _make_town(mode: str) -> Iterator[CliTown]:
    root = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    env = {**os.environ, NO_CGROUP_ENV: "1" if mode == "tracking" else "0"}
    town = CliTown(root, env)
    town.at("init", str(root))
    with (root / "tundra.toml").open("a") as config:
        config.write(
            '\n[agents.nap]\nrole = "crew"\nruntime = "custom"\ncommand = "sleep"\nargs = ["600"]\n'
            '\n[agents.loop]\nrole = "crew"\nruntime = "custom"\ncommand = "bash"\n'
            f"args = [{json.dumps('-c')}, {json.dumps(LOOP)}]\n"
            '\n[agents.esc]\nrole = "crew"\nruntime = "custom"\n'
            f"command = {json.dumps(sys.executable)}\n"
            f"args = [{json.dumps(str(ESCAPER))}, {json.dumps(str(root / 'pids.json'))}]\n"
        )
    started = _escapers_of(root)
    try:
        yield town
    finally:
        subprocess.run(
            [*AT, "--town", str(root), "daemon", "stop"], env=env, capture_output=True, check=False
        )
        # A failed test must not leave its sleeps behind: end exactly what it started.
        for proc in _escapers_of(root) - started:
            if _running(proc):
                os.kill(proc[0], signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=MODES)
def town(request: pytest.FixtureRequest) -> Iterator[CliTown]:
    yield from _make_town(request.param)


@pytest.fixture
def plain_town() -> Iterator[CliTown]:
    yield from _make_town("default")


def _escapers_of(root: Path) -> set[tuple[int, int]]:
    path = root / "pids.json"
    if not path.exists():
        return set()
    return {(pid, start) for pid, start in json.loads(path.read_text())["escapers"]}


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _running(proc: tuple[int, int]) -> bool:
    """True while that very process runs (a zombie has ended; a reused pid is another)."""
    fields = _stat(proc[0])
    return fields is not None and int(fields[19]) == proc[1] and fields[0] != "Z"


def _with_start(pid: int) -> tuple[int, int]:
    fields = _stat(pid)
    assert fields is not None, f"{pid} is gone"
    return (pid, int(fields[19]))


def _children(pid: int) -> set[tuple[int, int]]:
    found = set()
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
            found.add((int(entry.name), int(fields[19])))
    return found


def _start_escaper(town: CliTown) -> set[tuple[int, int]]:
    (town.root / "pids.json").unlink(missing_ok=True)
    town.at("agent", "start", "esc")
    wait_for(lambda: (town.root / "pids.json").exists())
    escapers = _escapers_of(town.root)
    assert len(escapers) == 2 and all(map(_running, escapers))
    return escapers


def _copies_of_escaper(town: CliTown) -> int:
    needle = str(town.root / "pids.json").encode()
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if needle in argv and str(ESCAPER).encode() in argv and fields and fields[0] != "Z":
            count += 1
    return count


def _kill_daemon(town: CliTown) -> None:
    pid = daemon_pid(town.town)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon_pid(town.town) is None)


def test_an_agent_starts_with_default_signal_dispositions(plain_town: CliTown) -> None:
    plain_town.at("agent", "start", "nap")  # sleep: it sets no disposition of its own
    status = Path(f"/proc/{plain_town.pid_of('nap')}/status").read_text()
    masks = dict(line.split(":\t") for line in status.splitlines() if line.startswith("Sig"))
    # The daemon ignores SIGHUP, Python SIGPIPE and SIGXFSZ: none of it may reach the agent.
    assert int(masks["SigIgn"], 16) == 0
    assert int(masks["SigBlk"], 16) == 0


def test_a_killed_daemon_takes_its_agent_and_children_along(plain_town: CliTown) -> None:
    plain_town.at("agent", "start", "loop")
    agent = _with_start(plain_town.pid_of("loop"))
    wait_for(lambda: bool(_children(agent[0])))
    tree = {agent, *_children(agent[0])}
    _kill_daemon(plain_town)
    wait_for(lambda: not any(map(_running, tree)), timeout=2.0)
    plain_town.at("daemon", "start")  # its sweep removes what the dead one left (a cgroup)
    assert plain_town.records("loop") == []


@pytest.mark.parametrize("stop", [("agent", "stop", "esc"), ("daemon", "stop")], ids=str)
def test_escaped_children_are_gone_after_a_stop(town: CliTown, stop: tuple[str, ...]) -> None:
    escapers = _start_escaper(town)
    before = town.records("esc")
    town.at(*stop)
    assert not any(map(_running, escapers)), "a stop returns only once the tree is gone"
    # The mode asked for is the one used, and nothing of it is left: record, cgroup.
    assert [record["cgroup"] is None for record in before] == [town.env[NO_CGROUP_ENV] == "1"]
    assert town.records("esc") == []
    assert before[0]["cgroup"] is None or not Path(before[0]["cgroup"]).exists()


def test_the_next_daemon_sweeps_what_a_killed_one_left(town: CliTown) -> None:
    escapers = _start_escaper(town)
    if town.env[NO_CGROUP_ENV] == "1":
        # Tracking writes what it has seen: a process forked less than a sample interval
        # before the daemon died is not on record yet. Wait until the sampler saw both.
        wait_for(lambda: escapers <= {tuple(p) for p in town.records("esc")[0]["processes"]})
    _kill_daemon(town)
    assert all(map(_running, escapers)), "they outlive the daemon: only the sweep can end them"
    town.at("agent", "start", "esc")  # starts a daemon, which sweeps before it serves
    assert not any(map(_running, escapers))
    [swept] = town.swept()
    assert swept["agent"] == "esc" and {p for p, _ in escapers} <= set(swept["data"]["pids"])
    wait_for(lambda: (town.root / "pids.json").exists() and _escapers_of(town.root) != escapers)
    assert _copies_of_escaper(town) == 1


def test_agent_state_is_private_whatever_the_umask(tmp_path: Path) -> None:
    town, _ = init_town(tmp_path / "t")
    old = os.umask(0)
    try:
        launch = agent_config(load_config(town).agents()["mayor"], town, base_env={}).launch
        record = TownContainment(town, use_cgroup=False).enter("mayor", "0123456789abcdef").record
    finally:
        os.umask(old)
    agents = town.state_dir / "agents"
    settings = Path(launch.argv[launch.argv.index("--settings") + 1])
    assert record is not None and record.parent == settings.parent == agents / "mayor"
    for path, mode in (
        (agents, 0o700),
        (agents / "mayor", 0o700),
        (Path(launch.env.get("TMUX_TMPDIR", "/nonexistent")), 0o700),
        (settings, 0o600),
        (record, 0o600),
    ):
        assert (path, path.stat().st_mode & 0o777) == (path, mode)


def test_stopping_one_agent_leaves_another_agents_processes_alone(town: CliTown) -> None:
    town.at("agent", "start", "loop")
    loop = _with_start(town.pid_of("loop"))
    # Started after `loop`: an unseen orphan of it could be either agent's (the unowned pool).
    escapers = _start_escaper(town)
    town.at("agent", "stop", "loop")
    assert not _running(loop)
    assert all(map(_running, escapers)), "esc's processes are not loop's to stop"
    town.at("daemon", "stop")
    assert not any(map(_running, escapers)), "the daemon's stop ends the pool too"
    assert not (town.town.state_dir / "agents" / ".unowned.json").exists()
