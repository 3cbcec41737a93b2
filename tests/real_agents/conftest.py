"""Fixtures for the opt-in real-agent tier (see README.md in this folder).

Everything here is skipped unless ``TUNDRA_REAL_AGENTS=1`` *and* the CLI under
test was installed by ``scripts/install-real-agents.sh``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_town import DaemonTown
from fake_model_server import start_server
from host_driver import TIMINGS, HostDriver
from real_agent_harness import ENABLED, Sandbox, TmuxDriver, git_init, reap_by_home

from tundra_tui.domain.agents import Runtime


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="real-agent tests are opt-in: set TUNDRA_REAL_AGENTS=1")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[[str], Sandbox]]:
    """Factory: ``make_sandbox("claude")`` -> a fresh :class:`Sandbox` (cleaned up after)."""
    made: list[Sandbox] = []

    def make(runtime: str) -> Sandbox:
        # Short real paths under /tmp: they show up in agent headers (and are replaced by
        # <work>/<home>), and a town's Unix socket path must stay under ~104 bytes.
        root = Path(tempfile.mkdtemp(prefix=f"at-real-{runtime}-", dir="/tmp")).resolve()
        home, work = root / "home", root / "work"
        for d in (home, work, root / "tmp"):
            d.mkdir()
        git_init(work)
        log = root / "server.jsonl"
        server, port = start_server(log)
        box = Sandbox(root, home, work, server, port, log, runtime)
        made.append(box)
        return box

    yield make
    for box in made:
        box.server.shutdown()
        box.server.server_close()
        reap_by_home(box.home)
        if os.environ.get("TUNDRA_REAL_AGENTS_KEEP") != "1":
            shutil.rmtree(box.root, ignore_errors=True)


@pytest.fixture
def driver() -> Iterator[TmuxDriver]:
    drv = TmuxDriver()
    yield drv
    drv.close()


@pytest.fixture
def make_host_driver(
    make_sandbox: Callable[[str], Sandbox],  # torn down after the hosts: they stop the agents
) -> Iterator[Callable[..., HostDriver]]:
    """Factory: ``make_host_driver(Runtime.CLAUDE, box)`` -> a :class:`HostDriver` whose
    town is ``<box.root>/town`` (closed after the test)."""
    made: list[HostDriver] = []

    def make(runtime: Runtime, box: Sandbox, **kwargs: object) -> HostDriver:
        drv = HostDriver(runtime, box.root / "town", **kwargs)  # type: ignore[arg-type]
        made.append(drv)
        return drv

    yield make
    for drv in made:
        drv.close()


@pytest.fixture
def make_daemon_town(
    make_sandbox: Callable[[str], Sandbox],  # torn down after the daemons: they stop the agents
) -> Iterator[Callable[..., DaemonTown]]:
    """Factory: ``make_daemon_town(root, name, runtime, argv, env)`` -> a :class:`DaemonTown`
    (its daemon is stopped with ``at daemon stop`` after the test)."""
    made: list[DaemonTown] = []

    def make(*args: object, **kwargs: object) -> DaemonTown:
        town = DaemonTown(*args, **kwargs)  # type: ignore[arg-type]
        made.append(town)
        return town

    yield make
    for town in made:
        town.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("real agents through SessionHost / the daemon: timings (s)")
    for test, steps in TIMINGS.items():
        shown = "  ".join(f"{step} {seconds:.1f}" for step, seconds in steps)
        terminalreporter.write_line(f"{test}: {shown}")
