"""Driving the real `at` command line from tests: a short-path town, `at` runs, and waits.

Towns live directly under /tmp because a Unix socket path may hold ~104 bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

AT = [sys.executable, "-m", "tundra_tui"]
DEMO_ARGS = '\n[runtimes.demo]\nargs = ["--speed", "0.2", "--approval-rate", "0"]\n'


def at(
    town: Path, *argv: str, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `at --town TOWN ARGV…`; by default fail the test on a non-zero exit."""
    done = subprocess.run(
        [*AT, "--town", str(town), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"at {' '.join(argv)}: {done.stderr}"
    return done


def dump(db: Path) -> list[str]:
    """Every row of the database as SQL, to prove a failed command wrote nothing."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until `predicate()` holds, failing the test after `timeout` seconds.

    Between looks it waits at least as long as the look took: a look that runs `at`
    costs a process start, and polling back to back would take a core from the daemon
    and agents being waited on (the machines running these tests have two)."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        if predicate():
            return
        assert time.monotonic() < deadline, "timed out"
        time.sleep(max(0.1, time.monotonic() - started))


@contextmanager
def daemon_town(*, demo_agent: bool = True) -> Iterator[Path]:
    """A fresh town (with a fast demo agent `d1` unless asked not to); its daemon is
    stopped and the town removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    try:
        at(root, "init", str(root))
        if demo_agent:
            at(root, "agent", "add", "d1", "--runtime", "demo")
            with (root / "tundra.toml").open("a") as config:
                config.write(DEMO_ARGS)
        yield root
    finally:
        at(root, "daemon", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fake_cli_town(runtime: str, agent: str, helper: Path, version: str) -> Iterator[Path]:
    """A daemon town with one idle agent `agent` of `runtime` whose program is a script
    playing that CLI (`helper VERSION ARGS...`), installed under the CLI's own name so the
    daemon's `--version` check asks it."""
    with daemon_town(demo_agent=False) as root:
        bin_dir = root / "fake-bin"
        bin_dir.mkdir()
        program = bin_dir / runtime
        program.write_text(f'#!/bin/sh\nexec {sys.executable} {helper} {version} "$@"\n')
        program.chmod(0o755)
        with (root / "tundra.toml").open("a") as config:
            config.write(
                f'\n[agents.{agent}]\nrole = "crew"\nruntime = "{runtime}"\n'
                f"command = {json.dumps(str(program))}\n"
            )
        at(root, "agent", "start", agent)
        wait_for(lambda: agent_state(root, agent) == "idle")
        yield root


def agent_state(town: Path, name: str) -> str:
    """The agent's state as `at agent list --json` says it."""
    rows = json.loads(at(town, "agent", "list", "--json").stdout)
    return str(next(row for row in rows if row["name"] == name)["state"])


def pending_approvals(town: Path) -> list[dict[str, Any]]:
    """What `at approvals --json` lists as waiting."""
    return list(json.loads(at(town, "approvals", "--json").stdout))


ASKER = Path(__file__).parent / "helpers" / "asker_agent.py"


def asker_config(name: str, approval_pattern: str | None = None) -> str:
    """tundra.toml lines for a `custom` agent `name` running tests/helpers/asker_agent.py
    (`y`/`n` answer it; `approval_pattern` None: no pattern configured)."""
    # TOML literal strings: the patterns' backslashes go in as they are.
    pattern = "" if approval_pattern is None else f"approval_pattern = '{approval_pattern}'\n"
    return (
        "\n[runtimes.custom]\n"
        f"command = {json.dumps(f'{sys.executable} {ASKER}')}\n"
        "idle_pattern = 'READY>\\Z'\n"
        f"{pattern}"
        'approve_keys = "y"\ndeny_keys = "n"\n'
        f'\n[agents.{name}]\nrole = "crew"\nruntime = "custom"\n'
    )


@contextmanager
def asker_town(name: str, approval_pattern: str | None = None) -> Iterator[Path]:
    """A daemon town with the asker agent `name` (`asker_config`), started and idle."""
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as file:
            file.write(asker_config(name, approval_pattern))
        at(root, "agent", "start", name)
        wait_for(lambda: agent_state(root, name) == "idle")
        yield root


GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
GIT_TOWN_CONFIG: dict[str, Any] = {
    "general": {"name": "git-town"},
    "orchestra": {"target_branch": "main", "polecat_runtime": "demo"},
    "runtimes": {"demo": {"args": ["--speed", "0", "--approval-rate", "0"]}},
}


def git(repo: Path, *argv: str) -> str:
    """Run git in `repo` (with a test identity for commits) and return its output."""
    done = subprocess.run(
        ["git", "-C", str(repo), *GIT_IDENTITY, *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"git {' '.join(argv)}: {done.stderr}"
    return done.stdout


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


@contextmanager
def git_town(**config: Any) -> Iterator[Path]:
    """A town that is a git repository on `main` with one commit and a clean tree, and a
    tundra.toml written whole from `config` (tables merged over GIT_TOWN_CONFIG: demo
    polecats at speed 0, target branch main, no sample team), e.g.
    `git_town(orchestra={"max_polecats": 2}, agents={"crew-1": {...}})`.
    Its daemon is stopped and the town removed afterwards."""
    import tomlkit

    root = Path(tempfile.mkdtemp(prefix="at-", dir="/tmp"))
    try:
        git(root, "init", "-q", "-b", "main")
        at(root, "init", str(root))
        (root / "tundra.toml").write_text(tomlkit.dumps(_merged(GIT_TOWN_CONFIG, config)))
        (root / "README.md").write_text("a town for tests\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "first")
        yield root
    finally:
        at(root, "daemon", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


class Tmux:
    """A private tmux server (no user config) with one pane running `command`."""

    def __init__(self, name: str, command: str, width: int = 100, height: int = 30) -> None:
        self.socket = f"at-{name}-{os.getpid()}"
        size = f"{width}x{height}"
        # One tmux invocation: the size is the default before the pane's program starts, so it
        # never sees tmux's own 80x24 default first.
        self.run(
            "start-server", ";", "set-option", "-g", "default-size", size, ";",
            "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command,
        )  # fmt: skip

    def resize(self, width: int, height: int) -> None:
        """Resize the pane (the program gets SIGWINCH)."""
        self.run("set-option", "-t", "t", "window-size", "manual")
        self.run("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        """tmux key names, e.g. "Enter", "C-]", "3"."""
        self.run("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        """Literal text."""
        self.run("send-keys", "-t", "t", "-l", text)

    def wait_for(self, text: str | Callable[[str], bool], timeout: float = 20) -> str:
        check = text if callable(text) else (lambda screen: text in screen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


async def until(
    predicate: object, timeout: float = 15.0, step: float = 0.05, *, what: str = ""
) -> None:
    """Poll `predicate` (plain or async) on the running loop until it holds, or fail
    (saying `what` was awaited)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate() if callable(predicate) else None
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(step)
