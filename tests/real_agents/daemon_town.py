"""`DaemonTown`: a real agent CLI run by the town's DAEMON, driven only through `at`.

The test makes a town (``at init``), declares the agent in ``tundra.toml`` the
way a user would (``command``, ``args``, ``env``), and then uses nothing but
the CLI: ``at agent start`` (which starts the daemon), ``at agent list``,
``at send``, ``at approvals``, ``at approve`` / ``at deny``, ``at peek``,
``at events`` and ``at daemon stop``. The daemon builds the launch itself
(``agent_config``), so Claude Code's hooks (``at hook-event``) report to it over
the town's Unix socket, exactly as in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from host_driver import TIMINGS

from tundra_tui.daemon.client import MAX_SOCKET_PATH
from tundra_tui.domain.agents import Runtime
from tundra_tui.town import Town

AT = (sys.executable, "-m", "tundra_tui")
# Nothing of ours or of the real user's Anthropic setup may leak into the daemon
# (and from there into the agent, which gets only its runtime's allow-listed part of it).
_SCRUBBED_PREFIXES = ("TUNDRA_", "ANTHROPIC_", "CLAUDE_")


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


class DaemonTown:
    """A town at ``root`` with one agent ``name`` in its tundra.toml, run by its daemon."""

    def __init__(
        self,
        root: Path,
        name: str,
        runtime: Runtime,
        argv: Sequence[str],
        env: Mapping[str, str],
    ) -> None:
        self.root = root
        self.name = name
        self.town = Town(root)
        sock = self.town.socket_path
        assert len(str(sock)) <= MAX_SOCKET_PATH, f"town path too long for a socket: {sock}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        self.daemon_started = False
        self.at("init", str(root))
        lines = [
            "",
            f"[agents.{name}]",
            'role = "crew"',
            f"runtime = {_toml_string(runtime.value)}",
            f"command = {_toml_string(str(argv[0]))}",
            f"args = [{', '.join(_toml_string(a) for a in argv[1:])}]",
            "",
            f"[agents.{name}.env]",
            *(f"{key} = {_toml_string(value)}" for key, value in env.items()),
            "",
        ]
        with self.town.config_path.open("a", encoding="utf-8") as config:
            config.write("\n".join(lines))

    # ---- the CLI -------------------------------------------------------------------------

    def at(self, *argv: str, check: bool = True, timeout: float = 60) -> str:
        """Run ``at --town ROOT ARGV…`` from inside the town; its stdout."""
        if argv[:2] == ("agent", "start"):
            self.daemon_started = True  # `at agent start` starts the daemon
        done = subprocess.run(
            [*AT, "--town", str(self.root), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            env=self.env,
            check=False,
        )
        if check:
            assert done.returncode == 0, (
                f"at {' '.join(argv)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}\n{self.describe()}"
            )
        return done.stdout

    def json(self, *argv: str) -> Any:
        return json.loads(self.at(*argv, "--json"))

    def agent(self) -> dict[str, Any]:
        rows = self.json("agent", "list")
        return dict(next(r for r in rows if r["name"] == self.name))

    def state(self) -> str:
        return str(self.agent()["state"])

    def pending(self) -> list[dict[str, Any]]:
        return list(self.json("approvals"))

    def events(self, kind: str = "") -> list[dict[str, Any]]:
        argv = ["events", "--agent", self.name, "-n", "200"]
        if kind:
            argv += ["--kind", kind]
        return list(self.json(*argv))

    def hook_events(self) -> list[str]:
        return [str(e["data"].get("event")) for e in self.events("agent.hook")]

    def peek(self) -> str:
        return self.at("peek", self.name, check=False)

    def stop(self) -> None:
        if self.daemon_started:
            self.at("daemon", "stop", check=False, timeout=40)
            self.daemon_started = False

    # ---- waiting -------------------------------------------------------------------------

    def wait(self, pred: Callable[[], Any], timeout: float, what: str) -> float:
        """Poll ``pred`` every 0.2 s until truthy; the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            if pred():
                return time.monotonic() - start
            time.sleep(0.2)
        if pred():
            return time.monotonic() - start
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.describe()}")

    def wait_state(self, state: str, timeout: float, what: str = "") -> float:
        return self.wait(lambda: self.state() == state, timeout, what or f"state {state}")

    def timed(self, step: str, seconds: float) -> float:
        """Note how long a step took (shown in the terminal summary)."""
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0].split("::")[-1]
        TIMINGS.setdefault(test, []).append((step, seconds))
        return seconds

    def describe(self) -> str:
        """State, hook events, the daemon log and the screen, for failure messages."""
        parts = []
        for argv in (("agent", "list"), ("events", "--agent", self.name, "-n", "30")):
            done = subprocess.run(
                [*AT, "--town", str(self.root), *argv],
                capture_output=True,
                text=True,
                timeout=30,
                cwd=self.root,
                env=self.env,
                check=False,
            )
            parts.append(f"$ at {' '.join(argv)}\n{done.stdout}{done.stderr}")
        log = self.town.logs_dir / "daemon.log"
        if log.exists():
            parts.append(f"daemon.log (tail):\n{log.read_text(errors='replace')[-2000:]}")
        if self.daemon_started:
            done = subprocess.run(
                [*AT, "--town", str(self.root), "peek", self.name],
                capture_output=True,
                text=True,
                timeout=30,
                cwd=self.root,
                env=self.env,
                check=False,
            )
            parts.append(f"screen:\n{done.stdout}{done.stderr}")
        return "\n".join(parts)
