"""Helpers for the opt-in real-agent tier: binaries, tmux driver, sandboxes, recordings."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
from fake_model_server import FakeModelServer

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENTS_DIR = Path(os.environ.get("TUNDRA_REAL_AGENTS_DIR", REPO_ROOT / ".real-agents"))
SCREENS_DIR = REPO_ROOT / "tests" / "fixtures" / "screens"
ENABLED = os.environ.get("TUNDRA_REAL_AGENTS") == "1"
RECORD = os.environ.get("TUNDRA_RECORD_SCREENS") == "1"
WIDTH, HEIGHT = 120, 40

BINARIES: dict[str, Path] = {
    "claude": AGENTS_DIR / "npm" / "node_modules" / ".bin" / "claude",
    "codex": AGENTS_DIR / "npm" / "node_modules" / ".bin" / "codex",
    "gemini": AGENTS_DIR / "npm" / "node_modules" / ".bin" / "gemini",
    "opencode": AGENTS_DIR / "npm" / "node_modules" / ".bin" / "opencode",
    "aider": AGENTS_DIR / "aider-venv" / "bin" / "aider",
}


def agent_binary(name: str) -> Path:
    """The installed CLI, or skip the test with a pointer to the install script."""
    path = BINARIES[name]
    if not os.access(path, os.X_OK):
        pytest.skip(f"{name} not installed at {path}: run scripts/install-real-agents.sh")
    return path


# --------------------------------------------------------------------------- driver


class Driver(Protocol):
    """What the tests need from a terminal host; tmux now, our session host later."""

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None: ...
    def send_text(self, text: str) -> None: ...
    def send_key(self, key: str) -> None: ...
    def screen(self) -> str: ...
    def close(self) -> None: ...


class TmuxDriver:
    """One agent CLI in a private tmux server (``tmux -L at-real-<pid> -f /dev/null``).

    ``send_key`` takes tmux key names (``Enter``, ``Escape``, ``Up``, ``1``, ``y``).
    """

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.socket = f"at-real-{os.getpid()}-{next(_counter)}"
        self.width = width
        self.height = height
        self.started = False

    def _tmux(self, *args: str, check: bool = True) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        proc = subprocess.run(
            ["tmux", "-u", "-L", self.socket, "-f", "/dev/null", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        command = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
        self._tmux(
            "new-session", "-d", "-s", "agent", "-x", str(self.width), "-y", str(self.height),
            "-c", str(cwd), *command,
            ";", "set-option", "-t", "agent", "remain-on-exit", "on",
        )  # fmt: skip
        self.started = True

    def send_text(self, text: str) -> None:
        self._tmux("send-keys", "-t", "agent", "-l", text)

    def send_key(self, key: str) -> None:
        self._tmux("send-keys", "-t", "agent", key)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "agent", check=False)

    def pane_pid(self) -> int | None:
        out = self._tmux("display-message", "-p", "-t", "agent", "#{pane_pid}", check=False)
        return int(out) if out.strip().isdigit() else None

    def close(self) -> None:
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False


_counter = iter(range(1, 1_000_000))


def submit(driver: Driver, text: str, pause: float = 0.5) -> None:
    """Type a prompt, pause (paste detection, dropped keys), then Enter separately."""
    driver.send_text(text)
    time.sleep(pause)
    driver.send_key("Enter")


def wait_for(
    driver: Driver,
    check: Callable[[str], bool] | str,
    timeout: float = 30.0,
    what: str = "",
) -> str:
    """Poll the screen every 0.1 s until ``check`` (a predicate or regex) holds."""
    pred = (lambda s: re.search(check, s, re.M) is not None) if isinstance(check, str) else check
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = driver.screen()
        if pred(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what or check!r}; last screen:\n{screen}"
    )


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


# --------------------------------------------------------------------------- sandbox


@dataclass
class Sandbox:
    """Temp HOME + fresh git work dir + fake model server for one agent run."""

    root: Path
    home: Path
    work: Path
    server: FakeModelServer
    port: int
    server_log: Path
    runtime: str
    recorder: ScreenRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = ScreenRecorder(self.runtime, {self.work: "<work>", self.home: "<home>"})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_env(self) -> dict[str, str]:
        node_dir = Path(shutil.which("node") or "/usr/bin/node").parent
        path = os.pathsep.join(dict.fromkeys([str(node_dir), "/usr/local/bin", "/usr/bin", "/bin"]))
        return {
            "HOME": str(self.home),
            "PATH": path,
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": str(self.root / "tmp"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def requests(self) -> list[dict[str, object]]:
        if not self.server_log.exists():
            return []
        return [json.loads(line) for line in self.server_log.read_text().splitlines() if line]


def git_init(work: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)

    git("init", "-q", ".")
    git("config", "user.name", "Real Agent Test")
    git("config", "user.email", "real-agents@example.invalid")
    git("config", "commit.gpgsign", "false")


def reap_by_home(home: Path) -> list[int]:
    """SIGTERM every process whose environment has ``HOME=<home>`` (our own leftovers)."""
    needle = f"HOME={home}".encode() + b"\0"
    killed: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ:
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGTERM)
                killed.append(int(entry.name))
    return killed


# --------------------------------------------------------------------------- recording


# Numbering is per runtime and state across the whole pytest run.
_RECORD_COUNTS: dict[tuple[str, str], int] = {}


class ScreenRecorder:
    """Writes sanitised screens to tests/fixtures/screens/<runtime>/<state>-recorded-<n>.txt.

    Only when ``TUNDRA_RECORD_SCREENS=1``; otherwise it just keeps them in memory.
    """

    STATES = ("idle", "working", "awaiting_approval")

    def __init__(self, runtime: str, replacements: Mapping[Path, str]) -> None:
        self.runtime = runtime
        self.replacements = sorted(
            ((str(p), tag) for p, tag in replacements.items()), key=lambda kv: -len(kv[0])
        )
        self.screens: list[tuple[str, str]] = []

    def sanitise(self, screen: str) -> str:
        for path, tag in self.replacements:
            screen = screen.replace(path, tag)
        lines = [line.rstrip() for line in screen.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines) + "\n"

    def record(self, state: str, screen: str) -> str:
        assert state in self.STATES, state
        clean = self.sanitise(screen)
        n = _RECORD_COUNTS[self.runtime, state] = _RECORD_COUNTS.get((self.runtime, state), 0) + 1
        self.screens.append((state, clean))
        if RECORD:
            out = SCREENS_DIR / self.runtime / f"{state}-recorded-{n}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(clean, encoding="utf-8")
        return clean
